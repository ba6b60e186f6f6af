package bus_test

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/registrar-go/registrar/bus"
)

func TestParseVersion(t *testing.T) {
	maxInt := strconv.Itoa(math.MaxInt)
	for _, tt := range []struct {
		in   string
		want bus.Version
		str  string // String() of the result; in if empty
	}{
		{in: "1", want: bus.Version{Major: 1}, str: "1.0.0"},
		{in: "1.2", want: bus.Version{Major: 1, Minor: 2}, str: "1.2.0"},
		{in: "0.0.0", want: bus.Version{}},
		{in: "10.20.30", want: bus.Version{Major: 10, Minor: 20, Patch: 30}},
		{in: "1.2.3-rc.1", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1"}},
		{in: "1.2.3+build.5", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Build: "build.5"}},
		{in: "1.2.3-rc.1+build.5", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1", Build: "build.5"}},
		// From semver.org's list of valid versions.
		{in: "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
			want: bus.Version{Major: 1, Prerelease: "alpha-a.b-c-somethinglong", Build: "build.1-aef.1-its-okay"}},
		{in: "1.2.3----RC-SNAPSHOT.12.9.1--.12+788", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "---RC-SNAPSHOT.12.9.1--.12", Build: "788"}},
		{in: "1.0.0+0.build.1-rc.10000aaa-kk-0.1", want: bus.Version{Major: 1, Build: "0.build.1-rc.10000aaa-kk-0.1"}},
		{in: "1.0.0-0A.is.legal", want: bus.Version{Major: 1, Prerelease: "0A.is.legal"}},
		{in: "1.2.3-0", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "0"}},
		{in: "1.2.3-x-y-z.--", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "x-y-z.--"}},
		{in: "1.2.3+007", want: bus.Version{Major: 1, Minor: 2, Patch: 3, Build: "007"}}, // build identifiers may have leading zeros
		{in: "1.0.0-99999999999999999999999", want: bus.Version{Major: 1, Prerelease: "99999999999999999999999"}},
		{in: maxInt + "." + maxInt + "." + maxInt, want: bus.Version{Major: math.MaxInt, Minor: math.MaxInt, Patch: math.MaxInt}},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bus.ParseVersion(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersion(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestParseVersionRefuses(t *testing.T) {
	long := "1.2.3-" + strings.Repeat("a", 10000)
	for _, tt := range []struct {
		in, reason string
	}{
		{"", "version is empty"},
		{"1.2.3-", `version "1.2.3-": the prerelease after '-' is empty`},
		{"1.2.3+", `version "1.2.3+": the build metadata after '+' is empty`},
		{"1.2.3-+b", "the prerelease after '-' is empty"},
		{"1.2.3-rc+", "the build metadata after '+' is empty"},
		{"01.2.3", `is not major.minor.patch: major "01" has a leading zero`},
		{"1.02.3", `minor "02" has a leading zero`},
		{"1.2.00", `patch "00" has a leading zero`},
		{"1.2.3-rc.01", `prerelease identifier "01" is numeric with a leading zero`},
		{"1.2.3-00", `prerelease identifier "00" is numeric with a leading zero`},
		{"1.2.3-rc..1", "prerelease identifier 2 is empty"},
		{"1.2.3-.rc", "prerelease identifier 1 is empty"},
		{"1.2.3-rc.", "prerelease identifier 2 is empty"},
		{"1.2.3+build..5", "build metadata identifier 2 is empty"},
		{"1.2.3+b+c", `build metadata identifier "b+c" has '+'`},
		{"1.2.3-rc_1", `prerelease identifier "rc_1" has '_'; identifiers are made of [0-9A-Za-z-]`},
		{"1.2.3-rc 1", `has ' '`},
		{"1.2.3-rç", `prerelease identifier "rç" has 'ç'`},
		{"1.2.3-βeta", `has 'β'`},
		{"1.2.3+😀", `has '😀'`},
		{"1.2.3-r\xffc", "the byte 0xff, which is not UTF-8"},
		{"１.2.3", `major "１" is not a number`},
		{"1.2.٣", `patch "٣" is not a number`},
		{"v1.2.3", `major "v1" is not a number`},
		{" 1.2.3", `major " 1" is not a number`},
		{"1.2.3 ", `patch "3 " is not a number`},
		{"1.2.3\n", `patch "3\n" is not a number`},
		{"1.x", `minor "x" is not a number`},
		{"99999999999999999999.0.0", `major "99999999999999999999" is larger than ` + strconv.Itoa(math.MaxInt)},
		{"1.99999999999999999999.0", `minor "99999999999999999999" is larger than`},
		{"1.0." + strconv.Itoa(math.MaxInt) + "0", "is larger than"},
		{long, "is 10006 bytes long, more than 256"},
		{"1.2.3+" + strings.Repeat("b", 251), "bytes long, more than 256"},
		{"1.2-rc.1", "a prerelease or build metadata needs all of major.minor.patch"},
		{"1+b", "needs all of major.minor.patch"},
		{"1.2.3.4", "is not major.minor.patch: it has more than three numbers"},
		{"1..3", "minor is empty"},
		{"1.", "minor is empty"},
		{".", "major is empty"},
		{"+1.2.3", "major is empty"},
		{"-1.0.0", "major is empty"},
		{"1.-2", "minor is empty"},
		{"a.b.c", `major "a" is not a number`},
	} {
		t.Run(tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			v, err := bus.ParseVersion(tt.in)
			if err == nil {
				t.Fatalf("ParseVersion(%q) = %#v, want an error", tt.in, v)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q, want it to contain %q", err, tt.reason)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes long: %v", len(err.Error()), err)
			}
		})
	}
}

