package registration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Reader is the read side of the registration projections: one
// projection by id, pages of the projections that match a [Query], and
// the number of projections in each state, all in the store's domain.
// effects/memory and effects/postgres implement it with the same
// semantics; the conformance suite registrationtest.RunReader holds both
// to them.
//
// # Pagination
//
// List pages by keyset: a page holds the matching projections ordered by
// entity id, and its cursor ([Page.Next]) encodes the last entity id of
// the page; the next page holds the matching projections whose entity id
// comes after it. The store keeps no state between pages. Because the
// entity id of a row never changes, a walk through the pages neither
// skips nor repeats a row while rows change underneath: every row that
// exists during the whole walk and matches the query throughout appears
// exactly once, and no row appears twice. A row that is inserted, or
// starts or stops matching, during the walk may or may not appear (once
// at most), depending on whether the walk had passed its id. The pages
// are not one snapshot: each page shows its rows as they were when it was
// read.
type Reader interface {
	// Get returns the projection of id, or an error wrapping ErrNotFound
	// if there is none.
	Get(ctx context.Context, id uuid.UUID) (*Projection, error)
	// List returns one page of the projections that match q, ordered by
	// entity id (byte order, as PostgreSQL orders uuid): at most q.Limit
	// of them (DefaultListLimit when it is zero; above MaxListLimit is an
	// error), and the cursor of the next page, "" on the last page. An
	// invalid query is an error naming the field; a cursor that does not
	// decode, or was issued for another query, is an error wrapping
	// ErrBadCursor.
	List(ctx context.Context, q Query) (Page, error)
	// CountByState counts the projections by state; states without a
	// projection are absent from the map.
	CountByState(ctx context.Context) (map[State]int, error)
}

// ErrNotFound is what [Reader.Get] wraps when there is no projection for
// the id.
var ErrNotFound = errors.New("registration: no projection")

// ErrBadCursor is what [Reader.List] wraps when [Query].Cursor does not
// decode, or was issued for a query with other filters.
var ErrBadCursor = errors.New("registration: bad list cursor")

// The page sizes of [Reader.List].
const (
	// DefaultListLimit is the page size of a Query whose Limit is zero.
	DefaultListLimit = 100
	// MaxListLimit is the largest page size; a larger Limit is an error.
	MaxListLimit = 1000
)

// Query selects the projections [Reader.List] returns. Its filters are
// combined with AND; a zero filter matches everything.
type Query struct {
	// States matches projections in any of these states; empty matches
	// every state. A state that is not one of States() is an error.
	States []State
	// NodeType matches projections of this node type; "" matches every
	// type. Otherwise it must be one of NodeTypes.
	NodeType string
	// Capability matches projections whose capabilities object has this
	// key with the JSON value true (not "true", not 1); "" matches every
	// projection. It must be UTF-8 without NUL.
	Capability string
	// UpdatedSince matches projections whose updated_at is at or after
	// it (>=), compared at microsecond precision, the precision PostgreSQL
	// stores; a projection without updated_at does not match. The zero
	// time is no bound.
	UpdatedSince time.Time
	// Limit is the page size: 0 means DefaultListLimit; it must not be
	// negative or above MaxListLimit.
	Limit int
	// Cursor is "" for the first page, or the Next of the previous page of
	// a query with the same filters (Limit may differ). It is opaque.
	Cursor string
}

// Page is one page of [Reader.List].
type Page struct {
	// Items are the projections of the page, ordered by entity id.
	Items []*Projection
	// Next is the cursor of the next page, for Query.Cursor; "" when this
	// page is the last.
	Next string
}

// ListRequest is a [Query] checked and normalized for a store: what an
// implementation of [Reader.List] executes. [Query.Request] makes one.
type ListRequest struct {
	// States are the query's states, sorted in their enum order, without
	// repeats; empty matches every state.
	States []State
	// NodeType and Capability are the query's; "" does not filter.
	NodeType, Capability string
	// UpdatedSince is the query's bound truncated to microseconds, in UTC;
	// zero does not filter.
	UpdatedSince time.Time
	// Limit is the page size, between 1 and MaxListLimit.
	Limit int
	// After is the last entity id of the previous page; HasAfter is false
	// on the first page (uuid.Nil is a position too).
	After    uuid.UUID
	HasAfter bool

	hash uint64 // of the filters, which the cursor carries
}

// cursorVersion is the first byte of every cursor; another version does
// not decode.
const cursorVersion = 1

// cursorLen is the length of a decoded cursor: version, entity id, hash of
// the filters.
const cursorLen = 1 + 16 + 8

