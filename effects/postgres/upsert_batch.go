package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// upsertRun is what the intents of one arrays statement share: the shape,
// and the domain and the expected state, which travel as single
// parameters (as an update's run does).
type upsertRun struct {
	upsertShape
	domain   string
	expected registration.State
}

func (r *upsertReq) run() upsertRun {
	return upsertRun{upsertShape: r.shape(), domain: r.u.Projection.Domain, expected: r.u.ExpectedState}
}

// ExecuteBatch performs ins as if each were executed with Execute in
// order, in one round trip; see [Update.ExecuteBatch] for the guarantees.
func (e *Upsert) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	return e.executeBatch(ctx, e.db, ins)
}

// executeBatch is ExecuteBatch on db.
func (e *Upsert) executeBatch(ctx context.Context, db DB, ins []intent.Intent) ([]intent.Result, error) {
	if len(ins) == 0 {
		return []intent.Result{}, nil
	}
	reqs := make([]upsertReq, len(ins))
	for i, in := range ins {
		r, err := e.parse(in)
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: upsert batch: intent %d: %w", i, err)
		}
		reqs[i] = r
	}
	sps := spans(e.batch, len(reqs),
		func(i int) upsertRun { return reqs[i].run() },
		func(i int) rowKey { return rowKey{reqs[i].u.Projection.EntityID, reqs[i].u.Projection.Domain} })
	b := &pgx.Batch{}
	for _, sp := range sps {
		r := &reqs[sp.from]
		if !sp.arrays() {
			b.Queue(e.cteSQL(r.shape()), r.args()...)
			continue
		}
		args, err := e.arrayArgs(reqs[sp.from:sp.to], sp)
		if err != nil {
			return nil, intent.Permanent(fmt.Errorf("registrar/postgres: upsert batch: intent %d: %w", sp.from, err))
		}
		b.Queue(e.arraysSQL(r.shape()), args...)
	}
	results := make([]intent.Result, len(ins))
	br := db.SendBatch(ctx, b)
	for _, sp := range sps {
		if err := e.readSpan(br, sp, reqs, results); err != nil {
			_ = br.Close()
			r := &reqs[sp.from]
			return nil, batchError("upsert", sp.from, r.u.Projection.EntityID, r.corr, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, batchError("upsert", 0, reqs[0].u.Projection.EntityID, reqs[0].corr, err)
	}
	if err := e.reclassifyRaced(ctx, db, reqs, results); err != nil {
		return nil, err
	}
	for i := range results {
		if results[i].Status != intent.Applied {
			e.logNoChange(ctx, "upsert", reqs[i].u.Projection.EntityID, reqs[i].corr, results[i])
		}
	}
	return results, nil
}

// reclassifyRaced reads again, after the batch, the state of each row
// whose upsert wrote nothing although the state its statement read (in
// its snapshot) is the expected one: a concurrent writer changed or
// removed the row while the statement waited for it, and the state read
// now says which, as Execute's follow-up SELECT does. Only an intent that
// no later intent of the batch writes the row of is read again (else the
// state read now is the batch's own write, and the race stays the
// reason). It costs a round trip only when there was such a race.
func (e *Upsert) reclassifyRaced(ctx context.Context, db DB, reqs []upsertReq, results []intent.Result) error {
	var last map[rowKey]int
	for i := range results {
		if results[i].Status != intent.Conflict || results[i].Reason != reasonRaced {
			continue
		}
		if last == nil {
			last = make(map[rowKey]int, len(reqs))
			for j := range reqs {
				last[rowKey{reqs[j].u.Projection.EntityID, reqs[j].u.Projection.Domain}] = j
			}
		}
		p := &reqs[i].u.Projection
		if last[rowKey{p.EntityID, p.Domain}] != i {
			continue
		}
		var st pgtype.Text
		err := db.QueryRow(ctx, e.stateSQL, pgUUID(p.EntityID), p.Domain).Scan(&st)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return batchError("upsert", i, p.EntityID, reqs[i].corr, err)
		}
		results[i] = classifyUpsert(reqs[i].u, st)
	}
	return nil
}

// readSpan reads one statement's results: (rows written, state before) for
// a single statement; a row per intent that wrote nothing, with the state
// before, for an arrays statement.
func (e *Upsert) readSpan(br pgx.BatchResults, sp span, reqs []upsertReq, results []intent.Result) error {
	var st pgtype.Text
	if !sp.arrays() {
		var n int64
		if err := br.QueryRow().Scan(&n, &st); err != nil {
			return err
		}
		if n == 0 {
			results[sp.from] = classifyUpsert(reqs[sp.from].u, st)
		}
		return nil
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ord int32
		if err := rows.Scan(&ord, &st); err != nil {
			return err
		}
		i := int(ord)
		if i < sp.from || i >= sp.to {
			return fmt.Errorf("arrays statement returned ordinal %d outside [%d, %d)", i, sp.from, sp.to)
		}
		results[i] = classifyUpsert(reqs[i].u, st)
	}
	return rows.Err()
}

