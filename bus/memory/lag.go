package memory

import (
	"cmp"
	"slices"
	"strings"

	"github.com/registrar-go/registrar/bus"
)

var _ bus.LagReporter = (*Bus)(nil)

// ConsumerLag returns, for every partition that a member of group owns now,
// how many messages the member has not finished, sorted by topic and
// partition; nil if the group has no member or owns nothing. See
// [bus.LagReporter].
//
// The numbers are exact at the moment of the call: Next is the group's
// committed offset, which the bus advances as soon as a handler returned
// nil for a message (or it was dead-lettered), so a message whose handler
// call is in progress is counted; HighWaterMark is the offset the
// partition's next message will get. A partition that was just assigned
// and whose worker waits for the previous owner to hand it over is
// reported too. ConsumerLag takes the group's and each owned partition's
// lock briefly, and allocates only the returned slice.
func (b *Bus) ConsumerLag(group string) []bus.PartitionLag {
	b.mu.Lock()
	g := b.groups[group]
	b.mu.Unlock()
	if g == nil {
		return nil
	}
	g.mu.Lock()
	n := 0
	for _, m := range g.members {
		n += len(m.owned)
	}
	if n == 0 {
		g.mu.Unlock()
		return nil
	}
	out := make([]bus.PartitionLag, 0, n)
	for _, m := range g.members {
		for c := range m.owned {
			out = append(out, c.lag())
		}
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(x, y bus.PartitionLag) int {
		return cmp.Or(strings.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return out
}

// lag returns the group's lag on c's partition.
func (c *cursor) lag() bus.PartitionLag {
	p := c.part
	p.mu.Lock()
	next := max(c.committed.Load(), p.base)
	hwm := p.nextLocked()
	p.mu.Unlock()
	return bus.PartitionLag{Topic: p.topic, Partition: p.id, Next: next, HighWaterMark: hwm, Lag: max(hwm-next, 0)}
}
