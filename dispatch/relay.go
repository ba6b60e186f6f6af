package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/intent"
)

// RelayResult counts what a relay did.
type RelayResult struct {
	// Records counts the records finished and removed.
	Records int
	// Intents counts the recorded intents executed without error.
	Intents int
	// Events counts the events published.
	Events int
	// DeadLettered counts the recorded intents given up on: failed
	// permanently, or without a retryable mark MaxAttempts times.
	DeadLettered int
}

func (r *RelayResult) add(o RelayResult) {
	r.Records += o.Records
	r.Intents += o.Intents
	r.Events += o.Events
	r.DeadLettered += o.DeadLettered
}

// relayPage bounds the records one Pending call returns.
const relayPage = 1024

// Header names of a dead-lettered recorded intent, beside the
// [bus.HeaderDLQReason] family.
const (
	HeaderDLQIntentType = "dlq_intent_type"
	HeaderDLQAttempts   = "dlq_attempts"
	HeaderDLQCause      = "dlq_cause_envelope_id"
	// OutboxTopic is the dlq_original_topic of a dead-lettered recorded
	// intent: it came from the outbox, not from a topic.
	OutboxTopic = "registrar.outbox"
)

// Relay executes and publishes the pending records of entities, oldest
// first per entity, and removes each record once its intents ran and its
// events were published. It relays under the entities' relay lease
// ([Outbox.Lease]), so that no other relay, in this process or another,
// works on them meanwhile.
//
// Records of one entity are relayed strictly in order: a record whose
// intent or publish fails stops that entity's later records. Other
// entities go on. Relay returns the first such error once it did what it
// could; the failed records stay pending for the next call, which repeats
// what they had done (effects are idempotent, event envelope ids are
// deterministic).
func (a *Applier) Relay(ctx context.Context, entities []uuid.UUID) (RelayResult, error) {
	var total RelayResult
	// Most calls find nothing: look before taking the lease, which costs
	// a transaction on Postgres.
	if peek, err := a.outbox.Pending(ctx, entities, 1); err != nil {
		return total, fmt.Errorf("registrar/dispatch: read pending records: %w", err)
	} else if len(peek) == 0 {
		return total, nil
	}
	for {
		lease, err := a.outbox.Lease(ctx, entities, relayPage)
		if err != nil {
			return total, fmt.Errorf("registrar/dispatch: lease pending records: %w", err)
		}
		recs := lease.Records()
		a.attempts.retain(entities, recs)
		res, err := a.relay(ctx, lease, recs)
		if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			// The removals may not have taken: the records are relayed
			// again, with the same ids.
			err = fmt.Errorf("registrar/dispatch: release the relay lease: %w", rerr)
		}
		total.add(res)
		if err != nil || len(recs) < relayPage {
			return total, err
		}
	}
}

// PendingEntities returns the entities whose oldest record was appended at
// least minAge ago, oldest first, at most limit of them: what a relay task
// hands to [Applier.Relay] after a crash or a failover left records behind.
func (a *Applier) PendingEntities(ctx context.Context, minAge time.Duration, limit int) ([]uuid.UUID, error) {
	ids, err := a.outbox.PendingEntities(ctx, minAge, limit)
	if err != nil {
		return nil, fmt.Errorf("registrar/dispatch: read pending entities: %w", err)
	}
	return ids, nil
}

// relay relays recs (ordered by Seq) in waves: each wave takes the oldest
// remaining record of every entity that has not failed.
func (a *Applier) relay(ctx context.Context, lease Lease, recs []Record) (RelayResult, error) {
	var total RelayResult
	var first error
	byEntity := map[uuid.UUID][]*Record{}
	var order []uuid.UUID
	for i := range recs {
		id := recs[i].EntityID
		if _, ok := byEntity[id]; !ok {
			order = append(order, id)
		}
		byEntity[id] = append(byEntity[id], &recs[i])
	}
	for len(order) > 0 {
		wave := make([]*Record, 0, len(order))
		for _, id := range order {
			wave = append(wave, byEntity[id][0])
		}
		failed, res, err := a.relayWave(ctx, lease, wave)
		total.add(res)
		if err != nil && first == nil {
			first = err
		}
		next := order[:0]
		for i, id := range order {
			if failed[i] {
				continue
			}
			if rest := byEntity[id][1:]; len(rest) > 0 {
				byEntity[id] = rest
				next = append(next, id)
			}
		}
		order = next
		if err := ctx.Err(); err != nil && len(order) > 0 && first == nil {
			// Records remain: the caller must not take the entities as done.
			first = intent.Retryable(fmt.Errorf("registrar/dispatch: relay stopped with records left: %w", err))
			break
		}
	}
	return total, first
}

