package registrationtest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// OutboxSubject is a store under the outbox suite: the same object seen as
// the registration store and as the runtime's outbox.
type OutboxSubject struct {
	Store  registration.Store
	Outbox dispatch.Outbox
}

// RunOutbox runs the outbox suite against fresh, empty stores made by
// newStore: Commit's atomicity and conflict rules, the records' round trip
// and order, Pending's filters and Done. effects/memory and
// effects/postgres run it, so the two stores keep one behaviour.
func RunOutbox(t *testing.T, newStore func(t *testing.T) OutboxSubject) {
	t.Run("Owns", func(t *testing.T) { testOwns(t, newStore(t)) })
	t.Run("CommitAppendsRecord", func(t *testing.T) { testCommitAppends(t, newStore(t)) })
	t.Run("ConflictStopsEntity", func(t *testing.T) { testCommitConflict(t, newStore(t)) })
	t.Run("SameEntityInOrder", func(t *testing.T) { testCommitSameEntity(t, newStore(t)) })
	t.Run("InvalidWritesNothing", func(t *testing.T) { testCommitAtomic(t, newStore(t)) })
	t.Run("PendingFilters", func(t *testing.T) { testPendingFilters(t, newStore(t)) })
	t.Run("PlainWrites", func(t *testing.T) { testPlainWrites(t, newStore(t)) })
}

var outboxT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func registerWrite(id uuid.UUID, expected registration.State, rec bool) dispatch.Write {
	p := full(id, registration.StateAwaitingAck)
	w := dispatch.Write{EntityID: id, Intents: []intent.Intent{{
		Type: registration.IntentUpsert, Target: id.String(), CorrelationID: p.CorrelationID,
		Payload: &registration.UpsertRegistration{Projection: p, ExpectedState: expected, CorrelationID: p.CorrelationID},
	}}}
	if rec {
		w.Record = testRecord(id)
	}
	return w
}

func activateWrite(id uuid.UUID, expected registration.State) dispatch.Write {
	return dispatch.Write{EntityID: id, Intents: []intent.Intent{{
		Type: registration.IntentUpdate, Target: id.String(),
		Payload: &registration.UpdateRegistration{EntityID: id, Domain: registration.DefaultDomain, ExpectedState: expected,
			Set:    registration.ColCurrentState | registration.ColLivenessDeadline,
			Values: registration.Projection{State: registration.StateActive, LivenessDeadline: outboxT0.Add(time.Minute)}},
	}}, Record: testRecord(id)}
}

func testRecord(id uuid.UUID) *dispatch.Record {
	payload, _ := json.Marshal(&registration.ConsulRegister{NodeID: id, NodeType: "effect", Generation: 1})
	return &dispatch.Record{
		EntityID: id, Cause: uuid.NewSHA1(id, []byte("cause")),
		Intents: []dispatch.RecordedIntent{{Type: registration.IntentConsulReg, Target: "consul://" + id.String(),
			CorrelationID: uuid.NewSHA1(id, []byte("corr")), Payload: payload}},
		Messages: []dispatch.RecordedMessage{{
			Topic: "onex.evt.platform.node-registration-accepted.v1", Key: []byte(id.String()),
			Value: []byte(`{"envelope_id":"` + id.String() + `"}`), Headers: bus.Headers{bus.HeaderEventType: "Accepted"},
		}},
	}
}

func commit(t *testing.T, ob dispatch.Outbox, writes ...dispatch.Write) []dispatch.WriteResult {
	t.Helper()
	res, err := ob.Commit(context.Background(), writes)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if len(res) != len(writes) {
		t.Fatalf("commit returned %d results for %d writes", len(res), len(writes))
	}
	return res
}

func pendingOf(t *testing.T, ob dispatch.Outbox, ids ...uuid.UUID) []dispatch.Record {
	t.Helper()
	recs, err := ob.Pending(context.Background(), ids, 100)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	return recs
}

func stateOf(t *testing.T, s registration.Store, id uuid.UUID) registration.State {
	t.Helper()
	p, err := s.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	if p == nil {
		return registration.StateNone
	}
	return p.State
}

