package memory_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

func span(from, to int32) []int32 {
	var out []int32
	for p := from; p < to; p++ {
		out = append(out, p)
	}
	return out
}

func TestRangeAssignment(t *testing.T) {
	b := newBus(t, memory.Config{Topics: map[string]memory.TopicConfig{"five": {Partitions: 5}}})
	nop := func(context.Context, *bus.Message) error { return nil }
	var parts [3]func(string) []int32
	var stops [3]func() error
	for i := range 3 {
		var opt bus.SubscribeOption
		opt, parts[i] = assigned()
		stops[i] = subscribe(t, b, "g", []string{"t", "five"}, nop, opt)
		// Join one at a time: the range follows join order.
		eventually(t, "the new member's assignment", func() bool { return len(parts[i]("t")) > 0 })
	}
	check := func(when string, want map[int][]int32, topic string) {
		t.Helper()
		eventually(t, when, func() bool {
			for i, w := range want {
				if !slices.Equal(parts[i](topic), w) {
					return false
				}
			}
			return true
		})
	}
	check("three members on 12 partitions", map[int][]int32{0: span(0, 4), 1: span(4, 8), 2: span(8, 12)}, "t")
	check("three members on 5 partitions", map[int][]int32{0: {0, 1}, 1: {2, 3}, 2: {4}}, "five")
	if err := stops[1](); err != nil {
		t.Fatal(err)
	}
	check("two members on 12 partitions", map[int][]int32{0: span(0, 6), 2: span(6, 12)}, "t")
	check("two members on 5 partitions", map[int][]int32{0: {0, 1, 2}, 2: {3, 4}}, "five")
	if got := parts[1]("t"); len(got) != 0 {
		t.Errorf("the member that left was last told it owns %v, want nothing", got)
	}
}

func TestHandoffWaitsForTheOldOwner(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 2})
	// A key on partition 1, which the second member will take over.
	var key []byte
	for i := 0; key == nil; i++ {
		if k := []byte{byte(i)}; bus.KeyPartition(k, 2) == 1 {
			key = k
		}
	}
	var (
		inFlight   atomic.Int32
		overlap    atomic.Bool
		canceled   = make(chan struct{})
		release    = make(chan struct{})
		entered    = make(chan struct{})
		enterOnce  sync.Once
		cancelOnce sync.Once
	)
	track := func() func() {
		if inFlight.Add(1) > 1 {
			overlap.Store(true)
		}
		return func() { inFlight.Add(-1) }
	}
	var first, second values
	optA, partsA := assigned()
	subscribe(t, b, "g", []string{"t"}, func(ctx context.Context, m *bus.Message) error {
		defer track()()
		if string(m.Value) == "m0" {
			enterOnce.Do(func() { close(entered) })
			<-ctx.Done() // the rebalance cancels the call...
			cancelOnce.Do(func() { close(canceled) })
			<-release // ...which still finishes its work, slowly
		}
		first.add(string(m.Value))
		return nil
	}, optA)
	eventually(t, "the first member to own both partitions", func() bool { return len(partsA("t")) == 2 })
	publish(t, b, &bus.Message{Topic: "t", Key: key, Value: []byte("m0")})
	<-entered

	optB, partsB := assigned()
	subscribe(t, b, "g", []string{"t"}, func(_ context.Context, m *bus.Message) error {
		defer track()()
		second.add(string(m.Value))
		return nil
	}, optB)
	eventually(t, "the second member to own partition 1", func() bool { return slices.Equal(partsB("t"), []int32{1}) })
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the old owner's handler call was not canceled by the rebalance")
	}
	publish(t, b, &bus.Message{Topic: "t", Key: key, Value: []byte("m1")})
	// Give a wrong implementation time to start the new owner early; the
	// assertion is the overlap check, not this pause.
	time.Sleep(20 * time.Millisecond)
	close(release)
	eventually(t, "the new owner to handle m1", func() bool { return len(second.get()) == 1 })
	if overlap.Load() {
		t.Errorf("the new owner ran a handler call while the old owner's was in progress")
	}
	// m0's handler returned nil after it was canceled: that still commits.
	if got := second.get(); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("new owner handled %q, want only m1", got)
	}
	if c := b.Committed("g", "t", 1); c != 2 {
		t.Errorf("Committed = %d, want 2", c)
	}
}

func TestOnAssignMayCallTheBus(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 2})
	called := make(chan struct{}, 10)
	subscribe(t, b, "g", []string{"t"}, func(context.Context, *bus.Message) error { return nil },
		bus.WithOnAssign(func(map[string][]int32) {
			_ = b.Committed("g", "t", 0)
			_ = b.Lag("g")
			_ = b.Partitions("t")
			_ = b.Publish(context.Background(), &bus.Message{Topic: "assignments", Value: []byte("x")})
			called <- struct{}{}
		}))
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("OnAssign was not called, or deadlocked calling the bus")
	}
}

func TestCommittedAndLag(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1})
	if c := b.Committed("g", "t", 0); c != -1 {
		t.Errorf("Committed of an unknown group = %d, want -1", c)
	}
	if c := b.Committed("g", "t", 5); c != -1 {
		t.Errorf("Committed of a missing partition = %d, want -1", c)
	}
	publish(t, b, msgs("t", nil, "m", 0, 10)...)
	var got values
	stop := subscribe(t, b, "g", []string{"t"}, got.handler())
	eventually(t, "10 commits", func() bool { return b.Committed("g", "t", 0) == 10 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	publish(t, b, msgs("t", nil, "n", 0, 5)...)
	if lag := b.Lag("g"); lag != 5 {
		t.Errorf("Lag = %d, want 5", lag)
	}
	if lag := b.Lag("nobody"); lag != 0 {
		t.Errorf("Lag of an unknown group = %d", lag)
	}
}

func TestOnAssignBeforeFirstDelivery(t *testing.T) {
	for range 20 {
		b := newBus(t, memory.Config{Partitions: 4})
		publish(t, b, msgs("t", nil, "m", 0, 8)...)
		opt, parts := assigned()
		var got values
		subscribe(t, b, "g", []string{"t"}, func(_ context.Context, m *bus.Message) error {
			if !slices.Contains(parts("t"), m.Partition) {
				t.Errorf("message of partition %d delivered before OnAssign announced it (assignment %v)", m.Partition, parts("t"))
			}
			got.add(string(m.Value))
			return nil
		}, opt)
		eventually(t, "8 messages", func() bool { return len(got.get()) == 8 })
	}
}
