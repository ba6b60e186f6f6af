package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// loadRows fills the projection table of schema with n rows in one
// INSERT ... SELECT over generate_series: 1% awaiting_ack, 1% accepted, 1%
// timed out (marker set), 2% expired, the rest active, with deadlines
// spread over a day from base, and a second domain's rows among them.
func loadRows(ctx context.Context, db DB, schema string, n int, base time.Time) error {
	t := pgx.Identifier{schema, "registration_projections"}.Sanitize()
	st := pgx.Identifier{schema, "registration_state"}.Sanitize()
	_, err := db.Exec(ctx, `INSERT INTO `+t+` (entity_id, domain, current_state, node_type, ack_deadline, liveness_deadline,
	last_heartbeat_at, ack_timeout_emitted_at, liveness_timeout_emitted_at, registered_at, updated_at, generation)
SELECT md5(i::text)::uuid,
       CASE WHEN i % 50 = 7 THEN 'other' ELSE 'registration' END,
       (CASE i % 100 WHEN 0 THEN 'awaiting_ack' WHEN 1 THEN 'accepted' WHEN 2 THEN 'ack_timed_out'
                     WHEN 3 THEN 'liveness_expired' WHEN 4 THEN 'liveness_expired' ELSE 'active' END)::`+st+`,
       'effect',
       $1::timestamptz + (i % 86400) * interval '1 second',
       $1::timestamptz + ((i::bigint * 7919) % 86400) * interval '1 second',
       $1::timestamptz,
       CASE WHEN i % 100 = 2 THEN $1::timestamptz END,
       CASE WHEN i % 100 IN (3, 4) THEN $1::timestamptz END,
       $1::timestamptz, $1::timestamptz, 1
FROM generate_series(1, $2::int) AS i`, base, n)
	return err
}

