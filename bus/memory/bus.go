package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// Bus is the in-process event bus. Create it with [New]; all methods are
// safe for concurrent use.
type Bus struct {
	cfg Config // with defaults
	log *slog.Logger

	closed atomic.Bool
	done   chan struct{} // closed by Close
	// closing ends when Close starts: readers cancel their handlers'
	// contexts with it, without a goroutine each.
	closing    context.Context
	endClosing context.CancelFunc
	closeOnce  sync.Once
	wg         sync.WaitGroup // every goroutine the bus started

	// topics is replaced, never modified, so Publish reads it without a lock.
	topics   atomic.Pointer[map[string]*topic]
	memberID atomic.Uint64
	readers  atomic.Int32 // ReadPartition calls in progress

	mu     sync.Mutex // guards creating topics, groups
	groups map[string]*group
}

var (
	_ bus.EventBus        = (*Bus)(nil)
	_ bus.BatchSubscriber = (*Bus)(nil)
	_ bus.SizeLimited     = (*Bus)(nil)
	_ bus.PartitionReader = (*Bus)(nil)
)

// New returns a bus configured by cfg, with defaults for its zero fields. It
// fails if cfg.Validate does. New starts no goroutine.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Topics = maps.Clone(cfg.Topics) // the caller may change theirs
	b := &Bus{
		cfg:    cfg,
		log:    cfg.Logger,
		done:   make(chan struct{}),
		groups: make(map[string]*group),
	}
	b.closing, b.endClosing = context.WithCancel(context.Background())
	b.topics.Store(&map[string]*topic{})
	return b, nil
}

// topic returns the named topic, creating it on first use.
func (b *Bus) topic(name string) *topic {
	if t := (*b.topics.Load())[name]; t != nil {
		return t
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.topics.Load()
	if t := old[name]; t != nil {
		return t
	}
	s := b.cfg.settings(name)
	t := &topic{name: name, parts: make([]*partition, s.partitions)}
	for i := range t.parts {
		t.parts[i] = &partition{topic: name, id: int32(i), maxMsgs: s.maxMsgs, maxBytes: s.maxBytes}
	}
	m := maps.Clone(old)
	m[name] = t
	b.topics.Store(&m)
	return t
}

// lookup returns the named topic, or nil if it was never used.
func (b *Bus) lookup(name string) *topic { return (*b.topics.Load())[name] }

// MaxMessageBytes returns [Config.MaxMessageBytes]: the largest message, as
// bus.MessageSize counts it, that Publish accepts; zero means no limit.
func (b *Bus) MaxMessageBytes() int { return b.cfg.MaxMessageBytes }

// Publish stores msgs, each on its partition, and sets their Partition,
// Offset and (if zero) Timestamp. It copies Key, Value and Headers: the
// caller may reuse them once Publish returned. It blocks while a partition's
// retention is exhausted by an active group's backlog (see the package
// documentation), until ctx ends or the bus is closed. A call with a message
// larger than [Config.MaxMessageBytes] stores none of them and returns an
// error wrapping [bus.ErrMessageTooLarge].
func (b *Bus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registrar/memory: publish: %w", err)
	}
	for _, m := range msgs {
		if m == nil {
			return errors.New("registrar/memory: publish: nil message")
		}
		if m.Topic == "" {
			return errors.New("registrar/memory: publish: message has no topic")
		}
		if err := bus.CheckSize(m, b.cfg.MaxMessageBytes); err != nil {
			return fmt.Errorf("registrar/memory: publish: %w", err)
		}
	}
	for _, m := range msgs {
		if err := b.publish(ctx, m); err != nil {
			if errors.Is(err, bus.ErrClosed) {
				return err
			}
			return fmt.Errorf("registrar/memory: publish to %s: %w", m.Topic, err)
		}
	}
	return nil
}

