package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Option configures a [Runtime]. Options are created by the With functions.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type task struct {
	name string
	fn   func(context.Context) error
}

type config struct {
	topics     []string
	group      string
	deadLetter string
	routes     []string
	sourceTool string
	logger     *slog.Logger
	retryMin   time.Duration
	retryMax   time.Duration
	tasks      []task
	clock      func() time.Time
	batchSize  int
	batchWait  time.Duration
	stateCache int
	noCoalesce bool

	maxAttempts   int
	maxSkew       time.Duration
	relayInterval time.Duration
	relayMinAge   time.Duration

	reconciler        registration.Reconciler
	reconcileInterval time.Duration

	hooks []hooks.Hook

	// Readiness and liveness (health.go): zero means the default.
	stuckAfter time.Duration
	hangAfter  time.Duration
}

// Default backoff between attempts of a decision that failed with an
// infrastructure error.
const (
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 10 * time.Second
)

// DefaultBatchSize is the largest micro-batch by default; see [WithBatch].
const DefaultBatchSize = 1024

// DefaultMaxAttempts is how often, by default, a decision whose error is
// marked neither retryable nor permanent is tried; see [WithMaxAttempts].
const DefaultMaxAttempts = 10

// DefaultMaxClockSkew is how far ahead of the Runtime's clock an input may
// be stamped by default; see [WithMaxClockSkew].
const DefaultMaxClockSkew = 5 * time.Minute

// Defaults of [WithRelay].
const (
	DefaultRelayInterval = time.Second
	DefaultRelayMinAge   = 5 * time.Second
)

func defaultConfig() config {
	return config{
		retryMin: DefaultRetryMin, retryMax: DefaultRetryMax, clock: time.Now, batchSize: DefaultBatchSize, stateCache: DefaultStateCacheSize,
		maxAttempts: DefaultMaxAttempts, maxSkew: DefaultMaxClockSkew,
		relayInterval: DefaultRelayInterval, relayMinAge: DefaultRelayMinAge,
	}
}

func (c *config) validate() []error {
	var errs []error
	if len(c.topics) == 0 {
		errs = append(errs, errors.New("no input topics (WithContract or WithTopics)"))
	}
	for _, t := range c.topics {
		if t == "" {
			errs = append(errs, errors.New("empty input topic"))
		}
	}
	if c.group == "" {
		errs = append(errs, errors.New("no consumer group (WithContract or WithGroup)"))
	}
	if c.deadLetter == "" {
		errs = append(errs, errors.New("no dead-letter topic (WithContract or WithDeadLetterTopic)"))
	}
	if c.retryMin <= 0 || c.retryMax < c.retryMin {
		errs = append(errs, errors.New("retry backoff needs 0 < min <= max"))
	}
	if c.maxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d is below 1", c.maxAttempts))
	}
	if c.reconciler != nil && c.reconcileInterval <= 0 {
		errs = append(errs, fmt.Errorf("reconcile interval %v is not positive", c.reconcileInterval))
	}
	if c.stateCache < 0 {
		errs = append(errs, fmt.Errorf("state cache size %d is negative", c.stateCache))
	}
	if c.relayMinAge < 0 {
		errs = append(errs, fmt.Errorf("relay min age %v is negative", c.relayMinAge))
	}
	return errs
}

// WithHooks installs telemetry hooks (see package hooks): the Runtime, its
// subscription's partition changes and its relay report through them.
// Each hook implements one or more of the hooks interfaces; New fails for a
// value that implements none. Calls add to the hooks installed before.
// Without hooks, the Runtime does no telemetry work.
func WithHooks(hs ...hooks.Hook) Option {
	return optionFunc(func(c *config) { c.hooks = append(c.hooks, hs...) })
}

// WithTopics sets the topics the Runtime consumes, replacing the contract's.
func WithTopics(topics ...string) Option {
	return optionFunc(func(c *config) { c.topics = append([]string(nil), topics...) })
}

// WithGroup sets the consumer group, replacing the contract's name. Runtimes
// that share a group split the partitions.
func WithGroup(group string) Option {
	return optionFunc(func(c *config) { c.group = group })
}

// WithDeadLetterTopic sets the topic that receives messages that can never be
// processed, replacing the contract's.
func WithDeadLetterTopic(topic string) Option {
	return optionFunc(func(c *config) { c.deadLetter = topic })
}

// WithRoutes names intent types that must have an effect: New fails if the
// executor has none for one of them. [WithContract] sets the contract's
// routing table.
func WithRoutes(intentTypes ...string) Option {
	return optionFunc(func(c *config) { c.routes = append(c.routes, intentTypes...) })
}

// WithSourceTool sets the source_tool written on output envelopes; the
// default is the contract's name, or empty.
func WithSourceTool(name string) Option {
	return optionFunc(func(c *config) { c.sourceTool = name })
}

// WithLogger sets the logger; the default, nil, is silent.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithRetryBackoff bounds the exponential backoff between attempts of a
// message whose decision failed with an infrastructure error (a database or
// broker that is down), and between attempts of a relay. The defaults are
// [DefaultRetryMin] and [DefaultRetryMax]. A message whose error is marked
// retryable is retried until it succeeds or the Runtime stops; its offset is
// not committed meanwhile.
func WithRetryBackoff(minDelay, maxDelay time.Duration) Option {
	return optionFunc(func(c *config) { c.retryMin, c.retryMax = minDelay, maxDelay })
}

// WithTask runs fn beside the consumer for as long as Run runs (for example a
// timeout sweeper). fn must return when its context ends; an error it returns
// before that stops the Runtime, and Run returns it.
func WithTask(name string, fn func(ctx context.Context) error) Option {
	return optionFunc(func(c *config) { c.tasks = append(c.tasks, task{name: name, fn: fn}) })
}

