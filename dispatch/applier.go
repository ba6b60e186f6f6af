package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// Publisher is the part of [bus.EventBus] the applier uses. A publisher that
// also implements [bus.SizeLimited] has every event checked against its
// limit before anything is applied.
type Publisher interface {
	Publish(ctx context.Context, msgs ...*bus.Message) error
}

// Config configures an [Applier].
type Config struct {
	// Publisher publishes the recorded events and the dead letters of
	// recorded intents. Required.
	Publisher Publisher
	// Executor executes the intents the store does not own. Required.
	Executor *intent.Executor
	// Outbox is the store's atomic write and record of pending work.
	// Required.
	Outbox Outbox
	// Decode turns recorded intent payloads back into typed values. It is
	// required once a decision records an intent; without it, such an
	// intent is dead-lettered by the relay with the reason.
	Decode PayloadDecoder
	// DeadLetterTopic receives recorded intents that fail permanently.
	// Empty: such an intent is logged and dropped.
	DeadLetterTopic string
	// MaxAttempts bounds how often the relay tries a recorded intent whose
	// error is marked neither retryable nor permanent before it
	// dead-letters it; errors marked [intent.Retryable] are retried for as
	// long as it takes. Default [DefaultMaxAttempts].
	MaxAttempts int
	// SourceTool is written as source_tool of every output envelope, e.g.
	// the contract's name. Optional.
	SourceTool string
	// Logger; nil means silent.
	Logger *slog.Logger
	// Hooks receive the intent and publish steps, the dead letters of the
	// relay, and carry trace context into records and events
	// ([hooks.Propagator]). Nil reports nothing.
	Hooks *hooks.Set
}

// DefaultMaxAttempts is the default of [Config.MaxAttempts].
const DefaultMaxAttempts = 10

// Applier applies prepared decisions through an [Outbox] and relays their
// records. It is safe for concurrent use; callers serialize the work of one
// entity (the runtime's entity locks do).
type Applier struct {
	pub      Publisher
	exec     *intent.Executor
	outbox   Outbox
	cfg      Config
	log      *slog.Logger
	hooks    *hooks.Set
	attempts attemptCounter
}

// New returns an Applier configured by cfg.
func New(cfg Config) (*Applier, error) {
	var errs []error
	if cfg.Publisher == nil {
		errs = append(errs, errors.New("nil publisher"))
	}
	if cfg.Executor == nil {
		errs = append(errs, errors.New("nil executor"))
	}
	if cfg.Outbox == nil {
		errs = append(errs, errors.New("nil outbox"))
	}
	if cfg.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d is negative", cfg.MaxAttempts))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registrar/dispatch: new applier: %w", err)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Applier{pub: cfg.Publisher, exec: cfg.Executor, outbox: cfg.Outbox, cfg: cfg, log: log, hooks: cfg.Hooks}, nil
}

// Apply applies prepared decisions, in order: first the volatile intents of
// those on the fast path, grouped by type (each group through the effect's
// batch path when it has one), then every write in one [Outbox.Commit]. It
// returns Commit's results, one per decision. An error means no write took
// place (volatile intents may have run: they are idempotent); it carries the
// effect's or the store's mark ([intent.IsRetryable], [intent.IsPermanent]).
//
// The volatile intents' steps are reported ([hooks.StepIntent]) in the
// context of the first decision of their group that Prepare was given, the
// commit ([hooks.StepCommit]) in the first decision's.
func (a *Applier) Apply(ctx context.Context, ps []Prepared) ([]WriteResult, error) {
	var volatile []intent.Intent
	var ctxs []context.Context
	for i := range ps {
		volatile = append(volatile, ps[i].Volatile...)
		if a.hooks != nil {
			for range ps[i].Volatile {
				ctxs = append(ctxs, ps[i].context(ctx))
			}
		}
	}
	if len(volatile) > 0 {
		if _, err := a.executeByType(ctx, volatile, ctxs); err != nil {
			return nil, err
		}
	}
	writes := make([]Write, len(ps))
	for i := range ps {
		writes[i] = ps[i].Write
	}
	cctx := ctx
	if len(ps) > 0 {
		cctx = ps[0].context(ctx)
	}
	span := a.hooks.Start(cctx, hooks.Step{Kind: hooks.StepCommit, Count: len(writes)})
	res, err := a.outbox.Commit(span.Context(), writes)
	if a.hooks != nil {
		conflicts := 0
		for _, r := range res {
			if r.Status == WriteConflict {
				conflicts++
			}
		}
		span.End(err, 0, conflicts)
	}
	if err != nil {
		return nil, fmt.Errorf("registrar/dispatch: commit %d writes: %w", len(writes), err)
	}
	if len(res) != len(writes) {
		return nil, fmt.Errorf("registrar/dispatch: commit returned %d results for %d writes", len(res), len(writes))
	}
	return res, nil
}

