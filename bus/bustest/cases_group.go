package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registrar-go/registrar/bus"
)

func testMembersSplitPartitions(e *env) {
	t := e.t
	topic := e.topic()
	group := e.name("group")
	as := newAssignments(2)
	x := newExclusive(t)
	var ins [2]inbox
	for i := range ins {
		e.subscribe(group, []string{topic}, func(_ context.Context, m *bus.Message) error {
			x.enter(m)
			defer x.leave(m)
			ins[i].add(m)
			return nil
		}, as.option(i))
	}
	e.eventually("both members to own disjoint shares of the partitions", func() bool { return as.split(topic, e.f.Partitions, 0, 1) })

	const total = 120
	e.publish(keyed(topic, "m", total, 40)...)
	e.eventually(fmt.Sprintf("%d messages", total), func() bool { return ins[0].distinct()+ins[1].distinct() >= total })

	seen := make(map[string]int)
	for i := range ins {
		mine := as.of(i, topic)
		for _, m := range ins[i].all() {
			seen[string(m.Value)]++
			if !slices.Contains(mine, m.Partition) {
				t.Errorf("member %d got a message of partition %d, outside its assignment %v", i, m.Partition, mine)
			}
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("message %s delivered %d times within one group", v, n)
		}
	}
	if len(seen) != total {
		t.Errorf("the group got %d distinct messages, want %d", len(seen), total)
	}
	if n := e.f.Partitions; n > 0 {
		for i := range ins {
			expect := false
			for k := range 40 {
				if slices.Contains(as.of(i, topic), bus.KeyPartition(fmt.Appendf(nil, "key-%d", k), n)) {
					expect = true
				}
			}
			if expect && ins[i].len() == 0 {
				t.Errorf("member %d owns partitions with messages but got none", i)
			}
		}
	}
}

func testMemberLeaves(e *env) {
	t := e.t
	topic := e.topic()
	group := e.name("group")
	as := newAssignments(2)
	x := newExclusive(t)
	var ins [2]inbox
	var clock atomic.Int64 // orders events across the members
	var (
		armed            atomic.Bool
		blocked          = make(chan struct{})
		blockerCanceled  atomic.Bool
		blockerReturned  atomic.Int64
		blockerRestarted atomic.Int64
		once             sync.Once
	)
	handler := func(i int) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			x.enter(m)
			defer x.leave(m)
			if string(m.Value) == "blocker" {
				if i == 1 {
					blockerRestarted.CompareAndSwap(0, clock.Add(1))
				} else if armed.Load() {
					once.Do(func() { close(blocked) })
					<-ctx.Done()
					blockerCanceled.Store(true)
					time.Sleep(20 * time.Millisecond) // widen the window for an early takeover
					blockerReturned.Store(clock.Add(1))
					return ctx.Err()
				}
			}
			ins[i].add(m)
			return nil
		}
	}
	s0 := e.subscribe(group, []string{topic}, handler(0), as.option(0))
	e.subscribe(group, []string{topic}, handler(1), as.option(1))
	e.eventually("both members to own disjoint shares of the partitions", func() bool { return as.split(topic, e.f.Partitions, 0, 1) })

	before := keyed(topic, "before", 100, 40)
	e.publish(before...)
	e.eventually("the first 100 messages", func() bool { return ins[0].distinct()+ins[1].distinct() >= 100 })

	// Block member 0 in a handler call on one of its partitions, then make
	// it leave: the call must see its context canceled, and member 1 must
	// not start that partition before the call returned.
	var key []byte
	for _, m := range ins[0].all() {
		key = m.Key
		break
	}
	if key == nil {
		t.Fatalf("member 0 got none of 100 messages over 40 keys")
	}
	armed.Store(true)
	e.publish(&bus.Message{Topic: topic, Key: key, Value: []byte("blocker")})
	e.wait("member 0 to block in a handler call", blocked)
	s0.stop()
	if !blockerCanceled.Load() {
		t.Errorf("member 0 left, but its handler call's context was not canceled")
	}
	if blockerReturned.Load() == 0 {
		t.Errorf("Subscribe returned before its handler call did")
	}

	after := keyed(topic, "after", 100, 40)
	e.publish(after...)
	e.eventually("member 1 to receive the unacknowledged message and the last 100", func() bool {
		return blockerRestarted.Load() != 0 && slicesContainsAll(ins[1].values(), after)
	})
	if r, s := blockerReturned.Load(), blockerRestarted.Load(); s < r {
		t.Errorf("member 1 started the partition before member 0's handler call returned")
	}
	if n := e.f.Partitions; n > 0 {
		e.eventually("member 1 to own every partition", func() bool { return len(as.of(1, topic)) == int(n) })
	}
	seen := make(map[string]bool)
	for i := range ins {
		for _, v := range ins[i].values() {
			seen[v] = true
		}
	}
	for _, m := range append(before, after...) {
		if !seen[string(m.Value)] {
			t.Errorf("message %s was lost", m.Value)
		}
	}
	if !seen["blocker"] {
		t.Errorf("the message whose handler call was canceled was lost")
	}
}

