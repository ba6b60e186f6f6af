package postgres

// Review tests of the Postgres outbox; they were written by a review to break
// it, and now hold.

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

var reviewT0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

func reviewRecord(id uuid.UUID, cause string) *dispatch.Record {
	return &dispatch.Record{EntityID: id, Cause: uuid.NewSHA1(id, []byte(cause)),
		Messages: []dispatch.RecordedMessage{{Topic: "t", Key: []byte(id.String()), Value: []byte(`{}`)}}}
}

// Promise: Pending(nil, minAge, ...) returns only records appended at least
// minAge ago, so that the relay task leaves a record its decider is
// relaying right now alone. created_at defaults to now(), the start of the
// transaction, not the append: a Commit that waited on a row lock (another
// process's transaction on the same entity) appends a record that is "old"
// the moment it commits, and another process's relay task takes it while
// its decider relays it (the race of TestReviewTwoRuntimesRelayOneEntityOutOfOrder).
func TestReviewCreatedAtIsTheTransactionStart(t *testing.T) {
	db := newTestDB(t)
	s := db.store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := uuid.New()
	p := registration.Projection{EntityID: id, Domain: registration.DefaultDomain, State: registration.StateAwaitingAck,
		NodeType: "effect", RegisteredAt: reviewT0, UpdatedAt: reviewT0, AckDeadline: reviewT0.Add(time.Minute)}
	if _, err := s.Commit(ctx, []dispatch.Write{{EntityID: id, Intents: []intent.Intent{{Type: registration.IntentUpsert,
		Payload: &registration.UpsertRegistration{Projection: p}}}, Record: reviewRecord(id, "first")}}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Pending(ctx, []uuid.UUID{id}, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("pending %v %v", recs, err)
	}
	if err := s.Done(ctx, []int64{recs[0].Seq}); err != nil {
		t.Fatal(err)
	}

	// Another transaction holds the row for 1.5 s.
	locker, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(ctx, "SELECT 1 FROM "+pgxIdent(db.schema)+".registration_projections WHERE entity_id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, []dispatch.Write{{EntityID: id, Intents: []intent.Intent{{Type: registration.IntentUpdate,
			Payload: &registration.UpdateRegistration{EntityID: id, Domain: registration.DefaultDomain, ExpectedState: registration.StateAwaitingAck,
				Set: registration.ColCurrentState, Values: registration.Projection{State: registration.StateActive}}}},
			Record: reviewRecord(id, "second")}})
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	old, err := s.PendingEntities(ctx, time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 0 {
		t.Fatalf("an entity whose record was appended just now is returned as older than 1s")
	}
}

func pgxIdent(schema string) string { return `"` + schema + `"` }

// Promise: nothing blocks for good; what cannot be processed is
// dead-lettered with its reason. One outbox row whose record does not
// decode (written by another version of the code during a rolling deploy,
// or edited by hand) makes Pending fail with a permanent error for every
// read that reaches it: PendingEntities fails on every pass of the relay
// task, so no orphaned record of any other entity behind it is relayed
// again, and the entity's own decisions retry their relay forever.
func TestReviewOneUndecodableRecordStopsTheRelayTask(t *testing.T) {
	db := newTestDB(t)
	s := db.store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad, good := uuid.New(), uuid.New()
	if _, err := db.pool.Exec(ctx, "INSERT INTO "+pgxIdent(db.schema)+".registration_outbox (entity_id, domain, record) VALUES ($1, $2, $3)",
		bad, registration.DefaultDomain, `{"messages": {"topic": "not a list"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, []dispatch.Write{{EntityID: good, Record: reviewRecord(good, "orphan")}}); err != nil {
		t.Fatal(err)
	}
	a, err := dispatch.New(dispatch.Config{Publisher: &bustest.Recorder{}, Executor: intent.NewExecutor(), Outbox: s, DeadLetterTopic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := a.PendingEntities(ctx, 0, 256)
	if err != nil {
		t.Fatalf("the relay task cannot find any orphan past one bad row: %v (permanent: %v)", err, intent.IsPermanent(err))
	}
	if len(ids) != 2 {
		t.Fatalf("pending entities %v, want both", ids)
	}
	// Relaying the bad entity dead-letters its row and removes it.
	res, err := a.Relay(ctx, []uuid.UUID{bad, good})
	if err != nil || res.DeadLettered != 1 || res.Records != 2 {
		t.Fatalf("relay %+v, %v", res, err)
	}
	if left, err := s.PendingEntities(ctx, 0, 256); err != nil || len(left) != 0 {
		t.Fatalf("left %v, %v", left, err)
	}
}
