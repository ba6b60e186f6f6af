package hooks

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// Set holds hooks sorted by the interfaces they implement, and reports to
// them. Components call its methods at the points they observe; every
// method is safe on a nil *Set, which reports nothing. A Set is immutable
// and safe for concurrent use.
//
// Several hooks of one interface are called in the order given to [New].
// The contexts of [MessageTracer] and [StepTracer] are chained: the second
// hook's Start gets the context the first returned, and every End gets the
// last one.
type Set struct {
	msg      []MessageTracer
	step     []StepTracer
	prop     []Propagator
	decode   []DecodeHook
	decide   []DecideHook
	retry    []RetryHook
	dead     []DeadLetterHook
	conflict []ConflictHook
	batch    []BatchHook
	part     []PartitionHook
	sweep    []SweepHook
}

// New returns the Set of hooks, or nil if there are none. A nil hook, or a
// value that implements none of this package's interfaces, is an error.
func New(hooks ...Hook) (*Set, error) {
	if len(hooks) == 0 {
		return nil, nil
	}
	s := &Set{}
	for i, h := range hooks {
		if h == nil {
			return nil, fmt.Errorf("registrar/hooks: hook %d is nil", i)
		}
		n := 0
		add := func(ok bool) {
			if ok {
				n++
			}
		}
		if v, ok := h.(MessageTracer); ok {
			s.msg = append(s.msg, v)
			add(ok)
		}
		if v, ok := h.(StepTracer); ok {
			s.step = append(s.step, v)
			add(ok)
		}
		if v, ok := h.(Propagator); ok {
			s.prop = append(s.prop, v)
			add(ok)
		}
		if v, ok := h.(DecodeHook); ok {
			s.decode = append(s.decode, v)
			add(ok)
		}
		if v, ok := h.(DecideHook); ok {
			s.decide = append(s.decide, v)
			add(ok)
		}
		if v, ok := h.(RetryHook); ok {
			s.retry = append(s.retry, v)
			add(ok)
		}
		if v, ok := h.(DeadLetterHook); ok {
			s.dead = append(s.dead, v)
			add(ok)
		}
		if v, ok := h.(ConflictHook); ok {
			s.conflict = append(s.conflict, v)
			add(ok)
		}
		if v, ok := h.(BatchHook); ok {
			s.batch = append(s.batch, v)
			add(ok)
		}
		if v, ok := h.(PartitionHook); ok {
			s.part = append(s.part, v)
			add(ok)
		}
		if v, ok := h.(SweepHook); ok {
			s.sweep = append(s.sweep, v)
			add(ok)
		}
		if n == 0 {
			return nil, fmt.Errorf("registrar/hooks: hook %d (%T) implements none of the hook interfaces", i, h)
		}
	}
	return s, nil
}

// TracesMessages reports whether a [MessageTracer] is installed: whether
// [Set.MessageStart] may return a context other than its argument.
func (s *Set) TracesMessages() bool { return s != nil && len(s.msg) > 0 }

// MessageStart calls every MessageTracer's MessageStart and returns the
// last context.
func (s *Set) MessageStart(ctx context.Context, m *bus.Message, env *bus.Envelope) context.Context {
	if s == nil {
		return ctx
	}
	for _, h := range s.msg {
		ctx = h.MessageStart(ctx, m, env)
	}
	return ctx
}

// MessageEnd calls every MessageTracer's MessageEnd.
func (s *Set) MessageEnd(ctx context.Context, m *bus.Message, end MessageEnd) {
	if s == nil {
		return
	}
	for _, h := range s.msg {
		h.MessageEnd(ctx, m, end)
	}
}

// Span is a step in progress, from [Set.Start]. The zero Span does nothing.
type Span struct {
	s     *Set
	ctx   context.Context
	step  Step
	start time.Time
}

// Start starts step st: it calls every StepTracer's StepStart. End the
// returned Span with [Span.End]. Without step tracers, Start costs a
// branch.
func (s *Set) Start(ctx context.Context, st Step) Span {
	if s == nil || len(s.step) == 0 {
		return Span{ctx: ctx}
	}
	for _, h := range s.step {
		ctx = h.StepStart(ctx, st)
	}
	return Span{s: s, ctx: ctx, step: st, start: time.Now()}
}

