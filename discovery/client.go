package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// ErrRunning is returned by [Client.Run] when Run was called before: a
// Client runs once.
var ErrRunning = errors.New("registrar/discovery: Run called more than once")

// Client keeps a local view of the registry by reading the snapshot topic;
// see the package documentation. Its methods are safe for concurrent use.
type Client struct {
	bus bus.EventBus
	cfg config

	started   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once
	done      chan struct{} // closed when Run returned

	mu       sync.RWMutex
	nodes    map[uuid.UUID]*Node
	active   map[string]map[uuid.UUID]*Node // the active nodes, by type
	watchers map[*watcher]struct{}
	strings  interner

	st struct {
		messages, applied, stale, tombstones, removed, undecodable, filtered, resets atomic.Int64
	}
}

// New returns a Client that reads the snapshot topic of b once [Client.Run]
// runs. It fails only on invalid options.
func New(b bus.EventBus, opts ...Option) (*Client, error) {
	if b == nil {
		return nil, errors.New("registrar/discovery: nil bus")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Client{
		bus:      b,
		cfg:      cfg,
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		nodes:    make(map[uuid.UUID]*Node),
		active:   make(map[string]map[uuid.UUID]*Node),
		watchers: make(map[*watcher]struct{}),
	}, nil
}

// Run reads every partition of the snapshot topic from its oldest message
// into the view, then follows the topic, until ctx ends (it returns nil),
// the bus is closed (it returns bus.ErrClosed) or a read fails (it returns
// the error). It returns only once every goroutine it started ended; the
// channels [Client.Watch] returned are closed as soon as their goroutines
// see that it returned. A Client runs once: a
// second call returns [ErrRunning]. The view stays readable after Run
// returned, frozen.
//
// On a bus that implements bus.PartitionReader, Run reads each partition
// without a consumer group, and [Client.Ready] is closed once each one has
// been read up to the high-water mark it had when its read started. On
// another bus, Run subscribes with a consumer group of its own (see
// [WithGroup]), which starts at the oldest message, and Ready is closed
// once the group was assigned the topic and then handled no message for
// the quiet period ([WithQuietPeriod]): an estimate, not a guarantee, since
// such a bus tells nobody its high-water marks.
func (c *Client) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(c.done)
	if pr, ok := c.bus.(bus.PartitionReader); ok {
		return c.readPartitions(ctx, pr)
	}
	return c.subscribe(ctx)
}

// Ready returns a channel that is closed once the initial catch-up is done:
// every partition of the topic was read up to its high-water mark as of
// when reading it started (see [Client.Run] for a bus without
// bus.PartitionReader). It is never closed if Run ends before.
func (c *Client) Ready() <-chan struct{} { return c.ready }

func (c *Client) markReady() {
	c.readyOnce.Do(func() {
		c.cfg.log.Debug("registrar/discovery: caught up", "topic", c.cfg.topic, "nodes", c.Len())
		close(c.ready)
	})
}

// readPartitions runs one ReadPartition per partition of the topic.
func (c *Client) readPartitions(ctx context.Context, pr bus.PartitionReader) error {
	n, err := pr.PartitionCount(ctx, c.cfg.topic)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, bus.ErrClosed) {
			return bus.ErrClosed
		}
		return fmt.Errorf("registrar/discovery: partition count of %s: %w", c.cfg.topic, err)
	}
	c.cfg.log.Debug("registrar/discovery: reading", "topic", c.cfg.topic, "partitions", n)
	var pending atomic.Int32
	pending.Store(n)
	caught := func() {
		if pending.Add(-1) == 0 {
			c.markReady()
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for p := range n {
		wg.Go(func() {
			// target is the offset whose handling completes the catch-up
			// of this partition; both callbacks run on the read's goroutine.
			target, done := int64(0), false
			started := func(start, next int64) {
				if start >= next {
					done = true
					caught()
					return
				}
				target = next - 1
			}
			h := func(_ context.Context, msg *bus.Message) error {
				c.handle(msg)
				if !done && msg.Offset >= target {
					done = true
					caught()
				}
				return nil
			}
			err := pr.ReadPartition(rctx, c.cfg.topic, p, h, bus.ReadFromOldest(), bus.WithReadStarted(started))
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				if rctx.Err() != nil {
					return // another partition's read failed
				}
				err = fmt.Errorf("registrar/discovery: read of %s/%d ended", c.cfg.topic, p)
			} else if !errors.Is(err, bus.ErrClosed) {
				err = fmt.Errorf("registrar/discovery: read of %s/%d: %w", c.cfg.topic, p, err)
			}
			errOnce.Do(func() { firstErr = err })
			cancel()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(firstErr, bus.ErrClosed) {
		return bus.ErrClosed
	}
	return firstErr
}

// subscribe reads the topic with a consumer group of its own, on a bus
// without bus.PartitionReader.
func (c *Client) subscribe(ctx context.Context) error {
	group := c.cfg.group
	if group == "" {
		group = "registrar-discovery-" + uuid.NewString()
	}
	var (
		assigned atomic.Bool
		last     atomic.Int64 // UnixNano of the last message or assignment
	)
	last.Store(time.Now().UnixNano())
	onAssign := bus.WithOnAssign(func(a map[string][]int32) {
		if len(a[c.cfg.topic]) > 0 {
			last.Store(time.Now().UnixNano())
			assigned.Store(true)
		}
	})
	h := func(_ context.Context, msg *bus.Message) error {
		c.handle(msg)
		last.Store(time.Now().UnixNano())
		return nil
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(max(c.cfg.quiet/4, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-tick.C:
				if assigned.Load() && now.Sub(time.Unix(0, last.Load())) >= c.cfg.quiet {
					c.markReady()
					return
				}
			}
		}
	})
	c.cfg.log.Debug("registrar/discovery: subscribing", "topic", c.cfg.topic, "group", group)
	err := c.bus.Subscribe(sctx, group, []string{c.cfg.topic}, h, onAssign)
	cancel()
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, bus.ErrClosed):
		return bus.ErrClosed
	case err == nil:
		return fmt.Errorf("registrar/discovery: subscription to %s ended", c.cfg.topic)
	}
	return fmt.Errorf("registrar/discovery: subscription to %s: %w", c.cfg.topic, err)
}

