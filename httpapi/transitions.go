package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
)

// DefaultTransitions is how many transitions [NewTransitions] keeps when
// asked for zero or fewer.
const DefaultTransitions = 200

// Transition is one committed change of a node's state.
type Transition struct {
	// At is when the Runtime finished handling the message (the wall
	// clock of the process that recorded it), in UTC.
	At time.Time `json:"at"`
	// EntityID is the node's id.
	EntityID uuid.UUID `json:"entity_id"`
	// Input is the reducer's input kind that caused it ("introspection",
	// "ack", "heartbeat", ...).
	Input string `json:"input"`
	// State is the node's state after it.
	State string `json:"state"`
}

// Transitions keeps the most recent transitions a Runtime committed, at
// most its capacity, dropping the oldest. It implements
// hooks.MessageTracer: a message whose outcome is hooks.OutcomeApplied
// and that changed the entity's state is recorded when the Runtime is
// done with it, so a decision that was not committed (a conflict decided
// again, a failed write, a dead letter) never appears. Its methods are
// safe for concurrent use; the hook costs one short lock per transition.
type Transitions struct {
	now func() time.Time

	mu    sync.Mutex
	ring  []Transition
	next  int // index of the slot written next
	full  bool
	total int64
}

// NewTransitions returns a record of at most capacity transitions
// (DefaultTransitions if capacity is zero or less).
func NewTransitions(capacity int) *Transitions {
	if capacity <= 0 {
		capacity = DefaultTransitions
	}
	return &Transitions{now: time.Now, ring: make([]Transition, capacity)}
}

// MessageStart implements hooks.MessageTracer; it returns ctx.
func (t *Transitions) MessageStart(ctx context.Context, _ *bus.Message, _ *bus.Envelope) context.Context {
	return ctx
}

// MessageEnd implements hooks.MessageTracer: it records the message's
// transition if it committed one.
func (t *Transitions) MessageEnd(_ context.Context, _ *bus.Message, end hooks.MessageEnd) {
	if end.Outcome != hooks.OutcomeApplied || end.State == "" {
		return
	}
	t.Record(Transition{At: t.now(), EntityID: end.EntityID, Input: end.Kind, State: end.State})
}

// Record adds tr as the newest transition (its At in UTC). A feeder other
// than a Runtime, such as a discovery.Client's Watch, may call it.
func (t *Transitions) Record(tr Transition) {
	tr.At = tr.At.UTC()
	t.mu.Lock()
	t.ring[t.next] = tr
	t.next++
	if t.next == len(t.ring) {
		t.next, t.full = 0, true
	}
	t.total++
	t.mu.Unlock()
}

// Recent returns up to n of the transitions held, newest first; all of
// them if n is zero or less.
func (t *Transitions) Recent(n int) []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	held := t.next
	if t.full {
		held = len(t.ring)
	}
	if n <= 0 || n > held {
		n = held
	}
	out := make([]Transition, n)
	for i := range n {
		out[i] = t.ring[(t.next-1-i+len(t.ring))%len(t.ring)]
	}
	return out
}

// Total returns how many transitions were recorded since t was made,
// including those no longer held.
func (t *Transitions) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}
