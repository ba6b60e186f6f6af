package jsonobj

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzMembersMatchesEncodingJSON: Members accepts exactly what json.Valid
// accepts, tells objects from other values, and yields the members that
// encoding/json sees, with the same string values.
func FuzzMembersMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}],"d":null,"e":true,"f":-0.5e+3} `, `{"a":"\u00e9\ud83d\ude00\n\"\\\/"}`,
		`{"a\u0041":1}`, `{"a":"\udd00x\ud800\u0041"}`, `{"a":"é\u0026\"x"}`, "{\"a\":\"\xff\xfe\"}", `[1,2]`, `"x"`, `1`, `null`,
		`{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":tru}`,
		"{\"a\":\"\x01\"}", `{"a":1}x`, `{`, `{"a":[1,2}`, `{"a":{"b":1]}`, `{"a":-}`, `{"a":"\u12g4"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		type member struct {
			key   string
			value []byte
		}
		var got []member
		err := Members(data, func(k, v []byte) error {
			got = append(got, member{string(k), bytes.Clone(v)})
			return nil
		})
		valid := json.Valid(data)
		var se *SyntaxError
		switch {
		case !valid && !errors.As(err, &se):
			t.Fatalf("%q is invalid JSON; Members returned %v", data, err)
		case valid && err != nil && !errors.Is(err, ErrNotObject):
			t.Fatalf("%q is valid JSON; Members returned %v", data, err)
		}
		if !valid {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			if !errors.Is(err, ErrNotObject) {
				t.Fatalf("%q is not an object; Members returned %v", data, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q is an object; Members returned %v", data, err)
		}
		// The last duplicate wins, as in encoding/json's map.
		last := map[string][]byte{}
		for _, m := range got {
			last[m.key] = m.value
			if KindOf(m.value) == Invalid {
				t.Fatalf("%q: value %q of %q has no kind", data, m.value, m.key)
			}
			if KindOf(m.value) == String {
				var want string
				if err := json.Unmarshal(m.value, &want); err != nil {
					t.Fatal(err)
				}
				if s := Str(m.value); s != want {
					t.Fatalf("Str(%q) = %q, want %q", m.value, s, want)
				}
				if b := Bytes(m.value); string(b) != want {
					t.Fatalf("Bytes(%q) = %q, want %q", m.value, b, want)
				}
			}
		}
		if len(last) != len(obj) {
			t.Fatalf("%q: members %v, encoding/json %v", data, last, obj)
		}
		for k, v := range obj {
			if !bytes.Equal(last[k], v) {
				t.Fatalf("%q: member %q = %q, encoding/json %q", data, k, last[k], v)
			}
		}
	})
}

// FuzzElementsMatchesEncodingJSON: Elements accepts exactly what json.Valid
// accepts, tells arrays from other values, and yields the elements that
// encoding/json sees.
func FuzzElementsMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`[]`, ` [ 1 , "a" , [2,[3]] , {"b":"]"} , null , true , -0.5e+3 ] `, `["\u00e9", "\""]`,
		`{}`, `"x"`, `1`, `null`, `[1,]`, `[,1]`, `[1 2]`, `[`, `[1`, `[1]x`, `[01]`, `[1,{]`, `["\x"]`, "[\"\x01\"]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got [][]byte
		err := Elements(data, func(v []byte) error {
			got = append(got, bytes.Clone(v))
			return nil
		})
		valid := json.Valid(data)
		var se *SyntaxError
		switch {
		case !valid && !errors.As(err, &se):
			t.Fatalf("%q is invalid JSON; Elements returned %v", data, err)
		case valid && err != nil && !errors.Is(err, ErrNotArray):
			t.Fatalf("%q is valid JSON; Elements returned %v", data, err)
		}
		if !valid {
			return
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil || arr == nil {
			if !errors.Is(err, ErrNotArray) {
				t.Fatalf("%q is not an array; Elements returned %v", data, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q is an array; Elements returned %v", data, err)
		}
		if len(got) != len(arr) {
			t.Fatalf("%q: elements %q, encoding/json %q", data, got, arr)
		}
		for i := range arr {
			if !bytes.Equal(got[i], arr[i]) {
				t.Fatalf("%q: element %d = %q, encoding/json %q", data, i, got[i], arr[i])
			}
		}
	})
}

func TestElements(t *testing.T) {
	var got []string
	err := Elements([]byte(` [1, "a" ,[2],{"b":3}] `), func(v []byte) error {
		got = append(got, string(v))
		return nil
	})
	if err != nil || strings.Join(got, "|") != `1|"a"|[2]|{"b":3}` {
		t.Fatalf("Elements: %q, %v", got, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := Elements([]byte(`[1,2,3]`), func([]byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d elements", err, n)
	}
	if err := Elements([]byte(`{"a":1}`), func([]byte) error { return nil }); !errors.Is(err, ErrNotArray) {
		t.Fatalf("object: %v", err)
	}
	var se *SyntaxError
	if err := Elements([]byte(`[1,x]`), func([]byte) error { return nil }); !errors.As(err, &se) || se.Offset != 4 {
		t.Fatalf("syntax error: %v", err)
	}
	data := []byte(`["rc",1,{"a":[true]}]`)
	if n := testing.AllocsPerRun(100, func() { _ = Elements(data, func([]byte) error { return nil }) }); n != 0 {
		t.Errorf("Elements allocates %v times", n)
	}
}

// TestStrEscapeAfterUnicode: an escape that follows a character that is not
// ASCII is decoded too (it once came back verbatim).
func TestStrEscapeAfterUnicode(t *testing.T) {
	for _, raw := range []string{`"é\u0026x"`, `"é\"x"`, "\"\xb2\\u0026\"", `"日本\n"`} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if got := Str([]byte(raw)); got != want {
			t.Errorf("Str(%s) = %q, want %q", raw, got, want)
		}
		if got := Bytes([]byte(raw)); string(got) != want {
			t.Errorf("Bytes(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestMembersStopsAtCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Members([]byte(`{"a":1,"b":2,"c":3}`), func(k, v []byte) error {
		n++
		if string(k) == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("err %v after %d members", err, n)
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	err := Members([]byte(`{"a":1,"b":x}`), func(k, v []byte) error { return nil })
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 12 || !strings.Contains(se.Error(), "'x'") {
		t.Fatalf("error %v", err)
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if err := Members([]byte(`{"a":`+deep+`}`), func(k, v []byte) error { return nil }); !errors.As(err, &se) {
		t.Fatalf("nesting deeper than %d: %v", maxDepth, err)
	}
}

func TestKeyFolds(t *testing.T) {
	var buf [64]byte
	for in, want := range map[string]string{"abc": "abc", "Envelope_ID": "envelope_id", "a_B": "a_b",
		strings.Repeat("X", 70): strings.Repeat("x", 70), "ſpan": "span", "\u212aind": "kind", "Kſ\u212a": "ksk",
		"é_ſ": "é_s", "ŚK": "Śk", strings.Repeat("ſ", 40): strings.Repeat("s", 40), "\xffS": "\xffs"} {
		if got := string(Key([]byte(in), &buf)); got != want {
			t.Errorf("Key(%q) = %q", in, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Key([]byte("Envelope_ID"), &buf) }); n != 0 {
		t.Errorf("Key allocates %v times", n)
	}
}

// FuzzReadMatchesEncodingJSON: Read finds the members that encoding/json
// assigns to struct fields of the same names, folding keys as it does
// (Unicode simple folding: ſ is s, the Kelvin sign is k), with the later
// duplicate winning and null meaning absent.
func FuzzReadMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"sk":1,"kind":"a","a_b":[1]}`, `{"ſ\u212a":1,"\u212aind":2,"A_B":3,"a_b":null}`, `{"SK":1,"sK":2,"ſk":null}`,
		`{"KIND":{"x":1},"kinds":2,"ṡk":3}`, "{\"\xc5\xbfk\":1}", `{"sk":1,"sk":2}`, `[]`, `{"sk":`,
	} {
		f.Add([]byte(s))
	}
	fields := []Field{{Name: "sk"}, {Name: "kind"}, {Name: "a_b"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want struct {
			SK   json.RawMessage `json:"sk"`
			Kind json.RawMessage `json:"kind"`
			AB   json.RawMessage `json:"a_b"`
		}
		var got [3][]byte
		err := Read(data, fields, got[:])
		if json.Unmarshal(data, &want) != nil {
			return // not an object, or invalid: FuzzMembersMatchesEncodingJSON covers those
		}
		if err != nil {
			t.Fatalf("%q: Read: %v", data, err)
		}
		for i, w := range []json.RawMessage{want.SK, want.Kind, want.AB} {
			if string(w) == "null" {
				w = nil
			}
			if !bytes.Equal(got[i], w) {
				t.Errorf("%q: %s = %q, encoding/json %q", data, fields[i].Name, got[i], w)
			}
		}
	})
}

func TestIntAndFloat(t *testing.T) {
	if n, err := Int([]byte("-42")); err != nil || n != -42 {
		t.Errorf("Int: %d %v", n, err)
	}
	for _, bad := range []string{"1.5", "1e2", "99999999999999999999"} {
		if _, err := Int([]byte(bad)); err == nil {
			t.Errorf("Int(%s) accepted", bad)
		}
	}
	if f, err := Float([]byte("-1.5e2")); err != nil || f != -150 {
		t.Errorf("Float: %v %v", f, err)
	}
	if _, err := Float([]byte("1e400")); err == nil {
		t.Error("Float accepted an overflow")
	}
}

func TestRead(t *testing.T) {
	fields := []Field{{Name: "a", Kind: String}, {Name: "b", Kind: Number}, {Name: "c"}}
	var v [3][]byte
	err := Read([]byte(`{"A":"x","b":1,"c":[1],"d":2,"a":"y","c":null}`), fields, v[:])
	if err != nil || string(v[0]) != `"y"` || string(v[1]) != "1" || v[2] != nil {
		t.Fatalf("Read: %q, %v", v, err)
	}
	v = [3][]byte{}
	err = Read([]byte(`{"b":"one","a":2,"a":"ok"}`), fields, v[:])
	var ke *KindError
	if !errors.As(err, &ke) || ke.Name != "b" || ke.Want != Number || ke.Got != String {
		t.Fatalf("first kind error: %v", err)
	}
	if err := Read([]byte(`[1]`), fields, v[:]); !errors.Is(err, ErrNotObject) {
		t.Fatalf("array: %v", err)
	}
	data := []byte(`{"a":"x","b":1,"c":{"d":[true,false,null]}}`)
	if n := testing.AllocsPerRun(100, func() { _ = Read(data, fields, v[:]) }); n != 0 {
		t.Errorf("Read allocates %v times", n)
	}
}

// TestPlainWord: the eight-byte test agrees with the byte table for words
// made of every byte in every position among plain filler.
func TestPlainWord(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			want := true
			for _, b := range w {
				want = want && plainByte[b]
			}
			if got := plainWord(binary.LittleEndian.Uint64(w)); got != want {
				t.Fatalf("plainWord(%q) = %v, want %v", w, got, want)
			}
		}
	}
}
