package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// BatchLoader is an optional interface of a [StateStore]: it loads many
// entities in one round trip. The runtime uses it for every batch.
type BatchLoader[S any] interface {
	// LoadMany returns the states of the entities that have one; entities
	// without state are absent from the map.
	LoadMany(ctx context.Context, entityIDs []uuid.UUID) (map[uuid.UUID]S, error)
}

// Handle processes one message as the bus delivers it, and returns what the
// bus acts on: nil when the message is done, a [*bus.ContentError] when it
// must be dead-lettered, or the last error if ctx ended while it was
// retried. It is [Runtime.HandleBatch] with a batch of one. Run hands it to
// the bus; tests and tools may call it directly to drive the workflow
// without a subscription.
func (r *Runtime[S]) Handle(ctx context.Context, msg *bus.Message) error {
	err := r.HandleBatch(ctx, []*bus.Message{msg})
	var be *bus.BatchError
	if errors.As(err, &be) {
		return be.Err
	}
	return err
}

// HandleBatch processes the messages of one partition, in order, and
// returns nil when all are done, so that the bus commits once, or a
// [*bus.BatchError] that says which message to dead-letter (a
// [*bus.ContentError]) or to redeliver from (any other error); the messages
// before it are done. See the package documentation for the steps.
//
// A batch is decided against one load of its entities' states and an
// in-memory overlay of the batch's own decisions (when the reducer
// implements reducer.Evolver), and applied in one atomic write of the store
// ([dispatch.Outbox.Commit]). An entity whose write met a conflict has its
// messages decided again against what the store holds now. An
// infrastructure error retries the batch with backoff; an error that will
// recur (permanent, or unmarked and repeated [WithMaxAttempts] times) makes
// the runtime go on message by message, so that only the message at fault
// is dead-lettered; a message that cannot be decoded, is stamped too far
// ahead of the clock, or whose decision cannot be prepared is dead-lettered
// after the messages before it are done.
//
// With hooks installed ([WithHooks]), every message of the batch is
// reported from its start to its outcome.
func (r *Runtime[S]) HandleBatch(ctx context.Context, msgs []*bus.Message) error {
	r.health.handling()
	defer r.health.done()
	if r.hooks == nil {
		return r.handleBatch(ctx, msgs, nil)
	}
	if len(msgs) > 0 {
		r.hooks.OnBatch(ctx, hooks.Batch{Topic: msgs[0].Topic, Partition: msgs[0].Partition, Size: len(msgs)})
	}
	tr := make([]msgTrace, len(msgs))
	err := r.handleBatch(ctx, msgs, tr)
	r.endMessages(msgs, tr, err)
	return err
}

func (r *Runtime[S]) handleBatch(ctx context.Context, msgs []*bus.Message, tr []msgTrace) error {
	ins := make([]reducer.Input, 0, len(msgs))
	now := r.cfg.clock()
	for i, m := range msgs {
		var t *msgTrace
		if tr != nil {
			t = &tr[i]
		}
		in, err := r.decode(ctx, m, now, t)
		if err != nil {
			if err := r.process(ctx, msgs[:i], ins, tr); err != nil {
				return err
			}
			return &bus.BatchError{Index: i, Err: r.deadLetter(traceCtx(ctx, tr, i), m, err, 0, hooks.ReasonDecode)}
		}
		ins = append(ins, in)
	}
	return r.process(ctx, msgs, ins, tr)
}

// msgTrace follows one message of a batch for the hooks: the context its
// handling runs in and what its last decision was.
type msgTrace struct {
	ctx     context.Context
	start   time.Time
	started bool
	decided bool
	kind    string
	entity  uuid.UUID
	state   string
	noop    bool
	// coalesced: another input of the batch stood for it.
	coalesced bool
}

// traceCtx returns the context of message i of a batch: its own when the
// hooks follow messages, else ctx.
func traceCtx(ctx context.Context, tr []msgTrace, i int) context.Context {
	if tr == nil || tr[i].ctx == nil {
		return ctx
	}
	return tr[i].ctx
}

