package contract

import (
	"maps"
	"slices"

	"github.com/registrar-go/registrar/bus"
)

// Contract declares what a node consumes and publishes, which intent types
// it routes to which effect, and its timeouts. Its YAML form uses the
// snake_case names in the field tags.
//
// A Contract comes from [Parse], [Load] or [Default], or is built in code;
// either way [Contract.Validate] checks it. A parsed Contract remembers its
// source so that validation errors carry file, line and column. Editing a
// parsed Contract is fine: an error about a value that no longer matches the
// source is reported without a position.
type Contract struct {
	// Name names the node; it is required, and it is the default consumer
	// group and the envelopes' source tool.
	Name string `yaml:"name"`
	// ContractVersion is the version of this contract. In YAML it is a
	// semantic version string, "1.2.3" or "1.2.3-rc.1+build.5" (see
	// [bus.ParseVersion]), or a {major, minor, patch} mapping, the form ONEX
	// writes, with optional prerelease and build keys, each a dot-separated
	// string or a list of identifiers ([rc, 1]).
	ContractVersion bus.Version `yaml:"contract_version"`
	// NodeVersion is the version of the node that implements the contract;
	// free-form, informational.
	NodeVersion string `yaml:"node_version,omitempty"`
	// Description says what the node does; informational.
	Description string `yaml:"description,omitempty"`
	// EventBus names the topics and the consumer group.
	EventBus EventBus `yaml:"event_bus"`
	// ConsumedEvents says which event type arrives on which input topic.
	ConsumedEvents []EventRoute `yaml:"consumed_events"`
	// PublishedEvents says which output topic each event type goes to.
	PublishedEvents []EventRoute `yaml:"published_events"`
	// IntentConsumption declares the intent types the node executes and the
	// effect that executes each.
	IntentConsumption IntentConsumption `yaml:"intent_consumption"`
	// Timeouts holds the workflow's durations.
	Timeouts Timeouts `yaml:"timeouts"`

	// src is the parsed YAML, for error positions; nil for a contract built
	// in code. It is never modified, so copies share it.
	src *source
}

// EventBus names the topics a node reads and writes.
type EventBus struct {
	// SubscribeTopics are the input topics; at least one, no duplicates.
	SubscribeTopics []string `yaml:"subscribe_topics"`
	// PublishTopics are the output topics; none of them may also be an
	// input topic. A topic may be input-only: the timeout sweeper publishes
	// timeout checks to an input topic that the node does not list here.
	PublishTopics []string `yaml:"publish_topics"`
	// DeadLetterTopic receives messages that can never be processed; it is
	// required and must be neither an input nor an output topic.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// ConsumerGroup is the consumer group of the node's instances; empty
	// means the contract's Name (see [Contract.Group]).
	ConsumerGroup string `yaml:"consumer_group,omitempty"`
	// SnapshotTopic is the compacted topic the node publishes its
	// entities' snapshots to, keyed by entity id; empty means the
	// consumer's default (for the registration reducer ONEX's
	// onex.snapshot.platform.registration-snapshots.v1), [NoSnapshots]
	// publishes none. It is an output topic, so it must not be an input
	// topic, the dead-letter topic or the topic of a published event type
	// (compaction would drop those events); it may be listed in
	// PublishTopics.
	SnapshotTopic string `yaml:"snapshot_topic,omitempty"`
}

// NoSnapshots is the value of [EventBus.SnapshotTopic] that turns snapshots
// off.
const NoSnapshots = "none"

// Snapshots returns the snapshot topic and whether snapshots are on: off
// when EventBus.SnapshotTopic is [NoSnapshots]; an empty topic with true
// means the consumer's default topic.
func (c *Contract) Snapshots() (topic string, on bool) {
	if c.EventBus.SnapshotTopic == NoSnapshots {
		return "", false
	}
	return c.EventBus.SnapshotTopic, true
}

// EventRoute pairs an event type with its topic.
type EventRoute struct {
	// Topic is the topic the events travel on.
	Topic string `yaml:"topic"`
	// EventType is the envelope's event_type, e.g. NodeBecameActive.
	EventType string `yaml:"event_type"`
}

// IntentConsumption declares which intent types a node executes and which
// effect executes each. The two must agree: every subscribed type is routed
// and every routed type is subscribed.
type IntentConsumption struct {
	// SubscribedIntents lists the intent types, e.g. consul.register.
	SubscribedIntents []string `yaml:"subscribed_intents"`
	// IntentRoutingTable maps each intent type to the name of the effect
	// that executes it. The runtime checks at start-up that every routed
	// type has an effect registered.
	IntentRoutingTable map[string]string `yaml:"intent_routing_table"`
}

// Timeouts holds the durations of the registration workflow. A zero value
// means the consumer's default: for the registration reducer 30s, 60s and
// 90s, for the sweeper one second. Negative values are invalid.
// LivenessWindow may be shorter than LivenessInterval.
type Timeouts struct {
	// AckTimeout is how long a registration waits for its ack.
	AckTimeout Duration `yaml:"ack_timeout"`
	// LivenessInterval is the liveness deadline after activation.
	LivenessInterval Duration `yaml:"liveness_interval"`
	// LivenessWindow is the liveness deadline after each heartbeat.
	LivenessWindow Duration `yaml:"liveness_window"`
	// SweepInterval is the time between two scans for overdue deadlines.
	SweepInterval Duration `yaml:"sweep_interval"`
}

// RoutedIntents returns the intent types of the routing table, sorted.
func (c *Contract) RoutedIntents() []string {
	return slices.Sorted(maps.Keys(c.IntentConsumption.IntentRoutingTable))
}

// InputTopics returns a copy of the subscribe topics.
func (c *Contract) InputTopics() []string {
	return slices.Clone(c.EventBus.SubscribeTopics)
}

// TopicFor returns the topic that published_events gives for eventType, and
// whether there is one.
func (c *Contract) TopicFor(eventType string) (string, bool) {
	for _, r := range c.PublishedEvents {
		if r.EventType == eventType {
			return r.Topic, true
		}
	}
	return "", false
}

// EventTypeOf returns the event type that consumed_events gives for topic,
// and whether there is one.
func (c *Contract) EventTypeOf(topic string) (string, bool) {
	for _, r := range c.ConsumedEvents {
		if r.Topic == topic {
			return r.EventType, true
		}
	}
	return "", false
}

// Group returns the consumer group: EventBus.ConsumerGroup, or Name when
// that is empty.
func (c *Contract) Group() string {
	if c.EventBus.ConsumerGroup != "" {
		return c.EventBus.ConsumerGroup
	}
	return c.Name
}

// Clone returns a deep copy of c that shares no slice or map with it; nil
// for nil.
func (c *Contract) Clone() *Contract {
	if c == nil {
		return nil
	}
	d := *c
	d.EventBus.SubscribeTopics = slices.Clone(c.EventBus.SubscribeTopics)
	d.EventBus.PublishTopics = slices.Clone(c.EventBus.PublishTopics)
	d.ConsumedEvents = slices.Clone(c.ConsumedEvents)
	d.PublishedEvents = slices.Clone(c.PublishedEvents)
	d.IntentConsumption.SubscribedIntents = slices.Clone(c.IntentConsumption.SubscribedIntents)
	d.IntentConsumption.IntentRoutingTable = maps.Clone(c.IntentConsumption.IntentRoutingTable)
	return &d
}
