package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/registrar-go/registrar/internal/jsonobj"
)

// Version is a semantic version. In JSON it is read either as a "1.2.3" string
// or as a {"major":1,"minor":2,"patch":3} object, and written as the object,
// the form the Python services' models produce.
type Version struct {
	Major, Minor, Patch int
}

// String returns "major.minor.patch".
func (v Version) String() string {
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) + "." + strconv.Itoa(v.Patch)
}

// IsZero reports whether v is 0.0.0.
func (v Version) IsZero() bool { return v == Version{} }

// MarshalJSON writes v as a {"major","minor","patch"} object.
func (v Version) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"major":%d,"minor":%d,"patch":%d}`, v.Major, v.Minor, v.Patch), nil
}

// UnmarshalJSON reads a "1.2.3" string or a {"major","minor","patch"} object.
func (v *Version) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		if !json.Valid(data) {
			return errors.New(`want a "1.2.3" string or a {"major","minor","patch"} object`)
		}
		p, err := ParseVersion(string(jsonobj.Bytes(data)))
		if err != nil {
			return err
		}
		*v = p
		return nil
	}
	var parts [3]int
	var hasMajor bool
	var kb [64]byte
	bad := false
	it := jsonobj.NewIter(data)
	for it.Next() {
		raw := it.Value()
		var dst *int
		switch string(jsonobj.Key(it.Key(), &kb)) {
		case "major":
			dst = &parts[0]
		case "minor":
			dst = &parts[1]
		case "patch":
			dst = &parts[2]
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
			bad = true
			continue
		}
		*dst = n
		if dst == &parts[0] {
			hasMajor = true
		}
	}
	if it.Err() != nil || bad {
		return errors.New(`want a "1.2.3" string or a {"major","minor","patch"} object`)
	}
	if !hasMajor {
		return errors.New(`version object has no "major"`)
	}
	if parts[0] < 0 || parts[1] < 0 || parts[2] < 0 {
		return errors.New("version has a negative part")
	}
	*v = Version{Major: parts[0], Minor: parts[1], Patch: parts[2]}
	return nil
}

// ParseVersion parses "major.minor.patch"; minor and patch may be left out.
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 3 || s == "" {
		return Version{}, fmt.Errorf("version %q is not major.minor.patch", s)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return Version{}, fmt.Errorf("version %q is not major.minor.patch", s)
		}
		n[i] = x
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}
