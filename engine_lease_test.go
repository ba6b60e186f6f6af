package registrar_test

// The relay lease: two Runtimes relaying one entity keep its work in order.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// blockingEffect wraps an effect: its first call signals entered and waits
// for release (a slow Consul agent).
type blockingEffect struct {
	inner   intent.IntentEffect
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *blockingEffect) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.entered)
		<-b.release
	}
	return b.inner.Execute(ctx, in)
}

// The relay executes records in per-entity order, also with two Runtimes
// (two processes) on one store. Runtime A decides an active node's
// metadata refresh (record R1: consul.register) and starts relaying it;
// its Consul call is slow. Runtime B, on another topic, gets the node's
// liveness check meanwhile: it waits for A's relay lease, and only then
// relays and decides, so the deregister (R2) comes after A's register and
// Consul ends as the store says.
func TestTwoRuntimesRelayOneEntityInOrder(t *testing.T) {
	rec := &bustest.Recorder{}
	store := memory.NewStore(memory.StoreConfig{})
	registry := memory.NewRegistry(memory.RegistryConfig{})
	var clock atomic.Int64
	clock.Store(t0.Add(10 * time.Second).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }

	execB := intent.NewExecutor()
	if err := memory.RegisterEffects(execB, store, registry); err != nil {
		t.Fatal(err)
	}
	slow := &blockingEffect{inner: registry, entered: make(chan struct{}), release: make(chan struct{})}
	execA := intent.NewExecutor()
	for _, err := range []error{
		execA.Register(registration.IntentUpsert, store), execA.Register(registration.IntentUpdate, store),
		execA.Register(registration.IntentConsulReg, slow), execA.Register(registration.IntentConsulDereg, registry),
		execA.Register(registration.IntentConsulPassTTL, registry, intent.Volatile()),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	rtA := reviewRuntime(t, rec, store, execA, now)
	rtB := reviewRuntime(t, rec, store, execB, now)
	g := msgRig()
	node := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range []*bus.Message{g.introspection(t, node, t0, 1), g.ack(t, node, t0.Add(time.Second))} {
		if err := rtB.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if registry.Len() != 1 || stateOf(t, store, node) != registration.StateActive {
		t.Fatalf("set-up: %d services, state %s", registry.Len(), stateOf(t, store, node))
	}

	// A: a metadata refresh; its relay stalls in the Consul register.
	doneA := make(chan error, 1)
	go func() { doneA <- rtA.Handle(ctx, g.introspection(t, node, t0.Add(5*time.Second), 2)) }()
	select {
	case <-slow.entered:
	case err := <-doneA:
		t.Fatalf("A finished without calling Consul: %v", err)
	}

	// B: the liveness check, past the deadline on B's clock.
	cur, err := store.Load(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	deadline := cur.LivenessDeadline
	clock.Store(deadline.Add(time.Second).UnixNano())
	check, err := registrar.TimeoutCheckMessage(g.topics.TimeoutCheck, node, registration.TimeoutLiveness, deadline, now())
	if err != nil {
		t.Fatal(err)
	}
	doneB := make(chan error, 1)
	go func() { doneB <- rtB.Handle(ctx, check) }()
	select {
	case err := <-doneB:
		t.Fatalf("B decided while A held the entity's relay lease: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(slow.release)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, store, node); st != registration.StateLivenessExpired {
		t.Fatalf("state %s after the check", st)
	}
	if n := registry.Len(); n != 0 {
		t.Fatalf("node is %s in the store but %d service(s) stay registered in Consul: %+v",
			stateOf(t, store, node), n, registry.Services())
	}
}
