package registrar_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestBatchEqualsOneByOne: a random stream of messages for a few nodes,
// handled one by one by one runtime (without the state cache and without
// coalescing: every input read and decided on its own) and in random
// micro-batches by another (with both), leaves the same projections and
// registry, and publishes the same events per entity in the same order.
func TestBatchEqualsOneByOne(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		single := newWorkflow(rt, registrar.WithStateCache(0), registrar.WithCoalescing(false))
		batched := newWorkflow(rt)
		nodes := make([]uuid.UUID, rapid.IntRange(1, 5).Draw(rt, "nodes"))
		for i := range nodes {
			nodes[i] = uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "batch-node-%d", i))
		}
		var stream []*bus.Message
		gen := single // messages are built once, on one workflow's clock
		for range rapid.IntRange(1, 80).Draw(rt, "messages") {
			node := nodes[rapid.IntRange(0, len(nodes)-1).Draw(rt, "node")]
			gen.clock = gen.clock.Add(time.Duration(rapid.IntRange(0, 40).Draw(rt, "seconds")) * time.Second)
			var m *bus.Message
			switch rapid.IntRange(0, 6).Draw(rt, "kind") {
			case 0:
				m = gen.message(rt, gen.topics.Introspection, node, &registration.Introspection{NodeID: node, NodeType: "reducer",
					NodeVersion: bus.Version{Major: 1}, CorrelationID: uuid.New(), Timestamp: gen.clock})
			case 1:
				m = gen.message(rt, gen.topics.Ack, node, &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: gen.clock})
			case 2, 3:
				m = gen.message(rt, gen.topics.Heartbeat, node, &registration.Heartbeat{NodeID: node, UptimeSeconds: 1, Timestamp: gen.clock})
			case 4, 5:
				kind := registration.TimeoutAck
				if rapid.Bool().Draw(rt, "liveness") {
					kind = registration.TimeoutLiveness
				}
				var err error
				m, err = timeoutCheck(gen, node, kind)
				if err != nil {
					rt.Fatal(err)
				}
			case 6:
				if len(stream) == 0 {
					continue
				}
				m = stream[rapid.IntRange(0, len(stream)-1).Draw(rt, "redeliver")]
			}
			stream = append(stream, m)
		}
		// Both decide timeouts at the same clock: the end of the stream.
		batched.clock = single.clock
		ctx := context.Background()
		for _, m := range stream {
			if err := single.rt.Handle(ctx, m); err != nil {
				rt.Fatalf("single: %v", err)
			}
		}
		for i := 0; i < len(stream); {
			n := rapid.IntRange(1, len(stream)-i).Draw(rt, "batch")
			if err := batched.rt.HandleBatch(ctx, stream[i:i+n]); err != nil {
				rt.Fatalf("batch: %v", err)
			}
			i += n
		}
		if a, b := single.snapshot(rt), batched.snapshot(rt); a != b {
			rt.Fatalf("projections differ:\none by one %s\nbatched    %s", a, b)
		}
		if a, b := single.registry.Services(), batched.registry.Services(); !slices.EqualFunc(a, b, func(x, y memoryService) bool {
			return x.ID == y.ID && x.Generation == y.Generation
		}) {
			rt.Fatalf("registries differ: %v vs %v", a, b)
		}
		if a, b := eventsByEntity(single), eventsByEntity(batched); a != b {
			rt.Fatalf("events differ:\none by one %s\nbatched    %s", a, b)
		}
	})
}

// timeoutCheck builds a check of node's current deadline, as the sweeper
// would, as of w's clock.
func timeoutCheck(w *workflow, node uuid.UUID, kind registration.TimeoutKind) (*bus.Message, error) {
	return registrarTimeoutCheck(w.topics.TimeoutCheck, node, kind, w.clock.Add(-time.Second), w.clock)
}

// eventsByEntity renders the published output events, grouped by key in
// publish order.
func eventsByEntity(w *workflow) string {
	by := map[string][]string{}
	var keys []string
	for _, m := range w.rec.Published() {
		if m.Topic == w.topics.TimeoutCheck || strings.HasPrefix(m.Topic, "onex.dlq") {
			continue
		}
		k := string(m.Key)
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], m.Headers[bus.HeaderMessageID]+"@"+m.Topic)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %v\n", k, by[k])
	}
	return b.String()
}

// TestBatchContentErrorIndex: a malformed message in a batch comes back as a
// BatchError at its index, after the messages before it were applied.
func TestBatchContentErrorIndex(t *testing.T) {
	w := newWorkflow(t)
	node := uuid.New()
	good := w.message(t, w.topics.Introspection, node, &registration.Introspection{NodeID: node, NodeType: "effect",
		CorrelationID: uuid.New(), Timestamp: w.clock})
	bad := &bus.Message{Topic: w.topics.Heartbeat, Value: []byte(`{"envelope_id":"x"}`)}
	w.clock = w.clock.Add(time.Second)
	later := w.message(t, w.topics.Ack, node, &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: w.clock})
	err := w.rt.HandleBatch(context.Background(), []*bus.Message{good, bad, later})
	var be *bus.BatchError
	if !errors.As(err, &be) || be.Index != 1 || !bus.IsContentError(be.Err) {
		t.Fatalf("error %v, want a content BatchError at 1", err)
	}
	if st := stateOf(t, w.store, node); st != registration.StateAwaitingAck {
		t.Fatalf("state %s: the message before the bad one was not applied (or the one after was)", st)
	}
}
