package registrar_test

import (
	"context"
	"errors"
	"sync"
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
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// writeCountingStore is a memory store that counts the writes committed
// per entity.
type writeCountingStore struct {
	*memory.Store
	mu     sync.Mutex
	writes map[uuid.UUID]int
}

func (s *writeCountingStore) Commit(ctx context.Context, ws []dispatch.Write) ([]dispatch.WriteResult, error) {
	s.mu.Lock()
	for _, w := range ws {
		s.writes[w.EntityID]++
	}
	s.mu.Unlock()
	return s.Store.Commit(ctx, ws)
}

func (s *writeCountingStore) count(id uuid.UUID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[id]
}

// outcomeRecorder counts the hooks' message outcomes.
type outcomeRecorder struct {
	mu   sync.Mutex
	ends map[hooks.Outcome]int
}

func (o *outcomeRecorder) MessageStart(ctx context.Context, _ *bus.Message, _ *bus.Envelope) context.Context {
	return ctx
}

func (o *outcomeRecorder) MessageEnd(_ context.Context, _ *bus.Message, end hooks.MessageEnd) {
	o.mu.Lock()
	o.ends[end.Outcome]++
	o.mu.Unlock()
}

// TestHeartbeatsOfABatchCoalesce: a node's heartbeats in one micro-batch
// are written once, with the newest of them (whatever their order), every
// message is acknowledged, and the hooks report the folded ones as
// coalesced; WithCoalescing(false) decides each one.
func TestHeartbeatsOfABatchCoalesce(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		opts                     []registrar.Option
		writes, coalesced, noops int
	}{
		{"default", nil, 1, 2, 0},
		// 10 s and 30 s apply, 20 s is stale after 30 s.
		{"WithCoalescing(false)", []registrar.Option{registrar.WithCoalescing(false)}, 2, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &writeCountingStore{Store: memory.NewStore(memory.StoreConfig{}), writes: map[uuid.UUID]int{}}
			rec := &outcomeRecorder{ends: map[hooks.Outcome]int{}}
			rig := newCacheRig(t, store, append([]registrar.Option{registrar.WithHooks(rec)}, tc.opts...)...)
			node, other := uuid.New(), uuid.New()
			rig.activate(node)
			rig.activate(other)
			before := rig.rt.Stats()
			w0 := store.count(node)
			batch := []*bus.Message{
				rig.heartbeatMessage(node, t0.Add(10*time.Second)),
				rig.heartbeatMessage(other, t0.Add(10*time.Second)),
				rig.heartbeatMessage(node, t0.Add(30*time.Second)),
				rig.heartbeatMessage(node, t0.Add(20*time.Second)),
			}
			if err := rig.rt.HandleBatch(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			p, err := store.Load(context.Background(), node)
			if err != nil {
				t.Fatal(err)
			}
			if want := t0.Add(30 * time.Second); !p.LastHeartbeatAt.Equal(want) || p.State != registration.StateActive {
				t.Fatalf("stored %s with heartbeat %v, want active with %v", p.State, p.LastHeartbeatAt, want)
			}
			if w := store.count(node) - w0; w != tc.writes {
				t.Errorf("%d writes of the node, want %d", w, tc.writes)
			}
			st := rig.rt.Stats()
			if d := st.Handled - before.Handled; d != 4 {
				t.Errorf("%d messages handled, want all 4", d)
			}
			if d := st.Coalesced - before.Coalesced; d != int64(tc.coalesced) {
				t.Errorf("Stats.Coalesced grew by %d, want %d", d, tc.coalesced)
			}
			if d := st.NoOps - before.NoOps; d != int64(tc.noops) {
				t.Errorf("Stats.NoOps grew by %d, want %d", d, tc.noops)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if got := rec.ends[hooks.OutcomeCoalesced]; got != tc.coalesced {
				t.Errorf("%d coalesced outcomes, want %d", got, tc.coalesced)
			}
		})
	}
}

// TestCoalescingStopsAtOtherInputs: heartbeats with a liveness check
// between them do not coalesce across it: the check sees the deadline the
// first heartbeat moved, so the node is not expired.
func TestCoalescingStopsAtOtherInputs(t *testing.T) {
	store := &writeCountingStore{Store: memory.NewStore(memory.StoreConfig{}), writes: map[uuid.UUID]int{}}
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	rig := newCacheRig(t, store, registrar.WithClock(func() time.Time { return time.Unix(0, clock.Load()).UTC() }))
	node := uuid.New()
	rig.activate(node)
	p, err := store.Load(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(p.LivenessDeadline.Add(time.Second).UnixNano())
	// A heartbeat just before the deadline, then a check after the
	// deadline the activation set (but before the one the heartbeat sets).
	hbAt := p.LivenessDeadline.Add(-time.Second)
	check, err := registrarTimeoutCheck(rig.topics.TimeoutCheck, node, registration.TimeoutLiveness, p.LivenessDeadline, p.LivenessDeadline.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	batch := []*bus.Message{rig.heartbeatMessage(node, hbAt), check, rig.heartbeatMessage(node, hbAt.Add(time.Second))}
	if err := rig.rt.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, store.Store, node); st != registration.StateActive {
		t.Fatalf("state %s: the check was decided without the heartbeat before it", st)
	}
	if st := rig.rt.Stats(); st.Coalesced != 0 {
		t.Fatalf("stats %+v: heartbeats coalesced across a liveness check", st)
	}
}

// poisonReducer is the registration reducer, except that a heartbeat with
// 666 s of uptime is decided into an event that cannot be encoded.
type poisonReducer struct{ *registration.Reducer }

func (p poisonReducer) Decide(st *registration.Projection, in reducer.Input, now time.Time) reducer.Decision {
	if hb, ok := in.Event.(*registration.Heartbeat); ok && hb.UptimeSeconds == 666 {
		return reducer.Decision{Events: []reducer.Event{{Topic: "out", Type: "poison", EntityID: in.EntityID,
			Payload: map[string]any{"c": make(chan int)}}}}
	}
	return p.Reducer.Decide(st, in, now)
}

// TestCoalescedDecisionThatCannotBePrepared: when the decision of a
// heartbeat that stands for an earlier one cannot be prepared, the earlier
// one is decided on its own and applied, and only the one at fault is
// dead-lettered.
func TestCoalescedDecisionThatCannotBePrepared(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	c := contract.Default()
	red, err := registration.New(registrar.ReducerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.New[*registration.Projection](b, poisonReducer{red}, store, exec, registrar.WithContract(c))
	if err != nil {
		t.Fatal(err)
	}
	rig := &cacheRig{t: t, rt: rt, topics: red.Config().Topics}
	node, other := uuid.New(), uuid.New()
	rig.activate(node)
	rig.activate(other)
	poisonMsg := mustHeartbeat(t, rig.topics.Heartbeat, &registration.Heartbeat{NodeID: node, NodeType: "compute",
		UptimeSeconds: 666, Timestamp: t0.Add(20 * time.Second)})
	batch := []*bus.Message{
		rig.heartbeatMessage(node, t0.Add(10*time.Second)),
		rig.heartbeatMessage(other, t0.Add(10*time.Second)),
		poisonMsg,
	}
	err = rt.HandleBatch(context.Background(), batch)
	var be *bus.BatchError
	var ce *bus.ContentError
	if !errors.As(err, &be) || be.Index != 2 || !errors.As(be.Err, &ce) {
		t.Fatalf("HandleBatch: %v, want a content error at index 2", err)
	}
	for _, id := range []uuid.UUID{node, other} {
		p, err := store.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(10 * time.Second); !p.LastHeartbeatAt.Equal(want) {
			t.Errorf("stored heartbeat %v, want the one before the poison, %v", p.LastHeartbeatAt, want)
		}
	}
	if st := rt.Stats(); st.DeadLettered != 1 {
		t.Fatalf("stats %+v, want one dead letter", st)
	}
}

func (c *cacheRig) heartbeatMessage(node uuid.UUID, at time.Time) *bus.Message {
	c.t.Helper()
	return mustHeartbeat(c.t, c.topics.Heartbeat, &registration.Heartbeat{NodeID: node, NodeType: "compute", NodeVersion: "2.0.0", Timestamp: at})
}

func mustHeartbeat(t *testing.T, topic string, hb *registration.Heartbeat) *bus.Message {
	t.Helper()
	raw, err := hb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	m, err := bus.EnvelopeMessage(topic, &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: hb.Timestamp, Payload: raw},
		bus.WithKey([]byte(hb.NodeID.String())))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
