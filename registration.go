package registrar

import (
	"fmt"
	"slices"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// RegistrationRuntime is a Runtime of the registration workflow.
type RegistrationRuntime = Runtime[*registration.Projection]

// RegistrationConfig holds what only [NewRegistration] reads. The zero
// value takes everything from the contract.
type RegistrationConfig struct {
	// Reducer, if set, edits the registration reducer's configuration
	// after NewRegistration derived it from the contract (durations,
	// topics, Consul).
	Reducer func(*registration.Config)
	// SweepInterval is the time between the timeout sweeps run beside the
	// consumer; zero means the contract's sweep_interval.
	SweepInterval time.Duration
	// SweepLimit bounds the entities of each kind one sweep checks; zero
	// means [DefaultSweepLimit].
	SweepLimit int
	// NoSweeper runs no sweeper: timeouts then need a [Sweeper] run
	// elsewhere.
	NoSweeper bool
	// Reconciler, if set, brings an external registry in line with the
	// projections beside the consumer (the Consul reconciler of
	// effects/consul): a pass when Run starts, then one every
	// ReconcileInterval. It is [WithReconciler] with these two fields.
	Reconciler registration.Reconciler
	// ReconcileInterval is the time between reconciliation passes; zero
	// means [DefaultReconcileInterval].
	ReconcileInterval time.Duration
}

// NewRegistration returns a Runtime that runs the registration workflow of
// contract c (nil: [contract.Default]) on bus b, with state from store and
// effects from exec, and a timeout [Sweeper] beside it.
//
// The reducer's durations come from the contract's timeouts, its topics from
// the contract's consumed and published events, and Consul intents are
// emitted only if the contract routes consul.register; rc edits the result
// and sets the sweeper. The options are [New]'s, applied after the
// contract's; [WithClock] is also the sweeper's clock, and [WithLogger] its
// logger. rc.Reconciler, if set, runs beside the sweeper. New's checks apply: every routed intent type needs an effect in
// exec, unless the store owns it.
func NewRegistration(c *contract.Contract, b bus.EventBus, store registration.Store, exec *intent.Executor, rc RegistrationConfig, opts ...Option) (*RegistrationRuntime, error) {
	if c == nil {
		c = contract.Default()
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("registrar: new registration runtime: %w", err)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	redCfg := ReducerConfig(c)
	if rc.Reducer != nil {
		rc.Reducer(&redCfg)
	}
	red, err := registration.New(redCfg)
	if err != nil {
		return nil, fmt.Errorf("registrar: new registration runtime: %w", err)
	}
	redCfg = red.Config()
	all := []Option{WithContract(c)}
	interval := rc.SweepInterval
	if interval == 0 {
		interval = c.Timeouts.SweepInterval.Duration()
	}
	if !rc.NoSweeper && store != nil && b != nil {
		sw, err := NewSweeper(store, b, SweeperConfig{
			Topic: redCfg.Topics.TimeoutCheck, Interval: interval, Limit: rc.SweepLimit, Clock: cfg.clock, Logger: cfg.logger,
		})
		if err != nil {
			return nil, fmt.Errorf("registrar: new registration runtime: %w", err)
		}
		all = append(all, WithTask("sweeper", sw.Run))
	}
	if rc.Reconciler != nil {
		all = append(all, WithReconciler(rc.Reconciler, rc.ReconcileInterval))
	}
	return New[*registration.Projection](b, red, store, exec, append(all, opts...)...)
}

// SnapshotTopic returns the topic a registration runtime built from c
// publishes its snapshots to (event_bus.snapshot_topic, else
// [registration.TopicSnapshot]), or "" when c turns snapshots off. The topic
// should be compacted: a Kafka bus that creates its topics does so when the
// topic is in its kafka.Config.CompactTopics.
func SnapshotTopic(c *contract.Contract) string {
	topic, on := c.Snapshots()
	switch {
	case !on:
		return ""
	case topic == "":
		return registration.TopicSnapshot
	}
	return topic
}

// ReducerConfig derives the registration reducer's configuration from c: its
// timeouts, the topics of its consumed and published events (by event type),
// the snapshot topic (event_bus.snapshot_topic: empty takes the reducer's
// default, "none" disables snapshots) and whether it routes Consul intents.
func ReducerConfig(c *contract.Contract) registration.Config {
	rc := registration.Config{
		AckTimeout:       c.Timeouts.AckTimeout.Duration(),
		LivenessInterval: c.Timeouts.LivenessInterval.Duration(),
		LivenessWindow:   c.Timeouts.LivenessWindow.Duration(),
		DisableConsul:    !slices.Contains(c.RoutedIntents(), registration.IntentConsulReg),
	}
	topic, on := c.Snapshots()
	rc.Topics.Snapshot, rc.DisableSnapshots = topic, !on
	consumed := map[string]*string{
		registration.EventTypeIntrospection: &rc.Topics.Introspection,
		registration.EventTypeAck:           &rc.Topics.Ack,
		registration.EventTypeHeartbeat:     &rc.Topics.Heartbeat,
		registration.EventTypeTimeoutCheck:  &rc.Topics.TimeoutCheck,
		registration.EventTypeShutdown:      &rc.Topics.Shutdown,
	}
	for _, e := range c.ConsumedEvents {
		if dst, ok := consumed[e.EventType]; ok {
			*dst = e.Topic
		}
	}
	published := map[string]*string{
		registration.EventInitiated:       &rc.Topics.Initiated,
		registration.EventAccepted:        &rc.Topics.Accepted,
		registration.EventAckReceived:     &rc.Topics.AckReceived,
		registration.EventBecameActive:    &rc.Topics.BecameActive,
		registration.EventAckTimedOut:     &rc.Topics.AckTimedOut,
		registration.EventLivenessExpired: &rc.Topics.LivenessExpired,
	}
	for typ, dst := range published {
		if t, ok := c.TopicFor(typ); ok {
			*dst = t
		}
	}
	return rc
}
