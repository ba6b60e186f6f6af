package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// ErrNoSubscriber is returned by [Recorder.Deliver] when no subscription
// consumes the message's topic.
var ErrNoSubscriber = errors.New("registrar/bustest: no subscriber for the topic")

// DefaultRecorderPartitions is the partition count a [Recorder] computes
// partitions with when its Partitions field is zero.
const DefaultRecorderPartitions = 12

// Recorder is a fake [bus.EventBus] for unit tests of code that publishes or
// subscribes. It delivers nothing on its own: it records every message
// published, and a test hands messages to the subscribed handlers itself,
// synchronously, with [Recorder.Deliver].
//
// Publish records a clone of each message after setting its Partition (from
// the key with [bus.KeyPartition], or round-robin without a key), its Offset
// (counting per topic and partition) and, if zero, its Timestamp. It fails
// with the error set by [Recorder.FailPublish], or with the ctx error.
//
// The zero value is ready to use; all methods are safe for concurrent use.
type Recorder struct {
	// Partitions is the partition count of every topic; zero means
	// [DefaultRecorderPartitions]. Set it before first use.
	Partitions int32
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	published  []*bus.Message
	next       map[topicPartition]int64
	rr         map[string]int32
	failErr    error
	failCount  int // failures left; <0 means until cleared
	failIf     func(*bus.Message) error
	subs       []*recorderSub
	closed     bool
	closedCh   chan struct{}
	subscribed chan struct{} // closed and replaced when a subscription starts
}

type topicPartition struct {
	topic     string
	partition int32
}

// Subscription describes one Subscribe call on a [Recorder].
type Subscription struct {
	// Group is the consumer group passed to Subscribe.
	Group string
	// Topics are the topics passed to Subscribe.
	Topics []string
	// Config is the result of Subscribe's options.
	Config bus.SubscribeConfig
}

type recorderSub struct {
	Subscription
	h  bus.Handler
	bh bus.BatchHandler // set instead of h by SubscribeBatch
}

var (
	_ bus.EventBus        = (*Recorder)(nil)
	_ bus.BatchSubscriber = (*Recorder)(nil)
)

func (r *Recorder) initLocked() {
	if r.next == nil {
		r.next = make(map[topicPartition]int64)
		r.rr = make(map[string]int32)
		r.closedCh = make(chan struct{})
		r.subscribed = make(chan struct{})
	}
}

func (r *Recorder) partitions() int32 {
	if r.Partitions > 0 {
		return r.Partitions
	}
	return DefaultRecorderPartitions
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// FailPublish makes the next n Publish and PublishEnvelope calls fail with
// err, recording nothing; n <= 0 means every call until FailPublish(nil, 0).
func (r *Recorder) FailPublish(err error, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failErr, r.failCount = err, n
	switch {
	case err == nil:
		r.failCount = 0
	case n <= 0:
		r.failCount = -1
	}
}

// FailPublishIf makes every Publish call fail, recording nothing, if f
// returns an error for one of its messages (the first such error is
// returned); nil removes it. Tests use it to fail the publishes of some
// messages only, e.g. one in ten at random.
func (r *Recorder) FailPublishIf(f func(m *bus.Message) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failIf = f
}

// Publish records msgs; see [Recorder].
func (r *Recorder) Publish(ctx context.Context, msgs ...*bus.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	if r.closed {
		return bus.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.failErr != nil && r.failCount != 0 {
		if r.failCount > 0 {
			r.failCount--
		}
		return r.failErr
	}
	for _, m := range msgs {
		if m == nil || m.Topic == "" {
			return errors.New("registrar/bustest: publish: nil message or empty topic")
		}
	}
	if r.failIf != nil {
		for _, m := range msgs {
			if err := r.failIf(m); err != nil {
				return err
			}
		}
	}
	for _, m := range msgs {
		r.publishLocked(m)
	}
	return nil
}

func (r *Recorder) publishLocked(m *bus.Message) {
	n := r.partitions()
	if m.Key != nil {
		m.Partition = bus.KeyPartition(m.Key, n)
	} else {
		m.Partition = r.rr[m.Topic] % n
		r.rr[m.Topic]++
	}
	tp := topicPartition{m.Topic, m.Partition}
	m.Offset = r.next[tp]
	r.next[tp]++
	if m.Timestamp.IsZero() {
		m.Timestamp = r.now()
	}
	r.published = append(r.published, m.Clone())
}

// PublishEnvelope records the message [bus.EnvelopeMessage] makes.
func (r *Recorder) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return r.Publish(ctx, m)
}

// Published returns clones of every message recorded so far, in publish
// order.
func (r *Recorder) Published() []*bus.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*bus.Message, len(r.published))
	for i, m := range r.published {
		out[i] = m.Clone()
	}
	return out
}

