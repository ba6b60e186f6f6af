package node

import (
	"sort"
	"sync"
	"time"
)

// Clock is a Node's time source: the timestamps it sends, its uptime, and
// the timers of its heartbeats and retries. [SystemClock] is the default;
// [ManualClock] moves only when told to, for tests and simulations.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a [Clock].
type Timer interface {
	// C returns the channel the timer sends on when it fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped
	// it (false if it already fired or was stopped).
	Stop() bool
}

// SystemClock is the [Clock] of package time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a [time.Timer] as a [Timer].
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

// C returns the timer's channel.
func (t sysTimer) C() <-chan time.Time { return t.t.C }

// Stop stops the timer.
func (t sysTimer) Stop() bool { return t.t.Stop() }

// ManualClock is a [Clock] whose time moves only by [ManualClock.Advance]
// or [ManualClock.Set], which fire the timers that fall due. Hand its Now
// method to the runtime (registrar.WithClock) and the sweeper so that the
// whole workflow runs on one simulated time. It is safe for concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]struct{} // armed
}

// NewManualClock returns a ManualClock that reads t until it is moved.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t, timers: map[*manualTimer]struct{}{}}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock reaches Now()+d; at
// once if d is not positive.
func (c *ManualClock) NewTimer(d time.Duration) Timer {
	t := &manualTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.at = c.now.Add(d)
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers[t] = struct{}{}
	return t
}

// Advance moves the clock forward by d (a negative d is ignored) and fires,
// in the order of their times, the timers that fell due.
func (c *ManualClock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	c.setLocked(c.now.Add(d))
	c.mu.Unlock()
}

// Set moves the clock to t, if t is later than its time, and fires the
// timers that fell due, as Advance does.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.setLocked(t)
	}
	c.mu.Unlock()
}

func (c *ManualClock) setLocked(t time.Time) {
	c.now = t
	var due []*manualTimer
	for tm := range c.timers {
		if !tm.at.After(t) {
			due = append(due, tm)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, tm := range due {
		delete(c.timers, tm)
		tm.ch <- tm.at // capacity 1, and each timer fires once
	}
}

// Timers returns how many timers are armed: created, not yet fired and not
// stopped. A simulation waits on it to know that every node is idle again
// (a running Node arms one timer whenever it waits, see [Node.Run]).
func (c *ManualClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Next returns the time of the earliest armed timer, and false when none is
// armed.
func (c *ManualClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	found := false
	for tm := range c.timers {
		if !found || tm.at.Before(next) {
			next, found = tm.at, true
		}
	}
	return next, found
}

type manualTimer struct {
	c  *ManualClock
	at time.Time
	ch chan time.Time
}

// C returns the timer's channel.
func (t *manualTimer) C() <-chan time.Time { return t.ch }

// Stop disarms the timer if it has not fired.
func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if _, ok := t.c.timers[t]; !ok {
		return false
	}
	delete(t.c.timers, t)
	return true
}
