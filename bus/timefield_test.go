package bus_test

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
)

func TestParseTimeFieldAccepts(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, us int) time.Time {
		return time.Date(y, mo, d, h, mi, s, us*1000, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2000-01-01T00:00:00Z", bus.MinTime},
		{"2000-01-01T01:00:00+01:00", bus.MinTime},
		{"9000-01-01T00:00:00Z", bus.MaxTime},
		{"8999-12-31T23:59:59.999999Z", utc(8999, 12, 31, 23, 59, 59, 999999)},
		// Below a microsecond past MaxTime truncates to MaxTime.
		{"9000-01-01T00:00:00.0000009Z", bus.MaxTime},
		// Python's datetime.isoformat, with and without microseconds.
		{"2026-01-02T03:04:05.123456+00:00", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02T03:04:05+00:00", utc(2026, 1, 2, 3, 4, 5, 0)},
		// pydantic's "Z".
		{"2026-01-02T03:04:05.123456Z", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02t03:04:05z", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-02T03:04:05-00:00", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-02T08:34:05+05:30", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-01T23:04:05-04:00", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-02T03:04:05+23:59", utc(2026, 1, 1, 3, 5, 5, 0)},
		{"2024-02-29T00:00:00Z", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"2000-02-29T00:00:00Z", utc(2000, 2, 29, 0, 0, 0, 0)},
		{"2026-01-02T03:04:05.1Z", utc(2026, 1, 2, 3, 4, 5, 100000)},
		{"2026-01-02T03:04:05.12Z", utc(2026, 1, 2, 3, 4, 5, 120000)},
		{"2026-01-02T03:04:05.123Z", utc(2026, 1, 2, 3, 4, 5, 123000)},
		{"2026-01-02T03:04:05.1234Z", utc(2026, 1, 2, 3, 4, 5, 123400)},
		{"2026-01-02T03:04:05.12345Z", utc(2026, 1, 2, 3, 4, 5, 123450)},
		{"2026-01-02T03:04:05.123456Z", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02T03:04:05.1234567Z", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02T03:04:05.12345678Z", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02T03:04:05.123456789Z", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02T03:04:05.1234567891234Z", utc(2026, 1, 2, 3, 4, 5, 123456)},
		{"2026-01-02T03:04:05.000000Z", utc(2026, 1, 2, 3, 4, 5, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bus.ParseTimeField("f", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseTimeField = %v, want %v in UTC", got, tt.want)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("json.Marshal(%v): %v", got, err)
			}
		})
	}
}

func TestParseTimeFieldRejects(t *testing.T) {
	const (
		notRFC3339 = "is not an RFC 3339 time"
		outside    = "is outside 2000-01-01T00:00:00Z to 9000-01-01T00:00:00Z"
	)
	tests := []struct{ in, reason string }{
		{"1999-12-31T23:59:59.999999Z", outside},
		{"1999-12-31T23:59:59.9999999Z", outside},
		{"2000-01-01T00:59:59+01:00", outside},
		{"1970-01-01T00:00:00Z", outside},
		{"0001-01-01T00:00:00Z", outside},
		{"0000-01-01T00:00:00+00:10", outside},
		{"9999-12-31T23:59:59Z", outside},
		{"9000-01-01T00:00:00.000001Z", outside},
		{"8999-12-31T23:30:00-01:00", outside},
		{"2026-01-02T8:00:00Z", "2 digits of hour"},
		{"2026-01-02T03:4:05Z", "2 digits of minute"},
		{"2026-01-02T03:04:5Z", "2 digits of second"},
		{"2026-1-02T03:04:05Z", "2 digits of month"},
		{"2026-01-2T03:04:05Z", "2 digits of day"},
		{"26-01-02T03:04:05Z", notRFC3339},
		{"+12026-01-02T03:04:05Z", "4 digits of year"},
		{"2026-01-02T03:04:05", "has no time zone"},
		{"2026-01-02T03:04:05.123456", "has no time zone"},
		{"2026-01-02", notRFC3339},
		{"2026-01-02 03:04:05Z", `want "T" between date and time`},
		{"2026-01-02T03:04:05.Z", "want digits after '.'"},
		{"2026-01-02T03:04:05,5Z", notRFC3339},
		{"2026-13-02T03:04:05Z", "month 13 is outside 01..12"},
		{"2026-00-02T03:04:05Z", "month 00"},
		{"2026-01-00T03:04:05Z", "day 00"},
		{"2025-02-29T00:00:00Z", "day 29 does not exist in 2025-02"},
		{"2026-04-31T00:00:00Z", "day 31 does not exist"},
		{"2026-01-02T24:00:00Z", "hour 24"},
		{"2026-01-02T23:60:00Z", "minute 60"},
		{"2026-12-31T23:59:60Z", "leap second"},
		{"2026-01-02T03:04:05+24:00", "offset hour 24"},
		{"2026-01-02T03:04:05+05:60", "offset minute 60"},
		{"2026-01-02T03:04:05+0530", notRFC3339},
		{"2026-01-02T03:04:05+05", notRFC3339},
		{"2026-01-02T03:04:05UTC", "want 'Z' or a ±hh:mm offset"},
		{"2026-01-02T03:04:05Z ", "unexpected text after the time zone"},
		{"2026-01-02T03:04:05ZZ", "unexpected text"},
		{"2026-01-02T03:04:05+00:00:00", "unexpected text"},
		{" 2026-01-02T03:04:05Z", notRFC3339},
		{"２０２６-01-02T03:04:05Z", notRFC3339},
		{"", notRFC3339},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bus.ParseTimeField("payload.timestamp", tt.in)
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("ParseTimeField = %v, %v; want a *DecodeError", got, err)
			}
			if de.Field != "payload.timestamp" || !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("error %q, want field payload.timestamp and a reason containing %q", err, tt.reason)
			}
		})
	}
}

