package registrar

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registrar-go/registrar/health"
	"github.com/registrar-go/registrar/hooks"
)

// Pinger is an optional interface of a [StateStore]: it reports whether the
// store is reachable. [Runtime.Ready] pings a store that implements it
// (effects/postgres.Store and effects/memory.Store do); a store without it
// counts as reachable.
type Pinger interface {
	// Ping returns nil if the store answers, and an error that says why
	// not otherwise, by the time ctx ends. The error is served by the
	// readiness endpoint: it must not carry a secret (a password, a DSN).
	Ping(ctx context.Context) error
}

// Defaults of the readiness and liveness checks; see [WithStuckAfter] and
// [WithHangAfter].
const (
	DefaultStuckAfter = 30 * time.Second
	DefaultHangAfter  = 2 * time.Minute
)

// storePingTimeout bounds the store's ping in [Runtime.Ready].
const storePingTimeout = time.Second

// Names of the checks of [Runtime.Ready] and [Runtime.Live], in the order
// the reports list them.
const (
	CheckRunning    = "running"
	CheckSubscribed = "subscribed"
	CheckPartitions = "partitions"
	CheckStore      = "store"
	CheckRetries    = "retries"
	CheckProgress   = "progress"
)

// WithStuckAfter sets how long a decision (or a batch of them), a relay, or
// the relay task may go on failing and being retried before
// [Runtime.Ready] reports the Runtime not ready (check "retries"). The
// default is [DefaultStuckAfter] or three times the retry backoff's maximum
// ([WithRetryBackoff]), whichever is longer, so that one long backoff does
// not trip it; a negative d turns the check off.
func WithStuckAfter(d time.Duration) Option {
	return optionFunc(func(c *config) { c.stuckAfter = d })
}

// WithHangAfter sets how long the Runtime's handlers may have messages in
// hand without any progress (an attempt started or finished, a retry
// scheduled) before [Runtime.Live] reports it not live (check
// "progress"). The default is [DefaultHangAfter]; a negative d turns the
// check off. Set it well above the longest an effect may take.
func WithHangAfter(d time.Duration) Option {
	return optionFunc(func(c *config) { c.hangAfter = d })
}

// Ready reports whether the Runtime can do its work now; it implements
// [health.ReadinessChecker], so that health.Readyz(rt) serves it. Its checks:
//
//   - running: Run is in progress (not yet returned, not closed);
//   - subscribed: Run's subscription to its consumer group is in progress;
//   - partitions: the bus has assigned this member its partitions. A member
//     that owns none after the assignment (its group has more members than
//     the topics have partitions, or a rebalance is under way) is ready but
//     idle: it passes, with a detail that says so, as it is a healthy
//     standby that takes over partitions when another member leaves;
//   - store: the store answers its [Pinger.Ping] within a second (a store
//     that is not a Pinger passes);
//   - retries: no decision, relay or pass of the relay task has been failing
//     and retried for longer than the threshold of [WithStuckAfter]; the
//     reason names what is retried, for how long and how often (see the
//     WARN logs for the errors themselves).
//
// Every check runs on every call, so that the report says everything that
// is wrong at once. A store outage makes the Runtime not ready, never not
// live ([Runtime.Live]).
func (r *Runtime[S]) Ready(ctx context.Context) health.Report {
	running := r.runningCheck()
	sub, parts := r.health.subscription()
	checks := []health.Check{running, sub, parts, r.storeCheck(ctx), r.health.retriesCheck(time.Now(), r.stuckAfter())}
	return health.Report{Checks: checks}
}

// Live reports whether the Runtime is alive; it implements
// [health.LivenessChecker], so that health.Healthz(rt) serves it. Its checks:
//
//   - running: Run is in progress (not yet returned, not closed);
//   - progress: the Runtime's handlers are idle, or those that have
//     messages in hand made progress (started or finished an attempt, or
//     scheduled a retry) within the threshold of [WithHangAfter].
//
// A Runtime that retries through an outage of its store or its bus is
// live; one whose Run returned, or whose handlers hang, is not.
func (r *Runtime[S]) Live(ctx context.Context) health.Report {
	return health.Report{Checks: []health.Check{r.runningCheck(), r.health.progressCheck(time.Now(), r.cfg.hangAfter)}}
}

