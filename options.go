package registrar

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/registrar-go/registrar/contract"
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

	// Read by NewRegistration only.
	sweepInterval time.Duration
	reducerEdits  []func(*registration.Config)
}

// Default backoff between attempts of a decision that failed with an
// infrastructure error.
const (
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 10 * time.Second
)

// DefaultBatchSize is the largest micro-batch by default; see [WithBatch].
const DefaultBatchSize = 1024

func defaultConfig() config {
	return config{retryMin: DefaultRetryMin, retryMax: DefaultRetryMax, clock: time.Now, batchSize: DefaultBatchSize}
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
	return errs
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
// broker that is down). The defaults are [DefaultRetryMin] and
// [DefaultRetryMax]. The message is retried until it succeeds or the Runtime
// stops; its offset is not committed meanwhile.
func WithRetryBackoff(minDelay, maxDelay time.Duration) Option {
	return optionFunc(func(c *config) { c.retryMin, c.retryMax = minDelay, maxDelay })
}

// WithTask runs fn beside the consumer for as long as Run runs (for example a
// timeout sweeper). fn must return when its context ends; an error it returns
// before that stops the Runtime, and Run returns it.
func WithTask(name string, fn func(ctx context.Context) error) Option {
	return optionFunc(func(c *config) { c.tasks = append(c.tasks, task{name: name, fn: fn}) })
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

// WithClock sets the clock the Runtime reads for its own timestamps; the
// default is time.Now. Decisions never read it: they take the time from the
// causing envelope.
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

// WithSweepInterval sets the time between the timeout sweeps that
// [NewRegistration] runs beside the consumer, replacing the contract's
// sweep_interval. A negative interval runs no sweeper: timeouts then need a
// [Sweeper] run elsewhere. Only NewRegistration reads it.
func WithSweepInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.sweepInterval = d })
}

// WithReducerConfig edits the registration reducer's configuration after
// [NewRegistration] derived it from the contract (durations, topics, Consul).
// Only NewRegistration reads it.
func WithReducerConfig(edit func(*registration.Config)) Option {
	return optionFunc(func(c *config) { c.reducerEdits = append(c.reducerEdits, edit) })
}
