package registrationtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// ReaderSubject is one store under the read suite: its read API, and the
// effects that write it (as in [Subject]). Reader reads
// registration.DefaultDomain.
type ReaderSubject struct {
	Reader registration.Reader
	Upsert intent.IntentEffect
	Update intent.IntentEffect
}

// RunReader runs the conformance suite of registration.Reader. newStore
// must return an empty store each time it is called; it may register
// cleanups on t.
//
// It checks Get (found, not found, another domain's row), List with every
// filter alone and combined (the expected rows are computed here, from
// the rows written, by the documented rules: any of the states, the node
// type, a capability whose JSON value is true and nothing else,
// updated_at >= UpdatedSince at microsecond precision), the order by
// entity id byte by byte, paging with several page sizes and the cursor
// ("" exactly on the last page), the default and maximum limits, errors
// for invalid fields and bad cursors (ErrBadCursor), pagination while a
// writer changes and inserts rows (no row twice; every row that matched
// throughout exactly once), CountByState against List, and cancelled
// contexts.
func RunReader(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	t.Helper()
	t.Run("Get", func(t *testing.T) { testReaderGet(t, newStore) })
	t.Run("Filters", func(t *testing.T) { testReaderFilters(t, newStore) })
	t.Run("Limits", func(t *testing.T) { testReaderLimits(t, newStore) })
	t.Run("InvalidQueries", func(t *testing.T) { testReaderInvalid(t, newStore) })
	t.Run("PagingWhileWriting", func(t *testing.T) { testReaderConcurrent(t, newStore) })
	t.Run("CountByState", func(t *testing.T) { testReaderCount(t, newStore) })
	t.Run("Cancelled", func(t *testing.T) { testReaderCancelled(t, newStore) })
}

// readerHarness writes rows through a ReaderSubject's effects.
type readerHarness struct {
	*harness
	r registration.Reader
}

func newReaderHarness(t *testing.T, newStore func(t *testing.T) ReaderSubject) *readerHarness {
	s := newStore(t)
	if s.Reader == nil || s.Upsert == nil || s.Update == nil {
		t.Fatal("registrationtest: newStore returned a ReaderSubject without Reader, Upsert or Update")
	}
	return &readerHarness{harness: &harness{t: t, s: Subject{Upsert: s.Upsert, Update: s.Update}, ctx: t.Context()}, r: s.Reader}
}

func (h *readerHarness) get(id uuid.UUID) *registration.Projection {
	h.t.Helper()
	p, err := h.r.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Get %s: %v", id, err)
	}
	return p
}

// listAll pages through q with q.Limit and checks every page: at most the
// limit, ordered, Next "" exactly on the last page (a page after a full
// page must not be empty unless the walk ends there).
func (h *readerHarness) listAll(q registration.Query) []*registration.Projection {
	h.t.Helper()
	limit := q.Limit
	if limit == 0 {
		limit = registration.DefaultListLimit
	}
	var out []*registration.Projection
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			h.t.Fatalf("List %+v: more than 10000 pages", q)
		}
		p, err := h.r.List(h.ctx, q)
		if err != nil {
			h.t.Fatalf("List %+v: %v", q, err)
		}
		if len(p.Items) > limit {
			h.t.Fatalf("List %+v: %d items, above the limit %d", q, len(p.Items), limit)
		}
		if p.Next != "" && len(p.Items) < limit {
			h.t.Fatalf("List %+v: a short page (%d of %d) with a next cursor", q, len(p.Items), limit)
		}
		if pages > 0 && len(p.Items) == 0 {
			h.t.Fatalf("List %+v: page %d is empty: the page before it should have been the last", q, pages)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	for i := 1; i < len(out); i++ {
		if bytes.Compare(out[i-1].EntityID[:], out[i].EntityID[:]) >= 0 {
			h.t.Fatalf("List %+v: %s before %s: not in entity id byte order", q, out[i-1].EntityID, out[i].EntityID)
		}
	}
	return out
}

