package kafka_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
)

// A bus on an in-process Kafka cluster: publish a keyed message, then
// consume it in a consumer group. In production, Brokers names the real
// cluster and topics exist already.
func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	b, err := kafka.New(kafka.Config{
		Brokers:      cluster.ListenAddrs(),
		CreateTopics: true, // 12 partitions each
	})
	if err != nil {
		panic(err)
	}
	defer func() { _ = b.Close() }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg := &bus.Message{Topic: "orders", Key: []byte("order-42"), Value: []byte("created")}
	if err := b.Publish(ctx, msg); err != nil {
		panic(err)
	}
	fmt.Printf("published to partition %d (KeyPartition: %d), offset %d\n",
		msg.Partition, bus.KeyPartition(msg.Key, kafka.DefaultPartitions), msg.Offset)

	err = b.Subscribe(ctx, "billing", []string{"orders"}, func(_ context.Context, m *bus.Message) error {
		fmt.Printf("billing got %s %s from partition %d\n", m.Key, m.Value, m.Partition)
		cancel() // one message is enough here
		return nil
	})
	fmt.Println("subscribe returned:", err)
	// Output:
	// published to partition 0 (KeyPartition: 0), offset 0
	// billing got order-42 created from partition 0
	// subscribe returned: <nil>
}
