package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/reducer"
)

// TestRelayPublishesTombstones: a Tombstone event is relayed as a message
// with the entity's key and a nil value, no envelope and no headers; an
// event's Metadata becomes its envelope's metadata.
func TestRelayPublishesTombstones(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	d := registrationDecision(node)
	d.Events = []reducer.Event{
		{Topic: "snapshots", Type: "Snapshot", EntityID: node, Payload: map[string]int{"v": 1}, Metadata: json.RawMessage(`{"registrar":{"generation":1}}`)},
		{Topic: "snapshots", Type: "ignored", EntityID: node, Payload: map[string]int{"v": 2}, Metadata: json.RawMessage(`{"x":1}`), Tombstone: true},
	}
	commitOne(t, g, causeOf(1), node, d)
	if _, err := g.a.Relay(context.Background(), []uuid.UUID{node}); err != nil {
		t.Fatal(err)
	}
	got := g.rec.PublishedTo("snapshots")
	if len(got) != 2 {
		t.Fatalf("%d messages on the topic, want 2", len(got))
	}
	env, err := bus.DecodeEnvelope(got[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if string(env.Metadata) != `{"registrar":{"generation":1}}` || env.EventType != "Snapshot" {
		t.Errorf("envelope metadata %s, type %s", env.Metadata, env.EventType)
	}
	tomb := got[1]
	if tomb.Value != nil || string(tomb.Key) != node.String() || len(tomb.Headers) != 0 {
		t.Errorf("tombstone: key %q, value %q, headers %v", tomb.Key, tomb.Value, tomb.Headers)
	}
}

// TestRecordedTombstoneSurvivesJSON: a store that keeps records as JSON (the
// Postgres outbox) gives a tombstone's nil value back as nil, and an empty
// value back as empty, not nil.
func TestRecordedTombstoneSurvivesJSON(t *testing.T) {
	rec := dispatch.Record{EntityID: uuid.New(), Messages: []dispatch.RecordedMessage{
		{Topic: "snapshots", Key: []byte("k")},
		{Topic: "snapshots", Key: []byte("k"), Value: []byte{}},
	}}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back dispatch.Record
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Messages[0].Value != nil {
		t.Errorf("tombstone value %q after the round trip (%s)", back.Messages[0].Value, raw)
	}
	if back.Messages[1].Value == nil {
		t.Errorf("empty value became a tombstone (%s)", raw)
	}
}

func TestPrepareTombstoneNeedsAKey(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	d := registrationDecision(node)
	d.Events = []reducer.Event{{Topic: "snapshots", Tombstone: true}}
	_, err := g.a.Prepare(context.Background(), causeOf(2), node, d)
	var pe *dispatch.PrepareError
	if !errors.As(err, &pe) {
		t.Fatalf("tombstone without a key: %v", err)
	}
}
