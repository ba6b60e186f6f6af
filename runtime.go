package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
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
	exec    *intent.Executor
	applier *dispatch.ResultApplier
	cfg     config
	log     *slog.Logger
	stats   counters
	locks   entityLocks
	scratch sync.Pool // *batchScratch

	mu      sync.Mutex
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a Runtime that consumes from b, decides with r against the
// states in store, and executes intents with exec. It needs input topics and a
// dead-letter topic ([WithContract], or [WithTopics] and
// [WithDeadLetterTopic]); it fails if a routed intent type has no effect in
// exec. New starts no goroutines.
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
	if exec != nil {
		if err := exec.CheckRoutes(cfg.routes); err != nil {
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
	applier, err := dispatch.NewResultApplier(b, exec, dispatch.Config{SourceTool: cfg.sourceTool, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("registrar: new runtime: %w", err)
	}
	return &Runtime[S]{bus: b, red: r, store: store, exec: exec, applier: applier, cfg: cfg, log: log}, nil
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

	r.log.InfoContext(ctx, "runtime starting",
		slog.String("group", r.cfg.group), slog.Any("topics", r.cfg.topics))
	errc := make(chan error, 1+len(r.cfg.tasks))
	var wg sync.WaitGroup
	wg.Go(func() { errc <- r.subscribe(ctx) })
	for _, t := range r.cfg.tasks {
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
	for range 1 + len(r.cfg.tasks) {
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
	}
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

// Stats returns counters of what the Runtime did since it was created.
func (r *Runtime[S]) Stats() Stats { return r.stats.snapshot() }

// Handle processes one message as the bus delivers it, and returns what the
// bus acts on: nil when the message is done, a [*bus.ContentError] when it
// must be dead-lettered, or the last infrastructure error if ctx ended while
// it was retried. Run hands it to the bus; tests and tools may call it
// directly to drive the workflow without a subscription.
func (r *Runtime[S]) Handle(ctx context.Context, msg *bus.Message) error {
	in, err := r.decode(msg)
	if err != nil {
		return r.deadLetter(ctx, msg, err)
	}
	return r.process(ctx, msg, in)
}

// deadLetter counts and logs a message that cannot be decoded, and returns
// the content error that makes the bus dead-letter it.
func (r *Runtime[S]) deadLetter(ctx context.Context, msg *bus.Message, reason error) *bus.ContentError {
	r.stats.deadLettered.Add(1)
	r.log.WarnContext(ctx, "dead-lettering message",
		slog.String("topic", msg.Topic), slog.Int("partition", int(msg.Partition)),
		slog.Int64("offset", msg.Offset), slog.String("reason", reason.Error()))
	return bus.NewContentError(reason)
}

func (r *Runtime[S]) decode(msg *bus.Message) (reducer.Input, error) {
	env, err := bus.DecodeEnvelope(msg.Value)
	if err != nil {
		return reducer.Input{}, err
	}
	in, err := r.red.Decode(msg.Topic, env)
	if err != nil {
		return reducer.Input{}, err
	}
	in.Envelope = env
	return in, nil
}

// process decides and applies in, retrying infrastructure errors with an
// exponential backoff until it succeeds or ctx ends. A permanent error (see
// [intent.IsPermanent]) dead-letters the message.
func (r *Runtime[S]) process(ctx context.Context, msg *bus.Message, in reducer.Input) error {
	var bo *backoff.ExponentialBackOff
	for attempt := 1; ; attempt++ {
		err := r.decideAndApply(ctx, in)
		if err == nil {
			r.stats.handled.Add(1)
			return nil
		}
		if intent.IsPermanent(err) {
			r.stats.deadLettered.Add(1)
			r.log.ErrorContext(ctx, "effect failed permanently; dead-lettering message",
				slog.String("topic", msg.Topic), slog.Int64("offset", msg.Offset),
				slog.String("entity_id", in.EntityID.String()), slog.String("error", err.Error()))
			return bus.NewContentError(err)
		}
		if !r.backOff(ctx, &bo, "decision failed; retrying", err, attempt,
			slog.String("entity_id", in.EntityID.String()), slog.Bool("retryable", intent.IsRetryable(err))) {
			return err
		}
	}
}

// backOff counts a retry, logs it, and waits for the next backoff interval
// of *bo (created on first use). It returns false if ctx ended first.
func (r *Runtime[S]) backOff(ctx context.Context, bo **backoff.ExponentialBackOff, msg string, err error, attempt int, attrs ...slog.Attr) bool {
	if ctx.Err() != nil {
		return false
	}
	if *bo == nil {
		*bo = backoff.NewExponentialBackOff()
		(*bo).InitialInterval, (*bo).MaxInterval = r.cfg.retryMin, r.cfg.retryMax
	}
	wait := (*bo).NextBackOff()
	r.stats.retries.Add(1)
	r.log.LogAttrs(ctx, slog.LevelWarn, msg, append(attrs, slog.Int("attempt", attempt),
		slog.Duration("backoff", wait), slog.String("error", err.Error()))...)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// maxConflictRounds bounds how often one attempt re-decides a message whose
// decision met a conflict before it backs off like any other failure.
const maxConflictRounds = 8

// decideAndApply loads the entity's state, decides, and applies the
// decision. Messages of one entity are serialized in this process even when
// they arrive on different topics; a conflict (the state moved between load
// and write, which only another process can cause) makes it decide again
// against the new state.
func (r *Runtime[S]) decideAndApply(ctx context.Context, in reducer.Input) error {
	e := r.locks.lockOne(in.EntityID)
	defer r.locks.unlockOne(in.EntityID, e)
	return r.decideAndApplyLocked(ctx, in)
}

// decideAndApplyLocked is decideAndApply with the entity already locked.
func (r *Runtime[S]) decideAndApplyLocked(ctx context.Context, in reducer.Input) error {
	for round := 1; ; round++ {
		state, err := r.store.Load(ctx, in.EntityID)
		if err != nil {
			return fmt.Errorf("registrar: load state of %s: %w", in.EntityID, err)
		}
		d := r.red.Decide(state, in, in.Envelope.EnvelopeTimestamp)
		if d.IsNoop() {
			r.stats.noops.Add(1)
			r.log.DebugContext(ctx, "no-op", slog.String("kind", in.Kind),
				slog.String("entity_id", in.EntityID.String()), slog.String("reason", d.Reason))
			return nil
		}
		out, err := r.applier.Apply(ctx, in.Envelope, d)
		r.stats.intents.Add(int64(len(out.Results)))
		r.stats.skipped.Add(int64(out.Skipped()))
		r.stats.events.Add(int64(out.Published))
		if errors.Is(err, dispatch.ErrConflict) && round < maxConflictRounds {
			r.stats.conflicts.Add(1)
			r.log.DebugContext(ctx, "conflict; deciding again", slog.String("entity_id", in.EntityID.String()),
				slog.String("error", err.Error()))
			continue
		}
		if err != nil {
			return err
		}
		if d.State != "" {
			r.log.DebugContext(ctx, "decided", slog.String("kind", in.Kind),
				slog.String("entity_id", in.EntityID.String()), slog.String("state", d.State))
		}
		return nil
	}
}
