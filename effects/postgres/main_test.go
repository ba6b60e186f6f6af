package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDB is a pool on the test server and a schema of its own, migrated;
// both go away when the test ends.
type testDB struct {
	pool   *pgxpool.Pool
	schema string
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := NewPool(ctx, Config{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	t.Cleanup(pool.Close)
	schema := newSchemaName()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := Migrate(ctx, pool, MigrateConfig{Schema: schema}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return &testDB{pool: pool, schema: schema}
}

// newSchemaName returns a fresh schema name for one test.
func newSchemaName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "regtest_" + hex.EncodeToString(b[:])
}

func (d *testDB) store(t testing.TB) *Store {
	t.Helper()
	s, err := NewStore(d.pool, StoreConfig{Schema: d.schema})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (d *testDB) effects(t testing.TB, cfg EffectConfig) (*Upsert, *Update) {
	t.Helper()
	cfg.Schema = d.schema
	up, err := NewUpsert(d.pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := NewUpdate(d.pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return up, upd
}
