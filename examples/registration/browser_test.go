package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/httpapi"
	"github.com/registrar-go/registrar/internal/browsertest"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestStatusPageOfTheExample runs the example with -http on the Postgres
// store and loads its status page in headless Chromium once the
// simulation is done: the counts are the simulation's (40 active, 10
// expired of 50 nodes) and those of the store, read here through a store
// of the test's own on the same schema; the table is the store's first
// page; the transitions hold the activations and expiries the runtime
// committed; a screenshot of the page is saved (browsertest.ArtifactDir).
func TestStatusPageOfTheExample(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	schema := "registrar_browser_" + hex.EncodeToString(rnd[:])
	pool, err := postgres.NewPool(t.Context(), postgres.Config{DSN: dsn, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	}()

	o := options{nodes: 50, expire: 0.2, malformed: 2, jsonOut: true, seed: 3, timeout: 2 * time.Minute, httpAddr: "127.0.0.1:0",
		store: "postgres", pgDSN: dsn, pgSchema: schema}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := serveSimulation(t, ctx, o, 2*time.Minute)
	store, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}

	b := browsertest.New(t)
	b.Do(time.Minute, chromedp.Navigate("http://"+addr+"/"), chromedp.WaitVisible(chromedp.CSS("#nodes")))
	counts := browsertest.Eval[map[string]int](b, `Object.fromEntries(Array.from(document.querySelectorAll("#counts .count[data-state]")).map(e => [e.dataset.state, parseInt(e.querySelector(".n").textContent, 10)]))`)
	total := browsertest.Eval[int](b, `parseInt(document.getElementById("total").textContent, 10)`)
	if total != 50 || counts["active"] != 40 || counts["liveness_expired"] != 10 {
		t.Errorf("page: total %d, counts %v; want 50 nodes, 40 active, 10 liveness_expired", total, counts)
	}
	byState, err := store.CountByState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range registration.States() {
		if counts[string(s)] != byState[s] {
			t.Errorf("page shows %d %s, the store holds %d", counts[string(s)], s, byState[s])
		}
	}
	ids := browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll("#nodes tbody tr[data-id]")).map(tr => tr.dataset.id)`)
	states := browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll("#nodes tbody tr[data-id]")).map(tr => tr.dataset.state)`)
	p, err := store.List(t.Context(), registration.Query{Limit: httpapi.DefaultPageRows})
	if err != nil {
		t.Fatal(err)
	}
	var want, wantStates []string
	for _, it := range p.Items {
		want = append(want, it.EntityID.String())
		wantStates = append(wantStates, string(it.State))
	}
	if !slices.Equal(ids, want) || !slices.Equal(states, wantStates) {
		t.Errorf("table %v %v, want the store's first page %v %v", ids, states, want, wantStates)
	}
	// Every activation and expiry was committed by this runtime; the page
	// shows the newest 25 of them.
	shown := browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll("#transitions li .badge")).map(e => e.textContent)`)
	if len(shown) != 25 {
		t.Errorf("%d transitions shown, want 25", len(shown))
	}
	if !slices.Contains(shown, "liveness_expired") {
		t.Errorf("the newest transitions %v hold no expiry (the simulation's last act)", shown)
	}
	path := b.Screenshot(browsertest.ArtifactDir(t), "example-status-page.png")
	t.Logf("screenshot: %s", path)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