var (
	_ health.ReadinessChecker = (*Runtime[int])(nil)
	_ health.LivenessChecker  = (*Runtime[int])(nil)
)

func (r *Runtime[S]) runningCheck() health.Check {
	r.mu.Lock()
	running, closed := r.running, r.closed
	r.mu.Unlock()
	c := health.Check{Name: CheckRunning, OK: running && !closed}
	switch {
	case closed:
		c.Error = "the runtime is closed"
	case !running:
		c.Error = "Run is not running"
	}
	return c
}

func (r *Runtime[S]) storeCheck(ctx context.Context) health.Check {
	p, ok := any(r.store).(Pinger)
	if !ok {
		return health.Check{Name: CheckStore, OK: true, Detail: "the store does not report whether it is reachable"}
	}
	ctx, cancel := context.WithTimeout(ctx, storePingTimeout)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		return health.Check{Name: CheckStore, Error: err.Error()}
	}
	return health.Check{Name: CheckStore, OK: true}
}

// stuckAfter is the threshold of the retries check; negative: off.
func (r *Runtime[S]) stuckAfter() time.Duration {
	if r.cfg.stuckAfter != 0 {
		return r.cfg.stuckAfter
	}
	return max(DefaultStuckAfter, 3*r.cfg.retryMax)
}

// onAssign records a new assignment of the subscription's partitions and
// reports it to the hooks.
// onRevoke hears the partitions the subscription lost: the state cache is
// dropped (another member may write their entities from now on), and the
// hooks are told.
func (r *Runtime[S]) onRevoke(revoked map[string][]int32) {
	r.cache.clear()
	if r.hooks.ObservesPartitions() {
		r.hooks.OnRevoked(r.cfg.group, revoked)
	}
}

func (r *Runtime[S]) onAssign(assigned map[string][]int32) {
	r.health.assign(assigned)
	if r.hooks.ObservesPartitions() {
		r.hooks.OnAssigned(r.cfg.group, assigned)
	}
}

// healthState is what the readiness and liveness checks read: the
// subscription and its assignment, the retry streaks in progress, and the
// handlers' progress. Its zero value is ready for use.
type healthState struct {
	mu         sync.Mutex
	subscribed bool
	assigned   map[string][]int32 // nil: no assignment yet in this subscription
	lastStreak uint64
	streaks    map[uint64]retryStreak // by id

	inFlight atomic.Int64 // HandleBatch calls in progress
	progress atomic.Int64 // unix nanoseconds of the last progress of a handler
}

// retryStreak is a run of failed attempts of one operation, retried with
// backoff, that has not succeeded yet.
type retryStreak struct {
	op       hooks.RetryOp
	since    time.Time
	attempts int
	messages int
}

// subscribing records that a subscription begins (with no assignment yet)
// or ended.
func (h *healthState) subscribing(on bool) {
	h.mu.Lock()
	h.subscribed, h.assigned = on, nil
	h.mu.Unlock()
}

func (h *healthState) assign(assigned map[string][]int32) {
	cp := make(map[string][]int32, len(assigned))
	for t, ps := range assigned {
		cp[t] = slices.Clone(ps)
	}
	h.mu.Lock()
	if h.subscribed {
		h.assigned = cp
	}
	h.mu.Unlock()
}