// PublishedTo returns clones of the messages recorded on topic, in publish
// order.
func (r *Recorder) PublishedTo(topic string) []*bus.Message {
	var out []*bus.Message
	for _, m := range r.Published() {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Envelopes decodes the messages recorded on topic with
// [bus.DecodeEnvelope]; it fails on the first that does not decode.
func (r *Recorder) Envelopes(topic string) ([]*bus.Envelope, error) {
	var out []*bus.Envelope
	for _, m := range r.PublishedTo(topic) {
		env, err := bus.DecodeEnvelope(m.Value)
		if err != nil {
			return nil, fmt.Errorf("registrar/bustest: %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		out = append(out, env)
	}
	return out, nil
}

// Reset forgets the recorded messages (offsets keep counting).
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = nil
}

// Subscribe registers h for group and topics, and blocks until ctx ends
// (it returns nil) or the Recorder is closed (it returns [bus.ErrClosed]).
// Messages reach h only through [Recorder.Deliver] and
// [Recorder.DeliverBatch].
func (r *Recorder) Subscribe(ctx context.Context, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) error {
	if h == nil {
		return errors.New("registrar/bustest: subscribe: nil handler")
	}
	return r.subscribe(ctx, &recorderSub{h: h}, group, topics, opts)
}

// SubscribeBatch is [Recorder.Subscribe] with a batch handler, as
// bus.BatchSubscriber defines it: [Recorder.DeliverBatch] hands it the
// messages together, [Recorder.Deliver] as a batch of one. Code that
// micro-batches on a real bus takes the same path on a Recorder.
func (r *Recorder) SubscribeBatch(ctx context.Context, group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) error {
	if h == nil {
		return errors.New("registrar/bustest: subscribe: nil handler")
	}
	return r.subscribe(ctx, &recorderSub{bh: h}, group, topics, opts)
}

func (r *Recorder) subscribe(ctx context.Context, s *recorderSub, group string, topics []string, opts []bus.SubscribeOption) error {
	if group == "" || len(topics) == 0 {
		return errors.New("registrar/bustest: subscribe: empty group or no topics")
	}
	r.mu.Lock()
	r.initLocked()
	if r.closed {
		r.mu.Unlock()
		return bus.ErrClosed
	}
	if ctx.Err() != nil {
		r.mu.Unlock()
		return nil
	}
	s.Subscription = Subscription{Group: group, Topics: slices.Clone(topics), Config: bus.NewSubscribeConfig(opts...)}
	r.subs = append(r.subs, s)
	close(r.subscribed)
	r.subscribed = make(chan struct{})
	closed := r.closedCh
	r.mu.Unlock()

	var err error
	select {
	case <-ctx.Done():
	case <-closed:
		err = bus.ErrClosed
	}
	r.mu.Lock()
	r.subs = slices.DeleteFunc(r.subs, func(x *recorderSub) bool { return x == s })
	r.mu.Unlock()
	return err
}

// Subscriptions returns the Subscribe calls in progress, in the order they
// started.
func (r *Recorder) Subscriptions() []Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Subscription, len(r.subs))
	for i, s := range r.subs {
		out[i] = s.Subscription
		out[i].Topics = slices.Clone(s.Topics)
	}
	return out
}

// WaitSubscribed blocks until a subscription of group consumes topic, or
// ctx ends. Tests call it after starting Subscribe in a goroutine, before
// they Deliver.
func (r *Recorder) WaitSubscribed(ctx context.Context, group, topic string) error {
	for {
		r.mu.Lock()
		r.initLocked()
		found := slices.ContainsFunc(r.subs, func(s *recorderSub) bool {
			return s.Group == group && slices.Contains(s.Topics, topic)
		})
		ch := r.subscribed
		r.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("registrar/bustest: waiting for group %s to subscribe to %s: %w", group, topic, ctx.Err())
		}
	}
}

