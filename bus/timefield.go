package bus

import (
	"fmt"
	"time"
)

// MinTime is the earliest time a decoder accepts: 2000-01-01T00:00:00Z. No
// ONEX service sent a message before it, so an earlier timestamp is a
// default in disguise (Go's zero time, the Unix epoch, Python's
// datetime.min), never a real event. Treat it as a constant.
var MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxTime is the latest time a decoder accepts: 9000-01-01T00:00:00Z. The
// last time encoding/json, Python's datetime and RFC 3339's four-digit
// year can all write is 9999-12-31T23:59:59.999999Z. MaxTime is far enough
// below it that an accepted time plus any time.Duration (at most about 292
// years) still marshals, so a deadline computed from decoded input can
// never make a later encode fail. Treat it as a constant.
var MaxTime = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseTimeField parses an RFC 3339 date-time and reports a failure as a
// [*DecodeError] naming field. It accepts exactly the grammar of RFC 3339
// section 5.6: a four-digit year and two-digit month, day, hour, minute and
// second; 'T' or 't' between date and time; an optional fraction of one or
// more digits; and 'Z', 'z' or a ±hh:mm offset ("-00:00" is UTC). Python's
// datetime.isoformat ("2026-01-02T03:04:05.123456+00:00") and pydantic's
// "…Z" form are both RFC 3339. A time without a zone is an error rather
// than a guess: the Python services' naive datetimes are ambiguous. So is a
// leap second (second 60), which time.Time cannot hold.
//
// The result is in UTC, truncated to microseconds (the precision of
// PostgreSQL and of Python's datetime, so every store compares times alike),
// and must lie in [MinTime, MaxTime]; a time outside is an error.
func ParseTimeField(field, s string) (time.Time, error) { return parseTimeField(field, s) }

// ParseTimeBytes is [ParseTimeField] for the bytes of the time: it parses
// them without copying them to a string, and does not allocate unless it
// reports an error.
func ParseTimeBytes(field string, b []byte) (time.Time, error) { return parseTimeField(field, b) }

func parseTimeField[T string | []byte](field string, s T) (time.Time, error) {
	t, problem := parseRFC3339(s)
	if problem != "" {
		return time.Time{}, &DecodeError{Field: field, Reason: fmt.Sprintf("%q %s", truncate(string(s)), problem)}
	}
	t = t.Truncate(time.Microsecond)
	if t.Before(MinTime) || t.After(MaxTime) {
		return time.Time{}, &DecodeError{Field: field, Reason: fmt.Sprintf("%q is outside %s to %s",
			truncate(string(s)), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))}
	}
	return t, nil
}

// parseRFC3339 parses s as an RFC 3339 date-time and returns it in UTC, or
// says what is wrong with s ("has no time zone", "is not an RFC 3339 time:
// ...").
func parseRFC3339[T string | []byte](s T) (time.Time, string) {
	p := timeText[T]{s: s}
	year := p.number(4, "year", 0, 9999)
	p.separator("-", "after the year")
	month := p.number(2, "month", 1, 12)
	p.separator("-", "after the month")
	day := p.number(2, "day", 1, 31)
	if p.problem == "" && day > daysIn(time.Month(month), year) {
		p.problem = fmt.Sprintf("day %02d does not exist in %04d-%02d", day, year, month)
	}
	p.separator("Tt", "between date and time")
	hour := p.number(2, "hour", 0, 23)
	p.separator(":", "after the hour")
	minute := p.number(2, "minute", 0, 59)
	p.separator(":", "after the minute")
	second := p.number(2, "second", 0, 60)
	if p.problem == "" && second == 60 {
		p.problem = "leap second 60 is not supported"
	}
	nsec := p.fraction()
	if p.problem == "" && p.i == len(s) {
		return time.Time{}, "has no time zone"
	}
	offset := p.offset()
	if p.problem == "" && p.i != len(s) {
		p.problem = "unexpected text after the time zone"
	}
	if p.problem != "" {
		return time.Time{}, "is not an RFC 3339 time: " + p.problem
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	return t.Add(-offset), ""
}

// timeText reads an RFC 3339 date-time from left to right; the first
// problem stops it.
type timeText[T string | []byte] struct {
	s       T
	i       int
	problem string
}

// number reads exactly n digits as the field what, which must lie in
// [lo, hi].
func (p *timeText[T]) number(n int, what string, lo, hi int) int {
	if p.problem != "" {
		return 0
	}
	v := 0
	for k := 0; k < n; k++ {
		if p.i+k >= len(p.s) || !isDigit(p.s[p.i+k]) {
			p.problem = fmt.Sprintf("want %d digits of %s at byte %d", n, what, p.i)
			return 0
		}
		v = v*10 + int(p.s[p.i+k]-'0')
	}
	if v < lo || v > hi {
		p.problem = fmt.Sprintf("%s %0*d is outside %0*d..%0*d", what, n, v, n, lo, n, hi)
		return 0
	}
	p.i += n
	return v
}

// separator reads one of the bytes in one.
func (p *timeText[T]) separator(one, where string) {
	if p.problem != "" {
		return
	}
	for k := 0; k < len(one); k++ {
		if p.i < len(p.s) && p.s[p.i] == one[k] {
			p.i++
			return
		}
	}
	p.problem = fmt.Sprintf("want %q %s at byte %d", one[:1], where, p.i)
}

// fraction reads an optional "." and one or more digits, and returns the
// first nine as nanoseconds.
func (p *timeText[T]) fraction() int {
	if p.problem != "" || p.i >= len(p.s) || p.s[p.i] != '.' {
		return 0
	}
	p.i++
	start, nsec := p.i, 0
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		if p.i-start < 9 {
			nsec = nsec*10 + int(p.s[p.i]-'0')
		}
		p.i++
	}
	if p.i == start {
		p.problem = fmt.Sprintf("want digits after '.' at byte %d", start)
		return 0
	}
	for k := p.i - start; k < 9; k++ {
		nsec *= 10
	}
	return nsec
}

// offset reads "Z", "z" or ±hh:mm and returns how far local time is ahead
// of UTC.
func (p *timeText[T]) offset() time.Duration {
	if p.problem != "" {
		return 0
	}
	if p.i < len(p.s) && (p.s[p.i] == 'Z' || p.s[p.i] == 'z') {
		p.i++
		return 0
	}
	if p.i >= len(p.s) || (p.s[p.i] != '+' && p.s[p.i] != '-') {
		p.problem = fmt.Sprintf("want 'Z' or a ±hh:mm offset at byte %d", p.i)
		return 0
	}
	sign := time.Duration(1)
	if p.s[p.i] == '-' {
		sign = -1
	}
	p.i++
	hours := p.number(2, "offset hour", 0, 23)
	p.separator(":", "in the offset")
	minutes := p.number(2, "offset minute", 0, 59)
	return sign * (time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// daysIn returns the number of days of month in year (proleptic Gregorian).
func daysIn(month time.Month, year int) int {
	switch month {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
