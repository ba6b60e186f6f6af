package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// reading is a ReadPartition call in its own goroutine.
type reading struct {
	cancel  context.CancelFunc
	started chan struct{}
	start   int64 // valid once started is closed
	next    int64
	done    chan struct{}
	err     error // valid once done is closed
}

// read runs b.ReadPartition until stop, Close or the end of the test.
func read(t *testing.T, b *kafka.Bus, topic string, p int32, h bus.Handler, opts ...bus.ReadOption) *reading {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &reading{cancel: cancel, started: make(chan struct{}), done: make(chan struct{})}
	opts = append(opts, bus.WithReadStarted(func(start, next int64) {
		r.start, r.next = start, next
		close(r.started)
	}))
	go func() {
		defer close(r.done)
		r.err = b.ReadPartition(ctx, topic, p, h, opts...)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

func (r *reading) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-r.started:
	case <-r.done:
		t.Fatalf("ReadPartition returned before Started: %v", r.err)
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for Started")
	}
}

func (r *reading) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(waitTimeout):
		t.Fatalf("ReadPartition did not return after its context ended")
	}
	if r.err != nil {
		t.Fatalf("ReadPartition = %v, want nil", r.err)
	}
}

// TestReadManyNodes runs 200 nodes on one bus, as the node SDK's tests do:
// each reads, from the newest offset, the partition its id maps to on four
// topics, and must see every message keyed by its id. The nodes of one
// partition share one partition consumer, which goes when its last reader
// does; nodes that come back afterwards read again.
func TestReadManyNodes(t *testing.T) {
	const nodes = 200
	c := kafkatest.Start(t)
	b := c.NewBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	topics := []string{"nodes.a", "nodes.b", "nodes.c", "nodes.d"}
	n, err := b.PartitionCount(ctx, topics[0])
	if err != nil {
		t.Fatal(err)
	}
	if n != kafka.DefaultPartitions {
		t.Fatalf("PartitionCount = %d, want %d", n, kafka.DefaultPartitions)
	}

	for round := range 2 {
		logs := make([]*log, nodes)
		var readers []*reading
		for i := range nodes {
			id := fmt.Appendf(nil, "node-%d", i)
			logs[i] = &log{}
			for _, topic := range topics {
				readers = append(readers, read(t, b, topic, bus.KeyPartition(id, n), logs[i].handler()))
			}
		}
		for _, r := range readers {
			r.waitStarted(t)
		}
		shared, inFeeds, _ := b.ReadFeeds()
		if inFeeds != nodes*len(topics) || shared > int(n)*len(topics) {
			t.Fatalf("round %d: %d shared feeds with %d readers, want at most %d feeds with %d readers", round, shared, inFeeds, int(n)*len(topics), nodes*len(topics))
		}
		var msgs []*bus.Message
		for i := range nodes {
			for _, topic := range topics {
				msgs = append(msgs, &bus.Message{Topic: topic, Key: fmt.Appendf(nil, "node-%d", i), Value: fmt.Appendf(nil, "%d/%s/%d", round, topic, i)})
			}
		}
		if err := b.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		for i := range nodes {
			own := func() int {
				k := 0
				for _, m := range logs[i].all() {
					if string(m.Key) == fmt.Sprintf("node-%d", i) {
						k++
					}
				}
				return k
			}
			eventually(t, fmt.Sprintf("round %d: node %d's messages", round, i), func() bool { return own() >= len(topics) })
			if k := own(); k != len(topics) {
				t.Errorf("round %d: node %d handed %d of its messages, want %d", round, i, k, len(topics))
			}
			for _, m := range logs[i].all() {
				if want := bus.KeyPartition(fmt.Appendf(nil, "node-%d", i), n); m.Partition != want {
					t.Errorf("node %d handed a message of partition %d, it reads %d", i, m.Partition, want)
				}
			}
		}
		for _, r := range readers {
			r.stop(t)
		}
		eventually(t, "every feed to stop and end", func() bool {
			shared, inFeeds, retired := b.ReadFeeds()
			return shared == 0 && inFeeds == 0 && retired == 0
		})
	}
}

