package memory

import (
	"context"
	"errors"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// readAhead is how many messages a Handler worker copies out of its
// partition at once; they are still handled one at a time.
const readAhead = 128

// worker serves one partition for one member: it is the only goroutine that
// handles that partition's messages for the member's group while it runs.
type worker struct {
	b      *Bus
	m      *member
	c      *cursor
	ctx    context.Context // canceled when the partition is taken away
	cancel context.CancelFunc
	ready  <-chan struct{} // closed once the rebalance that started it was announced
	prev   <-chan struct{} // closed when the partition's previous worker handed over; nil if none
	done   chan struct{}   // closed when run returned

	buf   []bus.Message  // messages being handled; reused
	ptrs  []*bus.Message // batch handed to a BatchHandler; reused
	dirty int            // w.buf[:dirty] may still reference messages

	failOff  int64 // offset that failed last, and how often in a row
	failures int
	faultOff int64 // a HandlerFault result held over for the next batch
	faultErr error
}

// startWorker starts serving c for m, once ready and prev (if not nil) are
// closed. Callers hold the group's mutex, and the bus is not closed.
func (b *Bus) startWorker(m *member, c *cursor, prev, ready <-chan struct{}) *worker {
	ctx, cancel := context.WithCancel(m.ctx)
	w := &worker{b: b, m: m, c: c, ctx: ctx, cancel: cancel, ready: ready, prev: prev, done: make(chan struct{}), failOff: -1}
	b.wg.Add(1)
	m.wg.Add(1)
	go w.run()
	return w
}

func (w *worker) run() {
	defer w.b.wg.Done()
	defer w.m.wg.Done()
	defer close(w.done)
	defer w.cancel()
	defer func() { w.buf, w.ptrs = nil, nil }() // a revocation keeps w until it ran
	<-w.ready
	if w.prev != nil {
		// Not selecting on ctx: the previous owner's handler call (and its
		// OnRevoke) must have returned before this worker ends, or the next
		// one could start while it still runs.
		<-w.prev
		w.prev = nil
	}
	if w.ctx.Err() != nil {
		return
	}
	if w.m.batch != nil {
		w.buf = make([]bus.Message, w.m.cfg.MaxBatch)
		w.ptrs = make([]*bus.Message, 0, w.m.cfg.MaxBatch)
	} else {
		w.buf = make([]bus.Message, readAhead)
	}
	off := w.c.committed.Load()
	for {
		n, ok := w.fetch(off)
		if !ok {
			return
		}
		if w.m.batch != nil {
			off, ok = w.handleBatch(w.fill(n))
		} else {
			off, ok = w.handleEach(n)
		}
		if !ok {
			return
		}
	}
}

// fetch fills w.buf with messages from off on, waiting until there is at
// least one. It reports false when the worker's context ended.
func (w *worker) fetch(off int64) (n int, ok bool) {
	p := w.c.part
	for {
		n, from, wait := p.read(off, w.buf)
		w.dirty = max(w.dirty, n)
		if from != off {
			w.b.log.Info("registrar/memory: messages dropped by retention before the group handled them",
				"group", w.m.g.name, "topic", p.topic, "partition", p.id, "skipped", from-off)
			off = from
		}
		if n > 0 {
			return n, true
		}
		// Idle: let go of the messages handled, which retention may drop.
		clear(w.buf[:w.dirty])
		w.dirty = 0
		select {
		case <-wait:
		case <-w.ctx.Done():
			return 0, false
		}
	}
}

// fill waits up to MaxBatchWait for more messages to complete a batch of n.
func (w *worker) fill(n int) int {
	wait := w.m.cfg.MaxBatchWait
	if wait <= 0 || n >= len(w.buf) {
		return n
	}
	p := w.c.part
	tm := time.NewTimer(wait)
	defer tm.Stop()
	for n < len(w.buf) {
		next := w.buf[n-1].Offset + 1
		k, from, ch := p.read(next, w.buf[n:])
		w.dirty = max(w.dirty, n+k)
		if k > 0 {
			if from != next {
				return n // a gap: leave the rest for the next batch
			}
			n += k
			continue
		}
		select {
		case <-ch:
		case <-tm.C:
			return n
		case <-w.ctx.Done():
			return n
		}
	}
	return n
}

// handleEach hands w.buf[:n] to the Handler one by one. It returns the
// offset to read on from, and false when the worker must stop.
func (w *worker) handleEach(n int) (int64, bool) {
	done := w.ctx.Done()
	fault := w.b.cfg.HandlerFault
	for i := range n {
		select {
		case <-done:
			return 0, false
		default:
		}
		msg := &w.buf[i]
		var err error
		if fault != nil {
			err = fault(w.m.g.name, msg)
		}
		if err == nil {
			err = w.m.handler(w.ctx, msg)
		}
		if err == nil {
			w.c.commit(msg.Offset + 1)
			continue
		}
		off := msg.Offset
		if w.deadLetter(msg, err) {
			w.c.commit(off + 1)
			continue
		}
		// The buffered message may have been modified by the handler:
		// read it again after the backoff.
		return off, w.backoff(off, err)
	}
	return w.buf[n-1].Offset + 1, true
}

// handleBatch hands w.buf[:n] to the BatchHandler at once and applies the
// [bus.BatchHandler] rules to its result.
func (w *worker) handleBatch(n int) (int64, bool) {
	if w.ctx.Err() != nil {
		return 0, false
	}
	k, faultErr := n, error(nil)
	if fault := w.b.cfg.HandlerFault; fault != nil {
		for i := range n {
			var err error
			if w.faultErr != nil && w.faultOff == w.buf[i].Offset {
				err, w.faultErr = w.faultErr, nil
			} else {
				err = fault(w.m.g.name, &w.buf[i])
			}
			if err == nil {
				continue
			}
			if i == 0 {
				faultErr = err
			} else {
				// Deliver the messages before it; it fails on its own next.
				w.faultOff, w.faultErr = w.buf[i].Offset, err
			}
			k = i
			break
		}
	}
	var err error
	if faultErr != nil {
		err = &bus.BatchError{Index: 0, Err: faultErr}
	} else {
		w.ptrs = w.ptrs[:0]
		for i := range k {
			w.ptrs = append(w.ptrs, &w.buf[i])
		}
		err = w.m.batch(w.ctx, w.ptrs)
	}
	if err == nil {
		next := w.buf[k-1].Offset + 1
		w.c.commit(next)
		return next, true
	}
	failAt := 0
	var be *bus.BatchError
	if errors.As(err, &be) {
		if be.Index >= 0 && be.Index < max(k, 1) {
			failAt = be.Index
			err = be.Err
			if failAt > 0 {
				w.c.commit(w.buf[failAt].Offset)
			}
			if w.deadLetter(&w.buf[failAt], err) {
				next := w.buf[failAt].Offset + 1
				w.c.commit(next)
				return next, true
			}
		} else {
			w.b.log.Warn("registrar/memory: batch handler returned a BatchError with an index outside the batch; redelivering the batch",
				"group", w.m.g.name, "topic", w.c.part.topic, "partition", w.c.part.id, "index", be.Index, "size", k)
		}
	}
	off := w.buf[failAt].Offset
	return off, w.backoff(off, err)
}

// deadLetter publishes msg to the dead-letter topic if err is a content
// error and the subscription has one. It reports whether it did.
func (w *worker) deadLetter(msg *bus.Message, err error) bool {
	topic := w.m.cfg.DeadLetterTopic
	if !bus.IsContentError(err) {
		return false
	}
	p := w.c.part
	if topic == "" {
		if w.failures == 0 || w.failOff != msg.Offset {
			w.b.log.Warn("registrar/memory: content error without a dead-letter topic; redelivering",
				"group", w.m.g.name, "topic", p.topic, "partition", p.id, "offset", msg.Offset, "error", err)
		}
		return false
	}
	dl, ferr := bus.FitDeadLetter(bus.DeadLetter(topic, w.m.g.name, msg, err, w.b.cfg.Now()), w.b.cfg.MaxMessageBytes)
	if ferr != nil {
		if w.failures == 0 || w.failOff != msg.Offset {
			w.b.log.Warn("registrar/memory: dead letter does not fit MaxMessageBytes; redelivering",
				"group", w.m.g.name, "topic", p.topic, "partition", p.id, "offset", msg.Offset, "error", ferr)
		}
		return false
	}
	if dl.Headers[bus.HeaderDLQValueTruncated] != "" || dl.Headers[bus.HeaderDLQHeadersDropped] != "" {
		w.b.log.Info("registrar/memory: dead letter cut to fit MaxMessageBytes",
			"group", w.m.g.name, "topic", p.topic, "partition", p.id, "offset", msg.Offset,
			"original_value_bytes", len(msg.Value), "value_bytes", len(dl.Value),
			"headers_dropped", dl.Headers[bus.HeaderDLQHeadersDropped] == "true")
	}
	if perr := w.b.Publish(w.ctx, dl); perr != nil {
		w.b.log.Warn("registrar/memory: dead-letter publish failed; redelivering",
			"group", w.m.g.name, "topic", p.topic, "partition", p.id, "offset", msg.Offset, "error", perr)
		return false
	}
	w.b.log.Warn("registrar/memory: message dead-lettered",
		"group", w.m.g.name, "topic", p.topic, "partition", p.id, "offset", msg.Offset,
		"dead_letter_topic", topic, "reason", err)
	return true
}

// backoff waits before offset off is delivered again. It reports false if
// the worker's context ended meanwhile.
func (w *worker) backoff(off int64, err error) bool {
	if off == w.failOff {
		w.failures++
	} else {
		w.failOff, w.failures = off, 1
	}
	d := w.m.cfg.RetryDelay(w.failures)
	p := w.c.part
	w.b.log.Debug("registrar/memory: delivery failed; redelivering after backoff",
		"group", w.m.g.name, "topic", p.topic, "partition", p.id, "offset", off,
		"attempt", w.failures, "backoff", d, "error", err)
	return sleep(w.ctx.Done(), d)
}