// Context returns the context the step runs in: the last StepStart's, or
// the context Start was given.
func (sp Span) Context() context.Context { return sp.ctx }

// End ends the step with its error and counts; it sets the duration.
func (sp Span) End(err error, skipped, conflicts int) {
	if sp.s == nil {
		return
	}
	end := StepEnd{Duration: time.Since(sp.start), Err: err, Skipped: skipped, Conflicts: conflicts}
	for _, h := range sp.s.step {
		h.StepEnd(sp.ctx, sp.step, end)
	}
}

// Propagates reports whether a [Propagator] is installed.
func (s *Set) Propagates() bool { return s != nil && len(s.prop) > 0 }

// Inject calls every Propagator's Inject.
func (s *Set) Inject(ctx context.Context, carrier map[string]string, env *bus.Envelope) {
	if s == nil {
		return
	}
	for _, p := range s.prop {
		p.Inject(ctx, carrier, env)
	}
}

// Extract calls every Propagator's Extract and returns the last context.
func (s *Set) Extract(ctx context.Context, carrier map[string]string) context.Context {
	if s == nil || len(carrier) == 0 {
		return ctx
	}
	for _, p := range s.prop {
		ctx = p.Extract(ctx, carrier)
	}
	return ctx
}

// ObservesDecodes reports whether a [DecodeHook] is installed.
func (s *Set) ObservesDecodes() bool { return s != nil && len(s.decode) > 0 }

// OnDecode calls every DecodeHook.
func (s *Set) OnDecode(ctx context.Context, m *bus.Message, d Decoded) {
	if s == nil {
		return
	}
	for _, h := range s.decode {
		h.OnDecode(ctx, m, d)
	}
}

// ObservesDecisions reports whether a [DecideHook] is installed.
func (s *Set) ObservesDecisions() bool { return s != nil && len(s.decide) > 0 }

// OnDecide calls every DecideHook.
func (s *Set) OnDecide(ctx context.Context, d Decided) {
	if s == nil {
		return
	}
	for _, h := range s.decide {
		h.OnDecide(ctx, d)
	}
}

// OnRetry calls every RetryHook.
func (s *Set) OnRetry(ctx context.Context, r Retry) {
	if s == nil {
		return
	}
	for _, h := range s.retry {
		h.OnRetry(ctx, r)
	}
}

// OnDeadLetter calls every DeadLetterHook.
func (s *Set) OnDeadLetter(ctx context.Context, d DeadLetter) {
	if s == nil {
		return
	}
	for _, h := range s.dead {
		h.OnDeadLetter(ctx, d)
	}
}

// OnConflict calls every ConflictHook.
func (s *Set) OnConflict(ctx context.Context, entityID uuid.UUID) {
	if s == nil {
		return
	}
	for _, h := range s.conflict {
		h.OnConflict(ctx, entityID)
	}
}

// OnBatch calls every BatchHook.
func (s *Set) OnBatch(ctx context.Context, b Batch) {
	if s == nil {
		return
	}
	for _, h := range s.batch {
		h.OnBatch(ctx, b)
	}
}

// ObservesPartitions reports whether a [PartitionHook] is installed.
func (s *Set) ObservesPartitions() bool { return s != nil && len(s.part) > 0 }

// OnAssigned calls every PartitionHook's OnAssigned.
func (s *Set) OnAssigned(group string, assigned map[string][]int32) {
	if s == nil {
		return
	}
	for _, h := range s.part {
		h.OnAssigned(group, assigned)
	}
}

// OnRevoked calls every PartitionHook's OnRevoked.
func (s *Set) OnRevoked(group string, revoked map[string][]int32) {
	if s == nil {
		return
	}
	for _, h := range s.part {
		h.OnRevoked(group, revoked)
	}
}

// OnSweep calls every SweepHook.
func (s *Set) OnSweep(ctx context.Context, sw Sweep) {
	if s == nil {
		return
	}
	for _, h := range s.sweep {
		h.OnSweep(ctx, sw)
	}
}
