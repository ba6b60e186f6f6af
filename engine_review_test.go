package registrar_test

// Review tests: each one states a promise of the engine and tries to break
// it. They were written by a review to break the engine, and now hold.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// reviewRig builds the registration runtime on a Recorder around a store
// the test wraps, driven synchronously (no Run, no relay task).
func reviewRuntime(t *testing.T, rec *bustest.Recorder, store registration.Store, exec *intent.Executor, now func() time.Time, opts ...registrar.Option) *registrar.RegistrationRuntime {
	t.Helper()
	opts = append([]registrar.Option{
		registrar.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		registrar.WithRelay(-1, 0),
		registrar.WithClock(now),
	}, opts...)
	rt, err := registrar.NewRegistration(nil, rec, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func msgRig() *rig {
	return &rig{c: contract.Default(), topics: mustReducerNoT().Config().Topics}
}

func mustReducerNoT() *registration.Reducer {
	r, err := registration.New(registrar.ReducerConfig(contract.Default()))
	if err != nil {
		panic(err)
	}
	return r
}

// ambiguousCommitStore is a memory store whose first Commit applies the
// writes and then reports a failure: what a Postgres COMMIT does when the
// connection drops after the server committed (or what a round-2 Commit of
// a batch does after round 1 committed).
type ambiguousCommitStore struct {
	*memory.Store
	calls atomic.Int64
	// failOn is the Commit call (1-based) that applies and then fails.
	failOn int64
	// before, if set, runs before every Commit with the call number.
	before func(n int64)
}

func (s *ambiguousCommitStore) Commit(ctx context.Context, writes []dispatch.Write) ([]dispatch.WriteResult, error) {
	n := s.calls.Add(1)
	if s.before != nil {
		s.before(n)
	}
	res, err := s.Store.Commit(ctx, writes)
	if err == nil && n == s.failOn {
		return nil, intent.Retryable(errors.New("conn closed: unexpected EOF after COMMIT"))
	}
	return res, err
}

// Promise: nothing is committed (offset) before its effects ran and its
// events are durable AND published by the decision's relay, or at least
// queued for one. Here the first Commit applied (state + record) but
// reported an error; the retry decides the redelivered input as a no-op,
// which appends no record, so the entity is never added to the relay set:
// Handle returns nil (the bus commits the offset) while the Initiated and
// Accepted events and the record sit in the outbox. With WithRelay(-1, ...)
// nothing ever publishes them; with the relay task, only after minAge.
func TestReviewAmbiguousCommitStrandsTheRecord(t *testing.T) {
	rec := &bustest.Recorder{}
	store := &ambiguousCommitStore{Store: memory.NewStore(memory.StoreConfig{}), failOn: 1}
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store.Store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt := reviewRuntime(t, rec, store, exec, func() time.Time { return t0.Add(time.Hour) })
	g := msgRig()
	node := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Handle(ctx, g.introspection(t, node, t0, 1)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	// Handle returned nil: the bus commits the offset now.
	if n, p := len(rec.PublishedTo(g.topics.Accepted)), store.PendingRecords(); n != 1 || p != 0 {
		t.Fatalf("Handle returned nil (offset committed) with %d Accepted published and %d records left in the outbox", n, p)
	}
}

// The same gap in a micro-batch: round 1 commits entity E's decision and
// meets a conflict on entity F; round 2 (F decided again) fails with a
// retryable error; the retried batch decides E's input as a no-op, and E's
// record is never relayed although HandleBatch returns nil.
func TestReviewBatchRound2FailureStrandsRound1Records(t *testing.T) {
	rec := &bustest.Recorder{}
	inner := memory.NewStore(memory.StoreConfig{})
	e, f := uuid.New(), uuid.New()
	store := &ambiguousCommitStore{Store: inner}
	var failed atomic.Bool
	store.before = func(n int64) {
		if n != 1 {
			return
		}
		// Another writer registers F (and times it out) just before the
		// batch's first write: F's upsert (decided on "none") conflicts.
		p := registration.Projection{EntityID: f, Domain: registration.DefaultDomain, State: registration.StateAckTimedOut,
			NodeType: "effect", RegisteredAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour), AckTimeoutEmittedAt: t0.Add(-time.Minute)}
		if _, err := inner.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert,
			Payload: &registration.UpsertRegistration{Projection: p}}); err != nil {
			panic(err)
		}
	}
	wrapped := &failNthCommit{ambiguousCommitStore: store, nth: 2, failed: &failed}
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, inner, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt := reviewRuntime(t, rec, wrapped, exec, func() time.Time { return t0.Add(time.Hour) })
	g := msgRig()
	batch := []*bus.Message{g.introspection(t, e, t0, 1), g.introspection(t, f, t0, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.HandleBatch(ctx, batch); err != nil {
		t.Fatalf("batch: %v", err)
	}
	if !failed.Load() {
		t.Fatal("set-up: the second Commit did not fail")
	}
	if st := stateOf(t, inner, f); st != registration.StateAwaitingAck {
		t.Fatalf("set-up: F is %s", st)
	}
	var accE int
	for _, m := range rec.PublishedTo(g.topics.Accepted) {
		if string(m.Key) == e.String() {
			accE++
		}
	}
	if accE != 1 || inner.PendingRecords() != 0 {
		t.Fatalf("HandleBatch returned nil (offset committed) with %d Accepted of E published and %d records left in the outbox", accE, inner.PendingRecords())
	}
}

// failNthCommit fails the nth Commit call with a retryable error before it
// writes anything.
type failNthCommit struct {
	*ambiguousCommitStore
	nth    int64
	seen   atomic.Int64
	failed *atomic.Bool
}

func (s *failNthCommit) Commit(ctx context.Context, writes []dispatch.Write) ([]dispatch.WriteResult, error) {
	if s.seen.Add(1) == s.nth {
		s.failed.Store(true)
		return nil, intent.Retryable(errors.New("database restarting"))
	}
	return s.ambiguousCommitStore.Commit(ctx, writes)
}

// Promise: a conflict decides again the conflicted entity's messages
// against what the store holds now (a batch equals one by one). The
// runtime re-decides only the inputs whose writes conflicted; an input of
// the same entity that was a no-op on the overlay (the overlay assumed the
// conflicted write) is never decided again, and is lost.
func TestReviewNoopOnOverlayIsNotDecidedAgainAfterConflict(t *testing.T) {
	inner := memory.NewStore(memory.StoreConfig{})
	node := uuid.New()
	seed := func(st, expected registration.State) {
		p := registration.Projection{EntityID: node, Domain: registration.DefaultDomain, State: st, NodeType: "effect",
			RegisteredAt: t0, UpdatedAt: t0}
		res, err := inner.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert,
			Payload: &registration.UpsertRegistration{Projection: p, ExpectedState: expected}})
		if err != nil || res.Status != intent.Applied {
			t.Fatalf("seed %s: %v %+v", st, err, res)
		}
	}
	seed(registration.StateAckTimedOut, registration.StateNone)
	store := &ambiguousCommitStore{Store: inner, before: func(n int64) {
		if n == 1 { // another writer moves the entity on before the first write
			seed(registration.StateLivenessExpired, registration.StateAckTimedOut)
		}
	}}
	rec := &bustest.Recorder{}
	rt, err := registrar.New[*registration.Projection](rec, stepReducer{}, store, intent.NewExecutor(),
		registrar.WithTopics("in"), registrar.WithGroup("g"), registrar.WithDeadLetterTopic("dlq"), registrar.WithRelay(-1, 0))
	if err != nil {
		t.Fatal(err)
	}
	step := func(from, to registration.State) *bus.Message {
		raw, _ := json.Marshal(stepInput{ID: node, From: from, To: to})
		m, err := bus.EnvelopeMessage("in", &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: t0, Payload: raw})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	batch := []*bus.Message{
		step(registration.StateAckTimedOut, registration.StateAwaitingAck), // conflicts: the state moved on
		step(registration.StateLivenessExpired, registration.StateActive),  // applies to the state that is there
	}
	if err := rt.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// One by one, with the same interference before the first write: the
	// first conflicts and is decided again as a no-op, the second applies.
	if st := stateOf(t, inner, node); st != registration.StateActive {
		t.Fatalf("state %s, want active: the second input was decided only against the overlay of a write that conflicted", st)
	}
}

