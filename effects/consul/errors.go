package consul

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/intent"
)

// fail wraps err, the failure of op on the service id, marked retryable or
// permanent, with the ACL token removed from its text.
func (e *Effect) fail(op, id string, err error) error {
	retry := retryable(err)
	err = fmt.Errorf("registrar/consul: %s %s: %w", op, id, redact(err, e.cfg.Token))
	if retry {
		return intent.Retryable(err)
	}
	return intent.Permanent(err)
}

// retryable reports whether a retry may succeed: true for transport errors,
// timeouts and 408, 429 and 5xx responses; false for other 4xx responses.
func retryable(err error) bool {
	code, ok := statusCode(err)
	if !ok {
		return true
	}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code >= 400 && code < 500:
		return false
	}
	return true
}

// notFound reports whether err is the agent's 404 response.
func notFound(err error) bool {
	code, ok := statusCode(err)
	return ok && code == http.StatusNotFound
}

func statusCode(err error) (int, bool) {
	if err == nil {
		return 0, false
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	var sp *api.StatusError
	if errors.As(err, &sp) && sp != nil {
		return sp.Code, true
	}
	return 0, false
}

// redact returns err, or, if its text contains token, an error with the same
// text where the token is replaced. The replacement does not unwrap: the
// original chain would still carry the token.
func redact(err error, token string) error {
	if token == "" || err == nil || !strings.Contains(err.Error(), token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), token, "[redacted]")}
}

// redactedError is an error text with the token taken out.
type redactedError struct{ msg string }

// Error returns the redacted text.
func (e *redactedError) Error() string { return e.msg }
