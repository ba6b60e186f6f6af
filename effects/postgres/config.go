package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of [Config] that differ from pgxpool's.
const (
	// DefaultConnectTimeout bounds one connection attempt unless the DSN
	// sets connect_timeout.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultApplicationName is reported to the server (pg_stat_activity)
	// unless the DSN sets application_name.
	DefaultApplicationName = "registrar"
)

// Config describes a connection pool for [NewPool]. Callers that already
// have a pool pass it to the constructors instead: they take any [DB].
// The zero value of a field means its default.
type Config struct {
	// DSN is the connection string, as a URL
	// (postgres://user:password@host:5432/db?sslmode=disable) or in
	// key=value form. Required. It may carry a password: this package
	// never puts the DSN or the password in an error or a log line.
	DSN string
	// MaxConns is the pool's size; default pgxpool's (the larger of 4 and
	// the number of CPUs), unless the DSN sets pool_max_conns.
	MaxConns int32
	// MinConns is how many idle connections the pool keeps open; default 0.
	MinConns int32
	// MaxConnLifetime closes connections older than this; default pgxpool's
	// (1 h).
	MaxConnLifetime time.Duration
	// MaxConnIdleTime closes connections idle for longer; default pgxpool's
	// (30 min).
	MaxConnIdleTime time.Duration
	// HealthCheckPeriod is how often idle connections are checked; default
	// pgxpool's (1 min).
	HealthCheckPeriod time.Duration
	// ConnectTimeout bounds one connection attempt; default
	// [DefaultConnectTimeout] unless the DSN sets connect_timeout.
	ConnectTimeout time.Duration
	// ApplicationName is reported to the server; default
	// [DefaultApplicationName] unless the DSN sets application_name.
	ApplicationName string
	// ConfigurePool, if set, is the escape hatch: it is called with the
	// pgxpool configuration after every field above was applied, and may
	// change anything in it (tracers, TLS, AfterConnect hooks). An error
	// it returns is returned by [NewPool] and [Config.PoolConfig].
	ConfigurePool func(*pgxpool.Config) error
}

// Validate reports every problem with c at once (errors.Join), without
// connecting. Errors name the field, never the DSN's content.
func (c Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("DSN is empty"))
	} else if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		errs = append(errs, dsnError(err))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("MaxConns %d is negative", c.MaxConns))
	}
	if c.MinConns < 0 {
		errs = append(errs, fmt.Errorf("MinConns %d is negative", c.MinConns))
	}
	if c.MaxConns > 0 && c.MinConns > c.MaxConns {
		errs = append(errs, fmt.Errorf("MinConns %d is more than MaxConns %d", c.MinConns, c.MaxConns))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MaxConnLifetime", c.MaxConnLifetime}, {"MaxConnIdleTime", c.MaxConnIdleTime},
		{"HealthCheckPeriod", c.HealthCheckPeriod}, {"ConnectTimeout", c.ConnectTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registrar/postgres: invalid config: %w", err)
	}
	return nil
}

// dsnError says that the DSN does not parse without repeating any of it:
// the parser's message may quote the DSN, password included. Only the
// reason of a URL syntax error, which quotes no userinfo, is kept.
func dsnError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return fmt.Errorf("DSN does not parse: %w (the DSN is not shown: it may carry a password)", urlErr.Err)
	}
	return errors.New("DSN does not parse as a URL or key=value connection string (the DSN is not shown: it may carry a password)")
}

// PoolConfig returns the pgxpool configuration c describes, with
// ConfigurePool applied: the step between parsing and connecting, for
// callers that build the pool themselves with pgxpool.NewWithConfig.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil { // Validate parsed it already; kept for safety
		return nil, fmt.Errorf("registrar/postgres: invalid config: %w", dsnError(err))
	}
	if c.MaxConns > 0 {
		pc.MaxConns = c.MaxConns
	}
	if c.MinConns > 0 {
		pc.MinConns = c.MinConns
	}
	if c.MaxConnLifetime > 0 {
		pc.MaxConnLifetime = c.MaxConnLifetime
	}
	if c.MaxConnIdleTime > 0 {
		pc.MaxConnIdleTime = c.MaxConnIdleTime
	}
	if c.HealthCheckPeriod > 0 {
		pc.HealthCheckPeriod = c.HealthCheckPeriod
	}
	switch {
	case c.ConnectTimeout > 0:
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	case pc.ConnConfig.ConnectTimeout == 0:
		pc.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, set := pc.ConnConfig.RuntimeParams["application_name"]; !set || c.ApplicationName != "" {
		name := c.ApplicationName
		if name == "" {
			name = DefaultApplicationName
		}
		pc.ConnConfig.RuntimeParams["application_name"] = name
	}
	if c.ConfigurePool != nil {
		if err := c.ConfigurePool(pc); err != nil {
			return nil, fmt.Errorf("registrar/postgres: ConfigurePool: %w", err)
		}
	}
	return pc, nil
}

// NewPool builds the pool c describes and checks that it can connect (one
// ping), so that a wrong DSN or an unreachable server fails at start-up. The
// caller closes the pool. A connection failure is marked
// [intent.Retryable]; its message names the user and database, never the
// password.
func NewPool(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pc, err := c.PoolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: new pool: %w", classify(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("registrar/postgres: connect: %w", classify(err))
	}
	return pool, nil
}
