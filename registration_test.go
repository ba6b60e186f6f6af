package registrar_test

import (
	"slices"
	"testing"
	"time"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestDefaultContractMatchesReducerDefaults: the embedded contract and the
// reducer's defaults name the same topics, event types, intents and
// durations, so neither drifts from the other.
func TestDefaultContractMatchesReducerDefaults(t *testing.T) {
	c := contract.Default()
	rc := registrar.ReducerConfig(c)
	r, err := registration.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Config()
	if got.Topics != registration.DefaultTopics() {
		t.Errorf("contract topics %+v\nreducer defaults %+v", got.Topics, registration.DefaultTopics())
	}
	if got.AckTimeout != registration.DefaultAckTimeout || got.LivenessInterval != registration.DefaultLivenessInterval ||
		got.LivenessWindow != registration.DefaultLivenessWindow || got.DisableConsul {
		t.Errorf("contract durations %+v", got)
	}
	if routed := c.RoutedIntents(); !slices.Equal(routed, slices.Sorted(slices.Values(registration.IntentTypes()))) {
		t.Errorf("contract routes %v, the reducer emits %v", routed, registration.IntentTypes())
	}
	inputs := c.InputTopics()
	for _, topic := range got.Topics.Inputs() {
		if !slices.Contains(inputs, topic) {
			t.Errorf("input topic %s is not subscribed by the contract", topic)
		}
	}
	if c.EventBus.DeadLetterTopic != registration.TopicDeadLetter {
		t.Errorf("dead-letter topic %s", c.EventBus.DeadLetterTopic)
	}
}

// TestReducerConfigFollowsTheContract: an edited contract renames topics,
// changes durations, and without Consul routes turns Consul intents off.
func TestReducerConfigFollowsTheContract(t *testing.T) {
	c := contract.Default()
	for i, e := range c.PublishedEvents {
		if e.EventType == registration.EventBecameActive {
			c.PublishedEvents[i].Topic = "acme.became-active"
			c.EventBus.PublishTopics = append(c.EventBus.PublishTopics, "acme.became-active")
		}
	}
	c.Timeouts.AckTimeout = contract.Duration(5 * time.Second)
	delete(c.IntentConsumption.IntentRoutingTable, registration.IntentConsulReg)
	rc := registrar.ReducerConfig(c)
	if rc.Topics.BecameActive != "acme.became-active" || rc.AckTimeout != 5*time.Second || !rc.DisableConsul {
		t.Fatalf("config %+v", rc)
	}
}

// TestReducerConfigSnapshots: event_bus.snapshot_topic names the snapshot
// topic, its absence the reducer's default, "none" turns snapshots off;
// SnapshotTopic says the same.
func TestReducerConfigSnapshots(t *testing.T) {
	c := contract.Default()
	if got := registrar.SnapshotTopic(c); got != registration.TopicSnapshot {
		t.Errorf("default contract: snapshot topic %q", got)
	}
	c.EventBus.SnapshotTopic = ""
	r, err := registration.New(registrar.ReducerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config(); got.Topics.Snapshot != registration.TopicSnapshot || got.DisableSnapshots || registrar.SnapshotTopic(c) != registration.TopicSnapshot {
		t.Errorf("absent snapshot_topic: %q, disabled %v", got.Topics.Snapshot, got.DisableSnapshots)
	}
	c.EventBus.SnapshotTopic = "acme.snapshots"
	if rc := registrar.ReducerConfig(c); rc.Topics.Snapshot != "acme.snapshots" || rc.DisableSnapshots || registrar.SnapshotTopic(c) != "acme.snapshots" {
		t.Errorf("named snapshot_topic: %+v", rc)
	}
	c.EventBus.SnapshotTopic = contract.NoSnapshots
	if rc := registrar.ReducerConfig(c); !rc.DisableSnapshots || registrar.SnapshotTopic(c) != "" {
		t.Errorf("snapshot_topic none: %+v, %q", rc, registrar.SnapshotTopic(c))
	}
}
