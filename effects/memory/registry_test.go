package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

func TestRegistryGenerationGuard(t *testing.T) {
	ctx := context.Background()
	r := memory.NewRegistry(memory.RegistryConfig{})
	node := uuid.New()
	reg := func(gen int64) intent.Intent {
		return intent.Intent{Type: registration.IntentConsulReg, Payload: &registration.ConsulRegister{
			NodeID: node, NodeType: "effect", NodeVersion: "1.0.0", Generation: gen,
			Endpoints: map[string]string{"api": "http://10.1.2.3:9000"}}}
	}
	dereg := func(gen int64) intent.Intent {
		return intent.Intent{Type: registration.IntentConsulDereg, Payload: &registration.ConsulDeregister{NodeID: node, NodeType: "effect", Generation: gen}}
	}
	mustApply := func(in intent.Intent, want intent.Status) {
		t.Helper()
		res, err := r.Execute(ctx, in)
		if err != nil || res.Status != want {
			t.Fatalf("%s: %+v, %v; want %s", in.Type, res, err, want)
		}
	}
	mustApply(reg(1), intent.Applied)
	mustApply(reg(1), intent.Applied)
	if r.Len() != 1 {
		t.Fatalf("re-registration made %d services", r.Len())
	}
	s, ok := r.Get(registration.ServiceID("effect", node))
	if !ok || s.Name != "onex-effect" || s.Address != "10.1.2.3" || s.Port != 9000 || s.Meta["generation"] != "1" {
		t.Fatalf("service %+v", s)
	}
	mustApply(reg(2), intent.Applied)
	mustApply(dereg(1), intent.Skipped) // late deregister of the old generation
	if r.Len() != 1 {
		t.Fatal("a stale deregister removed the newer registration")
	}
	pass := intent.Intent{Type: registration.IntentConsulPassTTL, Payload: &registration.ConsulPassTTL{NodeID: node, NodeType: "effect", Generation: 2, At: time.Unix(100, 0)}}
	mustApply(pass, intent.Applied)
	mustApply(dereg(2), intent.Applied)
	mustApply(dereg(2), intent.Applied) // idempotent
	if r.Len() != 0 {
		t.Fatal("deregister left the service")
	}
	// A pass that finds the service gone registers it again (the heal),
	// with the pass's generation, and marks it passing.
	mustApply(pass, intent.Applied)
	if s, ok := r.Get(registration.ServiceID("effect", node)); !ok || s.Generation != 2 || !s.PassedAt.Equal(time.Unix(100, 0)) {
		t.Fatalf("healed service %+v, %t", s, ok)
	}
	mustApply(reg(3), intent.Applied)
	mustApply(pass, intent.Skipped) // an older generation's pass does not replace a newer one
	if s, _ := r.Get(registration.ServiceID("effect", node)); s.Generation != 3 {
		t.Fatalf("an older pass replaced generation 3: %+v", s)
	}
	if _, err := r.Execute(ctx, intent.Intent{Type: "consul.register", Payload: "nope"}); !intent.IsPermanent(err) {
		t.Fatalf("wrong payload: %v", err)
	}
}

// TestRegistryHealChecksProjections: with a projection store, a TTL pass
// heals a missing service only while the node is active there with the
// pass's generation and type.
func TestRegistryHealChecksProjections(t *testing.T) {
	ctx := context.Background()
	store := memory.NewStore(memory.StoreConfig{})
	r := memory.NewRegistry(memory.RegistryConfig{Projections: store})
	node := uuid.New()
	p := registration.Projection{EntityID: node, Domain: registration.DefaultDomain, State: registration.StateActive,
		NodeType: "effect", NodeVersion: "1.0.0", Generation: 2}
	if _, err := store.Execute(ctx, intent.Intent{Type: registration.IntentUpsert,
		Payload: &registration.UpsertRegistration{Projection: p, ExpectedState: registration.StateNone}}); err != nil {
		t.Fatal(err)
	}
	pass := func(gen int64) intent.Result {
		t.Helper()
		res, err := r.Execute(ctx, intent.Intent{Type: registration.IntentConsulPassTTL, Payload: &registration.ConsulPassTTL{
			NodeID: node, NodeType: "effect", NodeVersion: "1.0.0", Generation: gen, At: time.Unix(100, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := pass(1); res.Status != intent.Skipped || r.Len() != 0 {
		t.Fatalf("pass of a generation the store does not hold: %+v, %d services", res, r.Len())
	}
	if res := pass(2); res.Status != intent.Applied || r.Len() != 1 {
		t.Fatalf("pass of the active generation: %+v, %d services", res, r.Len())
	}
}

func TestFaultHooks(t *testing.T) {
	down := errors.New("down")
	s := memory.NewStore(memory.StoreConfig{Fault: func(intent.Intent) error { return intent.Retryable(down) }})
	_, err := s.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert})
	if !errors.Is(err, down) || !intent.IsRetryable(err) || s.Len() != 0 {
		t.Fatalf("store fault: %v", err)
	}
	r := memory.NewRegistry(memory.RegistryConfig{Fault: func(intent.Intent) error { return down }})
	if _, err := r.Execute(context.Background(), intent.Intent{}); !errors.Is(err, down) {
		t.Fatalf("registry fault: %v", err)
	}
}
