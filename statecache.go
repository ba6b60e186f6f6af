package registrar

import (
	"sync"

	"github.com/google/uuid"
)

// stateCache holds, for entities this Runtime decided on, the state the
// store holds after this Runtime's last write (or read) of it, so that the
// next batch that touches the entity needs neither the store's read
// (LoadMany) nor the outbox's look for pending records (the Relay's peek):
// an entry also means that nothing of the entity is pending in the outbox,
// since every record this Runtime appended for it was relayed before the
// entry was written.
//
// It is write-through and owned by the partitions the Runtime consumes:
// the partition owner is the only writer of its entities, so the entry
// stays what the store holds. When that does not hold (another writer, a
// rebalance), the guards of the next write catch it: the write conflicts,
// the entry is dropped, and the decision is made again against what the
// store holds. Entries are dropped on a conflict, on any failed attempt of
// the batch, on every partition revocation and when Run starts, and the
// cache holds at most max entries: past that, an arbitrary entry (Go's map
// iteration starts at random) gives way, which keeps the hit rate of a
// cyclic access pattern (every node heartbeats once per interval) where a
// least-recently-used policy would fall to zero.
//
// A zero max disables the cache: get finds nothing and put keeps nothing.
type stateCache[S any] struct {
	mu      sync.Mutex
	max     int
	entries map[uuid.UUID]S
}

func newStateCache[S any](maxEntries int) *stateCache[S] {
	return &stateCache[S]{max: maxEntries}
}

// enabled reports whether the cache keeps anything.
func (c *stateCache[S]) enabled() bool { return c.max > 0 }

// get copies the entries of ids into into and returns the ids that have
// none, each once.
func (c *stateCache[S]) get(ids []uuid.UUID, into map[uuid.UUID]S) []uuid.UUID {
	if !c.enabled() {
		return ids
	}
	misses := ids[:0:0]
	c.mu.Lock()
	for _, id := range ids {
		if _, seen := into[id]; seen {
			continue
		}
		if st, ok := c.entries[id]; ok {
			into[id] = st
			continue
		}
		misses = append(misses, id)
	}
	c.mu.Unlock()
	return dedupe(misses)
}

// put stores the states of states, replacing what the cache held for them.
func (c *stateCache[S]) put(states map[uuid.UUID]S) {
	if !c.enabled() || len(states) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[uuid.UUID]S, min(c.max, 1024))
	}
	for id, st := range states {
		if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
			for victim := range c.entries {
				delete(c.entries, victim)
				break
			}
		}
		c.entries[id] = st
	}
}

// drop removes the entries of ids.
func (c *stateCache[S]) drop(ids []uuid.UUID) {
	if !c.enabled() || len(ids) == 0 {
		return
	}
	c.mu.Lock()
	for _, id := range ids {
		delete(c.entries, id)
	}
	c.mu.Unlock()
}

// clear removes every entry.
func (c *stateCache[S]) clear() {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}

// dedupe returns ids without repeats, in the order of first appearance,
// reusing ids' array.
func dedupe(ids []uuid.UUID) []uuid.UUID {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[uuid.UUID]struct{}, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}
