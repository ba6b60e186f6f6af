package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("registrar: runtime closed")

// ErrRunning is returned by Run while another Run of the same Runtime is in
// progress.
var ErrRunning = errors.New("registrar: runtime already running")

// StateStore reads the current state of an entity for the reducer.
type StateStore[S any] interface {
	// Load returns the entity's state, or the zero S if it has none. An
	// error is an infrastructure error: the runtime retries.
	Load(ctx context.Context, entityID uuid.UUID) (S, error)
}

// Runtime runs a reducer over the messages of an event bus: decode, load the
// entity's state, decide, execute the intents, publish the events, commit.
//
// Create one with [New], start it with [Runtime.Run], stop it by ending Run's
// context or with [Runtime.Close]. A Runtime's methods are safe for
// concurrent use. Several Runtimes (in one process or many) that share a
// consumer group split the partitions between them.
type Runtime[S any] struct {
	bus     bus.EventBus
	red     reducer.Reducer[S]
	store   StateStore[S]
	outbox  dispatch.Outbox
	exec    *intent.Executor
	applier *dispatch.Applier
	cfg     config
	log     *slog.Logger
	stats   counters
	locks   entityLocks
	cache   *stateCache[S]
	hooks   *hooks.Set

	warnLimit warnLimiter
	health    healthState // what Ready and Live read (health.go)

	mu      sync.Mutex
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a Runtime that consumes from b, decides with r against the
// states in store, and executes intents with exec. The store must also be a
// [dispatch.Outbox]: it applies the intents it owns and records the rest of
// each decision's work in one atomic write (effects/memory.Store and
// effects/postgres.Store are). A reducer whose decisions have intents
// outside the store must implement [reducer.IntentDecoder]. New needs input
// topics and a dead-letter topic ([WithContract], or [WithTopics] and
// [WithDeadLetterTopic]); it fails if a routed intent type has no effect in
// exec and is not owned by the store. New starts no goroutines.
func New[S any](b bus.EventBus, r reducer.Reducer[S], store StateStore[S], exec *intent.Executor, opts ...Option) (*Runtime[S], error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	var errs []error
	if b == nil {
		errs = append(errs, errors.New("nil event bus"))
	}
	if r == nil {
		errs = append(errs, errors.New("nil reducer"))
	}
	if store == nil {
		errs = append(errs, errors.New("nil state store"))
	}
	if exec == nil {
		errs = append(errs, errors.New("nil intent executor"))
	}
	errs = append(errs, cfg.validate()...)
	hs, err := hooks.New(cfg.hooks...)
	if err != nil {
		errs = append(errs, err)
	}
	ob, isOutbox := any(store).(dispatch.Outbox)
	if store != nil && !isOutbox {
		errs = append(errs, fmt.Errorf("state store %T is not a dispatch.Outbox", store))
	}
	if exec != nil && isOutbox {
		var routed []string
		for _, t := range cfg.routes {
			if !ob.Owns(t) {
				routed = append(routed, t)
			}
		}
		if err := exec.CheckRoutes(routed); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registrar: new runtime: %w", err)
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var decode dispatch.PayloadDecoder
	if d, ok := r.(reducer.IntentDecoder); ok {
		decode = d.DecodeIntentPayload
	}
	applier, err := dispatch.New(dispatch.Config{
		Publisher: b, Executor: exec, Outbox: ob, Decode: decode, DeadLetterTopic: cfg.deadLetter,
		MaxAttempts: cfg.maxAttempts, SourceTool: cfg.sourceTool, Logger: log, Hooks: hs,
	})
	if err != nil {
		return nil, fmt.Errorf("registrar: new runtime: %w", err)
	}
	cacheSize := cfg.stateCache
	if _, ok := r.(reducer.Evolver[S]); !ok {
		cacheSize = 0 // without Evolve the state after a write is not known
	}
	return &Runtime[S]{bus: b, red: r, store: store, outbox: ob, exec: exec, applier: applier, cfg: cfg, log: log, hooks: hs,
		cache: newStateCache[S](cacheSize)}, nil
}

// Run consumes until ctx ends or Close is called, and returns nil then. It
// returns an error if the subscription or a task started with [WithTask]
// fails; the others are stopped first. Run returns [ErrRunning] if the
// Runtime is already running and [ErrClosed] after Close.
func (r *Runtime[S]) Run(ctx context.Context) error {
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case r.running:
		r.mu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	r.running, r.cancel, r.done = true, cancel, make(chan struct{})
	r.mu.Unlock()
	defer func() {
		cancel()
		r.mu.Lock()
		r.running = false
		close(r.done)
		r.mu.Unlock()
	}()

	// What a previous Run cached may have changed hands since.
	r.cache.clear()
	r.log.InfoContext(ctx, "runtime starting",
		slog.String("group", r.cfg.group), slog.Any("topics", r.cfg.topics))
	tasks := r.cfg.tasks
	if r.cfg.relayInterval > 0 {
		tasks = append(slices.Clip(tasks), task{name: "relay", fn: r.relayLoop})
	}
	if r.cfg.reconciler != nil {
		tasks = append(slices.Clip(tasks), task{name: "reconciler", fn: r.reconcileLoop})
	}
	errc := make(chan error, 1+len(tasks))
	var wg sync.WaitGroup
	wg.Go(func() { errc <- r.subscribe(ctx) })
	for _, t := range tasks {
		wg.Go(func() {
			err := t.fn(ctx)
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("registrar: task %s: %w", t.name, err)
			} else {
				err = nil
			}
			errc <- err
		})
	}
	var first error
	for range 1 + len(tasks) {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	wg.Wait()
	r.log.InfoContext(ctx, "runtime stopped", slog.Any("error", first))
	return first
}

func (r *Runtime[S]) subscribe(ctx context.Context) error {
	opts := []bus.SubscribeOption{
		bus.WithDeadLetterTopic(r.cfg.deadLetter),
		bus.WithRetryBackoff(r.cfg.retryMin, r.cfg.retryMax),
		bus.WithOnAssign(r.onAssign), // the readiness check and the hooks (health.go)
	}
	opts = append(opts, bus.WithOnRevoke(r.onRevoke))
	r.health.subscribing(true)
	defer r.health.subscribing(false)
	var err error
	if bs, ok := r.bus.(bus.BatchSubscriber); ok && r.cfg.batchSize > 1 {
		opts = append(opts, bus.WithMaxBatch(r.cfg.batchSize, r.cfg.batchWait))
		err = bs.SubscribeBatch(ctx, r.cfg.group, r.cfg.topics, r.HandleBatch, opts...)
	} else {
		err = r.bus.Subscribe(ctx, r.cfg.group, r.cfg.topics, r.Handle, opts...)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("registrar: subscribe %s: %w", r.cfg.group, err)
	}
	return nil
}

// Close stops a Run in progress and waits for it to return. Later calls of
// Run return [ErrClosed]; Close may be called more than once. Close does not
// close the bus, the store or the effects: their owner does.
func (r *Runtime[S]) Close() error {
	r.mu.Lock()
	r.closed = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// ConsumerLag returns the consumer lag of the partitions this Runtime's
// subscription owns now, as the bus reports it ([bus.LagReporter]; the
// memory and Kafka buses do), sorted by topic and partition; nil if the
// bus does not report lag or the Runtime owns no partitions.
func (r *Runtime[S]) ConsumerLag() []bus.PartitionLag {
	if lr, ok := r.bus.(bus.LagReporter); ok {
		return lr.ConsumerLag(r.cfg.group)
	}
	return nil
}

// Stats returns counters of what the Runtime did since it was created.
func (r *Runtime[S]) Stats() Stats { return r.stats.snapshot() }