// TestVersionJSON: each form reads as the version, and the version writes
// as the object, byte for byte, and reads back as itself.
func TestVersionJSON(t *testing.T) {
	for _, tt := range []struct {
		name  string
		v     bus.Version
		write string
		read  []string // other JSON forms of v
	}{
		{
			name: "release", v: bus.Version{Major: 1, Minor: 2, Patch: 3},
			write: `{"major":1,"minor":2,"patch":3}`,
			read: []string{`"1.2.3"`, `{"major":1,"minor":2,"patch":3,"prerelease":null,"build":null}`,
				`{"major":1,"minor":2,"patch":3,"prerelease":[],"build":""}`},
		},
		{
			name: "prerelease", v: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1"},
			write: `{"major":1,"minor":2,"patch":3,"prerelease":["rc",1]}`,
			read: []string{`"1.2.3-rc.1"`, `{"major":1,"minor":2,"patch":3,"prerelease":["rc","1"]}`,
				`{"major":1,"minor":2,"patch":3,"prerelease":"rc.1"}`, `{"Major":1,"Minor":2,"Patch":3,"PreRelease":["rc",1],"build":null}`,
				`{"major":1,"minor":2,"patch":3,"prerelease":["x"],"prerelease":["rc",1]}`},
		},
		{
			name: "build", v: bus.Version{Major: 1, Minor: 2, Patch: 3, Build: "build.5"},
			write: `{"major":1,"minor":2,"patch":3,"build":["build","5"]}`,
			read:  []string{`"1.2.3+build.5"`, `{"major":1,"minor":2,"patch":3,"build":"build.5"}`, `{"major":1,"minor":2,"patch":3,"build":["build",5]}`},
		},
		{
			name: "both", v: bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1", Build: "build.5"},
			write: `{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]}`,
			read: []string{`"1.2.3-rc.1+build.5"`, ` { "patch" : 3 , "build" : [ "build" , "5" ] , "minor" : 2 , "major" : 1 , "prerelease" : "rc.1" } `,
				// As ModelSemVer.model_dump_json writes it.
				`{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]}`},
		},
		{
			name: "numeric and hyphenated identifiers", v: bus.Version{Major: 2, Prerelease: "0.x-y.99999999999999999999", Build: "007.a-b"},
			write: `{"major":2,"minor":0,"patch":0,"prerelease":[0,"x-y",99999999999999999999],"build":["007","a-b"]}`,
			read:  []string{`"2.0.0-0.x-y.99999999999999999999+007.a-b"`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil || string(got) != tt.write {
				t.Fatalf("Marshal = %s, %v; want %s", got, err, tt.write)
			}
			for _, in := range append([]string{tt.write}, tt.read...) {
				var v bus.Version
				if err := json.Unmarshal([]byte(in), &v); err != nil || v != tt.v {
					t.Errorf("Unmarshal(%s) = %#v, %v; want %#v", in, v, err, tt.v)
				}
			}
		})
	}
}

