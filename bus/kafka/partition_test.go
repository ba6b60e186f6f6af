package kafka_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// TestKeyPartition checks that bus.KeyPartition, the bus and franz-go (whose
// default partitioner is the Java client's) agree on where a key lands.
func TestKeyPartition(t *testing.T) {
	const keys = 200
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	kcl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()

	for _, n := range []int32{1, 3, 12, 30} {
		t.Run(fmt.Sprintf("partitions=%d", n), func(t *testing.T) {
			b := c.NewBus(t, func(cfg *kafka.Config) { cfg.Partitions = n })
			topic := fmt.Sprintf("keys-%d", n)
			var msgs []*bus.Message
			for i := range keys {
				msgs = append(msgs, &bus.Message{Topic: topic, Key: fmt.Appendf(nil, "node-%d-%x", i, i*7919), Value: fmt.Appendf(nil, "%d", i)})
			}
			if err := b.Publish(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if want := bus.KeyPartition(m.Key, n); m.Partition != want {
					t.Errorf("key %q: Publish put it on partition %d, KeyPartition says %d", m.Key, m.Partition, want)
				}
			}

			// Where the broker has it: a consumer finds each key on that
			// partition.
			var got log
			r := subscribe(t, b, "keys", []string{topic}, got.handler())
			eventually(t, "every message", func() bool { return got.len() >= keys })
			r.stop(t)
			for _, m := range got.all() {
				if want := bus.KeyPartition(m.Key, n); m.Partition != want {
					t.Errorf("key %q found on partition %d, KeyPartition says %d", m.Key, m.Partition, want)
				}
			}

			// franz-go, partitioning as the Java client does, agrees.
			for _, m := range msgs[:50] {
				rec := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value}
				if err := kcl.ProduceSync(ctx, rec).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if rec.Partition != m.Partition {
					t.Errorf("key %q: franz-go put it on partition %d, the bus on %d", m.Key, rec.Partition, m.Partition)
				}
			}
		})
	}
}
