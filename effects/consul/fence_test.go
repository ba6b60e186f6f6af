package consul_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// gatedAgent is an Agent that can hold one write: armed for an operation
// ("register" or "deregister"), the next such write signals reached and
// waits for release before it goes to the agent. It stands for a process
// that stalls between its read and its write.
type gatedAgent struct {
	consul.Agent
	mu      sync.Mutex
	armed   string
	reached chan string // the id of the held write
	release chan struct{}
}

func newGatedAgent(a consul.Agent) *gatedAgent {
	return &gatedAgent{Agent: a, reached: make(chan string, 1), release: make(chan struct{})}
}

func (g *gatedAgent) arm(op string) {
	g.mu.Lock()
	g.armed = op
	g.mu.Unlock()
}

func (g *gatedAgent) gate(op, id string) {
	g.mu.Lock()
	hold := g.armed == op
	if hold {
		g.armed = ""
	}
	g.mu.Unlock()
	if hold {
		g.reached <- id
		<-g.release
	}
}

func (g *gatedAgent) ServiceRegisterOpts(s *api.AgentServiceRegistration, o api.ServiceRegisterOpts) error {
	g.gate("register", s.ID)
	return g.Agent.ServiceRegisterOpts(s, o)
}

func (g *gatedAgent) ServiceDeregisterOpts(id string, q *api.QueryOptions) error {
	g.gate("deregister", id)
	return g.Agent.ServiceDeregisterOpts(id, q)
}

// projections is a memory store the tests set projections in directly.
type projections struct {
	t *testing.T
	*memory.Store
}

func newProjections(t *testing.T) *projections {
	return &projections{t: t, Store: memory.NewStore(memory.StoreConfig{})}
}

// set writes p as the node's projection, whatever was there.
func (s *projections) set(p registration.Projection) {
	s.t.Helper()
	ctx := context.Background()
	cur, err := s.Load(ctx, p.EntityID)
	if err != nil {
		s.t.Fatal(err)
	}
	expected := registration.StateNone
	if cur != nil {
		expected = cur.State
	}
	p.Domain = registration.DefaultDomain
	res, err := s.Execute(ctx, intent.Intent{Type: registration.IntentUpsert, Payload: &registration.UpsertRegistration{
		Projection: p, Columns: registration.AllColumns, ExpectedState: expected}})
	if err != nil || res.Status != intent.Applied {
		s.t.Fatalf("set projection %s: %+v, %v", p.EntityID, res, err)
	}
}

func activeProjection(node uuid.UUID, nodeType, version string, gen int64) registration.Projection {
	return registration.Projection{EntityID: node, State: registration.StateActive, NodeType: nodeType, NodeVersion: version,
		Endpoints: map[string]string{"health": "http://10.1.2.3:8086/health"}, Generation: gen}
}

func registerIntent(p registration.Projection) intent.Intent {
	return intent.Intent{Type: registration.IntentConsulReg, Target: registration.ServiceID(p.NodeType, p.EntityID),
		Payload: &registration.ConsulRegister{NodeID: p.EntityID, NodeType: p.NodeType, NodeVersion: p.NodeVersion,
			Endpoints: p.Endpoints, Generation: p.Generation}}
}

func deregisterIntent(p registration.Projection) intent.Intent {
	return intent.Intent{Type: registration.IntentConsulDereg, Target: registration.ServiceID(p.NodeType, p.EntityID),
		Payload: &registration.ConsulDeregister{NodeID: p.EntityID, NodeType: p.NodeType, Generation: p.Generation}}
}

func passIntent(p registration.Projection, at time.Time) intent.Intent {
	return intent.Intent{Type: registration.IntentConsulPassTTL, Target: registration.ServiceID(p.NodeType, p.EntityID),
		Payload: &registration.ConsulPassTTL{NodeID: p.EntityID, NodeType: p.NodeType, NodeVersion: p.NodeVersion,
			Endpoints: p.Endpoints, Generation: p.Generation, At: at}}
}

