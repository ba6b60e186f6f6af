package bus

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by every method of a bus that has been closed.
var ErrClosed = errors.New("registrar/bus: closed")

// Handler handles one message. Its context is canceled when the message's
// partition is taken away from this member (a rebalance, the subscription's
// context ending, or the bus closing); a handler should then return promptly.
//
// Returning nil acknowledges the message: its offset is committed. Returning
// a [*ContentError] dead-letters it (see [WithDeadLetterTopic]) and commits it.
// Any other error means the message is delivered again after a backoff; the
// partition does not move on until the message is acknowledged.
type Handler func(ctx context.Context, msg *Message) error

// EventBus is what registrar needs from an event bus.
//
// All methods are safe for concurrent use. After Close, every method returns
// [ErrClosed]; Close itself may be called more than once.
type EventBus interface {
	// Publish publishes messages and returns once the bus has accepted all of
	// them (for Kafka: the broker acknowledged them). Only Topic, Key, Value
	// and Headers of each message are read; a nil Key means no key. Messages
	// of one call that share a partition are stored in the order given. On
	// success, Publish sets Partition and Offset of each message, and
	// Timestamp if it was zero. On error, some messages may have been
	// published; publishing the same messages again is safe for consumers
	// that deduplicate by message id.
	Publish(ctx context.Context, msgs ...*Message) error

	// PublishEnvelope encodes env with [EncodeEnvelope] and publishes it to
	// topic. Without [WithKey] the message has no key.
	PublishEnvelope(ctx context.Context, topic string, env *Envelope, opts ...PublishOption) error

	// Subscribe joins the consumer group and hands every message of topics
	// to h, until ctx ends or the bus is closed. It blocks: it returns nil
	// once ctx ended and every handler call returned, [ErrClosed] if the bus
	// was closed, or the error that made it stop. Each group sees every
	// message; the members of one group (several Subscribe calls with the same
	// group) split the partitions, and a member that leaves hands its
	// partitions over. A new group starts at the oldest retained message.
	Subscribe(ctx context.Context, group string, topics []string, h Handler, opts ...SubscribeOption) error

	// Close stops every subscription, waits for handlers in progress to
	// return, and releases the bus's resources. Offsets of messages whose
	// handler has not returned nil are not committed.
	Close() error
}

// PublishOption configures one call of [EventBus.PublishEnvelope].
type PublishOption interface {
	applyPublish(*PublishConfig)
}

// PublishConfig is the result of applying [PublishOption]s. Bus
// implementations read it with [NewPublishConfig]; callers use the options.
type PublishConfig struct {
	// Key is the message key; nil means no key.
	Key []byte
	// Headers are added to the envelope's own headers, replacing those with
	// the same name.
	Headers Headers
}

// NewPublishConfig applies opts to a zero PublishConfig.
func NewPublishConfig(opts ...PublishOption) PublishConfig {
	var c PublishConfig
	for _, o := range opts {
		o.applyPublish(&c)
	}
	return c
}

type publishFunc func(*PublishConfig)

func (f publishFunc) applyPublish(c *PublishConfig) { f(c) }

// WithKey sets the message key. Messages with the same key land on the same
// partition, in publish order. The default is no key.
func WithKey(key []byte) PublishOption {
	return publishFunc(func(c *PublishConfig) { c.Key = key })
}

// WithHeaders adds headers to the envelope's message, replacing those of the
// same name that [EncodeEnvelope] writes.
func WithHeaders(h Headers) PublishOption {
	return publishFunc(func(c *PublishConfig) {
		if c.Headers == nil {
			c.Headers = make(Headers, len(h))
		}
		for k, v := range h {
			c.Headers[k] = v
		}
	})
}

// SubscribeOption configures one call of [EventBus.Subscribe].
type SubscribeOption interface {
	applySubscribe(*SubscribeConfig)
}