// relayWave relays records of distinct entities: their intents step by
// step (the i-th intent of every record together, grouped by type), then
// all their events in one publish. It reports which records failed.
func (a *Applier) relayWave(ctx context.Context, lease Lease, wave []*Record) ([]bool, RelayResult, error) {
	var res RelayResult
	var first error
	failed := make([]bool, len(wave))
	// Each record's work runs in the trace context it carries.
	var rctx []context.Context
	if a.hooks != nil {
		rctx = make([]context.Context, len(wave))
		for i, r := range wave {
			rctx[i] = a.hooks.Extract(ctx, r.Trace)
		}
	}
	recCtx := func(i int) context.Context {
		if rctx == nil {
			return ctx
		}
		return rctx[i]
	}
	fail := func(i int, err error) {
		failed[i] = true
		if first == nil {
			first = err
		}
	}
	for i, r := range wave {
		if r.Invalid == nil {
			continue
		}
		// A stored record that does not decode: dead-letter it as stored,
		// and let the entity's later records go on.
		orig := outboxOrigin(r, r.Raw, nil)
		if err := a.publishDeadLetter(ctx, orig, r.Invalid); err != nil {
			fail(i, err)
			continue
		}
		a.log.ErrorContext(ctx, "outbox record does not decode; dead-lettered it",
			slog.String("entity_id", r.EntityID.String()), slog.Int64("seq", r.Seq), slog.String("error", r.Invalid.Error()))
		a.reportDeadLetter(ctx, r, 1, r.Invalid)
		res.DeadLettered++
	}
	for step := 0; ; step++ {
		var ins []intent.Intent
		var owners []int
		var ctxs []context.Context
		more := false
		for i, r := range wave {
			if failed[i] || r.Invalid != nil || step >= len(r.Intents) {
				continue
			}
			more = true
			ri := &r.Intents[step]
			in, err := a.decodeIntent(ri)
			if err != nil {
				if derr := a.deadLetterIntent(ctx, r, step, err, 1); derr != nil {
					fail(i, derr)
					continue
				}
				a.reportDeadLetter(recCtx(i), r, 1, err)
				res.DeadLettered++
				continue
			}
			ins = append(ins, in)
			owners = append(owners, i)
			if rctx != nil {
				ctxs = append(ctxs, rctx[i])
			}
		}
		if !more {
			break
		}
		if len(ins) == 0 {
			continue
		}
		_, stepErr := a.executeByType(ctx, ins, ctxs)
		if stepErr == nil {
			for _, i := range owners {
				a.attempts.clear(wave[i].EntityID, wave[i].Seq, step)
			}
			res.Intents += len(ins)
			continue
		}
		// Something in the step failed: run its intents one by one to
		// know which, and to let the others through (one intent alone
		// failed already).
		for j, in := range ins {
			i := owners[j]
			r := wave[i]
			err := stepErr
			if len(ins) > 1 {
				_, err = a.executeGroup(recCtx(i), in.Type, []intent.Intent{in})
			}
			if err == nil {
				res.Intents++
				a.attempts.clear(r.EntityID, r.Seq, step)
				continue
			}
			// Only errors that carry no mark count against MaxAttempts:
			// the environment's (retryable) are retried for as long as
			// it takes.
			n := 1
			if !intent.IsRetryable(err) && !intent.IsPermanent(err) {
				n = a.attempts.inc(r.EntityID, r.Seq, step)
			}
			giveUp := intent.IsPermanent(err) || (!intent.IsRetryable(err) && n >= a.cfg.MaxAttempts)
			if !giveUp {
				a.log.WarnContext(ctx, "recorded intent failed; will retry",
					slog.String("entity_id", r.EntityID.String()), slog.String("intent_type", in.Type),
					slog.Int("attempt", n), slog.Bool("retryable", intent.IsRetryable(err)), slog.String("error", err.Error()))
				fail(i, fmt.Errorf("registrar/dispatch: relay record %d of %s: %w", r.Seq, r.EntityID, err))
				continue
			}
			if derr := a.deadLetterIntent(ctx, r, step, err, n); derr != nil {
				fail(i, derr)
				continue
			}
			a.reportDeadLetter(recCtx(i), r, 1, err)
			a.attempts.clear(r.EntityID, r.Seq, step)
			res.DeadLettered++
		}
	}
	var msgs []*bus.Message
	firstEv := -1 // the first record with events
	for i, r := range wave {
		if failed[i] || r.Invalid != nil {
			continue
		}
		if len(r.Messages) > 0 && firstEv < 0 {
			firstEv = i
		}
		for k := range r.Messages {
			msgs = append(msgs, r.Messages[k].message())
		}
	}
	if len(msgs) > 0 {
		if err := a.publish(recCtx(firstEv), msgs); err != nil {
			// Publish each record's events on their own, so that one
			// failing message does not make every other record's
			// events go out again and again.
			for i, r := range wave {
				if failed[i] || len(r.Messages) == 0 {
					continue
				}
				one := make([]*bus.Message, len(r.Messages))
				for k := range r.Messages {
					one[k] = r.Messages[k].message()
				}
				err := a.publish(recCtx(i), one)
				if errors.Is(err, bus.ErrMessageTooLarge) || intent.IsPermanent(err) {
					// The bus refuses them whatever happens: their
					// record cannot be done. Dead-letter them and go on.
					// (Any other publish error is the transport's, and
					// is retried for as long as it takes.)
					reason := err
					err = a.deadLetterEvents(ctx, r, reason)
					if err == nil {
						a.reportDeadLetter(recCtx(i), r, len(one), reason)
						res.DeadLettered += len(one)
						continue
					}
				}
				if err != nil {
					fail(i, fmt.Errorf("registrar/dispatch: publish %d events of %s: %w", len(one), r.EntityID, err))
					continue
				}
				res.Events += len(one)
			}
		} else {
			res.Events += len(msgs)
		}
	}
	var seqs []int64
	for i, r := range wave {
		if !failed[i] {
			seqs = append(seqs, r.Seq)
		}
	}
	if len(seqs) > 0 {
		if err := lease.Done(ctx, seqs); err != nil {
			// Published but not removed: the next relay publishes
			// them again, with the same ids.
			for i := range wave {
				if !failed[i] {
					fail(i, fmt.Errorf("registrar/dispatch: remove %d relayed records: %w", len(seqs), err))
				}
			}
			return failed, res, first
		}
		res.Records += len(seqs)
	}
	return failed, res, first
}

