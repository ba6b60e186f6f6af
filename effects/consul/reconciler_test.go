package consul_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestReconcilerRepairsDrift: one pass fixes every kind of drift between
// the agent and the projections, counts each, and leaves services that
// registrar does not own alone; the next pass changes nothing.
func TestReconcilerRepairsDrift(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	plain := newTestEffect(t, consul.Config{Address: a.Addr}) // writes what the payload says
	agent := a.Client.Agent()

	var want []registration.Projection
	// In line already.
	ok := activeProjection(uuid.New(), "effect", "1.0.0", 1)
	store.set(ok)
	exec(t, eff, registerIntent(ok), intent.Applied)
	want = append(want, ok)
	// Missing: the agent lost it.
	missing := activeProjection(uuid.New(), "effect", "1.0.0", 1)
	store.set(missing)
	want = append(want, missing)
	// Registered with an older generation, and with an old version.
	oldGen := activeProjection(uuid.New(), "effect", "1.0.0", 7)
	store.set(oldGen)
	stale := oldGen
	stale.Generation = 6
	exec(t, plain, registerIntent(stale), intent.Applied)
	want = append(want, oldGen)
	oldVersion := activeProjection(uuid.New(), "reducer", "2.0.0", 1)
	store.set(oldVersion)
	v := oldVersion
	v.NodeVersion = "1.9.0"
	exec(t, plain, registerIntent(v), intent.Applied)
	want = append(want, oldVersion)
	// Registered under its old type's id after a type change.
	retyped := activeProjection(uuid.New(), "compute", "1.0.0", 2)
	store.set(retyped)
	wasEffect := retyped
	wasEffect.NodeType = "effect"
	exec(t, plain, registerIntent(wasEffect), intent.Applied)
	want = append(want, retyped)
	// Registered, but expired; and registered with no projection at all.
	expired := activeProjection(uuid.New(), "effect", "1.0.0", 3)
	exec(t, plain, registerIntent(expired), intent.Applied)
	expired.State = registration.StateLivenessExpired
	store.set(expired)
	unknown := activeProjection(uuid.New(), "effect", "1.0.0", 1)
	exec(t, plain, registerIntent(unknown), intent.Applied)
	// Someone else's services: not registrar's, left alone.
	foreign := &api.AgentServiceRegistration{ID: "onex-effect-" + uuid.NewString(), Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{"node_id": uuid.NewString()}}
	if err := agent.ServiceRegister(foreign); err != nil {
		t.Fatal(err)
	}
	// An owned service without a node id: removed.
	stray := &api.AgentServiceRegistration{ID: "onex-effect-stray", Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{consul.MetaRegisteredBy: consul.RegisteredBy}}
	if err := agent.ServiceRegister(stray); err != nil {
		t.Fatal(err)
	}

	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rec.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantStats := registration.ReconcileStats{Projections: 5, Services: 7, Registered: 2, Updated: 2, Deregistered: 4}
	// Registered: missing and retyped's new id. Updated: the old
	// generation and the old version. Deregistered: retyped's old id,
	// expired, unknown, the stray.
	if st != wantStats {
		t.Errorf("pass: %+v\nwant  %+v", st, wantStats)
	}
	wantRegistry(t, a, want...)
	svcs, err := agent.Services()
	if err != nil {
		t.Fatal(err)
	}
	if svcs[foreign.ID] == nil {
		t.Error("the reconciler removed a service registrar does not own")
	}
	if st, err := rec.Reconcile(context.Background()); err != nil || st.Changes() != 0 || st.Projections != 5 || st.Services != 5 {
		t.Errorf("second pass: %+v, %v; want 5 projections, 5 services, no change", st, err)
	}
}

