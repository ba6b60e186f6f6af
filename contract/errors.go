package contract

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem of a contract: where it is and what is wrong.
//
// A contract built in Go code has no source, so its errors carry only a Path;
// so do errors about values that were changed in code after parsing.
type Error struct {
	// File is the file name given to [Parse] or [Load]; empty for a contract
	// built in code.
	File string
	// Line and Column are 1-based positions in File; zero when unknown.
	Line, Column int
	// Path names the offending element in the contract, in YAML names, for
	// example event_bus.subscribe_topics[2] or
	// intent_consumption.intent_routing_table["consul.register"]. It is empty
	// for problems of the input as a whole, such as an empty file.
	Path string
	// Message says what is wrong.
	Message string
}

// Error formats e as "file:line:col: path: message", leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem that [Parse], [Load] or [Contract.Validate]
// found, ordered by position in the file; errors without a position come
// last. It is never empty. Past 100 errors, a last one says how many more
// there were. (Load returns a plain error when it cannot read the file.)
type Errors []*Error

// Error lists the errors, one a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, so that [errors.As] finds each [*Error].
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxErrors is how many errors an Errors holds at most; a last one says how
// many more there were.
const maxErrors = 100

// err returns es as an error: nil when es is empty. Errors with a position
// come first, ordered by it; the others keep their order after them. Past
// maxErrors, the rest are counted, not listed.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, comparePos)
	if len(es) > maxErrors {
		more := &Error{File: es[0].File, Message: fmt.Sprintf("and %d more problems", len(es)-maxErrors)}
		es = append(es[:maxErrors:maxErrors], more)
	}
	return es
}

func comparePos(a, b *Error) int {
	// Unknown positions (line 0) sort last.
	la, lb := a.Line, b.Line
	if la == 0 {
		la = math.MaxInt
	}
	if lb == 0 {
		lb = math.MaxInt
	}
	if c := cmp.Compare(la, lb); c != 0 || la == math.MaxInt {
		return c
	}
	return cmp.Compare(a.Column, b.Column)
}

// segKind says what a path segment selects.
type segKind uint8

const (
	segField segKind = iota // a struct field, by its YAML name
	segKey                  // a key of a YAML map
	segIndex                // an element of a sequence
)

type seg struct {
	kind  segKind
	name  string
	index int
}

// path locates a node in a contract, from the top. Build paths with field,
// key and index; they never share a backing array.
type path []seg

func (p path) with(s seg) path {
	return append(p[:len(p):len(p)], s)
}

func (p path) field(name string) path { return p.with(seg{kind: segField, name: name}) }
func (p path) key(k string) path      { return p.with(seg{kind: segKey, name: k}) }
func (p path) index(i int) path       { return p.with(seg{kind: segIndex, index: i}) }

// String formats p as event_bus.subscribe_topics[1] or
// intent_consumption.intent_routing_table["consul.register"].
func (p path) String() string {
	var b strings.Builder
	for i, s := range p {
		switch s.kind {
		case segField:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.name)
		case segKey:
			b.WriteString("[" + strconv.Quote(s.name) + "]")
		case segIndex:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		}
	}
	return b.String()
}