// DefaultReconcileInterval is the time between two reconciliation passes
// by default; see [WithReconciler].
const DefaultReconcileInterval = 30 * time.Second

// WithReconciler runs rec (the Consul reconciler of effects/consul, for
// example) beside the consumer: a pass when Run starts, then one every
// interval (zero: [DefaultReconcileInterval]), for as long as Run runs. A
// pass that fails is logged at WARN and counted in Stats.ReconcileFailures;
// the next pass tries again. What passes change is counted in Stats
// (ReconcileRegistered, ReconcileUpdated, ReconcileDeregistered). A second
// WithReconciler replaces the first.
func WithReconciler(rec registration.Reconciler, interval time.Duration) Option {
	return optionFunc(func(c *config) {
		if interval == 0 {
			interval = DefaultReconcileInterval
		}
		c.reconciler, c.reconcileInterval = rec, interval
	})
}

// WithBatch bounds the micro-batches the Runtime takes from a bus that
// implements bus.BatchSubscriber: up to size messages of one partition that
// are waiting when the Runtime is free, waiting at most wait for more (0, the
// default, takes what is waiting and does not wait, so a quiet partition
// sees batches of one). The default size is [DefaultBatchSize]; a size of 1
// turns micro-batching off. See [Runtime.HandleBatch].
func WithBatch(size int, wait time.Duration) Option {
	return optionFunc(func(c *config) {
		if size >= 1 {
			c.batchSize = size
		}
		if wait >= 0 {
			c.batchWait = wait
		}
	})
}

// DefaultStateCacheSize is how many entities' states the Runtime keeps by
// default; see [WithStateCache].
const DefaultStateCacheSize = 1 << 18

// WithStateCache bounds the Runtime's state cache to n entities (0 turns it
// off, a negative n fails New; the default is [DefaultStateCacheSize], 262,144). The cache keeps,
// for each entity the Runtime decided on, the state its last write left in
// the store, so that the next micro-batch on the entity reads nothing from
// the store: neither the state (the store's LoadMany) nor the outbox's
// pending records (every record the Runtime appended was relayed before the
// state was cached). It relies on the partition owner being the only
// writer of its entities, and the guards keep it safe when that does not
// hold: a write decided on a stale entry conflicts, the entry is dropped and
// the decision is made again against what the store holds. Entries are also
// dropped on any failed attempt, on every partition revocation and when Run
// starts; past n entries an arbitrary one gives way. A reducer that does
// not implement reducer.Evolver gets no cache (the state after a write is
// not known without it). Each entry costs what one state costs in memory
// (for the registration reducer a *registration.Projection, a few hundred
// bytes).
func WithStateCache(n int) Option {
	return optionFunc(func(c *config) { c.stateCache = n })
}

// WithCoalescing turns the coalescing of a micro-batch's inputs on (the
// default) or off. With a reducer that implements reducer.Coalescer, the
// Runtime decides, of a run of inputs of one entity in one micro-batch that
// coalesce, only the one that stands for the others (for the registration
// reducer: the newest of a node's heartbeats), and acknowledges the others
// (Stats.Coalesced; hooks.OutcomeCoalesced): a consumer that fell behind
// writes each node once per batch, not once per heartbeat. Turn it off to
// have every input decided, and traced, on its own.
func WithCoalescing(on bool) Option {
	return optionFunc(func(c *config) { c.noCoalesce = !on })
}

// WithMaxAttempts sets how often a message is tried whose decision fails
// with an error marked neither retryable nor permanent ([intent.Retryable],
// [intent.Permanent]) before it is dead-lettered with the attempt count and
// the last error; the same bounds the relay's attempts of a recorded intent.
// Errors marked retryable (the environment's: a database, a broker, an
// agent that is down or refuses the credentials) are never capped; errors
// marked permanent dead-letter at once. The default is
// [DefaultMaxAttempts]; n must be at least 1.
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) { c.maxAttempts = n })
}

// WithMaxClockSkew sets how far ahead of the Runtime's clock an input may be
// stamped (its envelope_timestamp). An input stamped further ahead is
// dead-lettered, so that one message from a host with a wrong clock cannot
// move a deadline into the far future. The default is
// [DefaultMaxClockSkew]; a negative d turns the check off.
func WithMaxClockSkew(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxSkew = d })
}

// WithRelay sets how often the Runtime relays the outbox records that no
// decision of its own relays (those a crash or a failover left behind, and
// those whose relay failed), and how old such a record must be (minAge) so
// that a record another member is relaying right now is left to it. The
// defaults are [DefaultRelayInterval] and [DefaultRelayMinAge]; an interval
// below zero runs no relay task (the records of each decision are still
// relayed as it is applied).
func WithRelay(interval, minAge time.Duration) Option {
	return optionFunc(func(c *config) {
		if interval != 0 {
			c.relayInterval = interval
		}
		c.relayMinAge = minAge
	})
}

// WithClock sets the Runtime's clock; the default is time.Now. It is the
// now the reducer decides at (the registration reducer decides timeouts at
// it, and node messages at their own timestamps), the clock inputs are
// checked against ([WithMaxClockSkew]), and, for [NewRegistration], the
// clock the sweeper scans at.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.clock = now
		}
	})
}

// WithContract takes the input topics, the consumer group, the dead-letter
// topic, the routed intent types and the source tool name from c. Options
// after it override what it set.
func WithContract(c *contract.Contract) Option {
	return optionFunc(func(cfg *config) {
		cfg.topics = c.InputTopics()
		cfg.group = c.Group()
		cfg.deadLetter = c.EventBus.DeadLetterTopic
		cfg.routes = c.RoutedIntents()
		cfg.sourceTool = c.Name
	})
}
