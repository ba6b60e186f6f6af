// Command quickstart is the README's quick start: the registration workflow
// on the in-memory bus, store and registry, until interrupted.
package main

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/registrar-go/registrar"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := membus.New(membus.Config{}) // or kafka.New(kafka.Config{Brokers: ...})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	store := memory.NewStore(memory.StoreConfig{}) // or postgres.NewStore(pool, ...)
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		log.Fatal(err)
	}
	rt, err := registrar.NewRegistration(contract.Default(), b, store, exec, registrar.RegistrationConfig{},
		registrar.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Run(ctx); err != nil { // blocks until ctx ends
		log.Fatal(err)
	}
}
