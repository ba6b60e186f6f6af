package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// readBuffer is how many messages a reader of a feed holds that it has not
// handled yet; a reader whose buffer is full holds its feed back.
const readBuffer = 256

// PartitionCount returns topic's partition count, creating the topic first
// when [Config.CreateTopics] is set; see [bus.PartitionReader].
func (b *Bus) PartitionCount(ctx context.Context, topic string) (int32, error) {
	if b.closed.Load() {
		return 0, bus.ErrClosed
	}
	if topic == "" {
		return 0, errors.New("registrar/kafka: partition count: empty topic name")
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("registrar/kafka: partition count of %q: %w", topic, err)
	}
	if err := b.ensureTopics(topic); err != nil {
		return 0, b.closedOr(err)
	}
	ps, err := b.client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		// A topic just created may be missing from the metadata the
		// client fetched a moment ago.
		_ = b.client.RefreshMetadata(topic)
		ps, err = b.client.Partitions(topic)
	}
	if err != nil {
		return 0, b.closedOr(fmt.Errorf("registrar/kafka: partition count of %q: %w", topic, err))
	}
	return int32(len(ps)), nil
}

// closedOr returns bus.ErrClosed if the bus is closed, else err.
func (b *Bus) closedOr(err error) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	return err
}

// ReadPartition hands h the messages of one partition of topic, from the
// newest offset or, with [bus.ReadFromOldest], the oldest retained one,
// until ctx ends (nil), the bus is closed ([bus.ErrClosed]) or h fails; see
// [bus.PartitionReader]. It joins no group and commits nothing. With
// [Config.CreateTopics] it creates the topic, as [Bus.PartitionCount] does.
//
// Readers from the newest offset of one partition share one partition
// consumer of the bus: the first one starts it, at the offset it asked the
// broker for, the others join it, and the last one to leave closes it. Each
// reader has a buffer of its own, but when a reader's buffer is full the
// shared consumer waits for it: a slow reader slows the other newest readers
// of its partition down (never those of other partitions). A reader
// [bus.ReadFromOldest] has a partition consumer of its own, and slows nobody
// down.
//
// When a partition consumer's offset is out of range (retention deleted the
// messages it was about to read, or the log was truncated), it is started
// again at the oldest retained offset (logged at Info with how many messages
// were skipped) or at the newest (logged at Warn); its readers go on. Other
// errors of the partition consumer are logged at Warn and it retries, as
// does a reader that cannot ask the brokers for its start offset: a
// ReadPartition call only ends as documented above.
func (b *Bus) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	switch {
	case h == nil:
		return errors.New("registrar/kafka: read partition: nil handler")
	case topic == "":
		return errors.New("registrar/kafka: read partition: empty topic name")
	}
	if ctx.Err() != nil {
		return nil
	}
	n, err := b.PartitionCount(ctx, topic)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if partition < 0 || partition >= n {
		return fmt.Errorf("registrar/kafka: read partition: topic %q has no partition %d (it has %d)", topic, partition, n)
	}

	// hctx ends with ctx, with the bus, and when the read returns.
	hctx, leave, err := b.enter(ctx, &b.reads)
	if err != nil {
		return err
	}
	defer leave()
	end := func() error {
		if ctx.Err() == nil && b.ctx.Err() != nil {
			return bus.ErrClosed
		}
		return nil
	}

	cfg := bus.NewReadConfig(opts...)
	r := &reader{ch: make(chan *sarama.ConsumerMessage, readBuffer), gone: make(chan struct{})}
	key := feedKey{topic, partition}
	var f *feed
	var start, next int64
	if cfg.FromOldest {
		if f, start, next, err = b.startOldest(hctx, key, r); err != nil {
			if hctx.Err() != nil {
				return end()
			}
			return err
		}
		defer b.leave(f, r)
	} else {
		// Join the feed first, then ask for the newest offset: every
		// message at or after it reaches the feed after this reader joined
		// it, so the reader misses none.
		if f, err = b.join(key, r); err != nil {
			return b.closedOr(err)
		}
		defer b.leave(f, r)
		if start, err = b.offset(hctx, key, sarama.OffsetNewest); err != nil {
			return end()
		}
		start = f.decide(start)
		next = start
	}
	if cfg.Started != nil {
		cfg.Started(start, next)
	}

	delivered := false
	for {
		select {
		case m := <-r.ch:
			// The feed may deliver messages from before the start offset
			// until it passed it.
			if !delivered && m.Offset < start {
				continue
			}
			delivered = true
			if hctx.Err() != nil {
				return end()
			}
			if err := h(hctx, toMessage(m)); err != nil {
				if hctx.Err() != nil {
					return end()
				}
				return fmt.Errorf("registrar/kafka: read %s/%d: handler failed at offset %d: %w", topic, partition, m.Offset, err)
			}
		case <-hctx.Done():
			return end()
		}
	}
}

