package bustest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// findLag returns the entry of topic/partition in lags.
func findLag(lags []bus.PartitionLag, topic string, partition int32) (bus.PartitionLag, bool) {
	for _, l := range lags {
		if l.Topic == topic && l.Partition == partition {
			return l, true
		}
	}
	return bus.PartitionLag{}, false
}

// sortedLags reports whether lags is sorted by topic, then partition,
// without duplicates.
func sortedLags(lags []bus.PartitionLag) bool {
	for i := 1; i < len(lags); i++ {
		a, b := lags[i-1], lags[i]
		if c := strings.Compare(a.Topic, b.Topic); c > 0 || c == 0 && a.Partition >= b.Partition {
			return false
		}
	}
	return true
}

// testConsumerLag publishes n messages to one partition, blocks the
// handler on the first, and checks that ConsumerLag reports all n as not
// finished (the one in progress included) on that partition and nothing on
// the partitions without messages; then releases it and checks the lag
// drains to 0 at the high-water mark, and that nothing is reported once
// the subscription ended.
func testConsumerLag(e *env) {
	t := e.t
	lr := e.b.(bus.LagReporter)
	topic := e.topic()
	group := e.name("group")
	if got := lr.ConsumerLag(group); len(got) != 0 {
		t.Errorf("ConsumerLag of a group nobody subscribed = %+v, want none", got)
	}

	const n = 10
	msgs := keyed(topic, "lag", n, 1) // one key: one partition
	e.publish(msgs...)
	part, first, hwm := msgs[0].Partition, msgs[0].Offset, msgs[n-1].Offset+1
	if hwm-first != n {
		t.Fatalf("%d messages of one key on a new topic got offsets %d..%d", n, first, hwm-1)
	}

	as := newAssignments(1)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	var handled atomic.Int64
	s := e.subscribe(group, []string{topic}, func(ctx context.Context, m *bus.Message) error {
		if m.Offset == first {
			once.Do(func() { close(entered) })
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		handled.Add(1)
		return nil
	}, as.option(0))
	e.wait("the handler to block on the first message", entered)

	var last []bus.PartitionLag
	e.eventually(fmt.Sprintf("ConsumerLag to report %d messages on partition %d, and every owned partition", n, part), func() bool {
		last = lr.ConsumerLag(group)
		l, ok := findLag(last, topic, part)
		if !ok || l.Lag != n || l.Next != first || l.HighWaterMark != hwm {
			return false
		}
		owned := as.of(0, topic)
		return len(owned) > 0 && len(last) == len(owned) && (e.f.Partitions <= 0 || len(owned) == int(e.f.Partitions))
	})
	if !sortedLags(last) {
		t.Errorf("ConsumerLag is not sorted by topic and partition: %+v", last)
	}
	owned := as.of(0, topic)
	for _, l := range last {
		if l.Topic != topic || !slices.Contains(owned, l.Partition) {
			t.Errorf("ConsumerLag reports %s/%d, which the member does not own (it owns %v of %s)", l.Topic, l.Partition, owned, topic)
		}
		if l.Partition != part && l.Lag != 0 {
			t.Errorf("ConsumerLag reports lag %d on partition %d, which has no messages", l.Lag, l.Partition)
		}
		if l.Lag != max(l.HighWaterMark-l.Next, 0) {
			t.Errorf("ConsumerLag entry %+v: Lag is not HighWaterMark - Next", l)
		}
	}
	if got := lr.ConsumerLag(e.name("group")); len(got) != 0 {
		t.Errorf("ConsumerLag of another group = %+v, want none", got)
	}

	close(release)
	e.eventually("the lag to drain to 0", func() bool {
		last = lr.ConsumerLag(group)
		l, ok := findLag(last, topic, part)
		if !ok || l.Lag != 0 || l.Next != hwm || l.HighWaterMark != hwm {
			return false
		}
		for _, l := range last {
			if l.Lag != 0 {
				return false
			}
		}
		return true
	})
	if got := handled.Load(); got != n {
		t.Errorf("the handler acknowledged %d messages, want %d", got, n)
	}
	s.stop()
	if got := lr.ConsumerLag(group); len(got) != 0 {
		t.Errorf("ConsumerLag after the only subscription ended = %+v, want none", got)
	}
}

// revokeTracker follows each member's OnAssign and OnRevoke calls and its
// handler calls, and checks that they agree: a handler gets only messages
// of partitions assigned and not revoked since, a partition is revoked
// only while it is assigned and only once no handler call on it runs.
type revokeTracker struct {
	e        *env
	mu       sync.Mutex
	clock    int64
	latest   []map[string][]int32 // each member's latest OnAssign
	held     []map[string]bool    // assigned and not revoked since, by "topic/partition"
	inFlight []map[string]int
	revoked  []map[string]int64 // when each partition was last revoked
	started  []map[string]int64 // when a handler call on each partition first started
	revokes  []int              // OnRevoke calls
}

func newRevokeTracker(e *env, members int) *revokeTracker {
	tr := &revokeTracker{e: e}
	for range members {
		tr.latest = append(tr.latest, nil)
		tr.held = append(tr.held, make(map[string]bool))
		tr.inFlight = append(tr.inFlight, make(map[string]int))
		tr.revoked = append(tr.revoked, make(map[string]int64))
		tr.started = append(tr.started, make(map[string]int64))
		tr.revokes = append(tr.revokes, 0)
	}
	return tr
}

func partKey(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }

func (tr *revokeTracker) options(member int) []bus.SubscribeOption {
	return []bus.SubscribeOption{
		bus.WithOnAssign(func(a map[string][]int32) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			c := make(map[string][]int32, len(a))
			for t, ps := range a {
				c[t] = slices.Clone(ps)
				for _, p := range ps {
					tr.held[member][partKey(t, p)] = true
				}
			}
			tr.latest[member] = c
		}),
		bus.WithOnRevoke(func(r map[string][]int32) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			tr.clock++
			tr.revokes[member]++
			for t, ps := range r {
				if !slices.IsSorted(ps) {
					tr.e.t.Errorf("member %d: OnRevoke's partitions of %s are not sorted: %v", member, t, ps)
				}
				for _, p := range ps {
					k := partKey(t, p)
					if !tr.held[member][k] {
						tr.e.t.Errorf("member %d: partition %s revoked, but it was not assigned since it was last revoked", member, k)
					}
					if tr.inFlight[member][k] > 0 {
						tr.e.t.Errorf("member %d: partition %s revoked while a handler call on it was in progress", member, k)
					}
					delete(tr.held[member], k)
					tr.revoked[member][k] = tr.clock
				}
			}
		}),
	}
}

