package registrar

import (
	"testing"
	"time"
)

// TestWarnLimiter: a full bucket gives warnBurst records, then one per
// warnRefill, and the first record after a gap says how many were
// suppressed.
func TestWarnLimiter(t *testing.T) {
	var l warnLimiter
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	for i := range warnBurst {
		if ok, s := l.take(now); !ok || s != 0 {
			t.Fatalf("take %d of a full bucket: %v, %d suppressed", i, ok, s)
		}
	}
	for range 3 {
		if ok, _ := l.take(now); ok {
			t.Fatal("an empty bucket gave a record")
		}
	}
	if ok, _ := l.take(now.Add(warnRefill / 2)); ok {
		t.Fatal("half a refill gave a record")
	}
	ok, s := l.take(now.Add(warnRefill))
	if !ok || s != 4 {
		t.Fatalf("after a refill: %v, %d suppressed; want true, 4", ok, s)
	}
	// A long gap refills to the burst, no more.
	later := now.Add(time.Hour)
	n := 0
	for {
		if ok, _ := l.take(later); !ok {
			break
		}
		n++
	}
	if n != warnBurst {
		t.Fatalf("%d records after an hour, want %d", n, warnBurst)
	}
	// A clock that goes back refills nothing.
	if ok, _ := l.take(now); ok {
		t.Fatal("a clock going back refilled the bucket")
	}
}
