package bus

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/registrar-go/registrar/internal/jsonobj"
)

// Version is a semantic version as SemVer 2.0.0 (https://semver.org) defines
// it: major.minor.patch, an optional prerelease and optional build metadata.
//
// In JSON it is read either as a string, "1.2.3-rc.1+build.5" (see
// [ParseVersion]), or as an object,
// {"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]},
// and written as the object, the form the Python services' ModelSemVer
// produces: prerelease and build are arrays of identifiers, numeric
// prerelease identifiers are numbers, and the two keys are left out when
// empty, so that a version without them is written as
// {"major":1,"minor":2,"patch":3}.
//
// Versions that are == have the same fields, build metadata included;
// [Version.Compare] orders them by precedence, which ignores it. The yaml
// tags leave an empty prerelease and build out of a YAML mapping, so that
// a release is written {major, minor, patch} there too.
type Version struct {
	// Major, Minor and Patch are the version numbers; not negative.
	Major, Minor, Patch int
	// Prerelease is the prerelease without its leading '-': dot-separated
	// identifiers such as "rc.1". Empty for a release.
	Prerelease string `yaml:"prerelease,omitempty"`
	// Build is the build metadata without its leading '+': dot-separated
	// identifiers such as "build.5". Empty when there is none.
	Build string `yaml:"build,omitempty"`
}

// MaxVersionLen is the length limit, in bytes of its string form, of the
// versions that [ParseVersion] and [Version.UnmarshalJSON] accept and that
// [Version.Validate] allows. It is the limit of npm's semver, and keeps a
// version well within a Consul service meta value (512 characters).
const MaxVersionLen = 256

// String returns the version's SemVer string form: "major.minor.patch",
// followed by "-" and the prerelease if there is one and by "+" and the
// build metadata if there is some.
func (v Version) String() string {
	if v.Prerelease == "" && v.Build == "" {
		return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) + "." + strconv.Itoa(v.Patch)
	}
	b := make([]byte, 0, 3*4+2+len(v.Prerelease)+len(v.Build)+2)
	b = strconv.AppendInt(b, int64(v.Major), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(v.Minor), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(v.Patch), 10)
	if v.Prerelease != "" {
		b = append(b, '-')
		b = append(b, v.Prerelease...)
	}
	if v.Build != "" {
		b = append(b, '+')
		b = append(b, v.Build...)
	}
	return string(b)
}

// IsZero reports whether v is the zero Version: 0.0.0, with no prerelease
// and no build metadata.
func (v Version) IsZero() bool { return v == Version{} }

// Validate reports whether v is a version that [ParseVersion] accepts in its
// full form: Major, Minor and Patch not negative; Prerelease and Build empty
// or dot-separated identifiers of ASCII letters, digits and hyphens, none
// empty, numeric prerelease identifiers without leading zeros; and a string
// form at most [MaxVersionLen] bytes long. Its error says what is wrong.
func (v Version) Validate() error {
	for _, n := range []struct {
		name  string
		value int
	}{{"major", v.Major}, {"minor", v.Minor}, {"patch", v.Patch}} {
		if n.value < 0 {
			return fmt.Errorf("version %s: %s is negative", v, n.name)
		}
	}
	if n := stringLen(v); n > MaxVersionLen {
		return fmt.Errorf("version is %d bytes long as a string, more than %d", n, MaxVersionLen)
	}
	if v.Prerelease != "" {
		if p := identifiersProblem(v.Prerelease, true); p != "" {
			return fmt.Errorf("version %s: prerelease %s", quoteVersion(v.String()), p)
		}
	}
	if v.Build != "" {
		if p := identifiersProblem(v.Build, false); p != "" {
			return fmt.Errorf("version %s: build metadata %s", quoteVersion(v.String()), p)
		}
	}
	return nil
}

// stringLen is len(v.String()) for a v with parts that are not negative.
func stringLen(v Version) int {
	n := digits(v.Major) + digits(v.Minor) + digits(v.Patch) + 2
	if v.Prerelease != "" {
		n += 1 + len(v.Prerelease)
	}
	if v.Build != "" {
		n += 1 + len(v.Build)
	}
	return n
}

