package registrar_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	registrar "github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/reducer/registration"
)

// published returns every message of topic on b.
func published(b *membus.Bus, topic string) []*bus.Message {
	var out []*bus.Message
	for p := range b.Partitions(topic) {
		out = append(out, b.Messages(topic, p)...)
	}
	return out
}

// TestRequestIntrospection publishes a registry request on the memory bus
// and reads it back as a node does: a copy on each partition of the
// default topic, its envelope and payload decoding to the request, which
// targets the node types it names.
func TestRequestIntrospection(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	at := time.Date(2026, 6, 1, 8, 0, 0, 123456789, time.UTC)
	req := registration.RegistryRequest{Reason: registration.ReasonRecovery, NodeTypes: []string{"effect"}}
	if err := registrar.RequestIntrospection(context.Background(), b, req,
		registrar.WithRequestSource("registrar-test"), registrar.WithRequestClock(func() time.Time { return at })); err != nil {
		t.Fatal(err)
	}
	// One copy on each partition, one envelope.
	n := b.Partitions(registration.TopicRegistryRequest)
	msgs := published(b, registration.TopicRegistryRequest)
	if len(msgs) != int(n) {
		t.Fatalf("%d messages on %s, want one per partition (%d)", len(msgs), registration.TopicRegistryRequest, n)
	}
	parts := map[int32]bool{}
	for _, m := range msgs {
		parts[m.Partition] = true
		if string(m.Value) != string(msgs[0].Value) {
			t.Fatal("the copies differ")
		}
	}
	if len(parts) != int(n) {
		t.Fatalf("copies on %d partitions, want %d", len(parts), n)
	}
	env, err := bus.DecodeEnvelope(msgs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if env.EventType != registration.EventRegistryRequest || env.SourceTool != "registrar-test" || env.CorrelationID == uuid.Nil {
		t.Fatalf("envelope %+v", env)
	}
	got, err := registration.DecodeRegistryRequest(env)
	if err != nil {
		t.Fatal(err)
	}
	if got.CorrelationID != env.CorrelationID || got.RegistryID != "registrar-test" || got.Reason != registration.ReasonRecovery ||
		!got.Timestamp.Equal(at) || got.ResponseTimeout != registration.DefaultResponseTimeout {
		t.Fatalf("request %+v", got)
	}
	if !got.Targets(uuid.New(), "effect") || !got.Targets(uuid.New(), "EFFECT") || got.Targets(uuid.New(), "compute") {
		t.Fatal("Targets does not follow target_node_types")
	}

	// Another topic; every node.
	if err := registrar.RequestIntrospection(context.Background(), b, registration.RegistryRequest{}, registrar.WithRequestTopic("elsewhere")); err != nil {
		t.Fatal(err)
	}
	msgs = published(b, "elsewhere")
	if len(msgs) != int(b.Partitions("elsewhere")) {
		t.Fatalf("%d messages on elsewhere, want one per partition", len(msgs))
	}
	env, err = bus.DecodeEnvelope(msgs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	got, err = registration.DecodeRegistryRequest(env)
	if err != nil {
		t.Fatal(err)
	}
	if got.RegistryID != registration.DefaultRegistryID || got.Reason != registration.ReasonManual || !got.Targets(uuid.New(), "compute") {
		t.Fatalf("request %+v", got)
	}

	// A request that does not encode is not published.
	bad := registration.RegistryRequest{ResponseTimeout: time.Minute}
	if err := registrar.RequestIntrospection(context.Background(), b, bad, registrar.WithRequestTopic("bad")); err == nil {
		t.Fatal("a 1-minute response timeout was published")
	}
	if n := len(published(b, "bad")); n != 0 {
		t.Fatalf("%d messages on bad", n)
	}
}

// plainBus hides the memory bus's partition reads.
type plainBus struct{ bus.EventBus }

// TestRequestIntrospectionPlainBus: on a bus that cannot read partitions
// (its nodes read through groups, every partition) the request is one
// message without a key.
func TestRequestIntrospectionPlainBus(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if err := registrar.RequestIntrospection(context.Background(), plainBus{b}, registration.RegistryRequest{}); err != nil {
		t.Fatal(err)
	}
	msgs := published(b, registration.TopicRegistryRequest)
	if len(msgs) != 1 || msgs[0].Key != nil {
		t.Fatalf("%d messages (first key %q), want one without a key", len(msgs), msgs[0].Key)
	}
}