// publish publishes msgs, reported as one [hooks.StepPublish] in ctx.
func (a *Applier) publish(ctx context.Context, msgs []*bus.Message) error {
	if a.hooks == nil {
		return a.pub.Publish(ctx, msgs...)
	}
	st := hooks.Step{Kind: hooks.StepPublish, Topic: msgs[0].Topic, Count: len(msgs)}
	for _, m := range msgs[1:] {
		if m.Topic != st.Topic {
			st.Topic = ""
			break
		}
	}
	span := a.hooks.Start(ctx, st)
	err := a.pub.Publish(span.Context(), msgs...)
	span.End(err, 0, 0)
	return err
}

// reportDeadLetter reports to the hooks that n items of record r were
// dead-lettered for reason.
func (a *Applier) reportDeadLetter(ctx context.Context, r *Record, n int, reason error) {
	a.hooks.OnDeadLetter(ctx, hooks.DeadLetter{Reason: hooks.ReasonRelay, Topic: OutboxTopic,
		Partition: -1, Offset: r.Seq, Count: n, Err: reason})
}

func (a *Applier) decodeIntent(ri *RecordedIntent) (intent.Intent, error) {
	if a.cfg.Decode == nil {
		return intent.Intent{}, intent.Permanent(errors.New("registrar/dispatch: no payload decoder to read recorded intents with"))
	}
	payload, err := a.cfg.Decode(ri.Type, ri.Payload)
	if err != nil {
		return intent.Intent{}, intent.Permanent(fmt.Errorf("registrar/dispatch: decode recorded %s payload: %w", ri.Type, err))
	}
	return intent.Intent{Type: ri.Type, Target: ri.Target, CorrelationID: ri.CorrelationID, Payload: payload}, nil
}

