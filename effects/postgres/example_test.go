package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
)

// Wiring the Postgres side of the registration workflow: a pool, the
// schema, the two effects in the executor, the store for the runtime and
// the sweeper.
func Example() {
	ctx := context.Background()
	pool, err := postgres.NewPool(ctx, postgres.Config{DSN: os.Getenv("REGISTRAR_PG"), MaxConns: 8})
	if err != nil {
		log.Fatal(err) // names user and database, never the password
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, postgres.MigrateConfig{Schema: "registrar"}); err != nil {
		log.Fatal(err)
	}
	exec := intent.NewExecutor()
	if err := postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: "registrar"}); err != nil {
		log.Fatal(err)
	}
	store, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: "registrar"})
	if err != nil {
		log.Fatal(err)
	}
	_ = store // registration.Store: Load for the runtime, the overdue scans for the sweeper
}

// Writing the migrations for schema "registrar" to a directory for goose or
// atlas:
//
//	goose -dir DIR postgres "$DSN" up
//	atlas migrate apply --dir "file://DIR?format=goose" --url "$DSN"
func ExampleMigrationsFor() {
	fsys, err := postgres.MigrationsFor("registrar")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "registrar-migrations")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, fsys); err != nil {
		log.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// 0001_registration_projections.sql
	// 0002_registration_outbox.sql
	// 0003_registration_active.sql
	// 0004_registration_read.sql
	// atlas.sum
}
