package bus

import "testing"

// TestPlainVersionObject: the fast path for {"major":1,"minor":2,"patch":3}
// reads what the full reader reads, and leaves everything else to it.
func TestPlainVersionObject(t *testing.T) {
	for _, s := range []string{`{"major":1,"minor":2,"patch":3}`, `{"major":0,"minor":0,"patch":0}`, `{"major":12345678,"minor":9,"patch":10}`} {
		v, ok := plainVersionObject([]byte(s))
		var want Version
		if err := want.UnmarshalJSON([]byte(" " + s)); err != nil || !ok || v != want {
			t.Errorf("%s: %v %v, want %v (%v)", s, v, ok, want, err)
		}
	}
	for _, s := range []string{`{"major":01,"minor":2,"patch":3}`, `{"major":1,"minor":2,"patch":3,"build":["x"]}`, `{"major":1,"minor":2}`,
		`{"major":123456789,"minor":2,"patch":3}`, `{"major":1,"minor":-2,"patch":3}`, `{"major":1,"minor":2,"patch":3} `, `{"major":1.0,"minor":2,"patch":3}`,
		`{"MAJOR":1,"minor":2,"patch":3}`, `{"major":1,"minor":2,"patch":}`} {
		if _, ok := plainVersionObject([]byte(s)); ok {
			t.Errorf("%s: taken by the fast path", s)
		}
	}
}
