package bus

import "context"

// PartitionReader is an optional interface of an [EventBus]: reading one
// partition of a topic, without a consumer group and without committing
// anything. Callers detect it by type assertion.
//
// It suits many small readers that each need only a slice of a topic's
// traffic: a reader of partition bus.KeyPartition(key, n) sees every message
// published with that key, and none of the other partitions' messages.
type PartitionReader interface {
	// PartitionCount returns how many partitions topic has. On a bus that
	// creates topics on first use it creates the topic, as Publish would.
	PartitionCount(ctx context.Context, topic string) (int32, error)

	// ReadPartition hands h the messages of one partition of topic, one at a
	// time, in offset order. It starts at the partition's newest offset (the
	// offset the next message gets at the moment the read is positioned),
	// or with [ReadFromOldest] at the oldest message retained; see
	// [WithReadStarted] for how a caller learns that the read is positioned.
	//
	// It blocks until ctx ends (it returns nil), the bus is closed
	// ([ErrClosed]), or h returns an error, which ReadPartition returns
	// wrapped (a [*ContentError] too: a reader dead-letters nothing). An
	// error h returns because the read was ending meanwhile counts as the
	// end, not as h's error. The context h receives ends when the read ends.
	// A topic that is empty or a partition outside 0..PartitionCount-1 is an
	// error at once.
	//
	// Nothing is committed, and readers do not hold back publishers or
	// retention: a reader that falls behind a bounded retention skips the
	// messages that were dropped and goes on with the oldest retained one.
	// Messages handed to h may share their Key and Value with other readers
	// of the partition: h must not modify them, and must keep a
	// [Message.Clone] of a message it keeps after it returned.
	ReadPartition(ctx context.Context, topic string, partition int32, h Handler, opts ...ReadOption) error
}

// ReadOption configures one call of [PartitionReader.ReadPartition].
type ReadOption interface {
	applyRead(*ReadConfig)
}

// ReadConfig is the result of applying [ReadOption]s. Bus implementations
// read it with [NewReadConfig]; callers use the options.
type ReadConfig struct {
	// FromOldest starts at the oldest retained message instead of the
	// newest offset; see [ReadFromOldest].
	FromOldest bool

	// Started, if set, is called once, when the read is positioned, before
	// the first message is handed to the handler: every message at offset
	// >= start is then handed to the handler, and next is the partition's
	// next offset (its high-water mark) at that moment, so a read from the
	// oldest has caught up once it handled offset next-1 (or at once when
	// start == next); see [WithReadStarted].
	Started func(start, next int64)
}

// NewReadConfig applies opts to a zero ReadConfig.
func NewReadConfig(opts ...ReadOption) ReadConfig {
	var c ReadConfig
	for _, o := range opts {
		o.applyRead(&c)
	}
	return c
}

type readFunc func(*ReadConfig)

func (f readFunc) applyRead(c *ReadConfig) { f(c) }

// ReadFromOldest makes [PartitionReader.ReadPartition] start at the oldest
// message the partition retains, instead of at its newest offset.
func ReadFromOldest() ReadOption {
	return readFunc(func(c *ReadConfig) { c.FromOldest = true })
}

// WithReadStarted registers f, which [PartitionReader.ReadPartition] calls
// once, on its own goroutine, when the read is positioned and before it
// hands the first message to its handler. From then on every message at
// offset >= start is handed to the handler (unless retention drops it
// first), so a message published after f was called is always delivered:
// a caller that must not miss the answer to a request starts the read,
// waits for f, and only then publishes the request.
//
// next is the partition's next offset (its high-water mark) when the read
// was positioned. A read from the newest offset has start == next; a read
// [ReadFromOldest] has caught up with what was published before it started
// once it handled offset next-1, or at once when start == next. f must not
// block for long: no message is handled until it returned.
func WithReadStarted(f func(start, next int64)) ReadOption {
	return readFunc(func(c *ReadConfig) { c.Started = f })
}
