package registrationtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// RunRemoval runs the removal suite against fresh, empty stores made by
// newStore: postgres.delete_registration executed inside Commit, with the
// guards registration.ApplyDelete defines (the expected state and the
// column guards; a missing row, another state or another value is a
// conflict that removes nothing and appends no record), the read API
// (registration.Reader, which the store must implement) no longer showing a
// removed row, a re-registration of the same id after its removal, an
// invalid delete failing the whole Commit, and the reducer's removal
// decided on a row that a heartbeat changed before the write (a conflict;
// deciding again against the new row removes it), and the reducer's upsert
// decided on a row that a removal wrote away before it (a conflict that
// inserts no row; deciding again registers the node anew). effects/memory
// and effects/postgres run it.
func RunRemoval(t *testing.T, newStore func(t *testing.T) OutboxSubject) {
	t.Run("DeleteApplies", func(t *testing.T) { testDeleteApplies(t, newStore(t)) })
	t.Run("DeleteGuards", func(t *testing.T) { testDeleteGuards(t, newStore) })
	t.Run("ConcurrentWriterWins", func(t *testing.T) { testDeleteAfterWriter(t, newStore(t)) })
	t.Run("ReRegistrationAfterDelete", func(t *testing.T) { testDeleteReRegister(t, newStore(t)) })
	t.Run("InvalidDeleteWritesNothing", func(t *testing.T) { testDeleteInvalid(t, newStore(t)) })
	t.Run("ReducerRemovalDecidedAgain", func(t *testing.T) { testDeleteDecidedAgain(t, newStore(t)) })
	t.Run("UpsertOfRemovedRowIsAConflict", func(t *testing.T) { testUpsertAfterDelete(t, newStore) })
}

// deleteWrite removes the row that registerWrite wrote (state
// awaiting_ack), guarding what a removal decision reads, unless expected
// says otherwise.
func deleteWrite(id uuid.UUID, d registration.DeleteRegistration, rec bool) dispatch.Write {
	d.EntityID = id
	if d.Domain == "" {
		d.Domain = registration.DefaultDomain
	}
	w := dispatch.Write{EntityID: id, Intents: []intent.Intent{{
		Type: registration.IntentDelete, Target: id.String(), CorrelationID: d.CorrelationID, Payload: &d,
	}}}
	if rec {
		w.Record = testRecord(id)
	}
	return w
}

// removalOf is the delete a removal decision makes of p.
func removalOf(p registration.Projection) registration.DeleteRegistration {
	return registration.DeleteRegistration{ExpectedState: p.State,
		Guard:    registration.ColGeneration | registration.ColUpdatedAt | registration.ColNodeType,
		Expected: registration.Projection{Generation: p.Generation, UpdatedAt: p.UpdatedAt, NodeType: p.NodeType}}
}

func reader(t *testing.T, s OutboxSubject) registration.Reader {
	t.Helper()
	r, ok := s.Store.(registration.Reader)
	if !ok {
		t.Fatalf("registrationtest: store %T does not implement registration.Reader", s.Store)
	}
	return r
}

