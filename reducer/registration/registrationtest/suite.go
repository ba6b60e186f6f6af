package registrationtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Subject is one store under test: the store the workflow reads, and the
// effects that write it. Store reads registration.DefaultDomain. Upsert
// executes postgres.upsert_registration intents and Update
// postgres.update_registration intents; they may be one value (as
// effects/memory's Store is). If both also implement intent.BatchEffect,
// the suite checks their batches too.
type Subject struct {
	Store  registration.Store
	Upsert intent.IntentEffect
	Update intent.IntentEffect
}

// RunStore runs the conformance suite. newStore must return an empty
// store each time it is called; it may register cleanups on t.
//
// Every check compares with registration.ApplyUpsert and
// registration.ApplyUpdate, which define the guards: inserts and
// re-registrations, metadata refreshes of some columns, the expected-state
// guard (conflict), an upsert expecting a state on a missing row (conflict,
// no row inserted; one by one and batched), the column guards (conflict
// naming the column, NULL as IS NOT DISTINCT FROM), the heartbeat guard
// (skip), missing rows (conflict), the reducer's decisions whose rows
// another writer changed before their write (conflict, and deciding again
// sees the change), invalid payloads (permanent errors), Load of every
// column (NULL and zoned times, JSON), the overdue scans (filters, order,
// limit, paging with a cursor), batches against one-by-one execution on a
// random workload with repeated entities, and a property test against
// [Model] (pgregory.net/rapid; -rapid.checks sets how many runs).
func RunStore(t *testing.T, newStore func(t *testing.T) Subject) {
	t.Helper()
	t.Run("Upsert", func(t *testing.T) { testUpsert(t, newStore) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, newStore) })
	t.Run("Guards", func(t *testing.T) { testGuards(t, newStore) })
	t.Run("Overdue", func(t *testing.T) { testOverdue(t, newStore) })
	t.Run("InvalidPayloads", func(t *testing.T) { testInvalid(t, newStore) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, newStore) })
	t.Run("Model", func(t *testing.T) { testModel(t, newStore) })
	t.Run("LoadMany", func(t *testing.T) { testLoadMany(t, newStore) })
	t.Run("ListActive", func(t *testing.T) { testListActive(t, newStore) })
}

// testListActive checks, if the store lists active projections
// (registration.ActiveLister), that pages hold exactly the active rows of
// the store's domain, in byte order of the entity id, every column as Load
// returns it, and that paging with the last id of a page neither skips nor
// repeats a row.
func testListActive(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	al, ok := h.s.Store.(registration.ActiveLister)
	if !ok {
		t.Skip("the store does not implement registration.ActiveLister")
	}
	ids := []uuid.UUID{
		uuid.MustParse("f0000000-0000-4000-8000-000000000000"), uuid.MustParse("0f000000-0000-4000-8000-000000000000"),
		uuid.MustParse("7fffffff-ffff-4fff-bfff-ffffffffffff"), uuid.MustParse("80000000-0000-4000-8000-000000000000"),
		uuid.MustParse("00000000-0000-4000-8000-000000000001"),
	}
	for _, id := range ids {
		h.insert(full(id, registration.StateActive))
	}
	// Rows that must not be listed: other states, another domain.
	for _, st := range []registration.State{registration.StateAwaitingAck, registration.StateLivenessExpired, registration.StateAckTimedOut} {
		h.insert(full(uuid.New(), st))
	}
	other := full(uuid.New(), registration.StateActive)
	other.Domain = "other"
	h.insert(other)

	want := []uuid.UUID{ids[4], ids[1], ids[2], ids[3], ids[0]}
	got, err := al.ListActive(h.ctx, uuid.Nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListActive: %d projections, want %d", len(got), len(want))
	}
	for i, p := range got {
		if p.EntityID != want[i] {
			t.Errorf("ListActive[%d] = %s, want %s", i, p.EntityID, want[i])
		}
		if d := Diff(h.load(p.EntityID), p); d != "" {
			t.Errorf("ListActive and Load differ for %s: %s", p.EntityID, d)
		}
	}
	for _, size := range []int{1, 2, 3} {
		var seen []uuid.UUID
		after := uuid.Nil
		for range len(want) + 2 {
			page, err := al.ListActive(h.ctx, after, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > size {
				t.Fatalf("ListActive(limit %d) returned %d", size, len(page))
			}
			for _, p := range page {
				seen = append(seen, p.EntityID)
			}
			if len(page) < size {
				break
			}
			after = page[len(page)-1].EntityID
		}
		if !slices.Equal(seen, want) {
			t.Errorf("paging by %d: %v, want %v", size, seen, want)
		}
	}
	// A row that leaves active between pages is not listed after it left.
	expire := registration.UpdateRegistration{EntityID: ids[3], Set: registration.ColCurrentState,
		Values: registration.Projection{State: registration.StateLivenessExpired}, ExpectedState: registration.StateActive}
	wantStatus(t, "expiry", h.update(expire), intent.Applied)
	page, err := al.ListActive(h.ctx, ids[2], 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].EntityID != ids[0] {
		t.Errorf("ListActive after an expiry: %v, want only %s", page, ids[0])
	}
	if _, err := al.ListActive(h.ctx, uuid.Nil, 0); err == nil {
		t.Error("ListActive with limit 0 is not an error")
	}
}

// ManyLoader is the optional batch read a store may offer (the runtime's
// BatchLoader for registration projections).
type ManyLoader interface {
	LoadMany(ctx context.Context, entityIDs []uuid.UUID) (map[uuid.UUID]*registration.Projection, error)
}

// testLoadMany checks, if the store loads in batches, that LoadMany
// returns what Load returns, for present, absent and repeated ids.
func testLoadMany(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	ml, ok := h.s.Store.(ManyLoader)
	if !ok {
		t.Skip("the store does not implement LoadMany")
	}
	a, b, missing := uuid.New(), uuid.New(), uuid.New()
	h.insert(full(a, registration.StateActive))
	h.insert(minimal(b, registration.StateAwaitingAck))
	got, err := ml.LoadMany(h.ctx, []uuid.UUID{a, missing, b, a})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("LoadMany returned %d projections, want 2", len(got))
	}
	if _, ok := got[missing]; ok {
		t.Error("LoadMany returned a projection for an entity without one")
	}
	for _, id := range []uuid.UUID{a, b} {
		if d := Diff(h.load(id), got[id]); d != "" {
			t.Errorf("LoadMany and Load differ for %s: %s", id, d)
		}
	}
}