// arraysSQL inserts or overwrites a run of upserts on distinct rows of one
// domain with the same columns and expected state in one statement. A run
// that expects no row inserts, ON CONFLICT DO NOTHING:
//
//	$1 ordinals, $2 entity ids, $3.. one array per column (every column),
//	then the domain as a single value.
//
// A run that expects a state is a guarded UPDATE joined to the unnest()ed
// arrays, which writes no missing row:
//
//	$1 ordinals, $2 entity ids, $3.. one array per column of the shape,
//	then the domain and the expected state as single values.
//
// Either returns (ordinal, state before; NULL if there was no row) for
// each intent that wrote nothing, the state read in the statement's
// snapshot; applied intents cost no result row.
func (e *Upsert) arraysSQL(s upsertShape) string {
	if v, ok := e.arrays.Load(s); ok {
		return v.(string)
	}
	cols := registration.AllColumns
	if s.hasExpected {
		cols = s.cols
	}
	var b strings.Builder
	b.WriteString("WITH v AS (SELECT * FROM unnest($1::int4[], $2::uuid[]")
	i := 3
	for c := range cols.Each() {
		arr, _ := arrayType(c, e.n)
		b.WriteString(", $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("::")
		b.WriteString(arr)
		i++
	}
	domain := "$" + strconv.Itoa(i) + "::text"
	b.WriteString(") AS v(ord, entity_id")
	for k := range cols.Len() {
		b.WriteString(", c")
		b.WriteString(strconv.Itoa(k))
	}
	if s.hasExpected {
		b.WriteString(")), w AS (UPDATE ")
		b.WriteString(e.n.table)
		b.WriteString(" AS t SET ")
		k := 0
		for c := range cols.Each() {
			if k > 0 {
				b.WriteString(", ")
			}
			_, cast := arrayType(c, e.n)
			b.WriteString(quoteColumn(c.Name()))
			b.WriteString(" = v.c")
			b.WriteString(strconv.Itoa(k))
			b.WriteString(cast)
			k++
		}
		b.WriteString(" FROM v WHERE t.entity_id = v.entity_id AND t.domain = ")
		b.WriteString(domain)
		b.WriteString(" AND t.current_state = $")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("::text::")
		b.WriteString(e.n.stateType)
	} else {
		b.WriteString(")), w AS (INSERT INTO ")
		b.WriteString(e.n.table)
		b.WriteString(" AS t (")
		insertColumns(&b)
		b.WriteString(") SELECT v.entity_id, ")
		b.WriteString(domain)
		k := 0
		for c := range cols.Each() {
			_, cast := arrayType(c, e.n)
			b.WriteString(", v.c")
			b.WriteString(strconv.Itoa(k))
			b.WriteString(cast)
			k++
		}
		b.WriteString(" FROM v ON CONFLICT (entity_id, domain) DO NOTHING")
	}
	b.WriteString(" RETURNING t.entity_id) SELECT v.ord, c.current_state::text" +
		" FROM v LEFT JOIN w ON w.entity_id = v.entity_id LEFT JOIN LATERAL (SELECT t.current_state FROM ")
	b.WriteString(e.n.table)
	b.WriteString(" t WHERE t.entity_id = v.entity_id AND t.domain = ")
	b.WriteString(domain)
	b.WriteString(") c ON true WHERE w.entity_id IS NULL")
	sql := b.String()
	e.arrays.Store(s, sql)
	return sql
}

// arrayArgs are the bind parameters of arraysSQL for the run reqs.
func (e *Upsert) arrayArgs(reqs []upsertReq, sp span) ([]any, error) {
	n := len(reqs)
	ids := make([]pgtype.UUID, n)
	for i := range reqs {
		ids[i] = pgUUID(reqs[i].u.Projection.EntityID)
	}
	s := reqs[0].shape()
	cols := registration.AllColumns
	if s.hasExpected {
		cols = s.cols
	}
	args := make([]any, 0, 4+cols.Len())
	args = append(args, ords(sp), ids)
	for c := range cols.Each() {
		a, err := columnArray(c, n, func(i int) *registration.Projection { return &reqs[i].u.Projection })
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	args = append(args, reqs[0].u.Projection.Domain)
	if s.hasExpected {
		args = append(args, string(reqs[0].u.ExpectedState))
	}
	return args, nil
}