// Request checks q and returns what a store executes. Errors name the
// field and why it is wrong; a bad cursor wraps ErrBadCursor.
func (q Query) Request() (ListRequest, error) {
	r := ListRequest{NodeType: q.NodeType, Capability: q.Capability, Limit: q.Limit}
	switch {
	case q.Limit == 0:
		r.Limit = DefaultListLimit
	case q.Limit < 0:
		return ListRequest{}, fmt.Errorf("registration: query: Limit %d is negative", q.Limit)
	case q.Limit > MaxListLimit:
		return ListRequest{}, fmt.Errorf("registration: query: Limit %d is above MaxListLimit (%d)", q.Limit, MaxListLimit)
	}
	order := States()
	for _, s := range q.States {
		if !s.Valid() {
			return ListRequest{}, fmt.Errorf("registration: query: States: %q is not a registration state (one of %v)", string(s), order)
		}
		if !slices.Contains(r.States, s) {
			r.States = append(r.States, s)
		}
	}
	slices.SortFunc(r.States, func(a, b State) int { return slices.Index(order, a) - slices.Index(order, b) })
	if q.NodeType != "" && !validNodeType(q.NodeType) {
		return ListRequest{}, fmt.Errorf("registration: query: NodeType %q is not one of %v", q.NodeType, NodeTypes)
	}
	if !utf8.ValidString(q.Capability) || strings.ContainsRune(q.Capability, 0) {
		return ListRequest{}, fmt.Errorf("registration: query: Capability %q is not UTF-8 text without NUL (what a JSON key in PostgreSQL can be)", q.Capability)
	}
	if !q.UpdatedSince.IsZero() {
		r.UpdatedSince = q.UpdatedSince.UTC().Truncate(time.Microsecond)
	}
	r.hash = r.filterHash()
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(b) != cursorLen || b[0] != cursorVersion {
			return ListRequest{}, fmt.Errorf("registration: query: Cursor %q: %w: not a cursor of this version", q.Cursor, ErrBadCursor)
		}
		if binary.BigEndian.Uint64(b[17:]) != r.hash {
			return ListRequest{}, fmt.Errorf("registration: query: Cursor %q: %w: it was issued for a query with other filters", q.Cursor, ErrBadCursor)
		}
		r.After, r.HasAfter = uuid.UUID(b[1:17]), true
	}
	return r, nil
}

// filterHash hashes the normalized filters, so that a cursor is only
// accepted by a query that selects the same rows.
func (r *ListRequest) filterHash() uint64 {
	h := fnv.New64a()
	var buf []byte
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(r.States)))
	for _, s := range r.States {
		str(string(s))
	}
	str(r.NodeType)
	str(r.Capability)
	if r.UpdatedSince.IsZero() {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = binary.BigEndian.AppendUint64(buf, uint64(r.UpdatedSince.UnixMicro()))
	}
	_, _ = h.Write(buf)
	return h.Sum64()
}

// Cursor returns the cursor of the page after the entity id last, for the
// filters of r.
func (r ListRequest) Cursor(last uuid.UUID) string {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorVersion)
	b = append(b, last[:]...)
	b = binary.BigEndian.AppendUint64(b, r.hash)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Page returns the page of a store that read up to Limit+1 matching
// projections in entity id order, starting after the cursor: the first
// Limit of them, and a cursor if there were more.
func (r ListRequest) Page(items []*Projection) Page {
	if len(items) <= r.Limit {
		return Page{Items: items}
	}
	items = items[:r.Limit]
	return Page{Items: items, Next: r.Cursor(items[len(items)-1].EntityID)}
}

// Match reports whether p matches the filters of r (not the cursor), as
// PostgreSQL evaluates them; a store without a query engine, such as
// effects/memory, filters with it.
func (r ListRequest) Match(p *Projection) bool {
	if len(r.States) > 0 && !slices.Contains(r.States, p.State) {
		return false
	}
	if r.NodeType != "" && p.NodeType != r.NodeType {
		return false
	}
	if !r.UpdatedSince.IsZero() && (p.UpdatedAt.IsZero() || p.UpdatedAt.Truncate(time.Microsecond).Before(r.UpdatedSince)) {
		return false
	}
	if r.Capability != "" && !HasCapability(p.Capabilities, r.Capability) {
		return false
	}
	return true
}

// AfterCursor reports whether id comes after the cursor of r (every id does on
// the first page).
func (r ListRequest) AfterCursor(id uuid.UUID) bool {
	return !r.HasAfter || bytes.Compare(id[:], r.After[:]) > 0
}

// HasCapability reports whether the JSON object caps has the key name
// with the value true, as PostgreSQL's caps @> {"name": true} does: of a
// repeated key the last counts, and a document that is not an object has
// no capabilities.
func HasCapability(caps json.RawMessage, name string) bool {
	// Without escapes in the document, a key equal to name is written as
	// name in quotes: a document that does not hold those bytes has no
	// such key, and need not be parsed.
	if !bytes.ContainsRune(caps, '\\') && plainJSONString(name) && !containsQuoted(caps, name) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(caps, &m) != nil {
		return false
	}
	v, ok := m[name]
	return ok && bytes.Equal(bytes.TrimSpace(v), []byte("true"))
}

// plainJSONString reports whether a JSON document without escapes can
// only write s as its bytes in quotes (conservatively: no quote,
// backslash, control character, HTML character, replacement character or
// line separator).
func plainJSONString(s string) bool {
	for _, r := range s {
		switch {
		case r < 0x20, r == '"', r == '\\', r == '<', r == '>', r == '&', r == utf8.RuneError, r == '\u2028', r == '\u2029':
			return false
		}
	}
	return true
}

// containsQuoted reports whether b holds s in double quotes.
func containsQuoted(b []byte, s string) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(s))
		if j < 0 {
			return false
		}
		j += i
		if j > 0 && b[j-1] == '"' && j+len(s) < len(b) && b[j+len(s)] == '"' {
			return true
		}
		i = j + 1
	}
}

// ListAll pages through every projection of r that matches q (q.Cursor
// and q.Limit are where it starts and its page size) and returns them in
// entity id order. It reads the whole result into memory: for tools,
// tests and small registries.
func ListAll(ctx context.Context, r Reader, q Query) ([]*Projection, error) {
	var out []*Projection
	for {
		p, err := r.List(ctx, q)
		if err != nil {
			return out, err
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}