// offset asks the brokers for the oldest or newest offset of a partition,
// retrying until ctx ends.
func (b *Bus) offset(ctx context.Context, key feedKey, which int64) (int64, error) {
	for attempt := 0; ; attempt++ {
		off, err := b.client.GetOffset(key.topic, key.partition, which)
		if err == nil {
			return off, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		d := backoff(rejoinMin, rejoinMax, attempt)
		b.log.Warn("registrar/kafka: partition reader cannot get its start offset; retrying",
			"topic", key.topic, "partition", key.partition, "backoff", d, "error", err)
		if !sleep(ctx, d) {
			return 0, ctx.Err()
		}
	}
}

// feedKey names a partition.
type feedKey struct {
	topic     string
	partition int32
}

// reader is one ReadPartition call as its feed sees it.
type reader struct {
	ch   chan *sarama.ConsumerMessage
	gone chan struct{} // closed when the reader stopped reading
}

// feed is one partition consumer and the goroutine that hands its messages
// to the feed's readers.
type feed struct {
	b        *Bus
	key      feedKey
	consumer sarama.Consumer
	private  bool  // the feed has its own consumer, which it closes
	prev     *feed // the partition's previous shared feed, which must end first

	readers atomic.Pointer[[]*reader] // replaced under b.readMu, never modified
	refs    int                       // guarded by b.readMu

	mu       sync.Mutex
	startOff int64         // guarded by mu; -1 until decided
	decided  chan struct{} // closed once startOff is set

	stop chan struct{} // closed when the last reader left
	done chan struct{} // closed when run returned
}

// newFeed returns a feed of key on consumer and starts its goroutine.
// Callers hold b.readMu, within a ReadPartition call (so Close waits).
func (b *Bus) newFeed(key feedKey, consumer sarama.Consumer, private bool, prev *feed) *feed {
	f := &feed{b: b, key: key, consumer: consumer, private: private, prev: prev, startOff: -1,
		decided: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	f.readers.Store(&[]*reader{})
	b.feedsWG.Add(1)
	go f.run()
	return f
}

// addLocked adds r to f. Callers hold b.readMu.
func (f *feed) addLocked(r *reader) {
	rs := append(slices.Clone(*f.readers.Load()), r)
	f.readers.Store(&rs)
	f.refs++
}

// decide sets the feed's start offset to off unless it is set already, and
// returns the offset from which on every message reaches the feed's readers.
func (f *feed) decide(off int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startOff < 0 {
		f.startOff = off
		close(f.decided)
	}
	return max(off, f.startOff)
}

// join adds r to the shared feed of key, starting the feed if it has none.
func (b *Bus) join(key feedKey, r *reader) (*feed, error) {
	b.readMu.Lock()
	defer b.readMu.Unlock()
	if b.consumer == nil {
		rc, err := b.readClientLocked()
		if err != nil {
			return nil, err
		}
		c, err := sarama.NewConsumerFromClient(rc)
		if err != nil {
			return nil, fmt.Errorf("registrar/kafka: start partition consumer: %w", err)
		}
		b.consumer = c
	}
	f := b.feeds[key]
	if f == nil {
		prev := b.retired[key]
		delete(b.retired, key)
		f = b.newFeed(key, b.consumer, false, prev)
		b.feeds[key] = f
	}
	f.addLocked(r)
	return f, nil
}

// startOldest starts a private feed of key for r at the oldest offset. It
// returns the feed, the start offset and the high-water mark.
func (b *Bus) startOldest(ctx context.Context, key feedKey, r *reader) (f *feed, start, next int64, err error) {
	start, err = b.offset(ctx, key, sarama.OffsetOldest)
	if err != nil {
		return nil, 0, 0, err
	}
	next, err = b.offset(ctx, key, sarama.OffsetNewest)
	if err != nil {
		return nil, 0, 0, err
	}
	b.readMu.Lock()
	rc, err := b.readClientLocked()
	if err != nil {
		b.readMu.Unlock()
		return nil, 0, 0, b.closedOr(err)
	}
	c, err := sarama.NewConsumerFromClient(rc)
	if err != nil {
		b.readMu.Unlock()
		return nil, 0, 0, b.closedOr(fmt.Errorf("registrar/kafka: start partition consumer: %w", err))
	}
	f = b.newFeed(key, c, true, nil)
	f.addLocked(r)
	b.readMu.Unlock()
	f.decide(start)
	return f, start, next, nil
}

// leave removes r from f; the last reader to leave stops the feed.
func (b *Bus) leave(f *feed, r *reader) {
	close(r.gone)
	b.readMu.Lock()
	defer b.readMu.Unlock()
	rs := slices.DeleteFunc(slices.Clone(*f.readers.Load()), func(x *reader) bool { return x == r })
	f.readers.Store(&rs)
	f.refs--
	if f.refs > 0 {
		return
	}
	close(f.stop)
	if !f.private && b.feeds[f.key] == f {
		delete(b.feeds, f.key)
		b.retired[f.key] = f
	}
}

// run starts the feed's partition consumer at the decided offset, hands its
// messages to the readers, and starts it again where it left off if it
// ends on its own, until the feed is stopped.
func (f *feed) run() {
	b := f.b
	defer b.feedsWG.Done()
	defer close(f.done)
	defer func() {
		b.readMu.Lock()
		if b.retired[f.key] == f {
			delete(b.retired, f.key)
		}
		b.readMu.Unlock()
	}()
	if f.private {
		defer func() { _ = f.consumer.Close() }()
	}
	select {
	case <-f.decided:
	case <-f.stop:
		return
	}
	if f.prev != nil {
		// One consumer consumes a partition once: the previous feed's
		// partition consumer must be gone. Its readers all left, so it is
		// stopping.
		<-f.prev.done
		f.prev = nil
	}
	log := b.log.With("topic", f.key.topic, "partition", f.key.partition)
	f.mu.Lock()
	off := f.startOff
	f.mu.Unlock()
	failures := 0
	for {
		pc, err := f.consumer.ConsumePartition(f.key.topic, f.key.partition, off)
		var outOfRange, stopped bool
		if err == nil {
			var moved bool
			off, moved, outOfRange, stopped = f.pump(pc, off, log)
			if stopped {
				return
			}
			if moved {
				failures = 0
			}
		} else {
			outOfRange = errors.Is(err, sarama.ErrOffsetOutOfRange)
			if !outOfRange {
				log.Warn("registrar/kafka: cannot start a partition consumer for readers; retrying", "offset", off, "error", err)
			}
		}
		if outOfRange {
			off = f.reposition(off, log)
		}
		d := backoff(rejoinMin, rejoinMax, failures)
		failures++
		if !f.sleep(d) {
			return
		}
	}
}

// pump hands pc's messages to the readers until pc ends or the feed is
// stopped (then it closes pc and drains it). It returns the offset after the
// last message handed on, whether there was one, whether pc reported an
// offset out of range, and whether the feed was stopped.
func (f *feed) pump(pc sarama.PartitionConsumer, off int64, log *slog.Logger) (next int64, moved, outOfRange, stopped bool) {
	msgs, errs, stop := pc.Messages(), pc.Errors(), f.stop
	for msgs != nil || errs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			if stopped {
				continue
			}
			off, moved = m.Offset+1, true
			for _, r := range *f.readers.Load() {
				select {
				case r.ch <- m:
				case <-r.gone:
				}
			}
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(e.Err, sarama.ErrOffsetOutOfRange) {
				outOfRange = true
				log.Debug("registrar/kafka: partition consumer for readers out of range", "offset", off, "error", e.Err)
			} else {
				log.Warn("registrar/kafka: partition consumer error", "offset", off, "error", e.Err)
			}
		case <-stop:
			stop, stopped = nil, true
			pc.AsyncClose()
		}
	}
	return off, moved, outOfRange, stopped
}

