package memory_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// otherStore stands for another projection store's effects (those of
// effects/postgres), registered before the memory registry.
type otherStore struct{}

func (otherStore) Execute(context.Context, intent.Intent) (intent.Result, error) {
	return intent.Result{}, nil
}

var (
	storeTypes  = []string{registration.IntentUpsert, registration.IntentUpdate, registration.IntentDelete}
	consulTypes = []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL}
)

// TestRegisterEffectsNilStore: a nil store registers no postgres.* effect,
// so the memory registry pairs with another store's effects in one call
// made after theirs, and those effects stay in place.
func TestRegisterEffectsNilStore(t *testing.T) {
	exec := intent.NewExecutor()
	for _, typ := range storeTypes {
		if err := exec.Register(typ, otherStore{}); err != nil {
			t.Fatal(err)
		}
	}
	registry := memory.NewRegistry(memory.RegistryConfig{})
	if err := memory.RegisterEffects(exec, nil, registry); err != nil {
		t.Fatalf("RegisterEffects(exec, nil, registry) after another store's effects: %v", err)
	}
	for _, typ := range storeTypes {
		if eff, _ := exec.Effect(typ); eff != (otherStore{}) {
			t.Errorf("%s: effect %T, want the other store's", typ, eff)
		}
	}
	for _, typ := range consulTypes {
		if eff, _ := exec.Effect(typ); eff != registry {
			t.Errorf("%s: effect %T, want the registry", typ, eff)
		}
	}
	if !exec.IsVolatile(registration.IntentConsulPassTTL) {
		t.Errorf("%s is not volatile", registration.IntentConsulPassTTL)
	}
}

// TestRegisterEffectsAfterPostgres: the Postgres effects and the memory
// registry in one executor, as a deployment that keeps the projection in
// Postgres and the registry in memory wires them. The pool never connects.
func TestRegisterEffectsAfterPostgres(t *testing.T) {
	pool, err := pgxpool.New(t.Context(), "postgres://registrar@127.0.0.1:1/registry")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec := intent.NewExecutor()
	if err := postgres.RegisterEffects(exec, pool, postgres.EffectConfig{}); err != nil {
		t.Fatal(err)
	}
	registry := memory.NewRegistry(memory.RegistryConfig{})
	if err := memory.RegisterEffects(exec, nil, registry); err != nil {
		t.Fatalf("memory.RegisterEffects(exec, nil, registry) after postgres.RegisterEffects: %v", err)
	}
	for typ, want := range map[string]string{registration.IntentUpsert: "*postgres.Upsert",
		registration.IntentUpdate: "*postgres.Update", registration.IntentDelete: "*postgres.Delete"} {
		if eff, _ := exec.Effect(typ); fmt.Sprintf("%T", eff) != want {
			t.Errorf("%s: effect %T, want %s", typ, eff, want)
		}
	}
	if eff, _ := exec.Effect(registration.IntentConsulReg); eff != registry {
		t.Errorf("%s: effect %T, want the registry", registration.IntentConsulReg, eff)
	}
}

// TestRegisterEffectsRegistersOnlyWhatIsGiven: each nil argument leaves
// its intent types unregistered, never routed to a nil effect.
func TestRegisterEffectsRegistersOnlyWhatIsGiven(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	registry := memory.NewRegistry(memory.RegistryConfig{})
	for _, tc := range []struct {
		name     string
		store    *memory.Store
		registry *memory.Registry
		want     []string
	}{
		{"both", store, registry, append(slices.Clone(storeTypes), consulTypes...)},
		{"store only", store, nil, storeTypes},
		{"registry only", nil, registry, consulTypes},
		{"neither", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exec := intent.NewExecutor()
			if err := memory.RegisterEffects(exec, tc.store, tc.registry); err != nil {
				t.Fatal(err)
			}
			want := slices.Sorted(slices.Values(tc.want))
			if got := exec.Types(); !slices.Equal(got, want) {
				t.Errorf("registered %q, want %q", got, want)
			}
			for _, typ := range exec.Types() {
				eff, _ := exec.Effect(typ)
				if s, ok := eff.(*memory.Store); ok && s == nil {
					t.Errorf("%s: routed to a nil *memory.Store", typ)
				}
			}
		})
	}
}
