package registrationtest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Model is the reference every store is compared with: rows in a map,
// written only through registration.ApplyUpsert and
// registration.ApplyUpdate. It executes postgres.upsert_registration and
// postgres.update_registration intents (typed payloads only), one by one or
// in a batch, and reads as a registration.Store of
// registration.DefaultDomain, so it passes [RunStore] itself. It is not
// safe for concurrent use; for a real in-memory store use effects/memory.
type Model struct {
	rows map[modelKey]*registration.Projection
}

type modelKey struct {
	id     uuid.UUID
	domain string
}

// NewModel returns an empty model.
func NewModel() *Model { return &Model{rows: map[modelKey]*registration.Projection{}} }

// Execute applies in to the model with the registration package's guard
// semantics and returns its result.
func (m *Model) Execute(_ context.Context, in intent.Intent) (intent.Result, error) {
	switch p := in.Payload.(type) {
	case *registration.UpsertRegistration:
		k := modelKey{p.Projection.EntityID, p.Projection.Domain}
		next, r, err := registration.ApplyUpsert(m.rows[k], p)
		if err == nil && r.Status == intent.Applied {
			m.rows[k] = next
		}
		return r, err
	case *registration.UpdateRegistration:
		k := modelKey{p.EntityID, p.Domain}
		next, r, err := registration.ApplyUpdate(m.rows[k], p)
		if err == nil && r.Status == intent.Applied {
			m.rows[k] = next
		}
		return r, err
	}
	return intent.Result{}, intent.Permanent(fmt.Errorf("registrationtest: model: payload type %T", in.Payload))
}

// ExecuteBatch executes ins one by one, stopping at the first error.
func (m *Model) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	out := make([]intent.Result, 0, len(ins))
	for i, in := range ins {
		r, err := m.Execute(ctx, in)
		if err != nil {
			return out, fmt.Errorf("registrationtest: model: batch intent %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Row returns a copy of the row (id, domain), or nil.
func (m *Model) Row(id uuid.UUID, domain string) *registration.Projection {
	return m.rows[modelKey{id, domain}].Clone()
}

// Load returns a copy of the row of id in registration.DefaultDomain, or
// nil.
func (m *Model) Load(_ context.Context, id uuid.UUID) (*registration.Projection, error) {
	return m.Row(id, registration.DefaultDomain), nil
}

// OverdueAcks implements registration.Store.
func (m *Model) OverdueAcks(_ context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	return m.overdue(after, limit, func(p *registration.Projection) (time.Time, bool) { return ackDue(p, now) })
}

// OverdueLiveness implements registration.Store.
func (m *Model) OverdueLiveness(_ context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	return m.overdue(after, limit, func(p *registration.Projection) (time.Time, bool) { return livenessDue(p, now) })
}

func (m *Model) overdue(after registration.Overdue, limit int, due func(*registration.Projection) (time.Time, bool)) ([]registration.Overdue, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("registrationtest: model: limit %d is not positive", limit)
	}
	var out []registration.Overdue
	for k, p := range m.rows {
		if d, ok := due(p); ok && k.domain == registration.DefaultDomain {
			if o := (registration.Overdue{EntityID: k.id, Deadline: d}); byDeadline(o, after) > 0 {
				out = append(out, o)
			}
		}
	}
	slices.SortFunc(out, byDeadline)
	return out[:min(limit, len(out))], nil
}

// ackDue and livenessDue are the overdue scans' filters, as
// registration.Store documents them.
func ackDue(p *registration.Projection, now time.Time) (time.Time, bool) {
	return p.AckDeadline, (p.State == registration.StateAwaitingAck || p.State == registration.StateAccepted) &&
		p.AckTimeoutEmittedAt.IsZero() && !p.AckDeadline.IsZero() && p.AckDeadline.Before(now)
}

func livenessDue(p *registration.Projection, now time.Time) (time.Time, bool) {
	return p.LivenessDeadline, p.State == registration.StateActive && p.LivenessTimeoutEmittedAt.IsZero() &&
		!p.LivenessDeadline.IsZero() && p.LivenessDeadline.Before(now)
}

// byDeadline orders overdue entities by deadline, then entity id.
func byDeadline(a, b registration.Overdue) int {
	return cmp.Or(a.Deadline.Compare(b.Deadline), cmp.Compare(a.EntityID.String(), b.EntityID.String()))
}
