package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/registrar-go/registrar"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	memeffects "github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// scaleParams shape the scale curve (-scale): the fleet sizes, how many
// projections are overdue when the sweep is timed, how many times it is
// timed, and whether the memory bus → Postgres pipeline runs too.
type scaleParams struct {
	sizes    []int
	overdue  int
	sweeps   int
	postgres bool
}

// defaultScaleSizes are the fleet sizes of -scale.
var defaultScaleSizes = []int{10_000, 100_000, 1_000_000}

// maxStoreBytes is the memory store's budget per projection.
const maxStoreBytes = 2048

// sweepFactor is how much slower the sweep at the largest size may be than
// at the smallest, with the same overdue count, for its cost to count as
// following the overdue count rather than the table.
const sweepFactor = 3

// scalePoint is what the curve measured at one fleet size.
type scalePoint struct {
	nodes int
	// memRate and pgRate are the Runtime's heartbeats per second, memory
	// bus into the memory store and into the Postgres store (NaN: not run).
	memRate, pgRate float64
	// storeBytes is the memory store's live heap per projection.
	storeBytes float64
	// tableBytes, heapBytes and indexBytes are the projection table's
	// pg_total_relation_size, pg_relation_size and pg_indexes_size per row.
	tableBytes, heapBytes, indexBytes float64
	// sweep is the median time of one sweep (OverdueAcks and
	// OverdueLiveness, as the sweeper calls them) with overdue projections
	// due; found is what it found.
	sweep time.Duration
	found int
	// plans are the node types of the sweep's plans (custom and generic),
	// and indexScan whether every plan reads its partial index and no plan
	// scans the table.
	plans     []string
	indexScan bool
}

// benchScale measures the scale curve: at each fleet size, the memory
// store's bytes per projection, the Runtime's rate into it, the Postgres
// table's size per row, the time and the plan of one overdue sweep, and the
// Runtime's rate into Postgres.
func benchScale(ctx context.Context, o options, p *progress, t *table) error {
	var pts []scalePoint
	for _, n := range o.scale.sizes {
		pt, err := scaleAt(ctx, o, p, n)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		pts = append(pts, pt)
	}
	scaleRows(t, o.scale, pts)
	return nil
}

// scaleAt measures one point of the curve.
func scaleAt(ctx context.Context, o options, p *progress, n int) (scalePoint, error) {
	pt := scalePoint{nodes: n, pgRate: math.NaN()}
	start := time.Now()
	store, ids, bytes := seedMemoryStore(n)
	pt.storeBytes = bytes
	p.printf("scale %d: memory store seeded in %s: %.0f B of live heap per projection", n, time.Since(start).Round(time.Millisecond), bytes)
	rate, err := scaleMemoryRate(ctx, o, p, store, ids)
	if err != nil {
		return pt, fmt.Errorf("memory bus → memory store: %w", err)
	}
	pt.memRate = rate
	store, ids = nil, nil //nolint:ineffassign,staticcheck,wastedassign // let the collector have them before Postgres
	runtime.GC()

	db, err := openDB(ctx, o.dsn, 0)
	if err != nil {
		return pt, err
	}
	defer func() { _ = db.drop() }()
	start = time.Now()
	ids, err = db.seedScale(ctx, "scale-", n, o.scale.overdue)
	if err != nil {
		return pt, err
	}
	p.printf("scale %d: Postgres table seeded (one INSERT ... SELECT generate_series, then VACUUM ANALYZE) in %s", n, time.Since(start).Round(time.Millisecond))
	if err := db.sizes(ctx, &pt); err != nil {
		return pt, err
	}
	p.printf("scale %d: table %.0f B/row (heap %.0f, indexes %.0f)", n, pt.tableBytes, pt.heapBytes, pt.indexBytes)
	if err := db.sweep(ctx, o.scale, &pt); err != nil {
		return pt, err
	}
	p.printf("scale %d: one sweep %s (%d overdue found); plans: %s", n, pt.sweep, pt.found, strings.Join(pt.plans, "; "))
	if o.scale.postgres {
		rate, err := scalePostgresRate(ctx, o, p, db, ids)
		if err != nil {
			return pt, fmt.Errorf("memory bus → Postgres: %w", err)
		}
		pt.pgRate = rate
	}
	return pt, nil
}

