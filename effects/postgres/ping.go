package postgres

import (
	"context"
	"fmt"
	"time"
)

// PingTimeout bounds [Store.Ping] when its context has no sooner deadline.
const PingTimeout = time.Second

// Ping checks that the database answers through the store's handle: with
// the handle's own Ping when it has one (*pgxpool.Pool takes a connection,
// opening one if the pool has none, and pings it), else with SELECT 1. It
// gives up after [PingTimeout] unless ctx ends sooner. It implements the
// registrar.Pinger the Runtime's readiness check uses. An error is marked
// [intent.Retryable] when the environment is at fault; like every error of
// this package, its message names the user, the database and the address,
// never the password or the DSN.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	var err error
	if p, ok := s.db.(interface{ Ping(context.Context) error }); ok {
		err = p.Ping(ctx)
	} else {
		var one int
		err = s.db.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	if err != nil {
		return fmt.Errorf("registrar/postgres: ping: %w", classify(err))
	}
	return nil
}
