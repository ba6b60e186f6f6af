package memory

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/registrar-go/registrar/bus"
)

// group is a consumer group: its members and which topics they consume.
type group struct {
	name string

	mu      sync.Mutex
	members []*member       // in join order
	topics  map[string]bool // topics some member consumed at the last rebalance
}

// member is one Subscribe or SubscribeBatch call.
type member struct {
	id      uint64
	g       *group
	topics  []string
	cfg     bus.SubscribeConfig
	handler bus.Handler      // exactly one of handler and batch is set
	batch   bus.BatchHandler //
	ctx     context.Context  // canceled when the member leaves
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the member's workers

	// owned is guarded by g.mu: the partitions this member serves now.
	owned map[*cursor]*worker
	// assignSeq is guarded by g.mu; notifyMu guards notified and calls of
	// cfg.OnAssign, which run outside g.mu, newest assignment last, and of
	// cfg.OnRevoke.
	assignSeq uint64
	notifyMu  sync.Mutex
	notified  uint64
	lastSent  map[string][]int32
}

func (m *member) consumes(topic string) bool { return slices.Contains(m.topics, topic) }

// assignment returns the member's partitions by topic. Callers hold g.mu.
func (m *member) assignment() map[string][]int32 {
	a := make(map[string][]int32)
	for c := range m.owned {
		a[c.part.topic] = append(a[c.part.topic], c.part.id)
	}
	for _, ps := range a {
		slices.Sort(ps)
	}
	return a
}

// assignNote is an OnAssign call to make once g.mu is released.
type assignNote struct {
	m   *member
	seq uint64
	a   map[string][]int32
}

func (n assignNote) send() {
	if n.m.cfg.OnAssign == nil {
		return
	}
	n.m.notifyMu.Lock()
	defer n.m.notifyMu.Unlock()
	if n.seq <= n.m.notified {
		return // a newer assignment was sent already
	}
	n.m.notified = n.seq
	if n.m.lastSent != nil && equalAssignment(n.m.lastSent, n.a) {
		return
	}
	n.m.lastSent = n.a
	n.m.cfg.OnAssign(n.a)
}

func equalAssignment(a, b map[string][]int32) bool {
	return maps.EqualFunc(a, b, func(x, y []int32) bool { return slices.Equal(x, y) })
}

// Subscribe joins group and hands every message of topics to h until ctx
// ends (it returns nil) or the bus is closed (it returns [bus.ErrClosed]);
// see [bus.EventBus.Subscribe] and the package documentation.
func (b *Bus) Subscribe(ctx context.Context, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) error {
	if h == nil {
		return errors.New("registrar/memory: subscribe: nil handler")
	}
	return b.subscribe(ctx, group, topics, h, nil, opts)
}

// SubscribeBatch is Subscribe with a [bus.BatchHandler]: each call gets the
// waiting messages of one partition, up to the [bus.WithMaxBatch] size; see
// [bus.BatchSubscriber].
func (b *Bus) SubscribeBatch(ctx context.Context, group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) error {
	if h == nil {
		return errors.New("registrar/memory: subscribe: nil handler")
	}
	return b.subscribe(ctx, group, topics, nil, h, opts)
}

func (b *Bus) subscribe(ctx context.Context, name string, topics []string, h bus.Handler, bh bus.BatchHandler, opts []bus.SubscribeOption) error {
	if b.closed.Load() {
		return bus.ErrClosed
	}
	if name == "" {
		return errors.New("registrar/memory: subscribe: empty group name")
	}
	if len(topics) == 0 {
		return errors.New("registrar/memory: subscribe: no topics")
	}
	if slices.Contains(topics, "") {
		return errors.New("registrar/memory: subscribe: empty topic name")
	}
	if ctx.Err() != nil {
		return nil
	}
	topics = slices.Clone(topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)

	b.mu.Lock()
	g := b.groups[name]
	if g == nil {
		g = &group{name: name, topics: make(map[string]bool)}
		b.groups[name] = g
	}
	b.mu.Unlock()

	mctx, cancel := context.WithCancel(ctx)
	m := &member{
		id:      b.memberID.Add(1),
		g:       g,
		topics:  topics,
		cfg:     bus.NewSubscribeConfig(opts...),
		handler: h,
		batch:   bh,
		ctx:     mctx,
		cancel:  cancel,
		owned:   make(map[*cursor]*worker),
	}
	g.mu.Lock()
	if b.closed.Load() {
		g.mu.Unlock()
		cancel()
		return bus.ErrClosed
	}
	g.members = append(g.members, m)
	r := b.rebalanceLocked(g)
	g.mu.Unlock()
	r.announce()
	b.log.Info("registrar/memory: member joined", "group", name, "member", m.id, "topics", topics)

	var err error
	select {
	case <-ctx.Done():
	case <-b.done:
		err = bus.ErrClosed
	}
	b.leave(m)
	m.wg.Wait()
	return err
}

// reassignment is the outcome of a rebalance: the OnAssign calls to make,
// and a gate the workers it started wait for, so that a member hears of a
// partition before the partition's first message reaches its handler.
type reassignment struct {
	notes []assignNote
	ready chan struct{}
}

// announce makes the OnAssign calls, then lets the new workers start.
// Callers must not hold the group's mutex.
func (r *reassignment) announce() {
	for _, n := range r.notes {
		n.send()
	}
	close(r.ready)
}

