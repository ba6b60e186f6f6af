package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Option configures a [Node]; see [New].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultJitter is the default heartbeat jitter: each interval is drawn
// from ±10% of the heartbeat interval, so that nodes started together do
// not heartbeat together.
const DefaultJitter = 0.1

// DefaultShutdownTimeout is how long [Node.Run] tries to publish the
// node's shutdown announcement once its context ended, unless
// [WithShutdownTimeout] sets another.
const DefaultShutdownTimeout = 5 * time.Second

// DefaultSourceTool is the envelopes' source_tool unless [WithSourceTool]
// names another.
const DefaultSourceTool = "registrar-node"

type config struct {
	contract        *contract.Contract
	topics          registration.Topics
	topicsSet       bool
	requestTopic    string
	requestTopicSet bool
	interval        time.Duration
	jitter          float64
	jitterSet       bool
	clock           Clock
	log             *slog.Logger
	activeOps       func() int
	onState         func(from, to State)
	sourceTool      string
	propagator      hooks.Propagator
	shutdownTimeout time.Duration // 0: no announcement
	shared          *SharedReads

	// From the contract (or the reducer's defaults).
	ackTimeout, livenessInterval, livenessWindow time.Duration
	errs                                         []error
}

// WithContract takes the topics and durations from c, as the orchestrator
// that runs c does (registrar.ReducerConfig): the node publishes to the
// topics of c's consumed events and reads those of its published events;
// the ack timeout bounds how long it waits for an answer, and the default
// heartbeat interval is a third of the shorter of c's liveness interval and
// window. Without it the node uses the default contract's (contract.Default).
func WithContract(c *contract.Contract) Option {
	return optionFunc(func(cfg *config) {
		if c == nil {
			cfg.errs = append(cfg.errs, errors.New("WithContract(nil)"))
			return
		}
		cfg.contract = c
	})
}

// WithTopics names the topics, replacing those of the contract; empty
// fields keep the contract's. Only Introspection, Ack, Heartbeat,
// Shutdown, Accepted, BecameActive, AckTimedOut and LivenessExpired are
// used.
func WithTopics(t registration.Topics) Option {
	return optionFunc(func(c *config) { c.topics, c.topicsSet = t, true })
}

// WithRegistryRequestTopic names the topic of registry requests
// (registration.TopicRegistryRequest by default); empty turns them off.
func WithRegistryRequestTopic(topic string) Option {
	return optionFunc(func(c *config) { c.requestTopic, c.requestTopicSet = topic, true })
}

// WithHeartbeat sets the heartbeat interval and its jitter, a fraction in
// [0, 1): each wait is drawn uniformly from interval×(1±jitter). The
// default interval is a third of the shorter of the contract's liveness
// interval and window (20 s with the defaults), the default jitter
// [DefaultJitter]. [New] refuses an interval whose longest wait reaches
// that shorter duration: such a node would expire between two heartbeats.
// An interval that is not positive keeps the default.
func WithHeartbeat(interval time.Duration, jitter float64) Option {
	return optionFunc(func(c *config) {
		if interval > 0 {
			c.interval = interval
		}
		c.jitter, c.jitterSet = jitter, true
	})
}

// WithClock sets the clock of the node's timestamps, uptime and timers;
// the default is [SystemClock]. Retries of a failed publish wait in real
// time whatever the clock: they wait for the bus, not for the workflow.
func WithClock(clk Clock) Option {
	return optionFunc(func(c *config) {
		if clk == nil {
			c.errs = append(c.errs, errors.New("WithClock(nil)"))
			return
		}
		c.clock = clk
	})
}

// WithLogger sets the logger; the default discards. The node logs its state
// changes at Info, failures to publish at Warn, and events it ignores at
// Debug.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.log = l
		}
	})
}

// WithActiveOperations sets the function that counts the service's
// operations in progress for each heartbeat's active_operations_count; it
// runs on the node's goroutine and must be quick. The default reports 0.
func WithActiveOperations(f func() int) Option {
	return optionFunc(func(c *config) { c.activeOps = f })
}