func (b *Bus) publish(ctx context.Context, m *bus.Message) error {
	if f := b.cfg.PublishFault; f != nil {
		if err := f(m); err != nil {
			return err
		}
	}
	t := b.topic(m.Topic)
	p := t.partitionFor(m.Key)
	ts := m.Timestamp
	if ts.IsZero() {
		ts = b.cfg.Now()
	}
	stored := bus.Message{Topic: t.name, Partition: p.id, Timestamp: ts, Headers: maps.Clone(m.Headers)}
	if m.Key != nil || m.Value != nil {
		buf := make([]byte, len(m.Key)+len(m.Value))
		if m.Key != nil {
			stored.Key = buf[:copy(buf, m.Key):len(m.Key)]
		}
		if m.Value != nil {
			stored.Value = buf[len(m.Key) : len(m.Key)+copy(buf[len(m.Key):], m.Value)]
		}
	}
	off, err := p.append(ctx, b.done, &stored, messageSize(&stored))
	if err != nil {
		return err
	}
	m.Partition, m.Offset, m.Timestamp = p.id, off, ts
	return nil
}

// PublishEnvelope publishes env to topic; see [bus.EventBus.PublishEnvelope].
func (b *Bus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}

// Close cancels every subscription and partition reader (their Subscribe
// and ReadPartition calls return [bus.ErrClosed]), wakes blocked publishers
// (they return bus.ErrClosed), and waits until every goroutine the bus started, and so every handler call, has
// returned. Calling it again returns nil.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed.Store(true)
		close(b.done)
		b.endClosing()
		groups := make([]*group, 0, len(b.groups))
		for _, g := range b.groups {
			groups = append(groups, g)
		}
		b.mu.Unlock()
		for _, g := range groups {
			b.dissolve(g)
		}
		b.wg.Wait()
		b.log.Debug("registrar/memory: closed")
	})
	return nil
}

// Partitions returns the partition count that topic has, or will have when
// it is first used.
func (b *Bus) Partitions(topic string) int32 {
	if t := b.lookup(topic); t != nil {
		return int32(len(t.parts))
	}
	return b.cfg.settings(topic).partitions
}

// Messages returns clones of the messages partition of topic retains, oldest
// first; nil if the topic was never used or has no such partition.
func (b *Bus) Messages(topic string, partition int32) []*bus.Message {
	p := b.partition(topic, partition)
	if p == nil {
		return nil
	}
	return p.snapshot()
}

// Offsets returns the offset of the oldest message partition of topic
// retains, and the offset the next message will get (both 0 for a partition
// that does not exist yet). The partition retains next-oldest messages.
func (b *Bus) Offsets(topic string, partition int32) (oldest, next int64) {
	p := b.partition(topic, partition)
	if p == nil {
		return 0, 0
	}
	return p.offsets()
}

// Committed returns group's committed offset on partition of topic: the
// offset of the next message the group will handle. It is -1 if the group
// never subscribed to the topic.
func (b *Bus) Committed(group, topic string, partition int32) int64 {
	p := b.partition(topic, partition)
	if p == nil {
		return -1
	}
	p.mu.Lock()
	c := p.cursors[group]
	p.mu.Unlock()
	if c == nil {
		return -1
	}
	return c.committed.Load()
}

// Lag returns how many retained messages group has not committed yet, over
// all partitions of all topics it ever subscribed to.
func (b *Bus) Lag(group string) int64 {
	var lag int64
	for _, t := range *b.topics.Load() {
		for _, p := range t.parts {
			p.mu.Lock()
			if c := p.cursors[group]; c != nil {
				lag += p.nextLocked() - max(c.committed.Load(), p.base)
			}
			p.mu.Unlock()
		}
	}
	return lag
}

func (b *Bus) partition(topic string, partition int32) *partition {
	t := b.lookup(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.parts) {
		return nil
	}
	return t.parts[partition]
}

// sleep waits for d, and reports false if done was closed first.
func sleep(done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-done:
		return false
	}
}