// harness runs intents on a subject and fails the test on errors.
type harness struct {
	t   *testing.T
	s   Subject
	ctx context.Context
}

func newHarness(t *testing.T, newStore func(t *testing.T) Subject) *harness {
	s := newStore(t)
	if s.Store == nil || s.Upsert == nil || s.Update == nil {
		t.Fatal("registrationtest: newStore returned a Subject without Store, Upsert or Update")
	}
	return &harness{t: t, s: s, ctx: t.Context()}
}

func (h *harness) corr() uuid.UUID { return uuid.New() }

func (h *harness) upsertIntent(p registration.Projection, cols registration.Columns, expected registration.State) intent.Intent {
	c := h.corr()
	return intent.Intent{Type: registration.IntentUpsert, Target: p.EntityID.String(), CorrelationID: c,
		Payload: &registration.UpsertRegistration{Projection: p, Columns: cols, ExpectedState: expected, CorrelationID: c}}
}

func (h *harness) updateIntent(u registration.UpdateRegistration) intent.Intent {
	u.CorrelationID = h.corr()
	if u.Domain == "" {
		u.Domain = registration.DefaultDomain
	}
	return intent.Intent{Type: registration.IntentUpdate, Target: u.EntityID.String(), CorrelationID: u.CorrelationID, Payload: &u}
}

func (h *harness) upsert(p registration.Projection, cols registration.Columns, expected registration.State) intent.Result {
	h.t.Helper()
	r, err := h.s.Upsert.Execute(h.ctx, h.upsertIntent(p, cols, expected))
	if err != nil {
		h.t.Fatalf("upsert %s: %v", p.EntityID, err)
	}
	return r
}

func (h *harness) update(u registration.UpdateRegistration) intent.Result {
	h.t.Helper()
	r, err := h.s.Update.Execute(h.ctx, h.updateIntent(u))
	if err != nil {
		h.t.Fatalf("update %s: %v", u.EntityID, err)
	}
	return r
}

func (h *harness) execute(in intent.Intent) intent.Result {
	h.t.Helper()
	r, err := h.s.Update.Execute(h.ctx, in)
	if err != nil {
		h.t.Fatalf("update %s: %v", in.Target, err)
	}
	return r
}

func (h *harness) load(id uuid.UUID) *registration.Projection {
	h.t.Helper()
	p, err := h.s.Store.Load(h.ctx, id)
	if err != nil {
		h.t.Fatalf("load %s: %v", id, err)
	}
	return p
}

// insert writes p as a new row and fails the test if that does not apply.
func (h *harness) insert(p registration.Projection) {
	h.t.Helper()
	if r := h.upsert(p, 0, registration.StateNone); r.Status != intent.Applied {
		h.t.Fatalf("insert %s: %v (%s)", p.EntityID, r.Status, r.Reason)
	}
}

func (h *harness) wantRow(id uuid.UUID, want *registration.Projection) {
	h.t.Helper()
	if d := Diff(want, h.load(id)); d != "" {
		h.t.Errorf("row %s: %s", id, d)
	}
}

func wantStatus(t *testing.T, what string, got intent.Result, want intent.Status) {
	t.Helper()
	if got.Status != want {
		t.Errorf("%s: status %v (%q), want %v", what, got.Status, got.Reason, want)
	}
	if want != intent.Applied && got.Reason == "" {
		t.Errorf("%s: status %v without a reason", what, got.Status)
	}
}

// full returns a projection with every column set, times in two zones.
func full(id uuid.UUID, st registration.State) registration.Projection {
	return registration.Projection{
		EntityID: id, Domain: registration.DefaultDomain, State: st,
		NodeType: "effect", NodeVersion: "1.2.3",
		Capabilities: json.RawMessage(`{"postgres": true, "nested": {"b": [1, 2.5, "x"], "a": null}, "ü": "✓"}`),
		Endpoints:    map[string]string{"api": "http://node:8080/api", "health": "http://node:8080/health"},
		AckDeadline:  baseTime.Add(30 * time.Second), LivenessDeadline: baseTime.Add(60 * time.Second).In(otherZone),
		LastHeartbeatAt: baseTime.Add(10 * time.Second), AckTimeoutEmittedAt: baseTime.Add(31 * time.Second),
		LivenessTimeoutEmittedAt: baseTime.Add(61 * time.Second), LastAppliedEventID: idPool[1],
		RegisteredAt: baseTime.In(otherZone), UpdatedAt: baseTime.Add(5 * time.Second), CorrelationID: idPool[0],
		Generation: 3,
	}
}

