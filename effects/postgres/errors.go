package postgres

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/registrar-go/registrar/intent"
)

// classify marks err for the runtime: transient failures (the connection,
// the server shutting down, a serialization failure or deadlock) as
// [intent.Retryable], data errors that no retry fixes as [intent.Permanent].
// Anything else is returned as it is; the runtime retries it too, without
// the hint.
func classify(err error) error {
	if err == nil || intent.IsRetryable(err) || intent.IsPermanent(err) {
		return err
	}
	if retryable(err) {
		return intent.Retryable(err)
	}
	if permanent(err) {
		return intent.Permanent(err)
	}
	return err
}

// retryable reports whether err is transient: the same statement may
// succeed if sent again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case len(code) == 5 && code[:2] == "08": // connection exception
			return true
		case code == "40001", // serialization_failure
			code == "40P01", // deadlock_detected
			code == "57P01", // admin_shutdown
			code == "57P02", // crash_shutdown
			code == "57P03", // cannot_connect_now
			code == "53300", // too_many_connections
			code == "55P03": // lock_not_available
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &netErr), errors.As(err, &connectErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// permanent reports whether the server rejected the data itself: class 22
// (data exception) or 23 (integrity constraint violation).
func permanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23":
		return true
	}
	return false
}