func (tr *revokeTracker) enter(member int, m *bus.Message) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	k := partKey(m.Topic, m.Partition)
	if !tr.held[member][k] {
		tr.e.t.Errorf("member %d: handler got offset %d of partition %s, which is not assigned to it (or was revoked)", member, m.Offset, k)
	}
	tr.inFlight[member][k]++
	tr.clock++
	if tr.started[member][k] == 0 {
		tr.started[member][k] = tr.clock
	}
}

func (tr *revokeTracker) leave(member int, m *bus.Message) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.inFlight[member][partKey(m.Topic, m.Partition)]--
}

func (tr *revokeTracker) of(member int, topic string) []int32 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.latest[member][topic])
}

// holding returns what member holds: assigned and not revoked since.
func (tr *revokeTracker) holding(member int) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var ks []string
	for k := range tr.held[member] {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (tr *revokeTracker) split(topic string, partitions int32) bool {
	seen := make(map[int32]bool)
	for m := range tr.latest {
		ps := tr.of(m, topic)
		if len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return partitions <= 0 || len(seen) == int(partitions)
}

// testRevoke checks WithOnRevoke against WithOnAssign and the handler
// calls. Member 0 is busy on every partition when member 1 joins: every
// partition that moves to member 1 is revoked from member 0 after member
// 0's handler call on it returned, and before member 1's first call on it.
// Then member 1 leaves and member 0 stops: each has every partition it
// held revoked before its Subscribe returned.
func testRevoke(e *env) {
	t := e.t
	topic := e.topic()
	group := e.name("group")
	probes := keyed(topic, "probe", 64, 64)
	e.publish(probes...)
	keyOf := make(map[int32][]byte)
	for _, p := range probes {
		if _, ok := keyOf[p.Partition]; !ok {
			keyOf[p.Partition] = p.Key
		}
	}
	if len(keyOf) < 2 {
		t.Skip("all keys landed on one partition")
	}

	tr := newRevokeTracker(e, 2)
	release := make(chan struct{})
	var blockedMu sync.Mutex
	blockedOn := make(map[int32]bool)
	s0 := e.subscribe(group, []string{topic}, func(ctx context.Context, m *bus.Message) error {
		tr.enter(0, m)
		defer tr.leave(0, m)
		if !bytes.HasPrefix(m.Value, []byte("blocker")) {
			return nil
		}
		blockedMu.Lock()
		blockedOn[m.Partition] = true
		blockedMu.Unlock()
		select {
		case <-ctx.Done():
			time.Sleep(20 * time.Millisecond) // widen the window for an early revoke
			return ctx.Err()
		case <-release:
			return nil
		}
	}, tr.options(0)...)
	e.eventually("member 0 to own every partition", func() bool {
		n := len(tr.of(0, topic))
		return n > 0 && (e.f.Partitions <= 0 || n == int(e.f.Partitions))
	})
	var blockers []*bus.Message
	for p, key := range keyOf {
		blockers = append(blockers, &bus.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "blocker-%d", p)})
	}
	e.publish(blockers...)
	e.eventually("member 0 to be busy on every partition", func() bool {
		blockedMu.Lock()
		defer blockedMu.Unlock()
		return len(blockedOn) == len(keyOf)
	})

	s1 := e.subscribe(group, []string{topic}, func(_ context.Context, m *bus.Message) error {
		tr.enter(1, m)
		defer tr.leave(1, m)
		return nil
	}, tr.options(1)...)
	e.eventually("the members to split the partitions", func() bool { return tr.split(topic, e.f.Partitions) })
	moved := tr.of(1, topic)
	e.eventually("member 1 to start every partition it took over that has a message", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, p := range moved {
			if _, ok := keyOf[p]; ok && tr.started[1][partKey(topic, p)] == 0 {
				return false
			}
		}
		return true
	})
	tr.mu.Lock()
	for _, p := range moved {
		k := partKey(topic, p)
		rev := tr.revoked[0][k]
		if rev == 0 {
			t.Errorf("partition %s moved to member 1, but member 0's OnRevoke never reported it", k)
			continue
		}
		if s := tr.started[1][k]; s != 0 && s < rev {
			t.Errorf("member 1 handled partition %s before member 0's OnRevoke of it returned", k)
		}
	}
	tr.mu.Unlock()
	close(release)

	s1.stop()
	if h := tr.holding(1); len(h) != 0 {
		t.Errorf("member 1's Subscribe returned, but OnRevoke never reported %v", h)
	}
	if n := e.f.Partitions; n > 0 {
		e.eventually("member 0 to own every partition again", func() bool {
			return len(tr.of(0, topic)) == int(n) && len(tr.holding(0)) == int(n)
		})
	}
	s0.stop()
	if h := tr.holding(0); len(h) != 0 {
		t.Errorf("member 0's Subscribe returned, but OnRevoke never reported %v", h)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, n := range tr.revokes {
		if n == 0 {
			t.Errorf("member %d: OnRevoke was never called", i)
		}
	}
}
