package dispatch

// Review test of the relay's attempt counter (internal: it reads the
// counter); a failing test is a finding (see the review report).

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
)

// sliceOutbox is the minimum Outbox the relay needs: records in a slice.
type sliceOutbox struct {
	mu   sync.Mutex
	recs []Record
}

func (o *sliceOutbox) Owns(string) bool { return false }
func (o *sliceOutbox) Commit(context.Context, []Write) ([]WriteResult, error) {
	return nil, errors.New("not used")
}

func (o *sliceOutbox) PendingEntities(context.Context, time.Duration, int) ([]uuid.UUID, error) {
	return nil, nil
}

func (o *sliceOutbox) Pending(_ context.Context, entities []uuid.UUID, limit int) ([]Record, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Record
	for _, r := range o.recs {
		if (entities == nil || slices.Contains(entities, r.EntityID)) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (o *sliceOutbox) Done(_ context.Context, seqs []int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recs = slices.DeleteFunc(o.recs, func(r Record) bool { return slices.Contains(seqs, r.Seq) })
	return nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...*bus.Message) error { return nil }

// Memory: the attempt counter of a Runtime keeps an entry for every
// recorded intent that failed once in it and was then finished elsewhere
// (by another Runtime sharing the store: a failover, a partition moved, a
// relay task of another member). Nothing ever clears those entries; a
// long-running member accumulates them without bound.
func TestReviewAttemptCounterLeaksRecordsFinishedElsewhere(t *testing.T) {
	ob := &sliceOutbox{}
	var fail atomic.Bool
	fail.Store(true)
	exec := intent.NewExecutor()
	if err := exec.Register("x.do", intent.EffectFunc(func(context.Context, intent.Intent) (intent.Result, error) {
		if fail.Load() {
			return intent.Result{}, errors.New("odd failure")
		}
		return intent.Result{}, nil
	})); err != nil {
		t.Fatal(err)
	}
	decode := func(string, json.RawMessage) (any, error) { return nil, nil }
	mk := func() *Applier {
		a, err := New(Config{Publisher: nopPublisher{}, Executor: exec, Outbox: ob, Decode: decode, MaxAttempts: 100})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	here, there := mk(), mk()
	const n = 500
	for i := range n {
		id := uuid.New()
		ob.recs = append(ob.recs, Record{Seq: int64(i + 1), EntityID: id,
			Intents: []RecordedIntent{{Type: "x.do", Payload: json.RawMessage(`{}`)}}})
		if _, err := here.Relay(context.Background(), []uuid.UUID{id}); err == nil {
			t.Fatal("set-up: the first attempt succeeded")
		}
	}
	fail.Store(false)
	var all []uuid.UUID
	for _, r := range ob.recs {
		all = append(all, r.EntityID)
	}
	if _, err := there.Relay(context.Background(), all); err != nil {
		t.Fatal(err)
	}
	if len(ob.recs) != 0 {
		t.Fatalf("set-up: %d records left", len(ob.recs))
	}
	// Those entries go once they were not touched for attemptsForget:
	// the next failure after that prunes them.
	later := time.Now().Add(attemptsForget + 2*time.Minute)
	here.attempts.mu.Lock()
	here.attempts.now = func() time.Time { return later }
	here.attempts.mu.Unlock()
	fail.Store(true)
	id := uuid.New()
	ob.recs = append(ob.recs, Record{Seq: n + 1, EntityID: id, Intents: []RecordedIntent{{Type: "x.do", Payload: json.RawMessage(`{}`)}}})
	if _, err := here.Relay(context.Background(), []uuid.UUID{id}); err == nil {
		t.Fatal("the failing record succeeded")
	}
	here.attempts.mu.Lock()
	left := len(here.attempts.n)
	here.attempts.mu.Unlock()
	if left != 1 {
		t.Fatalf("the attempt counter holds %d entries, want the one failing record's", left)
	}
}

func (o *sliceOutbox) Lease(ctx context.Context, entities []uuid.UUID, limit int) (Lease, error) {
	recs, err := o.Pending(ctx, entities, limit)
	return sliceLease{o: o, recs: recs}, err
}

type sliceLease struct {
	o    *sliceOutbox
	recs []Record
}

func (l sliceLease) Records() []Record                            { return l.recs }
func (l sliceLease) Done(ctx context.Context, seqs []int64) error { return l.o.Done(ctx, seqs) }
func (l sliceLease) Release(context.Context) error                { return nil }
