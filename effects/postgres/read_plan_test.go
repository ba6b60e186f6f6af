package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// loadReadRows fills the projection table of schema with n rows whose
// filter columns vary independently of the entity id (md5 of the row
// number): 90% active and the other states 1 to 3% each; node types
// effect 40%, compute 30%, reducer 20%, orchestrator 9%, runtime_host 1%;
// capabilities postgres (10% true, else false), kafka (a third true) and
// one of a thousand rare keys cap_N; updated_at spread over a day from
// base; 2% of the rows in another domain.
func loadReadRows(ctx context.Context, db DB, schema string, n int, base time.Time) error {
	t := pgx.Identifier{schema, "registration_projections"}.Sanitize()
	st := pgx.Identifier{schema, "registration_state"}.Sanitize()
	_, err := db.Exec(ctx, `INSERT INTO `+t+` (entity_id, domain, current_state, node_type, capabilities, updated_at, generation)
SELECT md5(i::text)::uuid,
       CASE WHEN i % 50 = 7 THEN 'other' ELSE 'registration' END,
       (CASE i % 100 WHEN 0 THEN 'awaiting_ack' WHEN 1 THEN 'accepted' WHEN 2 THEN 'ack_timed_out'
                     WHEN 3 THEN 'liveness_expired' WHEN 4 THEN 'liveness_expired' WHEN 5 THEN 'rejected'
                     WHEN 6 THEN 'pending_registration' WHEN 8 THEN 'ack_received' ELSE 'active' END)::`+st+`,
       CASE WHEN i % 100 < 40 THEN 'effect' WHEN i % 100 < 70 THEN 'compute' WHEN i % 100 < 90 THEN 'reducer'
            WHEN i % 100 < 99 THEN 'orchestrator' ELSE 'runtime_host' END,
       jsonb_build_object('postgres', i % 10 = 0, 'kafka', i % 3 = 0, 'cap_' || (i % 1000), true),
       $1::timestamptz + ((i::bigint * 7919) % 86400) * interval '1 second',
       1
FROM generate_series(1, $2::int) AS i`, base, n)
	return err
}

// planNode is one node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

// walk yields n and every node below it.
func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// String is the plan's tree in one line: node types and their indexes.
func (n planNode) String() string {
	s := n.NodeType
	if n.IndexName != "" {
		s += " using " + n.IndexName
	}
	if len(n.Plans) > 0 {
		var cs []string
		for _, c := range n.Plans {
			cs = append(cs, c.String())
		}
		s += " [" + strings.Join(cs, ", ") + "]"
	}
	return s
}

