package consul_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// healStore is what a heal world needs of its projection store: the
// runtime's reads, and the reconciler's and the fenced effect's.
type healStore interface {
	registration.Store
	consul.ReconcileStore
}

// healWorldConfig configures a [healWorld].
type healWorldConfig struct {
	// postgres puts the projections in a Postgres schema of the test's
	// own (skipped without REGISTRAR_TEST_PG); else in the memory store.
	postgres bool
	// consul is the effect's configuration; the address, the projections
	// and the logger are set by the world.
	consul consul.Config
	// reconcileInterval, if not zero, runs the reconciler in the runtime
	// at that interval.
	reconcileInterval time.Duration
	// reducer edits the reducer's configuration.
	reducer func(*registration.Config)
}

// healWorld is the registration runtime on the memory bus, with a
// projection store, the Consul effect in fenced mode against a real agent
// and its reconciler. Nodes talk to it through the bus, on a simulated
// clock that moves only when told to.
type healWorld struct {
	t      *testing.T
	ctx    context.Context
	agent  *consultest.Agent
	eff    *consul.Effect
	rec    *consul.Reconciler
	store  healStore             // the runtime's
	proj   consul.ReconcileStore // the effect's and the reconciler's
	bus    *membus.Bus
	clock  *simClock
	rt     *registrar.RegistrationRuntime
	group  string
	topics registration.Topics
	logs   *lockedBuffer // the effect's and reconciler's log records
}

// healNode is a node of a heal world: what it introspects with.
type healNode struct {
	id      uuid.UUID
	typ     string
	version bus.Version
	host    string
	port    int
}

func (n healNode) serviceID() string { return registration.ServiceID(n.typ, n.id) }

// newHealNodes returns n nodes of every type in turn, each with its own
// address and port.
func newHealNodes(n int) []healNode {
	out := make([]healNode, n)
	for i := range out {
		out[i] = healNode{
			id: uuid.New(), typ: registration.NodeTypes[i%len(registration.NodeTypes)],
			version: bus.Version{Major: 1, Minor: i % 7, Patch: i},
			host:    fmt.Sprintf("10.7.%d.%d", i/250, i%250+1), port: 8000 + i,
		}
	}
	return out
}

