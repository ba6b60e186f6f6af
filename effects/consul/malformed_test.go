package consul_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// ownedLookalike registers a service carrying registrar's marks for node
// (tag "onex", meta registered_by and node_id) under an id registrar never
// writes.
func ownedLookalike(t *testing.T, a *consultest.Agent, id, nodeID string) {
	t.Helper()
	err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{consul.MetaRegisteredBy: consul.RegisteredBy, consul.MetaNodeID: nodeID}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConvergeSettlesBesideUnaddressableService: the agent holds, beside a
// node's service, a service with registrar's marks for that node under an
// id its HTTP API cannot address ("a//b": the deregister path is cleaned
// to "a/b" and answers 404, which the effect takes for "already gone").
// The node's intents must still settle: converging only the ids registrar
// writes. Before, every round "removed" it again, each intent failed
// after four rounds with a retryable error (retried for ever, holding back
// the node's later records and its partition), and the reconciler counted
// four deregistrations per pass that never happened.
func TestConvergeSettlesBesideUnaddressableService(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	p := activeProjection(uuid.New(), "effect", "1.0.0", 1)
	store.set(p)
	ownedLookalike(t, a, "onex-effect//"+p.EntityID.String(), p.EntityID.String())

	ctx := context.Background()
	if res, err := eff.Execute(ctx, registerIntent(p)); err != nil || res.Status != intent.Applied {
		t.Errorf("register beside an unaddressable service: %+v, %v; want applied", res, err)
	}
	if svc := agentService(t, a, registration.ServiceID("effect", p.EntityID)); svc == nil {
		t.Error("the node's service is not registered")
	}
	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for pass := 1; pass <= 2; pass++ {
		st, err := rec.Reconcile(ctx)
		if st.Deregistered != 0 || st.Registered != 0 || st.Updated != 0 {
			t.Errorf("pass %d: %+v, %v; want no change counted: nothing was removed", pass, st, err)
		}
	}
}

// TestReconcilerRemovesOwnedServiceOfNonCanonicalNodeID: an owned service
// whose node_id meta is a non-canonical spelling of a uuid (upper case)
// and whose node has no projection must go. The reconciler grouped it
// under the parsed id, then repaired that node from a fresh read filtered
// on the canonical spelling, which does not see it: it stayed for ever.
func TestReconcilerRemovesOwnedServiceOfNonCanonicalNodeID(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	node := uuid.New()
	ownedLookalike(t, a, registration.ServiceID("effect", node), strings.ToUpper(node.String()))

	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ownedServices(t, a); len(got) != 0 {
		t.Errorf("after a pass the agent still holds %d owned services without an active projection", len(got))
	}
}

// TestReconcilerIsNotStarvedByANodeThatNeverSettles: pages start at the
// lowest entity id on every pass, and a pass stops at MaxChanges. A node at
// the head whose repair counts changes without settling (here: the
// unaddressable lookalike above, whose 404s were counted as removals) used
// up the bound on every pass, so the nodes after it were never repaired.
func TestReconcilerIsNotStarvedByANodeThatNeverSettles(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	head := activeProjection(uuid.MustParse("00000000-0000-4000-8000-000000000001"), "effect", "1.0.0", 1)
	store.set(head)
	ownedLookalike(t, a, "onex-effect//"+head.EntityID.String(), head.EntityID.String())
	tail := activeProjection(uuid.MustParse("ffffffff-0000-4000-8000-000000000001"), "effect", "1.0.0", 1)
	store.set(tail) // missing from the agent

	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store, MaxChanges: 4})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = rec.Reconcile(context.Background())
	}
	if agentService(t, a, registration.ServiceID("effect", tail.EntityID)) == nil {
		t.Error("after 3 passes the tail node is still not registered: the head used up every pass's bound")
	}
}
