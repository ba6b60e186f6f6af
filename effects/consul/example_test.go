package consul_test

import (
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
)

// The effect builds its own client from the connection fields, fences its
// writes with the projection store, and is routed the three consul.*
// intent types; the reconciler runs beside the registration runtime.
func Example() {
	store := memory.NewStore(memory.StoreConfig{}) // effects/postgres in production
	eff, err := consul.New(consul.Config{
		Address:     "127.0.0.1:8500",
		Token:       os.Getenv("CONSUL_HTTP_TOKEN"),
		CheckTTL:    90 * time.Second, // the reducer's ConsulTTL
		Projections: store,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = eff.Close() }()
	exec := intent.NewExecutor()
	if err := eff.Register(exec); err != nil {
		log.Fatal(err)
	}
	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store})
	if err != nil {
		log.Fatal(err)
	}
	// Hand store, exec and rec to registrar.NewRegistration:
	// registrar.RegistrationConfig{Reconciler: rec, ReconcileInterval: 30 * time.Second}.
	_ = rec
}

// A client the caller built and owns, reached through the Agent interface.
func ExampleNew_callerClient() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	eff, err := consul.New(consul.Config{Agent: client.Agent()})
	if err != nil {
		log.Fatal(err)
	}
	_ = eff
}
