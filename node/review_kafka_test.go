package node_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestReviewKafkaFetchFault: on Kafka, while a paused node's registration
// expires, the brokers fail every fetch for a second and the node's
// partitions move to another leader; once the brokers are back the node
// learns of its NodeLivenessExpired (the shared feed resumes at its offset)
// and, resumed, registers again. (Held up.)
func TestReviewKafkaFetchFault(t *testing.T) {
	c := kafkatest.Start(t)
	w := newWorld(t, c.NewBus(t), false)
	nd := w.start(1)[0]
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	nd.Pause()
	w.settle()
	var failing atomic.Bool
	var faults atomic.Int64
	failing.Store(true)
	fake := c.Fake()
	fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if failing.Load() {
			faults.Add(1)
			return nil, errors.New("injected fetch fault"), true
		}
		return nil, nil, false
	})
	key := []byte(nd.Info().ID.String())
	for _, topic := range []string{registration.TopicAccepted, registration.TopicBecameActive,
		registration.TopicAckTimedOut, registration.TopicLivenessExpired, registration.TopicRegistryRequest} {
		p := bus.KeyPartition(key, kafkatest.DefaultPartitions)
		leader := fake.LeaderFor(topic, p)
		if err := fake.MoveTopicPartition(topic, p, (leader+1)%kafkatest.DefaultBrokers); err != nil {
			t.Logf("move %s/%d: %v", topic, p, err)
		}
	}
	for range (registration.DefaultLivenessWindow + 15*time.Second) / (5 * time.Second) {
		w.clock.Advance(5 * time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	failing.Store(false)
	if faults.Load() == 0 {
		t.Fatal("no fetch failed")
	}
	t.Logf("%d fetches failed", faults.Load())
	w.waitFor("the node expired, after the fault", all([]*node.Node{nd}, node.StateExpired))
	nd.Resume()
	w.waitFor("active again", all([]*node.Node{nd}, node.StateActive))
}
