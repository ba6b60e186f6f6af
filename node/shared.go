package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// SharedReads reads the events of many nodes of one process with one
// partition read per topic partition, instead of one per node and topic
// partition: a process that hosts many nodes (a simulation, a gateway
// speaking for many devices) would otherwise run one read per node on every
// partition it shares with others, and every read would be handed every
// message of its partition. A shared read hands each message only to the
// nodes it is keyed for (and every message of the registry request topic,
// and unkeyed ones, to every node reading that partition), and costs the
// nodes no goroutine of their own.
//
// Create one with [NewSharedReads], give it to the nodes with
// [WithSharedReads], and [SharedReads.Close] it after their Runs ended. A
// partition's read starts when the first node needs it, at the partition's
// newest offset, and goes on until Close; a node that joins it later gets
// every message the read hands out from then on. A read that fails starts
// again from the newest offset after a pause and tells every node reading
// it that events may have been lost (each then introspects again, as after
// its own read failed); a read that ends because the bus was closed ends
// the Runs of its nodes with [bus.ErrClosed].
type SharedReads struct {
	pr  bus.PartitionReader
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	parts map[partKey]*sharedPart
}

type partKey struct {
	topic string
	part  int32
}

// sharedPart is one partition's read and the nodes reading it.
type sharedPart struct {
	started chan struct{} // closed once the read is positioned
	done    chan struct{} // closed when the read ended for good
	err     error         // why it ended; set before done is closed

	mu    sync.RWMutex
	byKey map[string][]*member // members that read only their key's messages
	every []*member            // members that read every message
}

// member is one node's read of one shared partition.
type member struct {
	key   string
	h     bus.Handler
	every bool
	lost  func()      // events may have been lost
	fail  func(error) // the read ended for good
}

// NewSharedReads returns shared reads on pr. Nil log is silent.
func NewSharedReads(pr bus.PartitionReader, log *slog.Logger) *SharedReads {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &SharedReads{pr: pr, log: log, ctx: ctx, cancel: cancel, parts: map[partKey]*sharedPart{}}
}

// Close ends every read and waits for them. Nodes still reading see their
// Runs end with [bus.ErrClosed].
func (s *SharedReads) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// join adds m to the read of topic's partition part, starting the read if
// it is the first, and returns once the read is positioned, with the
// function that removes m again (after which m's handler is not called).
func (s *SharedReads) join(ctx context.Context, topic string, part int32, m *member) (leave func(), err error) {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil, bus.ErrClosed
	}
	k := partKey{topic, part}
	sp := s.parts[k]
	if sp == nil {
		sp = &sharedPart{started: make(chan struct{}), done: make(chan struct{}), byKey: map[string][]*member{}}
		s.parts[k] = sp
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.read(sp, topic, part)
		}()
	}
	s.mu.Unlock()

	sp.mu.Lock()
	if m.every {
		sp.every = append(sp.every, m)
	} else {
		sp.byKey[m.key] = append(sp.byKey[m.key], m)
	}
	sp.mu.Unlock()
	leave = func() { sp.remove(m) }
	select {
	case <-sp.started:
		return leave, nil
	case <-sp.done:
		leave()
		return nil, sp.err
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// remove takes m out of the partition's members.
func (sp *sharedPart) remove(m *member) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	del := func(ms []*member) []*member {
		for i, x := range ms {
			if x == m {
				return append(ms[:i:i], ms[i+1:]...)
			}
		}
		return ms
	}
	if m.every {
		sp.every = del(sp.every)
		return
	}
	if ms := del(sp.byKey[m.key]); len(ms) > 0 {
		sp.byKey[m.key] = ms
	} else {
		delete(sp.byKey, m.key)
	}
}

// each calls f for every member.
func (sp *sharedPart) each(f func(*member)) {
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	for _, ms := range sp.byKey {
		for _, m := range ms {
			f(m)
		}
	}
	for _, m := range sp.every {
		f(m)
	}
}

// dispatch hands msg to the members it is for. Member handlers never fail
// (see Node.handler).
func (sp *sharedPart) dispatch(ctx context.Context, msg *bus.Message) error {
	if len(msg.Key) == 0 {
		sp.each(func(m *member) { _ = m.h(ctx, msg) })
		return nil
	}
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	for _, m := range sp.byKey[string(msg.Key)] {
		_ = m.h(ctx, msg)
	}
	for _, m := range sp.every {
		_ = m.h(ctx, msg)
	}
	return nil
}

// read reads one partition until Close, as Node.readLoop does for one
// node.
func (s *SharedReads) read(sp *sharedPart, topic string, part int32) {
	var once sync.Once
	signal := func(int64, int64) { once.Do(func() { close(sp.started) }) }
	delay := publishRetryMin
	for {
		err := s.pr.ReadPartition(s.ctx, topic, part, sp.dispatch, bus.WithReadStarted(signal))
		if s.ctx.Err() != nil {
			err = bus.ErrClosed
		}
		if err == nil || errors.Is(err, bus.ErrClosed) {
			if err == nil {
				err = bus.ErrClosed
			}
			sp.err = fmt.Errorf("registrar/node: shared read of %s/%d: %w", topic, part, err)
			close(sp.done)
			sp.each(func(m *member) { m.fail(sp.err) })
			return
		}
		s.log.Warn("registrar/node: shared read failed; reading again", "topic", topic, "partition", part, "err", err, "retry_in", delay)
		sp.each(func(m *member) { m.lost() })
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(2*delay, publishRetryMax)
	}
}

// joinShared positions the node's reads on its shared reads: one member
// per topic partition it reads, no goroutine. rd.leave removes them.
func (n *Node) joinShared(ctx context.Context, s *SharedReads, rd *readers) error {
	var leaves []func()
	rd.leave = func() {
		for _, l := range leaves {
			l()
		}
	}
	h := n.handler(time.Time{})
	for topic, keyed := range n.readTopics() {
		count, err := s.pr.PartitionCount(ctx, topic)
		if err != nil {
			rd.leave()
			return fmt.Errorf("registrar/node: partitions of %s: %w", topic, err)
		}
		parts := []int32{bus.KeyPartition(n.key, count)}
		if !keyed {
			parts = parts[:0]
			for p := range count {
				parts = append(parts, p)
			}
		}
		for _, part := range parts {
			m := &member{key: string(n.key), h: h, every: !keyed || topic == n.cfg.requestTopic,
				lost: func() { n.inbox.push(resync{}) }, fail: rd.fail}
			leave, err := s.join(ctx, topic, part, m)
			if err != nil {
				rd.leave()
				return err
			}
			leaves = append(leaves, leave)
		}
	}
	return nil
}
