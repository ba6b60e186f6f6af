package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Upsert is the postgres.upsert_registration effect: insert the projection
// if the decision saw no row, or overwrite the payload's Columns of the
// existing row if it is in the state the decision saw.
//
// ExpectedState registration.StateNone means the decision saw no row, so an
// existing row is a conflict:
//
//	INSERT INTO registration_projections (<every column>) VALUES (<bind parameters>)
//	ON CONFLICT (entity_id, domain) DO NOTHING
//
// Any other ExpectedState means the decision saw a row in that state, so a
// row in another state and a missing row (removed by another writer since)
// are conflicts, and nothing is inserted:
//
//	UPDATE registration_projections SET <Columns> = <bind parameters>
//	 WHERE entity_id = $e AND domain = $d AND current_state = $expected
//
// Under READ COMMITTED the UPDATE waits for a concurrent writer of the row
// and checks the row again after it commits: a row that a concurrent delete
// removed is not written (an INSERT ... ON CONFLICT would insert it again).
// Columns zero means every column, as in registration.ApplyUpsert; a
// re-registration from a terminal state writes all of them, which clears
// the timeout markers. One row written is [intent.Applied]; zero rows is
// [intent.Conflict], never an error, logged at debug and not retried; its
// reason says whether the row is missing ("no projection for <id>", as
// registration.ApplyUpsert words it) or in another state.
//
// The payload is a *registration.UpsertRegistration; another type or an
// invalid payload is an [intent.Permanent] error returned before any SQL
// runs. Upsert is safe for concurrent use.
type Upsert struct {
	effect
	stateSQL    string   // reads the state a conflict reports
	single, cte sync.Map // upsertShape → SQL text
	arrays      sync.Map
}

var _ intent.BatchEffect = (*Upsert)(nil)

// NewUpsert returns the upsert effect on db.
func NewUpsert(db DB, cfg EffectConfig) (*Upsert, error) {
	e, err := newEffect(db, cfg)
	if err != nil {
		return nil, err
	}
	return &Upsert{effect: e, stateSQL: "SELECT current_state::text FROM " + e.n.table + " WHERE entity_id = $1 AND domain = $2"}, nil
}

// upsertShape is what the SQL text of an upsert depends on.
type upsertShape struct {
	cols        registration.Columns // never zero: zero is AllColumns
	hasExpected bool
}

type upsertReq struct {
	u    *registration.UpsertRegistration
	corr uuid.UUID
}

func (r *upsertReq) shape() upsertShape {
	cols := r.u.Columns
	if cols == 0 {
		cols = registration.AllColumns
	}
	return upsertShape{cols: cols, hasExpected: r.u.ExpectedState != registration.StateNone}
}

func (e *Upsert) parse(in intent.Intent) (upsertReq, error) {
	u, err := payloadOf[registration.UpsertRegistration](in, "upsert")
	if err != nil {
		return upsertReq{}, err
	}
	corr := correlation(in, u.CorrelationID)
	err = u.Validate()
	if err == nil {
		err = checkJSON(registration.AllColumns, &u.Projection)
	}
	if err != nil {
		return upsertReq{}, intent.Permanent(fmt.Errorf("registrar/postgres: upsert %s (correlation %s): %w",
			u.Projection.EntityID, corr, err))
	}
	return upsertReq{u: u, corr: corr}, nil
}

// args are the bind parameters of the single statement. The INSERT (no
// expected state): entity, domain, every column in table order. The UPDATE
// (an expected state): entity, domain, the shape's columns in table order,
// then the expected state.
func (r *upsertReq) args() []any {
	p := &r.u.Projection
	s := r.shape()
	if !s.hasExpected {
		args := make([]any, 0, 2+registration.AllColumns.Len())
		args = append(args, pgUUID(p.EntityID), p.Domain)
		for c := range registration.AllColumns.Each() {
			args = append(args, arg(p.Value(c)))
		}
		return args
	}
	args := make([]any, 0, 3+s.cols.Len())
	args = append(args, pgUUID(p.EntityID), p.Domain)
	for c := range s.cols.Each() {
		args = append(args, arg(p.Value(c)))
	}
	return append(args, string(r.u.ExpectedState))
}

