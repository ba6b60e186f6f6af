package dispatch_test

// Review tests of the relay, written by a review to break it; they now
// hold.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// doneHook is a memory store whose Done runs after() once it succeeded.
type doneHook struct {
	*memory.Store
	after func()
}

func (d *doneHook) Done(ctx context.Context, seqs []int64) error {
	err := d.Store.Done(ctx, seqs)
	if err == nil && d.after != nil {
		d.after()
	}
	return err
}

// Promise (Relay's doc): records that were not relayed stay pending and
// Relay returns an error, so that the runtime does not commit. If the
// context ends between two waves (after the first record of an entity was
// done, before its second), relay() breaks out with first == nil and
// Relay reports success while the entity's second record is still
// pending: the runtime then returns nil for the input and the bus commits
// its offset before the decision's events were published.
func TestReviewRelayCancelledBetweenWavesReportsSuccess(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	commitOne(t, g, causeOf(40), node, registrationDecision(node))
	commitOne(t, g, causeOf(41), node, reducer.Decision{Events: []reducer.Event{{Topic: "later", Type: "Later", EntityID: node, Payload: 1}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooked := &doneHook{Store: g.store, after: cancel} // the runtime is told to stop right after the first wave
	a, err := dispatch.New(dispatch.Config{Publisher: g.rec, Executor: g.exec, Outbox: hooked, Decode: registration.DecodeIntentPayload,
		DeadLetterTopic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Relay(ctx, []uuid.UUID{node})
	if err == nil && g.store.PendingRecords() != 0 {
		t.Fatalf("Relay returned no error (result %+v) with %d record(s) of the entity still pending", res, g.store.PendingRecords())
	}
}

// Promise: errors marked retryable are retried without cap; only unmarked
// errors count toward MaxAttempts. The relay's attempt counter counts
// every failure, retryable ones included: after an outage of a few
// retryable failures, the first unmarked error dead-letters the intent at
// once (here: 5 retryable failures, then 1 unmarked, MaxAttempts 3).
func TestReviewRelayRetryableFailuresUseUpTheUnmarkedCap(t *testing.T) {
	var calls atomic.Int64
	registry := memory.NewRegistry(memory.RegistryConfig{Fault: func(in intent.Intent) error {
		switch n := calls.Add(1); {
		case n <= 5:
			return intent.Retryable(errors.New("dial tcp 127.0.0.1:8500: connection refused"))
		case n == 6:
			return errors.New("unexpected EOF") // one odd, unmarked failure as the agent comes back
		}
		return nil
	}})
	g := newRig(t, nil)
	g.exec = intent.NewExecutor()
	if err := memory.RegisterEffects(g.exec, g.store, registry); err != nil {
		t.Fatal(err)
	}
	a, err := dispatch.New(dispatch.Config{Publisher: g.rec, Executor: g.exec, Outbox: g.store, Decode: registration.DecodeIntentPayload,
		DeadLetterTopic: "dlq", MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	g.a = a
	node := uuid.New()
	commitOne(t, g, causeOf(42), node, registrationDecision(node))
	for i := 0; i < 20 && g.store.PendingRecords() > 0; i++ {
		_, _ = a.Relay(context.Background(), []uuid.UUID{node})
	}
	if dl := g.rec.PublishedTo("dlq"); len(dl) != 0 {
		t.Fatalf("the register was dead-lettered after one unmarked failure (MaxAttempts 3): attempts header %q",
			dl[0].Headers[dispatch.HeaderDLQAttempts])
	}
	if registry.Len() != 1 {
		t.Errorf("%d services registered", registry.Len())
	}
}