func TestVersionUnmarshalJSONRefuses(t *testing.T) {
	const core = `"major":1,"minor":2,"patch":3`
	long := strings.Repeat("a", 10000)
	for _, tt := range []struct {
		name, in, reason string
	}{
		{"string with empty prerelease", `"1.2.3-"`, "the prerelease after '-' is empty"},
		{"string with leading zero", `"01.2.3"`, `major "01" has a leading zero`},
		{"string escaping to unicode", `"1.2.3-\u00e9"`, `has 'é'`},
		{"10k-character prerelease string", `"1.2.3-` + long + `"`, "bytes long, more than 256"},
		{"numeric identifier with a leading zero", `{` + core + `,"prerelease":["rc","01"]}`, `identifier "01" is numeric with a leading zero`},
		{"dotted string identifier", `{` + core + `,"prerelease":["rc.1"]}`, `identifier "rc.1" has '.'`},
		{"empty identifier", `{` + core + `,"prerelease":["rc",""]}`, `"prerelease" identifier 2 is empty`},
		{"negative identifier", `{` + core + `,"prerelease":[-1]}`, "identifier 1 is not a whole number ≥ 0: -1"},
		{"fractional identifier", `{` + core + `,"prerelease":["a",1.5]}`, "identifier 2 is not a whole number ≥ 0: 1.5"},
		{"exponent identifier", `{` + core + `,"build":[1e3]}`, "not a whole number"},
		{"bool identifier", `{` + core + `,"prerelease":[true]}`, "identifier 1 is JSON bool, not a string or a number"},
		{"nested array", `{` + core + `,"prerelease":[["a"]]}`, "identifier 1 is JSON array"},
		{"prerelease of the wrong type", `{` + core + `,"prerelease":true}`, `"prerelease" is JSON bool, not an array of identifiers or a string`},
		{"build object", `{` + core + `,"build":{"a":1}}`, `"build" is JSON object`},
		{"prerelease string with an empty identifier", `{` + core + `,"prerelease":"rc..1"}`, "prerelease identifier 2 is empty"},
		{"prerelease string with unicode", `{` + core + `,"prerelease":"bêta"}`, `has 'ê'`},
		{"build identifier with a space", `{` + core + `,"build":["a b"]}`, `identifier "a b" has ' '`},
		{"10k-character identifier", `{` + core + `,"prerelease":["` + long + `"]}`, "makes the version longer than 256 bytes"},
		{"10k identifiers", `{` + core + `,"prerelease":[` + strings.Repeat(`"a",`, 10000) + `"a"]}`, "makes the version longer than 256 bytes"},
		{"10k-character prerelease string", `{` + core + `,"prerelease":"` + long + `"}`, "is 10000 bytes long"},
		{"prerelease and build together too long", `{` + core + `,"prerelease":"` + long[:200] + `","build":"` + long[:100] + `"}`, "more than 256"},
		{"major overflowing int", `{"major":99999999999999999999}`, `"major" does not fit an int: 99999999999999999999`},
		{"fractional minor", `{"major":1,"minor":1.5}`, `"minor" is not a whole number: 1.5`},
		{"patch as a string", `{"major":1,"patch":"3"}`, `"patch" is not a number but JSON string`},
		{"negative patch", `{"major":1,"patch":-1}`, "negative"},
		{"no major", `{"minor":1,"prerelease":["rc"]}`, `no "major"`},
		{"array", `[1,2,3]`, "want a version string"},
		{"number", `1`, "want a version string"},
		{"invalid JSON", `{"major":1,}`, "want a version string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var v bus.Version
			err := v.UnmarshalJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("UnmarshalJSON(%.80s) = %#v, want an error", tt.in, v)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q, want it to contain %q", err, tt.reason)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes long: %v", len(err.Error()), err)
			}
		})
	}
}

