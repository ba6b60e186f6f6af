package consul_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestHealOfUnregistrableNodeKeepsHeartbeats: a node whose health endpoint
// is on 0.0.0.0 (a common bind address) cannot be registered: the agent
// answers 400 "Invalid service address", and the register intent is
// dead-lettered, as before. Its heartbeats must still commit: a TTL pass
// is soft state, and the heal it attempts is the register's business. A
// heal that fails permanently must not fail the heartbeat's decision,
// which would dead-letter the heartbeat and let the node's liveness
// expire while it heartbeats.
func TestHealOfUnregistrableNodeKeepsHeartbeats(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := memory.NewStore(memory.StoreConfig{})
	for _, fenced := range []bool{true, false} {
		cfg := consul.Config{Address: a.Addr}
		if fenced {
			cfg.Projections = store
		}
		eff := newTestEffect(t, cfg)
		p := activeProjection(uuid.New(), "effect", "1.0.0", 1)
		p.Endpoints = map[string]string{"health": "http://0.0.0.0:8080/health"}
		// The projection, as the memory store holds it.
		(&projections{t: t, Store: store}).set(p)
		res, err := eff.Execute(context.Background(), passIntent(p, time.Unix(1000, 0)))
		if err != nil {
			t.Errorf("fenced %t: TTL pass of an unregistrable node: %v (permanent %t); want no error, the pass skipped",
				fenced, err, intent.IsPermanent(err))
			continue
		}
		if res.Status != intent.Skipped {
			t.Errorf("fenced %t: TTL pass of an unregistrable node: %v (%s), want skipped", fenced, res.Status, res.Reason)
		}
	}
}

// TestWorkflowHeartbeatsOfUnregistrableNode runs the workflow: a node with
// its health endpoint on 0.0.0.0 introspects, is acked (its register is
// dead-lettered: the agent refuses the address) and heartbeats. Every
// heartbeat must commit, extending its liveness.
func TestWorkflowHeartbeatsOfUnregistrableNode(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := memory.NewStore(memory.StoreConfig{})
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Timeout: 2 * time.Second, Projections: store})

	clock := &simClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := contract.Default()
	b, err := membus.New(membus.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, nil); err != nil {
		t.Fatal(err)
	}
	if err := eff.Register(exec); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(c, b, store, exec, registrar.RegistrationConfig{NoSweeper: true},
		registrar.WithClock(clock.Now), registrar.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	red, err := registration.New(registrar.ReducerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	topics := red.Config().Topics
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		_ = rt.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	publish := func(topic string, key uuid.UUID, payload any) {
		t.Helper()
		raw, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: clock.Now(), CorrelationID: uuid.New(), SourceTool: "test-node", Payload: raw}
		if err := b.PublishEnvelope(ctx, topic, env, bus.WithKey([]byte(key.String()))); err != nil {
			t.Fatal(err)
		}
	}
	node := uuid.New()
	drained := func() {
		t.Helper()
		for b.Lag(c.Group()) > 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for the runtime to catch up: %v (stats %+v)", ctx.Err(), rt.Stats())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	await := func(what string, cond func(*registration.Projection) bool) {
		t.Helper()
		for {
			if p, _ := store.Load(ctx, node); p != nil && cond(p) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v (stats %+v)", what, ctx.Err(), rt.Stats())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	publish(topics.Introspection, node, &registration.Introspection{
		NodeID: node, NodeType: "effect", NodeVersion: bus.Version{Major: 1},
		Endpoints:     map[string]string{"health": "http://0.0.0.0:8080/health"},
		CorrelationID: uuid.New(), Timestamp: clock.Now(),
	})
	await("awaiting its ack", func(p *registration.Projection) bool { return p.State == registration.StateAwaitingAck })
	clock.Advance(time.Second)
	publish(topics.Ack, node, &registration.Ack{CommandID: uuid.New(), NodeID: node, CorrelationID: uuid.New(), Timestamp: clock.Now()})
	await("active", func(p *registration.Projection) bool { return p.State == registration.StateActive })
	drained()
	deadLettered := rt.Stats().DeadLettered // the register, refused for good
	var last time.Time
	for range 3 {
		clock.Advance(40 * time.Second)
		last = clock.Now()
		publish(topics.Heartbeat, node, &registration.Heartbeat{NodeID: node, NodeType: "effect", NodeVersion: "1.0.0", Timestamp: last})
		drained()
	}
	p, err := store.Load(ctx, node)
	if err != nil || p == nil {
		t.Fatalf("projection: %v, %v", p, err)
	}
	if p.State != registration.StateActive || !p.LastHeartbeatAt.Equal(last) {
		t.Errorf("after 3 heartbeats: state %s, last heartbeat %v; want active, %v", p.State, p.LastHeartbeatAt, last)
	}
	if n := rt.Stats().DeadLettered - deadLettered; n != 0 {
		t.Errorf("%d heartbeats dead-lettered", n)
	}
}
