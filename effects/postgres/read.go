package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/reducer/registration"
)

// listShape is which filters a List query has; each shape is one
// statement, written once per store.
type listShape uint8

const (
	listAfter  listShape = 1 << iota
	listState            // one state: an equality, which the state index serves in entity id order
	listStates           // several states: = ANY
	listNodeType
	listCapability
	listUpdatedSince
)

// shapeOf returns the shape of r.
func shapeOf(r registration.ListRequest) listShape {
	var sh listShape
	if r.HasAfter {
		sh |= listAfter
	}
	switch len(r.States) {
	case 0:
	case 1:
		sh |= listState
	default:
		sh |= listStates
	}
	if r.NodeType != "" {
		sh |= listNodeType
	}
	if r.Capability != "" {
		sh |= listCapability
	}
	if !r.UpdatedSince.IsZero() {
		sh |= listUpdatedSince
	}
	return sh
}

// listSQL is the statement of List for a shape: $1 is the domain, $2 the
// row limit (the page size plus one, to tell whether there is a next
// page), then one parameter per filter of the shape, in the order of the
// listShape bits. Every value is a parameter; the only identifiers are
// the schema's, quoted by newNames. Each filter has its index (migration
// 0004): the planner picks the most selective and checks the others on
// the rows it reads; ORDER BY entity_id is the primary key's order, and
// that of the state and node type indexes for one state and one type. A
// filter the planner expects to match often is served by reading the
// primary key in order and filtering, which stops after one page.
func listSQL(n names, sh listShape) string {
	var b strings.Builder
	b.WriteString("SELECT entity_id, " + loadColumns + " FROM " + n.table + " WHERE domain = $1")
	arg := 2
	next := func() string { arg++; return "$" + strconv.Itoa(arg) }
	if sh&listAfter != 0 {
		b.WriteString(" AND entity_id > " + next() + "::uuid")
	}
	if sh&listState != 0 {
		b.WriteString(" AND current_state = " + next() + "::text::" + n.stateType)
	}
	if sh&listStates != 0 {
		b.WriteString(" AND current_state = ANY(" + next() + "::text[]::" + n.stateType + "[])")
	}
	if sh&listNodeType != 0 {
		b.WriteString(" AND node_type = " + next() + "::text")
	}
	if sh&listCapability != 0 {
		b.WriteString(" AND capabilities @> jsonb_build_object(" + next() + "::text, true)")
	}
	if sh&listUpdatedSince != 0 {
		b.WriteString(" AND updated_at >= " + next() + "::timestamptz")
	}
	b.WriteString(" ORDER BY entity_id LIMIT $2")
	return b.String()
}

// listArgs are the parameters of listSQL(n, shapeOf(r)).
func listArgs(domain string, r registration.ListRequest) []any {
	args := []any{domain, r.Limit + 1}
	if r.HasAfter {
		args = append(args, pgtype.UUID{Bytes: r.After, Valid: true})
	}
	if len(r.States) == 1 {
		args = append(args, string(r.States[0]))
	}
	if len(r.States) > 1 {
		states := make([]string, len(r.States))
		for i, s := range r.States {
			states[i] = string(s)
		}
		args = append(args, states)
	}
	if r.NodeType != "" {
		args = append(args, r.NodeType)
	}
	if r.Capability != "" {
		args = append(args, r.Capability)
	}
	if !r.UpdatedSince.IsZero() {
		args = append(args, r.UpdatedSince)
	}
	return args
}

// Get implements registration.Reader: the projection of id, or an error
// wrapping registration.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*registration.Projection, error) {
	p, err := s.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("registrar/postgres: get %s: %w", id, registration.ErrNotFound)
	}
	return p, nil
}

// List implements registration.Reader with one statement per page: the
// filters and the cursor are parameters, the page is read in entity id
// order with LIMIT, from the index of the most selective filter
// (TestListUsesIndexes checks the plans on 1M rows).
func (s *Store) List(ctx context.Context, q registration.Query) (registration.Page, error) {
	r, err := q.Request()
	if err != nil {
		return registration.Page{}, fmt.Errorf("registrar/postgres: list projections: %w", err)
	}
	sh := shapeOf(r)
	sql := cachedSQL(&s.lists, sh, func(b *strings.Builder) { b.WriteString(listSQL(s.names, sh)) })
	rows, err := s.db.Query(ctx, sql, listArgs(s.domain, r)...)
	if err != nil {
		return registration.Page{}, fmt.Errorf("registrar/postgres: list projections: %w", classify(err))
	}
	defer rows.Close()
	items := make([]*registration.Projection, 0, min(r.Limit+1, 64))
	for rows.Next() {
		p, err := scanProjection(rows)
		if err != nil {
			return registration.Page{}, fmt.Errorf("registrar/postgres: list projections: %w", classify(err))
		}
		items = append(items, p)
	}
	if err := rows.Err(); err != nil {
		return registration.Page{}, fmt.Errorf("registrar/postgres: list projections: %w", classify(err))
	}
	return r.Page(items), nil
}