// seedMemoryStore fills a memory store with n active projections of the
// shape a registered, heartbeating node leaves (strings and capabilities of
// their own, one endpoint, the deadlines set), last heartbeat at pgBase,
// and returns it, their ids, and the live heap each costs after a
// collection.
func seedMemoryStore(n int) (*memeffects.Store, []uuid.UUID, float64) {
	before := liveHeap()
	s := memeffects.NewStore(memeffects.StoreConfig{})
	ids := make([]uuid.UUID, n)
	ctx := context.Background()
	for i := range ids {
		ids[i] = uuid.New()
		p := registration.Projection{EntityID: ids[i], Domain: registration.DefaultDomain, State: registration.StateActive,
			NodeType: strings.Clone("effect"), NodeVersion: strings.Clone("1.0.0"),
			Capabilities: json.RawMessage(`{"postgres":false,"read":true,"write":true}`),
			Endpoints:    map[string]string{"health": fmt.Sprintf("http://10.%d.%d.%d:8080/health", i>>16&255, i>>8&255, i&255)},
			AckDeadline:  pgBase.Add(-time.Minute), LivenessDeadline: pgBase.Add(90 * time.Second), LastHeartbeatAt: pgBase,
			RegisteredAt: pgBase.Add(-2 * time.Minute), UpdatedAt: pgBase, LastAppliedEventID: uuid.New(), CorrelationID: uuid.New(), Generation: 1}
		p.Capabilities = append(json.RawMessage(nil), p.Capabilities...)
		if _, err := s.Execute(ctx, intent.Intent{Type: registration.IntentUpsert, Payload: &registration.UpsertRegistration{Projection: p}}); err != nil {
			panic(err) // an upsert into an empty row cannot conflict
		}
	}
	_, _ = s.List(ctx, registration.Query{Limit: 1}) // merge List's index, as the first read would
	after := liveHeap()
	runtime.KeepAlive(s)
	return s, ids, float64(int64(after)-int64(before)) / float64(n)
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// scaleRounds is how many measured rounds each rate of the curve takes.
func scaleRounds(o options) int { return max(1, min(o.rounds, 3)) }

// scaleMemoryRate runs the Runtime on a memory bus into store, whose nodes
// are ids, and returns the median heartbeats per second of its rounds (one
// heartbeat per node each).
func scaleMemoryRate(ctx context.Context, o options, p *progress, store *memeffects.Store, ids []uuid.UUID) (float64, error) {
	c := contract.Default()
	mb, err := membus.New(membus.Config{})
	if err != nil {
		return 0, err
	}
	defer mb.Close()
	cs := &countingMemoryStore{Store: store}
	pl := &pipeline{name: "scale-memory", bus: newCountingBus(mb), store: &cs.storeCounters, nodes: ids, beats: make([]int, len(ids)),
		topic: registrar.ReducerConfig(c).Topics.Heartbeat, pubs: o.runtime.publishers, perCall: 1}
	exec, err := newExecutor(ctx, pl, store, store)
	if err != nil {
		return 0, err
	}
	pl.rt, err = registrar.NewRegistration(c, pl.bus, cs, exec, registrar.RegistrationConfig{NoSweeper: true},
		registrar.WithGroup("bench-scale-memory"))
	if err != nil {
		return 0, err
	}
	return runPipeline(ctx, o, p, nil, pl, "memory bus → memory store")
}

// scalePostgresRate runs the Runtime on a memory bus into the Postgres
// store of db, whose nodes are ids, as scaleMemoryRate does.
func scalePostgresRate(ctx context.Context, o options, p *progress, db *benchDB, ids []uuid.UUID) (float64, error) {
	c := contract.Default()
	mb, err := membus.New(membus.Config{})
	if err != nil {
		return 0, err
	}
	defer mb.Close()
	pgStore, err := postgres.NewStore(db.pool, postgres.StoreConfig{Schema: db.schema})
	if err != nil {
		return 0, err
	}
	store := &countingStore{Store: pgStore}
	pl := &pipeline{name: "scale-postgres", bus: newCountingBus(mb), store: &store.storeCounters, nodes: ids, beats: make([]int, len(ids)),
		topic: registrar.ReducerConfig(c).Topics.Heartbeat, pubs: o.runtime.publishers, perCall: 1}
	exec, err := registrationEffects(ctx, db, pl)
	if err != nil {
		return 0, err
	}
	pl.rt, err = registrar.NewRegistration(c, pl.bus, store, exec, registrar.RegistrationConfig{NoSweeper: true},
		registrar.WithGroup("bench-scale-postgres"))
	if err != nil {
		return 0, err
	}
	return runPipeline(ctx, o, p, db, pl, "memory bus → Postgres")
}

// runPipeline runs pl's Runtime, warms it up, and returns the median rate
// of its measured rounds.
func runPipeline(ctx context.Context, o options, p *progress, db *benchDB, pl *pipeline, what string) (_ float64, err error) {
	rctx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- pl.rt.Run(rctx) }()
	defer func() {
		stop()
		if rerr := <-runErr; rerr != nil && err == nil {
			err = fmt.Errorf("runtime: %w", rerr)
		}
	}()
	n := len(pl.nodes)
	if _, err := pl.round(ctx, db, max(minWarmUp, n/10), false); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	var rates []float64
	for r := range scaleRounds(o) {
		v, err := pl.round(ctx, db, n, true)
		if err != nil {
			return 0, fmt.Errorf("round %d: %w", r+1, err)
		}
		rates = append(rates, v)
		p.printf("scale %d: %s round %d/%d %s", n, what, r+1, scaleRounds(o), rate(v, "heartbeats/s"))
	}
	return median(rates), nil
}