type stepInput struct {
	ID   uuid.UUID          `json:"id"`
	From registration.State `json:"from"`
	To   registration.State `json:"to"`
}

// stepReducer moves an entity from one state to another if it is in the
// first; an Evolver with the stores' semantics.
type stepReducer struct{}

func (stepReducer) Decode(_ string, env *bus.Envelope) (reducer.Input, error) {
	var in stepInput
	if err := json.Unmarshal(env.Payload, &in); err != nil {
		return reducer.Input{}, &bus.DecodeError{Field: "payload", Reason: err.Error()}
	}
	return reducer.Input{EntityID: in.ID, Kind: "step", Event: &in}, nil
}

func (stepReducer) Decide(p *registration.Projection, in reducer.Input, _ time.Time) reducer.Decision {
	s := in.Event.(*stepInput)
	cur := registration.StateNone
	if p != nil {
		cur = p.State
	}
	if cur != s.From {
		return reducer.Decision{Reason: "not in " + string(s.From)}
	}
	proj := registration.Projection{EntityID: s.ID, Domain: registration.DefaultDomain, State: s.To, NodeType: "effect",
		RegisteredAt: t0, UpdatedAt: t0}
	return reducer.Decision{State: string(s.To), Intents: []intent.Intent{{Type: registration.IntentUpsert, Target: s.ID.String(),
		Payload: &registration.UpsertRegistration{Projection: proj, Columns: registration.ColCurrentState, ExpectedState: s.From}}}}
}

