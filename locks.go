package registrar

import (
	"bytes"
	"slices"
	"sync"

	"github.com/google/uuid"
)

// entityLocks serializes the handling of one entity's messages in this
// process, across the partitions of different topics: a heartbeat and a
// timeout check of one node come from two topics, and their
// read-decide-write must not interleave. Only real contention blocks: two
// handlers wait for each other only if they share an entity. A batch locks
// its entities in ascending order, so no two lockers wait in a cycle.
type entityLocks struct {
	mu    sync.Mutex
	locks map[uuid.UUID]*entityLock
	pool  sync.Pool
}

type entityLock struct {
	mu   sync.Mutex
	refs int
}

// acquire returns id's lock with a reference taken; l.mu is held.
func (l *entityLocks) acquireLocked(id uuid.UUID) *entityLock {
	if l.locks == nil {
		l.locks = make(map[uuid.UUID]*entityLock)
	}
	e := l.locks[id]
	if e == nil {
		if p, ok := l.pool.Get().(*entityLock); ok {
			e = p
		} else {
			e = &entityLock{}
		}
		l.locks[id] = e
	}
	e.refs++
	return e
}

// releaseLocked drops a reference to id's lock e; l.mu is held.
func (l *entityLocks) releaseLocked(id uuid.UUID, e *entityLock) {
	if e.refs--; e.refs == 0 {
		delete(l.locks, id)
		l.pool.Put(e)
	}
}

// heldLocks are the locks of a batch, to unlock.
type heldLocks struct {
	l     *entityLocks
	ids   []uuid.UUID
	locks []*entityLock
}

// lock locks the entities ids (which it sorts and deduplicates in place).
func (l *entityLocks) lock(ids []uuid.UUID) heldLocks {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	h := heldLocks{l: l, ids: ids, locks: make([]*entityLock, len(ids))}
	l.mu.Lock()
	for i, id := range ids {
		h.locks[i] = l.acquireLocked(id)
	}
	l.mu.Unlock()
	for _, e := range h.locks {
		e.mu.Lock()
	}
	return h
}

func (h heldLocks) unlock() {
	for _, e := range h.locks {
		e.mu.Unlock()
	}
	h.l.mu.Lock()
	for i, e := range h.locks {
		h.l.releaseLocked(h.ids[i], e)
	}
	h.l.mu.Unlock()
}
