package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// wantEnvironmentError checks that err is a retryable error of SQLSTATE
// code that says what failed and carries no secret.
func wantEnvironmentError(t *testing.T, what string, err error, code, dsn string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Errorf("%s: %v, want SQLSTATE %s", what, err, code)
	}
	if !intent.IsRetryable(err) || intent.IsPermanent(err) {
		t.Errorf("%s: a fault of the environment is not retryable: %v", what, err)
	}
	noSecret(t, what+" error", err.Error(), dsn)
	noSecret(t, what+" error %+v", fmt.Sprintf("%+v", err), dsn)
	t.Logf("%s: %v", what, err)
}

// TestMissingGrantIsRetryable runs the effects and the store as a role
// that may log in but was granted nothing on the schema: every call fails
// with insufficient_privilege (42501), retryably, since an operator's GRANT
// fixes it and the intent is not at fault; after the GRANT the same intents
// apply. The role's DSN carries a password (the test server trusts
// 127.0.0.1 and ignores it), which no error or log line may show.
func TestMissingGrantIsRetryable(t *testing.T) {
	db := newTestDB(t)
	role := "regtest_role_" + db.schema[len("regtest_"):]
	ctx := t.Context()
	if _, err := db.pool.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, secret)); err != nil {
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, stmt := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := db.pool.Exec(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})

	base, err := Config{DSN: testenv.PostgresDSN(t)}.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	cc := base.ConnConfig
	dsn := (&url.URL{Scheme: "postgres", User: url.UserPassword(role, secret),
		Host: net.JoinHostPort(cc.Host, fmt.Sprint(cc.Port)), Path: "/" + cc.Database, RawQuery: "sslmode=disable"}).String()
	pool, err := NewPool(ctx, Config{DSN: dsn, MaxConns: 2})
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(pool.Close) // before the role is dropped

	var logs logBuffer
	cfg := EffectConfig{Schema: db.schema, Logger: debugLogger(&logs)}
	up, err := NewUpsert(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := NewUpdate(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(pool, StoreConfig{Schema: db.schema, Logger: debugLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	ins := upsertIntent(activeRow(id), registration.StateNone)
	hb := heartbeatIntent(id, t0.Add(time.Second))

	_, err = up.Execute(ctx, ins)
	wantEnvironmentError(t, "upsert", err, "42501", dsn)
	_, err = up.ExecuteBatch(ctx, []intent.Intent{ins})
	wantEnvironmentError(t, "upsert batch", err, "42501", dsn)
	_, err = upd.Execute(ctx, hb)
	wantEnvironmentError(t, "update", err, "42501", dsn)
	_, err = upd.ExecuteBatch(ctx, []intent.Intent{hb})
	wantEnvironmentError(t, "update batch", err, "42501", dsn)
	_, err = store.Load(ctx, id)
	wantEnvironmentError(t, "load", err, "42501", dsn)
	noSecret(t, "log", logs.String(), dsn)

	for _, stmt := range []string{
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", db.schema, role),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %s TO %s", db.schema, role),
	} {
		if _, err := db.pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	mustApply(t, up, ins, intent.Applied)
	mustApply(t, upd, hb, intent.Applied)
	if p := load(t, store, id); p == nil || !p.LastHeartbeatAt.Equal(t0.Add(time.Second)) {
		t.Errorf("after the GRANT: projection %+v, want the heartbeat applied", p)
	}
}

// TestUnmigratedSchemaIsRetryable runs the effects and the store on a
// schema that does not exist yet: the intents fail retryably (the
// deployment is not finished, the intent is fine) and apply once the
// schema is migrated.
func TestUnmigratedSchemaIsRetryable(t *testing.T) {
	db := newTestDB(t) // only for its pool and cleanup; the schema below is another
	ctx := t.Context()
	schema := newSchemaName()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	up, err := NewUpsert(db.pool, EffectConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(db.pool, StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	ins := upsertIntent(activeRow(id), registration.StateNone)
	for _, call := range []struct {
		what string
		run  func() error
	}{
		{"upsert", func() error { _, err := up.Execute(ctx, ins); return err }},
		{"upsert batch", func() error { _, err := up.ExecuteBatch(ctx, []intent.Intent{ins}); return err }},
		{"load", func() error { _, err := store.Load(ctx, id); return err }},
	} {
		err := call.run()
		if err == nil {
			t.Fatalf("%s on a schema that does not exist: no error", call.what)
		}
		if !intent.IsRetryable(err) || intent.IsPermanent(err) {
			t.Errorf("%s on a schema that does not exist: not retryable: %v", call.what, err)
		}
		t.Logf("%s: %v", call.what, err)
	}
	if err := Migrate(ctx, db.pool, MigrateConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, up, ins, intent.Applied)
	if p := load(t, store, id); p == nil {
		t.Error("after the migration: no projection")
	}
}