func (stepReducer) Evolve(p *registration.Projection, _ reducer.Input, d reducer.Decision) *registration.Projection {
	for _, in := range d.Intents {
		if u, ok := in.Payload.(*registration.UpsertRegistration); ok {
			p, _, _ = registration.ApplyUpsert(p, u)
		}
	}
	return p
}

// Promise: errors marked permanent are never retried; nothing blocks a
// partition for good. A publish of a recorded event that the bus refuses
// for good (marked intent.Permanent, as a broker's "message too large" or
// "invalid topic" would be) is retried by the decision's relay until the
// context ends: Handle never returns, the partition is stuck, and no
// dead letter says why. (An unmarked publish error is the transport's, and
// is retried for as long as it takes: see TestUnmarkedPublishErrorsAreTransport.)
func TestReviewPublishErrorThatRecursBlocksThePartition(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"permanent", intent.Permanent(errors.New("kafka server: message was too large (broker limit)"))},
		{"too-large", fmt.Errorf("topic limit: %w", bus.ErrMessageTooLarge)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &bustest.Recorder{}
			store := memory.NewStore(memory.StoreConfig{})
			exec := intent.NewExecutor()
			if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
				t.Fatal(err)
			}
			rt := reviewRuntime(t, rec, store, exec, func() time.Time { return t0.Add(time.Hour) }, registrar.WithMaxAttempts(3))
			g := msgRig()
			rec.FailPublishIf(func(m *bus.Message) error {
				if m.Topic == g.topics.Accepted {
					return tc.err
				}
				return nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := rt.Handle(ctx, g.introspection(t, uuid.New(), t0, 1))
			if err != nil && !bus.IsContentError(err) {
				t.Fatalf("after %v the partition is still stuck on one message: %v (stats %+v)",
					time.Since(start).Round(time.Millisecond), err, rt.Stats())
			}
		})
	}
}

// Promise: errors marked retryable are retried without cap; unmarked ones
// are capped by WithMaxAttempts. process() counts every failed attempt,
// retryable ones included, and never resets the count until a success: a
// database outage of 10 retryable failures followed by one unmarked error
// (MaxAttempts 3) dead-letters a good message at its first unmarked
// failure.
func TestReviewRetryableFailuresUseUpTheUnmarkedCap(t *testing.T) {
	var calls atomic.Int64
	store := memory.NewStore(memory.StoreConfig{Fault: func(intent.Intent) error {
		switch n := calls.Add(1); {
		case n <= 10:
			return intent.Retryable(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"))
		case n == 11:
			return errors.New("unexpected EOF") // one odd, unmarked failure as the database comes back
		}
		return nil
	}})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt := reviewRuntime(t, &bustest.Recorder{}, store, exec, func() time.Time { return t0.Add(time.Hour) }, registrar.WithMaxAttempts(3))
	g := msgRig()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Handle(ctx, g.introspection(t, uuid.New(), t0, 1)); err != nil {
		t.Fatalf("after one unmarked failure (MaxAttempts 3): %v", err)
	}
}

// A publish error the bus did not mark is the transport's (a broker down):
// retried without cap, never dead-lettered, whatever WithMaxAttempts says.
func TestUnmarkedPublishErrorsAreTransport(t *testing.T) {
	rec := &bustest.Recorder{}
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt := reviewRuntime(t, rec, store, exec, func() time.Time { return t0.Add(time.Hour) }, registrar.WithMaxAttempts(2))
	g := msgRig()
	rec.FailPublishIf(func(m *bus.Message) error { return errors.New("kafka: client has run out of available brokers") })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := rt.Handle(ctx, g.introspection(t, uuid.New(), t0, 1))
	if err == nil || bus.IsContentError(err) {
		t.Fatalf("with the broker gone: %v", err)
	}
	if st := rt.Stats(); st.DeadLettered != 0 || st.Retries < 3 {
		t.Errorf("stats %+v", st)
	}
	if store.PendingRecords() != 1 {
		t.Errorf("%d records pending, want the one waiting for the broker", store.PendingRecords())
	}
}
