package kafka_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// TestPublishLingers publishes on a bus with a long Linger while the broker
// holds the produce request: the request reaches the broker no sooner than
// Linger after the call (the linger reached the producer), Publish does not
// return while the broker holds it, and once it returns the message is
// stored at the offset Publish reported.
func TestPublishLingers(t *testing.T) {
	const linger = 300 * time.Millisecond
	const topic = "linger"
	c := kafkatest.Start(t)
	b := c.NewBus(t, func(cfg *kafka.Config) { cfg.Linger = linger })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Publish(ctx, &bus.Message{Topic: topic, Value: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}

	fake := c.Fake()
	release := make(chan struct{})
	var arrived atomic.Int64 // unix nanoseconds of the held request
	fake.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		pr, ok := req.(*kmsg.ProduceRequest)
		if !ok || len(pr.Topics) == 0 || pr.Topics[0].Topic != topic || !arrived.CompareAndSwap(0, time.Now().UnixNano()) {
			return nil, nil, false
		}
		fake.SleepControl(func() { <-release })
		return nil, nil, false
	})

	m := &bus.Message{Topic: topic, Key: []byte("k"), Value: []byte("durable")}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- b.Publish(ctx, m) }()

	eventually(t, "the produce request", func() bool { return arrived.Load() != 0 })
	if waited := time.Unix(0, arrived.Load()).Sub(start); waited < linger {
		t.Errorf("the produce request came %v after Publish, before the %v linger", waited, linger)
	}
	select {
	case err := <-done:
		t.Fatalf("Publish returned (%v) while the broker held its produce request", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Publish: %v", err)
	}

	client, err := sarama.NewClient(c.Addrs(), sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	next, err := client.GetOffset(topic, m.Partition, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	if next <= m.Offset {
		t.Errorf("after Publish returned offset %d of partition %d, the partition's next offset is %d: not stored", m.Offset, m.Partition, next)
	}
}
