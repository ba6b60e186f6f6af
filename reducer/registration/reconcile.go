package registration

import (
	"context"

	"github.com/google/uuid"
)

// ActiveLister pages through the active projections of a store's domain.
// effects/memory and effects/postgres implement it; a [Reconciler] compares
// an external registry with it.
type ActiveLister interface {
	// ListActive returns up to limit projections in state active whose
	// entity id comes after after, ordered by entity id byte by byte (as
	// PostgreSQL orders uuid). Passing the last id of one page as after of
	// the next pages through them; uuid.Nil starts at the first. A page
	// shorter than limit is the last. A limit below 1 is an error.
	ListActive(ctx context.Context, after uuid.UUID, limit int) ([]*Projection, error)
}

// Reconciler brings an external registry (Consul, for effects/consul's
// Reconciler) in line with the projections: one call is one bounded pass.
// The runtime of NewRegistration runs one at its own interval; it can also
// run alone. Concurrent passes, in one process or several, must not fight:
// each change a pass makes is conditional on what it read.
type Reconciler interface {
	// Reconcile runs one pass. It returns what the pass did even when it
	// stopped early with an error.
	Reconcile(ctx context.Context) (ReconcileStats, error)
}

// ReconcileStats counts what one reconciliation pass did.
type ReconcileStats struct {
	// Projections counts the active projections read, and Services the
	// registry's entries owned by registrar that were compared with them.
	Projections, Services int
	// Registered counts entries added for active nodes the registry did not
	// hold, Updated entries rewritten because they differed from the
	// projection (another generation, version or address), and
	// Deregistered entries removed because their node is not active, is
	// active with another node type (the entry's id names the type), or is
	// no node at all (an owned entry registrar does not write).
	Registered, Updated, Deregistered int
	// Failed counts nodes whose repair failed; the next pass tries again.
	Failed int
	// Truncated reports that the pass stopped at its bound on changes; the
	// next pass goes on.
	Truncated bool
}

// Changes returns the number of entries the pass added, rewrote or removed.
func (s ReconcileStats) Changes() int { return s.Registered + s.Updated + s.Deregistered }