// TestOverdueScansUsePartialIndexes loads 1M rows and checks, with EXPLAIN,
// that both overdue scans read their partial index (custom and generic
// plans), then runs them. It takes some seconds; -short skips it, except
// under CI.
func TestOverdueScansUsePartialIndexes(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("loads 1M rows; runs without -short")
	}
	const rows = 1_000_000
	db := newTestDB(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	if err := bulkLoad(ctx, db, rows, base); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d rows, rebuilt the indexes and analyzed in %v", rows, time.Since(start).Round(time.Millisecond))

	n, err := newNames(db.schema)
	if err != nil {
		t.Fatal(err)
	}
	now := base.Add(12 * time.Hour)
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The cursor of the continued scans: a position in the middle of the
	// overdue entities, at which the index scan must start.
	cursor := "'" + base.Add(6*time.Hour).Format(time.RFC3339) + "', '80000000-0000-4000-8000-000000000000'"
	for _, scan := range []struct{ name, sql, index, params, cursor string }{
		{"overdue_acks", overdueAcksSQL(n, false), "registration_projections_ack_overdue", "", ""},
		{"overdue_liveness", overdueLivenessSQL(n, false), "registration_projections_liveness_overdue", "", ""},
		{"overdue_acks_after", overdueAcksSQL(n, true), "registration_projections_ack_overdue", ", timestamptz, uuid", ", " + cursor},
		{"overdue_liveness_after", overdueLivenessSQL(n, true), "registration_projections_liveness_overdue", ", timestamptz, uuid", ", " + cursor},
	} {
		// The plan for these values (what a first execution gets), and
		// the generic plan a prepared statement settles on.
		if _, err := conn.Exec(ctx, "PREPARE "+scan.name+"(timestamptz, text, int"+scan.params+") AS "+scan.sql); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			plan := explain(ctx, t, conn.Conn(), "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) EXECUTE "+scan.name+
				"('"+now.Format(time.RFC3339)+"', 'registration', 100"+scan.cursor+")")
			t.Logf("%s, plan_cache_mode=%s:\n%s", scan.name, mode, plan)
			if !strings.Contains(plan, "Index Scan using "+scan.index) {
				t.Errorf("%s (%s) does not scan its partial index %s:\n%s", scan.name, mode, scan.index, plan)
			}
			if scan.cursor != "" && !strings.Contains(plan, ">= ") {
				t.Errorf("%s (%s): the index scan does not start at the cursor:\n%s", scan.name, mode, plan)
			}
			if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Bitmap Heap Scan") {
				t.Errorf("%s (%s) reads the table beside the index:\n%s", scan.name, mode, plan)
			}
			if generic := strings.Contains(plan, "$1"); generic != (mode == "force_generic_plan") {
				t.Errorf("%s (%s): plan with parameters %v:\n%s", scan.name, mode, generic, plan)
			}
		}
	}
	store := db.store(t)
	// The reconciler's listing of active projections reads the partial
	// index from the cursor on.
	if _, err := conn.Exec(ctx, "PREPARE list_active(text, uuid, int) AS "+store.active); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		plan := explain(ctx, t, conn.Conn(), "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) EXECUTE list_active('registration', '80000000-0000-4000-8000-000000000000', 500)")
		t.Logf("list_active, plan_cache_mode=%s:\n%s", mode, plan)
		if !strings.Contains(plan, "Index Scan using registration_projections_active") {
			t.Errorf("list_active (%s) does not scan its partial index:\n%s", mode, plan)
		}
		if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort") {
			t.Errorf("list_active (%s) reads or sorts the table:\n%s", mode, plan)
		}
	}
	if _, err := conn.Exec(ctx, "RESET plan_cache_mode"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	page, err := store.ListActive(ctx, uuid.MustParse("80000000-0000-4000-8000-000000000000"), 500)
	if err != nil || len(page) != 500 {
		t.Fatalf("ListActive on %d rows: %d projections, %v", rows, len(page), err)
	}
	t.Logf("ListActive(limit 500) on %d rows: %v", rows, time.Since(start).Round(time.Microsecond))

	for _, scan := range []struct {
		name string
		f    func(context.Context, time.Time, registration.Overdue, int) ([]registration.Overdue, error)
	}{{"OverdueAcks", store.OverdueAcks}, {"OverdueLiveness", store.OverdueLiveness}} {
		var after registration.Overdue
		for page := range 2 {
			start := time.Now()
			got, err := scan.f(ctx, now, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s(page %d, limit 500) on %d rows: %v", scan.name, page, rows, time.Since(start).Round(time.Microsecond))
			if len(got) != 500 {
				t.Fatalf("%s: %d entities, want 500", scan.name, len(got))
			}
			for i := range got {
				prev := after
				if i > 0 {
					prev = got[i-1]
				}
				if got[i].Compare(prev) <= 0 || !got[i].Deadline.Before(now) {
					t.Fatalf("%s: entity %d %v after %v (now %v)", scan.name, i, got[i], prev, now)
				}
			}
			after = got[len(got)-1]
		}
	}
}

func explain(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// bulkLoad loads rows quickly: it drops the table's indexes, loads,
// recreates them from their own definitions (those of the migration), and
// analyzes.
func bulkLoad(ctx context.Context, db *testDB, rows int, base time.Time) error {
	return bulkLoadWith(ctx, db, func(tx DB) error { return loadRows(ctx, tx, db.schema, rows, base) })
}

// bulkLoadWith is bulkLoad with another loader.
func bulkLoadWith(ctx context.Context, db *testDB, load func(tx DB) error) error {
	table := pgx.Identifier{db.schema, "registration_projections"}.Sanitize()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	r, err := tx.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = $1 AND tablename = 'registration_projections' AND indexname <> 'registration_projections_pkey'`, db.schema)
	if err != nil {
		return err
	}
	type index struct{ name, def string }
	indexes, err := pgx.CollectRows(r, func(row pgx.CollectableRow) (index, error) {
		var i index
		return i, row.Scan(&i.name, &i.def)
	})
	if err != nil {
		return err
	}
	for _, i := range indexes {
		if _, err := tx.Exec(ctx, "DROP INDEX "+pgx.Identifier{db.schema, i.name}.Sanitize()); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" DROP CONSTRAINT registration_projections_pkey"); err != nil {
		return err
	}
	if err := load(tx); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" ADD CONSTRAINT registration_projections_pkey PRIMARY KEY (entity_id, domain)"); err != nil {
		return err
	}
	for _, i := range indexes {
		if _, err := tx.Exec(ctx, i.def); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, "ANALYZE "+table)
	return err
}