func testOwns(t *testing.T, s OutboxSubject) {
	for typ, want := range map[string]bool{
		registration.IntentUpsert: true, registration.IntentUpdate: true, registration.IntentDelete: true,
		registration.IntentConsulReg: false, registration.IntentConsulPassTTL: false, "other": false,
	} {
		if got := s.Outbox.Owns(typ); got != want {
			t.Errorf("Owns(%q) = %v, want %v", typ, got, want)
		}
	}
}

func testCommitAppends(t *testing.T, s OutboxSubject) {
	id := uuid.New()
	res := commit(t, s.Outbox, registerWrite(id, registration.StateNone, true))
	if res[0].Status != dispatch.WriteCommitted || len(res[0].Results) != 1 || res[0].Results[0].Status != intent.Applied {
		t.Fatalf("result %+v", res[0])
	}
	if st := stateOf(t, s.Store, id); st != registration.StateAwaitingAck {
		t.Fatalf("state %s after the commit", st)
	}
	recs := pendingOf(t, s.Outbox, id)
	if len(recs) != 1 {
		t.Fatalf("%d records pending, want 1", len(recs))
	}
	want := testRecord(id)
	got := recs[0]
	if got.EntityID != id || got.Cause != want.Cause || got.Seq == 0 || got.CreatedAt.IsZero() {
		t.Errorf("record header %+v", got)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("record changed on the way:\ngot  %s\nwant %s", gotJSON, wantJSON)
	}
	if other := pendingOf(t, s.Outbox, uuid.New()); len(other) != 0 {
		t.Errorf("another entity has %d records", len(other))
	}
	if err := s.Outbox.Done(context.Background(), []int64{got.Seq}); err != nil {
		t.Fatal(err)
	}
	if err := s.Outbox.Done(context.Background(), []int64{got.Seq}); err != nil {
		t.Errorf("second Done of the same record: %v", err)
	}
	if recs := pendingOf(t, s.Outbox, id); len(recs) != 0 {
		t.Errorf("%d records pending after Done", len(recs))
	}
}

func testCommitConflict(t *testing.T, s OutboxSubject) {
	a, b := uuid.New(), uuid.New()
	commit(t, s.Outbox, registerWrite(a, registration.StateNone, false), registerWrite(b, registration.StateNone, false))
	// a is awaiting_ack: a write that expects accepted conflicts, and the
	// write after it for a is not attempted; b goes through.
	res := commit(t, s.Outbox,
		activateWrite(a, registration.StateAccepted),
		activateWrite(b, registration.StateAwaitingAck),
		activateWrite(a, registration.StateAwaitingAck))
	if res[0].Status != dispatch.WriteConflict || res[0].Results[0].Status != intent.Conflict {
		t.Errorf("conflicting write: %+v", res[0])
	}
	if res[1].Status != dispatch.WriteCommitted {
		t.Errorf("other entity's write: %+v", res[1])
	}
	if res[2].Status != dispatch.WriteNotAttempted || len(res[2].Results) != 0 {
		t.Errorf("write after the conflict: %+v", res[2])
	}
	if st := stateOf(t, s.Store, a); st != registration.StateAwaitingAck {
		t.Errorf("conflicted entity in state %s", st)
	}
	if st := stateOf(t, s.Store, b); st != registration.StateActive {
		t.Errorf("other entity in state %s", st)
	}
	if recs := pendingOf(t, s.Outbox, a); len(recs) != 0 {
		t.Errorf("conflicted entity has %d records", len(recs))
	}
	if recs := pendingOf(t, s.Outbox, b); len(recs) != 1 {
		t.Errorf("other entity has %d records, want 1", len(recs))
	}
}

func testCommitSameEntity(t *testing.T, s OutboxSubject) {
	id := uuid.New()
	first := registerWrite(id, registration.StateNone, true)
	second := activateWrite(id, registration.StateAwaitingAck)
	second.Record.Cause = uuid.NewSHA1(id, []byte("second"))
	res := commit(t, s.Outbox, first, second)
	if res[0].Status != dispatch.WriteCommitted || res[1].Status != dispatch.WriteCommitted {
		t.Fatalf("results %+v", res)
	}
	if st := stateOf(t, s.Store, id); st != registration.StateActive {
		t.Errorf("state %s: the second write did not see the first", st)
	}
	recs := pendingOf(t, s.Outbox, id)
	if len(recs) != 2 || recs[0].Cause != first.Record.Cause || recs[1].Cause != second.Record.Cause || recs[0].Seq >= recs[1].Seq {
		t.Errorf("records out of order: %+v", recs)
	}
}

