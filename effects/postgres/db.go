package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the effects and the store need from a database handle: the
// smallest interface that both *pgxpool.Pool and pgx.Tx (and *pgx.Conn)
// satisfy. Pass a pool to let every call take its own connection, or a
// transaction to run the effects inside it: they then commit or roll back
// with it, and an intent that reported [intent.Applied] is only durable once
// the caller commits.
//
// The caller owns the handle: nothing in this package closes it.
type DB interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	// QueryRow runs a statement that returns at most one row.
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	// SendBatch sends the queued statements in one round trip. Unless the
	// handle is already in a transaction, they run in one implicit
	// transaction: a failing statement rolls back the ones before it.
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Beginner is a [DB] that can start a transaction; [Migrate] needs one to
// hold its advisory lock for exactly the migration. *pgxpool.Pool, *pgx.Conn
// and pgx.Tx (as a savepoint) satisfy it.
type Beginner interface {
	DB
	// Begin starts a transaction (a savepoint inside a pgx.Tx).
	Begin(ctx context.Context) (pgx.Tx, error)
}
