package discovery

import (
	"context"
	"sync"
)

// Kind is the kind of a [Change].
type Kind int

// The kinds of change.
const (
	// Added: the view did not hold the node (or, after a [Reset], the
	// node is part of the view being resent).
	Added Kind = iota + 1
	// Changed: a newer snapshot replaced the one held; Old is the
	// previous one.
	Changed
	// Removed: a tombstone removed the node; Node is the last snapshot
	// held.
	Removed
	// Reset: the watcher fell behind and its pending changes were dropped;
	// forget every node, the Added changes that follow are the whole view.
	Reset
)

// String returns the kind's name in lower case.
func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Changed:
		return "changed"
	case Removed:
		return "removed"
	case Reset:
		return "reset"
	}
	return "unknown"
}

// Change is one change of a [Client]'s view, as [Client.Watch] delivers it.
type Change struct {
	// Kind is what happened.
	Kind Kind
	// Node is the node as it is now; for Removed, as it was last; zero
	// for Reset.
	Node Node
	// Old is the node before a Changed change; zero for the other kinds.
	Old Node
}

// Watch returns a channel of the view's changes. It first delivers the
// view as it is at the call, one Added change per node, sorted by id, then
// every change after the call, in the order the Client applied them (per
// node, the order of the topic). A consumer that applies the changes to a
// map of its own holds the Client's view.
//
// A slow watcher does not hold the Client back: each watcher has a buffer
// of pending changes ([WithWatchBuffer], [DefaultWatchBuffer] by default).
// When it is full, its pending changes are dropped and the watcher gets a
// [Reset] change followed by the whole view, as Added changes, as of the
// moment the reset is sent, then the changes after that: it converges
// again, losing intermediate states but never the latest one.
//
// The channel is closed when ctx ends or [Client.Run] returned (at once
// if it returned before the call); pending changes are then dropped. Each
// watcher has a goroutine, which ends when the channel is closed.
func (c *Client) Watch(ctx context.Context) <-chan Change {
	w := &watcher{out: make(chan Change), wake: make(chan struct{}, 1)}
	select {
	case <-c.done:
		close(w.out)
		return w.out
	default:
	}
	c.mu.Lock()
	view := c.listLocked()
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	go c.pump(ctx, w, view)
	return w.out
}

// watcher is one Watch call: changes queued by the Client, sent to out by
// the watcher's goroutine.
type watcher struct {
	out  chan Change
	wake chan struct{} // signaled when the queue grew or a reset is due

	mu    sync.Mutex
	queue []Change
	reset bool // the queue overflowed: a Reset and the view are due
}

// notify queues ch for every watcher; c.mu is held for writing.
func (c *Client) notify(ch Change) {
	for w := range c.watchers {
		w.mu.Lock()
		switch {
		case w.reset:
			// The view sent with the reset will include ch.
		case len(w.queue) >= c.cfg.buffer:
			w.queue = nil
			w.reset = true
			c.st.resets.Add(1)
		default:
			w.queue = append(w.queue, ch)
		}
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// pump sends view, then the watcher's queue, to its channel until ctx
// ends or Run returned.
func (c *Client) pump(ctx context.Context, w *watcher, view []Node) {
	defer close(w.out)
	defer func() {
		c.mu.Lock()
		delete(c.watchers, w)
		c.mu.Unlock()
	}()
	send := func(ch Change) bool {
		select {
		case w.out <- ch:
			return true
		case <-ctx.Done():
			return false
		case <-c.done:
			return false
		}
	}
	sendView := func(view []Node) bool {
		for i := range view {
			if !send(Change{Kind: Added, Node: view[i]}) {
				return false
			}
		}
		return true
	}
	if !sendView(view) {
		return
	}
	for {
		w.mu.Lock()
		q, reset := w.queue, w.reset
		w.queue = nil
		w.mu.Unlock()
		if reset {
			// Take the view and empty the queue under c.mu: no change
			// falls between the two.
			c.mu.RLock()
			w.mu.Lock()
			view := c.listLocked()
			w.queue, w.reset = nil, false
			w.mu.Unlock()
			c.mu.RUnlock()
			if !send(Change{Kind: Reset}) || !sendView(view) {
				return
			}
			continue
		}
		if len(q) == 0 {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
		}
		for _, ch := range q {
			if !send(ch) {
				return
			}
		}
	}
}
