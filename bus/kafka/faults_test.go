package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// dropEvery installs a control on requests of key that closes the
// connection of every nth such request, limit times, without the broker
// seeing the request. It returns the count of dropped requests.
func dropEvery(c *kfake.Cluster, key kmsg.Key, n, limit int) *atomic.Int32 {
	var seen, dropped atomic.Int32
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		if seen.Add(1)%int32(n) != 0 || dropped.Load() >= int32(limit) {
			return nil, nil, false
		}
		dropped.Add(1)
		c.KeepControl()
		return nil, errors.New("kafkatest: connection dropped"), true
	})
	return &dropped
}

// TestProduceFaults fails produce requests in the three ways a producer
// meets: refused (NOT_LEADER_FOR_PARTITION), applied but answered with an
// error (REQUEST_TIMED_OUT: the retry is a duplicate that the idempotent
// producer must not store twice), and a connection that drops the request.
// Every Publish succeeds; a consumer finds every message once, in order.
func TestProduceFaults(t *testing.T) {
	const publishers, perPublisher, keysPer = 6, 100, 5
	c := kafkatest.Start(t)
	b := c.NewBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic = "produce-faults"
	if err := b.Publish(ctx, &bus.Message{Topic: topic, Value: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}

	fake := c.Fake()
	refused := fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.NotLeaderForPartition, Count: 4})
	applied := fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut, Count: 4})
	dropped := dropEvery(fake, kmsg.Produce, 7, 3)

	var all []*bus.Message
	var wg sync.WaitGroup
	for p := range publishers {
		msgs := make([]*bus.Message, perPublisher)
		for i := range msgs {
			msgs[i] = &bus.Message{
				Topic: topic, Key: fmt.Appendf(nil, "p%d-key-%d", p, i%keysPer),
				Value: fmt.Appendf(nil, "p%d-%d", p, i), Headers: bus.Headers{"seq": strconv.Itoa(i)},
			}
		}
		all = append(all, msgs...)
		wg.Go(func() {
			for i := 0; i < len(msgs); {
				n := min(1+i%3, len(msgs)-i) // one to three messages per call
				if err := b.Publish(ctx, msgs[i:i+n]...); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				i += n
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if refused.Hits() == 0 || applied.Hits() == 0 || dropped.Load() == 0 {
		t.Fatalf("faults injected: %d refused, %d applied-then-failed, %d dropped; want some of each",
			refused.Hits(), applied.Hits(), dropped.Load())
	}
	t.Logf("faults injected: %d refused, %d applied-then-failed, %d dropped", refused.Hits(), applied.Hits(), dropped.Load())

	var got log
	subscribe(t, b, "reader", []string{topic}, func(ctx context.Context, m *bus.Message) error {
		if string(m.Value) != "warm-up" {
			got.add(m)
		}
		return nil
	})
	eventually(t, "every message", func() bool { return got.distinct() >= len(all) })
	checkExactlyOnceInOrder(t, got.all(), all)
}

// TestFetchFaults fails fetches (NOT_LEADER_FOR_PARTITION) and drops the
// connections of others while a group consumes: the consumer goes on, and
// no message is lost or handled out of order (a redelivery after a lost
// commit is allowed: delivery is at least once).
func TestFetchFaults(t *testing.T) {
	c := kafkatest.Start(t)
	b := c.NewBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic = "fetch-faults"
	first := sequenced(topic, "first", 300, 30)
	if err := b.Publish(ctx, first...); err != nil {
		t.Fatal(err)
	}

	fake := c.Fake()
	refused := fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Err: kerr.NotLeaderForPartition, Count: 3})
	dropped := dropEvery(fake, kmsg.Fetch, 3, 3)

	var got log
	subscribe(t, b, "reader", []string{topic}, got.handler())
	eventually(t, "the first messages", func() bool { return got.distinct() >= len(first) })
	second := sequenced(topic, "second", 300, 30)
	if err := b.Publish(ctx, second...); err != nil {
		t.Fatal(err)
	}
	all := append(first, second...)
	eventually(t, "the messages published after the faults", func() bool { return got.distinct() >= len(all) })
	if refused.Hits() == 0 || dropped.Load() == 0 {
		t.Fatalf("faults injected: %d refused, %d dropped; want some of each", refused.Hits(), dropped.Load())
	}
	t.Logf("faults injected: %d refused fetches, %d dropped fetches; %d deliveries of %d messages",
		refused.Hits(), dropped.Load(), got.len(), len(all))
	checkAtLeastOnceInOrder(t, got.all(), all)
}

// checkAtLeastOnceInOrder checks that got holds every message of want, and
// that per key every message delivered for the first time is the next one
// in want's order. Redeliveries of messages already seen are allowed.
func checkAtLeastOnceInOrder(t *testing.T, got, want []*bus.Message) {
	t.Helper()
	order := make(map[string][]string) // key → values in publish order
	for _, m := range want {
		order[string(m.Key)] = append(order[string(m.Key)], string(m.Value))
	}
	seen := make(map[string]bool)
	next := make(map[string]int)
	for _, m := range got {
		k, v := string(m.Key), string(m.Value)
		if seen[v] {
			continue
		}
		seen[v] = true
		if i := next[k]; i >= len(order[k]) || order[k][i] != v {
			t.Errorf("key %s: %q delivered first where %q was due", k, v, order[k][min(i, len(order[k])-1)])
		}
		next[k]++
	}
	for _, m := range want {
		if !seen[string(m.Value)] {
			t.Errorf("message %q lost", m.Value)
		}
	}
}
