package chaos

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// What an [Action] does.
const (
	// ActPublishFaults switches the members' publish faults on or off.
	ActPublishFaults = "publish-faults"
	// ActStoreOutage switches the store's outage on or off: injected
	// retryable errors for the memory store, cuts of the TCP proxy for
	// Postgres.
	ActStoreOutage = "store-outage"
	// ActRegistryOutage switches the registry's injected errors on or off.
	ActRegistryOutage = "registry-outage"
	// ActMember stops a member (Begin) or starts a fresh one in its slot
	// (End).
	ActMember = "member"
)

// ActKinds lists every kind of action.
var ActKinds = []string{ActPublishFaults, ActStoreOutage, ActRegistryOutage, ActMember}

// Action is one step of a [Schedule].
type Action struct {
	// At is when it happens, from the start of the run.
	At time.Duration
	// Kind is one of the Act constants.
	Kind string
	// Begin starts the fault; false ends it.
	Begin bool
	// Slot is the member an ActMember action stops or restarts.
	Slot int
}

func (a Action) String() string {
	verb := "end"
	if a.Begin {
		verb = "begin"
	}
	if a.Kind == ActMember {
		verb = "restart"
		if a.Begin {
			verb = "stop"
		}
		return fmt.Sprintf("%v %s member %d", a.At.Round(time.Millisecond), verb, a.Slot)
	}
	return fmt.Sprintf("%v %s %s", a.At.Round(time.Millisecond), verb, a.Kind)
}

// Schedule is the timeline of a run's faults, ordered by time. Every fault
// it begins ends by End, and every member it stops is restarted by End:
// after End the system is whole again.
type Schedule struct {
	Actions []Action
	End     time.Duration
}

// ScheduleConfig configures [NewSchedule].
type ScheduleConfig struct {
	// Members is the size of the group.
	Members int
	// Window is how long the faults last.
	Window time.Duration
	// Kinds names the kinds of fault scheduled; nil means [ActKinds], an
	// empty list none.
	Kinds []string
	// MemberStops is how many member stops to schedule; default 5.
	MemberStops int
}

// NewSchedule returns the faults of seed: for each outage kind, bursts of
// 3 % to 12 % of the window with pauses of 5 % to 20 % between them; and
// cfg.MemberStops stops of a random member for 5 % to 20 % of the window,
// never more than Members-1 at once.
func NewSchedule(seed uint64, cfg ScheduleConfig) *Schedule {
	kinds, window := cfg.Kinds, cfg.Window
	if kinds == nil {
		kinds = ActKinds
	}
	if cfg.MemberStops == 0 {
		cfg.MemberStops = 5
	}
	rng := rand.New(rand.NewPCG(seed, 0x7363686564756c65)) // "schedule"
	s := &Schedule{End: window}
	frac := func(lo, hi int) time.Duration { // a random part of the window, in per mille
		return window * time.Duration(lo+rng.IntN(hi-lo)) / 1000
	}
	for _, kind := range []string{ActPublishFaults, ActStoreOutage, ActRegistryOutage} {
		if !slices.Contains(kinds, kind) {
			continue
		}
		for t := frac(0, 200); ; {
			d := frac(30, 120)
			if t+d >= window {
				break
			}
			s.Actions = append(s.Actions, Action{At: t, Kind: kind, Begin: true}, Action{At: t + d, Kind: kind})
			t += d + frac(50, 200)
		}
	}
	type stop struct {
		slot     int
		from, to time.Duration
	}
	var stops []stop
	for tries := 0; slices.Contains(kinds, ActMember) && len(stops) < cfg.MemberStops && tries < 100*cfg.MemberStops; tries++ {
		d := frac(50, 200)
		st := stop{slot: rng.IntN(cfg.Members), from: frac(0, 1000-200)}
		st.to = st.from + d
		down, busy := 0, false
		for _, k := range stops {
			if k.from < st.to && st.from < k.to {
				down++
			}
			// A member restarts before it can stop again.
			busy = busy || k.slot == st.slot && k.from <= st.to && st.from <= k.to
		}
		if busy || down >= cfg.Members-1 {
			continue
		}
		stops = append(stops, st)
		s.Actions = append(s.Actions, Action{At: st.from, Kind: ActMember, Begin: true, Slot: st.slot},
			Action{At: st.to, Kind: ActMember, Slot: st.slot})
	}
	slices.SortStableFunc(s.Actions, func(a, b Action) int { return cmp.Compare(a.At, b.At) })
	return s
}

// Count returns how often a fault of kind begins.
func (s *Schedule) Count(kind string) int {
	n := 0
	for _, a := range s.Actions {
		if a.Kind == kind && a.Begin {
			n++
		}
	}
	return n
}

func (s *Schedule) String() string {
	var b strings.Builder
	for _, a := range s.Actions {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%v faults end", s.End)
	return b.String()
}
