package discovery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/reducer/registration"
)

// A service finds the active nodes of a type: run a Client for the
// service's lifetime, wait for Ready once, then ask Lookup whenever it
// needs its peers.
func Example() {
	b, _ := membus.New(membus.Config{})
	defer b.Close()
	orchestratorPublishes(b) // two active effect nodes, one still registering

	c, err := discovery.New(b)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-c.Ready()

	for _, n := range c.Lookup("effect") {
		fmt.Println(n.ID, n.State, n.Endpoints["http"])
	}
	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// 00000000-0000-4000-8000-000000000001 active http://10.0.0.1:8080
	// 00000000-0000-4000-8000-000000000003 active http://10.0.0.3:8080
	// Run: <nil>
}

// A watcher first gets the view as Added changes, then every change.
func ExampleClient_Watch() {
	b, _ := membus.New(membus.Config{})
	defer b.Close()
	orchestratorPublishes(b)

	c, _ := discovery.New(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-c.Ready()

	changes := c.Watch(ctx)
	for range 3 { // the view
		ch := <-changes
		fmt.Println(ch.Kind, ch.Node.ID, ch.Node.State)
	}
	second := nodeID(2)
	publishSnapshot(b, second, "effect", registration.StateActive, 2)
	ch := <-changes
	fmt.Println(ch.Kind, ch.Node.ID, ch.Old.State, "->", ch.Node.State)
	_ = b.Publish(ctx, &bus.Message{Topic: registration.TopicSnapshot, Key: []byte(second.String())}) // a tombstone
	ch = <-changes
	fmt.Println(ch.Kind, ch.Node.ID)
	cancel()
	if err := <-done; err != nil {
		fmt.Println("Run:", err)
	}
	// Output:
	// added 00000000-0000-4000-8000-000000000001 active
	// added 00000000-0000-4000-8000-000000000002 awaiting_ack
	// added 00000000-0000-4000-8000-000000000003 active
	// changed 00000000-0000-4000-8000-000000000002 awaiting_ack -> active
	// removed 00000000-0000-4000-8000-000000000002
}

// nodeID is the example's node i.
func nodeID(i int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
}

// orchestratorPublishes publishes what an orchestrator would have: the
// snapshots of three effect nodes, the second not active yet.
func orchestratorPublishes(b bus.EventBus) {
	publishSnapshot(b, nodeID(1), "effect", registration.StateActive, 1)
	publishSnapshot(b, nodeID(2), "effect", registration.StateAwaitingAck, 1)
	publishSnapshot(b, nodeID(3), "effect", registration.StateActive, 1)
}

// publishSnapshot publishes the snapshot of one node, as the orchestrator
// does: the registration's snapshot in an envelope keyed by the node id.
func publishSnapshot(b bus.EventBus, id uuid.UUID, nodeType string, st registration.State, version int64) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := &registration.Projection{
		EntityID: id, Domain: registration.DefaultDomain, State: st, NodeType: nodeType,
		Endpoints:    map[string]string{"http": fmt.Sprintf("http://10.0.0.%d:8080", id[15])},
		RegisteredAt: at, Generation: 1,
	}
	s := registration.SnapshotOf(p, version, at)
	payload, err := s.Payload()
	if err != nil {
		panic(err)
	}
	meta, err := s.Metadata()
	if err != nil {
		panic(err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, EventType: registration.EventSnapshot, Metadata: meta, Payload: payload}
	if err := b.PublishEnvelope(context.Background(), registration.TopicSnapshot, env, bus.WithKey([]byte(id.String()))); err != nil {
		panic(err)
	}
}