// minimal returns a projection with only the required columns set.
func minimal(id uuid.UUID, st registration.State) registration.Projection {
	return registration.Projection{EntityID: id, Domain: registration.DefaultDomain, State: st, NodeType: "compute"}
}

func testUpsert(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	t.Run("insert round-trips every column", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		p := full(id, registration.StateAwaitingAck)
		wantStatus(t, "insert", h.upsert(p, 0, registration.StateNone), intent.Applied)
		h.wantRow(id, &p)
	})
	t.Run("insert round-trips NULL times and empty JSON", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		p := minimal(id, registration.StatePendingRegistration)
		wantStatus(t, "insert", h.upsert(p, registration.AllColumns, registration.StateNone), intent.Applied)
		got := h.load(id)
		if d := Diff(&p, got); d != "" {
			t.Errorf("row: %s", d)
		}
		if got != nil && (!got.AckDeadline.IsZero() || !got.UpdatedAt.IsZero() || got.CorrelationID != uuid.Nil) {
			t.Errorf("NULL columns loaded as %v, %v, %v", got.AckDeadline, got.UpdatedAt, got.CorrelationID)
		}
	})
	t.Run("load of a missing row is nil", func(t *testing.T) {
		h := *h
		h.t = t
		if p := h.load(uuid.New()); p != nil {
			t.Errorf("load of a missing row: %+v", p)
		}
	})
	t.Run("existing row when the decision saw none is a conflict", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		p := full(id, registration.StateAwaitingAck)
		h.insert(p)
		q := minimal(id, registration.StateAwaitingAck)
		wantStatus(t, "second insert", h.upsert(q, 0, registration.StateNone), intent.Conflict)
		h.wantRow(id, &p)
	})
	t.Run("wrong expected state is a conflict", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		p := full(id, registration.StateAwaitingAck)
		h.insert(p)
		q := full(id, registration.StateActive)
		q.NodeVersion = "9.9.9"
		wantStatus(t, "upsert expecting active", h.upsert(q, 0, registration.StateActive), intent.Conflict)
		wantStatus(t, "upsert expecting liveness_expired", h.upsert(q, registration.ColNodeVersion, registration.StateLivenessExpired), intent.Conflict)
		h.wantRow(id, &p)
	})
	t.Run("missing row when the decision saw one is a conflict", func(t *testing.T) {
		testUpsertMissingRow(t, h)
	})
	for _, cols := range []registration.Columns{0, registration.AllColumns} {
		t.Run("re-registration clears the timeout markers/columns="+cols.String(), func(t *testing.T) {
			h := *h
			h.t = t
			id := uuid.New()
			old := full(id, registration.StateAckTimedOut)
			old.Generation = 1
			h.insert(old)
			next := full(id, registration.StateAwaitingAck)
			next.AckTimeoutEmittedAt, next.LivenessTimeoutEmittedAt, next.LastHeartbeatAt = time.Time{}, time.Time{}, time.Time{}
			next.Generation = 2
			next.AckDeadline = baseTime.Add(time.Hour)
			wantStatus(t, "re-registration", h.upsert(next, cols, registration.StateAckTimedOut), intent.Applied)
			h.wantRow(id, &next)
		})
	}
	t.Run("metadata refresh writes only its columns", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		old := full(id, registration.StateActive)
		h.insert(old)
		cols := registration.ColNodeType | registration.ColNodeVersion | registration.ColCapabilities |
			registration.ColEndpoints | registration.ColUpdatedAt
		refresh := minimal(id, registration.StateRejected) // columns outside cols must not be written
		refresh.NodeType, refresh.NodeVersion = "reducer", "2.0.0"
		refresh.Capabilities = json.RawMessage(`{"new":[true]}`)
		refresh.Endpoints = map[string]string{"api": "http://other:1"}
		refresh.UpdatedAt = baseTime.Add(time.Hour)
		wantStatus(t, "refresh", h.upsert(refresh, cols, registration.StateActive), intent.Applied)
		want := old
		want.NodeType, want.NodeVersion, want.Capabilities = refresh.NodeType, refresh.NodeVersion, refresh.Capabilities
		want.Endpoints, want.UpdatedAt = refresh.Endpoints, refresh.UpdatedAt
		h.wantRow(id, &want)
	})
	t.Run("node_version is stored whole, prerelease and build included", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		p := full(id, registration.StateAwaitingAck)
		p.NodeVersion = "1.2.3-rc.1+build.5"
		wantStatus(t, "insert", h.upsert(p, 0, registration.StateNone), intent.Applied)
		h.wantRow(id, &p)
		// The longest version bus.ParseVersion accepts.
		// An update guarded by that version writes the longest version
		// bus.ParseVersion accepts, 256 bytes.
		old := p.NodeVersion
		p.NodeVersion = "1.2.3-" + strings.Repeat("a.", 62) + "bcde+" + strings.Repeat("x-", 60) + "y"
		p.UpdatedAt = p.UpdatedAt.Add(time.Second)
		wantStatus(t, "update", h.update(registration.UpdateRegistration{EntityID: id,
			Set: registration.ColNodeVersion | registration.ColUpdatedAt, Values: p, ExpectedState: registration.StateAwaitingAck,
			Guard: registration.ColNodeVersion, Expected: registration.Projection{NodeVersion: old}}), intent.Applied)
		h.wantRow(id, &p)
	})
	t.Run("rows of another domain are separate and invisible to Load", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		other := full(id, registration.StateActive)
		other.Domain = "registrationtest-other"
		wantStatus(t, "insert in another domain", h.upsert(other, 0, registration.StateNone), intent.Applied)
		if p := h.load(id); p != nil {
			t.Fatalf("Load returned a row of domain %q", p.Domain)
		}
		mine := minimal(id, registration.StateAwaitingAck)
		wantStatus(t, "insert in the store's domain", h.upsert(mine, 0, registration.StateNone), intent.Applied)
		h.wantRow(id, &mine)
	})
}