// insertColumns writes "entity_id, domain, <every column>".
func insertColumns(b *strings.Builder) {
	b.WriteString("entity_id, domain")
	for c := range registration.AllColumns.Each() {
		b.WriteString(", ")
		b.WriteString(quoteColumn(c.Name()))
	}
}

// upsertStatement writes the single statement of s (no RETURNING): the
// INSERT ... ON CONFLICT DO NOTHING of a decision that saw no row, or the
// guarded UPDATE of one that saw a row.
func (e *Upsert) upsertStatement(b *strings.Builder, s upsertShape) {
	if s.hasExpected {
		e.updateStatement(b, s)
		return
	}
	b.WriteString("INSERT INTO ")
	b.WriteString(e.n.table)
	b.WriteString(" AS t (")
	insertColumns(b)
	b.WriteString(") VALUES ($1, $2")
	i := 3
	for c := range registration.AllColumns.Each() {
		b.WriteString(", $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(columnCast(c, e.n))
		i++
	}
	b.WriteString(") ON CONFLICT (entity_id, domain) DO NOTHING")
}

// updateStatement writes the UPDATE of an upsert with an expected state:
// $1 entity, $2 domain, $3.. the shape's columns, then the expected state.
func (e *Upsert) updateStatement(b *strings.Builder, s upsertShape) {
	i, _ := writeUpdateSet(b, e.n, s.cols)
	b.WriteString(" WHERE entity_id = $1 AND domain = $2 AND current_state = $")
	b.WriteString(strconv.Itoa(i))
	b.WriteString("::text::")
	b.WriteString(e.n.stateType)
}

func (e *Upsert) singleSQL(s upsertShape) string {
	return cachedSQL(&e.single, s, func(b *strings.Builder) { e.upsertStatement(b, s) })
}

// cteSQL reports (rows written, state before; NULL if there was no row)
// in one statement, the single statement's args.
func (e *Upsert) cteSQL(s upsertShape) string {
	return cachedSQL(&e.cte, s, func(b *strings.Builder) {
		b.WriteString("WITH prev AS (SELECT current_state FROM ")
		b.WriteString(e.n.table)
		b.WriteString(" WHERE entity_id = $1 AND domain = $2), w AS (")
		e.upsertStatement(b, s)
		b.WriteString(" RETURNING 1) SELECT (SELECT count(*) FROM w), (SELECT current_state::text FROM prev)")
	})
}

// Execute performs one upsert intent: one INSERT ... ON CONFLICT DO NOTHING
// or one guarded UPDATE, and on zero rows one SELECT for the conflict's
// reason.
func (e *Upsert) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	req, err := e.parse(in)
	if err != nil {
		return intent.Result{}, err
	}
	p := &req.u.Projection
	tag, err := e.db.Exec(ctx, e.singleSQL(req.shape()), req.args()...)
	if err != nil {
		return intent.Result{}, opError("upsert", p.EntityID, req.corr, err)
	}
	if tag.RowsAffected() > 0 {
		return intent.Result{}, nil
	}
	var st pgtype.Text
	err = e.db.QueryRow(ctx, e.stateSQL, pgUUID(p.EntityID), p.Domain).Scan(&st)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return intent.Result{}, opError("upsert", p.EntityID, req.corr, err)
	}
	r := classifyUpsert(req.u, st)
	e.logNoChange(ctx, "upsert", p.EntityID, req.corr, r)
	return r, nil
}

// classifyUpsert words the conflict of an upsert that wrote nothing, from
// the state the row had (invalid st: no row), as registration.ApplyUpsert
// does: an upsert that expects a state finds no row or a row in another
// state; one that expects none finds a row. If the guard holds on what st
// says (a row in the expected state; no row for an insert), the row moved
// between the statement and the read.
func classifyUpsert(u *registration.UpsertRegistration, st pgtype.Text) intent.Result {
	switch {
	case !st.Valid && u.ExpectedState != registration.StateNone:
		return intent.Result{Status: intent.Conflict, Reason: reasonMissing(u.Projection.EntityID)}
	case !st.Valid, registration.State(st.String) == u.ExpectedState:
		return intent.Result{Status: intent.Conflict, Reason: reasonRaced}
	}
	return intent.Result{Status: intent.Conflict, Reason: reasonState(registration.State(st.String), u.ExpectedState)}
}
