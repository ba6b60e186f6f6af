package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
)

// memoryParams shape the in-memory bus benchmark: msgs messages of payload
// bytes, keyed over keys keys, published by publishers goroutines one
// message per call.
type memoryParams struct {
	msgs, publishers, keys, payload int
}

// memoryTimeout bounds one round: a round that has not consumed everything
// by then failed.
const memoryTimeout = 2 * time.Minute

// memoryTopic is the topic both buses publish to.
const memoryTopic = "bench.memory"

func benchMemory(ctx context.Context, o options, p *progress, t *table) error {
	mp := o.memory
	w := newMemoryWorkload(mp)
	cs := []contender{
		{name: "registrar bus/memory", unit: "msgs/s", run: func(ctx context.Context) (float64, error) {
			return w.registrar(ctx, false)
		}},
		{name: "watermill gochannel", unit: "msgs/s", run: w.gochannel},
		{name: "registrar bus/memory batch", unit: "msgs/s", run: func(ctx context.Context) (float64, error) {
			return w.registrar(ctx, true)
		}},
	}
	res, err := interleave(ctx, o, p, "memory", true, cs)
	if err != nil {
		return err
	}
	shape := fmt.Sprintf("%d msgs, %d B, %d publishers, %d keys", mp.msgs, mp.payload, mp.publishers, mp.keys)
	r := pairedRatio(res[0], res[1])
	t.add(row{Bench: "memory", Contender: cs[0].name + " (Subscribe)", Figure: rate(median(res[0]), "msgs/s"), Spread: spread(res[0]),
		Ratio: ratioText(r, "gochannel"), Note: joinNotes(shape, "no target since issue 16 (the first round asked for ≥ 5x)")})
	t.add(row{Contender: cs[2].name + " (SubscribeBatch)", Figure: rate(median(res[2]), "msgs/s"), Spread: spread(res[2]),
		Ratio: ratioText(pairedRatio(res[2], res[1]), "gochannel")})
	t.add(row{Contender: cs[1].name + " (baseline)", Figure: rate(median(res[1]), "msgs/s"), Spread: spread(res[1]),
		Note: "OutputChannelBuffer = msgs, as watermill's own benchmark"})
	// The memory store's footprint, cheaply (a few hundred milliseconds):
	// -scale measures it up to a million nodes.
	_, _, perNode := seedMemoryStore(storeCheckNodes)
	t.add(row{Contender: "registrar effects/memory Store, live heap", Figure: fmt.Sprintf("%.0f B/projection", perNode),
		Target: "≤ 2 KB", Result: t.check("memory store ≤ 2 KB live heap per projection", perNode <= maxStoreBytes),
		Note: fmt.Sprintf("%d active projections, after GC; -scale measures 10k to 1M", storeCheckNodes)})
	return nil
}

// storeCheckNodes is how many projections the memory benchmark stores to
// measure the memory store's bytes per projection.
const storeCheckNodes = 10_000

// memoryWorkload is the messages both buses carry.
type memoryWorkload struct {
	p       memoryParams
	keys    [][]byte
	keyStrs []string
	ids     []string // watermill message UUIDs, made before the clock starts
	value   []byte
	headers bus.Headers
}

func newMemoryWorkload(p memoryParams) *memoryWorkload {
	w := &memoryWorkload{p: p, value: make([]byte, p.payload),
		headers: bus.Headers{bus.HeaderContentType: bus.ContentTypeJSON, bus.HeaderEventType: "bench"}}
	for i := range p.keys {
		k := "entity-" + strconv.Itoa(i)
		w.keys = append(w.keys, []byte(k))
		w.keyStrs = append(w.keyStrs, k)
	}
	w.ids = make([]string, p.msgs)
	for i := range w.ids {
		w.ids[i] = watermill.NewUUID()
	}
	for i := range w.value {
		w.value[i] = byte('a' + i%26)
	}
	return w
}

// share returns the message indexes publisher i of n publishes: [from, to).
// The shares differ by one message at most: a last publisher left with the
// remainder (860 messages for 50,000 over 4096 publishers, against 12 for
// the others) would run alone at the end of the round, one call at a time.
func share(total, n, i int) (from, to int) {
	return i * total / n, (i + 1) * total / n
}

