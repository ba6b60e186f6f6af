package kafka_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// assignment keeps a member's latest OnAssign.
type assignment struct {
	mu sync.Mutex
	ps []int32
}

func (a *assignment) option(topic string) bus.SubscribeOption {
	return bus.WithOnAssign(func(m map[string][]int32) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.ps = slices.Clone(m[topic])
	})
}

func (a *assignment) get() []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ps)
}

// TestTwoBusesOneGroup runs one group on two buses (two processes, as far as
// Kafka can tell) over 12 partitions: they split the partitions, and when
// one stops mid-stream the other takes every partition over cleanly, with
// each message handled exactly once and every key in order.
func TestTwoBusesOneGroup(t *testing.T) {
	t.Run("subscription-ends", func(t *testing.T) { testTwoBuses(t, false) })
	t.Run("bus-closes", func(t *testing.T) { testTwoBuses(t, true) })
}

func testTwoBuses(t *testing.T, closeBus bool) {
	const topic, group, partitions = "handover", "runtime", 12
	c := kafkatest.Start(t)
	buses := [2]*kafka.Bus{c.NewBus(t), c.NewBus(t)}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	var got log
	var inFlight [partitions]atomic.Int32
	var as [2]assignment
	var subs [2]*running
	handled := [2]atomic.Int32{}
	for i := range buses {
		subs[i] = subscribe(t, buses[i], group, []string{topic}, func(_ context.Context, m *bus.Message) error {
			if inFlight[m.Partition].Add(1) != 1 {
				t.Errorf("two handler calls at once on partition %d", m.Partition)
			}
			defer inFlight[m.Partition].Add(-1)
			time.Sleep(100 * time.Microsecond) // keep work in flight when the member stops
			got.add(m)
			handled[i].Add(1)
			return nil
		}, as[i].option(topic))
	}
	eventually(t, "the members to split the partitions", func() bool {
		a, b := as[0].get(), as[1].get()
		all := append(a, b...)
		slices.Sort(all)
		return len(a) > 0 && len(b) > 0 && len(slices.Compact(all)) == partitions && len(all) == partitions
	})

	// Publish while both consume; stop member 0 in the middle.
	msgs := sequenced(topic, "m", 1200, 100)
	publishDone := make(chan error, 1)
	go func() {
		for i := 0; i < len(msgs); i += 10 {
			if err := buses[1].Publish(ctx, msgs[i:i+10]...); err != nil {
				publishDone <- err
				return
			}
			if i == 400 {
				// Stop member 0 mid-stream, once it has taken part.
				for handled[0].Load() == 0 && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				if closeBus {
					go func() { _ = buses[0].Close() }()
				} else {
					subs[0].cancel()
				}
			}
		}
		publishDone <- nil
	}()
	select {
	case <-subs[0].done:
	case <-ctx.Done():
		t.Fatal("member 0 did not stop")
	}
	switch {
	case closeBus && !errors.Is(subs[0].err, bus.ErrClosed):
		t.Fatalf("member 0: Subscribe = %v after Close, want bus.ErrClosed", subs[0].err)
	case !closeBus && subs[0].err != nil:
		t.Fatalf("member 0: Subscribe = %v, want nil", subs[0].err)
	}
	if err := <-publishDone; err != nil {
		t.Fatal(err)
	}
	eventually(t, "member 1 to own every partition", func() bool { return len(as[1].get()) == partitions })
	eventually(t, "every message", func() bool { return got.distinct() >= len(msgs) })
	time.Sleep(200 * time.Millisecond) // time for a wrong redelivery to show
	checkExactlyOnceInOrder(t, got.all(), msgs)
	if handled[0].Load() == 0 || handled[1].Load() == 0 {
		t.Errorf("members handled %d and %d messages; want both to take part", handled[0].Load(), handled[1].Load())
	}
	t.Logf("member 0 handled %d messages, member 1 %d", handled[0].Load(), handled[1].Load())
}