// TestReadSkipsDeletedRecords holds a reader back while the records after
// what it buffered are deleted: its partition consumer is out of range, goes
// on from the oldest retained offset, and the reader with it.
func TestReadSkipsDeletedRecords(t *testing.T) {
	c := kafkatest.Start(t)
	b := c.NewBus(t, func(cfg *kafka.Config) {
		cfg.Sarama = func(sc *sarama.Config) {
			kafkatest.Tune(sc)
			// Small fetches and buffers, so that the partition consumer is
			// far behind the log's end while the reader is held.
			sc.Consumer.Fetch.Default = 512
			sc.Consumer.Fetch.Max = 512
			sc.ChannelBufferSize = 2
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic, total, deleteTo = "deleted", 1000, 900
	n, err := b.PartitionCount(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	key := keyFor(0, n)

	hold := make(chan struct{})
	var got log
	h := func(ctx context.Context, m *bus.Message) error {
		got.add(m)
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return nil
	}
	r := read(t, b, topic, 0, h)
	r.waitStarted(t)
	for i := range total {
		// One call per message: one record batch each, so that fetches
		// stay small.
		if err := b.Publish(ctx, &bus.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	kafkatest.Tune(sc)
	admin, err := sarama.NewClusterAdmin(c.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	if err := admin.DeleteRecords(topic, map[int32]int64{0: deleteTo}); err != nil {
		t.Fatal(err)
	}
	close(hold)
	eventually(t, "the last message", func() bool {
		all := got.all()
		return len(all) > 0 && all[len(all)-1].Offset == total-1
	})
	all := got.all()
	last := int64(-1)
	gap := false
	for _, m := range all {
		if m.Offset <= last {
			t.Fatalf("offset %d handed after %d", m.Offset, last)
		}
		if last >= 0 && m.Offset != last+1 {
			gap = true
			if m.Offset != deleteTo {
				t.Errorf("after offset %d the reader went on at %d, want the oldest retained %d", last, m.Offset, deleteTo)
			}
		}
		last = m.Offset
	}
	if !gap || len(all) >= total {
		t.Errorf("the reader handed %d messages without a gap: the deleted records did not make it skip", len(all))
	}

	// A reader from the oldest starts at the new log start.
	old := read(t, b, topic, 0, func(context.Context, *bus.Message) error { return nil }, bus.ReadFromOldest())
	old.waitStarted(t)
	if old.start != deleteTo || old.next != total {
		t.Errorf("Started(%d, %d), want (%d, %d)", old.start, old.next, deleteTo, total)
	}
	r.stop(t)
	old.stop(t)
}

// TestReadErrors checks the errors of ReadPartition and PartitionCount.
func TestReadErrors(t *testing.T) {
	c := kafkatest.Start(t)
	b := c.NewBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	nop := func(context.Context, *bus.Message) error { return nil }
	if err := b.ReadPartition(ctx, "errs", kafka.DefaultPartitions, nop); err == nil {
		t.Errorf("ReadPartition of partition %d of %d = nil, want an error", kafka.DefaultPartitions, kafka.DefaultPartitions)
	}
	if err := b.ReadPartition(ctx, "errs", 0, nil); err == nil {
		t.Errorf("ReadPartition with a nil handler = nil, want an error")
	}

	// Without CreateTopics a missing topic is an error, and is not created.
	nb := c.NewBus(t, func(cfg *kafka.Config) { cfg.CreateTopics = false })
	if _, err := nb.PartitionCount(ctx, "missing"); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("PartitionCount of a missing topic = %v, want sarama.ErrUnknownTopicOrPartition", err)
	}
	if err := nb.ReadPartition(ctx, "missing", 0, nop); err == nil {
		t.Errorf("ReadPartition of a missing topic = nil, want an error")
	}
}

// TestReadCloseLeavesNoGoroutine closes a bus with readers of every kind,
// one of them busy, and checks that they all return bus.ErrClosed and leave
// no goroutine behind.
func TestReadCloseLeavesNoGoroutine(t *testing.T) {
	c := kafkatest.Start(t)
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, leakOptions...)
	b, err := kafka.New(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic = "leak.read"
	n, err := b.PartitionCount(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan struct{})
	var once sync.Once
	var ended atomic.Bool
	var readers []*reading
	readers = append(readers, read(t, b, topic, 0, func(ctx context.Context, _ *bus.Message) error {
		once.Do(func() { close(busy) })
		<-ctx.Done()
		ended.Store(true)
		return ctx.Err()
	}))
	for i := range 20 {
		var o []bus.ReadOption
		if i%4 == 0 {
			o = append(o, bus.ReadFromOldest())
		}
		readers = append(readers, read(t, b, topic, int32(i)%n, func(context.Context, *bus.Message) error { return nil }, o...))
	}
	for _, r := range readers {
		r.waitStarted(t)
	}
	if err := b.Publish(ctx, &bus.Message{Topic: topic, Key: keyFor(0, n), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	<-busy
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Errorf("Close returned before the busy handler did")
	}
	for i, r := range readers {
		<-r.done
		if !errors.Is(r.err, bus.ErrClosed) {
			t.Errorf("reader %d returned %v after Close, want bus.ErrClosed", i, r.err)
		}
	}
	goleak.VerifyNone(t, opts...)
}
