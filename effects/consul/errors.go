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

// retryable reports whether a retry may succeed: whether err is a fault of
// the environment rather than of the intent. Only a response that says the
// request itself is malformed (400, 413, 414, 422) is the intent's fault:
// the agent refuses the same request again whatever happens to it. Any
// other failure is the environment's and may pass: transport errors,
// timeouts and canceled contexts; 5xx, 408 and 429; and 401, 403 and 407,
// an ACL token or credentials that the agent refuses (not created yet, not
// replicated to this datacenter yet, missing a policy, expired), which an
// operator fixes without the intent changing. The package documentation
// has the table.
func retryable(err error) bool {
	code, ok := statusCode(err)
	if !ok {
		return true
	}
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, http.StatusUnprocessableEntity:
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
