package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// When a worker commits the offsets it marked, besides whenever it has
// caught up with its partition and before it lets the partition go.
const (
	commitEvery    = 1000
	commitInterval = 500 * time.Millisecond
)

// worker serves one partition of one session: it is the only goroutine that
// hands that partition's messages to the handler while the session lasts.
//
// Offsets are marked only after the handler acknowledged a message, and the
// session's marks are committed synchronously when the worker has caught up
// (no message waiting) or is about to back off, every commitEvery messages
// or commitInterval, and when the worker returns. Under the eager rebalance protocol every worker
// of a member returns, and so commits, before the member rejoins the group:
// the next owner of a partition starts after the last acknowledged message.
type worker struct {
	s     *subscription
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	ctx   context.Context // the session's: canceled when the claim ends
	lag   *claimLag       // what ConsumerLag reports for the claim

	uncommitted int // marked but not committed
	lastCommit  time.Time

	failOff  int64 // offset that failed last, and how often in a row
	failures int
}

// next returns the next message, committing first if none is waiting. It
// reports false when the claim ended.
func (w *worker) next() (*sarama.ConsumerMessage, bool) {
	if w.ctx.Err() != nil {
		return nil, false
	}
	msgs := w.claim.Messages()
	select {
	case m, ok := <-msgs:
		if ok {
			w.lag.received(m.Offset)
		}
		return m, ok
	default:
	}
	w.commit()
	select {
	case m, ok := <-msgs:
		if ok {
			w.lag.received(m.Offset)
		}
		return m, ok && w.ctx.Err() == nil
	case <-w.ctx.Done():
		return nil, false
	}
}

// ack marks m, and every message before it, as handled.
func (w *worker) ack(m *sarama.ConsumerMessage) {
	w.sess.MarkMessage(m, "")
	w.lag.next.Store(m.Offset + 1)
	w.uncommitted++
	if w.failOff == m.Offset {
		w.failOff, w.failures = -1, 0
	}
	if w.uncommitted >= commitEvery || time.Since(w.lastCommit) >= commitInterval {
		w.commit()
	}
}

// commit commits the session's marked offsets, if this worker marked any
// since its last commit. sarama reports a failed commit on the group's error
// channel, which the subscription logs; the offsets stay marked and go with
// the next commit.
func (w *worker) commit() {
	if w.uncommitted == 0 {
		return
	}
	w.sess.Commit()
	w.uncommitted = 0
	w.lastCommit = time.Now()
}

// runEach hands the claim's messages to the Handler one at a time.
func (w *worker) runEach() {
	for {
		m, ok := w.next()
		if !ok || !w.handle(m) {
			return
		}
	}
}

// handle delivers m until the handler acknowledges it or it is
// dead-lettered (true), or the claim ends (false).
func (w *worker) handle(m *sarama.ConsumerMessage) bool {
	for {
		err := w.s.h(w.ctx, toMessage(m))
		if err == nil || w.deadLetter(m, err) {
			w.ack(m)
			return true
		}
		if !w.backoff(m, err) {
			return false
		}
	}
}

// runBatch hands the claim's messages to the BatchHandler, as many at once
// as are waiting, within the subscription's batch bounds.
func (w *worker) runBatch() {
	limit := max(w.s.cfg.MaxBatch, 1)
	var pending []*sarama.ConsumerMessage // taken from the claim, not acknowledged
	for {
		if len(pending) == 0 {
			m, ok := w.next()
			if !ok {
				return
			}
			pending = append(pending, m)
		}
		pending = w.fill(pending, limit)
		if w.ctx.Err() != nil {
			return
		}
		n := min(len(pending), limit)
		batch := pending[:n]
		msgs := make([]*bus.Message, n)
		for i, m := range batch {
			msgs[i] = toMessage(m)
		}
		err := w.s.bh(w.ctx, msgs)
		if err == nil {
			w.ack(batch[n-1])
			pending = drop(pending, n)
			continue
		}
		failAt := 0
		var be *bus.BatchError
		if errors.As(err, &be) {
			if be.Index >= 0 && be.Index < n {
				failAt, err = be.Index, be.Err
				if failAt > 0 {
					w.ack(batch[failAt-1])
				}
				if w.deadLetter(batch[failAt], err) {
					w.ack(batch[failAt])
					pending = drop(pending, failAt+1)
					continue
				}
			} else {
				w.s.log.Warn("registrar/kafka: batch handler returned a BatchError with an index outside the batch; redelivering the batch",
					"topic", w.claim.Topic(), "partition", w.claim.Partition(), "index", be.Index, "size", n)
			}
		}
		pending = drop(pending, failAt)
		if !w.backoff(pending[0], err) {
			return
		}
	}
}

