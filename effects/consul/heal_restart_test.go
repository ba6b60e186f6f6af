package consul_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/reducer/registration"
)

// nextPass waits until a reconcile pass of the runtime that started after
// the call has ended, and returns the runtime's stats then.
func (w *healWorld) nextPass() registrar.Stats {
	w.t.Helper()
	// The pass running now, if any, ends first: the one after it started
	// after the call.
	from := w.rt.Stats().ReconcilePasses
	var st registrar.Stats
	w.poll("a reconcile pass", time.Minute, func() string {
		st = w.rt.Stats()
		if st.ReconcilePasses < from+2 {
			return fmt.Sprintf("%d passes, want %d", st.ReconcilePasses, from+2)
		}
		return ""
	})
	return st
}

// reconcileChanges is what the runtime's reconcile passes changed in all.
func reconcileChanges(st registrar.Stats) [3]int64 {
	return [3]int64{st.ReconcileRegistered, st.ReconcileUpdated, st.ReconcileDeregistered}
}

// TestAgentRestartHeals registers 20 nodes through the workflow (Postgres
// store, memory bus, the fenced Consul effect, the reconciler in the
// runtime), restarts the agent without its data directory, so that it
// comes back without any service, and shows that the next reconcile pass
// registers them all again: with their generation, address, port and
// version, and a passing TTL check. The runtime's Stats count the
// re-registrations. Before that, steady passes and a restart that kept the
// data directory (Consul restores the services from it) changed nothing.
func TestAgentRestartHeals(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const (
		interval = 2 * time.Second
		// slack is what a slow machine adds to the interval: the pass
		// itself, and the tick that a pass during the restart missed.
		slack = 5 * time.Second
	)
	w := newHealWorld(t, ctx, healWorldConfig{postgres: true, reconcileInterval: interval})
	nodes := newHealNodes(20)
	w.register(nodes)
	projs := make(map[uuid.UUID]*registration.Projection, len(nodes))
	for _, n := range nodes {
		projs[n.id] = w.projection(n)
		if projs[n.id].State != registration.StateActive {
			t.Fatalf("node %s is %s", n.id, projs[n.id].State)
		}
	}
	allRegistered := func() string {
		svcs := w.services()
		if len(svcs) != len(nodes) {
			return fmt.Sprintf("%d services, want %d", len(svcs), len(nodes))
		}
		for _, n := range nodes {
			if msg := w.registered(svcs, n, projs[n.id], true); msg != "" {
				return msg
			}
		}
		return ""
	}
	w.poll("Consul to hold every node", time.Minute, allRegistered)
	checks, err := w.agent.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if c := checks[consul.CheckID(n.serviceID())]; c == nil || !strings.Contains(c.Output, "heartbeat at") {
			t.Errorf("check of %s before the restart: %+v, want one a heartbeat passed", n.serviceID(), c)
		}
	}

	// Steady state: a pass with nothing to repair changes nothing.
	before := w.nextPass()
	if after := w.nextPass(); reconcileChanges(after) != reconcileChanges(before) {
		t.Errorf("steady passes changed the registry: registered, updated, deregistered %v, then %v", reconcileChanges(before), reconcileChanges(after))
	}

	// An agent restarted with its data directory restores the services
	// itself: nothing to repair.
	w.agent.Restart()
	if msg := allRegistered(); msg != "" {
		t.Fatalf("after a restart that kept the data directory: %s", msg)
	}
	if after := w.nextPass(); reconcileChanges(after) != reconcileChanges(before) {
		t.Errorf("passes after a restart that kept the services changed the registry: %v, then %v", reconcileChanges(before), reconcileChanges(after))
	}

	// An agent that lost its state comes back without them.
	before = w.rt.Stats()
	w.agent.RestartEmpty()
	restarted := time.Now()
	w.poll("the reconciler to heal the restarted agent", interval+slack, allRegistered)
	healed := time.Since(restarted)
	t.Logf("restart to healed: %v for %d nodes (reconcile interval %v); the pass: %s",
		healed.Round(time.Millisecond), len(nodes), interval, passLog(w.logs.String(), fmt.Sprintf("registered=%d ", len(nodes))))

	// The pass that healed may still be running: its counts land when it
	// ends.
	w.poll("the stats to count the re-registrations", time.Minute, func() string {
		if got := w.rt.Stats().ReconcileRegistered - before.ReconcileRegistered; got < int64(len(nodes)) {
			return fmt.Sprintf("ReconcileRegistered went up by %d", got)
		}
		return ""
	})
	after := w.nextPass()
	if got := reconcileChanges(after); got != [3]int64{before.ReconcileRegistered + int64(len(nodes)), before.ReconcileUpdated, before.ReconcileDeregistered} {
		t.Errorf("reconcile changes %v after the restart, %v before: want exactly %d registered", got, reconcileChanges(before), len(nodes))
	}
	if after.ReconcilePasses <= before.ReconcilePasses {
		t.Errorf("ReconcilePasses %d, %d before the restart", after.ReconcilePasses, before.ReconcilePasses)
	}
	if msg := allRegistered(); msg != "" {
		t.Errorf("after the heal: %s", msg)
	}
	if msg := w.ttlChecks(nodes); msg != "" {
		t.Errorf("after the heal: %s", msg)
	}
	if after.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered", after.DeadLettered)
	}
}