// rfc3339Grammar is RFC 3339 section 5.6's date-time, field ranges aside.
var rfc3339Grammar = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

// offsetInRange reports whether a numeric offset that ends s has an hour of
// 00..23 and a minute of 00..59, as RFC 3339 requires and time.Parse does
// not check (it takes "+00:60").
func offsetInRange(s string) bool {
	if c := s[len(s)-1]; c == 'Z' || c == 'z' {
		return true
	}
	off := s[len(s)-5:]
	return off[:2] <= "23" && off[3:] <= "59"
}

// FuzzParseTimeField compares ParseTimeField with time.Parse: it accepts a
// string exactly when the string matches the RFC 3339 grammar with its
// offset in range, time.Parse accepts it (with 'T' and 'Z' in upper case,
// which is all time.Parse takes) and the time lies in [MinTime, MaxTime]
// after truncation to microseconds; then both agree on the instant. What it accepts marshals,
// and so does every deadline computed from it.
func FuzzParseTimeField(f *testing.F) {
	for _, s := range []string{
		"2026-01-02T03:04:05.123456+00:00", "2026-01-02T03:04:05Z", "2026-01-02t03:04:05z", "2000-01-01T00:00:00Z",
		"9000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z", "2026-01-02T8:00:00Z", "2026-02-29T00:00:00Z",
		"2026-01-02T03:04:05.123456789-23:59", "2026-12-31T23:59:60Z", "2026-01-02T03:04:05", "0001-01-01T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := bus.ParseTimeField("f", s)
		var want time.Time
		wantOK := false
		if rfc3339Grammar.MatchString(s) && offsetInRange(s) {
			upper := []byte(s)
			upper[10] = 'T'
			if c := upper[len(upper)-1]; c == 'z' {
				upper[len(upper)-1] = 'Z'
			}
			if w, perr := time.Parse(time.RFC3339Nano, string(upper)); perr == nil {
				want = w.Truncate(time.Microsecond)
				wantOK = !want.Before(bus.MinTime) && !want.After(bus.MaxTime)
			}
		}
		if (err == nil) != wantOK {
			t.Fatalf("ParseTimeField(%q) = %v, %v; time.Parse and the grammar say accepted=%v (%v)", s, got, err, wantOK, want)
		}
		if err != nil {
			var de *bus.DecodeError
			if !errors.As(err, &de) || de.Field != "f" {
				t.Fatalf("error %T %v is not a *DecodeError naming the field", err, err)
			}
			return
		}
		if !got.Equal(want) || got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
			t.Fatalf("ParseTimeField(%q) = %v, want %v in UTC, whole microseconds", s, got, want)
		}
		checkTimeMarshals(t, got)
	})
}

// checkTimeMarshals fails unless t is within [MinTime, MaxTime], marshals,
// and t plus the longest time.Duration still marshals: the promise MaxTime
// makes.
func checkTimeMarshals(t *testing.T, at time.Time) {
	t.Helper()
	if at.Before(bus.MinTime) || at.After(bus.MaxTime) {
		t.Fatalf("accepted %v, outside [%v, %v]", at, bus.MinTime, bus.MaxTime)
	}
	if _, err := json.Marshal(at); err != nil {
		t.Fatalf("json.Marshal(%v): %v", at, err)
	}
	if late := at.Add(math.MaxInt64); late.Before(at) {
		t.Fatalf("%v plus the longest duration wrapped to %v", at, late)
	} else if _, err := json.Marshal(late); err != nil {
		t.Fatalf("json.Marshal(%v) of an accepted time plus the longest duration: %v", late, err)
	}
}