// deadLetterIntent publishes recorded intent step of r to the dead-letter
// topic with the reason, or logs it if there is none.
func (a *Applier) deadLetterIntent(ctx context.Context, r *Record, step int, reason error, attempts int) error {
	ri := &r.Intents[step]
	a.log.ErrorContext(ctx, "recorded intent failed for good; dead-lettering it",
		slog.String("entity_id", r.EntityID.String()), slog.String("intent_type", ri.Type),
		slog.String("target", ri.Target), slog.Int("attempts", attempts), slog.String("error", reason.Error()))
	if a.cfg.DeadLetterTopic == "" {
		return nil
	}
	value, err := json.Marshal(ri)
	if err != nil {
		return fmt.Errorf("registrar/dispatch: encode dead letter: %w", err)
	}
	orig := outboxOrigin(r, value, bus.Headers{
		HeaderDLQIntentType:   ri.Type,
		HeaderDLQAttempts:     strconv.Itoa(attempts),
		HeaderDLQCause:        r.Cause.String(),
		bus.HeaderContentType: bus.ContentTypeJSON,
	})
	if err := a.publishDeadLetter(ctx, orig, reason); err != nil {
		return fmt.Errorf("registrar/dispatch: dead-letter recorded %s of %s: %w", ri.Type, r.EntityID, err)
	}
	return nil
}

// deadLetterEvents publishes the events of r, which the bus refused as too
// large, to the dead-letter topic (cut to fit), or logs them if there is
// none.
func (a *Applier) deadLetterEvents(ctx context.Context, r *Record, reason error) error {
	a.log.ErrorContext(ctx, "recorded events are too large for the bus; dead-lettering them",
		slog.String("entity_id", r.EntityID.String()), slog.Int("events", len(r.Messages)), slog.String("error", reason.Error()))
	if a.cfg.DeadLetterTopic == "" {
		return nil
	}
	for k := range r.Messages {
		m := r.Messages[k].message()
		m.Partition, m.Offset = -1, r.Seq
		if err := a.publishDeadLetter(ctx, m, reason); err != nil {
			return fmt.Errorf("registrar/dispatch: dead-letter events of %s: %w", r.EntityID, err)
		}
	}
	return nil
}

// outboxOrigin is the message a dead letter of record r names as its
// origin: the outbox (OutboxTopic, the record's Seq as offset), keyed by
// the entity.
func outboxOrigin(r *Record, value []byte, h bus.Headers) *bus.Message {
	return &bus.Message{Topic: OutboxTopic, Partition: -1, Offset: r.Seq, Key: []byte(r.EntityID.String()), Value: value, Headers: h}
}

// publishDeadLetter publishes the dead letter of orig, cut to the bus's size
// limit.
func (a *Applier) publishDeadLetter(ctx context.Context, orig *bus.Message, reason error) error {
	dl, err := bus.FitDeadLetter(bus.DeadLetter(a.cfg.DeadLetterTopic, "", orig, reason, time.Now()), a.sizeLimit())
	if err != nil {
		return err
	}
	return a.pub.Publish(ctx, dl)
}

// attemptCounter counts failed attempts of recorded intents that carry no
// retry mark, by record and intent. An entry not touched for
// attemptsForget is dropped (its record was finished elsewhere, or is
// retried so slowly that a restarted count costs nothing), so the counter
// stays bounded by the records failing now.
type attemptCounter struct {
	mu     sync.Mutex
	n      map[attemptKey]attemptCount
	pruned time.Time
	now    func() time.Time // nil: time.Now
}

type attemptKey struct {
	entity uuid.UUID
	seq    int64
	step   int
}

type attemptCount struct {
	n  int
	at time.Time
}

// attemptsForget is how long an attempt count is kept without a new
// failure.
const attemptsForget = 10 * time.Minute

func (c *attemptCounter) inc(entity uuid.UUID, seq int64, step int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	if c.n == nil {
		c.n = map[attemptKey]attemptCount{}
	}
	if now.Sub(c.pruned) > time.Minute {
		for k, v := range c.n {
			if now.Sub(v.at) > attemptsForget {
				delete(c.n, k)
			}
		}
		c.pruned = now
	}
	k := attemptKey{entity, seq, step}
	v := c.n[k]
	v.n++
	v.at = now
	c.n[k] = v
	return v.n
}

func (c *attemptCounter) clear(entity uuid.UUID, seq int64, step int) {
	c.mu.Lock()
	delete(c.n, attemptKey{entity, seq, step})
	c.mu.Unlock()
}

// retain forgets the counts of records of entities that are no longer
// pending (finished here or by another process).
func (c *attemptCounter) retain(entities []uuid.UUID, pending []Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.n) == 0 {
		return
	}
	of := make(map[uuid.UUID]bool, len(entities))
	for _, id := range entities {
		of[id] = true
	}
	alive := make(map[int64]bool, len(pending))
	for _, r := range pending {
		alive[r.Seq] = true
	}
	for k := range c.n {
		if of[k.entity] && !alive[k.seq] {
			delete(c.n, k)
		}
	}
}
