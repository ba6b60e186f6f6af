package registration

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store is what the registration workflow reads from the projection store:
// one projection for the reducer, and the overdue scans for the sweeper.
// effects/memory and effects/postgres implement it.
type Store interface {
	// Load returns the projection of entityID in the store's domain, or nil
	// if there is none.
	Load(ctx context.Context, entityID uuid.UUID) (*Projection, error)
	// OverdueAcks returns up to limit entities in awaiting_ack or accepted
	// whose ack_deadline is before now and whose ack timeout was not
	// emitted, earliest deadline first.
	OverdueAcks(ctx context.Context, now time.Time, limit int) ([]Overdue, error)
	// OverdueLiveness returns up to limit active entities whose
	// liveness_deadline is before now and whose liveness timeout was not
	// emitted, earliest deadline first.
	OverdueLiveness(ctx context.Context, now time.Time, limit int) ([]Overdue, error)
}

// Overdue is an entity whose deadline passed.
type Overdue struct {
	EntityID uuid.UUID
	Deadline time.Time
}
