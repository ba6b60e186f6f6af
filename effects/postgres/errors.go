package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/registrar-go/registrar/intent"
)

// classify marks err for the runtime by one rule: an intent is at fault,
// and its error [intent.Permanent], only when the server rejected the row's
// data, which no change to the server fixes; every fault of the environment
// (the connection, the server, its resources, its roles, grants and schema)
// is [intent.Retryable], so that the input is retried, not dead-lettered.
// Anything else (such as a syntax error, which is registrar's bug) is
// returned as it is: the runtime tries it a bounded number of times. The
// package documentation has the table.
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

// retryableClasses are the SQLSTATE classes whose every code is a fault of
// the environment.
var retryableClasses = map[string]bool{
	"08": true, // connection exception
	"28": true, // invalid authorization specification: 28000, 28P01 (the role, its password, pg_hba.conf)
	"53": true, // insufficient resources: disk full, out of memory, too many connections
	"57": true, // operator intervention: query canceled (statement_timeout), admin/crash shutdown, cannot connect now
	"58": true, // system error: I/O error, undefined or duplicate file
	"XX": true, // internal error, data or index corrupted
}

// retryableCodes are the SQLSTATE codes of other classes that are faults of
// the environment.
var retryableCodes = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"40003": true, // statement_completion_unknown
	"55P03": true, // lock_not_available
	"55006": true, // object_in_use
	"25006": true, // read_only_sql_transaction: a standby, after a failover
	"25P03": true, // idle_in_transaction_session_timeout
	"25P04": true, // transaction_timeout
	"42501": true, // insufficient_privilege: a GRANT missing
	"42P01": true, // undefined_table: the schema is not migrated
	"42703": true, // undefined_column: the schema is not migrated (that far)
	"42704": true, // undefined_object: such as the state enum type
	"42883": true, // undefined_function
	"3F000": true, // invalid_schema_name: the schema does not exist
	"3D000": true, // invalid_catalog_name: the database does not exist
}

// retryable reports whether err is a fault of the environment: the same
// statement may succeed once the server, the network or an operator fixes
// it.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		return len(code) == 5 && (retryableClasses[code[:2]] || retryableCodes[code])
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
