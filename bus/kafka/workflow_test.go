package kafka_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestTwoRuntimesShareTheWorkflow runs two registration Runtimes in one
// consumer group over 12 partitions for hundreds of nodes, stops one of them
// mid-stream, and checks that the other takes over: every node ends active,
// no message is lost, and each entity's events are on its partition in
// order.
func TestTwoRuntimesShareTheWorkflow(t *testing.T) {
	const nodes = 300
	cluster := kafkatest.Start(t)
	store := memory.NewStore(memory.StoreConfig{}) // the shared database
	registry := memory.NewRegistry(memory.RegistryConfig{})
	c := contract.Default()
	topics := registrar.ReducerConfig(c).Topics
	if topics.Introspection == "" {
		topics = registration.DefaultTopics()
	}
	newRuntime := func() (*registrar.RegistrationRuntime, func()) {
		b := cluster.NewBus(t)
		exec := intent.NewExecutor()
		if err := memory.RegisterEffects(exec, store, registry); err != nil {
			t.Fatal(err)
		}
		rt, err := registrar.NewRegistration(c, b, store, exec, registrar.RegistrationConfig{NoSweeper: true},
			registrar.WithRetryBackoff(5*time.Millisecond, 100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("runtime: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return rt, stop
	}
	first, stopFirst := newRuntime()
	second, _ := newRuntime()
	// Both members own partitions before anything is sent: otherwise the
	// first one, alone in the group for a moment, may take every message.
	eventually(t, "both runtimes own partitions", func() bool {
		return len(first.ConsumerLag()) > 0 && len(second.ConsumerLag()) > 0
	})

	pub := cluster.NewBus(t)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Millisecond)
	ids := make([]uuid.UUID, nodes)
	send := func(topic string, id uuid.UUID, at time.Time, payload any) {
		t.Helper()
		raw, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, CorrelationID: uuid.New(), Payload: raw}
		if err := pub.PublishEnvelope(ctx, topic, env, bus.WithKey([]byte(id.String()))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		ids[i] = uuid.New()
		send(topics.Introspection, ids[i], start, &registration.Introspection{NodeID: ids[i], NodeType: "effect",
			NodeVersion: bus.Version{Major: 1}, CorrelationID: uuid.New(), Timestamp: start})
	}
	count := func(st registration.State) int {
		c, err := store.CountByState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c[st]
	}
	eventually(t, "every node awaiting its ack", func() bool { return count(registration.StateAwaitingAck) == nodes })
	ackAt := start.Add(time.Second)
	for i, id := range ids {
		send(topics.Ack, id, ackAt, &registration.Ack{NodeID: id, CorrelationID: uuid.New(), Timestamp: ackAt})
		if i == nodes/2 {
			stopFirst() // mid-stream: the second runtime takes its partitions over
		}
	}
	eventually(t, "every node active", func() bool { return count(registration.StateActive) == nodes })
	hbAt := ackAt.Add(10 * time.Second)
	for _, id := range ids {
		send(topics.Heartbeat, id, hbAt, &registration.Heartbeat{NodeID: id, UptimeSeconds: 11, Timestamp: hbAt})
	}
	eventually(t, "every heartbeat applied", func() bool {
		all, err := registration.ListAll(ctx, store, registration.Query{Limit: registration.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			if !p.LastHeartbeatAt.Equal(hbAt) {
				return false
			}
		}
		return true
	})
	if registry.Len() != nodes {
		t.Errorf("%d services registered, want %d", registry.Len(), nodes)
	}
	if first.Stats().Handled == 0 || second.Stats().Handled == 0 {
		t.Errorf("one runtime did all the work: %+v / %+v", first.Stats(), second.Stats())
	}
	if st := first.Stats().DeadLettered + second.Stats().DeadLettered; st != 0 {
		t.Errorf("%d messages dead-lettered", st)
	}

	// Every entity's events are there, each topic's on the entity's one
	// partition (redeliveries may repeat an event: same envelope id).
	type seen struct {
		topics     map[string]bool
		partitions map[int32]bool
	}
	events := map[string]*seen{}
	var mu sync.Mutex
	outTopics := []string{topics.Initiated, topics.Accepted, topics.AckReceived, topics.BecameActive}
	reader := cluster.NewBus(t)
	sub := subscribe(t, reader, "events-reader", outTopics, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		e := events[string(m.Key)]
		if e == nil {
			e = &seen{topics: map[string]bool{}, partitions: map[int32]bool{}}
			events[string(m.Key)] = e
		}
		e.topics[m.Topic] = true
		e.partitions[m.Partition] = true
		return nil
	})
	eventually(t, "every node's four events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(events) < nodes {
			return false
		}
		for _, e := range events {
			if len(e.topics) < len(outTopics) {
				return false
			}
		}
		return true
	})
	sub.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		e := events[id.String()]
		if e == nil {
			t.Fatalf("no events for %s", id)
		}
		want := bus.KeyPartition([]byte(id.String()), kafkatest.DefaultPartitions)
		if len(e.partitions) != 1 || !e.partitions[want] {
			t.Errorf("%s: events on partitions %v, want only %d", id, e.partitions, want)
		}
	}
	if len(events) != nodes {
		t.Errorf("events keyed by %d entities, want %d", len(events), nodes)
	}
}
