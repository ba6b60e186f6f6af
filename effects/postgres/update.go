package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// UpdateMap is an update payload built from a column → value map, as JSON
// or the Python services produce it. [Update] normalizes it with
// registration.UpdatesFromMap: column names from the allowlist, UUID
// strings to UUIDs, RFC 3339 strings to times (zone-less as UTC), JSON
// numbers to integers, nil to NULL. Pass it as the intent's Payload, by
// value or by pointer.
type UpdateMap struct {
	// EntityID and Domain are the row's key; an empty Domain means
	// registration.DefaultDomain.
	EntityID uuid.UUID
	Domain   string
	// ExpectedState, if not empty, is the state the row must be in.
	ExpectedState registration.State
	// Updates maps column names to their new values. Empty is an error.
	Updates map[string]any
	// Guard maps column names to the values the row must still hold for
	// the update to apply (registration.UpdateRegistration.Guard), nil for
	// NULL; normalized as Updates. Only registration.GuardableColumns may
	// be named. Empty guards no column.
	Guard map[string]any
	// CorrelationID is used when the intent has none.
	CorrelationID uuid.UUID
}

// Update is the postgres.update_registration effect: a guarded UPDATE of
// one row.
//
//	UPDATE registration_projections SET <columns of Set> = <bind parameters>
//	 WHERE entity_id = $e AND domain = $d
//	   AND current_state = $expected                              -- if ExpectedState is set
//	   AND "<column>" IS NOT DISTINCT FROM $value                 -- for each column of Guard
//	   AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $hb) -- if Set has last_heartbeat_at
//
// It takes a *registration.UpdateRegistration or an [UpdateMap] payload.
// Results follow registration.ApplyUpdate: one row changed is
// [intent.Applied]; no row, a row in another state, or a row whose guard
// column holds another value than the decision read is [intent.Conflict]
// (the reason names the state or the column); a row whose stored
// heartbeat is not older is [intent.Skipped]. Zero rows is never an error
// and is not retried; it is logged at debug.
//
// A payload of another type, an unknown column, an empty update set or an
// invalid value is an [intent.Permanent] error that names it, returned
// before any SQL runs. Update is safe for concurrent use.
type Update struct {
	effect
	lookSQL             string   // reads what classifies zero rows
	single, cte         sync.Map // updateShape → SQL text
	arrays, arraysPlain sync.Map
}

var _ intent.BatchEffect = (*Update)(nil)

// NewUpdate returns the update effect on db.
func NewUpdate(db DB, cfg EffectConfig) (*Update, error) {
	e, err := newEffect(db, cfg)
	if err != nil {
		return nil, err
	}
	return &Update{effect: e, lookSQL: lookRowSQL(e.n)}, nil
}

// updateShape is what the SQL text of an update depends on.
type updateShape struct {
	set, guard  registration.Columns
	hasExpected bool
}

// updateReq is one validated update.
type updateReq struct {
	u    *registration.UpdateRegistration
	corr uuid.UUID
}

func (r *updateReq) shape() updateShape {
	return updateShape{set: r.u.Set, guard: r.u.Guard, hasExpected: r.u.ExpectedState != registration.StateNone}
}

// parse checks an update intent's payload, before any SQL.
func (e *Update) parse(in intent.Intent) (updateReq, error) {
	var u *registration.UpdateRegistration
	switch p := in.Payload.(type) {
	case *registration.UpdateRegistration:
		u = p
	case registration.UpdateRegistration:
		u = &p
	case *UpdateMap:
		if p == nil {
			break
		}
		m, err := fromMap(p)
		if err != nil {
			return updateReq{}, intent.Permanent(fmt.Errorf("registrar/postgres: update %s (correlation %s): %w",
				p.EntityID, correlation(in, p.CorrelationID), err))
		}
		u = m
	case UpdateMap:
		m, err := fromMap(&p)
		if err != nil {
			return updateReq{}, intent.Permanent(fmt.Errorf("registrar/postgres: update %s (correlation %s): %w",
				p.EntityID, correlation(in, p.CorrelationID), err))
		}
		u = m
	}
	if u == nil {
		return updateReq{}, intent.Permanent(fmt.Errorf(
			"registrar/postgres: update: intent %q (correlation %s): payload type %T is not *registration.UpdateRegistration or postgres.UpdateMap",
			in.Type, in.CorrelationID, in.Payload))
	}
	corr := correlation(in, u.CorrelationID)
	if err := u.Validate(); err != nil {
		return updateReq{}, intent.Permanent(fmt.Errorf("registrar/postgres: update %s (correlation %s): %w", u.EntityID, corr, err))
	}
	if err := checkJSON(u.Set, &u.Values); err != nil {
		return updateReq{}, intent.Permanent(fmt.Errorf("registrar/postgres: update %s (correlation %s): %w", u.EntityID, corr, err))
	}
	return updateReq{u: u, corr: corr}, nil
}

func fromMap(m *UpdateMap) (*registration.UpdateRegistration, error) {
	set, vals, err := registration.UpdatesFromMap(m.Updates)
	if err != nil {
		return nil, err
	}
	var guard registration.Columns
	var expected registration.Projection
	if len(m.Guard) > 0 {
		if guard, expected, err = registration.UpdatesFromMap(m.Guard); err != nil {
			return nil, fmt.Errorf("guard: %w", err)
		}
	}
	dom := m.Domain
	if dom == "" {
		dom = registration.DefaultDomain
	}
	return &registration.UpdateRegistration{
		EntityID: m.EntityID, Domain: dom, Set: set, Values: vals,
		ExpectedState: m.ExpectedState, Guard: guard, Expected: expected, CorrelationID: m.CorrelationID,
	}, nil
}

