package kafka_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// leakOptions are the goroutines that a leak check after closing a bus
// ignores. Neither kind belongs to the bus:
//
//   - go-metrics' meter arbiter: sarama registers meters with
//     github.com/rcrowley/go-metrics, whose first meter starts one
//     package-level ticker goroutine that never stops (meter.go, NewMeter).
//     It is global to the process.
//   - kfake's connection goroutines: the fake broker serves each client
//     connection with a read loop, a write loop and one short-lived reader
//     goroutine per request. They are the broker's, live until the cluster
//     closes, and a request of any other client still connected (such as
//     the suite's idle second bus refreshing metadata) starts a new one. A
//     connection that the bus under test failed to close still shows up on
//     the client side, as sarama's (*Broker).responseReceiver, which is not
//     ignored.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
	goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read.func1"),
	goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write"),
}

func TestConformance(t *testing.T) {
	c := kafkatest.Start(t)
	bustest.Run(t, bustest.Features{
		Partitions:      kafka.DefaultPartitions,
		BatchSubscriber: true,
		TimeScale:       3,
		// Kafka's default message.max.bytes (1048588) limits a record
		// batch, so a 1 MiB value with its record overhead does not fit;
		// 1,000,000 bytes is the largest round value that does.
		LargeMessageBytes: 1_000_000,
		// The bus's limit is that of kfake's brokers (Kafka's default
		// message.max.bytes) less a batch header: the size-limit cases
		// publish and dead-letter messages of about 1 MiB.
		SizeLimited: true,
		LeakOptions: leakOptions,
	}, func(t *testing.T) bus.EventBus { return connected(t, c.NewBus(t)) })
}

// connected makes b open a connection to every broker, by publishing one
// message to each partition of a topic whose partition leaders are spread
// over all brokers, and returns it.
//
// A sarama client otherwise connects to brokers lazily, also in the
// background (its periodic metadata refresh picks the least loaded broker,
// connected or not). The suite's CloseWhileBusy case snapshots goroutines
// while the case's other, idle bus is alive: a connection that idle bus
// opens later would look like a leak of the bus under test.
func connected(t *testing.T, b *kafka.Bus) *kafka.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var msgs []*bus.Message
	for p := range int32(kafka.DefaultPartitions) {
		msgs = append(msgs, &bus.Message{Topic: "conformance.warmup", Key: keyFor(p, kafka.DefaultPartitions), Value: []byte("warm")})
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatalf("warm-up publish: %v", err)
	}
	return b
}