// reposition returns where to start again after offset off was out of
// range: the oldest retained offset if off is older, the newest if it is
// beyond it (the log was truncated), else off.
func (f *feed) reposition(off int64, log *slog.Logger) int64 {
	c := f.b.client
	oldest, err := c.GetOffset(f.key.topic, f.key.partition, sarama.OffsetOldest)
	if err != nil {
		return off
	}
	newest, err := c.GetOffset(f.key.topic, f.key.partition, sarama.OffsetNewest)
	if err != nil {
		return off
	}
	switch {
	case off < oldest:
		log.Info("registrar/kafka: messages deleted by retention before partition readers read them", "skipped", oldest-off)
		return oldest
	case off > newest:
		log.Warn("registrar/kafka: partition readers' offset is beyond the end of the log; going on from its end", "offset", off, "newest", newest)
		return newest
	}
	return off
}

// sleep waits d; it reports false if the feed was stopped first.
func (f *feed) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.stop:
		return false
	}
}

// readClientLocked returns the partition consumers' client, connecting it
// the first time. b.readMu must be held.
func (b *Bus) readClientLocked() (sarama.Client, error) {
	if b.readClient != nil {
		return b.readClient, nil
	}
	c, err := sarama.NewClient(b.cfg.Brokers, b.sc)
	if err != nil {
		return nil, fmt.Errorf("registrar/kafka: connect the partition readers to %v: %w", b.cfg.Brokers, err)
	}
	b.readClient = c
	return c, nil
}