// checkJSON rejects capabilities that are not JSON before the server does,
// so that one bad intent names itself instead of failing a whole batch.
func checkJSON(cols registration.Columns, p *registration.Projection) error {
	if cols.Has(registration.ColCapabilities) && len(p.Capabilities) > 0 && !json.Valid(p.Capabilities) {
		return errors.New(`column "capabilities": not valid JSON`)
	}
	return nil
}

// args are the bind parameters of the single statement: entity, domain,
// the Set columns in table order, the expected state if any, then the
// Guard columns' expected values in table order.
func (r *updateReq) args() []any {
	u := r.u
	args := make([]any, 0, 3+u.Set.Len()+u.Guard.Len())
	args = append(args, pgUUID(u.EntityID), u.Domain)
	for c := range u.Set.Each() {
		args = append(args, arg(u.Values.Value(c)))
	}
	if u.ExpectedState != registration.StateNone {
		args = append(args, string(u.ExpectedState))
	}
	for c := range u.Guard.Each() {
		args = append(args, arg(u.Expected.Value(c)))
	}
	return args
}

// updateStatement writes the guarded UPDATE of one row (no RETURNING).
func (e *Update) updateStatement(b *strings.Builder, s updateShape) {
	i, hb := writeUpdateSet(b, e.n, s.set)
	b.WriteString(" WHERE entity_id = $1 AND domain = $2")
	if s.hasExpected {
		b.WriteString(" AND current_state = $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("::text::")
		b.WriteString(e.n.stateType)
		i++
	}
	for c := range s.guard.Each() {
		b.WriteString(" AND ")
		b.WriteString(quoteColumn(c.Name()))
		b.WriteString(" IS NOT DISTINCT FROM $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(columnCast(c, e.n))
		i++
	}
	if hb > 0 {
		b.WriteString(" AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $")
		b.WriteString(strconv.Itoa(hb))
		b.WriteString("::timestamptz)")
	}
}

// columnCast is the cast a bind parameter of column c gets, so that the
// parameter's type is one pgx knows (text, not the schema's enum).
// writeUpdateSet writes "UPDATE <table> SET <col> = $3::<type>, ..." for
// the columns cols, their values bound from $3 on ($1 and $2 are the entity
// and the domain), and returns the next parameter's number and that of
// last_heartbeat_at (0 if cols lack it).
func writeUpdateSet(b *strings.Builder, n names, cols registration.Columns) (next, hb int) {
	b.WriteString("UPDATE ")
	b.WriteString(n.table)
	b.WriteString(" SET ")
	i := 3
	for c := range cols.Each() {
		if i > 3 {
			b.WriteString(", ")
		}
		b.WriteString(quoteColumn(c.Name()))
		b.WriteString(" = $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(columnCast(c, n))
		if c == registration.ColLastHeartbeatAt {
			hb = i
		}
		i++
	}
	return i, hb
}

func columnCast(c registration.Columns, n names) string {
	switch c {
	case registration.ColCurrentState:
		return "::text::" + n.stateType
	case registration.ColCapabilities, registration.ColEndpoints:
		return "::jsonb"
	case registration.ColNodeType, registration.ColNodeVersion:
		return "::text"
	case registration.ColLastAppliedEventID, registration.ColCorrelationID:
		return "::uuid"
	case registration.ColGeneration:
		return "::bigint"
	}
	return "::timestamptz"
}

func (e *Update) singleSQL(s updateShape) string {
	return cachedSQL(&e.single, s, func(b *strings.Builder) { e.updateStatement(b, s) })
}

// cteSQL is the single statement that also reports, in the same snapshot,
// what it needs to classify zero rows: rows updated, then the row before
// (lookColumns of the shape's guard; NULLs if there is no row). Batches use
// it, so that each intent is classified against the row as the intents
// before it left it.
func (e *Update) cteSQL(s updateShape) string {
	return cachedSQL(&e.cte, s, func(b *strings.Builder) {
		b.WriteString("WITH cur AS (SELECT ")
		writeLookList(b, lookColumns(s.guard), "")
		b.WriteString(" FROM ")
		b.WriteString(e.n.table)
		b.WriteString(" WHERE entity_id = $1 AND domain = $2), upd AS (")
		e.updateStatement(b, s)
		b.WriteString(" RETURNING 1) SELECT (SELECT count(*) FROM upd), cur.* FROM (VALUES (1)) AS one LEFT JOIN cur ON true")
	})
}

// Execute performs one update intent: one UPDATE, and on zero rows one
// SELECT to tell a conflict from a skip.
func (e *Update) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	req, err := e.parse(in)
	if err != nil {
		return intent.Result{}, err
	}
	u := req.u
	tag, err := e.db.Exec(ctx, e.singleSQL(req.shape()), req.args()...)
	if err != nil {
		return intent.Result{}, opError("update", u.EntityID, req.corr, err)
	}
	if tag.RowsAffected() > 0 {
		return intent.Result{}, nil
	}
	cur, err := lookRow(ctx, e.db, e.lookSQL, u.EntityID, u.Domain)
	if err != nil {
		return intent.Result{}, opError("update", u.EntityID, req.corr, err)
	}
	r := classifyUpdate(u, cur)
	e.logNoChange(ctx, "update", u.EntityID, req.corr, r)
	return r, nil
}