// ownedServices returns the agent's services registrar owns, by id.
func ownedServices(t *testing.T, a *consultest.Agent) map[string]*api.AgentService {
	t.Helper()
	svcs, err := a.Client.Agent().ServicesWithFilter(`Meta.registered_by == "registrar"`)
	if err != nil {
		t.Fatalf("agent services: %v", err)
	}
	return svcs
}

// wantRegistry fails the test unless the agent's owned services are
// exactly those of the active projections among ps, with their generation,
// version and address, and a passing check.
func wantRegistry(t *testing.T, a *consultest.Agent, ps ...registration.Projection) {
	t.Helper()
	got := ownedServices(t, a)
	want := map[string]registration.Projection{}
	for _, p := range ps {
		if p.State == registration.StateActive {
			want[registration.ServiceID(p.NodeType, p.EntityID)] = p
		}
	}
	for id, p := range want {
		s := got[id]
		if s == nil {
			t.Errorf("service %s (generation %d) is not registered", id, p.Generation)
			continue
		}
		host, port := registration.ServiceAddress(p.Endpoints)
		if s.Meta["generation"] != strconv.FormatInt(p.Generation, 10) || s.Meta["node_version"] != p.NodeVersion ||
			s.Address != host || s.Port != port {
			t.Errorf("service %s: generation %s, version %s, address %s:%d; want %d, %s, %s:%d",
				id, s.Meta["generation"], s.Meta["node_version"], s.Address, s.Port, p.Generation, p.NodeVersion, host, port)
		}
		if st, _ := checkStatus(t, a, consul.CheckID(id)); st != api.HealthPassing {
			t.Errorf("service %s: check %q, want passing", id, st)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("service %s is registered, but no active projection holds it", id)
		}
	}
}

// twoProcesses returns two fenced effects on one agent, as two registrar
// processes holding one entity's topics on different partitions would be:
// the first through a gate that holds one write.
func twoProcesses(t *testing.T, a *consultest.Agent, store consul.Projections) (held *consul.Effect, gate *gatedAgent, other *consul.Effect) {
	gate = newGatedAgent(a.Client.Agent())
	held = newTestEffect(t, consul.Config{Agent: gate, Projections: store})
	other = newTestEffect(t, consul.Config{Agent: a.Client.Agent(), Projections: store})
	return held, gate, other
}

