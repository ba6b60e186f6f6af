package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// updateRun is what the intents of one arrays statement share: the columns
// they write and guard, which shape the statement, and their domain and
// expected state, which travel as single parameters. The values written
// and the guards' expected values travel as arrays, one element per
// intent.
type updateRun struct {
	set, guard registration.Columns
	domain     string
	expected   registration.State
}

func (r *updateReq) run() updateRun {
	return updateRun{set: r.u.Set, guard: r.u.Guard, domain: r.u.Domain, expected: r.u.ExpectedState}
}

// ExecuteBatch performs ins as if each were executed with Execute in
// order, in one round trip (a pgx.Batch; see [BatchStrategy]), and returns
// one Result per intent. An invalid intent fails the batch with an
// [intent.Permanent] error naming its index before any SQL runs. Unless db
// is a transaction already, the batch runs in one implicit transaction: if
// it returns an error, no intent took effect, unless the connection was
// lost after the commit.
func (e *Update) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	return e.executeBatch(ctx, e.db, ins)
}

// executeBatch is ExecuteBatch on db.
func (e *Update) executeBatch(ctx context.Context, db DB, ins []intent.Intent) ([]intent.Result, error) {
	if len(ins) == 0 {
		return []intent.Result{}, nil
	}
	reqs := make([]updateReq, len(ins))
	for i, in := range ins {
		r, err := e.parse(in)
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: update batch: intent %d: %w", i, err)
		}
		reqs[i] = r
	}
	keyOf := func(i int) rowKey { return rowKey{reqs[i].u.EntityID, reqs[i].u.Domain} }
	sps := spans(e.batch, len(reqs), func(i int) updateRun { return reqs[i].run() }, keyOf)
	// An arrays span is final if no later span writes its rows: then the
	// intents it did not apply can be classified after the batch, as
	// Execute does, and the statement need not look at the rows it left
	// alone. Otherwise it classifies them itself, in its snapshot.
	last := make(map[rowKey]int, len(reqs))
	for k, sp := range sps {
		for i := sp.from; i < sp.to; i++ {
			last[keyOf(i)] = k
		}
	}
	final := func(k int) bool {
		sp := sps[k]
		for i := sp.from; i < sp.to; i++ {
			if last[keyOf(i)] != k {
				return false
			}
		}
		return true
	}
	b := &pgx.Batch{}
	plain := make([]bool, len(sps))
	for k, sp := range sps {
		r := &reqs[sp.from]
		if !sp.arrays() {
			b.Queue(e.cteSQL(r.shape()), r.args()...)
			continue
		}
		args, err := e.arrayArgs(reqs[sp.from:sp.to], sp)
		if err != nil {
			return nil, intent.Permanent(fmt.Errorf("registrar/postgres: update batch: intent %d: %w", sp.from, err))
		}
		plain[k] = final(k)
		b.Queue(e.arraysSQL(r.shape(), plain[k]), args...)
	}
	results := make([]intent.Result, len(ins))
	var unchanged []int // intents of plain spans that updated nothing
	br := db.SendBatch(ctx, b)
	for k, sp := range sps {
		var err error
		if plain[k] {
			unchanged, err = readPlainSpan(br, sp, unchanged)
		} else {
			err = e.readSpan(br, sp, reqs, results)
		}
		if err != nil {
			_ = br.Close()
			r := &reqs[sp.from]
			return nil, batchError("update", sp.from, r.u.EntityID, r.corr, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, batchError("update", 0, reqs[0].u.EntityID, reqs[0].corr, err)
	}
	if len(unchanged) > 0 {
		if err := e.classifyAfter(ctx, db, reqs, unchanged, results); err != nil {
			r := &reqs[unchanged[0]]
			return nil, batchError("update", unchanged[0], r.u.EntityID, r.corr, err)
		}
	}
	for i := range results {
		if results[i].Status != intent.Applied {
			e.logNoChange(ctx, "update", reqs[i].u.EntityID, reqs[i].corr, results[i])
		}
	}
	return results, nil
}

// readPlainSpan reads the ordinals a plain arrays statement updated and
// appends the others of its span to unchanged.
func readPlainSpan(br pgx.BatchResults, sp span, unchanged []int) ([]int, error) {
	rows, err := br.Query()
	if err != nil {
		return unchanged, err
	}
	defer rows.Close()
	updated := make([]bool, sp.to-sp.from)
	for rows.Next() {
		var ord int32
		if err := rows.Scan(&ord); err != nil {
			return unchanged, err
		}
		i := int(ord)
		if i < sp.from || i >= sp.to {
			return unchanged, fmt.Errorf("arrays statement returned ordinal %d outside [%d, %d)", i, sp.from, sp.to)
		}
		updated[i-sp.from] = true
	}
	if err := rows.Err(); err != nil {
		return unchanged, err
	}
	for j, ok := range updated {
		if !ok {
			unchanged = append(unchanged, sp.from+j)
		}
	}
	return unchanged, nil
}

// classifyAfter reads, in one statement, the rows of the intents that
// updated nothing in plain spans, and classifies them as Execute does with
// its follow-up SELECT.
func (e *Update) classifyAfter(ctx context.Context, db DB, reqs []updateReq, unchanged []int, results []intent.Result) error {
	ids := make([]pgtype.UUID, len(unchanged))
	domains := make([]string, len(unchanged))
	for j, i := range unchanged {
		ids[j], domains[j] = pgUUID(reqs[i].u.EntityID), reqs[i].u.Domain
	}
	var sql strings.Builder
	sql.WriteString("SELECT t.entity_id, t.domain, ")
	writeLookList(&sql, allLookColumns, "t.")
	sql.WriteString(" FROM " + e.n.table +
		" t JOIN unnest($1::uuid[], $2::text[]) AS v(entity_id, domain) ON t.entity_id = v.entity_id AND t.domain = v.domain")
	rows, err := db.Query(ctx, sql.String(), ids, domains)
	if err != nil {
		return err
	}
	rowsByKey := map[rowKey]*registration.Projection{}
	for rows.Next() {
		var id pgtype.UUID
		var k rowKey
		l := newLook(allLookColumns)
		if err := rows.Scan(append([]any{&id, &k.domain}, l.dests...)...); err != nil {
			rows.Close()
			return err
		}
		k.id = id.Bytes
		rowsByKey[k] = l.row()
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range unchanged {
		u := reqs[i].u
		results[i] = classifyUpdate(u, rowsByKey[rowKey{u.EntityID, u.Domain}])
	}
	return nil
}

// readSpan reads one statement's results into results: a single statement
// reports (rows updated, the row before); an arrays statement returns
// (ordinal, the row before) only for each intent that updated nothing. The
// row before is the look of the span's guard columns.
func (e *Update) readSpan(br pgx.BatchResults, sp span, reqs []updateReq, results []intent.Result) error {
	cols := lookColumns(reqs[sp.from].u.Guard)
	if !sp.arrays() {
		var n int64
		l := newLook(cols)
		if err := br.QueryRow().Scan(append([]any{&n}, l.dests...)...); err != nil {
			return err
		}
		if n == 0 {
			results[sp.from] = classifyUpdate(reqs[sp.from].u, l.row())
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
		l := newLook(cols)
		if err := rows.Scan(append([]any{&ord}, l.dests...)...); err != nil {
			return err
		}
		i := int(ord)
		if i < sp.from || i >= sp.to {
			return fmt.Errorf("arrays statement returned ordinal %d outside [%d, %d)", i, sp.from, sp.to)
		}
		results[i] = classifyUpdate(reqs[i].u, l.row())
	}
	return rows.Err()
}

// arraysSQL updates a run of intents on distinct rows in one statement,
// joining the table to the unnest()ed arrays of their values:
//
//	$1 ordinals, $2 entity ids, $3.. one array per column of Set, then one
//	per column of Guard (the expected values), then the domain and the
//	expected state (if any) as single values.
//
// It returns (ordinal, the row before) for each intent that updated
// nothing, the row read in the statement's snapshot (lookColumns of the
// guard), so the caller can tell a conflict from a skip; applied intents
// cost no result row.
//
// A plain statement (for a final span) is the UPDATE alone; it returns
// the ordinals it updated.
func (e *Update) arraysSQL(s updateShape, plain bool) string {
	cache := &e.arrays
	if plain {
		cache = &e.arraysPlain
	}
	if v, ok := cache.Load(s); ok {
		return v.(string)
	}
	var b strings.Builder
	b.WriteString("WITH v AS (SELECT * FROM unnest($1::int4[], $2::uuid[]")
	i := 3
	// The arrays of the Set columns are v.c<n>, those of the guards v.g<n>,
	// n the parameter's number.
	var cols, guards []string
	param := func(c registration.Columns, prefix string) string {
		arr, _ := arrayType(c, e.n)
		b.WriteString(", $")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("::")
		b.WriteString(arr)
		name := prefix + strconv.Itoa(i)
		i++
		return name
	}
	for c := range s.set.Each() {
		cols = append(cols, param(c, "c"))
	}
	for c := range s.guard.Each() {
		guards = append(guards, param(c, "g"))
	}
	domain := "$" + strconv.Itoa(i) + "::text"
	b.WriteString(") AS v(ord, entity_id, ")
	b.WriteString(strings.Join(slices.Concat(cols, guards), ", "))
	if plain {
		b.WriteString(")) UPDATE ")
	} else {
		b.WriteString(")), upd AS (UPDATE ")
	}
	b.WriteString(e.n.table)
	b.WriteString(" AS t SET ")
	hb := ""
	k := 0
	for c := range s.set.Each() {
		if k > 0 {
			b.WriteString(", ")
		}
		_, cast := arrayType(c, e.n)
		b.WriteString(quoteColumn(c.Name()))
		b.WriteString(" = v.")
		b.WriteString(cols[k])
		b.WriteString(cast)
		if c == registration.ColLastHeartbeatAt {
			hb = cols[k]
		}
		k++
	}
	b.WriteString(" FROM v WHERE t.entity_id = v.entity_id AND t.domain = ")
	b.WriteString(domain)
	if s.hasExpected {
		b.WriteString(" AND t.current_state = $")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("::text::")
		b.WriteString(e.n.stateType)
	}
	k = 0
	for c := range s.guard.Each() {
		_, cast := arrayType(c, e.n)
		b.WriteString(" AND t.")
		b.WriteString(quoteColumn(c.Name()))
		b.WriteString(" IS NOT DISTINCT FROM v.")
		b.WriteString(guards[k])
		b.WriteString(cast)
		k++
	}
	if hb != "" {
		b.WriteString(" AND (t.last_heartbeat_at IS NULL OR t.last_heartbeat_at < v.")
		b.WriteString(hb)
		b.WriteString(")")
	}
	if plain {
		b.WriteString(" RETURNING v.ord")
		sql := b.String()
		cache.Store(s, sql)
		return sql
	}
	b.WriteString(" RETURNING v.ord) SELECT v.ord, c.* FROM v LEFT JOIN upd u ON u.ord = v.ord LEFT JOIN LATERAL (SELECT ")
	writeLookList(&b, lookColumns(s.guard), "t.")
	b.WriteString(" FROM ")
	b.WriteString(e.n.table)
	b.WriteString(" t WHERE t.entity_id = v.entity_id AND t.domain = ")
	b.WriteString(domain)
	b.WriteString(") c ON true WHERE u.ord IS NULL")
	sql := b.String()
	cache.Store(s, sql)
	return sql
}

func (e *Update) arrayArgs(reqs []updateReq, sp span) ([]any, error) {
	n := len(reqs)
	ids := make([]pgtype.UUID, n)
	for i := range reqs {
		ids[i] = pgUUID(reqs[i].u.EntityID)
	}
	first := reqs[0].u
	args := make([]any, 0, 4+first.Set.Len()+first.Guard.Len())
	args = append(args, ords(sp), ids)
	for c := range first.Set.Each() {
		a, err := columnArray(c, n, func(i int) *registration.Projection { return &reqs[i].u.Values })
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	for c := range first.Guard.Each() {
		a, err := columnArray(c, n, func(i int) *registration.Projection { return &reqs[i].u.Expected })
		if err != nil {
			return nil, fmt.Errorf("guard: %w", err)
		}
		args = append(args, a)
	}
	args = append(args, first.Domain)
	if first.ExpectedState != registration.StateNone {
		args = append(args, string(first.ExpectedState))
	}
	return args, nil
}