// SubscribeConfig is the result of applying [SubscribeOption]s. Bus
// implementations read it with [NewSubscribeConfig]; callers use the options.
type SubscribeConfig struct {
	// DeadLetterTopic receives messages whose handler returned a
	// [*ContentError]. Empty means none: such messages are then redelivered
	// like any other failure, so nothing is lost.
	DeadLetterTopic string
	// RetryMin and RetryMax bound the exponential backoff between deliveries
	// of a message whose handler failed.
	RetryMin, RetryMax time.Duration
	// OnAssign, if set, is called with the partitions this member owns each
	// time the assignment changes (including to none); see [WithOnAssign].
	OnAssign func(assigned map[string][]int32)
	// OnRevoke, if set, is called with the partitions taken away from this
	// member, once its handler calls on them returned; see [WithOnRevoke].
	OnRevoke func(revoked map[string][]int32)
	// MaxBatch and MaxBatchWait bound the batches of
	// [BatchSubscriber.SubscribeBatch]; see [WithMaxBatch].
	MaxBatch     int
	MaxBatchWait time.Duration
}

// Default backoff between redeliveries of a failed message.
const (
	DefaultRetryMin = 50 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
)

// NewSubscribeConfig applies opts to the defaults.
func NewSubscribeConfig(opts ...SubscribeOption) SubscribeConfig {
	c := SubscribeConfig{RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, MaxBatch: DefaultMaxBatch, MaxBatchWait: DefaultMaxBatchWait}
	for _, o := range opts {
		o.applySubscribe(&c)
	}
	return c
}

type subscribeFunc func(*SubscribeConfig)

func (f subscribeFunc) applySubscribe(c *SubscribeConfig) { f(c) }

// WithDeadLetterTopic names the topic that receives messages whose handler
// returned a [*ContentError]. The default is none.
func WithDeadLetterTopic(topic string) SubscribeOption {
	return subscribeFunc(func(c *SubscribeConfig) { c.DeadLetterTopic = topic })
}

// WithRetryBackoff bounds the exponential backoff between deliveries of a
// message whose handler failed. The defaults are [DefaultRetryMin] and
// [DefaultRetryMax]. Values that are not positive keep the default.
func WithRetryBackoff(minDelay, maxDelay time.Duration) SubscribeOption {
	return subscribeFunc(func(c *SubscribeConfig) {
		if minDelay > 0 {
			c.RetryMin = minDelay
		}
		if maxDelay > 0 {
			c.RetryMax = maxDelay
		}
		if c.RetryMax < c.RetryMin {
			c.RetryMax = c.RetryMin
		}
	})
}

// WithOnAssign registers a function that is called with this member's
// partitions, by topic, whenever its assignment changes. It runs on the bus's
// goroutine and must not block. Tests use it to wait until members joined.
//
// Its map is the whole new assignment, sorted by partition, and is the
// function's to keep. It is called as soon as the assignment is decided,
// before the first message of a newly assigned partition reaches the
// handler, and possibly while the handler is still finishing a call on a
// partition that the same change takes away ([WithOnRevoke] reports that
// one once it is done). The calls of one subscription's OnAssign and
// OnRevoke functions never overlap.
func WithOnAssign(f func(assigned map[string][]int32)) SubscribeOption {
	return subscribeFunc(func(c *SubscribeConfig) { c.OnAssign = f })
}

// WithOnRevoke registers a function that is called with the partitions, by
// topic, that are taken away from this member: by a rebalance, and at the
// end of the subscription (its context ending, or the bus closing), when it
// gives up every partition it still owns. Subscribe returns only after the
// last call returned. The default is none.
//
// For each revoked partition, the call comes after the handler's last call
// on that partition returned (its offset committed, if it returned nil):
// from then on the member handles no message of the partition until it is
// assigned again. A member that leaves cleanly makes the call before the
// partition's next owner in the group gets its first message, so f may
// flush state kept per partition. Like [WithOnAssign]'s function, f runs
// on the bus's goroutine and must not block for long: it delays the
// handover. Its map, sorted by partition, is f's to keep.
//
// A bus that rebalances eagerly (package bus/kafka) revokes every partition
// at each rebalance and assigns again those the member keeps; one that
// moves only what changes (package bus/memory) revokes only the partitions
// that change hands. Either way every revoked partition was assigned
// before, and a partition is revoked at most once per assignment.
func WithOnRevoke(f func(revoked map[string][]int32)) SubscribeOption {
	return subscribeFunc(func(c *SubscribeConfig) { c.OnRevoke = f })
}

// RetryDelay returns the backoff before delivery attempt n+1 of a message whose
// first n deliveries failed (n >= 1): RetryMin doubled per failure, capped at
// RetryMax.
func (c SubscribeConfig) RetryDelay(n int) time.Duration {
	d := c.RetryMin
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}