// runHeld starts in on eff and waits until its write reached the gate. The
// returned function releases the write and returns the intent's result.
func runHeld(t *testing.T, eff *consul.Effect, gate *gatedAgent, op string, in intent.Intent) func() (intent.Result, error) {
	t.Helper()
	gate.arm(op)
	type outcome struct {
		res intent.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := eff.Execute(context.Background(), in)
		done <- outcome{res, err}
	}()
	select {
	case <-gate.reached:
	case o := <-done:
		t.Fatalf("%s finished without reaching its %s: %+v, %v", in.Type, op, o.res, o.err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not reach its %s", in.Type, op)
	}
	return func() (intent.Result, error) {
		close(gate.release)
		o := <-done
		return o.res, o.err
	}
}

// TestFenceStaleDeregisterAgainstReRegistration: process 1 decided the
// expiry of generation 1 and read the agent (generation 1 registered);
// before its delete, the node registers again (generation 2) and process 2
// registers generation 2. Process 1's delete then lands on generation 2's
// service. Its next round reads the projection again and registers
// generation 2 back: Consul ends as the projection says.
func TestFenceStaleDeregisterAgainstReRegistration(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	p1, gate, p2 := twoProcesses(t, a, store)
	node := uuid.New()

	gen1 := activeProjection(node, "effect", "1.0.0", 1)
	store.set(gen1)
	exec(t, p2, registerIntent(gen1), intent.Applied)
	expired := gen1
	expired.State = registration.StateLivenessExpired
	store.set(expired)

	finish := runHeld(t, p1, gate, "deregister", deregisterIntent(gen1))
	gen2 := activeProjection(node, "effect", "1.0.1", 2)
	store.set(gen2)
	exec(t, p2, registerIntent(gen2), intent.Applied)
	wantRegistry(t, a, gen2)

	res, err := finish()
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != intent.Skipped || !strings.Contains(res.Reason, "generation 2") {
		t.Errorf("stale deregister: %v (%s), want skipped, naming generation 2 that the projection holds", res.Status, res.Reason)
	}
	wantRegistry(t, a, gen2)
}

// TestFenceRefreshAgainstExpiry: process 1 decided a metadata refresh and
// read the agent (the old version registered); before its register, the
// node's liveness expires and process 2 deregisters it. Process 1's
// register then puts an expired node back with a passing check; its next
// round reads the projection again and removes it.
func TestFenceRefreshAgainstExpiry(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	p1, gate, p2 := twoProcesses(t, a, store)
	node := uuid.New()

	old := activeProjection(node, "effect", "1.0.0", 3)
	store.set(old)
	exec(t, p2, registerIntent(old), intent.Applied)
	refreshed := activeProjection(node, "effect", "1.1.0", 3)
	store.set(refreshed)

	finish := runHeld(t, p1, gate, "register", registerIntent(refreshed))
	expired := refreshed
	expired.State = registration.StateLivenessExpired
	store.set(expired)
	exec(t, p2, deregisterIntent(expired), intent.Applied)
	wantRegistry(t, a)

	res, err := finish()
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != intent.Skipped || !strings.Contains(res.Reason, "liveness_expired") {
		t.Errorf("stale refresh: %v (%s), want skipped, naming the expiry", res.Status, res.Reason)
	}
	wantRegistry(t, a)
}

// TestFenceHealAgainstExpiry: a heartbeat's TTL pass finds the service
// missing and heals it from the projection (active); before its register,
// the node expires and the expiry's deregister finds nothing to remove.
// The heal's next round sees the expiry and removes what it wrote.
func TestFenceHealAgainstExpiry(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	p1, gate, p2 := twoProcesses(t, a, store)
	node := uuid.New()

	p := activeProjection(node, "effect", "1.0.0", 1)
	store.set(p)
	finish := runHeld(t, p1, gate, "register", passIntent(p, time.Unix(1000, 0)))
	expired := p
	expired.State = registration.StateLivenessExpired
	store.set(expired)
	exec(t, p2, deregisterIntent(expired), intent.Applied)

	res, err := finish()
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != intent.Skipped {
		t.Errorf("heal after an expiry: %v (%s), want skipped", res.Status, res.Reason)
	}
	wantRegistry(t, a)
}

// TestFenceHeals: the hot path heals what the agent lost or holds wrong,
// from the projection: a TTL pass of a missing service registers it with
// a passing check; of a service registered with an older generation or
// another version, rewrites it; a register of a node whose type changed
// leaves one service, the new type's.
func TestFenceHeals(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})

	t.Run("missing", func(t *testing.T) {
		p := activeProjection(uuid.New(), "effect", "2.0.0", 4)
		store.set(p)
		exec(t, eff, passIntent(p, time.Unix(1000, 0)), intent.Applied)
		wantRegistry(t, a, p)
		exec(t, eff, deregisterIntent(p), intent.Skipped) // still active: stays
		wantRegistry(t, a, p)
		expired := p
		expired.State = registration.StateLivenessExpired
		store.set(expired)
		exec(t, eff, deregisterIntent(p), intent.Applied)
		wantRegistry(t, a)
	})
	t.Run("older generation or other version", func(t *testing.T) {
		node := uuid.New()
		old := activeProjection(node, "effect", "2.0.0", 4)
		cur := activeProjection(node, "effect", "2.1.0", 5)
		store.set(old)
		exec(t, eff, registerIntent(old), intent.Applied)
		store.set(cur)
		exec(t, eff, passIntent(cur, time.Unix(1000, 0)), intent.Applied)
		wantRegistry(t, a, cur)
		// A pass of the older generation changes nothing.
		exec(t, eff, passIntent(old, time.Unix(1001, 0)), intent.Skipped)
		wantRegistry(t, a, cur)
		store.set(registration.Projection{EntityID: node, State: registration.StateLivenessExpired, NodeType: "effect", Generation: 5})
		exec(t, eff, deregisterIntent(cur), intent.Applied)
	})
	t.Run("node type change", func(t *testing.T) {
		node := uuid.New()
		before := activeProjection(node, "effect", "1.0.0", 2)
		store.set(before)
		exec(t, eff, registerIntent(before), intent.Applied)
		after := activeProjection(node, "compute", "1.0.0", 2)
		store.set(after)
		// The decision's deregister of the old id, then its register of
		// the new one; either alone would converge.
		exec(t, eff, deregisterIntent(before), intent.Applied)
		exec(t, eff, registerIntent(after), intent.Applied)
		wantRegistry(t, a, after)
		// A stale register of the old type does not bring it back.
		exec(t, eff, registerIntent(before), intent.Skipped)
		wantRegistry(t, a, after)
		store.set(registration.Projection{EntityID: node, State: registration.StateLivenessExpired, NodeType: "compute", Generation: 2})
		exec(t, eff, deregisterIntent(after), intent.Applied)
	})
}

