package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Severity: "ERROR", Code: code})
	}
	for _, c := range []struct {
		name                 string
		err                  error
		retryable, permanent bool
	}{
		{"connection exception 08006", pg("08006"), true, false},
		{"connection does not exist 08003", pg("08003"), true, false},
		{"serialization failure", pg("40001"), true, false},
		{"deadlock", pg("40P01"), true, false},
		{"admin shutdown", pg("57P01"), true, false},
		{"crash shutdown", pg("57P02"), true, false},
		{"cannot connect now", pg("57P03"), true, false},
		{"too many connections", pg("53300"), true, false},
		{"statement completion unknown", pg("40003"), true, false},
		{"lock not available", pg("55P03"), true, false},
		{"object in use", pg("55006"), true, false},
		{"query canceled (statement_timeout)", pg("57014"), true, false},
		{"database dropped", pg("57P04"), true, false},
		{"disk full", pg("53100"), true, false},
		{"out of memory", pg("53200"), true, false},
		{"configuration limit exceeded", pg("53400"), true, false},
		{"io error", pg("58030"), true, false},
		{"internal error", pg("XX000"), true, false},
		{"index corrupted", pg("XX002"), true, false},
		{"read-only transaction on a standby", pg("25006"), true, false},
		{"idle in transaction timeout", pg("25P03"), true, false},
		{"invalid authorization", pg("28000"), true, false},
		{"invalid password", pg("28P01"), true, false},
		{"insufficient privilege", pg("42501"), true, false},
		{"undefined table", pg("42P01"), true, false},
		{"undefined column", pg("42703"), true, false},
		{"undefined object", pg("42704"), true, false},
		{"undefined function", pg("42883"), true, false},
		{"invalid schema name", pg("3F000"), true, false},
		{"invalid catalog name", pg("3D000"), true, false},
		{"invalid text representation", pg("22P02"), false, true},
		{"string data right truncation", pg("22001"), false, true},
		{"numeric value out of range", pg("22003"), false, true},
		{"untranslatable character", pg("22P05"), false, true},
		{"unique violation", pg("23505"), false, true},
		{"not null violation", pg("23502"), false, true},
		{"check violation", pg("23514"), false, true},
		{"syntax error", pg("42601"), false, false},
		{"datatype mismatch", pg("42804"), false, false},
		{"transaction aborted", pg("25P02"), false, false},
		{"short code", pg("08"), false, false},
		{"deadline exceeded", fmt.Errorf("query: %w", context.DeadlineExceeded), true, false},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), true, false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true, false},
		{"reset by peer", fmt.Errorf("read: %w", syscall.ECONNRESET), true, false},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true, false},
		{"unexpected EOF", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true, false},
		{"EOF", io.EOF, true, false},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true, false},
		{"connect error", &pgconn.ConnectError{Config: &pgconn.Config{}}, true, false},
		{"other", errors.New("something else"), false, false},
		{"already permanent", intent.Permanent(io.EOF), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := classify(c.err)
			if intent.IsRetryable(got) != c.retryable || intent.IsPermanent(got) != c.permanent {
				t.Errorf("classify(%v): retryable %v permanent %v, want %v %v", c.err,
					intent.IsRetryable(got), intent.IsPermanent(got), c.retryable, c.permanent)
			}
			if !errors.Is(got, c.err) {
				t.Errorf("classify(%v) does not wrap it", c.err)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

const secret = "s3cr3t-Pa55w0rd"

// noSecret fails the test if s carries the password or the DSN.
func noSecret(t *testing.T, what, s, dsn string) {
	t.Helper()
	if strings.Contains(s, secret) || strings.Contains(s, dsn) {
		t.Errorf("%s carries the password or the DSN: %s", what, s)
	}
}

func TestNoPasswordInErrorsOrLogs(t *testing.T) {
	addr := closedPort(t)
	host, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		name string
		dsn  string
	}{
		{"URL, closed port", "postgres://postgres:" + secret + "@" + addr + "/test?sslmode=disable&connect_timeout=2"},
		{"key=value, closed port", "host=" + host + " port=" + port + " user=postgres password=" + secret + " dbname=test sslmode=disable connect_timeout=2"},
		{"quoted key=value, closed port", "host=" + host + " port=" + port + " user=postgres password='" + secret + "' dbname=test sslmode=disable"},
		{"URL with the password in the query", "postgres://postgres@" + addr + "/test?sslmode=disable&password=" + secret},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := (Config{DSN: c.dsn}).Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			pool, err := NewPool(ctx, Config{DSN: c.dsn, ConnectTimeout: 2 * time.Second})
			if err == nil {
				pool.Close()
				t.Fatal("NewPool connected to a closed port")
			}
			if !intent.IsRetryable(err) {
				t.Errorf("connection refused is not retryable: %v", err)
			}
			noSecret(t, "error", err.Error(), c.dsn)
			noSecret(t, "error %+v", fmt.Sprintf("%+v", err), c.dsn)
			t.Logf("error: %v", err)
		})
	}
	t.Run("DSN that does not parse", func(t *testing.T) {
		for _, dsn := range []string{
			"postgres://postgres:" + secret + "@127.0.0.1:notaport/test",
			"postgres://postgres:" + secret + "@[::1/test",
			"host=127.0.0.1 password='" + secret,
			"postgres://postgres:" + secret + "@127.0.0.1/test?sslmode=bogus",
		} {
			err := Config{DSN: dsn}.Validate()
			if err == nil {
				t.Errorf("Validate accepted a DSN that does not parse")
				continue
			}
			noSecret(t, "Validate error", err.Error(), dsn)
			t.Logf("error: %v", err)
			if _, err := NewPool(t.Context(), Config{DSN: dsn}); err == nil {
				t.Error("NewPool accepted a DSN that does not parse")
			} else {
				noSecret(t, "NewPool error", err.Error(), dsn)
			}
		}
	})
	t.Run("failed authentication", func(t *testing.T) {
		base := testenv.PostgresDSN(t)
		cfg, err := Config{DSN: base}.PoolConfig()
		if err != nil {
			t.Fatal(err)
		}
		dsn := fmt.Sprintf("postgres://registrar_no_such_role:%s@%s/%s?sslmode=disable", secret,
			net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port)), cfg.ConnConfig.Database)
		_, err = NewPool(t.Context(), Config{DSN: dsn})
		if err == nil {
			t.Fatal("connected as a role that does not exist")
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code[:2] != "28" {
			t.Errorf("error %v is not an authentication failure (SQLSTATE class 28)", err)
		}
		if !intent.IsRetryable(err) || intent.IsPermanent(err) {
			t.Errorf("an authentication failure is not retryable: %v", err)
		}
		noSecret(t, "error", err.Error(), dsn)
		t.Logf("error: %v", err)
	})
	t.Run("an effect on an unreachable server", func(t *testing.T) {
		dsn := "postgres://postgres:" + secret + "@" + addr + "/test?sslmode=disable"
		cfg, err := Config{DSN: dsn, ConnectTimeout: 2 * time.Second}.PoolConfig()
		if err != nil {
			t.Fatal(err)
		}
		var logs logBuffer
		pool := newLazyPool(t, cfg)
		_, upd := (&testDB{pool: pool, schema: "public"}).effects(t, EffectConfig{Logger: debugLogger(&logs)})
		in := heartbeatIntent(uuid.New(), t0)
		for _, batch := range []bool{false, true} {
			var err error
			if batch {
				_, err = upd.ExecuteBatch(t.Context(), []intent.Intent{in})
			} else {
				_, err = upd.Execute(t.Context(), in)
			}
			if err == nil || !intent.IsRetryable(err) {
				t.Fatalf("batch=%v: %v, want a retryable error", batch, err)
			}
			if !strings.Contains(err.Error(), in.CorrelationID.String()) || !strings.HasPrefix(err.Error(), "registrar/postgres: update") {
				t.Errorf("batch=%v: error %q does not say what failed", batch, err)
			}
			noSecret(t, "error", err.Error(), dsn)
		}
		noSecret(t, "log", logs.String(), dsn)
		s, err := NewStore(pool, StoreConfig{Logger: debugLogger(&logs)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(t.Context(), uuid.New()); !intent.IsRetryable(err) {
			t.Errorf("Load: %v, want a retryable error", err)
		} else {
			noSecret(t, "Load error", err.Error(), dsn)
		}
	})
}

func TestAdminShutdownIsRetryable(t *testing.T) {
	db := newTestDB(t)
	pool, err := NewPool(t.Context(), Config{DSN: testenv.PostgresDSN(t), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	up, err := NewUpsert(pool, EffectConfig{Schema: db.schema})
	if err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := pool.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := db.pool.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate backend %d: %v %v", pid, ok, err)
	}
	in := upsertIntent(activeRow(uuid.New()), registration.StateNone)
	_, err = up.Execute(t.Context(), in)
	if err == nil {
		t.Fatal("no error from a terminated connection")
	}
	if !intent.IsRetryable(err) {
		t.Fatalf("error from a terminated connection is not retryable: %v", err)
	}
	t.Logf("terminated connection: %v", err)
	// The retry succeeds on a new connection.
	mustApply(t, up, in, intent.Applied)
}

func TestConfigValidate(t *testing.T) {
	err := Config{MaxConns: -1, MinConns: -2, MaxConnLifetime: -time.Second, ConnectTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"DSN is empty", "MaxConns -1", "MinConns -2", "MaxConnLifetime", "ConnectTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
	if err := (Config{DSN: "postgres://u@h/db", MaxConns: 2, MinConns: 3}).Validate(); err == nil || !strings.Contains(err.Error(), "MinConns 3 is more than MaxConns 2") {
		t.Errorf("MinConns > MaxConns: %v", err)
	}
	pc, err := Config{DSN: "postgres://u@h/db?application_name=mine", MaxConns: 7, ConfigurePool: func(pc *pgxpool.Config) error {
		pc.MinConns = 1
		return nil
	}}.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != 7 || pc.MinConns != 1 || pc.ConnConfig.ConnectTimeout != DefaultConnectTimeout ||
		pc.ConnConfig.RuntimeParams["application_name"] != "mine" {
		t.Errorf("pool config: max %d min %d timeout %v app %q", pc.MaxConns, pc.MinConns, pc.ConnConfig.ConnectTimeout,
			pc.ConnConfig.RuntimeParams["application_name"])
	}
	if _, err := (Config{DSN: "postgres://u@h/db", ConfigurePool: func(*pgxpool.Config) error { return errors.New("nope") }}).PoolConfig(); err == nil {
		t.Error("a ConfigurePool error was ignored")
	}
}

// newLazyPool builds a pool without connecting.
func newLazyPool(t *testing.T, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
