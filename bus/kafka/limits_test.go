package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// brokerLimit is the message.max.bytes of the small-limit cluster.
const brokerLimit = 16384

// startSmallLimit starts a cluster whose brokers accept record batches of
// at most brokerLimit bytes.
func startSmallLimit(t *testing.T) *kafkatest.Cluster {
	return kafkatest.Start(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(brokerLimit)}))
}

// ofSize returns a message for topic with key and headers whose value makes
// bus.MessageSize of it exactly size.
func ofSize(t *testing.T, topic string, key []byte, headers bus.Headers, size int) *bus.Message {
	t.Helper()
	m := &bus.Message{Topic: topic, Key: key, Headers: headers}
	n := size - bus.MessageSize(m)
	if n < 0 {
		t.Fatalf("size %d is too small for the key and headers", size)
	}
	m.Value = bytes.Repeat([]byte("v"), n)
	return m
}

// TestBrokerLimit publishes messages at and over the limit that the bus
// derives from the brokers' message.max.bytes: everything the bus accepts,
// the brokers accept, and what it refuses never reaches them.
func TestBrokerLimit(t *testing.T) {
	c := startSmallLimit(t)
	b := c.NewBus(t, func(cfg *kafka.Config) { cfg.BrokerMaxMessageBytes = brokerLimit })
	limit := b.MaxMessageBytes()
	if limit != brokerLimit-kafka.RecordBatchOverhead {
		t.Fatalf("MaxMessageBytes = %d, want %d", limit, brokerLimit-kafka.RecordBatchOverhead)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic = "broker-limit"

	// The record's varints are narrower than MessageSize counts them, the
	// more so with many headers: each of these batches fits.
	many := bus.Headers{}
	for i := range 200 {
		many[fmt.Sprintf("h%d", i)] = "x"
	}
	atLimit := []*bus.Message{
		ofSize(t, topic, []byte("k"), nil, limit),
		ofSize(t, topic, nil, bus.Headers{"content_type": "application/json"}, limit),
		ofSize(t, topic, []byte("k"), many, limit),
	}
	for i, m := range atLimit {
		if err := b.Publish(ctx, m); err != nil {
			t.Fatalf("message %d at MaxMessageBytes: %v", i, err)
		}
	}
	// Several at once share produce requests but not over-large batches.
	if err := b.Publish(ctx, ofSize(t, topic, []byte("k"), nil, limit/2), ofSize(t, topic, []byte("k"), nil, limit/2), ofSize(t, topic, []byte("k"), nil, limit/2)); err != nil {
		t.Fatalf("three messages of half the limit on one partition: %v", err)
	}

	over := ofSize(t, topic, []byte("k"), nil, limit+1)
	err := b.Publish(ctx, over)
	if !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("Publish of MaxMessageBytes+1 = %v, want ErrMessageTooLarge", err)
	}
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Errorf("the oversized message reached the broker: %v", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(limit+1)) || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
		t.Errorf("error %q does not give the size and the limit", err)
	}
}

