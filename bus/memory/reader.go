package memory

import (
	"context"
	"errors"
	"fmt"

	"github.com/registrar-go/registrar/bus"
)

// PartitionCount returns topic's partition count, creating the topic as
// Publish would; see [bus.PartitionReader].
func (b *Bus) PartitionCount(ctx context.Context, topic string) (int32, error) {
	if b.closed.Load() {
		return 0, bus.ErrClosed
	}
	if topic == "" {
		return 0, errors.New("registrar/memory: partition count: empty topic name")
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("registrar/memory: partition count of %s: %w", topic, err)
	}
	return int32(len(b.topic(topic).parts)), nil
}

// readerAhead is how many messages a partition reader copies out of the
// partition at a time; fewer than a group worker's readAhead, since a
// reader is often one of many on one partition.
const readerAhead = 16

// ReadPartition hands h the messages of one partition of topic, from the
// newest offset or, with [bus.ReadFromOldest], the oldest retained one,
// until ctx ends (nil), the bus is closed ([bus.ErrClosed]) or h fails; see
// [bus.PartitionReader]. It creates the topic if it was never used.
//
// A reader runs on the caller's goroutine only, and copies out up to
// readerAhead messages at a time: thousands of readers (package node runs
// several per node) cost little. It is no group:
// it holds back neither retention nor publishers, and when retention drops
// messages before it read them it logs how many at Info and goes on with the
// oldest retained one. Close waits for readers, as for subscriptions, until
// their handler calls returned.
func (b *Bus) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	switch {
	case h == nil:
		return errors.New("registrar/memory: read partition: nil handler")
	case topic == "":
		return errors.New("registrar/memory: read partition: empty topic name")
	}
	t := b.topic(topic)
	if partition < 0 || int(partition) >= len(t.parts) {
		return fmt.Errorf("registrar/memory: read partition: topic %s has no partition %d (it has %d)", topic, partition, len(t.parts))
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return bus.ErrClosed
	}
	b.wg.Add(1)
	b.readers.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	defer b.readers.Add(-1)

	// hctx ends with ctx, with the bus, and when the read returns.
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.closing, cancel)
	defer stop()
	end := func() error {
		if ctx.Err() != nil {
			return nil
		}
		if b.closed.Load() {
			return bus.ErrClosed
		}
		return nil
	}

	p := t.parts[partition]
	cfg := bus.NewReadConfig(opts...)
	oldest, next := p.offsets()
	off := next
	if cfg.FromOldest {
		off = oldest
	}
	if cfg.Started != nil {
		cfg.Started(off, next)
	}
	buf := make([]bus.Message, readerAhead)
	dirty := 0
	for {
		n, from, wait := p.read(off, buf)
		dirty = max(dirty, n)
		if from != off {
			b.log.Info("registrar/memory: messages dropped by retention before a partition reader read them",
				"topic", topic, "partition", partition, "skipped", from-off)
			off = from
		}
		if n == 0 {
			clear(buf[:dirty]) // let retention drop what was handled
			dirty = 0
			select {
			case <-wait:
				continue
			case <-hctx.Done():
				return end()
			}
		}
		for i := range n {
			if hctx.Err() != nil {
				return end()
			}
			if err := h(hctx, &buf[i]); err != nil {
				if hctx.Err() != nil {
					return end()
				}
				return fmt.Errorf("registrar/memory: read %s/%d: handler failed at offset %d: %w", topic, partition, buf[i].Offset, err)
			}
			off = buf[i].Offset + 1
		}
	}
}

// Readers returns how many ReadPartition calls are in progress.
func (b *Bus) Readers() int { return int(b.readers.Load()) }