// subscription returns the subscribed and partitions checks.
func (h *healthState) subscription() (sub, parts health.Check) {
	h.mu.Lock()
	subscribed, assigned := h.subscribed, h.assigned
	h.mu.Unlock()
	sub = health.Check{Name: CheckSubscribed, OK: subscribed}
	parts = health.Check{Name: CheckPartitions}
	switch {
	case !subscribed:
		sub.Error = "not subscribed to the consumer group"
		parts.Error = "no subscription"
	case assigned == nil:
		parts.Error = "waiting for the consumer group to assign partitions"
	default:
		parts.OK = true
		n, topics := 0, make([]string, 0, len(assigned))
		for t, ps := range assigned {
			n += len(ps)
			if len(ps) > 0 {
				topics = append(topics, fmt.Sprintf("%s %v", t, ps))
			}
		}
		sort.Strings(topics)
		if n == 0 {
			parts.Detail = "idle: owns no partitions (the group has more members than partitions, or is rebalancing)"
		} else {
			parts.Detail = fmt.Sprintf("owns %d: %s", n, strings.Join(topics, ", "))
		}
	}
	return sub, parts
}

// retrying records a failed attempt of op (on messages messages, 0 for a
// relay) in the streak *id, which it begins if *id is 0.
func (h *healthState) retrying(id *uint64, op hooks.RetryOp, messages int, now time.Time) {
	h.progress.Store(now.UnixNano())
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streaks == nil {
		h.streaks = map[uint64]retryStreak{}
	}
	s, ok := h.streaks[*id]
	if *id == 0 || !ok {
		h.lastStreak++
		*id = h.lastStreak
		s = retryStreak{op: op, since: now}
	}
	s.attempts++
	s.messages = messages
	h.streaks[*id] = s
}

// endStreak ends the streak *id, if one is in progress, and sets *id to 0.
func (h *healthState) endStreak(id *uint64) {
	if *id == 0 {
		return
	}
	h.mu.Lock()
	delete(h.streaks, *id)
	h.mu.Unlock()
	*id = 0
}

// retriesCheck returns the retries check at now: the oldest streak in
// progress fails it once it is older than after (negative: never).
func (h *healthState) retriesCheck(now time.Time, after time.Duration) health.Check {
	h.mu.Lock()
	var oldest retryStreak
	n := 0
	for _, s := range h.streaks {
		if n == 0 || s.since.Before(oldest.since) {
			oldest = s
		}
		n++
	}
	h.mu.Unlock()
	c := health.Check{Name: CheckRetries, OK: true}
	if n == 0 {
		return c
	}
	age := now.Sub(oldest.since)
	what := string(oldest.op)
	if oldest.messages > 0 {
		what = fmt.Sprintf("%s of %d message(s)", what, oldest.messages)
	}
	msg := fmt.Sprintf("%d operation(s) retrying; the oldest, a %s, for %v (%d failed attempts)",
		n, what, age.Round(time.Millisecond), oldest.attempts)
	if after >= 0 && age > after {
		c.OK, c.Error = false, msg+", longer than "+after.String()
	} else {
		c.Detail = msg
	}
	return c
}

// handling records that a HandleBatch call begins; done records that it
// returned.
func (h *healthState) handling() {
	h.inFlight.Add(1)
	h.progress.Store(time.Now().UnixNano())
}

func (h *healthState) done() {
	h.progress.Store(time.Now().UnixNano())
	h.inFlight.Add(-1)
}

// progressed records progress of a handler (an attempt begins).
func (h *healthState) progressed() { h.progress.Store(time.Now().UnixNano()) }

// progressCheck returns the progress check at now.
func (h *healthState) progressCheck(now time.Time, after time.Duration) health.Check {
	if after == 0 {
		after = DefaultHangAfter
	}
	c := health.Check{Name: CheckProgress, OK: true}
	n := h.inFlight.Load()
	if n == 0 {
		c.Detail = "idle"
		return c
	}
	since := now.Sub(time.Unix(0, h.progress.Load()))
	c.Detail = fmt.Sprintf("%d batch(es) in hand, last progress %v ago", n, since.Round(time.Millisecond))
	if after > 0 && since > after {
		c.OK, c.Detail = false, ""
		c.Error = fmt.Sprintf("%d batch(es) in hand and no progress for %v, longer than %v", n, since.Round(time.Millisecond), after)
	}
	return c
}
