package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// readers are the reads of one Run.
type readers struct {
	cancel context.CancelFunc // ends the reads
	leave  func()             // leaves the shared reads; nil without
	wg     sync.WaitGroup
	failed chan struct{} // closed on the first error
	once   sync.Once
	mu     sync.Mutex
	first  error
}

func (r *readers) fail(err error) {
	r.mu.Lock()
	if r.first == nil {
		r.first = err
	}
	r.mu.Unlock()
	r.once.Do(func() { close(r.failed) })
}

func (r *readers) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

func (r *readers) wait() { r.wg.Wait() }

// stop ends the reads and waits for them.
func (r *readers) stop() {
	r.cancel()
	if r.leave != nil {
		r.leave()
	}
	r.wg.Wait()
}

// readTopics returns the topics the node reads, each with whether the node
// reads only its key's partition of it (true for all of them today: every
// event is keyed by node id, and registry requests are copied to every
// partition) or all of them.
func (n *Node) readTopics() map[string]bool {
	t := n.cfg.topics
	keyed := map[string]bool{}
	for _, topic := range []string{t.Accepted, t.BecameActive, t.AckTimedOut, t.LivenessExpired} {
		keyed[topic] = true
	}
	if n.cfg.requestTopic != "" {
		// Requests are published to every partition (one copy each, see
		// registrar.RequestIntrospection): the node's partition has one.
		keyed[n.cfg.requestTopic] = true
	}
	return keyed
}

// startReaders starts reading the node's events and returns once every read
// is positioned: every event published from then on reaches the inbox. The
// reads end with ctx. When it fails, it has stopped the reads it started
// and waited for them.
func (n *Node) startReaders(ctx context.Context) (*readers, error) {
	ctx, cancel := context.WithCancel(ctx)
	rd := &readers{failed: make(chan struct{})}
	if err := n.positionReaders(ctx, rd); err != nil {
		cancel()
		rd.wait()
		return nil, err
	}
	rd.cancel = cancel
	return rd, nil
}

func (n *Node) positionReaders(ctx context.Context, rd *readers) error {
	if n.cfg.shared != nil {
		return n.joinShared(ctx, n.cfg.shared, rd)
	}
	pr, ok := n.b.(bus.PartitionReader)
	if !ok {
		return n.startGroup(ctx, rd)
	}
	started := make(chan struct{}, 64)
	want := 0
	for topic, keyed := range n.readTopics() {
		count, err := pr.PartitionCount(ctx, topic)
		if err != nil {
			return fmt.Errorf("registrar/node: partitions of %s: %w", topic, err)
		}
		parts := []int32{}
		if keyed {
			parts = append(parts, bus.KeyPartition(n.key, count))
		} else {
			for p := range count {
				parts = append(parts, p)
			}
		}
		for _, part := range parts {
			want++
			rd.wg.Add(1)
			go func() {
				defer rd.wg.Done()
				n.readLoop(ctx, pr, rd, topic, part, started)
			}()
		}
	}
	for range want {
		select {
		case <-started:
		case <-rd.failed:
			return rd.err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// readLoop reads one partition until ctx ends. A read that fails starts
// again from the newest offset after a pause; since events may be lost in
// between, it tells the protocol (resync), which introspects again.
func (n *Node) readLoop(ctx context.Context, pr bus.PartitionReader, rd *readers, topic string, part int32, started chan<- struct{}) {
	var once sync.Once
	signal := func(int64, int64) { once.Do(func() { started <- struct{}{} }) }
	delay := publishRetryMin
	h := n.handler(time.Time{})
	for {
		err := pr.ReadPartition(ctx, topic, part, h, bus.WithReadStarted(signal))
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, bus.ErrClosed) {
			if err == nil {
				err = bus.ErrClosed
			}
			rd.fail(err)
			return
		}
		n.cfg.log.Warn("registrar/node: read failed; reading again", "node_id", n.info.ID, "topic", topic,
			"partition", part, "err", err, "retry_in", delay)
		n.inbox.push(resync{})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, publishRetryMax)
	}
}

// startGroup reads the node's events through a consumer group of its own,
// on a bus that cannot read one partition: it reads every message of the
// topics. A new group starts at the oldest message, so messages the bus
// stamped before the node started are skipped.
func (n *Node) startGroup(ctx context.Context, rd *readers) error {
	var topics []string
	for t := range n.readTopics() {
		topics = append(topics, t)
	}
	group := "registrar-node-" + n.info.ID.String()
	since := time.Now()
	assigned := make(chan struct{})
	var once sync.Once
	rd.wg.Add(1)
	go func() {
		defer rd.wg.Done()
		err := n.b.Subscribe(ctx, group, topics, n.handler(since), bus.WithOnAssign(func(m map[string][]int32) {
			if len(m) > 0 {
				once.Do(func() { close(assigned) })
			}
		}))
		if ctx.Err() == nil {
			if err == nil {
				err = bus.ErrClosed
			}
			rd.fail(err)
		}
	}()
	select {
	case <-assigned:
		return nil
	case <-rd.failed:
		return rd.err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handler returns the readers' handler: it counts every message, skips
// those keyed for another node (without decoding them) and those the bus
// stamped before since, and queues the node's events and the registry
// requests that target it. It never fails: a message it cannot decode is
// not the node's business (the orchestrator dead-letters bad input).
func (n *Node) handler(since time.Time) bus.Handler {
	return func(_ context.Context, m *bus.Message) error {
		n.stats.read.Add(1)
		if len(m.Key) > 0 && !bytes.Equal(m.Key, n.key) && m.Topic != n.cfg.requestTopic {
			return nil
		}
		if !since.IsZero() && m.Timestamp.Before(since) {
			return nil
		}
		env, err := bus.DecodeEnvelope(m.Value)
		if err != nil {
			n.cfg.log.Debug("registrar/node: undecodable message", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
			return nil
		}
		switch env.EventType {
		case registration.EventRegistryRequest:
			req, err := registration.DecodeRegistryRequest(env)
			if err != nil {
				n.cfg.log.Debug("registrar/node: undecodable registry request", "offset", m.Offset, "err", err)
				return nil
			}
			if !req.Targets(n.info.ID, n.info.Type) {
				return nil
			}
			n.stats.events.Add(1)
			n.inbox.push(req)
		case registration.EventAccepted, registration.EventBecameActive, registration.EventAckTimedOut, registration.EventLivenessExpired:
			ev, err := registration.DecodeEvent(env)
			if err != nil {
				n.cfg.log.Debug("registrar/node: undecodable event", "event_type", env.EventType, "offset", m.Offset, "err", err)
				return nil
			}
			if eventNode(ev) != n.info.ID {
				return nil
			}
			n.stats.events.Add(1)
			n.inbox.push(ev)
		}
		return nil
	}
}

// eventNode returns the node id of an event DecodeEvent returned.
func eventNode(ev any) uuid.UUID {
	switch e := ev.(type) {
	case *registration.Accepted:
		return e.NodeID
	case *registration.BecameActive:
		return e.NodeID
	case *registration.AckTimedOut:
		return e.NodeID
	case *registration.LivenessExpired:
		return e.NodeID
	}
	return uuid.Nil
}

// resync tells the protocol that a read restarted and may have lost events.
type resync struct{}
