package registrar

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// BatchLoader is an optional interface of a [StateStore]: it loads many
// entities in one round trip. The runtime uses it for micro-batches.
type BatchLoader[S any] interface {
	// LoadMany returns the states of the entities that have one; entities
	// without state are absent from the map.
	LoadMany(ctx context.Context, entityIDs []uuid.UUID) (map[uuid.UUID]S, error)
}

// HandleBatch processes the messages of one partition, in order, as one
// micro-batch: it decodes them, loads the states of their entities at once,
// decides them in order against an in-memory overlay of the batch's own
// writes (when the reducer implements reducer.Evolver), hands all intents of
// one type to the effect's batch path, publishes the events in one call, and
// returns nil so the bus commits once. Per-entity order and at-least-once
// hold as for single messages:
//
//   - A batch is cut into segments so that no entity has more than one
//     decision with events per segment; a segment's writes are applied and
//     its events published before the next is decided. (A redelivery
//     recognizes only an entity's last state change, so a crash between
//     writes and publish must leave at most one change unannounced.)
//   - An entity whose write met a conflict has its messages of the segment
//     decided again one by one, against the current state, and its events
//     from the batch decision are not published.
//   - An infrastructure error retries the rest of the batch with backoff; a
//     permanent effect error makes the runtime process the segment message
//     by message, so that only the message that caused it is dead-lettered.
//   - A content error at message i processes the messages before it, then
//     returns a *bus.BatchError so the bus dead-letters message i and goes on.
func (r *Runtime[S]) HandleBatch(ctx context.Context, msgs []*bus.Message) error {
	sc, _ := r.scratch.Get().(*batchScratch)
	if sc == nil {
		sc = &batchScratch{flags: map[uuid.UUID]uint8{}}
	}
	defer func() {
		sc.reset()
		r.scratch.Put(sc)
	}()
	return r.handleBatch(ctx, msgs, sc)
}

func (r *Runtime[S]) handleBatch(ctx context.Context, msgs []*bus.Message, sc *batchScratch) error {
	ins := sc.ins[:0]
	defer func() { sc.ins = ins }()
	for i, m := range msgs {
		in, err := r.decode(m)
		if err != nil {
			if err := r.processBatch(ctx, msgs[:i], ins, sc); err != nil {
				return err
			}
			return &bus.BatchError{Index: i, Err: r.deadLetter(ctx, m, err)}
		}
		ins = append(ins, in)
	}
	return r.processBatch(ctx, msgs, ins, sc)
}

// processBatch applies ins (decoded from msgs) segment by segment, retrying
// infrastructure errors until ctx ends; it returns nil or a *bus.BatchError.
func (r *Runtime[S]) processBatch(ctx context.Context, msgs []*bus.Message, ins []reducer.Input, sc *batchScratch) error {
	if len(ins) == 0 {
		return nil
	}
	if len(ins) == 1 {
		if err := r.process(ctx, msgs[0], ins[0]); err != nil {
			return &bus.BatchError{Index: 0, Err: err}
		}
		return nil
	}
	var bo *backoff.ExponentialBackOff
	done := 0 // messages before done are applied and published
	for attempt := 1; done < len(ins); attempt++ {
		n, err := r.applyBatch(ctx, ins[done:], sc)
		done += n
		if err == nil {
			continue
		}
		if intent.IsPermanent(err) {
			// Find the culprit: process the failed segment one by one.
			for i := done; i < len(ins); i++ {
				if err := r.process(ctx, msgs[i], ins[i]); err != nil {
					return &bus.BatchError{Index: i, Err: err}
				}
			}
			return nil
		}
		if !r.backOff(ctx, &bo, "batch failed; retrying", err, attempt, slog.Int("messages", len(ins)-done)) {
			return &bus.BatchError{Index: done, Err: err}
		}
	}
	return nil
}

// batchScratch holds the buffers of one batch, reused from batch to batch
// (a batch of a thousand messages would otherwise allocate, and the garbage
// collector clear, hundreds of kilobytes).
type batchScratch struct {
	ins     []reducer.Input
	ids     []uuid.UUID
	seg     []decided
	results []intent.Result
	flags   map[uuid.UUID]uint8 // entityDecided, entityAnnounced
	ranks   intentRanks
}

const (
	entityDecided   uint8 = 1 << iota // decided in this segment
	entityAnnounced                   // has a decision with events in this segment
)

