package node_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/node"
)

// Example registers a node with an orchestrator on the in-memory bus. In a
// service, b is the Kafka bus (bus/kafka) the orchestrator reads, and the
// node's part is the dozen lines after the orchestrator's.
func Example() {
	b, _ := membus.New(membus.Config{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The orchestrator (elsewhere, in its own process).
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	_ = memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{}))
	rt, _ := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{})
	go func() { _ = rt.Run(ctx) }()

	// The node.
	n, err := node.New(b, node.Info{
		ID:        uuid.New(),
		Type:      "effect",
		Version:   bus.Version{Major: 1, Minor: 4, Patch: 2, Prerelease: "rc.1"},
		Endpoints: map[string]string{"health": "http://10.0.0.7:8080/health"},
	})
	if err != nil {
		panic(err)
	}
	go func() { _ = n.Run(ctx) }() // until ctx ends: heartbeats, re-registration
	if err := n.WaitActive(ctx); err != nil {
		panic(err)
	}
	p, _ := store.Load(ctx, n.Info().ID)
	fmt.Println(n.State(), p.State, p.NodeVersion)
	// Output: active active 1.4.2-rc.1
}