// seedScale inserts n active projections of a realistic shape (version,
// capabilities, one endpoint, every id and deadline set) in one INSERT ...
// SELECT generate_series, with ids md5(prefix || i) as seed makes them. The
// first overdue of them have a liveness deadline 90 s after pgBase, the
// others a day later, so that a sweep at pgBase + 1 h finds exactly
// overdue. It vacuums and analyzes the table and returns the ids.
func (d *benchDB) seedScale(ctx context.Context, prefix string, n, overdue int) ([]uuid.UUID, error) {
	if _, err := d.pool.Exec(ctx, `INSERT INTO `+d.table+`
		(entity_id, current_state, node_type, node_version, capabilities, endpoints, ack_deadline, liveness_deadline,
		 last_heartbeat_at, last_applied_event_id, registered_at, updated_at, correlation_id, generation)
		SELECT md5($3 || i::text)::uuid, 'active', 'effect', '1.0.0', '{"postgres":false,"read":true,"write":true}',
		       jsonb_build_object('health', format('http://10.%s.%s.%s:8080/health', i >> 16 & 255, i >> 8 & 255, i & 255)),
		       $1::timestamptz - interval '1 minute',
		       $1::timestamptz + CASE WHEN i <= $4 THEN interval '90 seconds' ELSE interval '1 day' END,
		       $1::timestamptz, md5('event-' || i::text)::uuid, $1::timestamptz - interval '2 minutes', $1::timestamptz,
		       md5('correlation-' || i::text)::uuid, 1
		FROM generate_series(1, $2::int) AS i`, pgBase, n, prefix, overdue); err != nil {
		return nil, fmt.Errorf("seed %d projections: %w", n, err)
	}
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = seedID(prefix, i+1)
	}
	return ids, d.vacuum(ctx)
}