// reset drops the references the buffers hold, keeping their capacity.
func (b *batchScratch) reset() {
	clear(b.ins[:cap(b.ins)])
	clear(b.seg[:cap(b.seg)])
	clear(b.results[:cap(b.results)])
	b.ins, b.ids, b.seg, b.results = b.ins[:0], b.ids[:0], b.seg[:0], b.results[:0]
	clear(b.flags)
	b.ranks.reset()
}

// decided is one message's decision in a segment.
type decided struct {
	in      reducer.Input
	d       reducer.Decision
	results []intent.Result
	skipped bool // its entity conflicted: handled one by one instead
}

// applyBatch decides and applies segments of ins until all are done or one
// fails, and returns how many messages it finished.
func (r *Runtime[S]) applyBatch(ctx context.Context, ins []reducer.Input, sc *batchScratch) (int, error) {
	ids := sc.ids[:0]
	for _, in := range ins {
		ids = append(ids, in.EntityID)
	}
	sc.ids = ids
	defer r.locks.lock(ids).unlock()
	states, err := r.loadMany(ctx, ids)
	if err != nil {
		return 0, err
	}
	evolver, canEvolve := r.red.(reducer.Evolver[S])
	done := 0
	for done < len(ins) {
		// Decide one segment.
		seg := sc.seg[:0]
		clear(sc.flags)
		sc.ranks.reset()
		for _, in := range ins[done:] {
			id := in.EntityID
			f := sc.flags[id]
			if f&entityDecided != 0 && !canEvolve {
				break
			}
			st := states[id]
			d := r.red.Decide(st, in, in.Envelope.EnvelopeTimestamp)
			if len(d.Events) > 0 && f&entityAnnounced != 0 {
				break
			}
			if !sc.ranks.fits(id, d.Intents) {
				break
			}
			sc.ranks.add(id, d.Intents)
			if len(d.Events) > 0 {
				f |= entityAnnounced
			}
			if canEvolve {
				states[id] = evolver.Evolve(st, in, d)
			}
			sc.flags[id] = f | entityDecided
			seg = append(seg, decided{in: in, d: d})
		}
		sc.seg = seg
		if err := r.executeSegment(ctx, seg, sc); err != nil {
			return done, err
		}
		// Entities that conflicted: decide their messages again, one by
		// one, against what the store holds now.
		conflicted := map[uuid.UUID]bool{}
		for i := range seg {
			for _, res := range seg[i].results {
				if res.Status == intent.Conflict {
					conflicted[seg[i].in.EntityID] = true
				}
			}
		}
		for i := range seg {
			seg[i].skipped = conflicted[seg[i].in.EntityID]
		}
		if err := r.publishSegment(ctx, seg); err != nil {
			return done, err
		}
		for i := range seg {
			if !seg[i].skipped {
				continue
			}
			r.stats.conflicts.Add(1)
			if err := r.decideAndApplyLocked(ctx, seg[i].in); err != nil {
				// Messages before it are done; it and the rest retry.
				return done + i, err
			}
		}
		for id := range conflicted {
			delete(states, id) // reloaded below if a later segment needs it
		}
		r.stats.handled.Add(int64(len(seg)))
		done += len(seg)
		if len(conflicted) > 0 && done < len(ins) {
			rest := make([]uuid.UUID, 0, len(conflicted))
			for id := range conflicted {
				rest = append(rest, id)
			}
			fresh, err := r.loadMany(ctx, rest)
			if err != nil {
				return done, err
			}
			for id, st := range fresh {
				states[id] = st
			}
		}
	}
	return done, nil
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

// intentRanks orders the intent types of a segment by first appearance.
// The segment executes its intents a type at a time in that order, so:
//
//   - a decision's own intents must come in increasing rank, since an intent
//     after a conflict must not run;
//   - an entity's intents of one family (the type's prefix before the first
//     dot: "postgres", "consul"), across all its decisions in the segment,
//     must come in non-decreasing rank, or one write to a system would
//     overtake an earlier one to the same system. Writes to different
//     systems are independent.
type intentRanks struct {
	order []string
	rank  map[string]int
	last  map[familyKey]int // the highest rank each entity used per family
}

type familyKey struct {
	id     uuid.UUID
	family string
}

func family(typ string) string {
	if i := strings.IndexByte(typ, '.'); i >= 0 {
		return typ[:i]
	}
	return typ
}

// fits reports whether entity id's next decision, with ins, keeps the
// order rules above.
func (r *intentRanks) fits(id uuid.UUID, ins []intent.Intent) bool {
	var pending []string
	prev := -1
	last := map[string]int{}
	for _, in := range ins {
		k, ok := r.rank[in.Type]
		if !ok {
			k = slices.Index(pending, in.Type)
			if k < 0 {
				pending = append(pending, in.Type)
				k = len(pending) - 1
			}
			k += len(r.order)
		}
		if k < prev {
			return false
		}
		prev = k
		f := family(in.Type)
		floor, seen := last[f]
		if !seen {
			if floor, seen = r.last[familyKey{id, f}]; !seen {
				floor = -1
			}
		}
		if k < floor {
			return false
		}
		last[f] = k
	}
	return true
}

// reset empties r, keeping its maps.
func (r *intentRanks) reset() {
	r.order = r.order[:0]
	clear(r.rank)
	clear(r.last)
}

func (r *intentRanks) add(id uuid.UUID, ins []intent.Intent) {
	if r.rank == nil {
		r.rank, r.last = map[string]int{}, map[familyKey]int{}
	}
	for _, in := range ins {
		k, ok := r.rank[in.Type]
		if !ok {
			k = len(r.order)
			r.rank[in.Type] = k
			r.order = append(r.order, in.Type)
		}
		r.last[familyKey{id, family(in.Type)}] = k
	}
}

// executeSegment executes the segment's intents grouped by type, in the
// order the types first appear (see intentRanks), each group through the
// effect's batch path when it has one. An intent after a conflict of the
// same decision is not executed.
func (r *Runtime[S]) executeSegment(ctx context.Context, seg []decided, sc *batchScratch) error {
	// The ranks of the segment's decisions are the order types first appear.
	order := sc.ranks.order
	total := 0
	for i := range seg {
		total += len(seg[i].d.Intents)
	}
	slab := sc.results[:0]
	if cap(slab) < total {
		slab = make([]intent.Result, 0, total)
		sc.results = slab
	}
	for i := range seg {
		n := len(seg[i].d.Intents)
		seg[i].results = slab[len(slab) : len(slab) : len(slab)+n]
		slab = slab[:len(slab)+n]
	}
	for _, typ := range order {
		var batch []intent.Intent
		var owners []int
		for i := range seg {
			rs := seg[i].results
			if len(rs) > 0 && rs[len(rs)-1].Status == intent.Conflict {
				continue
			}
			for _, in := range seg[i].d.Intents[len(rs):] {
				if in.Type != typ {
					break
				}
				batch = append(batch, in)
				owners = append(owners, i)
			}
		}
		if len(batch) == 0 {
			continue
		}
		res, err := r.executeGroup(ctx, typ, batch)
		r.countResults(res)
		for j, rr := range res {
			seg[owners[j]].results = append(seg[owners[j]].results, rr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Runtime[S]) executeGroup(ctx context.Context, typ string, batch []intent.Intent) ([]intent.Result, error) {
	eff, ok := r.exec.Effect(typ)
	if be, isBatch := eff.(intent.BatchEffect); ok && isBatch && len(batch) > 1 {
		res, err := be.ExecuteBatch(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("registrar: execute %d %s intents: %w", len(batch), typ, err)
		}
		if len(res) != len(batch) {
			return nil, fmt.Errorf("registrar: effect for %s returned %d results for %d intents", typ, len(res), len(batch))
		}
		return res, nil
	}
	res := make([]intent.Result, 0, len(batch))
	for _, in := range batch {
		rr, err := r.exec.Execute(ctx, in)
		if err != nil {
			return res, fmt.Errorf("registrar: execute %s %s: %w", in.Type, in.Target, err)
		}
		res = append(res, rr)
	}
	return res, nil
}

func (r *Runtime[S]) countResults(res []intent.Result) {
	r.stats.intents.Add(int64(len(res)))
	for _, rr := range res {
		if rr.Status != intent.Applied {
			r.stats.skipped.Add(1)
		}
	}
}

// publishSegment publishes the events of the segment's decisions that did
// not conflict, in decision order, in one call.
func (r *Runtime[S]) publishSegment(ctx context.Context, seg []decided) error {
	var out []*bus.Message
	for i := range seg {
		if seg[i].skipped {
			continue
		}
		d := seg[i].d
		if d.IsNoop() {
			r.stats.noops.Add(1)
		}
		for j, ev := range d.Events {
			env, err := r.applier.Envelope(seg[i].in.Envelope, j, ev)
			if err != nil {
				return err
			}
			m, err := bus.EnvelopeMessage(ev.Topic, env, bus.WithKey(ev.PartitionKey()))
			if err != nil {
				return err
			}
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil
	}
	if err := r.bus.Publish(ctx, out...); err != nil {
		return fmt.Errorf("registrar: publish %d events: %w", len(out), err)
	}
	r.stats.events.Add(int64(len(out)))
	return nil
}