func testCommitAtomic(t *testing.T, s OutboxSubject) {
	good, bad := uuid.New(), uuid.New()
	invalid := registerWrite(bad, registration.StateNone, true)
	invalid.Intents[0].Payload.(*registration.UpsertRegistration).Projection.NodeType = ""
	_, err := s.Outbox.Commit(context.Background(), []dispatch.Write{registerWrite(good, registration.StateNone, true), invalid})
	if err == nil {
		t.Fatal("an invalid write committed")
	}
	if !intent.IsPermanent(err) {
		t.Errorf("invalid payload error %v is not permanent", err)
	}
	if st := stateOf(t, s.Store, good); st != registration.StateNone {
		t.Errorf("the valid write of the failed call is in state %s", st)
	}
	if recs := pendingOf(t, s.Outbox, good, bad); len(recs) != 0 {
		t.Errorf("%d records of the failed call", len(recs))
	}
}

func testPendingFilters(t *testing.T, s OutboxSubject) {
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		commit(t, s.Outbox, registerWrite(id, registration.StateNone, true))
	}
	// A second record of the first entity: still one entity.
	second := activateWrite(ids[0], registration.StateAwaitingAck)
	commit(t, s.Outbox, second)
	ctx := context.Background()
	got, err := s.Outbox.PendingEntities(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != ids[0] || got[1] != ids[1] || got[2] != ids[2] {
		t.Errorf("pending entities %v, want %v (distinct, oldest first)", got, ids)
	}
	young, err := s.Outbox.PendingEntities(ctx, time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(young) != 0 {
		t.Errorf("%d entities whose records are younger than an hour returned as older", len(young))
	}
	if two, err := s.Outbox.PendingEntities(ctx, 0, 2); err != nil || len(two) != 2 {
		t.Errorf("limit 2: %d entities, %v", len(two), err)
	}
	if _, err := s.Outbox.PendingEntities(ctx, 0, 0); err == nil {
		t.Error("limit 0 accepted")
	}
	if _, err := s.Outbox.Pending(ctx, ids, 0); err == nil {
		t.Error("limit 0 accepted")
	}
	if recs := pendingOf(t, s.Outbox, ids[1]); len(recs) != 1 || recs[0].EntityID != ids[1] {
		t.Errorf("pending of one entity: %+v", recs)
	}
	if recs, err := s.Outbox.Pending(ctx, ids, 1); err != nil || len(recs) != 1 || recs[0].EntityID != ids[0] {
		t.Errorf("limit 1: %+v, %v", recs, err)
	}
}

func testPlainWrites(t *testing.T, s OutboxSubject) {
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	var writes []dispatch.Write
	for _, id := range ids {
		writes = append(writes, registerWrite(id, registration.StateNone, false))
	}
	res := commit(t, s.Outbox, writes...)
	for i, r := range res {
		if r.Status != dispatch.WriteCommitted {
			t.Errorf("write %d: %+v", i, r)
		}
	}
	if recs := pendingOf(t, s.Outbox, ids...); len(recs) != 0 {
		t.Errorf("%d records for writes without one", len(recs))
	}
	// The same writes again conflict (the rows exist), and say so.
	res = commit(t, s.Outbox, writes...)
	for i, r := range res {
		if r.Status != dispatch.WriteConflict {
			t.Errorf("repeated write %d: %+v", i, r)
		}
	}
	if err := ctxErr(s.Outbox); err == nil {
		t.Error("Commit with a canceled context succeeded")
	}
}

func ctxErr(ob dispatch.Outbox) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ob.Commit(ctx, []dispatch.Write{registerWrite(uuid.New(), registration.StateNone, true)})
	if err != nil && !errors.Is(err, context.Canceled) && !intent.IsRetryable(err) {
		return errors.New("unexpected error kind: " + err.Error())
	}
	return err
}