func testUpdate(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	sub := func(name string, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			h := *h
			h.t = t
			f(&h)
		})
	}
	sub("state change in the expected state writes its columns", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateAwaitingAck)
		h.insert(old)
		set := registration.ColCurrentState | registration.ColLivenessDeadline | registration.ColLastAppliedEventID | registration.ColUpdatedAt
		v := registration.Projection{State: registration.StateActive, LivenessDeadline: baseTime.Add(2 * time.Hour),
			LastAppliedEventID: idPool[2], UpdatedAt: baseTime.Add(time.Hour), NodeType: "not written"}
		wantStatus(h.t, "ack", h.update(registration.UpdateRegistration{EntityID: id, Set: set, Values: v, ExpectedState: registration.StateAwaitingAck}), intent.Applied)
		want := old
		want.State, want.LivenessDeadline, want.LastAppliedEventID, want.UpdatedAt = v.State, v.LivenessDeadline, v.LastAppliedEventID, v.UpdatedAt
		h.wantRow(id, &want)
	})
	sub("no expected state applies in any state", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateRejected)
		h.insert(old)
		wantStatus(h.t, "update", h.update(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion,
			Values: registration.Projection{NodeVersion: "3.0.0"}}), intent.Applied)
		want := old
		want.NodeVersion = "3.0.0"
		h.wantRow(id, &want)
	})
	sub("wrong expected state is a conflict", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateActive)
		h.insert(old)
		wantStatus(h.t, "update", h.update(registration.UpdateRegistration{EntityID: id,
			Set:           registration.ColCurrentState | registration.ColAckTimeoutEmittedAt,
			Values:        registration.Projection{State: registration.StateAckTimedOut, AckTimeoutEmittedAt: baseTime.Add(time.Hour)},
			ExpectedState: registration.StateAwaitingAck}), intent.Conflict)
		h.wantRow(id, &old)
	})
	sub("missing row is a conflict", func(h *harness) {
		id := uuid.New()
		wantStatus(h.t, "update", h.update(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion,
			Values: registration.Projection{NodeVersion: "1"}}), intent.Conflict)
		wantStatus(h.t, "heartbeat", h.update(registration.UpdateRegistration{EntityID: id, Set: heartbeatColumns,
			Values: registration.Projection{LastHeartbeatAt: baseTime}, ExpectedState: registration.StateActive}), intent.Conflict)
		h.wantRow(id, nil)
	})
	hb := baseTime.Add(10 * time.Second)
	for _, c := range []struct {
		name     string
		stored   time.Time
		next     time.Time
		expected registration.State
		want     intent.Status
	}{
		{"heartbeat onto NULL applies", time.Time{}, hb, registration.StateActive, intent.Applied},
		{"newer heartbeat applies", hb, hb.Add(time.Microsecond), registration.StateActive, intent.Applied},
		{"equal heartbeat is skipped", hb, hb, registration.StateActive, intent.Skipped},
		{"equal heartbeat in another zone is skipped", hb, hb.In(otherZone), registration.StateActive, intent.Skipped},
		{"older heartbeat is skipped", hb, hb.Add(-time.Second), registration.StateActive, intent.Skipped},
		{"older heartbeat without expected state is skipped", hb, hb.Add(-time.Second), registration.StateNone, intent.Skipped},
		{"NULL heartbeat onto a stored one is skipped", hb, time.Time{}, registration.StateActive, intent.Skipped},
		{"NULL heartbeat onto NULL applies", time.Time{}, time.Time{}, registration.StateActive, intent.Applied},
		{"failed state guard wins over a failed heartbeat guard", hb, hb.Add(-time.Second), registration.StateAwaitingAck, intent.Conflict},
		{"failed state guard with a newer heartbeat", hb, hb.Add(time.Second), registration.StateAckReceived, intent.Conflict},
	} {
		sub(c.name, func(h *harness) {
			id := uuid.New()
			old := full(id, registration.StateActive)
			old.LastHeartbeatAt = c.stored
			h.insert(old)
			v := registration.Projection{LastHeartbeatAt: c.next, LivenessDeadline: c.next.Add(90 * time.Second), UpdatedAt: baseTime.Add(time.Hour)}
			u := registration.UpdateRegistration{EntityID: id, Set: heartbeatColumns, Values: v, ExpectedState: c.expected}
			wantStatus(h.t, "heartbeat", h.update(u), c.want)
			want := old
			if c.want == intent.Applied {
				want.LastHeartbeatAt, want.LivenessDeadline, want.UpdatedAt = v.LastHeartbeatAt, v.LivenessDeadline, v.UpdatedAt
			}
			h.wantRow(id, &want)
		})
	}
	sub("columns set to NULL and empty", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateActive)
		h.insert(old)
		set := registration.ColAckDeadline | registration.ColLivenessTimeoutEmittedAt | registration.ColCorrelationID |
			registration.ColLastAppliedEventID | registration.ColCapabilities | registration.ColEndpoints | registration.ColNodeVersion
		wantStatus(h.t, "update", h.update(registration.UpdateRegistration{EntityID: id, Set: set, ExpectedState: registration.StateActive}), intent.Applied)
		want := old
		want.AckDeadline, want.LivenessTimeoutEmittedAt, want.CorrelationID, want.LastAppliedEventID = time.Time{}, time.Time{}, uuid.Nil, uuid.Nil
		want.Capabilities, want.Endpoints, want.NodeVersion = nil, nil, ""
		h.wantRow(id, &want)
	})
	sub("every column", func(h *harness) {
		id := uuid.New()
		h.insert(minimal(id, registration.StateAwaitingAck))
		v := full(uuid.Nil, registration.StateActive)
		v.Domain = ""
		wantStatus(h.t, "update", h.update(registration.UpdateRegistration{EntityID: id, Set: registration.AllColumns, Values: v,
			ExpectedState: registration.StateAwaitingAck}), intent.Applied)
		want := v
		want.EntityID, want.Domain = id, registration.DefaultDomain
		h.wantRow(id, &want)
	})
	sub("an update writes only its JSON column", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateActive)
		h.insert(old)
		v := registration.Projection{Capabilities: json.RawMessage(`{"only":"capabilities"}`), Endpoints: map[string]string{"not": "written"}}
		wantStatus(h.t, "update capabilities", h.update(registration.UpdateRegistration{EntityID: id, Set: registration.ColCapabilities, Values: v}), intent.Applied)
		want := old
		want.Capabilities = v.Capabilities
		h.wantRow(id, &want)
		v = registration.Projection{Capabilities: json.RawMessage(`{"not":"written"}`), Endpoints: map[string]string{"only": "http://endpoints"}}
		wantStatus(h.t, "update endpoints", h.update(registration.UpdateRegistration{EntityID: id, Set: registration.ColEndpoints, Values: v}), intent.Applied)
		want.Endpoints = v.Endpoints
		h.wantRow(id, &want)
	})
	sub("JSON columns round-trip", func(h *harness) {
		id := uuid.New()
		old := minimal(id, registration.StateActive)
		h.insert(old)
		for _, caps := range capsPool {
			v := registration.Projection{Capabilities: caps, Endpoints: map[string]string{"api": "http://x:1", "ws": "ws://y/z?q=1&r=ü"}}
			wantStatus(h.t, "update "+string(caps), h.update(registration.UpdateRegistration{EntityID: id,
				Set: registration.ColCapabilities | registration.ColEndpoints, Values: v}), intent.Applied)
			want := old
			want.Capabilities, want.Endpoints = v.Capabilities, v.Endpoints
			h.wantRow(id, &want)
		}
	})
}

