package kafka_test

import (
	"context"
	"testing"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// TestCreateTopicsCompact: the topics of Config.CompactTopics are created
// with cleanup.policy=compact, the others with the brokers' default, as
// DescribeConfigs reports them.
func TestCreateTopicsCompact(t *testing.T) {
	c := kafkatest.Start(t)
	b := c.NewBus(t, func(cfg *kafka.Config) { cfg.CompactTopics = []string{"snapshots"} })
	ctx := context.Background()
	for _, topic := range []string{"snapshots", "events"} {
		if err := b.Publish(ctx, &bus.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	sc := sarama.NewConfig()
	kafkatest.Tune(sc)
	admin, err := sarama.NewClusterAdmin(c.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	policy := func(topic string) string {
		t.Helper()
		res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"cleanup.policy"}}},
			sarama.DescribeConfigsOptions{})
		if err != nil || len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
			t.Fatalf("describe %s: %v %+v", topic, err, res)
		}
		for _, e := range res[0].Configs {
			if e.Name == "cleanup.policy" {
				return e.Value
			}
		}
		return ""
	}
	if got := policy("snapshots"); got != "compact" {
		t.Errorf("snapshots: cleanup.policy %q, want compact", got)
	}
	if got := policy("events"); got == "compact" {
		t.Errorf("events: cleanup.policy %q, want the default", got)
	}
}

func TestConfigCompactTopicEmpty(t *testing.T) {
	cfg := kafka.Config{Brokers: []string{"localhost:9092"}, CompactTopics: []string{"a", ""}}
	if err := cfg.Validate(); err == nil {
		t.Error("an empty compact topic is accepted")
	}
}