// WithStateChange sets a function called with every change of
// [Node.State], on the node's goroutine, in order. It must not block: the
// node does nothing else while it runs. [Node.WaitActive] is the other
// way to learn that a node became active.
func WithStateChange(f func(from, to State)) Option {
	return optionFunc(func(c *config) { c.onState = f })
}

// WithSourceTool sets the envelopes' source_tool; the default is
// [DefaultSourceTool].
func WithSourceTool(name string) Option {
	return optionFunc(func(c *config) {
		if name != "" {
			c.sourceTool = name
		}
	})
}

// WithPropagator sets the propagator that writes the trace context of the
// context given to [Node.Run] into every message the node publishes (its
// headers, and its envelope's trace_id and span_id), so that the
// orchestrator's handling continues the node's trace; otelhooks.Tracer is
// one. The default writes none.
func WithPropagator(p hooks.Propagator) Option {
	return optionFunc(func(c *config) { c.propagator = p })
}

// WithShutdownTimeout bounds, in real time, how long [Node.Run] tries to
// publish the node's shutdown announcement after its context ended; the
// default is [DefaultShutdownTimeout]. A duration that is not positive is
// an error of [New]; [WithoutShutdownAnnouncement] turns it off.
func WithShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithShutdownTimeout(%v): want a positive duration", d))
			return
		}
		c.shutdownTimeout = d
	})
}

// WithoutShutdownAnnouncement makes [Node.Run] return without announcing
// the node's shutdown: the orchestrator then keeps the registration until
// its liveness expires (for a node that restarts at once under the same
// id, whose introspection refreshes it).
func WithoutShutdownAnnouncement() Option {
	return optionFunc(func(c *config) { c.shutdownTimeout = 0 })
}

// WithSharedReads makes the node read its events through s, one read per
// topic partition shared with the other nodes of s, instead of reads of its
// own (see [SharedReads]). A nil s keeps the node's own reads.
func WithSharedReads(s *SharedReads) Option {
	return optionFunc(func(c *config) { c.shared = s })
}

func newConfig(opts []Option) (config, error) {
	c := config{clock: SystemClock{}, log: slog.New(slog.DiscardHandler), sourceTool: DefaultSourceTool,
		jitter: DefaultJitter, requestTopic: registration.TopicRegistryRequest, shutdownTimeout: DefaultShutdownTimeout}
	for _, o := range opts {
		o.apply(&c)
	}
	errs := c.errs
	if c.contract == nil {
		c.contract = contract.Default()
	}
	if err := c.contract.Validate(); err != nil {
		errs = append(errs, err)
	}
	rc := registrar.ReducerConfig(c.contract)
	r, err := registration.New(rc)
	if err != nil {
		errs = append(errs, err)
	} else {
		rc = r.Config() // with defaults
	}
	c.ackTimeout, c.livenessInterval, c.livenessWindow = rc.AckTimeout, rc.LivenessInterval, rc.LivenessWindow
	topics := rc.Topics
	if c.topicsSet {
		t := c.topics
		for _, f := range []struct {
			dst *string
			v   string
		}{
			{&topics.Introspection, t.Introspection}, {&topics.Ack, t.Ack}, {&topics.Heartbeat, t.Heartbeat},
			{&topics.Shutdown, t.Shutdown}, {&topics.Accepted, t.Accepted}, {&topics.BecameActive, t.BecameActive},
			{&topics.AckTimedOut, t.AckTimedOut}, {&topics.LivenessExpired, t.LivenessExpired},
		} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
	}
	c.topics = topics
	shortest := min(c.livenessInterval, c.livenessWindow)
	if c.interval == 0 {
		c.interval = shortest / 3
	}
	switch {
	case c.jitter < 0 || c.jitter >= 1 || c.jitter != c.jitter:
		errs = append(errs, fmt.Errorf("heartbeat jitter %v: want a fraction in [0, 1)", c.jitter))
	case time.Duration(float64(c.interval)*(1+c.jitter)) >= shortest:
		errs = append(errs, fmt.Errorf("heartbeat interval %v (jitter %v) reaches the liveness deadline %v: the node would expire between heartbeats",
			c.interval, c.jitter, shortest))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("registrar/node: %w", err)
	}
	return c, nil
}