func testOverdue(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	now := baseTime.Add(time.Hour)
	row := func(st registration.State, mut func(p *registration.Projection)) uuid.UUID {
		id := uuid.New()
		p := minimal(id, st)
		mut(&p)
		if p.Domain != registration.DefaultDomain {
			wantStatus(t, "insert", h.upsert(p, 0, registration.StateNone), intent.Applied)
		} else {
			h.insert(p)
		}
		return id
	}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	a1 := row(registration.StateAwaitingAck, func(p *registration.Projection) { p.AckDeadline = ago(10 * time.Minute) })
	a2 := row(registration.StateAccepted, func(p *registration.Projection) { p.AckDeadline = ago(20 * time.Minute).In(otherZone) })
	a3 := row(registration.StateAwaitingAck, func(p *registration.Projection) { p.AckDeadline = ago(time.Microsecond) })
	for _, mut := range []struct {
		st  registration.State
		mut func(p *registration.Projection)
	}{
		{registration.StateAwaitingAck, func(p *registration.Projection) {
			p.AckDeadline, p.AckTimeoutEmittedAt = ago(time.Minute), ago(time.Second)
		}},
		{registration.StateAwaitingAck, func(p *registration.Projection) { p.AckDeadline = now }},
		{registration.StateAwaitingAck, func(p *registration.Projection) { p.AckDeadline = now.Add(time.Minute) }},
		{registration.StateActive, func(p *registration.Projection) { p.AckDeadline = ago(30 * time.Minute) }},
		{registration.StateAckTimedOut, func(p *registration.Projection) { p.AckDeadline = ago(50 * time.Minute) }},
		{registration.StateAckReceived, func(p *registration.Projection) { p.AckDeadline = ago(50 * time.Minute) }},
		{registration.StateAwaitingAck, func(p *registration.Projection) {}},
		{registration.StateAwaitingAck, func(p *registration.Projection) {
			p.AckDeadline, p.Domain = ago(40*time.Minute), "registrationtest-other"
		}},
	} {
		row(mut.st, mut.mut)
	}
	l1 := row(registration.StateActive, func(p *registration.Projection) { p.LivenessDeadline = ago(3 * time.Minute) })
	l2 := row(registration.StateActive, func(p *registration.Projection) {
		p.LivenessDeadline, p.AckDeadline = ago(7*time.Minute), ago(time.Hour)
	})
	l3 := row(registration.StateActive, func(p *registration.Projection) { p.LivenessDeadline = ago(time.Second).In(otherZone) })
	for _, mut := range []struct {
		st  registration.State
		mut func(p *registration.Projection)
	}{
		{registration.StateActive, func(p *registration.Projection) {
			p.LivenessDeadline, p.LivenessTimeoutEmittedAt = ago(time.Minute), ago(time.Second)
		}},
		{registration.StateLivenessExpired, func(p *registration.Projection) { p.LivenessDeadline = ago(time.Hour) }},
		{registration.StateAwaitingAck, func(p *registration.Projection) { p.LivenessDeadline = ago(time.Hour) }},
		{registration.StateActive, func(p *registration.Projection) { p.LivenessDeadline = now }},
		{registration.StateActive, func(p *registration.Projection) { p.LivenessDeadline = now.Add(time.Second) }},
		{registration.StateActive, func(p *registration.Projection) {}},
		{registration.StateActive, func(p *registration.Projection) {
			p.LivenessDeadline, p.Domain = ago(time.Hour), "registrationtest-other"
		}},
	} {
		row(mut.st, mut.mut)
	}
	type scan func(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error)
	same := func(got, want []registration.Overdue) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range want {
			if got[i].EntityID != want[i].EntityID || !got[i].Deadline.Equal(want[i].Deadline) {
				return false
			}
		}
		return true
	}
	check := func(name string, f scan, want []registration.Overdue) {
		for limit := 1; limit <= len(want)+1; limit++ {
			got, err := f(h.ctx, now, registration.Overdue{}, limit)
			if err != nil {
				t.Fatalf("%s(limit %d): %v", name, limit, err)
			}
			if w := want[:min(limit, len(want))]; !same(got, w) {
				t.Errorf("%s(limit %d): got %v, want %v", name, limit, got, w)
			}
			// Paging with the last entity of each page as the cursor
			// reads every entity once, in order, and ends with a short
			// page.
			var all []registration.Overdue
			var after registration.Overdue
			for page := 0; ; page++ {
				got, err := f(h.ctx, now, after, limit)
				if err != nil {
					t.Fatalf("%s(after %v, limit %d): %v", name, after, limit, err)
				}
				all = append(all, got...)
				if len(got) < limit || page > len(want) {
					break
				}
				after = got[len(got)-1]
			}
			if !same(all, want) {
				t.Errorf("%s: pages of %d: %v, want %v", name, limit, all, want)
			}
		}
		// A cursor need not be an entity: it is a position in the order.
		for i, w := range want {
			between := registration.Overdue{EntityID: uuid.Max, Deadline: w.Deadline.Add(-time.Microsecond)}
			if got, err := f(h.ctx, now, between, len(want)); err != nil || !same(got, want[i:]) {
				t.Errorf("%s(after %v): %v, %v; want %v", name, between, got, err, want[i:])
			}
			sameDeadline := registration.Overdue{EntityID: uuid.Nil, Deadline: w.Deadline.In(otherZone)}
			if got, err := f(h.ctx, now, sameDeadline, len(want)); err != nil || !same(got, want[i:]) {
				t.Errorf("%s(after %v): %v, %v; want %v", name, sameDeadline, got, err, want[i:])
			}
		}
		if _, err := f(h.ctx, now, registration.Overdue{}, 0); err == nil {
			t.Errorf("%s: limit 0 is not an error", name)
		}
	}
	check("OverdueAcks", h.s.Store.OverdueAcks, []registration.Overdue{
		{EntityID: a2, Deadline: ago(20 * time.Minute)}, {EntityID: a1, Deadline: ago(10 * time.Minute)},
		{EntityID: a3, Deadline: ago(time.Microsecond)},
	})
	check("OverdueLiveness", h.s.Store.OverdueLiveness, []registration.Overdue{
		{EntityID: l2, Deadline: ago(7 * time.Minute)}, {EntityID: l1, Deadline: ago(3 * time.Minute)},
		{EntityID: l3, Deadline: ago(time.Second)},
	})
	t.Run("ties are ordered by entity id, bytewise", func(t *testing.T) {
		h := newHarness(t, newStore)
		tie := now.Add(-90 * time.Minute) // before every other overdue ack
		ids := []uuid.UUID{uuid.MustParse("f0000000-0000-4000-8000-000000000000"), uuid.MustParse("0f000000-0000-4000-8000-000000000000"),
			uuid.MustParse("7fffffff-ffff-4fff-bfff-ffffffffffff"), uuid.MustParse("80000000-0000-4000-8000-000000000000")}
		for _, id := range ids {
			p := minimal(id, registration.StateAwaitingAck)
			p.AckDeadline = tie
			h.insert(p)
		}
		got, err := h.s.Store.OverdueAcks(h.ctx, now, registration.Overdue{}, 4)
		if err != nil {
			t.Fatal(err)
		}
		want := []registration.Overdue{{EntityID: ids[1], Deadline: tie}, {EntityID: ids[2], Deadline: tie},
			{EntityID: ids[3], Deadline: tie}, {EntityID: ids[0], Deadline: tie}}
		if !same(got, want) {
			t.Errorf("OverdueAcks with tied deadlines: %v, want %v", got, want)
		}
		got, err = h.s.Store.OverdueAcks(h.ctx, now, want[1], 2)
		if err != nil || !same(got, want[2:]) {
			t.Errorf("OverdueAcks after %v: %v, %v; want %v", want[1], got, err, want[2:])
		}
	})
	t.Run("a heartbeat moves the entity out of the liveness scan", func(t *testing.T) {
		h := *h
		h.t = t
		hb := now.Add(-time.Second)
		wantStatus(t, "heartbeat", h.update(registration.UpdateRegistration{EntityID: l2, Set: heartbeatColumns, ExpectedState: registration.StateActive,
			Values: registration.Projection{LastHeartbeatAt: hb, LivenessDeadline: hb.Add(90 * time.Second), UpdatedAt: hb}}), intent.Applied)
		got, err := h.s.Store.OverdueLiveness(h.ctx, now, registration.Overdue{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].EntityID != l1 || got[1].EntityID != l3 {
			t.Errorf("OverdueLiveness after a heartbeat of %s: %v, want %s then %s", l2, got, l1, l3)
		}
	})
	t.Run("an emitted timeout leaves the scan", func(t *testing.T) {
		h := *h
		h.t = t
		wantStatus(t, "ack timeout", h.update(registration.UpdateRegistration{EntityID: a2,
			Set: registration.ColCurrentState | registration.ColAckTimeoutEmittedAt, ExpectedState: registration.StateAccepted,
			Values: registration.Projection{State: registration.StateAckTimedOut, AckTimeoutEmittedAt: now}}), intent.Applied)
		got, err := h.s.Store.OverdueAcks(h.ctx, now, registration.Overdue{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].EntityID != a1 || got[1].EntityID != a3 {
			t.Errorf("OverdueAcks after the timeout of %s: %v, want %s then %s", a2, got, a1, a3)
		}
	})
}

func testInvalid(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	id := uuid.New()
	old := full(id, registration.StateActive)
	h.insert(old)
	bad := func(name string, eff intent.IntentEffect, in intent.Intent) {
		t.Run(name, func(t *testing.T) {
			r, err := eff.Execute(h.ctx, in)
			if err == nil {
				t.Fatalf("no error; result %v (%s)", r.Status, r.Reason)
			}
			if !intent.IsPermanent(err) {
				t.Errorf("error is not permanent: %v", err)
			}
			if intent.IsRetryable(err) {
				t.Errorf("error is retryable: %v", err)
			}
			h := *h
			h.t = t
			h.wantRow(id, &old)
		})
	}
	bad("upsert with a payload of another type", h.s.Upsert,
		intent.Intent{Type: registration.IntentUpsert, Target: id.String(), Payload: "not a payload"})
	bad("update with a payload of another type", h.s.Update,
		intent.Intent{Type: registration.IntentUpdate, Target: id.String(), Payload: struct{ ID uuid.UUID }{id}})
	bad("update with a nil payload", h.s.Update, intent.Intent{Type: registration.IntentUpdate, Target: id.String()})
	bad("update with an empty column set", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, ExpectedState: registration.StateActive}))
	bad("update with a column outside the allowlist", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.AllColumns + 1, Values: full(id, registration.StateActive)}))
	bad("update to an invalid state", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColCurrentState,
			Values: registration.Projection{State: "asleep"}, ExpectedState: registration.StateActive}))
	bad("update expecting an invalid state", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion, ExpectedState: "ACTIVE"}))
	bad("update guarding current_state", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion,
			Guard: registration.ColCurrentState, Expected: old}))
	bad("update guarding capabilities", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion,
			Guard: registration.ColCapabilities | registration.ColGeneration, Expected: old}))
	bad("update guarding a column outside the allowlist", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion,
			Guard: registration.AllColumns + 1, Expected: old}))
	bad("update of the nil entity", h.s.Update,
		h.updateIntent(registration.UpdateRegistration{Set: registration.ColNodeVersion}))
	noType := full(id, registration.StateActive)
	noType.NodeType = ""
	bad("upsert without node type", h.s.Upsert, h.upsertIntent(noType, 0, registration.StateActive))
	noDomain := full(id, registration.StateActive)
	noDomain.Domain = ""
	bad("upsert without domain", h.s.Upsert, h.upsertIntent(noDomain, 0, registration.StateActive))
	badState := full(id, "sleeping")
	bad("upsert of an invalid state", h.s.Upsert, h.upsertIntent(badState, 0, registration.StateActive))
}

