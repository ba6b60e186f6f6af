package bus

import (
	"context"
	"fmt"
	"time"
)

// BatchHandler handles messages of one partition, in offset order, all at
// once. Its context behaves as [Handler]'s.
//
// Returning nil acknowledges every message. Returning a [*BatchError]
// acknowledges the messages before its Index and treats the message at Index
// as a [Handler] treats its error: a [*ContentError] dead-letters and
// acknowledges it (and the partition goes on with the next message), any
// other error redelivers it and everything after it. Returning any other error
// redelivers the whole batch.
type BatchHandler func(ctx context.Context, msgs []*Message) error

// BatchError says which message of a batch failed; see [BatchHandler].
type BatchError struct {
	// Index is the failed message's position in the batch.
	Index int
	// Err is why it failed.
	Err error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("registrar/bus: batch message %d: %v", e.Index, e.Err)
}

// Unwrap returns Err.
func (e *BatchError) Unwrap() error { return e.Err }

// BatchSubscriber is an optional interface of an [EventBus] that can hand a
// partition's waiting messages to one handler call. The runtime detects it by
// type assertion and uses it for micro-batching.
type BatchSubscriber interface {
	// SubscribeBatch is [EventBus.Subscribe] with a [BatchHandler]. A batch
	// holds up to the [WithMaxBatch] size of messages of one partition that
	// are waiting when the handler is free, or that arrive within its wait.
	SubscribeBatch(ctx context.Context, group string, topics []string, h BatchHandler, opts ...SubscribeOption) error
}

// Default batch bounds for [BatchSubscriber.SubscribeBatch].
const (
	DefaultMaxBatch     = 256
	DefaultMaxBatchWait = time.Duration(0)
)

// WithMaxBatch bounds the batches of [BatchSubscriber.SubscribeBatch]: at most
// size messages, and at most wait spent waiting for more once one message is
// ready (0, the default, means take what is waiting and do not wait). The
// default size is [DefaultMaxBatch]; a size below 1 keeps it.
func WithMaxBatch(size int, wait time.Duration) SubscribeOption {
	return subscribeFunc(func(c *SubscribeConfig) {
		if size >= 1 {
			c.MaxBatch = size
		}
		if wait >= 0 {
			c.MaxBatchWait = wait
		}
	})
}