// TestListUsesIndexes loads 1M rows and checks, with EXPLAIN (FORMAT
// JSON), that every query shape of List (each filter alone, combinations,
// with and without a cursor; custom and generic plans) reads the table
// through an index (an index, index-only or bitmap index scan on one of
// its indexes) and never sequentially, and that CountByState does not
// either. The plans are logged. It takes some seconds; -short skips it,
// except under CI.
func TestListUsesIndexes(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("loads 1M rows; runs without -short")
	}
	const rows = 1_000_000
	db := newTestDB(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	if err := bulkLoadWith(ctx, db, func(tx DB) error { return loadReadRows(ctx, tx, db.schema, rows, base) }); err != nil {
		t.Fatal(err)
	}
	// A table in service is vacuumed: the visibility map lets
	// CountByState read the state index alone.
	if _, err := db.pool.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{db.schema, "registration_projections"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d rows, rebuilt the indexes and vacuumed in %v", rows, time.Since(start).Round(time.Millisecond))
	n, err := newNames(db.schema)
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'registration_projections'`, db.schema)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"registration_projections_state", "registration_projections_node_type",
		"registration_projections_capabilities", "registration_projections_updated"} {
		if !slices.Contains(indexes, want) {
			t.Fatalf("index %s missing: %v", want, indexes)
		}
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	// The values of each filter: selective ones (a rare state, type or
	// capability, a recent bound) and unselective ones, for which reading
	// the primary key in order and filtering is the cheaper plan.
	const cursor = "'80000000-0000-4000-8000-000000000000'"
	since := func(h int) string { return "'" + base.Add(time.Duration(h)*time.Hour).Format(time.RFC3339) + "'" }
	type shape struct {
		name  string
		sh    listShape
		value []string // the filter parameters, SQL literals, in listArgs order
	}
	shapes := []shape{
		{"all", 0, nil},
		{"state_rare", listState, []string{"'awaiting_ack'"}},
		{"state_active", listState, []string{"'active'"}},
		{"states_two", listStates, []string{"'{awaiting_ack,accepted}'"}},
		{"states_many", listStates, []string{"'{active,rejected,liveness_expired}'"}},
		{"node_type_rare", listNodeType, []string{"'runtime_host'"}},
		{"node_type_common", listNodeType, []string{"'effect'"}},
		{"capability_rare", listCapability, []string{"'cap_17'"}},
		{"capability_common", listCapability, []string{"'kafka'"}},
		{"updated_since_recent", listUpdatedSince, []string{since(23)}},
		{"updated_since_old", listUpdatedSince, []string{since(1)}},
		{"state_node_type", listState | listNodeType, []string{"'active'", "'orchestrator'"}},
		{"state_capability", listState | listCapability, []string{"'awaiting_ack'", "'postgres'"}},
		{"node_type_updated", listNodeType | listUpdatedSince, []string{"'runtime_host'", since(12)}},
		{"all_filters", listStates | listNodeType | listCapability | listUpdatedSince,
			[]string{"'{active,awaiting_ack}'", "'effect'", "'cap_17'", since(6)}},
	}
	var withCursor []shape
	for _, s := range shapes {
		withCursor = append(withCursor, shape{s.name + "_after", s.sh | listAfter, append([]string{cursor}, s.value...)})
	}
	shapes = append(shapes, withCursor...)

	check := func(name, plan string) {
		t.Helper()
		var out []struct {
			Plan planNode `json:"Plan"`
		}
		if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) != 1 {
			t.Fatalf("%s: EXPLAIN output %q: %v", name, plan, err)
		}
		var seq, indexed bool
		out[0].Plan.walk(func(p planNode) {
			switch p.NodeType {
			case "Seq Scan":
				seq = seq || p.RelationName == "registration_projections"
			case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
				indexed = indexed || slices.Contains(indexes, p.IndexName)
			}
		})
		t.Logf("%s: %s", name, out[0].Plan)
		if seq {
			t.Errorf("%s reads registration_projections sequentially: %s", name, out[0].Plan)
		}
		if !indexed {
			t.Errorf("%s reads no index of registration_projections: %s", name, out[0].Plan)
		}
	}
	for _, s := range shapes {
		args := append([]string{"'registration'", "101"}, s.value...)
		if _, err := conn.Exec(ctx, "PREPARE list_"+s.name+" AS "+listSQL(n, s.sh)); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			plan := explain(ctx, t, conn.Conn(), "EXPLAIN (FORMAT JSON) EXECUTE list_"+s.name+"("+strings.Join(args, ", ")+")")
			check(fmt.Sprintf("%s (%s)", s.name, strings.TrimSuffix(strings.TrimPrefix(mode, "force_"), "_plan")), plan)
		}
	}
	if _, err := conn.Exec(ctx, "RESET plan_cache_mode"); err != nil {
		t.Fatal(err)
	}
	store := db.store(t)
	check("count_by_state", explain(ctx, t, conn.Conn(), "EXPLAIN (FORMAT JSON) "+store.count, "registration"))

	// And the pages themselves, timed: a walk of a rare filter to its end,
	// and the first pages of the common ones.
	for _, c := range []struct {
		q    registration.Query
		walk bool
	}{
		{registration.Query{}, false},
		{registration.Query{States: []registration.State{registration.StateActive}}, false},
		{registration.Query{NodeType: "effect"}, false},
		{registration.Query{Capability: "kafka"}, false},
		{registration.Query{Capability: "cap_17"}, true},
		{registration.Query{NodeType: "runtime_host", UpdatedSince: base.Add(12 * time.Hour)}, true},
		{registration.Query{States: []registration.State{registration.StateAwaitingAck}, Capability: "postgres"}, true},
	} {
		start := time.Now()
		page, err := store.List(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) == 0 {
			t.Errorf("List %+v: no rows", c.q)
		}
		first := time.Since(start)
		if !c.walk {
			t.Logf("List %+v: first page (%d) in %v", c.q, len(page.Items), first.Round(time.Microsecond))
			continue
		}
		c.q.Limit = registration.MaxListLimit
		start = time.Now()
		all, err := registration.ListAll(ctx, store, c.q)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("List %+v: first page (%d) in %v; all %d, in pages of 1000, in %v", c.q, len(page.Items),
			first.Round(time.Microsecond), len(all), time.Since(start).Round(time.Microsecond))
	}
	start = time.Now()
	counts, err := store.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	if want := rows - rows/50; total != want {
		t.Errorf("CountByState totals %d, want %d", total, want)
	}
	t.Logf("CountByState on %d rows: %v in %v", rows, counts, time.Since(start).Round(time.Microsecond))
}
