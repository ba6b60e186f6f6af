package postgres

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/tcpproxy"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
	"github.com/registrar-go/registrar/reducer/registration/registrationtest"
)

// retry executes f until it succeeds, retrying while the error is
// retryable, as the runtime does; it returns how many attempts failed and
// logs each distinct error once.
func retry(t *testing.T, seen map[string]bool, what string, f func(ctx context.Context) error) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for failed := 0; ; failed++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return failed
		}
		if !intent.IsRetryable(err) {
			t.Fatalf("%s: error that is not retryable: %v", what, err)
		}
		if msg := errorKind(err); !seen[msg] {
			seen[msg] = true
			t.Logf("retrying %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 30 s: %v", what, err)
		}
		time.Sleep(time.Duration(min(failed+1, 10)) * 5 * time.Millisecond)
	}
}

// TestConnectionCutMidStream runs a stream of intents through a proxy that
// is cut twice while the stream runs, then restored. The stream retries
// every retryable failure; at the end every row must be what the model
// says: no intent lost, none applied out of order.
func TestConnectionCutMidStream(t *testing.T) {
	db := newTestDB(t)
	pc, err := pgxpool.ParseConfig(testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port)))
	for _, mode := range []string{"one by one", "batches"} {
		t.Run(mode, func(t *testing.T) {
			proxy, err := tcpproxy.New(target)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			host, port, _ := net.SplitHostPort(proxy.Addr())
			pool, err := NewPool(t.Context(), Config{DSN: testenv.PostgresDSN(t), MaxConns: 2, ConnectTimeout: 2 * time.Second,
				ConfigurePool: func(c *pgxpool.Config) error {
					p, err := strconv.Atoi(port)
					c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
					return err
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			cfg := EffectConfig{Schema: db.schema}
			up, err := NewUpsert(pool, cfg)
			if err != nil {
				t.Fatal(err)
			}
			upd, err := NewUpdate(pool, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]uuid.UUID, 10)
			for i := range ids {
				ids[i] = uuid.New()
			}
			const n = 1200
			work := registrationtest.Workload(42, ids, n)
			model := registrationtest.NewModel()
			for _, in := range work {
				if _, err := model.Execute(t.Context(), in); err != nil {
					t.Fatal(err)
				}
			}
			effectOf := func(typ string) intent.BatchEffect {
				if typ == registration.IntentUpsert {
					return up
				}
				return upd
			}

			var done atomic.Int64
			cutterDone := make(chan struct{})
			go func() {
				defer close(cutterDone)
				for _, at := range []int64{n / 4, n / 2} {
					for done.Load() < at {
						if t.Context().Err() != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
					proxy.Cut()
					time.Sleep(150 * time.Millisecond)
					if err := proxy.Restore(); err != nil {
						t.Errorf("restore the proxy: %v", err)
						return
					}
				}
			}()

			failures, seen := 0, map[string]bool{}
			if mode == "one by one" {
				for i, in := range work {
					failures += retry(t, seen, fmt.Sprintf("intent %d", i), func(ctx context.Context) error {
						_, err := effectOf(in.Type).Execute(ctx, in)
						return err
					})
					done.Store(int64(i + 1))
				}
			} else {
				// A batch is a run of intents of one type, each entity at
				// most once: replaying such a batch after a commit whose
				// reply was lost changes nothing, as each intent is
				// idempotent on its own row.
				for i := 0; i < len(work); {
					j, in := i, map[uuid.UUID]bool{}
					for j < len(work) && j-i < 8 && work[j].Type == work[i].Type && !in[entityOf(work[j])] {
						in[entityOf(work[j])] = true
						j++
					}
					batch := work[i:j]
					failures += retry(t, seen, fmt.Sprintf("batch [%d, %d)", i, j), func(ctx context.Context) error {
						_, err := effectOf(batch[0].Type).ExecuteBatch(ctx, batch)
						return err
					})
					i = j
					done.Store(int64(i))
				}
			}
			<-cutterDone
			if proxy.Cuts() != 2 {
				t.Fatalf("the proxy was cut %d times, want 2", proxy.Cuts())
			}
			if failures == 0 {
				t.Fatal("no intent failed: the cuts did not hit the stream")
			}
			t.Logf("%d intents, %d failed attempts retried", n, failures)
			store := db.store(t)
			for _, id := range ids {
				if d := registrationtest.Diff(model.Row(id, registration.DefaultDomain), load(t, store, id)); d != "" {
					t.Errorf("row %s: %s", id, d)
				}
			}
		})
	}
}

func entityOf(in intent.Intent) uuid.UUID {
	switch p := in.Payload.(type) {
	case *registration.UpsertRegistration:
		return p.Projection.EntityID
	case *registration.UpdateRegistration:
		return p.EntityID
	}
	return uuid.Nil
}

// errorKind is an error's message without the ids and addresses that make
// each one different.
func errorKind(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 {
		msg = msg[i+3:]
	}
	return regexp.MustCompile(`[0-9a-f-]{36}|\d+\.\d+\.\d+\.\d+:\d+`).ReplaceAllString(msg, "_")
}
