package registrar

import (
	"testing"

	"github.com/google/uuid"
)

func TestStateCacheBound(t *testing.T) {
	c := newStateCache[int](3)
	ids := make([]uuid.UUID, 10)
	states := map[uuid.UUID]int{}
	for i := range ids {
		ids[i] = uuid.New()
		states[ids[i]] = i
	}
	c.put(states)
	if n := c.len(); n != 3 {
		t.Fatalf("a cache bounded to 3 holds %d entries", n)
	}
	got := map[uuid.UUID]int{}
	misses := c.get(append(ids, ids...), got)
	if len(got) != 3 || len(misses) != 7 {
		t.Fatalf("get found %d and missed %d of 10 ids (each asked twice), want 3 and 7", len(got), len(misses))
	}
	for id, v := range got {
		if states[id] != v {
			t.Fatalf("entry of %s is %d, want %d", id, v, states[id])
		}
	}
	for id := range got {
		c.drop([]uuid.UUID{id})
		break
	}
	if n := c.len(); n != 2 {
		t.Fatalf("after a drop the cache holds %d entries, want 2", n)
	}
	c.clear()
	if n := c.len(); n != 0 {
		t.Fatalf("after clear the cache holds %d entries", n)
	}

	off := newStateCache[int](0)
	off.put(states)
	if got := off.get(ids, map[uuid.UUID]int{}); len(got) != len(ids) || off.len() != 0 {
		t.Fatalf("a disabled cache kept %d entries and missed %d of %d", off.len(), len(got), len(ids))
	}
}

func TestStateCacheIsClearedOnRevoke(t *testing.T) {
	r := &Runtime[int]{cache: newStateCache[int](8)}
	r.cache.put(map[uuid.UUID]int{uuid.New(): 1, uuid.New(): 2})
	r.onRevoke(map[string][]int32{"t": {0}})
	if n := r.cache.len(); n != 0 {
		t.Fatalf("after a revocation the cache holds %d entries", n)
	}
}

// len returns the number of entries.
func (c *stateCache[S]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