func TestVersionValidate(t *testing.T) {
	for _, tt := range []struct {
		v      bus.Version
		reason string // "" for valid
	}{
		{bus.Version{}, ""},
		{bus.Version{Major: 1, Prerelease: "rc.1", Build: "b.007"}, ""},
		{bus.Version{Major: -1}, "major is negative"},
		{bus.Version{Major: 1, Patch: -3, Prerelease: "rc"}, "patch is negative"},
		{bus.Version{Major: 1, Prerelease: "a..b"}, "prerelease identifier 2 is empty"},
		{bus.Version{Major: 1, Prerelease: "01"}, "leading zero"},
		{bus.Version{Major: 1, Prerelease: `a"b`}, `has '"'`},
		{bus.Version{Major: 1, Build: "-rc"}, ""},
		{bus.Version{Major: 1, Build: "+b"}, `build metadata identifier "+b" has '+'`},
		{bus.Version{Major: 1, Prerelease: strings.Repeat("a", 251)}, "257 bytes long as a string, more than 256"},
	} {
		err := tt.v.Validate()
		switch {
		case tt.reason == "" && err != nil:
			t.Errorf("%#v: %v", tt.v, err)
		case tt.reason != "" && (err == nil || !strings.Contains(err.Error(), tt.reason)):
			t.Errorf("%#v: error %v, want it to contain %q", tt.v, err, tt.reason)
		}
	}
}

func TestVersionMarshalJSONRefusesInvalid(t *testing.T) {
	for _, v := range []bus.Version{
		{Major: 1, Prerelease: "a..b"}, {Major: 1, Prerelease: `"}`}, {Major: 1, Build: "a b"}, {Major: -1, Prerelease: "rc"},
	} {
		if b, err := v.MarshalJSON(); err == nil {
			t.Errorf("MarshalJSON(%#v) = %s, want an error", v, b)
		}
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[bus.Version]string{
		{}:                                       "0.0.0",
		{Major: 1, Minor: 2, Patch: 3}:           "1.2.3",
		{Major: 1, Prerelease: "rc.1"}:           "1.0.0-rc.1",
		{Major: 1, Build: "b.5"}:                 "1.0.0+b.5",
		{Major: 12, Prerelease: "a", Build: "b"}: "12.0.0-a+b",
	} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
	if (bus.Version{Build: "b"}).IsZero() || (bus.Version{Prerelease: "a"}).IsZero() || !(bus.Version{}).IsZero() {
		t.Error("IsZero must be true only for the zero Version")
	}
}

func TestVersionCompare(t *testing.T) {
	// In increasing precedence; each line is higher than the one before.
	ordered := []string{
		"0.0.0-0",
		"0.0.0",
		"0.0.1",
		"0.1.0",
		"1.0.0-0",
		"1.0.0-1",
		"1.0.0-2",
		"1.0.0-10",
		"1.0.0-99999999999999999999", // larger than any int
		"1.0.0-100000000000000000000",
		"1.0.0-A", // numeric identifiers are lower than the others; ASCII order
		"1.0.0-Z",
		"1.0.0-a",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0",
		"1.0.1",
		"1.10.0",
		"2.0.0-rc.1",
		"2.0.0",
		"10.0.0",
	}
	vs := make([]bus.Version, len(ordered))
	for i, s := range ordered {
		v, err := bus.ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			if got, want := vs[i].Compare(vs[j]), cmpInt(i, j); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.0.0+a", "1.0.0+b", 0}, // build metadata is ignored
		{"1.0.0+a", "1.0.0", 0},
		{"1.0.0-rc.1+a", "1.0.0-rc.1+zzz", 0},
		{"1.0.0-rc.1+a", "1.0.0-rc.2", -1},
		{"1.0.0-alpha-1", "1.0.0-alpha", 1}, // "alpha-1" is one identifier, after "alpha"
		{"1.0.0-1a", "1.0.0-2", 1},          // "1a" is not numeric
	} {
		a, _ := bus.ParseVersion(tt.a)
		b, _ := bus.ParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestVersionDecodeAllocs pins the allocations of decoding a version without
// prerelease or build metadata, the form almost every message carries: none.
func TestVersionDecodeAllocs(t *testing.T) {
	for _, in := range []string{`{"major":1,"minor":2,"patch":3}`, `"1.2.3"`} {
		data := []byte(in)
		var v bus.Version
		if n := testing.AllocsPerRun(200, func() { _ = v.UnmarshalJSON(data) }); n != 0 {
			t.Errorf("UnmarshalJSON(%s) allocates %v times", in, n)
		}
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = bus.ParseVersion("1.2.3") }); n != 0 {
		t.Errorf("ParseVersion allocates %v times", n)
	}
}

// semverRegexp is the regular expression semver.org suggests for SemVer
// 2.0.0 strings; FuzzParseVersion holds ParseVersion to it.
var semverRegexp = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// shortRegexp matches the abbreviated forms ParseVersion accepts besides.
var shortRegexp = regexp.MustCompile(`^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$`)

// FuzzParseVersion: ParseVersion accepts exactly the strings semver.org's
// regular expression matches (and the "1" and "1.2" forms), save those
// longer than MaxVersionLen or with numbers that overflow an int; what it
// accepts is valid, prints as what was parsed (the short forms with their
// zeros), survives JSON in both forms, and compares equal to itself.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{
		"1.2.3", "1", "1.2", "1.2.3-rc.1", "1.2.3+build.5", "1.2.3-rc.1+build.5", "1.0.0-alpha-a.b-c+b.1-x",
		"1.2.3-", "1.2.3+", "01.2.3", "1.2.3-01", "1.2.3-a..b", "1.2-rc", "1.2.3-é", "99999999999999999999.0.0",
		"1.2.3+007", "1.2.3-0A", "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := bus.ParseVersion(s)
		matches := semverRegexp.MatchString(s) || shortRegexp.MatchString(s)
		if err != nil {
			if matches && len(s) <= bus.MaxVersionLen && !strings.Contains(err.Error(), "is larger than") {
				t.Fatalf("ParseVersion(%q) refused a valid version: %v", s, err)
			}
			return
		}
		if !matches || len(s) > bus.MaxVersionLen {
			t.Fatalf("ParseVersion(%q) = %#v, accepted an invalid version", s, v)
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("ParseVersion(%q) = %#v, which Validate refuses: %v", s, v, err)
		}
		if semverRegexp.MatchString(s) && v.String() != s {
			t.Fatalf("ParseVersion(%q).String() = %q", s, v.String())
		}
		if again, err := bus.ParseVersion(v.String()); err != nil || again != v {
			t.Fatalf("ParseVersion(%q) = %#v, %v; want %#v", v.String(), again, err, v)
		}
		for _, form := range []func(bus.Version) ([]byte, error){
			bus.Version.MarshalJSON, func(v bus.Version) ([]byte, error) { return json.Marshal(v.String()) },
		} {
			b, err := form(v)
			if err != nil {
				t.Fatalf("%#v: %v", v, err)
			}
			var back bus.Version
			if err := back.UnmarshalJSON(b); err != nil || back != v {
				t.Fatalf("UnmarshalJSON(%s) = %#v, %v; want %#v", b, back, err, v)
			}
		}
		if c := v.Compare(v); c != 0 {
			t.Fatalf("%s.Compare(itself) = %d", s, c)
		}
	})
}