// fill tops pending up to limit with the messages waiting in the claim, and
// then waits up to MaxBatchWait for more.
func (w *worker) fill(pending []*sarama.ConsumerMessage, limit int) []*sarama.ConsumerMessage {
	msgs := w.claim.Messages()
	for len(pending) < limit {
		select {
		case m, ok := <-msgs:
			if !ok {
				return pending
			}
			pending = append(pending, m)
			continue
		default:
		}
		break
	}
	wait := w.s.cfg.MaxBatchWait
	if wait <= 0 || len(pending) >= limit {
		return pending
	}
	w.commit()
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(pending) < limit {
		select {
		case m, ok := <-msgs:
			if !ok {
				return pending
			}
			pending = append(pending, m)
		case <-t.C:
			return pending
		case <-w.ctx.Done():
			return pending
		}
	}
	return pending
}

// drop removes the first n messages of pending, keeping its array.
func drop(pending []*sarama.ConsumerMessage, n int) []*sarama.ConsumerMessage {
	k := copy(pending, pending[n:])
	clear(pending[k:])
	return pending[:k]
}

// deadLetter publishes m to the dead-letter topic if err is a content error
// and the subscription has one. It reports whether it did.
func (w *worker) deadLetter(m *sarama.ConsumerMessage, err error) bool {
	if !bus.IsContentError(err) {
		return false
	}
	topic := w.s.cfg.DeadLetterTopic
	if topic == "" {
		if w.failOff != m.Offset {
			w.s.log.Warn("registrar/kafka: content error without a dead-letter topic; redelivering",
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "error", err)
		}
		return false
	}
	dl, ferr := bus.FitDeadLetter(bus.DeadLetter(topic, w.s.group, toMessage(m), err, time.Now()), w.s.b.MaxMessageBytes())
	if ferr != nil {
		if w.failOff != m.Offset {
			w.s.log.Warn("registrar/kafka: dead letter does not fit MaxMessageBytes; redelivering",
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "error", ferr)
		}
		return false
	}
	if dl.Headers[bus.HeaderDLQValueTruncated] != "" || dl.Headers[bus.HeaderDLQHeadersDropped] != "" {
		w.s.log.Info("registrar/kafka: dead letter cut to fit MaxMessageBytes",
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
			"original_value_bytes", len(m.Value), "value_bytes", len(dl.Value),
			"headers_dropped", dl.Headers[bus.HeaderDLQHeadersDropped] == "true")
	}
	if perr := w.s.b.publish(w.ctx, []*bus.Message{dl}); perr != nil {
		w.s.log.Warn("registrar/kafka: dead-letter publish failed; redelivering",
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "error", perr)
		return false
	}
	w.s.log.Warn("registrar/kafka: message dead-lettered",
		"topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
		"dead_letter_topic", topic, "dead_letter_offset", dl.Offset, "reason", err)
	return true
}

// backoff waits before m is delivered again, after committing what came
// before it. It reports false if the claim ended meanwhile.
func (w *worker) backoff(m *sarama.ConsumerMessage, err error) bool {
	w.commit()
	if m.Offset == w.failOff {
		w.failures++
	} else {
		w.failOff, w.failures = m.Offset, 1
	}
	d := w.s.cfg.RetryDelay(w.failures)
	w.s.log.Debug("registrar/kafka: delivery failed; redelivering after backoff",
		"topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
		"attempt", w.failures, "backoff", d, "error", err)
	return sleep(w.ctx, d)
}

// toMessage converts a consumed message for a handler.
func toMessage(m *sarama.ConsumerMessage) *bus.Message {
	msg := &bus.Message{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: m.Timestamp,
	}
	if len(m.Headers) > 0 {
		msg.Headers = make(bus.Headers, len(m.Headers))
		for _, h := range m.Headers {
			if h != nil {
				msg.Headers[string(h.Key)] = string(h.Value)
			}
		}
	}
	return msg
}
