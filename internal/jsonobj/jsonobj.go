package jsonobj

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotObject is returned by [Members] for valid JSON that is not an object.
var ErrNotObject = errors.New("not a JSON object")

// Kind is the kind of a JSON value, from its first byte.
type Kind byte

// The kinds of JSON values.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Object
	Array
)

// String names the kind as encoding/json's errors do.
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Object:
		return "object"
	case Array:
		return "array"
	}
	return "invalid"
}

// KindOf returns the kind of the raw JSON value v.
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return Invalid
	}
	switch v[0] {
	case 'n':
		return Null
	case 't', 'f':
		return Bool
	case '"':
		return String
	case '{':
		return Object
	case '[':
		return Array
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return Number
	}
	return Invalid
}

// SyntaxError describes invalid JSON.
type SyntaxError struct {
	// Offset is the byte offset where the error was found.
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string { return e.msg }

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// Members calls fn with the key and the raw value of each member of the
// JSON object data, in order, and stops at fn's first error. It validates
// data as it goes, in one pass: invalid JSON is a [*SyntaxError] (and fn
// may have seen the members before the error); valid JSON that is not an
// object is [ErrNotObject]. The key is the member name's raw bytes between
// its quotes when it has no escapes, else its decoded form; it is only
// valid during the call. Use [Key] to compare it. [Iter] does the same
// without a callback, and without allocating.
func Members(data []byte, fn func(key, value []byte) error) error {
	it := NewIter(data)
	for it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Err()
}

// ErrNotArray is returned by [Elements] for valid JSON that is not an array.
var ErrNotArray = errors.New("not a JSON array")

// Elements calls fn with the raw value of each element of the JSON array
// data, in order, and stops at fn's first error. Like [Members] it
// validates data in one pass: invalid JSON is a [*SyntaxError] (and fn may
// have seen the elements before the error); valid JSON that is not an
// array is [ErrNotArray]. It does not allocate unless it reports an error.
func Elements(data []byte, fn func(value []byte) error) error {
	p := parser{data: data}
	i := p.space(0)
	if i >= len(data) || data[i] != '[' {
		end, err := p.value(i, 0)
		if err != nil {
			return err
		}
		if err := p.end(end); err != nil {
			return err
		}
		return ErrNotArray
	}
	i = p.space(i + 1)
	if i < len(data) && data[i] == ']' {
		return p.end(i + 1)
	}
	for {
		end, err := p.value(i, 1)
		if err != nil {
			return err
		}
		if err := fn(data[i:end]); err != nil {
			return err
		}
		i = p.space(end)
		if i >= len(data) {
			return p.fail(i, "")
		}
		switch data[i] {
		case ']':
			return p.end(i + 1)
		case ',':
			i = p.space(i + 1)
		default:
			return p.fail(i, "after array element")
		}
	}
}

// Iter walks the members of a JSON object, validating as it goes:
//
//	it := jsonobj.NewIter(data)
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// Key and Value are as [Members] passes them, valid until the next call of
// Next. Err is a [*SyntaxError] for invalid JSON, [ErrNotObject] for valid
// JSON that is not an object, nil after the whole object was read.
type Iter struct {
	p          parser
	i          int // where the next member (or the closing brace) starts
	state      uint8
	key, value []byte
	keyBuf     []byte
	err        error
}

const (
	iterStart uint8 = iota
	iterMembers
	iterDone
)

// NewIter returns an iterator over the members of the object data.
func NewIter(data []byte) Iter { return Iter{p: parser{data: data}} }

// Key returns the current member's key.
func (it *Iter) Key() []byte { return it.key }

// Value returns the current member's raw value.
func (it *Iter) Value() []byte { return it.value }

// Err returns why the iteration stopped early, or nil.
func (it *Iter) Err() error { return it.err }

func (it *Iter) stop(err error) bool {
	it.state, it.err, it.key, it.value = iterDone, err, nil, nil
	return false
}

// Next advances to the next member and reports whether there is one.
func (it *Iter) Next() bool {
	p, data := &it.p, it.p.data
	i := it.i
	switch it.state {
	case iterDone:
		return false
	case iterStart:
		it.state = iterMembers
		i = p.space(0)
		if i >= len(data) || data[i] != '{' {
			end, err := p.value(i, 0)
			if err != nil {
				return it.stop(err)
			}
			if end = p.space(end); end != len(data) {
				return it.stop(p.fail(end, "invalid character after top-level value"))
			}
			return it.stop(ErrNotObject)
		}
		i = p.space(i + 1)
		if i < len(data) && data[i] == '}' {
			return it.stop(p.end(i + 1))
		}
	default:
		// i is just after the previous value.
		i = p.space(i)
		if i >= len(data) {
			return it.stop(p.fail(i, "unexpected end of JSON input"))
		}
		switch data[i] {
		case '}':
			return it.stop(p.end(i + 1))
		case ',':
			i = p.space(i + 1)
		default:
			return it.stop(p.fail(i, "after object key:value pair"))
		}
	}
	if i >= len(data) || data[i] != '"' {
		return it.stop(p.fail(i, "looking for beginning of object key string"))
	}
	kEnd, escaped, err := p.str(i)
	if err != nil {
		return it.stop(err)
	}
	it.key = data[i+1 : kEnd-1]
	if escaped {
		it.keyBuf = appendUnquoted(it.keyBuf[:0], data[i:kEnd])
		it.key = it.keyBuf
	}
	i = p.space(kEnd)
	if i >= len(data) || data[i] != ':' {
		return it.stop(p.fail(i, "after object key"))
	}
	vStart := p.space(i + 1)
	vEnd, err := p.value(vStart, 1)
	if err != nil {
		return it.stop(err)
	}
	it.value = data[vStart:vEnd]
	it.i = vEnd
	return true
}

// Key returns key in the form to compare with field names in lower-case
// ASCII, folded as encoding/json folds object keys: it matches field names
// case-insensitively under Unicode simple folding. An ASCII key with upper
// case is lowered into buf; in a key with bytes that are not ASCII, the two
// runes that fold to an ASCII letter, U+017F (ſ, folds to s) and U+212A
// (Kelvin sign, folds to k), are replaced by that letter, and every other
// rune is kept (it folds to no ASCII letter, so the key can match no such
// field name). It does not allocate for keys that fit buf.
func Key(key []byte, buf *[64]byte) []byte {
	for i, c := range key {
		if (c >= 'A' && c <= 'Z') || c >= utf8.RuneSelf {
			return foldKey(key, i, buf)
		}
	}
	return key
}

// foldKey is Key's slow path for a key whose first byte to fold is at i.
func foldKey(key []byte, i int, buf *[64]byte) []byte {
	out := buf[:0]
	if len(key) > len(buf) {
		out = make([]byte, 0, len(key))
	}
	out = append(out, key[:i]...)
	for i < len(key) {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(key[i:])
			switch r {
			case '\u017f': // LATIN SMALL LETTER LONG S
				out = append(out, 's')
			case '\u212a': // KELVIN SIGN
				out = append(out, 'k')
			default:
				out = append(out, key[i:i+n]...)
			}
			i += n
		}
	}
	return out
}

