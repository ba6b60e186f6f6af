package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// TestMessageSizeIsSaramas checks that bus.MessageSize counts a message as
// sarama counts the record the bus hands it (ProducerMessage.ByteSize for
// the v2 record format), which sarama compares with
// Producer.MaxMessageBytes.
func TestMessageSizeIsSaramas(t *testing.T) {
	for _, m := range []*bus.Message{
		{Topic: "t"},
		{Topic: "t", Key: []byte{}, Value: []byte{}},
		{Topic: "t", Key: []byte("entity-1"), Value: []byte(`{"a":1}`)},
		{Topic: "t", Value: []byte(strings.Repeat("v", 70000)), Headers: bus.Headers{"content_type": "application/json", "ünï": "çødé", "": ""}},
		{Topic: "t", Key: []byte("k"), Headers: bus.Headers{"a": strings.Repeat("h", 300), "b": "", "c": "x"}},
	} {
		c := newCall([]*bus.Message{m}, time.Now())
		if got, want := bus.MessageSize(m), c.recs[0].pm.ByteSize(2); got != want {
			t.Errorf("MessageSize = %d, sarama's ByteSize(2) = %d for key %d bytes, value %d bytes, %d headers",
				got, want, len(m.Key), len(m.Value), len(m.Headers))
		}
		c.release()
	}
}

func TestMaxMessageBytesConfig(t *testing.T) {
	for _, c := range []struct {
		name   string
		broker int
		hook   func(*sarama.Config)
		want   int
	}{
		{"defaults", 0, nil, DefaultBrokerMaxMessageBytes - RecordBatchOverhead},
		{"small broker limit", 16384, nil, 16384 - RecordBatchOverhead},
		{"lower producer limit kept", 16384, func(sc *sarama.Config) { sc.Producer.MaxMessageBytes = 4000 }, 4000},
		{"higher producer limit capped", 0, func(sc *sarama.Config) { sc.Producer.MaxMessageBytes = 50 << 20 }, DefaultBrokerMaxMessageBytes - RecordBatchOverhead},
		{"large broker limit, sarama's default", 10 << 20, nil, sarama.NewConfig().Producer.MaxMessageBytes},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Brokers: []string{"h:1"}, BrokerMaxMessageBytes: c.broker, Sarama: c.hook}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			sc, err := cfg.withDefaults().saramaConfig()
			if err != nil {
				t.Fatal(err)
			}
			if got := sc.Producer.MaxMessageBytes; got != c.want {
				t.Errorf("Producer.MaxMessageBytes = %d, want %d", got, c.want)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{sarama.ErrMessageSizeTooLarge, true},
		{&sarama.ProducerError{Msg: &sarama.ProducerMessage{}, Err: sarama.ErrMessageSizeTooLarge}, true},
		{sarama.ErrMessageSetSizeTooLarge, true},
		{sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 20 > 10"), true},
		{sarama.ErrNotEnoughReplicas, false},
		{sarama.ConfigurationError("Producing headers requires Kafka at least v0.11"), false},
	} {
		if got := tooLarge(c.err); got != c.want {
			t.Errorf("tooLarge(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