func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// Compare returns -1, 0 or +1 as v has lower, the same or higher precedence
// than w, by the rules of SemVer 2.0.0: major, minor and patch compare as
// numbers, in that order; a prerelease has lower precedence than its release
// (1.0.0-rc.1 < 1.0.0); two prereleases compare identifier by identifier from
// the left, numeric identifiers as numbers (of any size), others in ASCII
// order, numeric ones lower than the others, and when all of the shorter
// list's identifiers are equal the longer list is higher
// (1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta.2 <
// 1.0.0-beta.11). Build metadata is ignored: 1.0.0+a and 1.0.0+b compare as
// 0, though they are not ==.
func (v Version) Compare(w Version) int {
	if c := cmp.Compare(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Patch, w.Patch); c != 0 {
		return c
	}
	return comparePrerelease(v.Prerelease, w.Prerelease)
}

func comparePrerelease(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1 // a release is higher than its prereleases
	case b == "":
		return -1
	}
	for {
		x, restA, moreA := strings.Cut(a, ".")
		y, restB, moreB := strings.Cut(b, ".")
		if c := compareIdentifier(x, y); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = restA, restB
	}
}

func compareIdentifier(x, y string) int {
	xNum, yNum := isNumeric(x), isNumeric(y)
	switch {
	case xNum && yNum:
		// Numbers of any length: without leading zeros, the longer is the
		// larger, and digits of the same length compare as text.
		x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
		if c := cmp.Compare(len(x), len(y)); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	case xNum:
		return -1
	case yNum:
		return 1
	}
	return strings.Compare(x, y)
}

// isNumeric reports whether id is a non-empty string of ASCII digits.
func isNumeric[T string | []byte](id T) bool {
	if len(id) == 0 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// MarshalJSON writes v as a {"major","minor","patch"} object, with
// "prerelease" and "build" arrays after them when v has a prerelease or
// build metadata, as ModelSemVer writes them: a numeric prerelease identifier
// as a JSON number, the others, and all build identifiers, as strings. A
// version with a prerelease or build metadata that [Version.Validate]
// refuses is an error.
func (v Version) MarshalJSON() ([]byte, error) {
	if v.Prerelease == "" && v.Build == "" {
		return fmt.Appendf(nil, `{"major":%d,"minor":%d,"patch":%d}`, v.Major, v.Minor, v.Patch), nil
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+2*len(v.Prerelease)+2*len(v.Build))
	b = fmt.Appendf(b, `{"major":%d,"minor":%d,"patch":%d`, v.Major, v.Minor, v.Patch)
	b = appendIdentifiers(b, `,"prerelease":[`, v.Prerelease, true)
	b = appendIdentifiers(b, `,"build":[`, v.Build, false)
	return append(b, '}'), nil
}

// appendIdentifiers appends key and the dot-separated identifiers of the
// valid s as a JSON array to b, numbers unquoted if numbers is set; it
// appends nothing for an empty s.
func appendIdentifiers(b []byte, key, s string, numbers bool) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	for i := 0; ; i++ {
		id, rest, more := strings.Cut(s, ".")
		if i > 0 {
			b = append(b, ',')
		}
		if numbers && isNumeric(id) {
			b = append(b, id...)
		} else {
			b = append(b, '"')
			b = append(b, id...) // identifiers need no escaping
			b = append(b, '"')
		}
		if !more {
			return append(b, ']')
		}
		s = rest
	}
}

// errNotVersion is the error for JSON that is neither a string nor an object.
var errNotVersion = errors.New(`want a version string ("1.2.3-rc.1+build.5") or a {"major","minor","patch","prerelease","build"} object`)