// leave removes m from its group and hands its partitions over.
func (b *Bus) leave(m *member) {
	g := m.g
	g.mu.Lock()
	i := slices.Index(g.members, m)
	if i < 0 {
		g.mu.Unlock()
		return // removed by Close
	}
	g.members = slices.Delete(g.members, i, i+1)
	r := b.rebalanceLocked(g)
	r.notes = append(r.notes, departLocked(m))
	g.mu.Unlock()
	r.announce()
	b.log.Info("registrar/memory: member left", "group", g.name, "member", m.id)
}

// dissolve removes every member of g; Close uses it.
func (b *Bus) dissolve(g *group) {
	g.mu.Lock()
	members := g.members
	g.members = nil
	r := b.rebalanceLocked(g)
	for _, m := range members {
		r.notes = append(r.notes, departLocked(m))
	}
	g.mu.Unlock()
	r.announce()
}

// departLocked cancels a member that is no longer in its group and returns
// its final, empty, assignment note.
func departLocked(m *member) assignNote {
	m.cancel()
	m.assignSeq++
	return assignNote{m: m, seq: m.assignSeq, a: map[string][]int32{}}
}

// rebalanceLocked assigns every partition of every topic the group consumes
// to one of the members that subscribed to it, by range in join order, and
// starts and stops workers accordingly. A worker that takes a partition over
// waits for the previous one to end and, if that one's member has an
// OnRevoke function, for its call to return. Callers hold g.mu, and announce the
// result once they released it.
func (b *Bus) rebalanceLocked(g *group) *reassignment {
	r := &reassignment{ready: make(chan struct{})}
	topics := maps.Clone(g.topics)
	for _, m := range g.members {
		for _, t := range m.topics {
			topics[t] = true
		}
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)

	changed := make(map[*member]bool)
	revoked := make(map[*member]*revocation)
	var order []*revocation // revoked, in the order of the members' first loss
	closed := b.closed.Load()
	for _, name := range names {
		t := b.topic(name)
		var subs []*member
		for _, m := range g.members {
			if m.consumes(name) {
				subs = append(subs, m)
			}
		}
		owners := rangeAssign(len(t.parts), subs)
		for i, p := range t.parts {
			c := p.cursor(g.name)
			if skipped := p.setActive(c, len(subs) > 0); skipped > 0 {
				b.log.Info("registrar/memory: group resumes after retention dropped its uncommitted messages",
					"group", g.name, "topic", name, "partition", p.id, "skipped", skipped)
			}
			owner := owners[i]
			if c.owner != nil && c.owner.m == owner {
				continue
			}
			if old := c.owner; old != nil {
				old.cancel()
				delete(old.m.owned, c)
				changed[old.m] = true
				c.owner = nil
				c.handedOver = old.done
				if old.m.cfg.OnRevoke != nil {
					rv := revoked[old.m]
					if rv == nil {
						rv = &revocation{m: old.m, parts: make(map[string][]int32), done: make(chan struct{})}
						revoked[old.m] = rv
						order = append(order, rv)
					}
					rv.workers = append(rv.workers, old)
					rv.parts[name] = append(rv.parts[name], p.id)
					c.handedOver = rv.done
				}
			}
			if owner == nil || closed {
				continue
			}
			w := b.startWorker(owner, c, c.handedOver, r.ready)
			c.owner = w
			owner.owned[c] = w
			changed[owner] = true
		}
		if len(subs) > 0 {
			g.topics[name] = true
		} else {
			delete(g.topics, name)
		}
	}

	for _, rv := range order {
		b.startRevocation(rv)
	}
	for _, m := range g.members {
		if m.cfg.OnAssign == nil {
			continue
		}
		if changed[m] || m.assignSeq == 0 { // changed, or just joined
			m.assignSeq++
			r.notes = append(r.notes, assignNote{m: m, seq: m.assignSeq, a: m.assignment()})
		}
	}
	if len(changed) > 0 {
		b.log.Debug("registrar/memory: rebalanced", "group", g.name, "members", len(g.members))
	}
	return r
}

// revocation is one member's partitions that one rebalance took away, to
// report to its OnRevoke function once the workers that served them ended.
type revocation struct {
	m       *member
	workers []*worker
	parts   map[string][]int32 // by topic, sorted
	done    chan struct{}      // closed once OnRevoke returned
}

// startRevocation starts the goroutine that waits for rv's workers, calls
// OnRevoke, and then lets the partitions' next workers start. Subscribe
// waits for it as for a worker. Callers hold the group's mutex; the bus may
// be closing.
func (b *Bus) startRevocation(rv *revocation) {
	b.wg.Add(1)
	rv.m.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer rv.m.wg.Done()
		defer close(rv.done)
		for _, w := range rv.workers {
			<-w.done
		}
		rv.workers = nil
		rv.m.notifyMu.Lock()
		defer rv.m.notifyMu.Unlock()
		rv.m.cfg.OnRevoke(rv.parts)
	}()
}

// rangeAssign returns the owner of each of n partitions: the first n%m
// members get n/m+1 consecutive partitions, the others n/m.
func rangeAssign(n int, members []*member) []*member {
	owners := make([]*member, n)
	if len(members) == 0 {
		return owners
	}
	per, extra := n/len(members), n%len(members)
	i := 0
	for k, m := range members {
		c := per
		if k < extra {
			c++
		}
		for ; c > 0; c-- {
			owners[i] = m
			i++
		}
	}
	return owners
}
