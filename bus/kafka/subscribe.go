package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// Backoff between attempts to join a group after Consume failed.
const (
	rejoinMin = 100 * time.Millisecond
	rejoinMax = 5 * time.Second
)

// Subscribe joins the consumer group and hands every message of topics to h
// until ctx ends (it returns nil) or the bus is closed ([bus.ErrClosed]);
// see [bus.EventBus.Subscribe] and the package documentation for what is
// committed when.
func (b *Bus) Subscribe(ctx context.Context, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) error {
	if h == nil {
		if b.closed.Load() {
			return bus.ErrClosed
		}
		return errors.New("registrar/kafka: subscribe: nil handler")
	}
	return b.subscribe(ctx, group, topics, h, nil, opts)
}

// SubscribeBatch is Subscribe with a [bus.BatchHandler]: each call gets the
// messages of one partition that are waiting when the handler is free, up to
// the [bus.WithMaxBatch] bounds; see [bus.BatchSubscriber].
func (b *Bus) SubscribeBatch(ctx context.Context, group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) error {
	if h == nil {
		if b.closed.Load() {
			return bus.ErrClosed
		}
		return errors.New("registrar/kafka: subscribe: nil handler")
	}
	return b.subscribe(ctx, group, topics, nil, h, opts)
}

func (b *Bus) subscribe(ctx context.Context, group string, topics []string, h bus.Handler, bh bus.BatchHandler, opts []bus.SubscribeOption) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	switch {
	case group == "":
		return errors.New("registrar/kafka: subscribe: empty group name")
	case len(topics) == 0:
		return errors.New("registrar/kafka: subscribe: no topics")
	case slices.Contains(topics, ""):
		return errors.New("registrar/kafka: subscribe: empty topic name")
	}
	if ctx.Err() != nil {
		return nil
	}
	topics = slices.Clone(topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)

	// sctx ends with ctx or when the bus closes.
	sctx, leave, err := b.enter(ctx, &b.subs)
	if err != nil {
		return err
	}
	defer leave()

	s := &subscription{b: b, group: group, topics: topics, h: h, bh: bh, cfg: bus.NewSubscribeConfig(opts...)}
	s.log = b.log.With("group", group)
	b.addMember(s)
	defer b.removeMember(s)
	err = s.run(sctx)
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return nil
	case b.ctx.Err() != nil:
		return bus.ErrClosed
	}
	return nil
}

// subscription is one Subscribe call: a member of a consumer group.
type subscription struct {
	b      *Bus
	group  string
	topics []string
	h      bus.Handler
	bh     bus.BatchHandler
	cfg    bus.SubscribeConfig
	log    *slog.Logger

	// claimsMu guards claims: the partitions whose ConsumeClaim runs now.
	claimsMu sync.Mutex
	claims   []*claimLag
}

// run consumes until ctx ends. It returns nil then, or the error that made
// joining the group impossible.
func (s *subscription) run(ctx context.Context) error {
	want := s.topics
	if s.cfg.DeadLetterTopic != "" {
		want = append(slices.Clone(want), s.cfg.DeadLetterTopic)
	}
	for attempt := 1; ; attempt++ {
		err := s.b.ensureTopics(want...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("registrar/kafka: cannot create topics; retrying", "topics", want, "error", err)
		if !sleep(ctx, backoff(rejoinMin, rejoinMax, attempt-1)) {
			return nil
		}
	}

	// A consumer group cannot share its client: each member has its own
	// connections, closed with the group.
	cg, err := sarama.NewConsumerGroup(s.b.cfg.Brokers, s.group, s.b.sc)
	if err != nil {
		return fmt.Errorf("registrar/kafka: subscribe %q: %w", s.group, err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for err := range cg.Errors() {
			s.log.Warn("registrar/kafka: consumer error", "error", err)
		}
	}()
	defer func() {
		if err := cg.Close(); err != nil {
			s.log.Warn("registrar/kafka: leaving the group", "error", err)
		}
		<-drained
		s.log.Info("registrar/kafka: left the group", "topics", s.topics)
	}()

	failures, short := 0, 0
	for ctx.Err() == nil {
		start := time.Now()
		err := cg.Consume(ctx, s.topics, s)
		switch {
		case errors.Is(err, sarama.ErrClosedConsumerGroup), ctx.Err() != nil:
			return nil
		case err == nil:
			// A session ended by a rebalance: join again at once, or the
			// group waits for this member. Only sessions that keep ending
			// right away (a fault, not a rebalance) are slowed down.
			failures = 0
			if time.Since(start) >= rejoinMin {
				short = 0
				continue
			}
			if short++; short < 3 {
				continue
			}
			if !sleep(ctx, backoff(rejoinMin, rejoinMax, short-3)) {
				return nil
			}
			continue
		}
		var ce sarama.ConfigurationError
		if errors.As(err, &ce) {
			return fmt.Errorf("registrar/kafka: subscribe %q: %w", s.group, err)
		}
		failures++
		d := backoff(rejoinMin, rejoinMax, failures-1)
		s.log.Warn("registrar/kafka: consuming failed; joining again", "topics", s.topics, "attempt", failures, "backoff", d, "error", err)
		if !sleep(ctx, d) {
			return nil
		}
	}
	return nil
}

// Setup reports the new assignment.
func (s *subscription) Setup(sess sarama.ConsumerGroupSession) error {
	claims := sess.Claims()
	assigned := make(map[string][]int32, len(claims))
	for t, ps := range claims {
		ps = slices.Clone(ps)
		slices.Sort(ps)
		assigned[t] = ps
	}
	s.log.Info("registrar/kafka: partitions assigned", "member", sess.MemberID(), "generation", sess.GenerationID(), "partitions", assigned)
	if s.cfg.OnAssign != nil {
		s.cfg.OnAssign(assigned)
	}
	return nil
}

// Cleanup reports that the member owns nothing until the next Setup, and
// that every partition of the session is revoked. It runs after every
// ConsumeClaim of the session returned (each committed its marks), and
// before the member rejoins the group or leaves it.
func (s *subscription) Cleanup(sess sarama.ConsumerGroupSession) error {
	s.log.Debug("registrar/kafka: partitions released", "member", sess.MemberID(), "generation", sess.GenerationID())
	if s.cfg.OnAssign != nil {
		s.cfg.OnAssign(map[string][]int32{})
	}
	if s.cfg.OnRevoke != nil {
		claims := sess.Claims()
		revoked := make(map[string][]int32, len(claims))
		for t, ps := range claims {
			ps = slices.Clone(ps)
			slices.Sort(ps)
			revoked[t] = ps
		}
		s.cfg.OnRevoke(revoked)
	}
	return nil
}

// ConsumeClaim serves one partition for the session.
func (s *subscription) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	lag := s.track(claim)
	defer s.untrack(lag)
	w := &worker{s: s, sess: sess, claim: claim, ctx: sess.Context(), lag: lag, failOff: -1, lastCommit: time.Now()}
	defer w.commit()
	if s.bh != nil {
		w.runBatch()
	} else {
		w.runEach()
	}
	return nil
}

// sleep waits d; it reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// enter counts a Subscribe or ReadPartition call in wg, unless the bus is
// closed, and returns a context that ends with ctx or when the bus closes;
// leave releases both.
func (b *Bus) enter(ctx context.Context, wg *sync.WaitGroup) (_ context.Context, leave func(), _ error) {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil, nil, bus.ErrClosed
	}
	wg.Add(1)
	b.mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.ctx, cancel)
	return cctx, func() {
		stop()
		cancel()
		wg.Done()
	}, nil
}