// UnmarshalJSON reads a version string as [ParseVersion] does, or a
// {"major","minor","patch","prerelease","build"} object. In the object,
// major is required and the others default to 0 or empty; the numbers are
// whole JSON numbers, not negative, that fit an int; prerelease and build
// are arrays of identifiers, each a string or a whole number (the form
// ModelSemVer writes), or dot-separated strings ("rc.1"); null or an empty
// array or string means none. The identifiers and the length obey
// [Version.Validate]. Keys match case-insensitively, a later duplicate wins
// and unknown keys are ignored, as with encoding/json.
func (v *Version) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		if !jsonobj.Valid(data) {
			return errNotVersion
		}
		p, err := parseVersion(jsonobj.Bytes(data))
		if err != nil {
			return err
		}
		*v = p
		return nil
	}
	if p, ok := plainVersionObject(data); ok {
		*v = p
		return nil
	}
	var parts [3]int
	var hasMajor bool
	var prerelease, build []byte // dot-separated identifiers
	var kb [64]byte
	problem := ""
	it := jsonobj.NewIter(data)
	for it.Next() {
		raw := it.Value()
		key := jsonobj.Key(it.Key(), &kb)
		var dst *int
		switch string(key) {
		case "major":
			dst = &parts[0]
		case "minor":
			dst = &parts[1]
		case "patch":
			dst = &parts[2]
		case "prerelease", "build":
			ids, isPrerelease := &build, false
			if string(key) == "prerelease" {
				ids, isPrerelease = &prerelease, true
			}
			var p string
			if *ids, p = identifiersValue((*ids)[:0], raw, isPrerelease); p != "" && problem == "" {
				problem = fmt.Sprintf("version object: %q %s", string(key), p)
			}
			continue
		default:
			continue
		}
		if jsonobj.KindOf(raw) == jsonobj.Null {
			if dst == &parts[0] {
				hasMajor = false // null clears it, as encoding/json clears a pointer
			}
			continue
		}
		n, err := jsonobj.Int(raw)
		if err != nil {
			if problem == "" {
				problem = fmt.Sprintf("version object: %q %s", string(key), numberProblem(raw))
			}
			continue
		}
		*dst = n
		if dst == &parts[0] {
			hasMajor = true
		}
	}
	if it.Err() != nil {
		return errNotVersion
	}
	if problem != "" {
		return errors.New(problem)
	}
	if !hasMajor {
		return errors.New(`version object has no "major"`)
	}
	if parts[0] < 0 || parts[1] < 0 || parts[2] < 0 {
		return errors.New("version has a negative part")
	}
	p := Version{Major: parts[0], Minor: parts[1], Patch: parts[2]}
	if len(prerelease) > 0 || len(build) > 0 {
		p.Prerelease, p.Build = string(prerelease), string(build)
		if err := p.Validate(); err != nil {
			return err
		}
	}
	*v = p
	return nil
}

// plainVersionObject reads the form MarshalJSON writes for a release,
// {"major":1,"minor":2,"patch":3} byte for byte, without a scan of the
// object; ok is false for anything else, which the full reader then reads.
func plainVersionObject(data []byte) (v Version, ok bool) {
	rest := data
	for k, key := range [3]string{`{"major":`, `,"minor":`, `,"patch":`} {
		if len(rest) < len(key) || string(rest[:len(key)]) != key {
			return Version{}, false
		}
		rest = rest[len(key):]
		n, i := 0, 0
		for i < len(rest) && i < 9 && rest[i] >= '0' && rest[i] <= '9' {
			n = n*10 + int(rest[i]-'0')
			i++
		}
		if i == 0 || i == 9 || (i > 1 && rest[0] == '0') { // none, too long, or a leading zero
			return Version{}, false
		}
		rest = rest[i:]
		switch k {
		case 0:
			v.Major = n
		case 1:
			v.Minor = n
		default:
			v.Patch = n
		}
	}
	return v, string(rest) == "}"
}

// numberProblem says why the raw JSON value v is not a version number.
func numberProblem(v []byte) string {
	switch k := jsonobj.KindOf(v); {
	case k != jsonobj.Number:
		return "is not a number but JSON " + k.String()
	case bytes.ContainsAny(v, ".eE"):
		return "is not a whole number: " + truncate(string(v))
	}
	return "does not fit an int: " + truncate(string(v))
}