// handle applies one message of the topic to the view.
func (c *Client) handle(msg *bus.Message) {
	c.st.messages.Add(1)
	// DecodeSnapshot checks the key: a tombstone's must name a node, a
	// snapshot's (if any) its entity_id.
	s, tombstone, err := registration.DecodeSnapshot(msg)
	if err != nil {
		c.skip(msg, err)
		return
	}
	if tombstone {
		c.st.tombstones.Add(1)
		id, _ := registration.DecodeSnapshotKey(msg.Key) // checked by DecodeSnapshot
		c.remove(id)
		return
	}
	if c.cfg.domain != "" && s.Domain != c.cfg.domain {
		c.st.filtered.Add(1)
		return
	}
	c.put(s)
}

func (c *Client) skip(msg *bus.Message, err error) {
	c.st.undecodable.Add(1)
	c.cfg.log.Warn("registrar/discovery: undecodable snapshot skipped",
		"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "error", err)
}

// put adds the node of s or replaces an older snapshot of it.
func (c *Client) put(s *registration.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.nodes[s.EntityID]
	if old != nil && s.Version <= old.SnapshotVersion {
		c.st.stale.Add(1)
		return
	}
	c.st.applied.Add(1)
	n := nodeOf(s, &c.strings)
	c.nodes[n.ID] = n
	if old != nil {
		c.unindex(old)
	}
	if n.State == registration.StateActive {
		m := c.active[n.Type]
		if m == nil {
			m = make(map[uuid.UUID]*Node)
			c.active[n.Type] = m
		}
		m[n.ID] = n
	}
	if old == nil {
		c.notify(Change{Kind: Added, Node: *n})
	} else {
		c.notify(Change{Kind: Changed, Node: *n, Old: *old})
	}
}

// remove drops node id from the view, for a tombstone.
func (c *Client) remove(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.nodes[id]
	if old == nil {
		return
	}
	c.st.removed.Add(1)
	delete(c.nodes, id)
	c.unindex(old)
	c.notify(Change{Kind: Removed, Node: *old})
}

// unindex drops n from the index of active nodes; c.mu is held.
func (c *Client) unindex(n *Node) {
	if n.State != registration.StateActive {
		return
	}
	m := c.active[n.Type]
	delete(m, n.ID)
	if len(m) == 0 {
		delete(c.active, n.Type)
	}
}

// Get returns the node with id, in any state, and whether the view has it.
func (c *Client) Get(id uuid.UUID) (Node, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := c.nodes[id]
	if n == nil {
		return Node{}, false
	}
	return *n, true
}

// Lookup returns the nodes of type nodeType whose state is
// registration.StateActive, sorted by id (bytewise, which is also the
// order of their canonical strings), or none. It answers from memory:
// before [Client.Ready] is closed the answer may miss nodes. An active node
// is one the orchestrator last saw alive; its liveness deadline may have
// passed since, until the orchestrator's expiry of it reaches the topic.
func (c *Client) Lookup(nodeType string) []Node {
	c.mu.RLock()
	m := c.active[nodeType]
	out := make([]Node, 0, len(m))
	for _, n := range m {
		out = append(out, *n)
	}
	c.mu.RUnlock()
	slices.SortFunc(out, byID)
	return out
}

// List returns every node of the view, in any state, sorted by id.
func (c *Client) List() []Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.listLocked()
}

// listLocked is List; c.mu is held.
func (c *Client) listLocked() []Node {
	out := make([]Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, byID)
	return out
}

// Len returns how many nodes the view holds, in any state.
func (c *Client) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.nodes)
}

// Stats counts what a [Client] read, since it was created.
type Stats struct {
	// Messages is every message read from the topic.
	Messages int64
	// Applied counts the snapshots that added a node or replaced an older
	// snapshot of it.
	Applied int64
	// Stale counts the snapshots ignored because the view held a snapshot
	// of the same node with the same or a higher version (redeliveries,
	// compaction races).
	Stale int64
	// Tombstones counts the tombstones read; Removed those that removed a
	// node the view held.
	Tombstones, Removed int64
	// Undecodable counts the messages skipped because their key or value
	// could not be decoded, or named different nodes; each is logged.
	Undecodable int64
	// Filtered counts the snapshots of other domains than [WithDomain]'s.
	Filtered int64
	// WatchResets counts the times a watcher fell [WithWatchBuffer] changes
	// behind and was reset.
	WatchResets int64
	// Nodes is how many nodes the view holds now.
	Nodes int
}

// Stats returns the Client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Messages:    c.st.messages.Load(),
		Applied:     c.st.applied.Load(),
		Stale:       c.st.stale.Load(),
		Tombstones:  c.st.tombstones.Load(),
		Removed:     c.st.removed.Load(),
		Undecodable: c.st.undecodable.Load(),
		Filtered:    c.st.filtered.Load(),
		WatchResets: c.st.resets.Load(),
		Nodes:       c.Len(),
	}
}