// subTrace returns tr[from:to], or nil if tr is nil.
func subTrace(tr []msgTrace, from, to int) []msgTrace {
	if tr == nil {
		return nil
	}
	return tr[from:to]
}

// endMessages reports the outcome of every message of a batch that was
// started, given HandleBatch's result err.
func (r *Runtime[S]) endMessages(msgs []*bus.Message, tr []msgTrace, err error) {
	done, at := len(msgs), -1
	var atErr error
	if err != nil {
		done = 0
		var be *bus.BatchError
		if errors.As(err, &be) {
			done, at, atErr = be.Index, be.Index, be.Err
		}
	}
	now := time.Now()
	for i := range tr {
		t := &tr[i]
		if !t.started {
			continue
		}
		end := hooks.MessageEnd{Kind: t.kind, EntityID: t.entity, Duration: now.Sub(t.start)}
		switch {
		case i < done && t.coalesced:
			end.Outcome = hooks.OutcomeCoalesced
		case i < done && t.noop:
			end.Outcome = hooks.OutcomeNoop
		case i < done:
			end.Outcome, end.State = hooks.OutcomeApplied, t.state
		case i == at:
			end.Outcome, end.Err = hooks.OutcomeAborted, atErr
			var ce *bus.ContentError
			if errors.As(atErr, &ce) {
				end.Outcome = hooks.OutcomeDeadLettered
			}
		default:
			end.Outcome = hooks.OutcomeAborted
		}
		r.hooks.MessageEnd(t.ctx, msgs[i], end)
	}
}

// deadLetter counts and logs a message that is dead-lettered for reason,
// after attempts tries (0: it was never tried), reports it to the hooks as
// kind, and returns the content error that makes the bus dead-letter it.
func (r *Runtime[S]) deadLetter(ctx context.Context, msg *bus.Message, reason error, attempts int, kind hooks.DeadLetterReason) *bus.ContentError {
	r.stats.deadLettered.Add(1)
	r.hooks.OnDeadLetter(ctx, hooks.DeadLetter{Reason: kind, Topic: msg.Topic, Partition: msg.Partition,
		Offset: msg.Offset, Count: 1, Err: reason})
	if attempts > 1 {
		reason = fmt.Errorf("after %d attempts: %w", attempts, reason)
	}
	r.log.WarnContext(ctx, "dead-lettering message",
		slog.String("topic", msg.Topic), slog.Int("partition", int(msg.Partition)),
		slog.Int64("offset", msg.Offset), slog.String("reason", reason.Error()))
	var ce *bus.ContentError
	if errors.As(reason, &ce) {
		return ce
	}
	return bus.NewContentError(reason)
}

// decode decodes msg and checks its timestamp against the clock's now.
// With t set, it starts the message's trace and reports the outcome.
func (r *Runtime[S]) decode(ctx context.Context, msg *bus.Message, now time.Time, t *msgTrace) (reducer.Input, error) {
	if t == nil {
		return r.decodeInput(msg, now)
	}
	in, err := r.decodeInput(msg, now)
	t.ctx = r.hooks.MessageStart(ctx, msg, in.Envelope)
	t.start, t.started = time.Now(), true
	if err == nil {
		t.kind, t.entity = in.Kind, in.EntityID
	}
	if r.hooks.ObservesDecodes() {
		r.hooks.OnDecode(t.ctx, msg, hooks.Decoded{Kind: in.Kind, EntityID: in.EntityID, Err: err})
	}
	return in, err
}