// TestBrokerRefusesTooLarge runs a bus that believes the brokers' limit is
// Kafka's default against brokers with a smaller one: the brokers' refusal
// wraps bus.ErrMessageTooLarge, and the bus publishes on afterwards.
func TestBrokerRefusesTooLarge(t *testing.T) {
	c := startSmallLimit(t)
	b := c.NewBus(t)
	if got := b.MaxMessageBytes(); got != kafka.DefaultBrokerMaxMessageBytes-kafka.RecordBatchOverhead {
		t.Fatalf("MaxMessageBytes = %d, want the default %d", got, kafka.DefaultBrokerMaxMessageBytes-kafka.RecordBatchOverhead)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic = "broker-refuses"
	key := []byte("k")
	if err := b.Publish(ctx, &bus.Message{Topic: topic, Key: key, Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := b.Publish(ctx, ofSize(t, topic, key, nil, 2*brokerLimit))
	if !errors.Is(err, bus.ErrMessageTooLarge) || !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Fatalf("Publish of a message the broker refuses = %v, want ErrMessageTooLarge and sarama.ErrMessageSizeTooLarge", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the refusal took %v: was it retried?", took)
	}
	// The idempotent producer goes on (sarama bumps its epoch), in order.
	if err := b.Publish(ctx, &bus.Message{Topic: topic, Key: key, Value: []byte("after")}); err != nil {
		t.Fatalf("Publish after a refused message: %v", err)
	}
	var got log
	subscribe(t, b, "refuses", []string{topic}, got.handler())
	eventually(t, "2 messages", func() bool { return got.len() >= 2 })
	var values []string
	for _, m := range got.all() {
		values = append(values, string(m.Value))
	}
	if !slices.Equal(values, []string{"before", "after"}) {
		t.Errorf("consumed %q, want before, after", values)
	}
}

// TestProducerLimit checks that a lower Producer.MaxMessageBytes from the
// escape hatch is the limit the bus reports and applies.
func TestProducerLimit(t *testing.T) {
	c := kafkatest.Start(t)
	b := c.NewBus(t, func(cfg *kafka.Config) {
		cfg.Sarama = func(sc *sarama.Config) {
			kafkatest.Tune(sc)
			sc.Producer.MaxMessageBytes = 4000
		}
	})
	if got := b.MaxMessageBytes(); got != 4000 {
		t.Fatalf("MaxMessageBytes = %d, want 4000 from Producer.MaxMessageBytes", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Publish(ctx, ofSize(t, "producer-limit", []byte("k"), nil, 4000)); err != nil {
		t.Fatalf("a message at the limit: %v", err)
	}
	if err := b.Publish(ctx, ofSize(t, "producer-limit", []byte("k"), nil, 4001)); !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("a message over the limit: %v, want ErrMessageTooLarge", err)
	}
}

// TestDeadLetterAtBrokerLimit dead-letters a message at the limit on
// brokers with a small message.max.bytes: the broker accepts the cut-down
// dead letter, and the partition moves on.
func TestDeadLetterAtBrokerLimit(t *testing.T) {
	c := startSmallLimit(t)
	b := c.NewBus(t, func(cfg *kafka.Config) { cfg.BrokerMaxMessageBytes = brokerLimit })
	limit := b.MaxMessageBytes()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic, dlq = "dlq-limit", "dlq-limit.dlq"
	key := []byte("k")
	bad := ofSize(t, topic, key, bus.Headers{"kind": "bad"}, limit)
	if err := b.Publish(ctx, bad, &bus.Message{Topic: topic, Key: key, Value: []byte("next"), Headers: bus.Headers{"kind": "next"}}); err != nil {
		t.Fatal(err)
	}
	var in, dead log
	subscribe(t, b, "dlq-limit", []string{topic}, func(_ context.Context, m *bus.Message) error {
		in.add(m)
		if m.Headers["kind"] == "bad" {
			return bus.NewContentError(errors.New("unhandled"))
		}
		return nil
	}, bus.WithDeadLetterTopic(dlq), bus.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	subscribe(t, b, "dlq-limit-reader", []string{dlq}, dead.handler())
	eventually(t, "the message after the one dead-lettered", func() bool {
		return slices.ContainsFunc(in.all(), func(m *bus.Message) bool { return m.Headers["kind"] == "next" })
	})
	eventually(t, "the dead letter", func() bool { return dead.len() >= 1 })
	if n := in.len(); n != 2 {
		t.Errorf("%d deliveries, want 2: the message at the limit was redelivered", n)
	}
	d := dead.all()[0]
	if d.Headers[bus.HeaderDLQValueTruncated] != "true" || d.Headers[bus.HeaderDLQOriginalSize] != strconv.Itoa(len(bad.Value)) {
		t.Errorf("dead letter headers %v: want the value marked truncated from %d bytes", d.Headers, len(bad.Value))
	}
	if !bytes.HasPrefix(bad.Value, d.Value) || bus.MessageSize(d) > limit {
		t.Errorf("dead letter of %d bytes (value %d): want a prefix within %d", bus.MessageSize(d), len(d.Value), limit)
	}
}