// identifiersValue appends to dst, dot-separated, the identifiers of a
// prerelease (or build) object member raw: an array of strings and whole
// numbers, or a dot-separated string. It returns dst and what is wrong, or
// "". It checks each element of an array, since a '.' in one would pass for
// a separator; a string is checked with the rest of the version.
func identifiersValue(dst, raw []byte, prerelease bool) ([]byte, string) {
	switch k := jsonobj.KindOf(raw); k {
	case jsonobj.Null:
		return dst, ""
	case jsonobj.String:
		s := jsonobj.Bytes(raw)
		if len(s) > MaxVersionLen {
			return dst, fmt.Sprintf("is %d bytes long, more than a version may be (%d)", len(s), MaxVersionLen)
		}
		return append(dst, s...), ""
	case jsonobj.Array:
		problem := ""
		n := 0
		err := jsonobj.Elements(raw, func(e []byte) error {
			n++
			var id []byte
			switch jsonobj.KindOf(e) {
			case jsonobj.String:
				id = jsonobj.Bytes(e)
			case jsonobj.Number:
				if !isNumeric(e) {
					problem = fmt.Sprintf("identifier %d is not a whole number ≥ 0: %s", n, truncate(string(e)))
					return errStop
				}
				id = e
			default:
				problem = fmt.Sprintf("identifier %d is JSON %s, not a string or a number", n, jsonobj.KindOf(e))
				return errStop
			}
			if len(dst)+1+len(id) > MaxVersionLen {
				problem = fmt.Sprintf("makes the version longer than %d bytes", MaxVersionLen)
				return errStop
			}
			if p := identifierProblem(id, prerelease); p != "" {
				if len(id) == 0 {
					p = fmt.Sprintf("identifier %d is empty", n)
				}
				problem = p
				return errStop
			}
			if len(dst) > 0 {
				dst = append(dst, '.')
			}
			dst = append(dst, id...)
			return nil
		})
		if problem == "" && err != nil {
			problem = "is not a JSON array: " + err.Error()
		}
		return dst, problem
	default:
		return dst, "is JSON " + k.String() + ", not an array of identifiers or a string"
	}
}

// errStop ends a walk over JSON elements early.
var errStop = errors.New("stop")

// ParseVersion parses a semantic version in its SemVer 2.0.0 string form:
// major.minor.patch, then optionally '-' and a prerelease, then optionally
// '+' and build metadata, as in "1.2.3", "1.2.3-rc.1", "1.2.3+build.5" and
// "1.2.3-rc.1+build.5".
//
// The numbers are decimal digits without a sign or leading zeros, and fit an
// int. The prerelease and the build metadata are dot-separated identifiers
// of ASCII letters, digits and hyphens, none of them empty; numeric
// prerelease identifiers have no leading zeros ("rc.01" is an error), build
// identifiers may ("build.007"). The whole string is at most
// [MaxVersionLen] bytes long.
//
// A version without a prerelease or build metadata may leave out its patch,
// or its minor and patch, as older senders write it: "1.2" is 1.2.0, "1" is
// 1.0.0. Anything else is an error that says what is wrong.
func ParseVersion(s string) (Version, error) { return parseVersion(s) }