// sizes reads the projection table's sizes into pt, per row.
func (d *benchDB) sizes(ctx context.Context, pt *scalePoint) error {
	var total, heap, indexes int64
	if err := d.pool.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass), pg_relation_size($1::regclass), pg_indexes_size($1::regclass)`,
		d.table).Scan(&total, &heap, &indexes); err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	n := float64(pt.nodes)
	pt.tableBytes, pt.heapBytes, pt.indexBytes = float64(total)/n, float64(heap)/n, float64(indexes)/n
	return nil
}

// sweepNow is the time of the timed sweeps: an hour after pgBase, past the
// overdue projections' deadline and before the others'.
var sweepNow = pgBase.Add(time.Hour)

// sweep times one sweep of the Postgres store (its OverdueAcks and
// OverdueLiveness, with the sweeper's default limit) sp.sweeps times after
// a warm-up, and explains the statements the store ran, with the plan a
// first execution gets and the generic plan of a prepared statement.
func (d *benchDB) sweep(ctx context.Context, sp scaleParams, pt *scalePoint) error {
	rec := &recordingDB{DB: d.pool}
	store, err := postgres.NewStore(rec, postgres.StoreConfig{Schema: d.schema})
	if err != nil {
		return err
	}
	one := func() (int, error) {
		acks, err := store.OverdueAcks(ctx, sweepNow, registration.Overdue{}, registrar.DefaultSweepLimit)
		if err != nil {
			return 0, err
		}
		live, err := store.OverdueLiveness(ctx, sweepNow, registration.Overdue{}, registrar.DefaultSweepLimit)
		return len(acks) + len(live), err
	}
	for range 3 {
		if _, err := one(); err != nil {
			return err
		}
	}
	var times []float64
	for range sp.sweeps {
		start := time.Now()
		found, err := one()
		if err != nil {
			return err
		}
		times = append(times, float64(time.Since(start)))
		pt.found = found
	}
	pt.sweep = time.Duration(median(times)).Round(time.Microsecond)
	if want := min(sp.overdue, registrar.DefaultSweepLimit); pt.found != want {
		return fmt.Errorf("a sweep found %d overdue projections, want %d", pt.found, want)
	}
	pt.indexScan = len(rec.queries) == 2
	for i, q := range rec.queries {
		kind := []string{"acks", "liveness"}[i%2]
		index := []string{"registration_projections_ack_overdue", "registration_projections_liveness_overdue"}[i%2]
		for _, generic := range []bool{false, true} {
			nodes, err := d.explain(ctx, q, generic)
			if err != nil {
				return fmt.Errorf("explain the overdue %s scan: %w", kind, err)
			}
			mode := "custom"
			if generic {
				mode = "generic"
			}
			pt.plans = append(pt.plans, fmt.Sprintf("%s %s: %s", kind, mode, strings.Join(nodes, " > ")))
			if !slices.Contains(nodes, "Index Scan using "+index) && !slices.Contains(nodes, "Index Only Scan using "+index) {
				pt.indexScan = false
			}
			for _, nd := range nodes {
				if strings.HasPrefix(nd, "Seq Scan") || strings.HasPrefix(nd, "Bitmap Heap Scan") {
					pt.indexScan = false
				}
			}
		}
	}
	return nil
}

// explain returns the plan nodes of q, depth first, each as its type and
// the index it uses ("Index Scan using x"), from EXPLAIN (FORMAT JSON): the
// plan for q's arguments, or with generic the generic plan a prepared
// statement settles on.
func (d *benchDB) explain(ctx context.Context, q recordedQuery, generic bool) ([]string, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	mode := "force_custom_plan"
	if generic {
		mode = "force_generic_plan"
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		return nil, err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode") }()
	var out []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q.sql, q.args...).Scan(&out); err != nil {
		return nil, err
	}
	type plan struct {
		NodeType  string `json:"Node Type"`
		IndexName string `json:"Index Name"`
		Plans     []plan `json:"Plans"`
	}
	var doc []struct {
		Plan plan `json:"Plan"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc) != 1 {
		return nil, fmt.Errorf("EXPLAIN output %q: %w", out, errors.Join(err, errors.New("want one plan")))
	}
	var nodes []string
	var walk func(p plan)
	walk = func(p plan) {
		s := p.NodeType
		if p.IndexName != "" {
			s += " using " + p.IndexName
		}
		nodes = append(nodes, s)
		for _, c := range p.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return nodes, nil
}

// recordedQuery is one statement a recordingDB ran, and its arguments.
type recordedQuery struct {
	sql  string
	args []any
}

// recordingDB is a postgres.DB that remembers the first two queries it
// ran, so that the benchmark explains exactly what the store executes.
type recordingDB struct {
	postgres.DB
	queries []recordedQuery
}

// Query records sql and args (the first two calls) and runs them.
func (r *recordingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if len(r.queries) < 2 {
		r.queries = append(r.queries, recordedQuery{sql: sql, args: slices.Clone(args)})
	}
	return r.DB.Query(ctx, sql, args...)
}

