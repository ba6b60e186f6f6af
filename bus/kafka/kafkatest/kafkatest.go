package kafkatest

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/registrar-go/registrar/bus/kafka"
)

// Defaults of [Start].
const (
	// DefaultBrokers is the number of brokers a cluster runs: enough that
	// partition leaders and the group coordinator are spread over brokers
	// as in production.
	DefaultBrokers = 3
	// DefaultPartitions is the partition count of topics created by
	// metadata requests (clients other than kafka.Bus, which creates its
	// topics with kafka.DefaultPartitions).
	DefaultPartitions = 12
)

// Cluster is a running in-process Kafka cluster.
type Cluster struct {
	fake  *kfake.Cluster
	addrs []string
}

// Start starts a cluster that closes when the test ends. It has
// [DefaultBrokers] brokers, allows topic auto-creation (with
// [DefaultPartitions] partitions) and group session timeouts down to 100ms;
// opts are applied after those defaults and override them.
func Start(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	all := append([]kfake.Opt{
		kfake.NumBrokers(DefaultBrokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(DefaultPartitions),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)
	fake, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("kafkatest: start cluster: %v", err)
	}
	t.Cleanup(fake.Close)
	return &Cluster{fake: fake, addrs: fake.ListenAddrs()}
}

// Addrs returns the brokers' addresses, host:port.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Fake returns the kfake cluster, for its control and fault-injection hooks.
func (c *Cluster) Fake() *kfake.Cluster { return c.fake }

// Config returns a [kafka.Config] for the cluster: its brokers, topic
// creation on first use (kafka.DefaultPartitions partitions), and the test
// timings of [Tune].
func (c *Cluster) Config() kafka.Config {
	return kafka.Config{
		Brokers:      c.Addrs(),
		ClientID:     "kafkatest",
		CreateTopics: true,
		Sarama:       Tune,
	}
}

// NewBus returns a bus on the cluster, built from [Cluster.Config] edited by
// the edit functions, and closes it when the test ends.
func (c *Cluster) NewBus(t testing.TB, edit ...func(*kafka.Config)) *kafka.Bus {
	t.Helper()
	cfg := c.Config()
	for _, e := range edit {
		e(&cfg)
	}
	b, err := kafka.New(cfg)
	if err != nil {
		t.Fatalf("kafkatest: new bus: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("kafkatest: close bus: %v", err)
		}
	})
	return b
}

// Tune sets sc's timings for tests on a loaded machine: fast group
// heartbeats and joins, fast metadata refreshes and retries, short fetch
// waits, yet session and rebalance timeouts long enough that a slow
// goroutine under -race does not cost a member its place.
func Tune(sc *sarama.Config) {
	sc.Metadata.RefreshFrequency = 500 * time.Millisecond
	sc.Metadata.Retry.Max = 20
	sc.Metadata.Retry.Backoff = 50 * time.Millisecond
	sc.Admin.Retry.Backoff = 50 * time.Millisecond
	sc.Consumer.Retry.Backoff = 50 * time.Millisecond
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	sc.Consumer.Group.Session.Timeout = 6 * time.Second
	sc.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	sc.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	sc.Consumer.Group.Rebalance.Retry.Max = 20
	sc.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	sc.Consumer.Offsets.Retry.Max = 10
}
