package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/tcpproxy"
)

// ErrInjected is wrapped by every error a fault injector returns.
var ErrInjected = errors.New("chaos: injected fault")

// Outage is a fault that the schedule switches on and off. Begin and End
// are called from one goroutine, in turn, starting with Begin.
type Outage interface {
	// Begin starts the outage.
	Begin()
	// End stops it; once End returned, the system works again.
	End() error
	// Count says how many faults the outage injected so far.
	Count() int64
}

// Flaky is an [Outage] that, while on, fails a fraction of the calls of its
// hook with a retryable error ([intent.Retryable] of [ErrInjected]). Its
// Hook has the signature of the Fault hooks of effects/memory's store and
// registry. It is safe for concurrent use.
type Flaky struct {
	name string
	rate float64

	on       atomic.Bool
	injected atomic.Int64
	mu       sync.Mutex
	rng      *rand.Rand
}

// NewFlaky returns a Flaky named name (in its errors) that fails the given
// fraction of calls while on, drawing from a generator seeded with seed.
func NewFlaky(name string, rate float64, seed uint64) *Flaky {
	return &Flaky{name: name, rate: rate, rng: rand.New(rand.NewPCG(seed, 0x666c616b79))}
}

// Begin implements [Outage].
func (f *Flaky) Begin() { f.on.Store(true) }

// End implements [Outage].
func (f *Flaky) End() error { f.on.Store(false); return nil }

// Count implements [Outage].
func (f *Flaky) Count() int64 { return f.injected.Load() }

// Fail reports whether this call fails: true with the outage's rate while
// it is on, and counts it.
func (f *Flaky) Fail() bool {
	if !f.on.Load() {
		return false
	}
	f.mu.Lock()
	fail := f.rng.Float64() < f.rate
	f.mu.Unlock()
	if fail {
		f.injected.Add(1)
	}
	return fail
}

// Hook returns an injected retryable error for the calls that [Flaky.Fail]
// picks, else nil.
func (f *Flaky) Hook(in intent.Intent) error {
	if !f.Fail() {
		return nil
	}
	return intent.Retryable(fmt.Errorf("%w: %s unavailable (%s %s)", ErrInjected, f.name, in.Type, in.Target))
}

// ProxyOutage is an [Outage] that cuts a TCP proxy: Begin closes every
// connection through it and refuses new ones, End listens again.
type ProxyOutage struct {
	Proxy *tcpproxy.Proxy
}

// Begin implements [Outage].
func (p ProxyOutage) Begin() { p.Proxy.Cut() }

// End implements [Outage].
func (p ProxyOutage) End() error { return p.Proxy.Restore() }

// Count implements [Outage]: the number of cuts.
func (p ProxyOutage) Count() int64 { return int64(p.Proxy.Cuts()) }

// Outages is an [Outage] made of several, switched together.
type Outages []Outage

// Begin implements [Outage].
func (o Outages) Begin() {
	for _, x := range o {
		x.Begin()
	}
}

// End implements [Outage].
func (o Outages) End() error {
	var errs []error
	for _, x := range o {
		errs = append(errs, x.End())
	}
	return errors.Join(errs...)
}

// Count implements [Outage].
func (o Outages) Count() int64 {
	var n int64
	for _, x := range o {
		n += x.Count()
	}
	return n
}