// TestReapedServicesComeBack lets Consul reap the services of active nodes
// (their checks go critical after a TTL of 1 s while the nodes are silent,
// and Consul removes them a minute later), then shows both ways back: a
// heartbeat's TTL pass heals its node's service on the hot path, and a
// reconcile pass registers the rest.
//
// Consul enforces a DeregisterCriticalServiceAfter of at least a minute and
// reaps every 30 s, so this test waits 60 to 100 s.
func TestReapedServicesComeBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	w := newHealWorld(t, ctx, healWorldConfig{
		consul:  consul.Config{CheckTTL: time.Second, DeregisterCriticalServiceAfter: time.Minute},
		reducer: func(c *registration.Config) { c.ConsulTTL = time.Second },
	})
	nodes := newHealNodes(4)
	w.register(nodes)
	w.poll("Consul to hold every node", time.Minute, func() string {
		svcs := w.services()
		for _, n := range nodes {
			if msg := w.registered(svcs, n, w.projection(n), false); msg != "" {
				return msg
			}
		}
		return ""
	})

	// The nodes stay active (the simulated clock stands still) but send
	// no heartbeat: their checks go critical, and Consul reaps them.
	silent := time.Now()
	w.pollEvery("Consul to reap the services", 3*time.Minute, 250*time.Millisecond, func() string {
		if n := len(w.services()); n > 0 {
			return fmt.Sprintf("%d services left", n)
		}
		return ""
	})
	t.Logf("Consul reaped the services %v after they were registered", time.Since(silent).Round(time.Second))
	for _, n := range nodes {
		if p := w.projection(n); p.State != registration.StateActive {
			t.Fatalf("node %s is %s, want active: the test needs active nodes whose services Consul reaped", n.id, p.State)
		}
	}
	if strings.Contains(w.logs.String(), "healed") {
		t.Fatalf("a heal before any heartbeat:\n%s", w.logs)
	}

	// (a) The hot path: node 0's heartbeat starts a new third of the TTL,
	// so its decision passes the TTL; the pass finds the service missing
	// and registers it from the projection.
	w.clock.Advance(time.Second)
	w.heartbeat(nodes[0], 10)
	w.poll("the heartbeat to heal its node's service", 30*time.Second, func() string {
		return w.registered(w.services(), nodes[0], w.projection(nodes[0]), false)
	})
	w.drained()
	if !strings.Contains(w.logs.String(), "consul service healed from the projection") ||
		!strings.Contains(w.logs.String(), nodes[0].serviceID()) {
		t.Errorf("no heal of %s logged:\n%s", nodes[0].serviceID(), w.logs)
	}
	if svcs := w.services(); len(svcs) != 1 {
		t.Fatalf("%d services after one heartbeat, want only the heartbeating node's: %v", len(svcs), keys(svcs))
	}

	// (b) A reconcile pass brings the rest back.
	st, err := w.rec.Reconcile(ctx)
	if err != nil {
		t.Fatalf("Reconcile: %v (%+v)", err, st)
	}
	want := registration.ReconcileStats{Projections: len(nodes), Services: 1, Registered: len(nodes) - 1}
	if st != want {
		t.Errorf("Reconcile: %+v, want %+v", st, want)
	}
	svcs := w.services()
	for _, n := range nodes {
		if msg := w.registered(svcs, n, w.projection(n), false); msg != "" {
			t.Errorf("after the pass: %s", msg)
		}
	}
	// Each check is passing for a second after its registration; the test
	// does not race that.
	if msg := w.ttlChecks(nodes); msg != "" {
		t.Errorf("after the pass: %s", msg)
	}
	if len(svcs) != len(nodes) {
		t.Errorf("%d services, want %d: %v", len(svcs), len(nodes), keys(svcs))
	}
}