func testReaderGet(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	id, missing := uuid.New(), uuid.New()
	p := full(id, registration.StateActive)
	h.insert(p)
	if d := Diff(&p, h.get(id)); d != "" {
		t.Errorf("Get %s: %s", id, d)
	}
	other := full(uuid.New(), registration.StateActive)
	other.Domain = "other"
	h.insert(other)
	for _, id := range []uuid.UUID{missing, other.EntityID, uuid.Nil} {
		got, err := h.r.Get(h.ctx, id)
		if !errors.Is(err, registration.ErrNotFound) {
			t.Errorf("Get %s (absent from the domain) = %v, %v; want an error wrapping ErrNotFound", id, got, err)
		}
		if got != nil {
			t.Errorf("Get %s returned a projection with its error", id)
		}
	}
	// The projection Get returns is the caller's: changing it changes
	// nothing in the store.
	g := h.get(id)
	g.State, g.Endpoints["api"] = registration.StateRejected, "changed"
	if d := Diff(&p, h.get(id)); d != "" {
		t.Errorf("Get after changing a returned projection: %s", d)
	}
}

// readerCaps are the capabilities of the filter fixture, by row number:
// only a JSON true under the key matches.
var readerCaps = []string{
	`{"postgres": true}`,
	`{"postgres": "true"}`,
	`{"postgres": 1}`,
	`{"kafka": true, "postgres": false}`,
	`{}`,
	`{"kafka": true, "postgres": true}`,
	`{"nested": {"postgres": true}}`,
	`{"postgres": [true]}`,
	`{"kafka": true}`,
	`{"postgres": null}`,
	`{"ü": true}`,
}

// readerFixture writes n rows, whose states, node types, capabilities
// and updated_at vary independently, and rows of another domain; it
// returns the rows of the store's domain.
func readerFixture(h *readerHarness, n int) []registration.Projection {
	states := registration.States()
	var rows []registration.Projection
	for i := range n {
		p := minimal(uuid.New(), states[i%len(states)])
		p.NodeType = registration.NodeTypes[(i/3)%len(registration.NodeTypes)]
		p.Capabilities = json.RawMessage(readerCaps[(i/2)%len(readerCaps)])
		if i%9 != 4 { // some rows have no updated_at
			p.UpdatedAt = baseTime.Add(time.Duration(i) * time.Second)
			if i%2 == 1 {
				p.UpdatedAt = p.UpdatedAt.In(otherZone)
			}
		}
		p.Generation = int64(i)
		h.insert(p)
		rows = append(rows, p)
	}
	for i := range 5 {
		p := minimal(uuid.New(), registration.StateActive)
		p.Domain = "other"
		p.NodeType = "effect"
		p.Capabilities = json.RawMessage(`{"postgres": true}`)
		p.UpdatedAt = baseTime.Add(time.Duration(i) * time.Second)
		h.insert(p)
	}
	return rows
}

// expectMatch is the documented meaning of a Query's filters, written
// here without the package's helpers.
func expectMatch(q registration.Query, p registration.Projection) bool {
	if len(q.States) > 0 && !slices.Contains(q.States, p.State) {
		return false
	}
	if q.NodeType != "" && q.NodeType != p.NodeType {
		return false
	}
	if q.Capability != "" {
		var caps map[string]any
		if json.Unmarshal(p.Capabilities, &caps) != nil || caps[q.Capability] != true {
			return false
		}
	}
	if !q.UpdatedSince.IsZero() {
		if p.UpdatedAt.IsZero() || p.UpdatedAt.UnixMicro() < q.UpdatedSince.UnixMicro() {
			return false
		}
	}
	return true
}