// TestReconcilerIsBounded: a pass stops at MaxChanges and says so; the
// next passes go on until everything is registered.
func TestReconcilerIsBounded(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	var ps []registration.Projection
	for range 7 {
		p := activeProjection(uuid.New(), "effect", "1.0.0", 1)
		store.set(p)
		ps = append(ps, p)
	}
	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store, MaxChanges: 3, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	var total []int
	for range 3 {
		st, err := rec.Reconcile(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		total = append(total, st.Registered)
		if st.Registered == 3 != st.Truncated {
			t.Errorf("pass %d: %+v: truncated must be reported exactly when the bound was hit", len(total), st)
		}
	}
	if total[0] != 3 || total[1] != 3 || total[2] != 1 {
		t.Errorf("registrations per pass %v, want [3 3 1]", total)
	}
	wantRegistry(t, a, ps...)
}

// TestReconcilersDoNotFight: two reconcilers (two orchestrator instances)
// run their passes at once on drifted state while projections change; once
// the projections stop changing, both converge to them and a further pass
// of either finds nothing to do.
func TestReconcilersDoNotFight(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	plain := newTestEffect(t, consul.Config{Address: a.Addr})
	recs := make([]*consul.Reconciler, 2)
	for i := range recs {
		eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
		r, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store, PageSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
	}
	const n = 40
	ps := make([]registration.Projection, n)
	for i := range ps {
		ps[i] = activeProjection(uuid.New(), "effect", "1.0.0", 1)
		store.set(ps[i])
		if i%2 == 0 {
			stale := ps[i]
			stale.Generation = 0
			exec(t, plain, registerIntent(stale), intent.Applied)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, r := range recs {
		wg.Go(func() {
			for range 2 {
				if _, err := r.Reconcile(context.Background()); err != nil {
					errs <- err
				}
			}
		})
	}
	// Meanwhile a third of the nodes expire and a third re-register.
	for i := range ps {
		switch i % 3 {
		case 1:
			ps[i].State = registration.StateLivenessExpired
			store.set(ps[i])
		case 2:
			ps[i].Generation++
			store.set(ps[i])
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent pass: %v", err)
	}
	// The projections are still now; one pass of each settles anything the
	// changes during the passes left.
	for _, r := range recs {
		if _, err := r.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantRegistry(t, a, ps...)
	for i, r := range recs {
		if st, err := r.Reconcile(context.Background()); err != nil || st.Changes() != 0 {
			t.Errorf("reconciler %d after convergence: %+v, %v; want no change", i, st, err)
		}
	}
}

// TestNewReconcilerValidates: a missing effect or store, or a negative
// bound, is refused with one error naming each problem.
func TestNewReconcilerValidates(t *testing.T) {
	_, err := consul.NewReconciler(consul.ReconcilerConfig{MaxChanges: -1})
	if err == nil {
		t.Fatal("an empty config was accepted")
	}
	for _, want := range []string{"nil Effect", "nil Store", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestReconcilerResumesWhereItStopped: nodes early in the id order that
// drift again before every pass do not starve the later ones: a truncated
// pass's successor starts after the node where it stopped.
func TestReconcilerResumesWhereItStopped(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Projections: store})
	ids := []uuid.UUID{
		uuid.MustParse("10000000-0000-4000-8000-000000000000"), uuid.MustParse("20000000-0000-4000-8000-000000000000"),
		uuid.MustParse("30000000-0000-4000-8000-000000000000"), uuid.MustParse("40000000-0000-4000-8000-000000000000"),
		uuid.MustParse("50000000-0000-4000-8000-000000000000"),
	}
	var ps []registration.Projection
	for _, id := range ids {
		p := activeProjection(id, "effect", "1.0.0", 1)
		store.set(p)
		ps = append(ps, p)
	}
	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store, MaxChanges: 2, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for pass := range 4 {
		// The first two nodes lose their services before every pass.
		for _, p := range ps[:2] {
			id := registration.ServiceID("effect", p.EntityID)
			if agentService(t, a, id) == nil {
				continue
			}
			if err := a.Client.Agent().ServiceDeregister(id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := rec.Reconcile(context.Background()); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}
	svcs := ownedServices(t, a)
	for _, p := range ps[2:] {
		if svcs[registration.ServiceID("effect", p.EntityID)] == nil {
			t.Errorf("node %s was never registered: starved by the nodes before it", p.EntityID)
		}
	}
}
