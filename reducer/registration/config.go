package registration

import (
	"errors"
	"fmt"
	"time"
)

// Default durations of the registration workflow.
const (
	// DefaultAckTimeout is [Config.AckTimeout]'s default.
	DefaultAckTimeout = 30 * time.Second
	// DefaultLivenessInterval is [Config.LivenessInterval]'s default.
	DefaultLivenessInterval = 60 * time.Second
	// DefaultLivenessWindow is [Config.LivenessWindow]'s default.
	DefaultLivenessWindow = 90 * time.Second
)

// MaxDuration is the longest duration [Config.Validate] accepts for
// AckTimeout, LivenessInterval, LivenessWindow and ConsulTTL: ten years of
// 365 days. A longer one is a unit mistake, not a timeout; and with it, a
// deadline computed from a decoded time (at most bus.MaxTime) stays far
// from the last time encoding/json can marshal.
const MaxDuration = 10 * 365 * 24 * time.Hour

// Default topics, as the ONEX services name them.
const (
	TopicIntrospection   = "onex.evt.platform.node-introspection.v1"
	TopicAck             = "onex.cmd.platform.node-registration-acked.v1"
	TopicHeartbeat       = "onex.evt.platform.node-heartbeat.v1"
	TopicTimeoutCheck    = "onex.cmd.platform.node-registration-timeout-check.v1"
	TopicInitiated       = "onex.evt.platform.node-registration-initiated.v1"
	TopicAccepted        = "onex.evt.platform.node-registration-accepted.v1"
	TopicAckReceived     = "onex.evt.platform.node-registration-ack-received.v1"
	TopicBecameActive    = "onex.evt.platform.node-became-active.v1"
	TopicAckTimedOut     = "onex.evt.platform.node-registration-ack-timed-out.v1"
	TopicLivenessExpired = "onex.evt.platform.node-liveness-expired.v1"
	TopicDeadLetter      = "onex.dlq.platform.registration.v1"
	// TopicShutdown is where nodes announce their graceful shutdown
	// (ModelNodeShutdownEvent). The ONEX platform topics name no shutdown
	// topic; this is the one ONEX's event streaming topic specification
	// (omnibase_infra docs/architecture/EVENT_STREAMING_TOPICS.md) gives
	// it, keyed by node id.
	TopicShutdown = "onex.node.shutdown.announced.v1"
)

// Topics names the topics of the workflow: inputs it decodes by topic, and
// the topic of each output event.
type Topics struct {
	Introspection, Ack, Heartbeat, TimeoutCheck                                  string
	Initiated, Accepted, AckReceived, BecameActive, AckTimedOut, LivenessExpired string
	// Shutdown is the input topic of the nodes' shutdown announcements
	// ([Shutdown]); default [TopicShutdown].
	Shutdown string
	// Snapshot is the compacted topic of the registrations' snapshots
	// ([Snapshot]); default [TopicSnapshot].
	Snapshot string
}

// DefaultTopics returns the ONEX topic names.
func DefaultTopics() Topics {
	return Topics{
		Introspection: TopicIntrospection, Ack: TopicAck, Heartbeat: TopicHeartbeat, TimeoutCheck: TopicTimeoutCheck,
		Initiated: TopicInitiated, Accepted: TopicAccepted, AckReceived: TopicAckReceived,
		BecameActive: TopicBecameActive, AckTimedOut: TopicAckTimedOut, LivenessExpired: TopicLivenessExpired,
		Shutdown: TopicShutdown, Snapshot: TopicSnapshot,
	}
}

// Inputs returns the input topics.
func (t Topics) Inputs() []string {
	return []string{t.Introspection, t.Ack, t.Heartbeat, t.TimeoutCheck, t.Shutdown}
}

