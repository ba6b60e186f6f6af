package postgres

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

func TestMigrateTwiceIsANoOp(t *testing.T) {
	db := newTestDB(t) // migrated once
	for range 2 {
		if err := Migrate(t.Context(), db.pool, MigrateConfig{Schema: db.schema}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+db.schema+".schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := len(migrations()); n != want {
		t.Errorf("%d migrations recorded, want %d", n, want)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	schema := newSchemaName()
	const instances = 6
	var wg sync.WaitGroup
	errs := make([]error, instances)
	cleanup, err := NewPool(t.Context(), Config{DSN: dsn, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup.Close)
	t.Cleanup(func() { _, _ = cleanup.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	start := make(chan struct{})
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := NewPool(t.Context(), Config{DSN: dsn, MaxConns: 1})
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			<-start
			errs[i] = Migrate(t.Context(), pool, MigrateConfig{Schema: schema})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	var n int
	if err := cleanup.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations()) {
		t.Errorf("%d migrations recorded, want %d", n, len(migrations()))
	}
}

func TestMigrateRejectsAnEditedMigration(t *testing.T) {
	db := newTestDB(t)
	if _, err := db.pool.Exec(t.Context(), "UPDATE "+db.schema+".schema_migrations SET checksum = 'edited' WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	err := Migrate(t.Context(), db.pool, MigrateConfig{Schema: db.schema})
	if err == nil || !strings.Contains(err.Error(), "0001_registration_projections.sql") {
		t.Fatalf("Migrate over an edited migration: %v", err)
	}
}

func TestMigrateInCallerTransaction(t *testing.T) {
	db := newTestDB(t)
	schema := "tx_" + db.schema
	tx, err := db.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(t.Context(), tx, MigrateConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := db.pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("a rolled-back migration left its schema")
	}
}

func TestSchema(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	t.Run("enum values", func(t *testing.T) {
		rows, err := db.pool.Query(ctx, `SELECT e.enumlabel FROM pg_enum e JOIN pg_type ty ON ty.oid = e.enumtypid
			JOIN pg_namespace n ON n.oid = ty.typnamespace WHERE n.nspname = $1 AND ty.typname = 'registration_state' ORDER BY e.enumsortorder`, db.schema)
		if err != nil {
			t.Fatal(err)
		}
		var got []registration.State
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, registration.State(s))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, registration.States()) {
			t.Errorf("enum %v, want registration.States() %v", got, registration.States())
		}
	})
	t.Run("columns", func(t *testing.T) {
		rows, err := db.pool.Query(ctx, `SELECT column_name, data_type, is_nullable, coalesce(column_default, '')
			FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'registration_projections'`, db.schema)
		if err != nil {
			t.Fatal(err)
		}
		type col struct{ typ, nullable, def string }
		got := map[string]col{}
		for rows.Next() {
			var name string
			var c col
			if err := rows.Scan(&name, &c.typ, &c.nullable, &c.def); err != nil {
				t.Fatal(err)
			}
			got[name] = c
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"entity_id": "uuid", "domain": "text", "current_state": "USER-DEFINED", "node_type": "text",
			"node_version": "text", "capabilities": "jsonb", "endpoints": "jsonb", "last_applied_event_id": "uuid",
			"correlation_id": "uuid", "generation": "bigint"}
		for c := range registration.AllColumns.Each() {
			if _, ok := want[c.Name()]; !ok {
				want[c.Name()] = "timestamp with time zone"
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d columns, want %d: %v", len(got), len(want), got)
		}
		for name, typ := range want {
			if got[name].typ != typ {
				t.Errorf("column %s: type %q, want %q", name, got[name].typ, typ)
			}
		}
		for name, def := range map[string]string{"domain": "'registration'::text", "node_version": "'1.0.0'::text",
			"capabilities": "'{}'::jsonb", "endpoints": "'{}'::jsonb", "generation": "0"} {
			if got[name].def != def || got[name].nullable != "NO" {
				t.Errorf("column %s: default %q nullable %s, want default %q NOT NULL", name, got[name].def, got[name].nullable, def)
			}
		}
	})
	t.Run("indexes", func(t *testing.T) {
		rows, err := db.pool.Query(ctx, "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'registration_projections'", db.schema)
		if err != nil {
			t.Fatal(err)
		}
		var defs []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				t.Fatal(err)
			}
			defs = append(defs, d)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(defs, "\n")
		for _, want := range []string{
			"UNIQUE INDEX registration_projections_pkey ON " + db.schema + ".registration_projections USING btree (entity_id, domain)",
			"INDEX registration_projections_ack_overdue ON " + db.schema + ".registration_projections USING btree (ack_deadline) WHERE ((ack_timeout_emitted_at IS NULL) AND (current_state = ANY (ARRAY['awaiting_ack'::" + db.schema + ".registration_state, 'accepted'::" + db.schema + ".registration_state])))",
			"INDEX registration_projections_liveness_overdue ON " + db.schema + ".registration_projections USING btree (liveness_deadline) WHERE ((liveness_timeout_emitted_at IS NULL) AND (current_state = 'active'::" + db.schema + ".registration_state))",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("no index %s among\n%s", want, all)
			}
		}
	})
}