// Deliver hands a clone of msg to the handler of every group subscribed to
// msg.Topic (the earliest subscription of each group), one after another,
// and returns the handler's error (several handlers' errors joined); a batch
// handler gets a batch of one, and its [*bus.BatchError] is unwrapped. It
// applies the bus's rules to a handler's result: a [*bus.ContentError] with
// a dead-letter topic configured records [bus.DeadLetter] as published on
// that topic (and is still returned, so a test can check it). It returns
// [ErrNoSubscriber] if no subscription consumes the topic, [bus.ErrClosed]
// after Close.
func (r *Recorder) Deliver(ctx context.Context, msg *bus.Message) error {
	err := r.DeliverBatch(ctx, msg)
	var be *bus.BatchError
	if errors.As(err, &be) {
		return be.Err
	}
	return err
}

// DeliverBatch hands clones of msgs, which must share one topic, to every
// group subscribed to it, as a bus hands a partition's waiting messages: a
// batch handler gets them in one call, a plain handler one by one until one
// fails (that error is returned as a [*bus.BatchError] with its index). A
// batch handler's [*bus.BatchError] whose error is a [*bus.ContentError]
// records the dead letter of the message at its index, as the bus would;
// the messages after it are not delivered again (the bus would redeliver
// them: a test does that with another call).
func (r *Recorder) DeliverBatch(ctx context.Context, msgs ...*bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	topic := msgs[0].Topic
	for _, m := range msgs[1:] {
		if m.Topic != topic {
			return fmt.Errorf("registrar/bustest: deliver batch: topics %s and %s in one batch", topic, m.Topic)
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return bus.ErrClosed
	}
	var targets []*recorderSub
	groups := make(map[string]bool)
	for _, s := range r.subs {
		if slices.Contains(s.Topics, topic) && !groups[s.Group] {
			groups[s.Group] = true
			targets = append(targets, s)
		}
	}
	r.mu.Unlock()
	if len(targets) == 0 {
		return fmt.Errorf("%w: %s", ErrNoSubscriber, topic)
	}
	var errs []error
	for _, s := range targets {
		err := s.deliver(ctx, msgs)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		var be *bus.BatchError
		if dlq := s.Config.DeadLetterTopic; dlq != "" && errors.As(err, &be) && bus.IsContentError(be.Err) && be.Index < len(msgs) {
			dl := bus.DeadLetter(dlq, s.Group, msgs[be.Index], be.Err, r.now())
			r.mu.Lock()
			r.initLocked()
			r.publishLocked(dl)
			r.mu.Unlock()
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// deliver hands clones of msgs to the subscription's handler and returns
// nil or a *bus.BatchError.
func (s *recorderSub) deliver(ctx context.Context, msgs []*bus.Message) error {
	clones := make([]*bus.Message, len(msgs))
	for i, m := range msgs {
		clones[i] = m.Clone()
	}
	if s.bh != nil {
		err := s.bh(ctx, clones)
		var be *bus.BatchError
		if err != nil && !errors.As(err, &be) {
			return &bus.BatchError{Index: 0, Err: err}
		}
		return err
	}
	for i, m := range clones {
		if err := s.h(ctx, m); err != nil {
			return &bus.BatchError{Index: i, Err: err}
		}
	}
	return nil
}

// Close ends every Subscribe call (they return [bus.ErrClosed]); afterwards
// Publish, Subscribe and Deliver return bus.ErrClosed. Calling it again
// returns nil.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	if !r.closed {
		r.closed = true
		close(r.closedCh)
	}
	return nil
}
