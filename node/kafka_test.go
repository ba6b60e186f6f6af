package node_test

import (
	"testing"

	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// TestLifecycleKafka: 200 nodes through package node against the
// registration Runtime, on Kafka's wire protocol (kfake) spoken by sarama;
// the nodes share one bus, so each partition has one consumer for all the
// nodes that read it.
func TestLifecycleKafka(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 40
	}
	c := kafkatest.Start(t)
	w := newWorld(t, c.NewBus(t), false)
	lifecycle(t, w, n)
}