// decodeInput decodes msg. On an error it returns the input with its
// Envelope set if the envelope decoded.
func (r *Runtime[S]) decodeInput(msg *bus.Message, now time.Time) (reducer.Input, error) {
	env, err := bus.DecodeEnvelope(msg.Value)
	if err != nil {
		return reducer.Input{}, err
	}
	if r.cfg.maxSkew >= 0 {
		if ahead := env.EnvelopeTimestamp.Sub(now); ahead > r.cfg.maxSkew {
			return reducer.Input{Envelope: env}, &bus.DecodeError{Field: "envelope_timestamp", Reason: fmt.Sprintf(
				"%s is %v ahead of this runtime's clock (the limit is %v)",
				env.EnvelopeTimestamp.UTC().Format(time.RFC3339Nano), ahead.Round(time.Millisecond), r.cfg.maxSkew)}
		}
	}
	in, err := r.red.Decode(msg.Topic, env)
	if err != nil {
		return reducer.Input{Envelope: env}, err
	}
	in.Envelope = env
	return in, nil
}

// process applies ins (decoded from msgs) and returns nil or a
// *bus.BatchError; see HandleBatch.
func (r *Runtime[S]) process(ctx context.Context, msgs []*bus.Message, ins []reducer.Input, tr []msgTrace) error {
	var bo *backoff.ExponentialBackOff
	var streak uint64 // the retry streak of the readiness check (health.go)
	defer r.health.endStreak(&streak)
	// tries counts the failed attempts at the message at done; attempts
	// only those whose error carries no mark, which WithMaxAttempts caps.
	done, tries, attempts := 0, 0, 0
	oneByOne := len(ins) == 1
	for done < len(ins) {
		end := len(ins)
		if oneByOne {
			end = done + 1
		}
		r.health.progressed()
		n, err := r.apply(ctx, msgs[done:end], ins[done:end], subTrace(tr, done, end))
		r.stats.handled.Add(int64(n))
		done += n
		if err == nil || n > 0 {
			tries, attempts = 0, 0
			r.health.endStreak(&streak)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errFoldedPrepare) {
			// The input at fault stood for others: go on one by one, so
			// that they are decided on their own and only it is
			// dead-lettered.
			oneByOne, tries, attempts = true, 0, 0
			continue
		}
		var pe *dispatch.PrepareError
		if errors.As(err, &pe) {
			return &bus.BatchError{Index: done, Err: r.deadLetter(traceCtx(ctx, tr, done), msgs[done], err, 0, hooks.ReasonPrepare)}
		}
		if ctx.Err() != nil {
			return &bus.BatchError{Index: done, Err: err}
		}
		tries++
		permanent, retryable := intent.IsPermanent(err), intent.IsRetryable(err)
		if !permanent && !retryable {
			attempts++
		}
		capped := !permanent && !retryable && attempts >= r.cfg.maxAttempts
		if permanent || capped {
			if !oneByOne {
				// Find the message at fault: go on one by one.
				oneByOne, tries, attempts = true, 0, 0
				continue
			}
			r.log.ErrorContext(ctx, "decision failed for good",
				slog.String("entity_id", ins[done].EntityID.String()), slog.Bool("permanent", permanent),
				slog.Int("attempts", attempts), slog.String("error", err.Error()))
			kind := hooks.ReasonAttempts
			if permanent {
				kind = hooks.ReasonPermanent
			}
			return &bus.BatchError{Index: done, Err: r.deadLetter(traceCtx(ctx, tr, done), msgs[done], err, attempts, kind)}
		}
		if !r.backOff(traceCtx(ctx, tr, done), &bo, &streak, end-done, hooks.RetryDecision, "decision failed; retrying", err, tries,
			slog.String("entity_id", ins[done].EntityID.String()), slog.Int("messages", end-done),
			slog.Bool("retryable", intent.IsRetryable(err))) {
			return &bus.BatchError{Index: done, Err: err}
		}
	}
	return nil
}

// maxConflictRounds bounds how often one attempt decides again the messages
// whose writes met a conflict before it backs off like any other failure.
const maxConflictRounds = 8

// errFoldedPrepare is returned by apply when the decision of an input that
// stood for others (coalesced into it) could not be prepared: the inputs
// from the first of those on are not done, and are to be decided one by one.
var errFoldedPrepare = errors.New("registrar: a coalesced decision could not be prepared")