// growth compares the figure at the largest size with the figure at the
// smallest and names the closest of the usual growth laws: flat, log
// (log n), sqrt, linear, n log n, or their inverses (falls ...).
func growth(n0, n1 int, y0, y1 float64) string {
	if y0 <= 0 || y1 <= 0 || math.IsNaN(y0) || math.IsNaN(y1) || n1 <= n0 {
		return "n/a"
	}
	ln := math.Log(float64(n1) / float64(n0))
	laws := []struct {
		name  string
		ratio float64
	}{
		{"flat", 1},
		{"log", math.Log(float64(n1)) / math.Log(float64(n0))},
		{"sqrt", math.Sqrt(float64(n1) / float64(n0))},
		{"linear", float64(n1) / float64(n0)},
		{"n log n", float64(n1) / float64(n0) * math.Log(float64(n1)) / math.Log(float64(n0))},
	}
	r := y1 / y0
	lr := math.Abs(math.Log(r))
	best, dist := "", math.Inf(1)
	for _, l := range laws {
		if d := math.Abs(lr - math.Log(l.ratio)); d < dist {
			best, dist = l.name, d
		}
	}
	if r < 1 && best != "flat" {
		best = "falls as 1/" + best
	}
	return fmt.Sprintf("%.2fx over %s nodes (n^%.2f): %s", r, sizeName(n1/n0)+"x", math.Log(r)/ln, best)
}

// sizeName writes a fleet size short: 10k, 1M.
func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

// scaleRows adds the curve to the table: per figure, one row per size and
// a row with its growth; the targets on the rows of the largest size.
func scaleRows(t *table, sp scaleParams, pts []scalePoint) {
	if len(pts) == 0 {
		return
	}
	first, last := pts[0], pts[len(pts)-1]
	type series struct {
		name   string
		figure func(scalePoint) string
		value  func(scalePoint) float64
		note   func(scalePoint) string
	}
	bytesFig := func(v float64) string { return fmt.Sprintf("%.0f B/node", v) }
	all := []series{
		{"Runtime, memory bus → memory store", func(p scalePoint) string { return rate(p.memRate, "heartbeats/s") },
			func(p scalePoint) float64 { return p.memRate }, func(scalePoint) string { return "1 heartbeat per node per round" }},
		{"Runtime, memory bus → Postgres", func(p scalePoint) string { return rate(p.pgRate, "heartbeats/s") },
			func(p scalePoint) float64 { return p.pgRate }, func(scalePoint) string { return "1 heartbeat per node per round" }},
		{"memory store, live heap", func(p scalePoint) string { return bytesFig(p.storeBytes) },
			func(p scalePoint) float64 { return p.storeBytes }, func(scalePoint) string { return "after GC, ÷ projections" }},
		{"Postgres table + indexes", func(p scalePoint) string { return bytesFig(p.tableBytes) },
			func(p scalePoint) float64 { return p.tableBytes },
			func(p scalePoint) string {
				return fmt.Sprintf("pg_total_relation_size ÷ rows: heap %.0f B, indexes %.0f B", p.heapBytes, p.indexBytes)
			}},
		{"overdue sweep (acks + liveness)", func(p scalePoint) string { return p.sweep.String() },
			func(p scalePoint) float64 { return float64(p.sweep) },
			func(p scalePoint) string {
				scan := "index scans, no Seq Scan"
				if !p.indexScan {
					scan = "NOT only index scans: " + strings.Join(p.plans, "; ")
				}
				return fmt.Sprintf("%d overdue found, median of %d; %s", p.found, sp.sweeps, scan)
			}},
	}
	bench := "scale"
	for _, s := range all {
		if s.name == "Runtime, memory bus → Postgres" && !sp.postgres {
			continue
		}
		for _, p := range pts {
			r := row{Bench: bench, Contender: fmt.Sprintf("%s, %s nodes", s.name, sizeName(p.nodes)), Figure: s.figure(p), Note: s.note(p)}
			bench = ""
			if p.nodes == last.nodes {
				switch s.name {
				case "memory store, live heap":
					r.Target = "≤ 2 KB"
					r.Result = t.check("memory store ≤ 2 KB live heap per projection", p.storeBytes <= maxStoreBytes)
				case "overdue sweep (acks + liveness)":
					ok := last.sweep <= sweepFactor*first.sweep
					for _, q := range pts {
						ok = ok && q.indexScan
					}
					r.Ratio = ratioText(float64(last.sweep)/float64(first.sweep), sizeName(first.nodes))
					r.Target = fmt.Sprintf("≤ %dx, index scan", sweepFactor)
					r.Result = t.check("sweep is an index scan whose cost follows the overdue count", ok)
				}
			}
			t.add(r)
		}
		if len(pts) > 1 {
			t.add(row{Contender: "  growth " + sizeName(first.nodes) + " → " + sizeName(last.nodes),
				Note: growth(first.nodes, last.nodes, s.value(first), s.value(last))})
		}
	}
}