func slicesContainsAll(have []string, want []*bus.Message) bool {
	set := make(map[string]bool, len(have))
	for _, v := range have {
		set[v] = true
	}
	for _, m := range want {
		if !set[string(m.Value)] {
			return false
		}
	}
	return true
}

func testContextCancel(e *env) {
	t := e.t
	topic := e.topic()
	canceled, cancel := context.WithCancel(e.ctx)
	cancel()
	if err := e.b.Publish(canceled, &bus.Message{Topic: topic, Value: []byte("x")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a canceled context = %v, want context.Canceled", err)
	}
	env := &bus.Envelope{EnvelopeID: [16]byte{1}, EnvelopeTimestamp: time.Now(), Payload: []byte(`1`)}
	if err := e.b.PublishEnvelope(canceled, topic, env); !errors.Is(err, context.Canceled) {
		t.Errorf("PublishEnvelope with a canceled context = %v, want context.Canceled", err)
	}

	done := make(chan error, 1)
	go func() {
		done <- e.b.Subscribe(canceled, e.name("group"), []string{topic}, func(context.Context, *bus.Message) error { return nil })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Subscribe with a canceled context = %v, want nil", err)
		}
	case <-time.After(e.f.timeout()):
		t.Fatalf("Subscribe with a canceled context did not return")
	}

	// Subscribe returns once its context ended and the handler returned.
	entered := make(chan struct{})
	var once sync.Once
	var returned atomic.Bool
	s := e.subscribe(e.name("group"), []string{topic}, func(ctx context.Context, m *bus.Message) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // widen the window for an early return
		returned.Store(true)
		return ctx.Err()
	})
	e.publish(&bus.Message{Topic: topic, Value: []byte("y")})
	e.wait("the handler call", entered)
	s.stop()
	if !returned.Load() {
		t.Errorf("Subscribe returned before its handler call did")
	}
}

// testRebalanceRevokes makes a second member join while the first is busy
// in a handler call on every partition. For every partition that moves to
// the newcomer, the old call must see its context canceled, and the
// newcomer must not start the partition before that call returned; the
// unacknowledged message is then redelivered to the newcomer.
func testRebalanceRevokes(e *env) {
	t := e.t
	topic := e.topic()
	group := e.name("group")
	// Learn one key per partition from where Publish puts probes.
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

	as := newAssignments(2)
	x := newExclusive(t)
	release := make(chan struct{})
	var (
		mu         sync.Mutex
		blockedOn  = make(map[int32]bool)  // partitions where member 0 is blocked
		canceledOn = make(map[int32]bool)  // ...whose call saw ctx canceled
		returnedAt = make(map[int32]int64) // clock when member 0's call returned
		startedAt  = make(map[int32]int64) // clock when member 1 started the blocker
		clock      int64
	)
	tick := func() int64 { clock++; return clock }
	e.subscribe(group, []string{topic}, func(ctx context.Context, m *bus.Message) error {
		if !bytes.HasPrefix(m.Value, []byte("blocker")) {
			return nil
		}
		x.enter(m)
		defer x.leave(m)
		mu.Lock()
		blockedOn[m.Partition] = true
		mu.Unlock()
		select {
		case <-ctx.Done():
			mu.Lock()
			canceledOn[m.Partition] = true
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // widen the window for an early takeover
		case <-release:
		}
		mu.Lock()
		returnedAt[m.Partition] = tick()
		mu.Unlock()
		return errors.New("bustest: interrupted")
	}, as.option(0))
	e.eventually("member 0 to own every partition", func() bool {
		return len(as.of(0, topic)) > 0 && (e.f.Partitions <= 0 || len(as.of(0, topic)) == int(e.f.Partitions))
	})
	var blockers []*bus.Message
	for p, key := range keyOf {
		blockers = append(blockers, &bus.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "blocker-%d", p)})
	}
	e.publish(blockers...)
	e.eventually("member 0 to be busy on every partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(blockedOn) == len(keyOf)
	})

	var in1 inbox
	e.subscribe(group, []string{topic}, func(ctx context.Context, m *bus.Message) error {
		if bytes.HasPrefix(m.Value, []byte("blocker")) {
			x.enter(m)
			defer x.leave(m)
			mu.Lock()
			if _, ok := startedAt[m.Partition]; !ok {
				startedAt[m.Partition] = tick()
			}
			mu.Unlock()
			in1.add(m)
		}
		return nil
	}, as.option(1))
	e.eventually("the members to split the partitions", func() bool { return as.split(topic, e.f.Partitions, 0, 1) })
	moved := as.of(1, topic)
	e.eventually("member 1 to receive the blockers of the partitions it took over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range moved {
			if _, ok := keyOf[p]; ok && startedAt[p] == 0 {
				return false
			}
		}
		return true
	})
	close(release)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range moved {
		if _, ok := keyOf[p]; !ok {
			continue
		}
		if !canceledOn[p] {
			t.Errorf("partition %d moved to member 1, but member 0's handler call on it was not canceled", p)
		}
		if startedAt[p] < returnedAt[p] || returnedAt[p] == 0 {
			t.Errorf("member 1 started partition %d before member 0's handler call on it returned", p)
		}
	}
}
