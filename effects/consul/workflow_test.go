package consul_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

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

// simClock is a clock that moves only when told to.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *simClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestWorkflowWithConsul runs the registration workflow on the memory bus
// and store with the Consul effects against a real agent: nodes introspect,
// are acked while the agent is down (the runtime retries until it is back),
// heartbeat, and some fall silent. At the end every active node is
// registered in Consul with its generation and a passing check, and every
// expired node is gone.
func TestWorkflowWithConsul(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Timeout: 2 * time.Second})

	clock := &simClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := contract.Default()
	b, err := membus.New(membus.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, nil); err != nil {
		t.Fatal(err)
	}
	if err := eff.Register(exec); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(c, b, store, exec, registrar.RegistrationConfig{SweepInterval: 5 * time.Millisecond},
		registrar.WithClock(clock.Now),
		registrar.WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	red, err := registration.New(registrar.ReducerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	topics := red.Config().Topics

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		_ = rt.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	type node struct {
		id      uuid.UUID
		typ     string
		expires bool
	}
	var nodes []node
	for i := range 8 {
		nodes = append(nodes, node{id: uuid.New(), typ: registration.NodeTypes[i%len(registration.NodeTypes)], expires: i%3 == 0})
	}
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
	await := func(what string, cond func(map[registration.State]int) bool) {
		t.Helper()
		for {
			counts, err := store.CountByState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cond(counts) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v (states: %v, stats: %+v)", what, ctx.Err(), counts, rt.Stats())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	drained := func() {
		t.Helper()
		for b.Lag(c.Group()) > 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for the runtime to catch up: %v", ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	for i, n := range nodes {
		publish(topics.Introspection, n.id, &registration.Introspection{
			NodeID: n.id, NodeType: n.typ, NodeVersion: bus.Version{Major: 1, Minor: 4, Patch: 2},
			Capabilities:  json.RawMessage(`{"read":true}`),
			Endpoints:     map[string]string{"health": fmt.Sprintf("http://10.0.0.%d:8080/health", i+1)},
			CorrelationID: uuid.New(), Timestamp: clock.Now(),
		})
	}
	await("every node awaiting its ack", func(c map[registration.State]int) bool { return c[registration.StateAwaitingAck] == len(nodes) })

	// The acks arrive while the agent is down: consul.register fails with
	// a retryable error, and the runtime retries until the agent is back.
	a.Stop()
	clock.Advance(time.Second)
	for _, n := range nodes {
		publish(topics.Ack, n.id, &registration.Ack{CommandID: uuid.New(), NodeID: n.id, CorrelationID: uuid.New(), Timestamp: clock.Now()})
	}
	for rt.Stats().Retries < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("no retries while the agent is down: %+v", rt.Stats())
		case <-time.After(5 * time.Millisecond):
		}
	}
	a.Restart()
	await("every node active", func(c map[registration.State]int) bool { return c[registration.StateActive] == len(nodes) })
	drained()

	// Heartbeats until the silent nodes' liveness window has passed.
	const every = 30 * time.Second
	rounds := 2 + int((registration.DefaultLivenessWindow+every-1)/every)
	for round := 1; round <= rounds; round++ {
		clock.Advance(every)
		for _, n := range nodes {
			if n.expires && round > 1 {
				continue
			}
			publish(topics.Heartbeat, n.id, &registration.Heartbeat{
				NodeID: n.id, NodeType: n.typ, NodeVersion: "1.4.2", UptimeSeconds: float64(round * 30), Timestamp: clock.Now(),
			})
		}
		drained()
	}
	nExpire := 0
	for _, n := range nodes {
		if n.expires {
			nExpire++
		}
	}
	await("active and expired nodes", func(c map[registration.State]int) bool {
		return c[registration.StateActive] == len(nodes)-nExpire && c[registration.StateLivenessExpired] == nExpire
	})
	drained()

	checks, err := a.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		id := registration.ServiceID(n.typ, n.id)
		p, err := store.Load(ctx, n.id)
		if err != nil || p == nil {
			t.Fatalf("projection of %s: %v, %v", n.id, p, err)
		}
		svc := agentService(t, a, id)
		if n.expires {
			if svc != nil {
				t.Errorf("expired node %s is still registered", id)
			}
			continue
		}
		if svc == nil {
			t.Errorf("active node %s is not registered", id)
			continue
		}
		if want := fmt.Sprint(p.Generation); svc.Meta[consul.MetaGeneration] != want {
			t.Errorf("%s: generation %q, want %s", id, svc.Meta[consul.MetaGeneration], want)
		}
		chk := checks[consul.CheckID(id)]
		if chk == nil || chk.Status != api.HealthPassing || !strings.Contains(chk.Output, "heartbeat at") {
			t.Errorf("%s: check %+v, want passing after a heartbeat", id, chk)
		}
	}
	eventually(t, 20*time.Second, func() string {
		for _, n := range nodes {
			id := registration.ServiceID(n.typ, n.id)
			got := len(catalogInstances(t, a, registration.ServiceName(n.typ), id))
			if want := map[bool]int{true: 0, false: 1}[n.expires]; got != want {
				return fmt.Sprintf("catalog has %d instances of %s (expires %v)", got, id, n.expires)
			}
		}
		return ""
	})
	if st := rt.Stats(); st.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered", st.DeadLettered)
	}
}
