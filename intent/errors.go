package intent

import (
	"errors"
	"fmt"
)

// ErrNoEffect is wrapped by the error returned for an intent whose type has no
// registered effect.
var ErrNoEffect = errors.New("no effect registered")

// ExecError says which intent of a list failed.
type ExecError struct {
	// Index is the failed intent's position in the list.
	Index int
	// Type and Target are the failed intent's.
	Type, Target string
	// Err is the effect's error.
	Err error
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("intent %d (%s %s): %v", e.Index, e.Type, e.Target, e.Err)
}

// Unwrap returns the effect's error.
func (e *ExecError) Unwrap() error { return e.Err }

type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable reports true: the error is transient.
func (e *retryableError) Retryable() bool { return true }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent reports true: no retry can fix the error.
func (e *permanentError) Permanent() bool { return true }

// Retryable marks err as transient: the same intent may succeed if tried
// again (a connection refused, a serialization failure, a timeout). It returns
// nil for nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err}
}

// Permanent marks err as one that no retry can fix: a payload of the wrong
// type, an unknown column, a request the server rejects as invalid. The
// runtime dead-letters the message that caused it. It returns nil for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsRetryable reports whether err, or an error it wraps, has a method
// Retryable() bool that returns true.
func IsRetryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

// IsPermanent reports whether err, or an error it wraps, has a method
// Permanent() bool that returns true, or wraps [ErrNoEffect].
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		return true
	}
	return errors.Is(err, ErrNoEffect)
}