// errConflicts is returned when conflicts did not settle within
// maxConflictRounds; it is retryable: another writer is busy on the entity.
var errConflicts = intent.Retryable(errors.New("registrar: the state kept changing under the decisions"))

// apply relays what the outbox holds for the entities of ins (decoded from
// msgs, one each), decides and
// applies ins with their entities locked, relays the records the writes
// appended, and returns how many inputs are done. On a
// *dispatch.PrepareError the inputs before the returned count are done and
// the next one is at fault; on any other error nothing is known to be done
// (what was written is decided again as a no-op when retried).
//
// Entities in the state cache (statecache.go) are neither read nor
// relayed: their entry is what the store holds, with nothing pending. What
// the batch leaves in the store is cached once its records are relayed; a
// conflict, a skipped intent or a failed attempt drops the entries.
func (r *Runtime[S]) apply(ctx context.Context, msgs []*bus.Message, ins []reducer.Input, tr []msgTrace) (n int, err error) {
	ids := make([]uuid.UUID, len(ins))
	for i := range ins {
		ids[i] = ins[i].EntityID
	}
	held := r.locks.lock(ids)
	defer held.unlock()
	ids = held.ids // sorted, each entity once
	evolver, canEvolve := r.red.(reducer.Evolver[S])
	states := make(map[uuid.UUID]S, len(ins))
	misses := r.cache.get(ids, states)
	defer func() {
		if err != nil {
			var pe *dispatch.PrepareError
			if !errors.As(err, &pe) {
				r.cache.drop(ids)
			}
		}
	}()
	// Work an earlier decision left in the outbox (a crash, a failover, a
	// failed relay) goes first: an entity's work stays in order, volatile
	// intents included.
	if len(misses) > 0 {
		if err := r.relay(ctx, misses); err != nil {
			return 0, err
		}
	}

	var folded []bool // folded[i]: a later or earlier input stands for ins[i]
	var firstOf []int // firstOf[i]: the first input folded into ins[i], or i
	if co, ok := r.red.(reducer.Coalescer); ok && !r.cfg.noCoalesce && len(ins) > 1 {
		folded, firstOf = coalesce(co, ins)
	}
	limit := len(ins) // inputs at and after limit are not applied
	var prepErr error
	relay := map[uuid.UUID]bool{}
	// after holds the state each entity has in the store after the writes
	// committed so far; uncached, the entities whose entry is dropped: those
	// that conflicted (unless a later round settled them: after has them
	// then) and those whose intent was skipped.
	after := make(map[uuid.UUID]S, len(ins))
	var uncached, skipped []uuid.UUID
	pending := make([]int, len(ins))
	for i := range pending {
		pending[i] = i
	}
	load := misses
	for round := 1; len(pending) > 0; round++ {
		if round > maxConflictRounds {
			return 0, errConflicts
		}
		if round > 1 {
			states = make(map[uuid.UUID]S, len(pending))
			load = make([]uuid.UUID, len(pending))
			for j, i := range pending {
				load[j] = ins[i].EntityID
			}
		}
		if len(load) > 0 {
			span := r.hooks.Start(traceCtx(ctx, tr, pending[0]), hooks.Step{Kind: hooks.StepLoad, Topic: msgs[0].Topic, Count: len(load)})
			loaded, err := r.loadMany(span.Context(), load)
			span.End(err, 0, 0)
			if err != nil {
				return 0, err
			}
			for id, st := range loaded {
				states[id] = st
			}
		}
		now := r.cfg.clock()
		batch := make([]dispatch.Prepared, 0, len(pending))
		owners := make([]int, 0, len(pending))
		for _, i := range pending {
			if i >= limit {
				break
			}
			if folded != nil && folded[i] {
				if round == 1 {
					r.stats.coalesced.Add(1)
					if tr != nil {
						tr[i].coalesced = true
					}
				}
				continue
			}
			in := ins[i]
			st := states[in.EntityID]
			var d reducer.Decision
			if tr == nil {
				d = r.red.Decide(st, in, now)
			} else {
				d = r.decideTraced(tr, i, round, msgs[i], st, in, now)
			}
			if d.IsNoop() {
				r.noop(ctx, msgs[i], &in, &d)
				continue
			}
			p, err := r.applier.Prepare(traceCtx(ctx, tr, i), in.Envelope, in.EntityID, d)
			if err != nil {
				limit, prepErr = i, err
				if firstOf != nil && firstOf[i] < i {
					// Inputs before i stood on this decision: none of
					// them from the first on is done.
					limit, prepErr = firstOf[i], errFoldedPrepare
					batch, owners = keepBefore(batch, owners, limit)
				}
				break
			}
			if canEvolve {
				states[in.EntityID] = evolver.Evolve(st, in, d)
			}
			batch = append(batch, p)
			owners = append(owners, i)
		}
		// An entity whose write conflicted has every message from that
		// one on decided again, those that were no-ops on the overlay
		// included: the overlay assumed the write that did not happen.
		from := map[uuid.UUID]int{}
		if len(batch) > 0 {
			results, err := r.applier.Apply(ctx, batch)
			if err != nil {
				return 0, err
			}
			for j, res := range results {
				r.countResults(res.Results)
				id := batch[j].Write.EntityID
				switch res.Status {
				case dispatch.WriteCommitted:
					if batch[j].Write.Record != nil {
						relay[id] = true
					}
					for _, rr := range res.Results {
						if rr.Status != intent.Applied {
							// A guard held where the overlay saw none
							// (or the other way round): read it again.
							skipped = append(skipped, id)
							uncached = append(uncached, id)
							break
						}
					}
				default:
					r.stats.conflicts.Add(1)
					r.hooks.OnConflict(traceCtx(ctx, tr, owners[j]), id)
					r.log.DebugContext(ctx, "conflict; deciding again",
						slog.String("entity_id", id.String()), slog.String("status", res.Status.String()))
					if k, seen := from[id]; !seen || owners[j] < k {
						from[id] = owners[j]
					}
					uncached = append(uncached, id) // unless a later round settles it
				}
			}
		}
		for id, st := range states {
			if _, conflicted := from[id]; !conflicted {
				after[id] = st
			}
		}
		var next []int
		for _, i := range pending {
			if k, ok := from[ins[i].EntityID]; ok && i >= k && i < limit {
				next = append(next, i)
			}
		}
		pending = next
	}
	if len(relay) > 0 {
		ids := make([]uuid.UUID, 0, len(relay))
		for id := range relay {
			ids = append(ids, id)
		}
		if err := r.relay(ctx, ids); err != nil {
			return 0, err
		}
	}
	switch {
	case errors.Is(prepErr, errFoldedPrepare):
		// The overlay holds decisions that were not written.
		r.cache.drop(ids)
	case canEvolve:
		r.cache.drop(uncached)
		for _, id := range skipped {
			delete(after, id)
		}
		r.cache.put(after)
	}
	if prepErr != nil {
		return limit, prepErr
	}
	return len(ins), nil
}

