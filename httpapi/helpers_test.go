package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/tcpproxy"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// subject is one store under test: its read API, and an executor whose
// effects write it.
type subject struct {
	name   string
	reader registration.Reader
	exec   *intent.Executor
}

// insert writes p as a new projection.
func (s subject) insert(t testing.TB, p registration.Projection) {
	t.Helper()
	corr := uuid.New()
	r, err := s.exec.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert, Target: p.EntityID.String(), CorrelationID: corr,
		Payload: &registration.UpsertRegistration{Projection: p, ExpectedState: registration.StateNone, CorrelationID: corr}})
	if err != nil || r.Status != intent.Applied {
		t.Fatalf("insert %s: %v %v %s", p.EntityID, err, r.Status, r.Reason)
	}
}

// move sets the state of the projection id, which is in state from.
func (s subject) move(t testing.TB, id uuid.UUID, from, to registration.State) {
	t.Helper()
	corr := uuid.New()
	u := registration.UpdateRegistration{EntityID: id, Domain: registration.DefaultDomain, ExpectedState: from, CorrelationID: corr,
		Set: registration.ColCurrentState | registration.ColUpdatedAt, Values: registration.Projection{State: to, UpdatedAt: time.Now().UTC()}}
	r, err := s.exec.Execute(context.Background(), intent.Intent{Type: registration.IntentUpdate, Target: id.String(), CorrelationID: corr, Payload: &u})
	if err != nil || r.Status != intent.Applied {
		t.Fatalf("move %s %s→%s: %v %v %s", id, from, to, err, r.Status, r.Reason)
	}
}

func memorySubject(t testing.TB) subject {
	t.Helper()
	st := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, st, nil); err != nil {
		t.Fatal(err)
	}
	return subject{name: "memory", reader: st, exec: exec}
}

// postgresSubject is a Postgres store in a schema of its own; dialVia,
// when not empty, is the address the pool dials instead of the server's.
func postgresSubject(t testing.TB, dialVia func(server string) string) subject {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: 2})
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	t.Cleanup(admin.Close)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "registrar_httpapi_" + hex.EncodeToString(b[:])
	if err := postgres.Migrate(ctx, admin, postgres.MigrateConfig{Schema: schema}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	pool := admin
	if dialVia != nil {
		addr := dialVia(net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))))
		host, port, _ := net.SplitHostPort(addr)
		pool, err = postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: 4, ConnectTimeout: time.Second,
			ConfigurePool: func(c *pgxpool.Config) error {
				p, err := strconv.Atoi(port)
				c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
				c.ConnConfig.Password = "canary-secret-4711" // trust auth ignores it; no answer may show it
				return err
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
	}
	st, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	exec := intent.NewExecutor()
	if err := postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	return subject{name: "postgres", reader: st, exec: exec}
}

// proxied returns a dialVia for postgresSubject that goes through a
// proxy the test can cut.
func proxied(t testing.TB, out **tcpproxy.Proxy) func(string) string {
	return func(server string) string {
		p, err := tcpproxy.New(server)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		*out = p
		return p.Addr()
	}
}

// subjects makes each store, inside the subtest that uses it (a missing
// Postgres skips only its own subtest, outside CI).
var subjects = []struct {
	name string
	make func(t testing.TB) subject
}{
	{"memory", memorySubject},
	{"postgres", func(t testing.TB) subject { return postgresSubject(t, nil) }},
}

var baseTime = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// fixture writes n projections whose states, types, capabilities,
// versions and times vary, and returns them.
func fixture(t testing.TB, s subject, n int) []registration.Projection {
	t.Helper()
	states := registration.States()
	caps := []string{`{"postgres": true}`, `{"kafka": true, "postgres": false}`, `{}`}
	var rows []registration.Projection
	for i := range n {
		st := states[i%len(states)]
		p := registration.Projection{
			EntityID: uuid.New(), Domain: registration.DefaultDomain, State: st,
			NodeType:     registration.NodeTypes[(i/2)%len(registration.NodeTypes)],
			NodeVersion:  fmt.Sprintf("1.%d.0", (i/len(states))%4),
			Capabilities: json.RawMessage(caps[i%len(caps)]),
			Endpoints:    map[string]string{"api": fmt.Sprintf("http://node-%d:8080", i)},
			RegisteredAt: baseTime, UpdatedAt: baseTime.Add(time.Duration(i) * time.Minute),
			CorrelationID: uuid.New(), Generation: int64(1 + i%3),
		}
		switch st {
		case registration.StateAwaitingAck:
			p.AckDeadline = baseTime.Add(time.Hour)
		case registration.StateActive:
			p.LastHeartbeatAt = baseTime.Add(time.Duration(i) * time.Second)
			p.LivenessDeadline = baseTime.Add(time.Hour + time.Duration(i)*time.Second)
		}
		s.insert(t, p)
		rows = append(rows, p)
	}
	return rows
}