// TestReconcilerRepairsUnfencedRace: without Projections the effect's
// fence is a read before the write, and the stale-deregister race removes
// the newer registration; one reconciler pass registers it back, and a
// second pass finds nothing to do.
func TestReconcilerRepairsUnfencedRace(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	gate := newGatedAgent(a.Client.Agent())
	p1 := newTestEffect(t, consul.Config{Agent: gate})
	p2 := newTestEffect(t, consul.Config{Agent: a.Client.Agent()})
	node := uuid.New()
	gen1 := activeProjection(node, "effect", "1.0.0", 1)
	exec(t, p2, registerIntent(gen1), intent.Applied)
	finish := runHeld(t, p1, gate, "deregister", deregisterIntent(gen1))
	gen2 := activeProjection(node, "effect", "1.0.0", 2)
	store.set(gen2)
	exec(t, p2, registerIntent(gen2), intent.Applied)
	if res, err := finish(); err != nil || res.Status != intent.Applied {
		t.Fatalf("unfenced stale deregister: %+v, %v", res, err)
	}
	if got := ownedServices(t, a); len(got) != 0 {
		t.Fatalf("the unfenced race left %d services; the test no longer shows the race", len(got))
	}
	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: p2, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rec.Reconcile(context.Background())
	if err != nil || st.Registered != 1 || st.Changes() != 1 {
		t.Fatalf("reconcile: %+v, %v; want one registration", st, err)
	}
	wantRegistry(t, a, gen2)
	if st, err := rec.Reconcile(context.Background()); err != nil || st.Changes() != 0 {
		t.Fatalf("second pass: %+v, %v; want no change", st, err)
	}
}

// TestRefusedRegistrationStillRemovesStale: a node whose type changed to
// a registration the agent refuses for good (a health endpoint on
// 0.0.0.0) loses its old type's service all the same, and the register
// fails permanently, naming the new service.
func TestRefusedRegistrationStillRemovesStale(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	node := uuid.New()
	before := activeProjection(node, "effect", "1.0.0", 1)
	store.set(before)
	exec(t, eff, registerIntent(before), intent.Applied)
	after := activeProjection(node, "compute", "1.0.0", 1)
	after.Endpoints = map[string]string{"health": "http://0.0.0.0:8080/health"}
	store.set(after)
	_, err := eff.Execute(context.Background(), registerIntent(after))
	if !intent.IsPermanent(err) || !strings.Contains(err.Error(), registration.ServiceID("compute", node)) {
		t.Fatalf("register refused by the agent: %v; want a permanent error naming the new service", err)
	}
	if got := ownedServices(t, a); len(got) != 0 {
		t.Errorf("after the refused registration %d services stay; want the old type's removed", len(got))
	}
}
