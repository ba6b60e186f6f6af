package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/dispatch"
)

// TestOutboxKeepsTombstones: a recorded tombstone (a message with a nil
// value) comes back from the outbox with a nil value, and an empty value
// stays empty, so that the relay publishes a tombstone exactly when one was
// decided.
func TestOutboxKeepsTombstones(t *testing.T) {
	db := newTestDB(t)
	s := db.store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := uuid.New()
	rec := &dispatch.Record{EntityID: id, Cause: uuid.NewSHA1(id, []byte("tombstone")), Messages: []dispatch.RecordedMessage{
		{Topic: "snapshots", Key: []byte(id.String())},
		{Topic: "snapshots", Key: []byte(id.String()), Value: []byte{}},
	}}
	if _, err := s.Commit(ctx, []dispatch.Write{{EntityID: id, Record: rec}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(ctx, []uuid.UUID{id}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Messages) != 2 {
		t.Fatalf("pending %+v", got)
	}
	if m := got[0].Messages[0]; m.Value != nil || string(m.Key) != id.String() {
		t.Errorf("tombstone came back with key %q, value %q", m.Key, m.Value)
	}
	if m := got[0].Messages[1]; m.Value == nil {
		t.Error("an empty value came back as a tombstone")
	}
}
