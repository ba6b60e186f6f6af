package registrar_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// readCountingStore is a memory store that counts the reads the Runtime
// makes of it: LoadMany calls and the outbox's Pending calls (the relay's
// look for earlier work).
type readCountingStore struct {
	*memory.Store
	loads, pending atomic.Int64
}

func (s *readCountingStore) LoadMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*registration.Projection, error) {
	s.loads.Add(1)
	return s.Store.LoadMany(ctx, ids)
}

func (s *readCountingStore) Pending(ctx context.Context, ids []uuid.UUID, limit int) ([]dispatch.Record, error) {
	s.pending.Add(1)
	return s.Store.Pending(ctx, ids, limit)
}

// cacheRig is a Runtime driven through Handle over a shared store.
type cacheRig struct {
	t      *testing.T
	rt     *registrar.RegistrationRuntime
	topics registration.Topics
}

func newCacheRig(t *testing.T, store registration.Store, opts ...registrar.Option) *cacheRig {
	t.Helper()
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, nil, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &cacheRig{t: t, rt: rt, topics: mustReducer(t, contract.Default()).Config().Topics}
}

func (c *cacheRig) send(topic string, at time.Time, payload any) {
	c.t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		c.t.Fatal(err)
	}
	m, err := bus.EnvelopeMessage(topic, &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, Payload: raw})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.rt.Handle(context.Background(), m); err != nil {
		c.t.Fatal(err)
	}
}

// activate registers node and acknowledges it at t0.
func (c *cacheRig) activate(node uuid.UUID) {
	c.t.Helper()
	c.send(c.topics.Introspection, t0, introspectionOf(node, t0))
	c.send(c.topics.Ack, t0.Add(time.Second), &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: t0.Add(time.Second)})
}

func (c *cacheRig) heartbeat(node uuid.UUID, at time.Time) {
	c.t.Helper()
	c.send(c.topics.Heartbeat, at, &registration.Heartbeat{NodeID: node, NodeType: "compute", NodeVersion: "2.0.0", Timestamp: at})
}

// TestStateCacheSkipsTheReads: once a node's state is cached, its
// heartbeats read neither the state nor the outbox, and what they write is
// what deciding against the store would have written; without the cache,
// every heartbeat reads both.
func TestStateCacheSkipsTheReads(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []registrar.Option
		wantReads int64
	}{
		{"default cache", nil, 0},
		{"WithStateCache(0)", []registrar.Option{registrar.WithStateCache(0)}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &readCountingStore{Store: memory.NewStore(memory.StoreConfig{})}
			rig := newCacheRig(t, store, tc.opts...)
			node := uuid.New()
			rig.activate(node)
			if st := stateOf(t, store.Store, node); st != registration.StateActive {
				t.Fatalf("state %s, want active", st)
			}
			store.loads.Store(0)
			store.pending.Store(0)
			last := t0
			for i := 1; i <= 3; i++ {
				last = t0.Add(time.Duration(i) * 10 * time.Second)
				rig.heartbeat(node, last)
			}
			if l, p := store.loads.Load(), store.pending.Load(); l != tc.wantReads || p != tc.wantReads {
				t.Fatalf("3 heartbeats made %d LoadMany and %d Pending calls, want %d of each", l, p, tc.wantReads)
			}
			got, err := store.Load(context.Background(), node)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastHeartbeatAt.Equal(last) || got.State != registration.StateActive {
				t.Fatalf("stored %s with heartbeat %v, want active with %v", got.State, got.LastHeartbeatAt, last)
			}
			if st := rig.rt.Stats(); st.NoOps != 0 || st.Conflicts != 0 || st.IntentsSkipped != 0 {
				t.Fatalf("stats %+v: the heartbeats did not all apply", st)
			}
		})
	}
}

// TestStateCacheBatchOfOneNodeReadsNothing: a micro-batch that holds a
// cached node twice reads nothing either (the entity locks deduplicate the
// batch's ids; nothing but the node's own id is looked up).
func TestStateCacheBatchOfOneNodeReadsNothing(t *testing.T) {
	store := &readCountingStore{Store: memory.NewStore(memory.StoreConfig{})}
	rig := newCacheRig(t, store)
	node := uuid.New()
	rig.activate(node)
	rig.heartbeat(node, t0.Add(10*time.Second))
	store.loads.Store(0)
	store.pending.Store(0)
	batch := []*bus.Message{rig.heartbeatMessage(node, t0.Add(20*time.Second)), rig.heartbeatMessage(node, t0.Add(30*time.Second))}
	if err := rig.rt.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if l, p := store.loads.Load(), store.pending.Load(); l != 0 || p != 0 {
		t.Fatalf("a batch of a cached node's heartbeats made %d LoadMany and %d Pending calls, want none", l, p)
	}
}

