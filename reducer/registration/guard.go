package registration

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
)

// Check returns the result u's guards give on the row cur (nil: no row),
// without writing anything: [intent.Applied] if every guard holds, else the
// result and reason of the first that fails, in this order: no row
// (conflict), the expected state (conflict), the Guard columns (conflict;
// the reason names each column that differs, with both values), the
// heartbeat guard (skip). Check assumes u is valid
// ([UpdateRegistration.Validate]).
//
// Guarded times compare to the microsecond, the precision PostgreSQL
// keeps, so that a store that keeps nanoseconds decides as one that does
// not; the heartbeat guard compares the full values (a store that keeps
// microseconds compares the values it writes).
func (u *UpdateRegistration) Check(cur *Projection) intent.Result {
	if r := checkGuards(u.EntityID, cur, u.ExpectedState, u.Guard, &u.Expected); r.Status != intent.Applied {
		return r
	}
	if u.Set.Has(ColLastHeartbeatAt) && !cur.LastHeartbeatAt.IsZero() &&
		!cur.LastHeartbeatAt.Before(u.Values.LastHeartbeatAt) {
		return intent.Result{Status: intent.Skipped, Reason: "stored heartbeat is not older"}
	}
	return intent.Result{}
}

// Check returns the result d's guards give on the row cur (nil: no row),
// without removing anything: [intent.Applied] if every guard holds, else
// the conflict of the first that fails, in the order of
// [UpdateRegistration.Check]: no row, the expected state, the Guard
// columns. Check assumes d is valid ([DeleteRegistration.Validate]).
func (d *DeleteRegistration) Check(cur *Projection) intent.Result {
	return checkGuards(d.EntityID, cur, d.ExpectedState, d.Guard, &d.Expected)
}

// checkGuards checks the guards an update and a removal share: a row
// exists, it is in state (unless state is StateNone), and each column of
// guard holds its value in expected.
func checkGuards(id uuid.UUID, cur *Projection, state State, guard Columns, expected *Projection) intent.Result {
	switch {
	case cur == nil:
		return intent.Result{Status: intent.Conflict, Reason: "no projection for " + id.String()}
	case state != StateNone && cur.State != state:
		return intent.Result{Status: intent.Conflict, Reason: conflictReason(cur.State, state)}
	}
	if guard != 0 {
		var reason strings.Builder
		for c := range guard.Each() {
			if !sameColumn(c, cur, expected) {
				if reason.Len() > 0 {
					reason.WriteString("; ")
				}
				reason.WriteString(c.Name() + " is " + columnText(c, cur) + ", the decision read " + columnText(c, expected))
			}
		}
		if reason.Len() > 0 {
			return intent.Result{Status: intent.Conflict, Reason: reason.String()}
		}
	}
	return intent.Result{}
}

// sameColumn reports whether the guardable column c holds the same value in
// a and b, as IS NOT DISTINCT FROM compares them: times by instant to the
// microsecond (the precision PostgreSQL keeps, so every store compares
// alike), a zero time (NULL) equal only to a zero time.
func sameColumn(c Columns, a, b *Projection) bool {
	switch c {
	case ColNodeType:
		return a.NodeType == b.NodeType
	case ColNodeVersion:
		return a.NodeVersion == b.NodeVersion
	case ColLastAppliedEventID:
		return a.LastAppliedEventID == b.LastAppliedEventID
	case ColCorrelationID:
		return a.CorrelationID == b.CorrelationID
	case ColGeneration:
		return a.Generation == b.Generation
	}
	if c&timeColumns != 0 {
		return a.timeOf(c).Truncate(time.Microsecond).Equal(b.timeOf(c).Truncate(time.Microsecond))
	}
	return false
}

// timeOf returns the value of the time column c.
func (p *Projection) timeOf(c Columns) time.Time {
	switch c {
	case ColAckDeadline:
		return p.AckDeadline
	case ColLivenessDeadline:
		return p.LivenessDeadline
	case ColLastHeartbeatAt:
		return p.LastHeartbeatAt
	case ColAckTimeoutEmittedAt:
		return p.AckTimeoutEmittedAt
	case ColLivenessTimeoutEmittedAt:
		return p.LivenessTimeoutEmittedAt
	case ColRegisteredAt:
		return p.RegisteredAt
	case ColUpdatedAt:
		return p.UpdatedAt
	}
	return time.Time{}
}

// columnText writes the value of the guardable column c for a reason:
// NULL, a time in RFC 3339 (UTC), a UUID, a number, a quoted string.
func columnText(c Columns, p *Projection) string {
	switch c {
	case ColNodeType:
		return strconv.Quote(p.NodeType)
	case ColNodeVersion:
		return strconv.Quote(p.NodeVersion)
	case ColGeneration:
		return strconv.FormatInt(p.Generation, 10)
	case ColLastAppliedEventID, ColCorrelationID:
		id := p.LastAppliedEventID
		if c == ColCorrelationID {
			id = p.CorrelationID
		}
		if id == [16]byte{} {
			return "NULL"
		}
		return id.String()
	}
	t := p.timeOf(c)
	if t.IsZero() {
		return "NULL"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
