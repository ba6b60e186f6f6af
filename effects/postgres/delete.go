package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Delete is the postgres.delete_registration effect: a guarded DELETE of
// one row, the registration of a node that shut down.
//
//	DELETE FROM registration_projections
//	 WHERE entity_id = $e AND domain = $d
//	   AND current_state = $expected
//	   AND "<column>" IS NOT DISTINCT FROM $value -- for each column of Guard
//
// It takes a *registration.DeleteRegistration payload. Results follow
// registration.ApplyDelete: one row removed is [intent.Applied]; no row, a
// row in another state, or a row whose guard column holds another value
// than the decision read is [intent.Conflict] (the reason names the state
// or the column, from a look at the row after the statement). Zero rows
// is never an error and is not retried; it is logged at debug.
//
// A payload of another type or an invalid one is an [intent.Permanent]
// error that names it, returned before any SQL runs. Delete is safe for
// concurrent use.
type Delete struct {
	effect
	lookSQL string
	stmts   sync.Map // guard columns → SQL text
}

var _ intent.BatchEffect = (*Delete)(nil)

// NewDelete returns the delete effect on db.
func NewDelete(db DB, cfg EffectConfig) (*Delete, error) {
	e, err := newEffect(db, cfg)
	if err != nil {
		return nil, err
	}
	return &Delete{effect: e, lookSQL: lookRowSQL(e.n)}, nil
}

// deleteReq is one validated delete.
type deleteReq struct {
	d    *registration.DeleteRegistration
	corr uuid.UUID
}

func (e *Delete) parse(in intent.Intent) (deleteReq, error) {
	d, err := payloadOf[registration.DeleteRegistration](in, "delete")
	if err != nil {
		return deleteReq{}, err
	}
	corr := correlation(in, d.CorrelationID)
	if err := d.Validate(); err != nil {
		return deleteReq{}, intent.Permanent(fmt.Errorf("registrar/postgres: delete %s (correlation %s): %w", d.EntityID, corr, err))
	}
	return deleteReq{d: d, corr: corr}, nil
}

// sql returns the guarded DELETE for guard.
func (e *Delete) sql(guard registration.Columns) string {
	if s, ok := e.stmts.Load(guard); ok {
		return s.(string)
	}
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(e.n.table)
	b.WriteString(" WHERE entity_id = $1 AND domain = $2 AND current_state = $3::text::")
	b.WriteString(e.n.stateType)
	i := 4
	for c := range guard.Each() {
		b.WriteString(" AND ")
		b.WriteString(quoteColumn(c.Name()))
		b.WriteString(" IS NOT DISTINCT FROM $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(columnCast(c, e.n))
		i++
	}
	s := b.String()
	e.stmts.Store(guard, s)
	return s
}

func (r *deleteReq) args() []any {
	d := r.d
	args := make([]any, 0, 3+d.Guard.Len())
	args = append(args, pgUUID(d.EntityID), d.Domain, string(d.ExpectedState))
	for c := range d.Guard.Each() {
		args = append(args, arg(d.Expected.Value(c)))
	}
	return args
}

// Execute performs one delete intent: one DELETE, and on zero rows one
// SELECT to say why.
func (e *Delete) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	req, err := e.parse(in)
	if err != nil {
		return intent.Result{}, err
	}
	return e.executeOn(ctx, e.db, &req)
}

// ExecuteBatch performs ins in order, as Execute does each, on the
// effect's handle: a statement per intent (removals are rare; a node shuts
// down once). An invalid intent fails the batch with an [intent.Permanent]
// error naming its index before any SQL runs. Unless the handle is a
// transaction, each delete commits on its own.
func (e *Delete) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	return e.executeBatch(ctx, e.db, ins)
}

func (e *Delete) executeBatch(ctx context.Context, db DB, ins []intent.Intent) ([]intent.Result, error) {
	reqs := make([]deleteReq, len(ins))
	for i, in := range ins {
		r, err := e.parse(in)
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: delete batch: intent %d: %w", i, err)
		}
		reqs[i] = r
	}
	out := make([]intent.Result, len(ins))
	for i := range reqs {
		r, err := e.executeOn(ctx, db, &reqs[i])
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: delete batch: intent %d: %w", i, err)
		}
		out[i] = r
	}
	return out, nil
}

func (e *Delete) executeOn(ctx context.Context, db DB, req *deleteReq) (intent.Result, error) {
	d := req.d
	tag, err := db.Exec(ctx, e.sql(d.Guard), req.args()...)
	if err != nil {
		return intent.Result{}, opError("delete", d.EntityID, req.corr, err)
	}
	if tag.RowsAffected() > 0 {
		return intent.Result{}, nil
	}
	cur, err := lookRow(ctx, db, e.lookSQL, d.EntityID, d.Domain)
	if err != nil {
		return intent.Result{}, opError("delete", d.EntityID, req.corr, err)
	}
	r := d.Check(cur)
	if r.Status == intent.Applied {
		// Every guard holds on the row read after the statement: the row
		// moved in between.
		r = intent.Result{Status: intent.Conflict, Reason: reasonRaced}
	}
	e.logNoChange(ctx, "delete", d.EntityID, req.corr, r)
	return r, nil
}
