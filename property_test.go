package registrar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// tb is what both *testing.T and *rapid.T provide.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// workflow is the registration workflow driven synchronously: messages go
// straight to the Runtime's handler, as the bus would deliver them.
type workflow struct {
	rt       *registrar.RegistrationRuntime
	rec      *bustest.Recorder
	store    *memory.Store
	registry *memory.Registry
	sweeper  *registrar.Sweeper
	clock    time.Time
	topics   registration.Topics
	// delivered logs every message handed to the runtime, in order.
	delivered []*bus.Message
	nextCheck int // index into the recorder's timeout-check messages
}

func newWorkflow(t tb, opts ...registrar.Option) *workflow {
	t.Helper()
	w := &workflow{
		rec:      &bustest.Recorder{},
		store:    memory.NewStore(memory.StoreConfig{}),
		registry: memory.NewRegistry(memory.RegistryConfig{}),
		clock:    time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
	}
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, w.store, w.registry); err != nil {
		t.Fatal(err)
	}
	c := contract.Default()
	rt, err := registrar.NewRegistration(c, w.rec, w.store, exec, registrar.RegistrationConfig{NoSweeper: true},
		append([]registrar.Option{registrar.WithClock(func() time.Time { return w.clock })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.rt = rt
	w.topics = mustReducer(t, c).Config().Topics
	w.sweeper, err = registrar.NewSweeper(w.store, w.rec, registrar.SweeperConfig{
		Topic: w.topics.TimeoutCheck, Clock: func() time.Time { return w.clock }, Resend: time.Nanosecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe the runtime's handler so that Deliver reaches it, and so
	// that dead letters are recorded as the bus would publish them.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.rt.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if err := w.rec.WaitSubscribed(ctx, c.Group(), w.topics.Heartbeat); err != nil {
		t.Fatal(err)
	}
	return w
}

func mustReducer(t tb, c *contract.Contract) *registration.Reducer {
	t.Helper()
	r, err := registration.New(registrar.ReducerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var envSeq uint64

func (w *workflow) message(t tb, topic string, node uuid.UUID, payload any) *bus.Message {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	envSeq++
	env := &bus.Envelope{
		EnvelopeID:        uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "env-%d", envSeq)),
		EnvelopeTimestamp: w.clock, CorrelationID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "corr-%d", envSeq)),
		Payload: raw,
	}
	m, err := bus.EnvelopeMessage(topic, env, bus.WithKey([]byte(node.String())))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *workflow) deliver(t tb, m *bus.Message) {
	t.Helper()
	if err := w.rec.Deliver(context.Background(), m); err != nil {
		t.Fatalf("deliver %s: %v", m.Topic, err)
	}
	w.delivered = append(w.delivered, m)
}

// sweep runs the sweeper and delivers the checks it published.
func (w *workflow) sweep(t tb) {
	t.Helper()
	if _, err := w.sweeper.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	checks := w.rec.PublishedTo(w.topics.TimeoutCheck)
	for _, m := range checks[w.nextCheck:] {
		w.deliver(t, m)
	}
	w.nextCheck = len(checks)
}

func (w *workflow) snapshot(t tb) string {
	t.Helper()
	all, err := registration.ListAll(context.Background(), w.store, registration.Query{Limit: registration.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWorkflowProperties drives random interleavings of introspections,
// acks, heartbeats, timeout checks, sweeps, duplicates and redeliveries for
// several nodes and checks the workflow's invariants after every step.
func TestWorkflowProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := newWorkflow(rt)
		nodes := make([]uuid.UUID, rapid.IntRange(1, 4).Draw(rt, "nodes"))
		for i := range nodes {
			nodes[i] = uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "node-%d", i))
		}
		lastHB := map[uuid.UUID]time.Time{}
		prev := map[uuid.UUID]registration.State{}
		check := func(cause string, introspected uuid.UUID) {
			for _, id := range nodes {
				p, err := w.store.Load(context.Background(), id)
				if err != nil {
					rt.Fatal(err)
				}
				if p == nil {
					continue
				}
				if p.LastHeartbeatAt.Before(lastHB[id]) {
					rt.Fatalf("%s: last_heartbeat_at of %s went back from %v to %v", cause, id, lastHB[id], p.LastHeartbeatAt)
				}
				lastHB[id] = p.LastHeartbeatAt
				if before := prev[id]; before.Terminal() && p.State != before && introspected != id {
					rt.Fatalf("%s: %s left terminal state %s for %s without an introspection", cause, id, before, p.State)
				}
				prev[id] = p.State
				svc, registered := w.registry.Get(registration.ServiceID(p.NodeType, id))
				switch p.State {
				case registration.StateActive:
					if !registered || svc.Generation != p.Generation {
						rt.Fatalf("%s: active node %s (generation %d) is not in the registry (%v, %+v)", cause, id, p.Generation, registered, svc)
					}
				case registration.StateLivenessExpired:
					if registered {
						rt.Fatalf("%s: expired node %s is still in the registry", cause, id)
					}
				}
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			node := nodes[rapid.IntRange(0, len(nodes)-1).Draw(rt, "node")]
			action := rapid.SampledFrom([]string{"introspect", "ack", "heartbeat", "heartbeat", "check-ack", "check-liveness",
				"sweep", "advance", "advance", "redeliver", "duplicate"}).Draw(rt, "action")
			introspected := uuid.Nil
			switch action {
			case "introspect":
				w.deliver(rt, w.message(rt, w.topics.Introspection, node, &registration.Introspection{
					NodeID: node, NodeType: "effect", NodeVersion: bus.Version{Major: 1}, CorrelationID: uuid.New(), Timestamp: w.clock,
					Endpoints: map[string]string{"health": "http://127.0.0.1:9/health"}}))
				introspected = node
			case "ack":
				w.deliver(rt, w.message(rt, w.topics.Ack, node, &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: w.clock}))
			case "heartbeat":
				w.deliver(rt, w.message(rt, w.topics.Heartbeat, node, &registration.Heartbeat{NodeID: node, UptimeSeconds: 1, Timestamp: w.clock}))
			case "check-ack", "check-liveness":
				kind := registration.TimeoutAck
				if action == "check-liveness" {
					kind = registration.TimeoutLiveness
				}
				m, err := registrar.TimeoutCheckMessage(w.topics.TimeoutCheck, node, kind, w.clock.Add(-time.Second), w.clock)
				if err != nil {
					rt.Fatal(err)
				}
				w.deliver(rt, m)
			case "sweep":
				w.sweep(rt)
			case "advance":
				w.clock = w.clock.Add(time.Duration(rapid.IntRange(1, 45).Draw(rt, "seconds")) * time.Second)
			case "redeliver", "duplicate":
				if len(w.delivered) == 0 {
					continue
				}
				i := len(w.delivered) - 1
				if action == "redeliver" {
					i = rapid.IntRange(0, i).Draw(rt, "which")
				}
				m := w.delivered[i]
				if m.Topic == w.topics.Introspection {
					var env bus.Envelope
					if err := json.Unmarshal(m.Value, &env); err == nil {
						var in registration.Introspection
						if p, err := registration.DecodeIntrospection(env.Payload); err == nil {
							in = *p
						}
						introspected = in.NodeID
					}
				}
				w.deliver(rt, m)
			}
			check(action, introspected)
		}
		if st := w.rt.Stats(); st.DeadLettered != 0 {
			rt.Fatalf("%d valid messages were dead-lettered", st.DeadLettered)
		}
		// Replaying any delivered prefix of node messages a second time
		// changes no projection. (A timeout check is decided at the
		// runtime's clock, not at its stamp: replayed later, it may find
		// a deadline that has passed since, and rightly time the node out.)
		before := w.snapshot(rt)
		k := rapid.IntRange(0, len(w.delivered)).Draw(rt, "prefix")
		for _, m := range w.delivered[:k] {
			if m.Topic == w.topics.TimeoutCheck {
				continue
			}
			if err := w.rec.Deliver(context.Background(), m); err != nil {
				rt.Fatal(err)
			}
		}
		if after := w.snapshot(rt); after != before {
			rt.Fatalf("replaying %d of %d messages changed the projections:\nbefore %s\nafter  %s", k, len(w.delivered), before, after)
		}
		check("replay", uuid.Nil)
	})
}

type memoryService = memory.Service

var registrarTimeoutCheck = registrar.TimeoutCheckMessage