// coalesce folds the runs of ins that coalesce ([reducer.Coalescer]): two
// inputs of one entity coalesce only if no input of that entity comes
// between them that does not. It returns, by index, whether the input is
// folded into another, and the first input folded into each input that
// stands for others (its own index otherwise); nil if nothing folds.
func coalesce(co reducer.Coalescer, ins []reducer.Input) (folded []bool, firstOf []int) {
	kept := make(map[uuid.UUID]int, len(ins)) // the input of the entity's current run that stands for it
	for j := range ins {
		id := ins[j].EntityID
		k, seen := kept[id]
		if !seen {
			kept[id] = j
			continue
		}
		keepLater, ok := co.Coalesce(ins[k], ins[j])
		switch {
		case !ok:
			kept[id] = j
			continue
		case folded == nil:
			folded, firstOf = make([]bool, len(ins)), make([]int, len(ins))
			for i := range firstOf {
				firstOf[i] = i
			}
		}
		if keepLater {
			folded[k], kept[id] = true, j
			firstOf[j] = firstOf[k]
		} else {
			folded[j] = true
		}
	}
	return folded, firstOf
}

// keepBefore returns the prepared decisions of batch (owned by the inputs
// owners) whose inputs come before limit.
func keepBefore(batch []dispatch.Prepared, owners []int, limit int) ([]dispatch.Prepared, []int) {
	n := 0
	for n < len(owners) && owners[n] < limit {
		n++
	}
	return batch[:n], owners[:n]
}