type parser struct{ data []byte }

func (p *parser) fail(i int, msg string) error {
	if i >= len(p.data) {
		return &SyntaxError{Offset: len(p.data), msg: "unexpected end of JSON input"}
	}
	return &SyntaxError{Offset: i + 1, msg: "invalid character " + strconv.QuoteRune(rune(p.data[i])) + " " + msg}
}

// end checks that nothing but space follows a top-level object ending at i.
func (p *parser) end(i int) error {
	if i = p.space(i); i != len(p.data) {
		return p.fail(i, "after top-level value")
	}
	return nil
}

func (p *parser) space(i int) int {
	for i < len(p.data) {
		switch p.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value validates the value starting at i and returns the index after it.
func (p *parser) value(i, depth int) (int, error) {
	d := p.data
	if i >= len(d) {
		return i, p.fail(i, "")
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := p.str(i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, &SyntaxError{Offset: i + 1, msg: "exceeded max depth"}
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = p.space(i + 1)
		if i < len(d) && d[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(d) || d[i] != '"' {
					return i, p.fail(i, "looking for beginning of object key string")
				}
				end, _, err := p.str(i)
				if err != nil {
					return end, err
				}
				i = p.space(end)
				if i >= len(d) || d[i] != ':' {
					return i, p.fail(i, "after object key")
				}
				i = p.space(i + 1)
			}
			end, err := p.value(i, depth+1)
			if err != nil {
				return end, err
			}
			i = p.space(end)
			if i >= len(d) {
				return i, p.fail(i, "")
			}
			switch d[i] {
			case closer:
				return i + 1, nil
			case ',':
				i = p.space(i + 1)
			default:
				return i, p.fail(i, "after value")
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(i)
	case c == 't':
		return p.literal(i, "true")
	case c == 'f':
		return p.literal(i, "false")
	case c == 'n':
		return p.literal(i, "null")
	}
	return i, p.fail(i, "looking for beginning of value")
}

func (p *parser) literal(i int, lit string) (int, error) {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(p.data) || p.data[i+j] != lit[j] {
			return i + j, p.fail(i+j, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

func (p *parser) number(i int) (int, error) {
	d := p.data
	digits := func(i int) int {
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i
	}
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return i, p.fail(i, "in numeric literal")
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		i = digits(i)
	default:
		return i, p.fail(i, "in numeric literal")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, p.fail(i, "after decimal point in numeric literal")
		}
		i = digits(i)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, p.fail(i, "in exponent of numeric literal")
		}
		i = digits(i)
	}
	return i, nil
}

// plainByte marks the bytes that stand for themselves in a JSON string:
// printable ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainWord reports whether all eight bytes of x are plainByte bytes: none
// is below 0x20, '"', '\\' or 0x80 and above.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	// Below 0x80, a byte is below 0x20 when its bits 0x60 are clear.
	return (x|hasZero(x&0x6060606060606060)|hasZero(x^0x2222222222222222)|hasZero(x^0x5c5c5c5c5c5c5c5c))&highs == 0
}

// str validates the string starting at the quote at i; it returns the index
// after the closing quote and whether the string has escapes or bytes that
// are not ASCII (so that it is not its own value).
func (p *parser) str(i int) (int, bool, error) {
	d := p.data
	special := false
	for i++; i < len(d); i++ {
		for i+8 <= len(d) && plainWord(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && plainByte[d[i]] {
			i++
		}
		if i >= len(d) {
			break
		}
		c := d[i]
		switch {
		case c == '"':
			return i + 1, special, nil
		case c == '\\':
			special = true
			i++
			if i >= len(d) {
				return i, true, p.fail(i, "")
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for j := 1; j <= 4; j++ {
					if i+j >= len(d) || !isHex(d[i+j]) {
						return i + j, true, p.fail(i+j, "in \\u hexadecimal character escape")
					}
				}
				i += 4
			default:
				return i, true, p.fail(i, "in string escape code")
			}
		case c < 0x20:
			return i, special, p.fail(i, "in string literal")
		default: // c >= utf8.RuneSelf
			special = true
		}
	}
	return i, special, p.fail(i, "")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// plainString returns the contents of the quoted JSON string raw if it has
// no escapes and is valid UTF-8, so that it is its own value.
func plainString(raw []byte) ([]byte, bool) {
	body := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range body {
		switch {
		case c == '\\':
			return nil, false // an escape, wherever it is
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(body) {
		return nil, false
	}
	return body, true
}

// Str returns the value of the raw JSON string v, decoded as encoding/json
// decodes it.
func Str(v []byte) string {
	if b, ok := plainString(v); ok {
		return string(b)
	}
	return string(appendUnquoted(nil, v))
}

// Bytes returns the value of the raw JSON string v as Str does, without
// copying when it has no escapes: the result may alias v.
func Bytes(v []byte) []byte {
	if b, ok := plainString(v); ok {
		return b
	}
	return appendUnquoted(nil, v)
}

// AppendStr appends the value of the raw JSON string v, decoded as [Str]
// decodes it, to dst.
func AppendStr(dst, v []byte) []byte {
	if b, ok := plainString(v); ok {
		return append(dst, b...)
	}
	return appendUnquoted(dst, v)
}

// Valid reports whether data is one valid JSON value, space around it
// allowed, as json.Valid does. It does not allocate for valid data.
func Valid(data []byte) bool {
	p := parser{data: data}
	end, err := p.value(p.space(0), 0)
	return err == nil && p.space(end) == len(data)
}

// appendUnquoted appends the decoded contents of the valid quoted JSON
// string raw to dst: escapes resolved, invalid UTF-8 and lone surrogates
// replaced by U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	body := raw[1 : len(raw)-1]
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\\':
			e := body[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(body[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
						r2 = hex4(body[i+2:])
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						i += 6
						r = d
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(body[i:])
			i += size
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// Int parses the raw JSON number v as an int, as encoding/json decodes a
// number into an int: an error for a fraction, an exponent or overflow.
func Int(v []byte) (int, error) {
	return strconv.Atoi(string(v))
}

// Float parses the raw JSON number v as a float64.
func Float(v []byte) (float64, error) {
	return strconv.ParseFloat(string(v), 64)
}

// Field is a member [Read] looks for.
type Field struct {
	// Name is the member's name in lower-case ASCII; members match it
	// case-insensitively, as encoding/json matches field names (see [Key]).
	Name string
	// Kind is the kind the value must have; Invalid accepts any. null is
	// always accepted.
	Kind Kind
}

// KindError says that a member's value has the wrong kind.
type KindError struct {
	// Name is the member's name as the Field names it.
	Name string
	// Want and Got are the expected and the actual kind.
	Want, Got Kind
}

func (e *KindError) Error() string {
	return e.Name + ": want " + e.Want.String() + ", got " + e.Got.String()
}

// Read reads the members of the object data that fields name, and ignores
// the others: vals[i] receives the raw value of fields[i], nil if it is
// absent or null (the last duplicate wins). vals must be at least as long
// as fields. Read returns a [*SyntaxError], [ErrNotObject], or, like
// encoding/json, the first [*KindError] once the whole object was read. It
// does not allocate unless it reports an error.
func Read(data []byte, fields []Field, vals [][]byte) error {
	var kindErr *KindError
	var kb [64]byte
	it := NewIter(data)
	next := 0 // members usually come in the order of fields: try this one first
	for it.Next() {
		key := Key(it.Key(), &kb)
		for n := range fields {
			i := n + next
			if i >= len(fields) {
				i -= len(fields)
			}
			f := &fields[i]
			if string(key) != f.Name {
				continue
			}
			next = i + 1
			v := it.Value()
			switch k := KindOf(v); {
			case k == Null:
				vals[i] = nil
			case f.Kind != Invalid && k != f.Kind:
				vals[i] = nil
				if kindErr == nil {
					kindErr = &KindError{Name: f.Name, Want: f.Kind, Got: k}
				}
			default:
				vals[i] = v
			}
			break
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if kindErr != nil {
		return kindErr
	}
	return nil
}