// wantGone checks that every read of the store misses id.
func wantGone(t *testing.T, s OutboxSubject, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	if p, err := s.Store.Load(ctx, id); err != nil || p != nil {
		t.Errorf("Load after removal = %v, %v; want nil, nil", p, err)
	}
	r := reader(t, s)
	if p, err := r.Get(ctx, id); !errors.Is(err, registration.ErrNotFound) {
		t.Errorf("Get after removal = %v, %v; want ErrNotFound", p, err)
	}
	all, err := registration.ListAll(ctx, r, registration.Query{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, p := range all {
		if p.EntityID == id {
			t.Errorf("List after removal still has %s", id)
		}
	}
	counts, err := r.CountByState(ctx)
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	if n != len(all) {
		t.Errorf("CountByState counts %d rows (%v), List returns %d", n, counts, len(all))
	}
}

func testDeleteApplies(t *testing.T, s OutboxSubject) {
	id, other := uuid.New(), uuid.New()
	commit(t, s.Outbox, registerWrite(id, registration.StateNone, false), registerWrite(other, registration.StateNone, false))
	p, err := s.Store.Load(context.Background(), id)
	if err != nil || p == nil {
		t.Fatalf("load %s: %v, %v", id, p, err)
	}
	res := commit(t, s.Outbox, deleteWrite(id, removalOf(*p), true))
	if res[0].Status != dispatch.WriteCommitted || len(res[0].Results) != 1 || res[0].Results[0].Status != intent.Applied {
		t.Fatalf("delete: %+v", res[0])
	}
	if recs := pendingOf(t, s.Outbox, id); len(recs) != 1 {
		t.Errorf("%d records after the delete, want its 1", len(recs))
	}
	wantGone(t, s, id)
	if st := stateOf(t, s.Store, other); st != registration.StateAwaitingAck {
		t.Errorf("the other entity is %s after the delete, want awaiting_ack", st)
	}
	// A second delete of the same row finds none: a conflict, no record.
	res = commit(t, s.Outbox, deleteWrite(id, removalOf(*p), true))
	if res[0].Status != dispatch.WriteConflict || res[0].Results[0].Status != intent.Conflict || res[0].Results[0].Reason == "" {
		t.Errorf("delete of a missing row: %+v, want a conflict with a reason", res[0])
	}
	if recs := pendingOf(t, s.Outbox, id); len(recs) != 1 {
		t.Errorf("%d records after the conflicting delete, want 1", len(recs))
	}
}

func testDeleteGuards(t *testing.T, newStore func(t *testing.T) OutboxSubject) {
	for _, c := range []struct {
		name   string
		edit   func(d *registration.DeleteRegistration)
		reason string
	}{
		{"another state", func(d *registration.DeleteRegistration) { d.ExpectedState = registration.StateActive }, "state"},
		{"another generation", func(d *registration.DeleteRegistration) { d.Expected.Generation++ }, "generation"},
		{"another updated_at", func(d *registration.DeleteRegistration) { d.Expected.UpdatedAt = d.Expected.UpdatedAt.Add(time.Second) }, "updated_at"},
		{"another node type", func(d *registration.DeleteRegistration) { d.Expected.NodeType = "compute" }, "node_type"},
		{"NULL against a value", func(d *registration.DeleteRegistration) {
			d.Guard |= registration.ColLastHeartbeatAt
			d.Expected.LastHeartbeatAt = time.Time{}
		}, "last_heartbeat_at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			id := uuid.New()
			commit(t, s.Outbox, registerWrite(id, registration.StateNone, false))
			before, err := s.Store.Load(context.Background(), id)
			if err != nil || before == nil {
				t.Fatalf("load: %v, %v", before, err)
			}
			d := removalOf(*before)
			c.edit(&d)
			res := commit(t, s.Outbox, deleteWrite(id, d, true))
			if res[0].Status != dispatch.WriteConflict || res[0].Results[0].Status != intent.Conflict {
				t.Fatalf("guarded delete: %+v, want a conflict", res[0])
			}
			if r := res[0].Results[0].Reason; !strings.Contains(r, c.reason) {
				t.Errorf("reason %q does not name %s", r, c.reason)
			}
			if recs := pendingOf(t, s.Outbox, id); len(recs) != 0 {
				t.Errorf("a conflicting delete appended %d records", len(recs))
			}
			after, err := s.Store.Load(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(before, after); d != "" {
				t.Errorf("a conflicting delete changed the row: %s", d)
			}
		})
	}
}

// testDeleteAfterWriter: a write that another decision made first (here,
// in the same Commit, before the delete) changes what the delete read; the
// delete is a conflict and the writer's change stays.
func testDeleteAfterWriter(t *testing.T, s OutboxSubject) {
	id := uuid.New()
	commit(t, s.Outbox, registerWrite(id, registration.StateNone, false))
	p, err := s.Store.Load(context.Background(), id)
	if err != nil || p == nil {
		t.Fatalf("load: %v, %v", p, err)
	}
	res := commit(t, s.Outbox, activateWrite(id, registration.StateAwaitingAck), deleteWrite(id, removalOf(*p), true))
	if res[0].Status != dispatch.WriteCommitted {
		t.Fatalf("the first writer: %+v", res[0])
	}
	if res[1].Status != dispatch.WriteConflict || res[1].Results[0].Status != intent.Conflict {
		t.Fatalf("the delete decided before it: %+v, want a conflict", res[1])
	}
	if st := stateOf(t, s.Store, id); st != registration.StateActive {
		t.Errorf("state %s, want the first writer's active", st)
	}
	// The same removal decided again on the current row applies.
	p, err = s.Store.Load(context.Background(), id)
	if err != nil || p == nil {
		t.Fatalf("load: %v, %v", p, err)
	}
	res = commit(t, s.Outbox, deleteWrite(id, removalOf(*p), true))
	if res[0].Status != dispatch.WriteCommitted || res[0].Results[0].Status != intent.Applied {
		t.Fatalf("delete decided again: %+v", res[0])
	}
	wantGone(t, s, id)
}

func testDeleteReRegister(t *testing.T, s OutboxSubject) {
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		commit(t, s.Outbox, registerWrite(id, registration.StateNone, false))
	}
	r := reader(t, s)
	ctx := context.Background()
	// A List first, so that the store's index knows every id.
	if all, err := registration.ListAll(ctx, r, registration.Query{}); err != nil || len(all) != 3 {
		t.Fatalf("list: %d rows, %v", len(all), err)
	}
	// Remove and register again in one Commit, then remove and register
	// another before any List.
	for _, id := range ids[:2] {
		p, err := s.Store.Load(ctx, id)
		if err != nil || p == nil {
			t.Fatalf("load: %v, %v", p, err)
		}
		res := commit(t, s.Outbox, deleteWrite(id, removalOf(*p), false), registerWrite(id, registration.StateNone, false))
		for i, w := range res {
			if w.Status != dispatch.WriteCommitted || w.Results[0].Status != intent.Applied {
				t.Fatalf("write %d of removal and re-registration: %+v", i, w)
			}
		}
	}
	all, err := registration.ListAll(ctx, r, registration.Query{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]int{}
	for _, p := range all {
		seen[p.EntityID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("List has %s %d times, want once", id, seen[id])
		}
	}
	if len(all) != 3 {
		t.Errorf("List has %d rows, want 3", len(all))
	}
	counts, err := r.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[registration.StateAwaitingAck] != 3 {
		t.Errorf("CountByState %v, want 3 awaiting_ack", counts)
	}
	if _, err := r.Get(ctx, ids[0]); err != nil {
		t.Errorf("Get of the re-registered node: %v", err)
	}
}

func testDeleteInvalid(t *testing.T, s OutboxSubject) {
	id, other := uuid.New(), uuid.New()
	commit(t, s.Outbox, registerWrite(id, registration.StateNone, false))
	p, err := s.Store.Load(context.Background(), id)
	if err != nil || p == nil {
		t.Fatalf("load: %v, %v", p, err)
	}
	for name, d := range map[string]registration.DeleteRegistration{
		"no expected state":        {Guard: registration.ColGeneration},
		"an invalid state":         {ExpectedState: "gone"},
		"a guard on a JSON column": {ExpectedState: p.State, Guard: registration.ColCapabilities},
	} {
		t.Run(name, func(t *testing.T) {
			// The valid delete first: the invalid one after it fails the
			// whole Commit, so the first is not applied either.
			_, err := s.Outbox.Commit(context.Background(), []dispatch.Write{
				deleteWrite(id, removalOf(*p), true), registerWrite(other, registration.StateNone, true), deleteWrite(id, d, true)})
			if !intent.IsPermanent(err) {
				t.Fatalf("Commit with an invalid delete: %v, want a permanent error", err)
			}
			if st := stateOf(t, s.Store, id); st != registration.StateAwaitingAck {
				t.Errorf("state %s after a failed Commit, want awaiting_ack", st)
			}
			if st := stateOf(t, s.Store, other); st != registration.StateNone {
				t.Errorf("the other entity is %s after a failed Commit, want none", st)
			}
			if recs := pendingOf(t, s.Outbox, id, other); len(recs) != 0 {
				t.Errorf("a failed Commit appended %d records", len(recs))
			}
		})
	}
}

// testDeleteDecidedAgain runs the reducer: an active node's shutdown is
// decided on its row, a heartbeat is written before the removal, the
// removal is a conflict, and the shutdown decided again on the new row
// removes it.
func testDeleteDecidedAgain(t *testing.T, s OutboxSubject) {
	red, err := registration.New(registration.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := uuid.New()
	act := full(id, registration.StateActive)
	act.LivenessTimeoutEmittedAt, act.AckTimeoutEmittedAt = time.Time{}, time.Time{}
	commit(t, s.Outbox, dispatch.Write{EntityID: id, Intents: []intent.Intent{{Type: registration.IntentUpsert, Target: id.String(),
		Payload: &registration.UpsertRegistration{Projection: act}}}})
	row, err := s.Store.Load(ctx, id)
	if err != nil || row == nil {
		t.Fatalf("load: %v, %v", row, err)
	}
	shutdownAt := row.UpdatedAt.Add(time.Minute)
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: shutdownAt, EventType: registration.EventTypeShutdown}
	in := reducer.Input{Kind: registration.KindShutdown, EntityID: id, Envelope: env,
		Event: &registration.Shutdown{NodeID: id, Reason: registration.ShutdownGraceful, Timestamp: shutdownAt}}
	d := red.Decide(row, in, shutdownAt)
	removal := ownedWrite(id, d)
	if len(removal.Intents) != 1 || removal.Intents[0].Type != registration.IntentDelete {
		t.Fatalf("the shutdown of an active node decided %+v, want one owned delete", d)
	}
	// A heartbeat, stamped before the shutdown, is written first.
	hbAt := shutdownAt.Add(-time.Second)
	hb := red.Decide(row, reducer.Input{Kind: registration.KindHeartbeat, EntityID: id,
		Envelope: &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: hbAt},
		Event:    &registration.Heartbeat{NodeID: id, Timestamp: hbAt}}, hbAt)
	res := commit(t, s.Outbox, ownedWrite(id, hb), removal)
	if res[0].Status != dispatch.WriteCommitted || res[0].Results[0].Status != intent.Applied {
		t.Fatalf("heartbeat: %+v", res[0])
	}
	if res[1].Status != dispatch.WriteConflict {
		t.Fatalf("the removal decided before the heartbeat's write: %+v, want a conflict", res[1])
	}
	row, err = s.Store.Load(ctx, id)
	if err != nil || row == nil {
		t.Fatalf("load: %v, %v", row, err)
	}
	again := ownedWrite(id, red.Decide(row, in, shutdownAt))
	res = commit(t, s.Outbox, again)
	if res[0].Status != dispatch.WriteCommitted || res[0].Results[0].Status != intent.Applied {
		t.Fatalf("the removal decided again: %+v", res[0])
	}
	wantGone(t, s, id)
}

// testUpsertAfterDelete runs the reducer: an introspection is decided on
// a row (the metadata refresh of an active node; the re-registration of a
// node whose liveness expired), a removal of that row is written first,
// and the decision's upsert, which expects the state it read, is a
// conflict that brings no row back; the introspection decided again on
// the missing row registers the node anew.
func testUpsertAfterDelete(t *testing.T, newStore func(t *testing.T) OutboxSubject) {
	red, err := registration.New(registration.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := baseTime.Add(time.Hour)
	for _, st := range []registration.State{registration.StateActive, registration.StateLivenessExpired} {
		t.Run("decided on "+st.String(), func(t *testing.T) {
			s := newStore(t)
			ctx := context.Background()
			id := uuid.New()
			old := full(id, st)
			if st == registration.StateActive {
				old.LivenessTimeoutEmittedAt, old.AckTimeoutEmittedAt = time.Time{}, time.Time{}
			}
			commit(t, s.Outbox, dispatch.Write{EntityID: id, Intents: []intent.Intent{{Type: registration.IntentUpsert, Target: id.String(),
				Payload: &registration.UpsertRegistration{Projection: old}}}})
			row, err := s.Store.Load(ctx, id)
			if err != nil || row == nil {
				t.Fatalf("load: %v, %v", row, err)
			}
			in := stamped(&registration.Introspection{NodeID: id, NodeType: "compute", CorrelationID: uuid.New(), Timestamp: now}, now)
			in.EntityID = id
			upsert := ownedWrite(id, red.Decide(row, in, now))
			if len(upsert.Intents) != 1 || upsert.Intents[0].Type != registration.IntentUpsert {
				t.Fatalf("the introspection decided %+v, want one upsert", upsert.Intents)
			}
			if u := upsert.Intents[0].Payload.(*registration.UpsertRegistration); u.ExpectedState != st {
				t.Fatalf("the upsert expects %s, want %s", u.ExpectedState, st)
			}
			res := commit(t, s.Outbox, deleteWrite(id, removalOf(*row), true), upsert)
			if res[0].Status != dispatch.WriteCommitted || res[0].Results[0].Status != intent.Applied {
				t.Fatalf("the removal: %+v", res[0])
			}
			if res[1].Status != dispatch.WriteConflict || res[1].Results[0].Status != intent.Conflict {
				t.Fatalf("the upsert decided on the removed row: %+v, want a conflict", res[1])
			}
			if r := res[1].Results[0].Reason; !strings.Contains(r, "no projection") {
				t.Errorf("reason %q does not say the row is missing", r)
			}
			wantGone(t, s, id)
			// Decided again on the missing row: a new registration.
			row, err = s.Store.Load(ctx, id)
			if err != nil || row != nil {
				t.Fatalf("load: %v, %v", row, err)
			}
			again := ownedWrite(id, red.Decide(nil, in, now))
			res = commit(t, s.Outbox, again)
			if res[0].Status != dispatch.WriteCommitted || res[0].Results[0].Status != intent.Applied {
				t.Fatalf("the introspection decided again: %+v", res[0])
			}
			if got := stateOf(t, s.Store, id); got != registration.StateAwaitingAck {
				t.Errorf("state %s after the introspection decided again, want awaiting_ack", got)
			}
		})
	}
}

// ownedWrite is the write of d's store-owned intents.
func ownedWrite(id uuid.UUID, d reducer.Decision) dispatch.Write {
	w := dispatch.Write{EntityID: id}
	for _, in := range d.Intents {
		switch in.Type {
		case registration.IntentUpsert, registration.IntentUpdate, registration.IntentDelete:
			w.Intents = append(w.Intents, in)
		}
	}
	return w
}