// FuzzVersionUnmarshalJSON: UnmarshalJSON never panics, and a version it
// accepts is valid, marshals, and reads back as itself; its string form
// parses as itself too.
func FuzzVersionUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`{"major":1,"minor":2,"patch":3}`, `"1.2.3-rc.1+build.5"`,
		`{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]}`,
		`{"major":1,"prerelease":"rc.1","build":null}`, `{"major":1,"prerelease":["rc.1"]}`, `{"major":1,"prerelease":[-1]}`,
		`{"major":1,"prerelease":["a","01"]}`, `{"major":1,"build":["007"]}`, `{"major":1,"prerelease":[99999999999999999999]}`,
		`{"MAJOR":1,"prerelease":[],"build":""}`, `{"major":1e2}`, `"1.2.3-"`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v bus.Version
		if err := v.UnmarshalJSON(data); err != nil {
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("UnmarshalJSON(%q) = %#v, which Validate refuses: %v", data, v, err)
		}
		b, err := v.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON(%#v): %v", v, err)
		}
		var back bus.Version
		if err := back.UnmarshalJSON(b); err != nil || back != v {
			t.Fatalf("UnmarshalJSON(%s) = %#v, %v; want %#v", b, back, err, v)
		}
		if p, err := bus.ParseVersion(v.String()); err != nil || p != v {
			t.Fatalf("ParseVersion(%q) = %#v, %v; want %#v", v.String(), p, err, v)
		}
	})
}
