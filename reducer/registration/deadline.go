package registration

import "time"

// latestDeadline is the latest deadline the reducer computes:
// 9999-12-31T23:59:59.999999Z, the last instant that encoding/json
// (time.Time.MarshalJSON), Python's datetime and PostgreSQL's microsecond
// timestamps can all hold. Decoded times end at bus.MaxTime and durations at
// MaxDuration, so decoded input never gets near it; it bounds a Decide
// called with any other now.
var latestDeadline = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// deadlineAfter returns the deadline d after from, in UTC: from + d, or
// latestDeadline if that is later (or overflows), so every deadline the
// reducer writes marshals. d is a duration from the Config, which Validate
// keeps positive.
func deadlineAfter(from time.Time, d time.Duration) time.Time {
	at := from.UTC().Add(d)
	// time.Add saturates at its own extremes rather than wrap; the second
	// test keeps that from mattering.
	if at.After(latestDeadline) || (d > 0 && at.Before(from)) {
		return latestDeadline
	}
	return at
}