// executeByType executes ins grouped by type, in the order the types first
// appear, each group through the effect's batch path when it has one; the
// order of ins within a type is kept. It returns the results in the order of
// ins. ctxs, if not nil, holds the context of each intent's cause: a
// group's step is reported in its first intent's.
func (a *Applier) executeByType(ctx context.Context, ins []intent.Intent, ctxs []context.Context) ([]intent.Result, error) {
	out := make([]intent.Result, len(ins))
	var order []string
	groups := map[string][]int{}
	for i, in := range ins {
		if _, ok := groups[in.Type]; !ok {
			order = append(order, in.Type)
		}
		groups[in.Type] = append(groups[in.Type], i)
	}
	for _, typ := range order {
		idx := groups[typ]
		batch := make([]intent.Intent, len(idx))
		for j, i := range idx {
			batch[j] = ins[i]
		}
		gctx := ctx
		if ctxs != nil {
			gctx = ctxs[idx[0]]
		}
		res, err := a.executeGroup(gctx, typ, batch)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			out[i] = res[j]
		}
	}
	return out, nil
}

// executeGroup executes intents of one type, in one call of the effect's
// batch path when it has one.
func (a *Applier) executeGroup(ctx context.Context, typ string, batch []intent.Intent) ([]intent.Result, error) {
	if a.hooks == nil {
		return a.executeGroupUntraced(ctx, typ, batch)
	}
	span := a.hooks.Start(ctx, hooks.Step{Kind: hooks.StepIntent, IntentType: typ, Count: len(batch)})
	res, err := a.executeGroupUntraced(span.Context(), typ, batch)
	skipped, conflicts := 0, 0
	for _, r := range res {
		switch r.Status {
		case intent.Skipped:
			skipped++
		case intent.Conflict:
			conflicts++
		}
	}
	span.End(err, skipped, conflicts)
	return res, err
}

func (a *Applier) executeGroupUntraced(ctx context.Context, typ string, batch []intent.Intent) ([]intent.Result, error) {
	eff, ok := a.exec.Effect(typ)
	if !ok {
		return nil, fmt.Errorf("registrar/dispatch: %w for intent type %q", intent.ErrNoEffect, typ)
	}
	if be, isBatch := eff.(intent.BatchEffect); isBatch && len(batch) > 1 {
		res, err := be.ExecuteBatch(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("registrar/dispatch: execute %d %s intents: %w", len(batch), typ, err)
		}
		if len(res) != len(batch) {
			return nil, fmt.Errorf("registrar/dispatch: effect for %s returned %d results for %d intents", typ, len(res), len(batch))
		}
		return res, nil
	}
	res := make([]intent.Result, 0, len(batch))
	for _, in := range batch {
		rr, err := eff.Execute(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("registrar/dispatch: execute %s %s: %w", in.Type, in.Target, err)
		}
		res = append(res, rr)
	}
	return res, nil
}

// Envelope returns the output envelope of event i of a decision caused by
// cause: envelope id [EventID](cause, i), the cause's timestamp, the cause's
// correlation id (else the event's, else the cause's envelope id), the
// event's type, its metadata and its JSON payload.
func (a *Applier) Envelope(cause *bus.Envelope, i int, ev reducer.Event) (*bus.Envelope, error) {
	payload, err := json.Marshal(ev.Payload)
	if err != nil {
		return nil, fmt.Errorf("registrar/dispatch: encode %s payload: %w", ev.Type, err)
	}
	corr := cause.CorrelationID
	if corr == uuid.Nil {
		corr = ev.CorrelationID
	}
	if corr == uuid.Nil {
		corr = cause.EnvelopeID
	}
	return &bus.Envelope{
		EnvelopeID:        EventID(cause.EnvelopeID, i),
		EnvelopeTimestamp: cause.EnvelopeTimestamp,
		CorrelationID:     corr,
		EventType:         ev.Type,
		SourceTool:        a.cfg.SourceTool,
		Metadata:          ev.Metadata,
		Priority:          bus.DefaultPriority,
		OnexVersion:       bus.DefaultVersion,
		EnvelopeVersion:   bus.DefaultEnvelopeVersion,
		Payload:           payload,
	}, nil
}

// EventID returns the envelope id of event i of the decision caused by the
// envelope with id cause: the UUIDv5 (SHA-1) of the name "event/<i>" in the
// namespace cause.
func EventID(cause uuid.UUID, i int) uuid.UUID {
	var buf [32]byte
	name := strconv.AppendInt(append(buf[:0], "event/"...), int64(i), 10)
	return uuid.NewSHA1(cause, name)
}
