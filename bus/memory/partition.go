package memory

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/registrar-go/registrar/bus"
)

// topic is a named set of partitions; its partition slice never changes.
type topic struct {
	name  string
	parts []*partition
	rr    atomic.Uint32 // round-robin counter for unkeyed messages
}

// partitionFor returns the partition a message with key lands on.
func (t *topic) partitionFor(key []byte) *partition {
	n := int32(len(t.parts))
	if key != nil {
		return t.parts[bus.KeyPartition(key, n)]
	}
	return t.parts[(t.rr.Add(1)-1)%uint32(n)]
}

// entry is one retained message and its accounted size.
type entry struct {
	msg  bus.Message
	size int64
}

// partition is one log. Everything below mu is guarded by it.
type partition struct {
	topic    string
	id       int32
	maxMsgs  int   // 0: no limit
	maxBytes int64 // 0: no limit

	// spaceWaiters counts publishers blocked for space; a commit wakes them
	// only when it is not zero, so the commit path needs no lock.
	spaceWaiters atomic.Int32

	mu      sync.Mutex
	ring    []entry // circular; len(ring) is the capacity
	head    int     // ring index of the oldest retained message
	n       int     // retained messages
	base    int64   // offset of the oldest retained message
	bytes   int64   // sum of the retained messages' sizes
	cursors map[string]*cursor
	active  []*cursor     // cursors of groups with members on this topic
	dataCh  chan struct{} // closed on append; nil while nobody waits
	spaceCh chan struct{} // closed when space may have been freed; nil while nobody waits
}

// cursor is one group's position in one partition.
type cursor struct {
	group string
	part  *partition
	// committed is the offset of the next message the group will handle.
	committed atomic.Int64
	// active is guarded by part.mu: the group has members on the topic, so
	// its uncommitted messages hold back trimming.
	active bool
	// owner and handedOver are guarded by the group's mutex: the worker
	// serving the partition for the group now (nil if none), and a channel
	// closed once the partition's last revoked worker has handed it over
	// (nil if it never had one), which a new worker waits for.
	owner      *worker
	handedOver <-chan struct{}
}

// commit records that every message before off has been handled.
func (c *cursor) commit(off int64) {
	c.committed.Store(off)
	if c.part.spaceWaiters.Load() > 0 {
		c.part.mu.Lock()
		c.part.wakeSpaceLocked()
		c.part.mu.Unlock()
	}
}

func messageSize(m *bus.Message) int64 {
	s := int64(len(m.Key) + len(m.Value))
	for k, v := range m.Headers {
		s += int64(len(k) + len(v))
	}
	return s
}

// next returns the offset the next appended message gets. Callers hold mu.
func (p *partition) nextLocked() int64 { return p.base + int64(p.n) }

// append stores m (whose buffers the caller owns and hands over), blocking
// while retention leaves no room. It returns the message's offset.
func (p *partition) append(ctx context.Context, closed <-chan struct{}, m *bus.Message, size int64) (int64, error) {
	p.mu.Lock()
	for !p.makeRoomLocked(size) {
		if p.spaceCh == nil {
			p.spaceCh = make(chan struct{})
		}
		ch := p.spaceCh
		p.spaceWaiters.Add(1)
		p.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-closed:
			err = bus.ErrClosed
		}
		p.spaceWaiters.Add(-1)
		if err != nil {
			return 0, err
		}
		p.mu.Lock()
	}
	if p.n == len(p.ring) {
		p.growLocked()
	}
	i := p.head + p.n
	if i >= len(p.ring) {
		i -= len(p.ring)
	}
	off := p.nextLocked()
	m.Offset = off
	p.ring[i] = entry{msg: *m, size: size}
	p.n++
	p.bytes += size
	if p.dataCh != nil {
		close(p.dataCh)
		p.dataCh = nil
	}
	p.mu.Unlock()
	return off, nil
}

// makeRoomLocked drops the oldest messages, as far as the active groups have
// committed them, until a message of size fits. It reports whether it fits.
func (p *partition) makeRoomLocked(size int64) bool {
	for p.n > 0 && ((p.maxMsgs > 0 && p.n >= p.maxMsgs) || (p.maxBytes > 0 && p.bytes+size > p.maxBytes)) {
		for _, c := range p.active {
			if c.committed.Load() <= p.base {
				return false
			}
		}
		p.bytes -= p.ring[p.head].size
		p.ring[p.head] = entry{}
		p.head++
		if p.head == len(p.ring) {
			p.head = 0
		}
		p.n--
		p.base++
	}
	return true
}

func (p *partition) growLocked() {
	size := max(16, 2*len(p.ring))
	if p.maxMsgs > 0 {
		size = min(size, p.maxMsgs)
	}
	if size <= p.n {
		size = p.n + 1
	}
	ring := make([]entry, size)
	k := copy(ring, p.ring[p.head:])
	if k < p.n {
		copy(ring[k:], p.ring[:p.n-k])
	}
	p.ring, p.head = ring, 0
}

func (p *partition) wakeSpaceLocked() {
	if p.spaceCh != nil {
		close(p.spaceCh)
		p.spaceCh = nil
	}
}

// read copies the messages from offset off on into dst, as many as are
// retained and fit. It returns how many it copied and the offset of the first
// one, which is the oldest retained offset if off was dropped already. When
// there is nothing to read, it returns a channel that is closed once a
// message is appended.
func (p *partition) read(off int64, dst []bus.Message) (n int, from int64, wait <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if off < p.base {
		off = p.base
	}
	avail := p.nextLocked() - off
	if avail <= 0 {
		if p.dataCh == nil {
			p.dataCh = make(chan struct{})
		}
		return 0, off, p.dataCh
	}
	n = int(min(avail, int64(len(dst))))
	i := p.head + int(off-p.base)
	if i >= len(p.ring) {
		i -= len(p.ring)
	}
	for k := 0; k < n; k++ {
		dst[k] = p.ring[i].msg
		i++
		if i == len(p.ring) {
			i = 0
		}
	}
	return n, off, nil
}

// cursor returns group's cursor, creating it at the oldest retained offset.
func (p *partition) cursor(group string) *cursor {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.cursors[group]
	if c == nil {
		c = &cursor{group: group, part: p}
		c.committed.Store(p.base)
		if p.cursors == nil {
			p.cursors = make(map[string]*cursor)
		}
		p.cursors[group] = c
	}
	return c
}

// setActive marks c's group as having members on the topic or not. It
// returns how many uncommitted messages the group lost to retention while it
// had none (they are skipped).
func (p *partition) setActive(c *cursor, on bool) (skipped int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == c.active {
		return 0
	}
	c.active = on
	if on {
		if off := c.committed.Load(); off < p.base {
			c.committed.Store(p.base)
			skipped = p.base - off
		}
		p.active = append(p.active, c)
		return skipped
	}
	p.active = slices.DeleteFunc(p.active, func(x *cursor) bool { return x == c })
	p.wakeSpaceLocked()
	return 0
}

// snapshot returns clones of the retained messages.
func (p *partition) snapshot() []*bus.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*bus.Message, p.n)
	for k := range p.n {
		i := (p.head + k) % len(p.ring)
		out[k] = p.ring[i].msg.Clone()
	}
	return out
}

// offsets returns the oldest retained offset and the next offset.
func (p *partition) offsets() (oldest, next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base, p.nextLocked()
}
