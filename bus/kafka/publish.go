package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// call is one Publish call waiting for the broker's answers. The demux
// goroutine records each answer in its record, then counts it down; the
// last answer signals done. Calls that completed go back to callPool, with
// their buffers; an abandoned call (its ctx ended) is left to the garbage
// collector, since answers for it may still arrive.
type call struct {
	recs []record
	one  [1]record // recs of a one-message call
	left atomic.Int32
	done chan struct{} // buffered: the last answer never blocks

	hdrs []sarama.RecordHeader // every record's headers
	hbuf []byte                // their names and values
}

// record is one message of a call, as handed to the producer. Its
// ProducerMessage's Metadata points back at the record, and its Key and
// Value at the record's encoders.
type record struct {
	pm         sarama.ProducerMessage
	key, value bytesEncoder
	call       *call
	err        error
}

// bytesEncoder is sarama.ByteEncoder without the allocation of boxing a
// slice in an interface: records hand out pointers to their own.
type bytesEncoder struct{ b []byte }

// Encode returns the bytes.
func (e *bytesEncoder) Encode() ([]byte, error) { return e.b, nil }

// Length returns their length.
func (e *bytesEncoder) Length() int { return len(e.b) }

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// maxPooledHeaderBytes bounds the header buffer a pooled call keeps.
const maxPooledHeaderBytes = 64 << 10

// newCall returns a call for msgs, ready to send.
func newCall(msgs []*bus.Message, now time.Time) *call {
	c := callPool.Get().(*call)
	if len(msgs) == 1 {
		c.recs = c.one[:]
	} else {
		c.recs = make([]record, len(msgs))
	}
	c.left.Store(int32(len(msgs)))
	for i, m := range msgs {
		r := &c.recs[i]
		r.call = c
		r.pm.Topic = m.Topic
		if m.Key != nil {
			r.key.b = m.Key
			r.pm.Key = &r.key
		}
		if m.Value != nil {
			r.value.b = m.Value
			r.pm.Value = &r.value
		}
		r.pm.Headers = c.headers(m.Headers)
		r.pm.Timestamp = now
		if !m.Timestamp.IsZero() {
			r.pm.Timestamp = m.Timestamp
		}
		r.pm.Metadata = r
	}
	return c
}

// headers converts h for sarama, into the call's buffers.
func (c *call) headers(h bus.Headers) []sarama.RecordHeader {
	if len(h) == 0 {
		return nil
	}
	from := len(c.hdrs)
	for k, v := range h {
		c.hbuf = append(c.hbuf, k...)
		key := c.hbuf[len(c.hbuf)-len(k):]
		c.hbuf = append(c.hbuf, v...)
		c.hdrs = append(c.hdrs, sarama.RecordHeader{Key: key, Value: c.hbuf[len(c.hbuf)-len(v):]})
	}
	// Appends may have moved the buffers: earlier records keep the old
	// arrays, which stay valid because nothing writes to them again.
	return c.hdrs[from:len(c.hdrs):len(c.hdrs)]
}

// release recycles a call whose every message was answered.
func (c *call) release() {
	clear(c.recs)
	c.recs = nil
	clear(c.hdrs)
	c.hdrs = c.hdrs[:0]
	c.hbuf = c.hbuf[:0]
	if cap(c.hbuf) > maxPooledHeaderBytes {
		c.hdrs, c.hbuf = nil, nil
	}
	callPool.Put(c)
}

// Publish publishes msgs and returns once the brokers acknowledged all of
// them (acks from every in-sync replica), or failed some of them; see
// [bus.EventBus.Publish]. Keyed messages land on [bus.KeyPartition]; a nil
// key spreads messages at random. Messages of one call that share a
// partition are stored in the order given. Concurrent calls share produce
// requests, so many publishers get batching without giving up the
// per-message acknowledgement.
//
// A call with a message larger than [Bus.MaxMessageBytes] (as
// bus.MessageSize counts it) sends none of them and returns an error
// wrapping [bus.ErrMessageTooLarge], as does a message the brokers refuse
// as too large.
//
// If ctx ends first, Publish returns its error; messages already handed to
// the producer may still be stored.
func (b *Bus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	return b.publish(ctx, msgs)
}

// PublishEnvelope encodes env with [bus.EncodeEnvelope] and publishes it to
// topic; see [bus.EventBus.PublishEnvelope].
func (b *Bus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	msg, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return fmt.Errorf("registrar/kafka: publish envelope: %w", err)
	}
	return b.publish(ctx, []*bus.Message{msg})
}