func parseVersion[T string | []byte](s T) (Version, error) {
	if len(s) == 0 {
		return Version{}, errors.New("version is empty")
	}
	if len(s) > MaxVersionLen {
		return Version{}, fmt.Errorf("version %s is %d bytes long, more than %d", quoteVersion(s), len(s), MaxVersionLen)
	}
	// The build metadata starts at the first '+', the prerelease at the
	// first '-' before it: the numbers have neither, identifiers may have
	// a '-'.
	end := len(s) // of the numbers and the prerelease
	plus := indexByte(s, '+')
	if plus >= 0 {
		end = plus
	}
	coreEnd := end
	dash := indexByte(s[:end], '-')
	if dash >= 0 {
		coreEnd = dash
	}
	var n [3]int
	parts, start := 0, 0
	for i := 0; i <= coreEnd; i++ {
		if i < coreEnd && s[i] != '.' {
			continue
		}
		if parts == 3 {
			return Version{}, fmt.Errorf("version %s is not major.minor.patch: it has more than three numbers", quoteVersion(s))
		}
		x, p := versionNumber(s[start:i])
		if p != "" {
			return Version{}, fmt.Errorf("version %s is not major.minor.patch: %s %s", quoteVersion(s), partNames[parts], p)
		}
		n[parts] = x
		parts++
		start = i + 1
	}
	v := Version{Major: n[0], Minor: n[1], Patch: n[2]}
	if dash < 0 && plus < 0 {
		return v, nil
	}
	if parts < 3 {
		return Version{}, fmt.Errorf("version %s: a prerelease or build metadata needs all of major.minor.patch", quoteVersion(s))
	}
	if dash >= 0 {
		pre := s[dash+1 : end]
		if len(pre) == 0 {
			return Version{}, fmt.Errorf("version %s: the prerelease after '-' is empty", quoteVersion(s))
		}
		if p := identifiersProblem(pre, true); p != "" {
			return Version{}, fmt.Errorf("version %s: prerelease %s", quoteVersion(s), p)
		}
		v.Prerelease = string(pre)
	}
	if plus >= 0 {
		build := s[plus+1:]
		if len(build) == 0 {
			return Version{}, fmt.Errorf("version %s: the build metadata after '+' is empty", quoteVersion(s))
		}
		if p := identifiersProblem(build, false); p != "" {
			return Version{}, fmt.Errorf("version %s: build metadata %s", quoteVersion(s), p)
		}
		v.Build = string(build)
	}
	return v, nil
}

var partNames = [3]string{"major", "minor", "patch"}

// versionNumber parses one of major, minor and patch, or says what is wrong.
func versionNumber[T string | []byte](s T) (int, string) {
	switch {
	case len(s) == 0:
		return 0, "is empty"
	case !isNumeric(s):
		return 0, fmt.Sprintf("%s is not a number", quoteVersion(s))
	case len(s) > 1 && s[0] == '0':
		return 0, fmt.Sprintf("%s has a leading zero", quoteVersion(s))
	}
	n := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i] - '0')
		if n > (math.MaxInt-d)/10 {
			return 0, fmt.Sprintf("%s is larger than %d", quoteVersion(s), math.MaxInt)
		}
		n = n*10 + d
	}
	return n, ""
}

// identifiersProblem says why the non-empty s is not a list of SemVer
// identifiers separated by dots, or returns "". Numeric identifiers of a
// prerelease must not have leading zeros.
func identifiersProblem[T string | []byte](s T, prerelease bool) string {
	start, n := 0, 1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		if i == start {
			return fmt.Sprintf("identifier %d is empty", n)
		}
		if p := identifierProblem(s[start:i], prerelease); p != "" {
			return p
		}
		start = i + 1
		n++
	}
	return ""
}

// identifierProblem says why id is not one SemVer identifier, or returns "".
func identifierProblem[T string | []byte](id T, prerelease bool) string {
	if len(id) == 0 {
		return "has an empty identifier"
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
		default:
			return fmt.Sprintf("identifier %s has %s; identifiers are made of [0-9A-Za-z-]", quoteVersion(id), charAt(id[i:]))
		}
	}
	if prerelease && len(id) > 1 && id[0] == '0' && isNumeric(id) {
		return fmt.Sprintf("identifier %s is numeric with a leading zero", quoteVersion(id))
	}
	return ""
}

// charAt describes the character s starts with.
func charAt[T string | []byte](s T) string {
	r, size := utf8.DecodeRuneInString(string(s[:min(len(s), utf8.UTFMax)]))
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("the byte %#02x, which is not UTF-8", s[0])
	}
	return strconv.QuoteRune(r)
}

func indexByte[T string | []byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// quoteVersion quotes s for an error message, cut to 64 bytes.
func quoteVersion[T string | []byte](s T) string {
	return strconv.Quote(truncate(string(s)))
}