func sortedIDs(rows []registration.Projection, keep func(registration.Projection) bool) []uuid.UUID {
	var ids []uuid.UUID
	for _, p := range rows {
		if keep(p) {
			ids = append(ids, p.EntityID)
		}
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

func idsOf(ps []*registration.Projection) []uuid.UUID {
	ids := make([]uuid.UUID, len(ps))
	for i, p := range ps {
		ids[i] = p.EntityID
	}
	return ids
}

func testReaderFilters(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	rows := readerFixture(h, 150)
	byID := map[uuid.UUID]registration.Projection{}
	for _, p := range rows {
		byID[p.EntityID] = p
	}
	// The boundary of UpdatedSince: row 41's updated_at, exactly, in
	// another zone, and a microsecond after it.
	at := rows[41].UpdatedAt
	if at.IsZero() {
		t.Fatal("registrationtest: the boundary row has no updated_at")
	}
	queries := []registration.Query{
		{},
		{States: []registration.State{registration.StateActive}},
		{States: []registration.State{registration.StateActive, registration.StateAwaitingAck, registration.StateActive}},
		{States: registration.States()},
		{NodeType: "effect"},
		{NodeType: "runtime_host"},
		{Capability: "postgres"},
		{Capability: "kafka"},
		{Capability: "ü"},
		{Capability: "absent"},
		{UpdatedSince: at},
		{UpdatedSince: at.In(otherZone)},
		{UpdatedSince: at.Add(time.Microsecond)},
		{UpdatedSince: at.Add(-time.Nanosecond)},
		{UpdatedSince: baseTime.Add(time.Hour)},
		{States: []registration.State{registration.StateActive, registration.StateRejected}, NodeType: "compute"},
		{NodeType: "effect", Capability: "postgres"},
		{States: []registration.State{registration.StateActive}, Capability: "kafka", UpdatedSince: baseTime.Add(30 * time.Second)},
		{States: []registration.State{registration.StateAccepted, registration.StateActive, registration.StatePendingRegistration},
			NodeType: "reducer", Capability: "postgres", UpdatedSince: baseTime.Add(10 * time.Second)},
	}
	for _, q := range queries {
		want := sortedIDs(rows, func(p registration.Projection) bool { return expectMatch(q, p) })
		for _, limit := range []int{1, 7, 0, registration.MaxListLimit} {
			q.Limit = limit
			got := h.listAll(q)
			if !slices.Equal(idsOf(got), want) {
				t.Errorf("List %+v: %d rows %v, want %d rows %v", q, len(got), idsOf(got), len(want), want)
				continue
			}
			for _, p := range got {
				w := byID[p.EntityID]
				if d := Diff(&w, p); d != "" {
					t.Errorf("List %+v: row %s: %s", q, p.EntityID, d)
				}
			}
		}
	}
	// The boundary is inclusive, and a microsecond later excludes the row.
	if !expectMatch(registration.Query{UpdatedSince: at}, rows[41]) || expectMatch(registration.Query{UpdatedSince: at.Add(time.Microsecond)}, rows[41]) {
		t.Fatal("registrationtest: the boundary fixture is wrong")
	}
	// A page that ends exactly at the last match has no next cursor: the
	// rows of one node type, with a limit of exactly their number.
	q := registration.Query{NodeType: "orchestrator"}
	want := sortedIDs(rows, func(p registration.Projection) bool { return expectMatch(q, p) })
	q.Limit = len(want)
	p, err := h.r.List(h.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != len(want) || p.Next != "" {
		t.Errorf("List of exactly %d matches with limit %d: %d items, next %q; want all of them and no next page", len(want), len(want), len(p.Items), p.Next)
	}
	// Pages may change their size along the walk.
	q = registration.Query{Limit: 5}
	p1, err := h.r.List(h.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := h.r.List(h.ctx, registration.Query{Limit: 11, Cursor: p1.Next})
	if err != nil {
		t.Fatal(err)
	}
	all := sortedIDs(rows, func(registration.Projection) bool { return true })
	if !slices.Equal(append(idsOf(p1.Items), idsOf(p2.Items)...), all[:16]) {
		t.Errorf("pages of 5 then 11: %v %v, want %v", idsOf(p1.Items), idsOf(p2.Items), all[:16])
	}
}

func testReaderLimits(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	n := registration.MaxListLimit + 3
	batchInsert(h, n)
	p, err := h.r.List(h.ctx, registration.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != registration.DefaultListLimit || p.Next == "" {
		t.Errorf("List with no limit: %d items, next %q; want %d and a next page", len(p.Items), p.Next, registration.DefaultListLimit)
	}
	p, err = h.r.List(h.ctx, registration.Query{Limit: registration.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != registration.MaxListLimit || p.Next == "" {
		t.Errorf("List with the maximum limit: %d items, next %q; want %d and a next page", len(p.Items), p.Next, registration.MaxListLimit)
	}
	last, err := h.r.List(h.ctx, registration.Query{Limit: registration.MaxListLimit, Cursor: p.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Items) != 3 || last.Next != "" {
		t.Errorf("the page after the maximum: %d items, next %q; want 3 and none", len(last.Items), last.Next)
	}
	if got := len(h.listAll(registration.Query{Limit: 1000})); got != n {
		t.Errorf("paging through %d rows: %d", n, got)
	}
	for _, limit := range []int{registration.MaxListLimit + 1, -1} {
		_, err := h.r.List(h.ctx, registration.Query{Limit: limit})
		if err == nil || !strings.Contains(err.Error(), "Limit") {
			t.Errorf("List with limit %d: %v; want an error naming Limit", limit, err)
		}
	}
}

// batchInsert inserts n active rows, in batches if the effect has them.
func batchInsert(h *readerHarness, n int) []uuid.UUID {
	h.t.Helper()
	ids := make([]uuid.UUID, n)
	ins := make([]intent.Intent, n)
	for i := range ids {
		ids[i] = uuid.New()
		p := minimal(ids[i], registration.StateActive)
		p.UpdatedAt = baseTime
		ins[i] = h.upsertIntent(p, 0, registration.StateNone)
	}
	if b, ok := h.s.Upsert.(intent.BatchEffect); ok {
		for start := 0; start < n; start += 250 {
			rs, err := b.ExecuteBatch(h.ctx, ins[start:min(start+250, n)])
			if err != nil {
				h.t.Fatal(err)
			}
			for _, r := range rs {
				if r.Status != intent.Applied {
					h.t.Fatalf("batch insert: %v (%s)", r.Status, r.Reason)
				}
			}
		}
		return ids
	}
	for _, in := range ins {
		if r := h.execute(in); r.Status != intent.Applied {
			h.t.Fatalf("insert: %v (%s)", r.Status, r.Reason)
		}
	}
	return ids
}

func testReaderInvalid(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	readerFixture(h, 20)
	for _, c := range []struct {
		q     registration.Query
		field string
	}{
		{registration.Query{States: []registration.State{"bogus"}}, "States"},
		{registration.Query{States: []registration.State{registration.StateActive, registration.StateNone}}, "States"},
		{registration.Query{NodeType: "Effect"}, "NodeType"},
		{registration.Query{NodeType: "gateway"}, "NodeType"},
	} {
		_, err := h.r.List(h.ctx, c.q)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("List %+v: %v; want an error naming %s", c.q, err, c.field)
		}
		if errors.Is(err, registration.ErrBadCursor) {
			t.Errorf("List %+v: %v wraps ErrBadCursor", c.q, err)
		}
	}
	p, err := h.r.List(h.ctx, registration.Query{NodeType: "effect", Limit: 1})
	if err != nil || p.Next == "" {
		t.Fatalf("List: %v, next %q; want a next page", err, p.Next)
	}
	for _, c := range []struct {
		name string
		q    registration.Query
	}{
		{"not base64", registration.Query{Cursor: "!!!"}},
		{"garbage", registration.Query{Cursor: "garbage"}},
		{"truncated", registration.Query{NodeType: "effect", Cursor: p.Next[:len(p.Next)-2]}},
		{"extended", registration.Query{NodeType: "effect", Cursor: p.Next + "AA"}},
		{"another node type", registration.Query{NodeType: "compute", Cursor: p.Next}},
		{"no filter", registration.Query{Cursor: p.Next}},
		{"another filter", registration.Query{NodeType: "effect", Capability: "postgres", Cursor: p.Next}},
	} {
		_, err := h.r.List(h.ctx, c.q)
		if !errors.Is(err, registration.ErrBadCursor) {
			t.Errorf("List with a cursor (%s): %v; want an error wrapping ErrBadCursor", c.name, err)
		}
	}
	// The cursor of a query is good for the same filters written another
	// way: states in another order, repeated; the time in another zone.
	since := baseTime.Add(-time.Hour)
	q := registration.Query{States: []registration.State{registration.StateActive, registration.StateAccepted}, UpdatedSince: since, Limit: 1}
	p, err = h.r.List(h.ctx, q)
	if err != nil || p.Next == "" {
		t.Fatalf("List %+v: %v, next %q", q, err, p.Next)
	}
	same := registration.Query{States: []registration.State{registration.StateAccepted, registration.StateActive, registration.StateAccepted},
		UpdatedSince: since.In(otherZone), Cursor: p.Next}
	if _, err := h.r.List(h.ctx, same); err != nil {
		t.Errorf("List with the cursor of the same filters written otherwise: %v", err)
	}
}

// testReaderConcurrent pages with limit 7 while a writer goroutine updates
// rows (states and updated_at) and inserts new ones between and during
// pages: no id twice, every row that matched throughout exactly once, and
// every listed row matched when it was read.
func testReaderConcurrent(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	ctx := h.ctx
	matching := []registration.State{registration.StateActive, registration.StateAwaitingAck}
	const n = 240
	var stable, flipping []uuid.UUID
	for i := range n {
		id := uuid.New()
		p := minimal(id, registration.StateActive)
		p.UpdatedAt = baseTime
		h.insert(p)
		if i%3 == 0 {
			flipping = append(flipping, id)
		} else {
			stable = append(stable, id)
		}
	}
	// The writer: stable rows get new updated_at values and move between
	// the two matching states; flipping rows move in and out of the
	// query; new rows are inserted, matching or not. Each step is a burst
	// the walker asks for (inserts among its writes), and the writer also
	// updates rows on its own while the walker reads.
	step := make(chan chan struct{})
	stop := make(chan struct{})
	done := make(chan error, 1)
	writes := 0
	go func() {
		rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // a reproducible workload, not a secret
		state := map[uuid.UUID]registration.State{}
		for _, id := range append(slices.Clone(stable), flipping...) {
			state[id] = registration.StateActive
		}
		now := baseTime
		write := func(insert bool) error {
			now = now.Add(time.Second)
			var in intent.Intent
			switch k := rng.IntN(4); {
			case k == 0 && insert:
				st := matching[rng.IntN(2)]
				if rng.IntN(3) == 0 {
					st = registration.StateLivenessExpired
				}
				p := minimal(uuid.New(), st)
				p.UpdatedAt = now
				in = h.upsertIntent(p, 0, registration.StateNone)
			case k == 1:
				id := flipping[rng.IntN(len(flipping))]
				next := registration.StateLivenessExpired
				if state[id] == next {
					next = registration.StateActive
				}
				in = h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColCurrentState | registration.ColUpdatedAt,
					Values: registration.Projection{State: next, UpdatedAt: now}, ExpectedState: state[id]})
				state[id] = next
			default:
				id := stable[rng.IntN(len(stable))]
				next := matching[rng.IntN(2)]
				in = h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColCurrentState | registration.ColUpdatedAt,
					Values: registration.Projection{State: next, UpdatedAt: now}, ExpectedState: state[id]})
				state[id] = next
			}
			eff := h.s.Update
			if in.Type == registration.IntentUpsert {
				eff = h.s.Upsert
			}
			r, err := eff.Execute(ctx, in)
			if err != nil {
				return err
			}
			if r.Status != intent.Applied {
				return fmt.Errorf("write %s: %v (%s)", in.Target, r.Status, r.Reason)
			}
			writes++
			return nil
		}
		for {
			select {
			case <-stop:
				done <- nil
				return
			case ack := <-step:
				for range 6 {
					if err := write(true); err != nil {
						close(ack)
						done <- err
						return
					}
				}
				close(ack)
			default:
				// Between bursts, updates only: inserts at the writer's
				// own pace would outrun the walk.
				if err := write(false); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	stopped := false
	stopWriter := func() error {
		if stopped {
			return nil
		}
		stopped = true
		close(stop)
		return <-done
	}
	defer func() { _ = stopWriter() }()
	seen := map[uuid.UUID]int{}
	q := registration.Query{States: matching, Limit: 7}
	pages := 0
	var last uuid.UUID
	for ; ; pages++ {
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
		p, err := h.r.List(ctx, q)
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		if len(p.Items) > 7 {
			t.Errorf("page %d: %d items", pages, len(p.Items))
		}
		for _, it := range p.Items {
			seen[it.EntityID]++
			if !slices.Contains(matching, it.State) {
				t.Errorf("page %d: %s in state %s does not match", pages, it.EntityID, it.State)
			}
			if pages > 0 && bytes.Compare(it.EntityID[:], last[:]) <= 0 {
				t.Errorf("page %d: %s is not after the last id of the page before, %s", pages, it.EntityID, last)
			}
			last = it.EntityID
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
		ack := make(chan struct{})
		select {
		case step <- ack:
			<-ack
		case err := <-done:
			stopped = true
			t.Fatalf("the writer stopped: %v", err)
		}
	}
	if err := stopWriter(); err != nil {
		t.Fatal(err)
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("%s listed %d times", id, c)
		}
	}
	for _, id := range stable {
		if seen[id] != 1 {
			t.Errorf("%s matched throughout the walk but was listed %d times", id, seen[id])
		}
	}
	if writes < 6*pages {
		t.Errorf("%d writes during %d pages: the writer did not run between pages", writes, pages)
	}
	t.Logf("%d pages, %d rows listed, %d writes meanwhile", pages+1, len(seen), writes)
}

func testReaderCount(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	rows := readerFixture(h, 90)
	counts, err := h.r.CountByState(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, st := range registration.States() {
		want := len(sortedIDs(rows, func(p registration.Projection) bool { return p.State == st }))
		listed := len(h.listAll(registration.Query{States: []registration.State{st}, Limit: 13}))
		if counts[st] != want || listed != want {
			t.Errorf("state %s: CountByState %d, List %d, rows written %d", st, counts[st], listed, want)
		}
		if c, ok := counts[st]; ok && c == 0 {
			t.Errorf("state %s: a zero count in the map", st)
		}
		total += counts[st]
	}
	if len(counts) != len(registration.States()) {
		t.Errorf("CountByState has %d states: %v", len(counts), counts)
	}
	if all := len(h.listAll(registration.Query{})); total != all || total != len(rows) {
		t.Errorf("CountByState totals %d, List has %d rows, %d written", total, all, len(rows))
	}
	empty := newReaderHarness(t, newStore)
	if c, err := empty.r.CountByState(empty.ctx); err != nil || len(c) != 0 {
		t.Errorf("CountByState of an empty store: %v, %v", c, err)
	}
}

func testReaderCancelled(t *testing.T, newStore func(t *testing.T) ReaderSubject) {
	h := newReaderHarness(t, newStore)
	id := uuid.New()
	h.insert(minimal(id, registration.StateActive))
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	if _, err := h.r.Get(ctx, id); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: %v", err)
	}
	if _, err := h.r.List(ctx, registration.Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context: %v", err)
	}
	if _, err := h.r.CountByState(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("CountByState with a cancelled context: %v", err)
	}
}