// TestStateCacheLosesToAnotherWriter: a second Runtime on the same store
// removes a node the first one has cached. The first one's next heartbeat
// is decided on its stale entry, conflicts, and is decided again against the
// store: a no-op, with no row written back; the node registers afresh
// afterwards. A heartbeat decided on an entry older than the other writer's
// newer heartbeat changes nothing either.
func TestStateCacheLosesToAnotherWriter(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	a, b := newCacheRig(t, store), newCacheRig(t, store)

	gone := uuid.New()
	a.activate(gone)
	b.send(b.topics.Shutdown, t0.Add(5*time.Second), &registration.Shutdown{NodeID: gone, Timestamp: t0.Add(5 * time.Second)})
	if st := stateOf(t, store, gone); st != registration.StateNone {
		t.Fatalf("after the other writer's removal the node is %s", st)
	}
	a.heartbeat(gone, t0.Add(10*time.Second))
	if st := stateOf(t, store, gone); st != registration.StateNone {
		t.Fatalf("a heartbeat decided on the stale entry wrote the node back as %s", st)
	}
	if st := a.rt.Stats(); st.Conflicts != 1 || st.NoOps != 1 {
		t.Fatalf("stats %+v, want one conflict, then a no-op", st)
	}
	a.send(a.topics.Introspection, t0.Add(20*time.Second), introspectionOf(gone, t0.Add(20*time.Second)))
	p, err := store.Load(context.Background(), gone)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || p.Generation != 1 || p.State != registration.StateAwaitingAck {
		t.Fatalf("re-registration stored %+v, want generation 1 awaiting ack", p)
	}

	busy := uuid.New()
	a.activate(busy)
	b.heartbeat(busy, t0.Add(30*time.Second))
	a.heartbeat(busy, t0.Add(20*time.Second)) // older than what b wrote
	p, err = store.Load(context.Background(), busy)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(30 * time.Second); !p.LastHeartbeatAt.Equal(want) {
		t.Fatalf("stored heartbeat %v, want the other writer's newer %v", p.LastHeartbeatAt, want)
	}
	a.heartbeat(busy, t0.Add(40*time.Second)) // newer: applies
	p, err = store.Load(context.Background(), busy)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(40 * time.Second); !p.LastHeartbeatAt.Equal(want) || p.State != registration.StateActive {
		t.Fatalf("stored %s with heartbeat %v, want active with %v", p.State, p.LastHeartbeatAt, want)
	}
}

// TestStateCacheIsDroppedOnAFailedAttempt: a commit that fails makes the
// retry read the state again.
func TestStateCacheIsDroppedOnAFailedAttempt(t *testing.T) {
	store := &failingCommitStore{readCountingStore: readCountingStore{Store: memory.NewStore(memory.StoreConfig{})}}
	rig := newCacheRig(t, store, registrar.WithRetryBackoff(time.Millisecond, time.Millisecond))
	node := uuid.New()
	rig.activate(node)
	rig.heartbeat(node, t0.Add(10*time.Second))
	store.loads.Store(0)
	store.fail.Store(1)
	rig.heartbeat(node, t0.Add(20*time.Second))
	if l := store.loads.Load(); l != 1 {
		t.Fatalf("the retry after a failed commit made %d LoadMany calls, want 1", l)
	}
	if st := rig.rt.Stats(); st.Retries != 1 {
		t.Fatalf("stats %+v, want one retry", st)
	}
	p, err := store.Load(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(20 * time.Second); !p.LastHeartbeatAt.Equal(want) {
		t.Fatalf("stored heartbeat %v, want %v", p.LastHeartbeatAt, want)
	}
}

// failingCommitStore fails as many commits as fail says, with a retryable
// error.
type failingCommitStore struct {
	readCountingStore
	fail atomic.Int64
}

func (s *failingCommitStore) Commit(ctx context.Context, writes []dispatch.Write) ([]dispatch.WriteResult, error) {
	if s.fail.Add(-1) >= 0 {
		return nil, intent.Retryable(context.DeadlineExceeded)
	}
	return s.Store.Commit(ctx, writes)
}
