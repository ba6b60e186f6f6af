package registrar_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// scriptedReconciler returns its passes' results in turn, then zero
// passes, and signals each pass.
type scriptedReconciler struct {
	mu     sync.Mutex
	passes []scriptedPass
	calls  chan struct{}
}

type scriptedPass struct {
	st  registration.ReconcileStats
	err error
}

func (r *scriptedReconciler) Reconcile(ctx context.Context) (registration.ReconcileStats, error) {
	r.mu.Lock()
	var p scriptedPass
	if len(r.passes) > 0 {
		p, r.passes = r.passes[0], r.passes[1:]
	}
	r.mu.Unlock()
	select {
	case r.calls <- struct{}{}:
	case <-ctx.Done():
	}
	return p.st, p.err
}

// TestNewRegistrationRunsTheReconciler: a Runtime built with a Reconciler
// runs a pass when it starts and then at its interval, counts what the
// passes changed and which failed in Stats, and keeps running after a
// failed pass.
func TestNewRegistrationRunsTheReconciler(t *testing.T) {
	rec := &scriptedReconciler{calls: make(chan struct{}), passes: []scriptedPass{
		{st: registration.ReconcileStats{Projections: 3, Registered: 2, Deregistered: 1}},
		{err: errors.New("agent down")},
		{st: registration.ReconcileStats{Updated: 4, Failed: 1}},
	}}
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(nil, &bustest.Recorder{}, store, exec, registrar.RegistrationConfig{
		NoSweeper: true, Reconciler: rec, ReconcileInterval: 20 * time.Millisecond,
	}, registrar.WithRelay(-1, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	for range 4 {
		select {
		case <-rec.calls:
		case <-time.After(30 * time.Second):
			t.Fatal("the reconciler did not run its passes")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := rt.Stats()
	if st.ReconcilePasses < 3 || st.ReconcileRegistered != 2 || st.ReconcileUpdated != 4 || st.ReconcileDeregistered != 1 || st.ReconcileFailures != 2 {
		t.Errorf("stats %+v: want at least 3 passes, 2 registered, 4 updated, 1 deregistered, 2 failures", st)
	}
}

// TestWithReconcilerValidates: a negative interval is refused.
func TestWithReconcilerValidates(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	_, err := registrar.NewRegistration(nil, &bustest.Recorder{}, store, exec, registrar.RegistrationConfig{
		NoSweeper: true, Reconciler: &scriptedReconciler{}, ReconcileInterval: -time.Second,
	})
	if err == nil {
		t.Fatal("a negative reconcile interval was accepted")
	}
}
