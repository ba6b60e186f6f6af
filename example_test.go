package registrar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// ExampleNewRegistration wires the registration workflow on the in-memory
// bus and store, and runs one node through it: it introspects, is acked,
// and becomes active.
func ExampleNewRegistration() {
	b, err := membus.New(membus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	store := memory.NewStore(memory.StoreConfig{})
	registry := memory.NewRegistry(memory.RegistryConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, registry); err != nil {
		panic(err)
	}
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{}) // nil: the default contract
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = rt.Run(ctx) }()

	node := uuid.MustParse("7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10")
	now := time.Now().UTC()
	publish := func(topic string, at time.Time, payload any) {
		raw, _ := json.Marshal(payload)
		env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, Payload: raw}
		if err := b.PublishEnvelope(ctx, topic, env, bus.WithKey([]byte(node.String()))); err != nil {
			panic(err)
		}
	}
	waitFor := func(want registration.State) {
		for {
			if p, _ := store.Load(ctx, node); p != nil && p.State == want {
				fmt.Println(p.State)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	publish(registration.TopicIntrospection, now, &registration.Introspection{
		NodeID: node, NodeType: "effect", CorrelationID: uuid.New(), Timestamp: now,
		Endpoints: map[string]string{"health": "http://10.0.0.5:8080/health"},
	})
	waitFor(registration.StateAwaitingAck)
	publish(registration.TopicAck, now.Add(time.Second), &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: now.Add(time.Second)})
	waitFor(registration.StateActive)
	for registry.Len() == 0 { // consul.register runs right after the state change
		time.Sleep(time.Millisecond)
	}
	svc, _ := registry.Get(registration.ServiceID("effect", node))
	fmt.Println(svc.Name, svc.Address, svc.Port)
	// Output:
	// awaiting_ack
	// active
	// onex-effect 10.0.0.5 8080
}
