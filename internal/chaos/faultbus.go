package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
)

// PublishFaults is an [Outage] of a broker as its publishers see it: while
// on, it fails a fraction of the Publish calls of every bus wrapped with
// [WithPublishFaults], half of them before publishing (nothing got out) and
// half after (every message got out, yet the caller sees an error). The
// error is a retryable transport error ([intent.Retryable] of
// [ErrInjected]). It is safe for concurrent use.
type PublishFaults struct {
	rate          float64
	on            atomic.Bool
	before, after atomic.Int64
	each, batch   atomic.Int64 // Subscribe and SubscribeBatch calls
	mu            sync.Mutex
	rng           *rand.Rand
}

// NewPublishFaults returns publish faults that fail the given fraction of
// calls while on, drawing from a generator seeded with seed.
func NewPublishFaults(rate float64, seed uint64) *PublishFaults {
	return &PublishFaults{rate: rate, rng: rand.New(rand.NewPCG(seed, 0x7075626c697368))}
}

// Begin implements [Outage].
func (f *PublishFaults) Begin() { f.on.Store(true) }

// End implements [Outage].
func (f *PublishFaults) End() error { f.on.Store(false); return nil }

// Count implements [Outage]: the calls failed, before and after publishing.
func (f *PublishFaults) Count() int64 { return f.before.Load() + f.after.Load() }

// Counts returns the calls failed before and after publishing.
func (f *PublishFaults) Counts() (before, after int64) { return f.before.Load(), f.after.Load() }

// Subscriptions returns how many Subscribe and SubscribeBatch calls went
// through the buses wrapped with these faults: which path the Runtime took.
func (f *PublishFaults) Subscriptions() (each, batch int64) { return f.each.Load(), f.batch.Load() }

type publishFault int

const (
	noFault publishFault = iota
	failBefore
	failAfter
)

func (f *PublishFaults) draw() publishFault {
	if !f.on.Load() {
		return noFault
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= f.rate {
		return noFault
	}
	if f.rng.IntN(2) == 0 {
		f.before.Add(1)
		return failBefore
	}
	f.after.Add(1)
	return failAfter
}

// WithPublishFaults returns b with its Publish and PublishEnvelope calls
// failing as f decides; Subscribe and Close go to b (Subscribe counted, see
// [PublishFaults.Subscriptions]).
//
// The result implements exactly the optional interfaces of b that callers
// detect by type assertion (today bus.BatchSubscriber, which the Runtime
// needs for micro-batches), forwarding them to b. To forward another one,
// write a forwarder type for it (as batchForwarder) and give the switch
// below a case for each combination: a struct embedding the *faultBus and
// the forwarders of the interfaces b has.
func WithPublishFaults(b bus.EventBus, f *PublishFaults) bus.EventBus {
	fb := &faultBus{EventBus: b, faults: f}
	if bs, ok := b.(bus.BatchSubscriber); ok {
		return &struct {
			*faultBus
			batchForwarder
		}{fb, batchForwarder{bs, f}}
	}
	return fb
}

// batchForwarder forwards bus.BatchSubscriber, counting the calls.
type batchForwarder struct {
	next   bus.BatchSubscriber
	faults *PublishFaults
}

// SubscribeBatch calls the wrapped bus's SubscribeBatch.
func (f batchForwarder) SubscribeBatch(ctx context.Context, group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) error {
	f.faults.batch.Add(1)
	return f.next.SubscribeBatch(ctx, group, topics, h, opts...)
}

// faultBus is the bus of [WithPublishFaults].
type faultBus struct {
	bus.EventBus
	faults *PublishFaults
}

// Publish publishes msgs through the wrapped bus, unless the faults fail
// the call before; if they fail it after, the messages are published and
// the call returns an error anyway.
func (b *faultBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	switch b.faults.draw() {
	case failBefore:
		return intent.Retryable(fmt.Errorf("%w: publish of %d messages refused by the broker", ErrInjected, len(msgs)))
	case failAfter:
		if err := b.EventBus.Publish(ctx, msgs...); err != nil {
			return err
		}
		return intent.Retryable(fmt.Errorf("%w: publish of %d messages timed out after the broker stored them", ErrInjected, len(msgs)))
	}
	return b.EventBus.Publish(ctx, msgs...)
}

// Subscribe calls the wrapped bus's Subscribe, counting the call.
func (b *faultBus) Subscribe(ctx context.Context, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) error {
	b.faults.each.Add(1)
	return b.EventBus.Subscribe(ctx, group, topics, h, opts...)
}

// PublishEnvelope encodes env and publishes it with [faultBus.Publish], so
// that its faults apply.
func (b *faultBus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}