// registrar publishes the workload on a fresh bus/memory bus (default
// configuration: 12 partitions, default retention) and consumes it with one
// consumer group whose handler counts, per message (Subscribe) or per batch
// (SubscribeBatch). It returns messages per second from the first publish
// to the last message handled.
func (w *memoryWorkload) registrar(ctx context.Context, batch bool) (float64, error) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		return 0, err
	}
	defer b.Close()
	total := int64(w.p.msgs)
	var consumed atomic.Int64
	done := make(chan struct{})
	count := func(n int) {
		if consumed.Add(int64(n)) == total {
			close(done)
		}
	}
	ready := make(chan struct{})
	var once sync.Once
	onAssign := bus.WithOnAssign(func(map[string][]int32) { once.Do(func() { close(ready) }) })
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subErr := make(chan error, 1)
	go func() {
		if batch {
			subErr <- b.SubscribeBatch(sctx, "bench", []string{memoryTopic}, func(_ context.Context, msgs []*bus.Message) error {
				count(len(msgs))
				return nil
			}, onAssign)
			return
		}
		subErr <- b.Subscribe(sctx, "bench", []string{memoryTopic}, func(context.Context, *bus.Message) error {
			count(1)
			return nil
		}, onAssign)
	}()
	select {
	case <-ready:
	case err := <-subErr:
		return 0, fmt.Errorf("subscribe: %w", err)
	case <-time.After(10 * time.Second):
		return 0, errors.New("subscription not assigned within 10s")
	}

	start := time.Now()
	pubErr := make(chan error, w.p.publishers)
	for i := range w.p.publishers {
		from, to := share(w.p.msgs, w.p.publishers, i)
		go func() {
			m := &bus.Message{Topic: memoryTopic, Value: w.value, Headers: w.headers}
			for j := from; j < to; j++ {
				m.Key = w.keys[j%len(w.keys)]
				m.Timestamp = time.Time{}
				if err := b.Publish(sctx, m); err != nil {
					pubErr <- err
					return
				}
			}
			pubErr <- nil
		}()
	}
	if err := waitDone(ctx, done, pubErr, w.p.publishers, memoryTimeout, &consumed, total); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-subErr; err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	return float64(total) / elapsed.Seconds(), nil
}

// gochannel publishes the workload on a fresh watermill GoChannel and
// consumes it with one subscriber that acks every message. GoChannel has no
// keys or partitions: the key travels as metadata, as do the two headers.
// The output buffer holds every message, as in watermill's own benchmark,
// so publishers never wait for the subscriber.
func (w *memoryWorkload) gochannel(ctx context.Context) (float64, error) {
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(w.p.msgs)}, watermill.NopLogger{})
	defer ps.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := ps.Subscribe(sctx, memoryTopic)
	if err != nil {
		return 0, err
	}
	total := int64(w.p.msgs)
	var consumed atomic.Int64
	done := make(chan struct{})
	go func() {
		for m := range ch {
			m.Ack()
			if consumed.Add(1) == total {
				close(done)
			}
		}
	}()

	start := time.Now()
	pubErr := make(chan error, w.p.publishers)
	for i := range w.p.publishers {
		from, to := share(w.p.msgs, w.p.publishers, i)
		go func() {
			for j := from; j < to; j++ {
				m := message.NewMessage(w.ids[j], w.value)
				m.Metadata.Set("key", w.keyStrs[j%len(w.keyStrs)])
				m.Metadata.Set(bus.HeaderContentType, bus.ContentTypeJSON)
				m.Metadata.Set(bus.HeaderEventType, "bench")
				if err := ps.Publish(memoryTopic, m); err != nil {
					pubErr <- err
					return
				}
			}
			pubErr <- nil
		}()
	}
	if err := waitDone(ctx, done, pubErr, w.p.publishers, memoryTimeout, &consumed, total); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	cancel()
	return float64(total) / elapsed.Seconds(), nil
}

// waitDone waits until done is closed and every one of publishers reported
// on pubErr, and fails on the first publish error, on ctx ending, or after
// timeout (saying how far the consumer got).
func waitDone(ctx context.Context, done <-chan struct{}, pubErr <-chan error, publishers int, timeout time.Duration, consumed *atomic.Int64, total int64) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	pending := publishers
	for pending > 0 || done != nil {
		select {
		case err := <-pubErr:
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			pending--
		case <-done:
			done = nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("timed out after %s: %d of %d consumed, %d publishers still running", timeout, consumed.Load(), total, pending)
		}
	}
	return nil
}