// decideTraced decides input i of a batch as a step of its trace, and
// records and reports the decision.
func (r *Runtime[S]) decideTraced(tr []msgTrace, i, round int, msg *bus.Message, st S, in reducer.Input, now time.Time) reducer.Decision {
	t := &tr[i]
	span := r.hooks.Start(t.ctx, hooks.Step{Kind: hooks.StepDecide, Topic: msg.Topic, Count: 1})
	d := r.red.Decide(st, in, now)
	span.End(nil, 0, 0)
	t.decided, t.state, t.noop = true, d.State, d.IsNoop()
	if r.hooks.ObservesDecisions() {
		r.hooks.OnDecide(t.ctx, hooks.Decided{Kind: in.Kind, EntityID: in.EntityID, NoOp: t.noop, Reason: d.Reason,
			Warn: d.Warn, State: d.State, Events: len(d.Events), Intents: len(d.Intents), Redecided: round > 1})
	}
	return d
}

func (r *Runtime[S]) countResults(res []intent.Result) {
	r.stats.intents.Add(int64(len(res)))
	for _, rr := range res {
		if rr.Status != intent.Applied {
			r.stats.skipped.Add(1)
		}
	}
}

func (r *Runtime[S]) loadMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]S, error) {
	if bl, ok := r.store.(BatchLoader[S]); ok {
		m, err := bl.LoadMany(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("registrar: load %d states: %w", len(ids), err)
		}
		return m, nil
	}
	m := make(map[uuid.UUID]S, len(ids))
	for _, id := range ids {
		if _, ok := m[id]; ok {
			continue
		}
		st, err := r.store.Load(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("registrar: load state of %s: %w", id, err)
		}
		m[id] = st
	}
	return m, nil
}

// relay relays the pending records of ids (whose locks the caller holds),
// retrying with backoff until every one is done or ctx ends.
func (r *Runtime[S]) relay(ctx context.Context, ids []uuid.UUID) error {
	var bo *backoff.ExponentialBackOff
	var streak uint64 // the retry streak of the readiness check (health.go)
	defer r.health.endStreak(&streak)
	for attempt := 1; ; attempt++ {
		res, err := r.applier.Relay(ctx, ids)
		r.countRelay(res)
		if err == nil {
			return nil
		}
		if !r.backOff(ctx, &bo, &streak, 0, hooks.RetryRelay, "relay failed; retrying", err, attempt, slog.Int("entities", len(ids))) {
			return err
		}
	}
}

func (r *Runtime[S]) countRelay(res dispatch.RelayResult) {
	r.stats.events.Add(int64(res.Events))
	r.stats.intents.Add(int64(res.Intents))
	r.stats.relayed.Add(int64(res.Records))
	r.stats.deadLettered.Add(int64(res.DeadLettered))
}