// newHealWorld starts an agent and the runtime, which runs until the test
// ends; ctx bounds the whole test.
func newHealWorld(t *testing.T, ctx context.Context, cfg healWorldConfig) *healWorld {
	t.Helper()
	w := &healWorld{t: t, ctx: ctx, clock: &simClock{}, logs: &lockedBuffer{}}
	w.clock.ns.Store(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	exec := intent.NewExecutor()
	if cfg.postgres {
		w.store, w.proj = newPostgresStores(t, exec)
	} else {
		ms := memory.NewStore(memory.StoreConfig{})
		if err := memory.RegisterEffects(exec, ms, nil); err != nil {
			t.Fatal(err)
		}
		w.store, w.proj = ms, ms
	}
	w.agent = consultest.Start(t)
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ccfg := cfg.consul
	ccfg.Address, ccfg.Projections, ccfg.Logger = w.agent.Addr, w.proj, log
	if ccfg.Timeout == 0 {
		ccfg.Timeout = 5 * time.Second
	}
	w.eff = newTestEffect(t, ccfg)
	if err := w.eff.Register(exec); err != nil {
		t.Fatal(err)
	}
	var err error
	w.rec, err = consul.NewReconciler(consul.ReconcilerConfig{Effect: w.eff, Store: w.proj, Logger: log})
	if err != nil {
		t.Fatal(err)
	}

	c := contract.Default()
	w.group = c.Group()
	if w.bus, err = membus.New(membus.Config{Now: w.clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.bus.Close() })
	rc := registrar.RegistrationConfig{SweepInterval: 10 * time.Millisecond, Reducer: cfg.reducer}
	if cfg.reconcileInterval > 0 {
		rc.Reconciler, rc.ReconcileInterval = w.rec, cfg.reconcileInterval
	}
	w.rt, err = registrar.NewRegistration(c, w.bus, w.store, exec, rc,
		registrar.WithClock(w.clock.Now),
		registrar.WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	red, err := registration.New(registrar.ReducerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	w.topics = red.Config().Topics

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.rt.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		_ = w.rt.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// newPostgresStores migrates a schema of the test's own, dropped when it
// ends, and registers the Postgres effects on it with exec. It returns the
// runtime's store and the store the Consul effect and the reconciler read:
// one store on one small pool, as a service wires it. The runtime relays
// intents under a lease that holds one of the pool's connections and the
// fenced effect's read of the projection needs another; the store keeps
// half the pool free of leases (StoreConfig.MaxLeases), which this shows.
func newPostgresStores(t *testing.T, exec *intent.Executor) (runtime *postgres.Store, projections *postgres.Store) {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	newPool := func() *pgxpool.Pool {
		pool, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}
	pool := newPool()
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	schema := "consulheal_" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := postgres.Migrate(ctx, pool, postgres.MigrateConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	if err := postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	var err error
	if runtime, err = postgres.NewStore(pool, postgres.StoreConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	return runtime, runtime
}

func (w *healWorld) publish(topic string, key uuid.UUID, payload any) {
	w.t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		w.t.Fatal(err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: w.clock.Now(), CorrelationID: uuid.New(), SourceTool: "test-node", Payload: raw}
	if err := w.bus.PublishEnvelope(w.ctx, topic, env, bus.WithKey([]byte(key.String()))); err != nil {
		w.t.Fatal(err)
	}
}

func (w *healWorld) introspect(n healNode) {
	w.t.Helper()
	w.publish(w.topics.Introspection, n.id, &registration.Introspection{
		NodeID: n.id, NodeType: n.typ, NodeVersion: n.version,
		Capabilities:  json.RawMessage(`{"read":true}`),
		Endpoints:     map[string]string{"health": fmt.Sprintf("http://%s:%d/health", n.host, n.port)},
		CorrelationID: uuid.New(), Timestamp: w.clock.Now(),
	})
}

func (w *healWorld) ack(n healNode) {
	w.t.Helper()
	w.publish(w.topics.Ack, n.id, &registration.Ack{CommandID: uuid.New(), NodeID: n.id, CorrelationID: uuid.New(), Timestamp: w.clock.Now()})
}

func (w *healWorld) heartbeat(n healNode, uptime float64) {
	w.t.Helper()
	w.publish(w.topics.Heartbeat, n.id, &registration.Heartbeat{
		NodeID: n.id, NodeType: n.typ, NodeVersion: n.version.String(), UptimeSeconds: uptime, Timestamp: w.clock.Now(),
	})
}

// poll calls cond until it returns "", failing the test with its last
// message after timeout or when the test's context ends.
func (w *healWorld) poll(what string, timeout time.Duration, cond func() string) {
	w.t.Helper()
	w.pollEvery(what, timeout, 20*time.Millisecond, cond)
}

// pollEvery is poll that calls cond every interval.
func (w *healWorld) pollEvery(what string, timeout, interval time.Duration, cond func() string) {
	w.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		msg := cond()
		if msg == "" {
			return
		}
		select {
		case <-w.ctx.Done():
			w.t.Fatalf("waiting for %s: %v: %s (stats: %+v)", what, w.ctx.Err(), msg, w.rt.Stats())
		case <-deadline.C:
			w.t.Fatalf("waiting for %s: not after %v: %s (stats: %+v)", what, timeout, msg, w.rt.Stats())
		case <-time.After(interval):
		}
	}
}

// projection returns the node's projection, failing the test if it has
// none.
func (w *healWorld) projection(n healNode) *registration.Projection {
	w.t.Helper()
	p, err := w.store.Load(w.ctx, n.id)
	if err != nil || p == nil {
		w.t.Fatalf("projection of %s: %v, %v", n.id, p, err)
	}
	return p
}

// awaitStates waits until every node's projection is in state want.
func (w *healWorld) awaitStates(nodes []healNode, want registration.State) {
	w.t.Helper()
	w.poll("every node "+want.String(), time.Minute, func() string {
		for _, n := range nodes {
			p, err := w.store.Load(w.ctx, n.id)
			switch {
			case err != nil:
				return err.Error()
			case p == nil:
				return "node " + n.id.String() + " has no projection"
			case p.State != want:
				return "node " + n.id.String() + " is " + p.State.String()
			}
		}
		return ""
	})
}

// drained waits until the runtime consumed everything published.
func (w *healWorld) drained() {
	w.t.Helper()
	w.poll("the runtime to catch up", time.Minute, func() string {
		if lag := w.bus.Lag(w.group); lag > 0 {
			return fmt.Sprintf("lag %d", lag)
		}
		return ""
	})
}

// register runs nodes through the workflow: introspection, ack, and one
// heartbeat each, until their projections are active.
func (w *healWorld) register(nodes []healNode) {
	w.t.Helper()
	w.clock.Advance(time.Second)
	for _, n := range nodes {
		w.introspect(n)
	}
	w.awaitStates(nodes, registration.StateAwaitingAck)
	w.clock.Advance(time.Second)
	for _, n := range nodes {
		w.ack(n)
	}
	w.awaitStates(nodes, registration.StateActive)
	w.clock.Advance(time.Second)
	for _, n := range nodes {
		w.heartbeat(n, 3)
	}
	w.drained()
}

// services returns the agent's services registrar owns, by id.
func (w *healWorld) services() map[string]*api.AgentService {
	w.t.Helper()
	svcs, err := w.agent.Client.Agent().ServicesWithFilter(`Meta.registered_by == "registrar"`)
	if err != nil {
		w.t.Fatalf("agent services: %v", err)
	}
	return svcs
}

// registered reports how the agent's service of n differs from what the
// projection p wants ("" if it does not): its id, generation, version,
// address and port, and (if passing) a check that the agent's health API
// reports passing.
func (w *healWorld) registered(svcs map[string]*api.AgentService, n healNode, p *registration.Projection, passing bool) string {
	id := registration.ServiceID(p.NodeType, n.id)
	svc := svcs[id]
	if svc == nil {
		return "service " + id + " is not registered"
	}
	host, port := registration.ServiceAddress(p.Endpoints)
	want := map[string]string{
		consul.MetaNodeID: n.id.String(), consul.MetaNodeVersion: p.NodeVersion,
		consul.MetaGeneration: strconv.FormatInt(p.Generation, 10), consul.MetaRegisteredBy: consul.RegisteredBy,
	}
	switch {
	case !maps.Equal(svc.Meta, want):
		return fmt.Sprintf("service %s: meta %v, want %v", id, svc.Meta, want)
	case svc.Address != host || svc.Port != port:
		return fmt.Sprintf("service %s: address %s:%d, want %s:%d", id, svc.Address, svc.Port, host, port)
	case svc.Service != registration.ServiceName(p.NodeType) || !slices.Equal(svc.Tags, registration.ServiceTags(p.NodeType)):
		return fmt.Sprintf("service %s: name %s, tags %v", id, svc.Service, svc.Tags)
	}
	if !passing {
		return ""
	}
	status, info, err := w.agent.Client.Agent().AgentHealthServiceByID(id)
	if err != nil {
		return fmt.Sprintf("health of %s: %v", id, err)
	}
	if status != api.HealthPassing || info == nil || len(info.Checks) != 1 {
		return fmt.Sprintf("health of %s: %s, %+v; want one passing check", id, status, info)
	}
	// (This API leaves the check's type out.)
	if c := info.Checks[0]; c.CheckID != consul.CheckID(id) || c.Status != api.HealthPassing {
		return fmt.Sprintf("health of %s: check %+v, want its check passing", id, *c)
	}
	return ""
}

// ttlChecks reports the first node whose service has no TTL check on the
// agent ("" if all have one).
func (w *healWorld) ttlChecks(nodes []healNode) string {
	w.t.Helper()
	checks, err := w.agent.Client.Agent().Checks()
	if err != nil {
		w.t.Fatalf("agent checks: %v", err)
	}
	for _, n := range nodes {
		id := w.serviceID(n)
		if c := checks[consul.CheckID(id)]; c == nil || c.Type != "ttl" || c.ServiceID != id {
			return fmt.Sprintf("check of %s: %+v, want its TTL check", id, c)
		}
	}
	return ""
}

// serviceID is the id of n's service, as its projection says.
func (w *healWorld) serviceID(n healNode) string {
	return registration.ServiceID(w.projection(n).NodeType, n.id)
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