// publish is Publish without the closed check, for the dead letters of
// subscriptions that Close is draining.
func (b *Bus) publish(ctx context.Context, msgs []*bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("registrar/kafka: publish: message %d is nil", i)
		}
		if m.Topic == "" {
			return fmt.Errorf("registrar/kafka: publish: message %d has no topic", i)
		}
		if err := bus.CheckSize(m, b.sc.Producer.MaxMessageBytes); err != nil {
			return fmt.Errorf("registrar/kafka: publish message %d: %w", i, err)
		}
	}
	if b.admin != nil {
		for _, m := range msgs {
			if _, ok := b.known.Load(m.Topic); !ok {
				if err := b.ensureTopics(m.Topic); err != nil {
					return err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registrar/kafka: publish: %w", err)
	}

	c := newCall(msgs, time.Now().Truncate(time.Millisecond))
	if err := b.enqueue(c); err != nil {
		return err
	}
	if done := ctx.Done(); done == nil {
		<-c.done
	} else {
		select {
		case <-c.done:
		case <-done:
			return fmt.Errorf("registrar/kafka: publish: waiting for acknowledgement: %w", ctx.Err())
		}
	}

	var errs []error
	for i, m := range msgs {
		r := &c.recs[i]
		if r.err != nil {
			err := r.err
			if tooLarge(err) {
				err = fmt.Errorf("%w: %w", bus.ErrMessageTooLarge, err)
			}
			errs = append(errs, fmt.Errorf("registrar/kafka: publish message %d to %q: %w", i, r.pm.Topic, err))
			continue
		}
		m.Partition = r.pm.Partition
		m.Offset = r.pm.Offset
		if m.Timestamp.IsZero() {
			m.Timestamp = r.pm.Timestamp
		}
	}
	c.release()
	return errors.Join(errs...)
}

// MaxMessageBytes returns the largest message, as bus.MessageSize counts it,
// that Publish accepts: sarama's Producer.MaxMessageBytes, capped at
// [Config.BrokerMaxMessageBytes] - [RecordBatchOverhead]. By default that is
// 1048527 bytes, the most that a broker with Kafka's default
// message.max.bytes is sure to accept. Publish refuses a call with a larger
// message before sending any, with an error wrapping
// [bus.ErrMessageTooLarge].
//
// A message within the limit can still be refused by the brokers: on a
// topic whose max.message.bytes is smaller than BrokerMaxMessageBytes says,
// or, with compression on, when compressing an incompressible value makes
// its batch grow. Publish then returns an error that wraps both
// bus.ErrMessageTooLarge and sarama's ErrMessageSizeTooLarge.
func (b *Bus) MaxMessageBytes() int { return b.sc.Producer.MaxMessageBytes }

// tooLarge reports whether err says a message was too large to publish:
// the brokers' MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE, or the
// producer's own check against Producer.MaxMessageBytes (which Publish
// makes first, so that only a producer interceptor that grows a message
// gets there).
func tooLarge(err error) bool {
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge) {
		return true
	}
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) && strings.Contains(string(ce), "larger than configured Producer.MaxMessageBytes")
}

// enqueue queues c's messages, in order, for the feed goroutine.
func (b *Bus) enqueue(c *call) error {
	b.qmu.Lock()
	if b.qclosed {
		b.qmu.Unlock()
		return bus.ErrClosed
	}
	wasEmpty := len(b.queue) == 0
	for i := range c.recs {
		b.queue = append(b.queue, &c.recs[i].pm)
	}
	b.qmu.Unlock()
	if wasEmpty {
		b.signal()
	}
	return nil
}

// signal wakes the feed goroutine, unless a wake-up is pending already.
func (b *Bus) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// feed sends the queued messages to the producer, in queue order, until
// Close closed the queue and it is empty.
func (b *Bus) feed() {
	defer close(b.fed)
	in := b.producer.Input()
	for {
		b.qmu.Lock()
		batch, closed := b.queue, b.qclosed
		b.queue, b.spare = b.spare, nil
		b.qmu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			b.qmu.Lock()
			b.spare = batch
			b.qmu.Unlock()
			<-b.wake
			continue
		}
		for _, pm := range batch {
			in <- pm
		}
		clear(batch)
		b.qmu.Lock()
		b.spare = batch[:0]
		b.qmu.Unlock()
	}
}

// demux hands every answer of the producer to the call waiting for it:
// successes on this goroutine, errors (rare) on one of its own. It returns
// when the producer has shut down, after answering every message.
func (b *Bus) demux() {
	defer close(b.demuxed)
	errsDone := make(chan struct{})
	go func() {
		defer close(errsDone)
		for pe := range b.producer.Errors() {
			err := pe.Err
			if err == nil {
				err = errors.New("unknown producer error")
			}
			answer(pe.Msg, err)
		}
	}()
	for pm := range b.producer.Successes() {
		answer(pm, nil)
	}
	<-errsDone
}

func answer(pm *sarama.ProducerMessage, err error) {
	if pm == nil {
		return
	}
	r, ok := pm.Metadata.(*record)
	if !ok {
		return
	}
	r.err = err
	if r.call.left.Add(-1) == 0 {
		r.call.done <- struct{}{}
	}
}