// TestNodeTypeChangeMovesTheService: an active node that introspects again
// with another node type ends with exactly one service in Consul, under
// the new type's id, with a passing check; the old service and its check
// are gone, from the agent and the catalog, and the reconciler finds
// nothing to change.
func TestNodeTypeChangeMovesTheService(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w := newHealWorld(t, ctx, healWorldConfig{reconcileInterval: 500 * time.Millisecond})
	nodes := newHealNodes(3)
	w.register(nodes)
	everyNode := func() string {
		svcs := w.services()
		for _, n := range nodes {
			if msg := w.registered(svcs, n, w.projection(n), true); msg != "" {
				return msg
			}
		}
		if len(svcs) != len(nodes) {
			return fmt.Sprintf("%d services, want %d: %v", len(svcs), len(nodes), keys(svcs))
		}
		return ""
	}
	w.poll("Consul to hold every node", time.Minute, everyNode)

	old := nodes[0]
	gen := w.projection(old).Generation
	moved := old
	moved.typ = registration.NodeTypes[(slices.Index(registration.NodeTypes, old.typ)+1)%len(registration.NodeTypes)]
	moved.version.Minor++
	moved.port += 1000
	nodes[0] = moved
	w.clock.Advance(time.Second)
	w.introspect(moved)
	w.poll("the projection to hold the new type", time.Minute, func() string {
		if p := w.projection(moved); p.NodeType != moved.typ || p.State != registration.StateActive {
			return fmt.Sprintf("node %s is %s of type %s", moved.id, p.State, p.NodeType)
		}
		return ""
	})
	w.drained()
	if p := w.projection(moved); p.Generation != gen {
		t.Errorf("generation %d after the type change, want %d: a metadata refresh is the same registration", p.Generation, gen)
	}
	ofNode := func() map[string]*api.AgentService {
		svcs, err := w.agent.Client.Agent().ServicesWithFilter(`Meta.node_id == "` + moved.id.String() + `"`)
		if err != nil {
			t.Fatal(err)
		}
		return svcs
	}
	w.poll("the node's one service under the new id", 30*time.Second, func() string {
		svcs := ofNode()
		if len(svcs) != 1 || svcs[moved.serviceID()] == nil {
			return fmt.Sprintf("services of the node: %v, want only %s", keys(svcs), moved.serviceID())
		}
		return everyNode()
	})
	checks, err := w.agent.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks[consul.CheckID(old.serviceID())]; c != nil {
		t.Errorf("the old service's check is still there: %+v", c)
	}
	if msg := w.ttlChecks(nodes); msg != "" {
		t.Error(msg)
	}

	// The reconciler agrees: passes that start now change nothing.
	before := w.nextPass()
	after := w.nextPass()
	if reconcileChanges(after) != reconcileChanges(before) {
		t.Errorf("passes after the type change changed the registry: %v, then %v", reconcileChanges(before), reconcileChanges(after))
	}
	if svcs := ofNode(); len(svcs) != 1 || svcs[moved.serviceID()] == nil {
		t.Errorf("services of the node after two passes: %v", keys(svcs))
	}
	eventually(t, 20*time.Second, func() string {
		if n := len(catalogInstances(t, w.agent, registration.ServiceName(old.typ), old.serviceID())); n != 0 {
			return fmt.Sprintf("the catalog has %d instances of the old %s", n, old.serviceID())
		}
		if n := len(catalogInstances(t, w.agent, registration.ServiceName(moved.typ), moved.serviceID())); n != 1 {
			return fmt.Sprintf("the catalog has %d instances of the new %s", n, moved.serviceID())
		}
		return ""
	})
}

// passLog returns the log record of the reconcile pass that has attrs, or
// "none".
func passLog(logs, attrs string) string {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "consul reconcile pass") && strings.Contains(line, attrs) {
			return strings.TrimSpace(line)
		}
	}
	return "none"
}

// keys returns the ids of svcs, sorted.
func keys(svcs map[string]*api.AgentService) []string {
	return slices.Sorted(maps.Keys(svcs))
}