// metadataColumns and registrationColumns are what the reducer's metadata
// refresh of an active node and its re-registration of a row in a
// retriable state write.
const (
	metadataColumns = registration.ColNodeType | registration.ColNodeVersion | registration.ColCapabilities |
		registration.ColEndpoints | registration.ColUpdatedAt
	registrationColumns = registration.AllColumns &^ registration.ColLastHeartbeatAt
)

// missingRowUpserts are upserts whose decisions saw a row, by the state
// they expect: the metadata refresh of an active node, re-registrations
// from retriable states.
var missingRowUpserts = []struct {
	name     string
	expected registration.State
	cols     registration.Columns
}{
	{"metadata refresh", registration.StateActive, metadataColumns},
	{"every column", registration.StateActive, 0},
	{"re-registration", registration.StateAckTimedOut, registrationColumns},
	{"re-registration", registration.StateLivenessExpired, registrationColumns},
	{"every column", registration.StateRejected, registration.AllColumns},
}

// testUpsertMissingRow checks that an upsert whose ExpectedState is not
// StateNone (its decision saw a row in that state) on a row that does not
// exist (another writer removed it) is a conflict naming the missing row,
// and creates no row: one by one, and in batches among upserts that apply,
// as registration.ApplyUpsert decides.
func testUpsertMissingRow(t *testing.T, h *harness) {
	for _, c := range missingRowUpserts {
		t.Run("expecting "+c.expected.String()+"/"+c.name, func(t *testing.T) {
			h := *h
			h.t = t
			id := uuid.New()
			p := full(id, registration.StateActive)
			if c.expected != registration.StateActive {
				p.State = registration.StateAwaitingAck
			}
			r := h.upsert(p, c.cols, c.expected)
			wantStatus(t, "upsert of a missing row", r, intent.Conflict)
			if !strings.Contains(r.Reason, "no projection") {
				t.Errorf("reason %q does not say the row is missing", r.Reason)
			}
			h.wantRow(id, nil)
		})
	}
	t.Run("batch", func(t *testing.T) {
		h := *h
		h.t = t
		bu, ok := h.s.Upsert.(intent.BatchEffect)
		if !ok {
			t.Skip("the upsert effect does not implement intent.BatchEffect")
		}
		// Present rows in the states the upserts expect, and upserts of
		// missing rows of the same shapes between them, so that a store
		// that batches runs of one shape writes them in one statement.
		present := map[registration.State]uuid.UUID{}
		for _, st := range []registration.State{registration.StateActive, registration.StateAckTimedOut, registration.StateLivenessExpired} {
			id := uuid.New()
			h.insert(full(id, st))
			present[st] = id
		}
		model := NewModel()
		for _, id := range present {
			if _, err := model.Execute(h.ctx, h.upsertIntent(*h.load(id), 0, registration.StateNone)); err != nil {
				t.Fatal(err)
			}
		}
		refresh := func(id uuid.UUID) intent.Intent {
			p := minimal(id, registration.StateActive)
			p.NodeVersion, p.UpdatedAt = "9.9.9", baseTime.Add(time.Hour)
			return h.upsertIntent(p, metadataColumns, registration.StateActive)
		}
		reRegister := func(id uuid.UUID, from registration.State) intent.Intent {
			p := full(id, registration.StateAwaitingAck)
			p.AckTimeoutEmittedAt, p.LivenessTimeoutEmittedAt, p.Generation = time.Time{}, time.Time{}, 4
			return h.upsertIntent(p, registrationColumns, from)
		}
		missing := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
		inserted := uuid.New()
		batch := []intent.Intent{
			refresh(missing[0]), refresh(present[registration.StateActive]), refresh(missing[1]),
			reRegister(present[registration.StateAckTimedOut], registration.StateAckTimedOut), reRegister(missing[2], registration.StateAckTimedOut),
			reRegister(missing[3], registration.StateLivenessExpired), reRegister(present[registration.StateLivenessExpired], registration.StateLivenessExpired),
			// A row the batch inserts, then refreshes: the refresh sees
			// the insert.
			h.upsertIntent(full(inserted, registration.StateActive), 0, registration.StateNone), refresh(inserted),
			// Alone in its run.
			h.upsertIntent(minimal(missing[4], registration.StateActive), 0, registration.StateActive),
		}
		want := []intent.Status{intent.Conflict, intent.Applied, intent.Conflict, intent.Applied, intent.Conflict,
			intent.Conflict, intent.Applied, intent.Applied, intent.Applied, intent.Conflict}
		got, err := bu.ExecuteBatch(h.ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := model.ExecuteBatch(h.ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(batch) {
			t.Fatalf("%d results for %d intents", len(got), len(batch))
		}
		for i := range batch {
			wantStatus(t, fmt.Sprintf("intent %d", i), got[i], want[i])
			if ref[i].Status != want[i] {
				t.Errorf("intent %d: the model says %v (%q), want %v", i, ref[i].Status, ref[i].Reason, want[i])
			}
			if want[i] == intent.Conflict && !strings.Contains(got[i].Reason, "no projection") {
				t.Errorf("intent %d: reason %q does not say the row is missing", i, got[i].Reason)
			}
		}
		for _, id := range missing {
			h.wantRow(id, nil)
		}
		for _, id := range append(slices.Collect(maps.Values(present)), inserted) {
			h.wantRow(id, model.Row(id, registration.DefaultDomain))
		}
	})
}
