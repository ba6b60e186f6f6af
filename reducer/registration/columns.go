package registration

import (
	"iter"
	"math/bits"
	"strings"
)

// Columns is a set of the projection's writable columns. It is the allowlist
// of what an upsert or update may write: a column outside it cannot be named.
type Columns uint32

// The writable columns of the registration projection. The key columns
// entity_id and domain are not among them.
const (
	ColCurrentState Columns = 1 << iota
	ColNodeType
	ColNodeVersion
	ColCapabilities
	ColEndpoints
	ColAckDeadline
	ColLivenessDeadline
	ColLastHeartbeatAt
	ColAckTimeoutEmittedAt
	ColLivenessTimeoutEmittedAt
	ColLastAppliedEventID
	ColRegisteredAt
	ColUpdatedAt
	ColCorrelationID
	ColGeneration

	// AllColumns is every writable column.
	AllColumns = ColGeneration<<1 - 1
)

var columnNames = [...]string{
	"current_state", "node_type", "node_version", "capabilities", "endpoints",
	"ack_deadline", "liveness_deadline", "last_heartbeat_at", "ack_timeout_emitted_at",
	"liveness_timeout_emitted_at", "last_applied_event_id", "registered_at", "updated_at",
	"correlation_id", "generation",
}

// ColumnByName returns the column with the given SQL name.
func ColumnByName(name string) (Columns, bool) {
	for i, n := range columnNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Has reports whether every column of c is in cs.
func (cs Columns) Has(c Columns) bool { return cs&c == c }

// Len returns the number of columns in cs.
func (cs Columns) Len() int { return bits.OnesCount32(uint32(cs & AllColumns)) }

// Each yields the single columns of cs in table order.
func (cs Columns) Each() iter.Seq[Columns] {
	return func(yield func(Columns) bool) {
		for c := Columns(1); c <= ColGeneration; c <<= 1 {
			if cs&c != 0 && !yield(c) {
				return
			}
		}
	}
}

// Name returns the SQL name of a single column, or "" if c is not exactly one
// column.
func (c Columns) Name() string {
	if bits.OnesCount32(uint32(c)) != 1 || c > ColGeneration {
		return ""
	}
	return columnNames[bits.TrailingZeros32(uint32(c))]
}

// String lists the column names, comma-separated.
func (cs Columns) String() string {
	var b strings.Builder
	for c := range cs.Each() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.Name())
	}
	return b.String()
}

// GuardableColumns are the columns an update may guard
// ([UpdateRegistration].Guard): every writable column but current_state,
// which ExpectedState guards, and the JSON columns capabilities and
// endpoints, whose equality a store cannot decide as a database does.
const GuardableColumns = AllColumns &^ (ColCurrentState | ColCapabilities | ColEndpoints)

// timeColumns are the timestamptz columns; zero times are NULL.
const timeColumns = ColAckDeadline | ColLivenessDeadline | ColLastHeartbeatAt | ColAckTimeoutEmittedAt |
	ColLivenessTimeoutEmittedAt | ColRegisteredAt | ColUpdatedAt

// registrationColumns are what a new registration overwrites of an existing
// row: everything but last_heartbeat_at, which never decreases; the timeout
// markers and the liveness deadline are cleared.
const registrationColumns = AllColumns &^ ColLastHeartbeatAt

// metadataColumns are what a metadata refresh of an active node writes.
const metadataColumns = ColNodeType | ColNodeVersion | ColCapabilities | ColEndpoints | ColUpdatedAt

// The guards of the reducer's updates: the columns each decision read that
// another writer can change (the state is guarded on its own).
const (
	// ackGuard: the generation tells this registration from a later one
	// that is awaiting its ack too; updated_at is what the staleness check
	// read.
	ackGuard = ColGeneration | ColUpdatedAt
	// heartbeatGuard: the new deadline is computed from the stored one;
	// updated_at is what the staleness check read. last_heartbeat_at has
	// its own, monotonic guard.
	heartbeatGuard = ColLivenessDeadline | ColUpdatedAt
	// ackTimeoutGuard: the deadline that passed, and the marker that must
	// still be unset.
	ackTimeoutGuard = ColAckDeadline | ColAckTimeoutEmittedAt
	// livenessTimeoutGuard: the deadline that passed, the last heartbeat
	// the LivenessExpired event reports, the marker that must still be
	// unset, and the node type and generation consul.deregister names.
	livenessTimeoutGuard = ColLivenessDeadline | ColLastHeartbeatAt | ColLivenessTimeoutEmittedAt | ColNodeType | ColGeneration
)
