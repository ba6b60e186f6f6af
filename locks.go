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
}

type entityLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks the entities ids (which it sorts and deduplicates in place)
// and returns the function that unlocks them.
func (l *entityLocks) lock(ids []uuid.UUID) (unlock func()) {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	held := make([]*entityLock, len(ids))
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[uuid.UUID]*entityLock)
	}
	for i, id := range ids {
		e := l.locks[id]
		if e == nil {
			e = &entityLock{}
			l.locks[id] = e
		}
		e.refs++
		held[i] = e
	}
	l.mu.Unlock()
	for _, e := range held {
		e.mu.Lock()
	}
	return func() {
		for _, e := range held {
			e.mu.Unlock()
		}
		l.mu.Lock()
		for i, e := range held {
			if e.refs--; e.refs == 0 {
				delete(l.locks, ids[i])
			}
		}
		l.mu.Unlock()
	}
}
