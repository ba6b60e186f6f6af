package kafka

import (
	"cmp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// claimLag is what ConsumerLag reports for one partition a subscription
// serves: the claim, for its high-water mark, and the next offset the
// subscription has not finished.
type claimLag struct {
	claim sarama.ConsumerGroupClaim
	// next is the offset after the last message marked in this claim, or
	// the claim's start; -1 while the start is not known.
	next atomic.Int64
}

// received notes the offset of a message taken from the claim: the first
// one says where the claim starts, if that was not known.
func (l *claimLag) received(offset int64) {
	if l.next.Load() < 0 {
		l.next.CompareAndSwap(-1, offset)
	}
}

// track starts reporting claim's lag. A claim of a group without a
// committed offset starts at sarama.OffsetOldest or OffsetNewest: track
// asks the brokers which offset that is (the partition consumer asked the
// same a moment ago), and if they cannot say, the first message received
// tells.
func (s *subscription) track(claim sarama.ConsumerGroupClaim) *claimLag {
	l := &claimLag{claim: claim}
	start := claim.InitialOffset()
	if start < 0 {
		off, err := s.b.client.GetOffset(claim.Topic(), claim.Partition(), start)
		if err != nil {
			s.log.Debug("registrar/kafka: cannot resolve a claim's start offset; its lag is unknown until its first message",
				"topic", claim.Topic(), "partition", claim.Partition(), "error", err)
			off = -1
		}
		start = off
	}
	l.next.Store(start)
	s.claimsMu.Lock()
	s.claims = append(s.claims, l)
	s.claimsMu.Unlock()
	return l
}

// untrack stops reporting l's lag.
func (s *subscription) untrack(l *claimLag) {
	s.claimsMu.Lock()
	s.claims = slices.DeleteFunc(s.claims, func(x *claimLag) bool { return x == l })
	s.claimsMu.Unlock()
}

// addMember registers s for ConsumerLag; removeMember removes it.
func (b *Bus) addMember(s *subscription) {
	b.groupsMu.Lock()
	b.groups[s.group] = append(b.groups[s.group], s)
	b.groupsMu.Unlock()
}

func (b *Bus) removeMember(s *subscription) {
	b.groupsMu.Lock()
	defer b.groupsMu.Unlock()
	subs := slices.DeleteFunc(b.groups[s.group], func(x *subscription) bool { return x == s })
	if len(subs) == 0 {
		delete(b.groups, s.group)
		return
	}
	b.groups[s.group] = subs
}

// ConsumerLag returns, for every partition that a Subscribe or
// SubscribeBatch call of group on this bus serves now, how many messages
// it has not finished, sorted by topic and partition; nil if there is
// none. See [bus.LagReporter].
//
// Next is the offset after the last message the subscription acknowledged
// on the partition (its handler returned nil, or it was dead-lettered) and
// marked, in the current session: it counts what was handled, not what was
// committed, which may trail it by up to one commit interval (see the
// package documentation). Before the first acknowledgement Next is the
// offset the claim started at (the group's committed offset, or for a
// group without one the log's start); in the rare case that the brokers
// could not tell where that is, Next is -1 and Lag 0 until the first
// message arrives.
//
// HighWaterMark is the partition's high-water mark as of the latest fetch
// response the claim's partition consumer got (or, before its first
// fetch, as the brokers reported it when the claim started): while
// messages are flowing it is as fresh as the fetches, which sarama sends
// as long as it has room to buffer; while the consumer waits on a busy
// handler with a full buffer it stops fetching, and HighWaterMark (and
// so Lag) may be behind the broker's until the handler catches up.
//
// A partition is reported from the moment its ConsumeClaim starts until it
// ends: not between a rebalance and the next session. ConsumerLag reads
// atomics under the bus's and each subscription's lock, sends nothing to
// the brokers, and allocates only the returned slice.
func (b *Bus) ConsumerLag(group string) []bus.PartitionLag {
	b.groupsMu.Lock()
	defer b.groupsMu.Unlock()
	subs := b.groups[group]
	n := 0
	for _, s := range subs {
		s.claimsMu.Lock()
		n += len(s.claims)
		s.claimsMu.Unlock()
	}
	if n == 0 {
		return nil
	}
	out := make([]bus.PartitionLag, 0, n)
	for _, s := range subs {
		s.claimsMu.Lock()
		for _, l := range s.claims {
			out = append(out, l.report())
		}
		s.claimsMu.Unlock()
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(x, y bus.PartitionLag) int {
		return cmp.Or(strings.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return out
}

func (l *claimLag) report() bus.PartitionLag {
	next := l.next.Load()
	hwm := l.claim.HighWaterMarkOffset()
	r := bus.PartitionLag{Topic: l.claim.Topic(), Partition: l.claim.Partition(), Next: next, HighWaterMark: hwm}
	if next >= 0 {
		r.Lag = max(hwm-next, 0)
	}
	return r
}
