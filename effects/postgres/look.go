package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// A look is what an update that changed no row reads of the row to say
// why: current_state, last_heartbeat_at and the update's guard columns.
// It scans them into typed destinations and turns them into the partial
// projection registration.UpdateRegistration.Check judges.
type look struct {
	cols  registration.Columns
	dests []any
}

// lookColumns are the columns a look of an update guarding guard reads.
func lookColumns(guard registration.Columns) registration.Columns {
	return registration.ColCurrentState | registration.ColLastHeartbeatAt | guard
}

// allLookColumns are read by the looks that serve updates of any shape.
const allLookColumns = registration.ColCurrentState | registration.GuardableColumns

// writeLookList writes the SELECT list of cols, in table order, each
// qualified by alias ("" for none): current_state as text, the others as
// they are stored.
func writeLookList(b *strings.Builder, cols registration.Columns, alias string) {
	first := true
	for c := range cols.Each() {
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(alias)
		b.WriteString(quoteColumn(c.Name()))
		if c == registration.ColCurrentState {
			b.WriteString("::text AS current_state")
		}
	}
}

// newLook returns a look of cols with fresh scan destinations.
func newLook(cols registration.Columns) *look {
	l := &look{cols: cols, dests: make([]any, 0, cols.Len())}
	for c := range cols.Each() {
		switch c {
		case registration.ColCurrentState, registration.ColNodeType, registration.ColNodeVersion:
			l.dests = append(l.dests, new(pgtype.Text))
		case registration.ColLastAppliedEventID, registration.ColCorrelationID:
			l.dests = append(l.dests, new(pgtype.UUID))
		case registration.ColGeneration:
			l.dests = append(l.dests, new(pgtype.Int8))
		default:
			l.dests = append(l.dests, new(pgtype.Timestamptz))
		}
	}
	return l
}

// row returns what the look read as a projection with only its columns
// set, or nil if it found no row (current_state NULL).
func (l *look) row() *registration.Projection {
	var p registration.Projection
	k := 0
	for c := range l.cols.Each() {
		switch d := l.dests[k].(type) {
		case *pgtype.Text:
			switch c {
			case registration.ColCurrentState:
				if !d.Valid {
					return nil
				}
				p.State = registration.State(d.String)
			case registration.ColNodeType:
				p.NodeType = d.String
			case registration.ColNodeVersion:
				p.NodeVersion = d.String
			}
		case *pgtype.UUID:
			if d.Valid && c == registration.ColLastAppliedEventID {
				p.LastAppliedEventID = d.Bytes
			} else if d.Valid {
				p.CorrelationID = d.Bytes
			}
		case *pgtype.Int8:
			p.Generation = d.Int64
		case *pgtype.Timestamptz:
			if d.Valid {
				setTime(&p, c, d.Time.UTC())
			}
		}
		k++
	}
	return &p
}

// setTime sets the time column c of p.
func setTime(p *registration.Projection, c registration.Columns, t time.Time) {
	switch c {
	case registration.ColAckDeadline:
		p.AckDeadline = t
	case registration.ColLivenessDeadline:
		p.LivenessDeadline = t
	case registration.ColLastHeartbeatAt:
		p.LastHeartbeatAt = t
	case registration.ColAckTimeoutEmittedAt:
		p.AckTimeoutEmittedAt = t
	case registration.ColLivenessTimeoutEmittedAt:
		p.LivenessTimeoutEmittedAt = t
	case registration.ColRegisteredAt:
		p.RegisteredAt = t
	case registration.ColUpdatedAt:
		p.UpdatedAt = t
	}
}

// classifyUpdate says why u changed no row, from the row as a look read it
// (nil: none): registration.UpdateRegistration.Check, with u's heartbeat
// truncated to the microseconds the server keeps, as the statement
// compared it (Check compares guarded times to the microsecond itself). If
// every guard holds on that row, the row moved between the statement and
// the look, and the result is a conflict: the caller decides again against
// the current row.
func classifyUpdate(u *registration.UpdateRegistration, cur *registration.Projection) intent.Result {
	t := *u
	t.Values.LastHeartbeatAt = t.Values.LastHeartbeatAt.Truncate(time.Microsecond)
	r := t.Check(cur)
	if r.Status == intent.Applied {
		return intent.Result{Status: intent.Conflict, Reason: reasonRaced}
	}
	return r
}

// lookRowSQL returns the SELECT of every look column of one row of n's
// table, by entity id ($1) and domain ($2): what a guarded update or
// delete that changed no row reads to say why.
func lookRowSQL(n names) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	writeLookList(&b, allLookColumns, "")
	b.WriteString(" FROM " + n.table + " WHERE entity_id = $1 AND domain = $2")
	return b.String()
}

// lookRow reads, with the SQL of lookRowSQL, the row of entity in domain,
// or nil if there is none.
func lookRow(ctx context.Context, db DB, sql string, entity uuid.UUID, domain string) (*registration.Projection, error) {
	l := newLook(allLookColumns)
	switch err := db.QueryRow(ctx, sql, pgUUID(entity), domain).Scan(l.dests...); {
	case err == nil:
		return l.row(), nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	default:
		return nil, err
	}
}