// relayLoop relays, every relay interval, the records that no decision of
// this runtime relays: those a crash or a failover left behind (on start-up
// too), and those whose relay failed.
func (r *Runtime[S]) relayLoop(ctx context.Context) error {
	t := time.NewTicker(r.cfg.relayInterval)
	defer t.Stop()
	var streak uint64 // the retry streak of the readiness check (health.go)
	defer r.health.endStreak(&streak)
	for {
		err := r.relayOrphans(ctx)
		if err == nil {
			r.health.endStreak(&streak)
		}
		if err != nil && ctx.Err() == nil {
			r.health.retrying(&streak, hooks.RetryRelayTask, 0, time.Now())
			r.stats.retries.Add(1)
			r.hooks.OnRetry(ctx, hooks.Retry{Op: hooks.RetryRelayTask, Attempt: 1, Retryable: intent.IsRetryable(err),
				Permanent: intent.IsPermanent(err), Backoff: r.cfg.relayInterval, Err: err})
			r.log.WarnContext(ctx, "relay of pending records failed; trying again later", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcileLoop runs a reconciliation pass at once, then one every
// reconcile interval, until ctx ends.
func (r *Runtime[S]) reconcileLoop(ctx context.Context) error {
	t := time.NewTicker(r.cfg.reconcileInterval)
	defer t.Stop()
	for {
		st, err := r.cfg.reconciler.Reconcile(ctx)
		r.stats.reconcilePasses.Add(1)
		r.stats.reconcileRegistered.Add(int64(st.Registered))
		r.stats.reconcileUpdated.Add(int64(st.Updated))
		r.stats.reconcileDeregistered.Add(int64(st.Deregistered))
		if ctx.Err() != nil {
			return nil
		}
		attrs := []slog.Attr{slog.Int("projections", st.Projections), slog.Int("services", st.Services),
			slog.Int("registered", st.Registered), slog.Int("updated", st.Updated), slog.Int("deregistered", st.Deregistered),
			slog.Int("failed", st.Failed), slog.Bool("truncated", st.Truncated)}
		switch {
		case err != nil || st.Failed > 0:
			r.stats.reconcileFailures.Add(1)
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			r.log.LogAttrs(ctx, slog.LevelWarn, "reconcile pass failed; the next pass tries again", attrs...)
		case st.Changes() > 0:
			r.log.LogAttrs(ctx, slog.LevelInfo, "reconcile pass repaired the registry", attrs...)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// relayOrphans runs one pass of relayLoop.
func (r *Runtime[S]) relayOrphans(ctx context.Context) error {
	for {
		ids, err := r.applier.PendingEntities(ctx, r.cfg.relayMinAge, orphanPage)
		if err != nil || len(ids) == 0 {
			return err
		}
		h := r.locks.lock(ids)
		res, err := r.applier.Relay(ctx, ids)
		h.unlock()
		r.countRelay(res)
		if err != nil {
			return err
		}
		if res.Records == 0 || len(ids) < orphanPage {
			return nil
		}
	}
}

// orphanPage bounds the records one pass of the relay task reads at once.
const orphanPage = 256

// backOff counts a retry of op (on messages messages; 0 for a relay), logs
// it, reports it to the hooks, records it in the retry streak *streak of the
// readiness check (begun if *streak is 0; the caller ends it), and waits for
// the next backoff interval of *bo (created on first use). It returns false
// if ctx ended first.
func (r *Runtime[S]) backOff(ctx context.Context, bo **backoff.ExponentialBackOff, streak *uint64, messages int, op hooks.RetryOp, msg string, err error, attempt int, attrs ...slog.Attr) bool {
	if ctx.Err() != nil {
		return false
	}
	r.health.retrying(streak, op, messages, time.Now())
	if *bo == nil {
		*bo = backoff.NewExponentialBackOff()
		(*bo).InitialInterval, (*bo).MaxInterval = r.cfg.retryMin, r.cfg.retryMax
	}
	wait := (*bo).NextBackOff()
	r.stats.retries.Add(1)
	r.hooks.OnRetry(ctx, hooks.Retry{Op: op, Attempt: attempt, Retryable: intent.IsRetryable(err),
		Permanent: intent.IsPermanent(err), Backoff: wait, Err: err})
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