// Config configures the registration [Reducer]. The zero value of a field
// means its default.
type Config struct {
	// AckTimeout is how long a registration waits for its ack; default
	// [DefaultAckTimeout], at most [MaxDuration].
	AckTimeout time.Duration
	// LivenessInterval is the liveness deadline after activation; default
	// [DefaultLivenessInterval], at most [MaxDuration].
	LivenessInterval time.Duration
	// LivenessWindow is the liveness deadline after a heartbeat; default
	// [DefaultLivenessWindow], at most [MaxDuration].
	LivenessWindow time.Duration
	// Domain is the projection's domain; default [DefaultDomain].
	Domain string
	// Topics names the topics; zero fields take [DefaultTopics]' names.
	Topics Topics
	// DisableConsul leaves out every consul.* intent.
	DisableConsul bool
	// DisableSnapshots leaves out the snapshot events (see [Snapshot]):
	// nothing is published to Topics.Snapshot.
	DisableSnapshots bool
	// ConsulTTL is the TTL of the Consul check; a consul.pass_ttl intent is
	// emitted when a heartbeat enters a new third of it. Default: the
	// liveness window. Negative: no TTL passes. At most [MaxDuration].
	ConsulTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.LivenessInterval == 0 {
		c.LivenessInterval = DefaultLivenessInterval
	}
	if c.LivenessWindow == 0 {
		c.LivenessWindow = DefaultLivenessWindow
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.ConsulTTL == 0 {
		c.ConsulTTL = c.LivenessWindow
	}
	d := DefaultTopics()
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&c.Topics.Introspection, d.Introspection}, {&c.Topics.Ack, d.Ack}, {&c.Topics.Heartbeat, d.Heartbeat},
		{&c.Topics.TimeoutCheck, d.TimeoutCheck}, {&c.Topics.Shutdown, d.Shutdown}, {&c.Topics.Initiated, d.Initiated}, {&c.Topics.Accepted, d.Accepted},
		{&c.Topics.AckReceived, d.AckReceived}, {&c.Topics.BecameActive, d.BecameActive},
		{&c.Topics.AckTimedOut, d.AckTimedOut}, {&c.Topics.LivenessExpired, d.LivenessExpired},
		{&c.Topics.Snapshot, d.Snapshot},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	return c
}

// Validate reports every problem of the configuration at once: a negative
// AckTimeout, LivenessInterval or LivenessWindow (zero means the default),
// one of them or ConsulTTL longer than [MaxDuration], an input topic
// named twice, and (unless DisableSnapshots) a snapshot topic that is an
// input topic or the topic of another output event (compaction would drop
// those events).
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name       string
		v          time.Duration
		negativeOK bool // ConsulTTL: negative turns TTL passes off
	}{
		{"AckTimeout", c.AckTimeout, false}, {"LivenessInterval", c.LivenessInterval, false},
		{"LivenessWindow", c.LivenessWindow, false}, {"ConsulTTL", c.ConsulTTL, true},
	} {
		switch {
		case d.v < 0 && !d.negativeOK:
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		case d.v > MaxDuration:
			errs = append(errs, fmt.Errorf("%s %v is longer than MaxDuration (%v)", d.name, d.v, MaxDuration))
		}
	}
	c = c.withDefaults()
	in := map[string]bool{}
	for _, t := range c.Topics.Inputs() {
		if in[t] {
			errs = append(errs, fmt.Errorf("input topic %q is named twice", t))
		}
		in[t] = true
	}
	if !c.DisableSnapshots {
		t := c.Topics
		if in[t.Snapshot] {
			errs = append(errs, fmt.Errorf("snapshot topic %q is also an input topic", t.Snapshot))
		}
		for _, o := range []string{t.Initiated, t.Accepted, t.AckReceived, t.BecameActive, t.AckTimedOut, t.LivenessExpired} {
			if o == t.Snapshot {
				errs = append(errs, fmt.Errorf("snapshot topic %q is also the topic of an output event: compaction would drop its events", t.Snapshot))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registrar/registration: invalid config: %w", err)
	}
	return nil
}
