package postgres

// The relay lease on PostgreSQL: two processes relaying one entity keep
// its work in order.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// blockFirst wraps an effect; its first call signals entered and waits for
// release (a slow Consul agent).
type blockFirst struct {
	inner   intent.IntentEffect
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *blockFirst) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.entered)
		<-b.release
	}
	return b.inner.Execute(ctx, in)
}

// Per-entity order of the relay, with two Runtimes (two processes) on one
// Postgres schema: A relays a metadata refresh's consul.register and
// stalls in it; B's liveness check waits for A's advisory-lock lease, then
// deregisters: the node ends liveness_expired and unregistered.
func TestTwoRuntimesOnPostgresRelayInOrder(t *testing.T) {
	db := newTestDB(t)
	storeA, storeB := db.store(t), db.store(t)
	registry := memory.NewRegistry(memory.RegistryConfig{})
	rec := &bustest.Recorder{}
	var clock atomic.Int64
	clock.Store(reviewT0.Add(10 * time.Second).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	slow := &blockFirst{inner: registry, entered: make(chan struct{}), release: make(chan struct{})}
	newRT := func(s *Store, reg intent.IntentEffect) *registrar.RegistrationRuntime {
		exec := intent.NewExecutor()
		for _, err := range []error{
			exec.Register(registration.IntentConsulReg, reg), exec.Register(registration.IntentConsulDereg, registry),
			exec.Register(registration.IntentConsulPassTTL, registry, intent.Volatile()),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		rt, err := registrar.NewRegistration(nil, rec, s, exec, registrar.RegistrationConfig{NoSweeper: true},
			registrar.WithRetryBackoff(time.Millisecond, 2*time.Millisecond), registrar.WithRelay(-1, 0), registrar.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rtA, rtB := newRT(storeA, slow), newRT(storeB, registry)
	topics := registrar.ReducerConfig(contract.Default())
	red, err := registration.New(topics)
	if err != nil {
		t.Fatal(err)
	}
	tp := red.Config().Topics
	node := uuid.New()
	var n atomic.Int64
	msg := func(topic string, at time.Time, payload any) *bus.Message {
		raw, _ := json.Marshal(payload)
		m, err := bus.EnvelopeMessage(topic, &bus.Envelope{EnvelopeID: uuid.NewSHA1(node, fmt.Appendf(nil, "m%d", n.Add(1))),
			EnvelopeTimestamp: at, CorrelationID: uuid.New(), Payload: raw}, bus.WithKey([]byte(node.String())))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	intro := func(at time.Time, v int) *bus.Message {
		return msg(tp.Introspection, at, &registration.Introspection{NodeID: node, NodeType: "effect", NodeVersion: bus.Version{Major: v},
			CorrelationID: uuid.New(), Timestamp: at, Endpoints: map[string]string{"health": "http://127.0.0.1:9/health"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range []*bus.Message{intro(reviewT0, 1),
		msg(tp.Ack, reviewT0.Add(time.Second), &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: reviewT0.Add(time.Second)})} {
		if err := rtB.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if registry.Len() != 1 {
		t.Fatalf("set-up: %d services", registry.Len())
	}
	doneA := make(chan error, 1)
	go func() { doneA <- rtA.Handle(ctx, intro(reviewT0.Add(5*time.Second), 2)) }()
	select {
	case <-slow.entered:
	case err := <-doneA:
		t.Fatalf("A finished without calling Consul: %v", err)
	}
	cur, err := storeB.Load(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(cur.LivenessDeadline.Add(time.Second).UnixNano())
	check, err := registrar.TimeoutCheckMessage(tp.TimeoutCheck, node, registration.TimeoutLiveness, cur.LivenessDeadline, now())
	if err != nil {
		t.Fatal(err)
	}
	doneB := make(chan error, 1)
	go func() { doneB <- rtB.Handle(ctx, check) }()
	select {
	case err := <-doneB:
		t.Fatalf("B decided while A held the entity's relay lease: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(slow.release)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	st, err := storeB.Load(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != registration.StateLivenessExpired || registry.Len() != 0 {
		t.Fatalf("state %s in Postgres, %d service(s) registered: %+v", st.State, registry.Len(), registry.Services())
	}
}

// TestLeasesLeaveConnectionsForReads: on a pool of 4, the store holds at
// most 2 leases at once by default, so that the relayed effects' reads of
// the store (the fenced Consul effect's) always find a connection; a
// third Lease waits for a Release, or fails retryable when its context
// ends first.
func TestLeasesLeaveConnectionsForReads(t *testing.T) {
	db := newTestDB(t)
	s := db.store(t)
	ctx := t.Context()
	var held []dispatch.Lease
	for range 2 {
		l, err := s.Lease(ctx, []uuid.UUID{uuid.New()}, 10)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	// Reads still get connections while both leases are held.
	for range 4 {
		if _, err := s.Load(ctx, uuid.New()); err != nil {
			t.Fatalf("load beside two leases: %v", err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := s.Lease(short, []uuid.UUID{uuid.New()}, 10)
	cancel()
	if !intent.IsRetryable(err) {
		t.Fatalf("a third lease beside two held ones: %v; want a retryable wait that ended", err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := s.Lease(ctx, []uuid.UUID{uuid.New()}, 10)
		if err == nil {
			err = l.Release(ctx)
		}
		got <- err
	}()
	if err := held[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("lease after a release: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a lease did not get the slot a release freed")
	}
	if err := held[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
}
