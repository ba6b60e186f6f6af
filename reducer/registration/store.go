package registration

import (
	"bytes"
	"context"
	"time"

	"github.com/google/uuid"
)

// Store is what the registration workflow reads from the projection store:
// one projection for the reducer, and the overdue scans for the sweeper.
// effects/memory and effects/postgres implement it, with the same
// semantics; the suite in registrationtest holds both to them.
type Store interface {
	// Load returns the projection of entityID in the store's domain, or nil
	// if there is none.
	Load(ctx context.Context, entityID uuid.UUID) (*Projection, error)
	// OverdueAcks returns up to limit entities in awaiting_ack or accepted
	// whose ack_deadline is before now and whose ack timeout was not
	// emitted, in the order of [Overdue.Compare] (earliest deadline first),
	// starting after the position after; the zero Overdue starts at the
	// first. Passing the last entity of one page as after of the next
	// pages through them (a keyset cursor, which needs no state in the
	// store); a page shorter than limit is the last. A limit below 1 is an
	// error.
	OverdueAcks(ctx context.Context, now time.Time, after Overdue, limit int) ([]Overdue, error)
	// OverdueLiveness is OverdueAcks for active entities whose
	// liveness_deadline is before now and whose liveness timeout was not
	// emitted.
	OverdueLiveness(ctx context.Context, now time.Time, after Overdue, limit int) ([]Overdue, error)
}

// Overdue is an entity whose deadline passed; it is also a position in
// the order of the overdue scans.
type Overdue struct {
	EntityID uuid.UUID
	Deadline time.Time
}

// Compare orders overdue entities as the scans return them: by deadline,
// then by entity id, byte by byte (as PostgreSQL orders uuid). It returns
// -1, 0 or +1.
func (o Overdue) Compare(p Overdue) int {
	if c := o.Deadline.Compare(p.Deadline); c != 0 {
		return c
	}
	return bytes.Compare(o.EntityID[:], p.EntityID[:])
}
