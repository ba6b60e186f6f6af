package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Topology is the system under test: the parts the members are built from,
// the faults that can be switched in it, and how to read it back.
type Topology struct {
	// Name names it in reports.
	Name string
	// MemberBus returns the bus of the member in slot; it is called at
	// every start of a member. The harness wraps it in publish faults.
	MemberBus func(slot int) bus.EventBus
	// Inputs publishes the generator's messages; it is never faulted.
	Inputs registrar.Publisher
	// Store and Exec are shared by every member. Exec routes every intent
	// type the contract routes.
	Store registration.Store
	Exec  *intent.Executor
	// StoreOutage and RegistryOutage are switched by the schedule.
	StoreOutage, RegistryOutage Outage
	// Log reads the bus's topics and the group's progress.
	Log Log
	// Projections reads every projection of the store, around any fault.
	Projections func(ctx context.Context) ([]*registration.Projection, error)

	// Services, if set, reads the registry's services that registrar
	// owns, around any fault: the quiet wait waits for them to stay the
	// same too, and the checker compares them with the store's active
	// projections (invariant [Registered]). Nil: the registry is not
	// checked.
	Services func(ctx context.Context) ([]Service, error)
	// Reconcile, if set (with Services), runs one anti-entropy pass over
	// the registry and returns how many services it registered, rewrote or
	// removed. Run calls it once, after the check, with the members
	// stopped: a registry the check found equal to the active projections
	// must come out of it unchanged, and every registry equal to them.
	Reconcile func(ctx context.Context) (changes int, err error)
	// Pending, if set, returns the entities whose outbox records were not
	// relayed; the registry's violations say which of them these are.
	Pending func(ctx context.Context) ([]uuid.UUID, error)
}

// Config configures a [Run]. Zero durations take the defaults named.
type Config struct {
	// Seed selects the workload and the schedule.
	Seed uint64
	// Entities is the number of nodes; PoisonsPerKind the number of poison
	// messages of each kind.
	Entities, PoisonsPerKind int
	// Poisons names the kinds of poison message mixed in (see
	// [PoisonKinds]); nil means all of them.
	Poisons []string
	// Members is the size of the consumer group; default 3.
	Members int
	// Faults names the kinds of fault the schedule injects (see
	// [ActKinds]); nil means all of them, an empty list none.
	Faults []string
	// MemberStops is how many times a member is stopped and restarted;
	// default 5.
	MemberStops int
	// Batch runs the members with micro-batches; false, one message at a
	// time.
	Batch bool
	// Window is how long faults last, from the start; the inputs are
	// published within its first four fifths. Default 3 s.
	Window time.Duration
	// Poll is the interval at which quiescence is polled; default 50 ms.
	Poll time.Duration
	// QuietFor is how long the outputs and the store must stay unchanged,
	// once every input is committed, for the system to count as quiet;
	// default 1 s.
	QuietFor time.Duration
	// Stall is how long an input partition may go without progress, once
	// faults ended, before it counts as stuck; default 30 s (a Kafka group
	// on a loaded machine may take seconds to settle).
	Stall time.Duration
	// Timeout bounds the wait for quiescence; default 2 min.
	Timeout time.Duration
	// Logger receives the members' logs; nil is silent.
	Logger *slog.Logger
	// Logf, if set, receives the harness's progress lines.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Window == 0 {
		c.Window = 3 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = 50 * time.Millisecond
	}
	if c.QuietFor == 0 {
		c.QuietFor = time.Second
	}
	if c.Stall == 0 {
		c.Stall = 30 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Fault rates while a fault is on: the fraction of publish calls of the
// members that fail, and the fraction of store or registry calls that a
// topology's [Flaky] outages should fail.
const (
	PublishFaultRate = 0.2
	EffectFaultRate  = 0.3
)

// Faults counts the faults a run injected.
type Faults struct {
	PublishBefore, PublishAfter int64 // publish calls failed before and after publishing
	Store, Registry             int64 // injected store and registry errors (or proxy cuts)
	MemberStops                 int   // members stopped and restarted
}

// Result is the outcome of a [Run].
type Result struct {
	Topology   string
	Seed       uint64
	Batch      bool
	Violations []Violation
	Counts     Counts
	Faults     Faults
	// Subscriptions counts the members' Subscribe and SubscribeBatch
	// calls: which path of the Runtime ran.
	Subscriptions, BatchSubscriptions int64
	// Stats sums the Stats of every member incarnation.
	Stats registrar.Stats
	// Registry counts what the check of the registry found, on a topology
	// that reads it back.
	Registry RegistryCounts
	Elapsed  time.Duration
}

// RegistryCounts counts the registry's services at the end of a run.
type RegistryCounts struct {
	// Checked says the topology read its registry back.
	Checked bool
	// Services counts the services registrar owns; Active the store's
	// active projections.
	Services, Active int
	// Reconciled counts the services the reconcile pass after the check
	// changed, if the topology has one (Reconciles).
	Reconciles bool
	Reconciled int
}

// Summary is one line of counts.
func (r *Result) Summary() string {
	mode := "single"
	if r.Batch {
		mode = "batch"
	}
	c, f := r.Counts, r.Faults
	registry := ""
	if g := r.Registry; g.Checked {
		registry = fmt.Sprintf("registry: %d services for %d active projections", g.Services, g.Active)
		if g.Reconciles {
			registry += fmt.Sprintf(", %d changed by a reconcile pass", g.Reconciled)
		}
		registry += "; "
	}
	return fmt.Sprintf("%s/%s seed %d: %d inputs (%d decided by the model), %d poisons; "+
		"faults: %d publish before + %d after, %d store, %d registry, %d member stops; "+
		"events: %d expected, %d published, %d distinct, %d duplicates; dead letters: %d (%d repeats); %s"+
		"members: %d handled, %d retries, %d dead-lettered; %d violations in %v",
		r.Topology, mode, r.Seed, c.Inputs, c.Decided, c.Poisons,
		f.PublishBefore, f.PublishAfter, f.Store, f.Registry, f.MemberStops,
		c.ExpectedEvents, c.Published, c.Distinct, c.Duplicates, c.DeadLetters, c.DLQDupes, registry,
		r.Stats.Handled, r.Stats.Retries, r.Stats.DeadLettered, len(r.Violations), r.Elapsed.Round(time.Millisecond))
}

// Report lists the violations by invariant, at most perInvariant of each
// (0: all), with how many there are.
func (r *Result) Report(perInvariant int) string {
	var b strings.Builder
	byInv := map[Invariant][]Violation{}
	for _, v := range r.Violations {
		byInv[v.Invariant] = append(byInv[v.Invariant], v)
	}
	for inv := Delivered; inv <= Registered; inv++ {
		vs := byInv[inv]
		if len(vs) == 0 {
			continue
		}
		entities := map[string]bool{}
		for _, v := range vs {
			entities[v.Entity.String()] = true
		}
		fmt.Fprintf(&b, "invariant %s: %d violations, %d entities\n", inv, len(vs), len(entities))
		for i, v := range vs {
			if perInvariant > 0 && i == perInvariant {
				fmt.Fprintf(&b, "  ... and %d more\n", len(vs)-i)
				break
			}
			fmt.Fprintf(&b, "  entity %s: %s\n", v.Entity, v.Detail)
		}
	}
	return b.String()
}

// Run runs one chaos run on topo: it starts cfg.Members members in one
// group, publishes the workload of cfg.Seed while the schedule of cfg.Seed
// injects faults, ends the faults, waits until the system is quiet, stops
// the members, and checks the invariants against one serial run of the
// reducer over what was published. An error says the harness could not do
// its part (a member that would not start or stop, a log it could not
// read); violations of the guarantees are in the result.
func Run(ctx context.Context, topo *Topology, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	c := contract.Default()
	red, err := modelReducer(c)
	if err != nil {
		return nil, err
	}
	topics := red.Config().Topics
	r := &run{
		cfg: cfg, topo: topo, contract: c, group: c.Group(),
		publish: NewPublishFaults(PublishFaultRate, cfg.Seed),
		members: make([]*member, cfg.Members),
		res:     &Result{Topology: topo.Name, Seed: cfg.Seed, Batch: cfg.Batch},
	}
	w := Generate(cfg.Seed, WorkloadConfig{
		Entities: cfg.Entities, PoisonsPerKind: cfg.PoisonsPerKind, PoisonKinds: cfg.Poisons, Topic: topics.Introspection, Window: cfg.Window * 4 / 5,
	})
	sched := NewSchedule(cfg.Seed, ScheduleConfig{Members: cfg.Members, Window: cfg.Window, Kinds: cfg.Faults, MemberStops: cfg.MemberStops})
	start := time.Now()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() { _ = r.stopAll() }() // on an early return; a no-op after the regular stop
	for slot := range cfg.Members {
		if err := r.start(ctx, slot); err != nil {
			return nil, err
		}
	}
	published := make(chan error, 1)
	go func() { published <- r.publishAll(ctx, w, start) }()
	if err := r.play(ctx, sched, start); err != nil {
		cancel()
		if perr := <-published; perr != nil && !errors.Is(perr, context.Canceled) {
			err = errors.Join(err, perr)
		}
		return nil, err
	}
	if err := <-published; err != nil {
		return nil, err
	}
	cfg.Logf("%s: faults over after %v; waiting for quiescence", topo.Name, time.Since(start).Round(time.Millisecond))

	outputs := []string{topics.Initiated, topics.Accepted, topics.AckReceived, topics.BecameActive, topics.AckTimedOut, topics.LivenessExpired, topics.Snapshot}
	watched := append(slices.Clone(outputs), c.EventBus.DeadLetterTopic)
	if err := r.awaitQuiet(ctx, c.InputTopics(), watched); err != nil {
		return nil, err
	}
	cfg.Logf("%s: quiet %v after the start", topo.Name, time.Since(start).Round(time.Millisecond))
	if err := r.stopAll(); err != nil {
		return nil, err
	}
	cfg.Logf("%s: members stopped %v after the start", topo.Name, time.Since(start).Round(time.Millisecond))

	obs, err := r.observe(ctx, c.InputTopics(), outputs, c.EventBus.DeadLetterTopic)
	if err != nil {
		return nil, err
	}
	cfg.Logf("%s: read back %v after the start", topo.Name, time.Since(start).Round(time.Millisecond))
	committed := map[partitionKey]int64{}
	for _, p := range obs.Progress {
		committed[partitionKey{p.Topic, p.Partition}] = p.Committed
	}
	m, err := RunModel(red, obs.Inputs, w.Poisons, func(topic string, p int32) int64 {
		return committed[partitionKey{topic, p}]
	})
	if err != nil {
		return nil, err
	}
	r.res.Violations, r.res.Counts = Check(w, m, obs)
	if obs.RegistryRead {
		if err := r.reconcile(ctx, obs); err != nil {
			return nil, err
		}
	}
	before, after := r.publish.Counts()
	r.res.Subscriptions, r.res.BatchSubscriptions = r.publish.Subscriptions()
	r.res.Faults = Faults{PublishBefore: before, PublishAfter: after, MemberStops: sched.Count(ActMember)}
	if topo.StoreOutage != nil {
		r.res.Faults.Store = topo.StoreOutage.Count()
	}
	if topo.RegistryOutage != nil {
		r.res.Faults.Registry = topo.RegistryOutage.Count()
	}
	r.res.Elapsed = time.Since(start)
	return r.res, nil
}

// run is the state of one [Run].
type run struct {
	cfg      Config
	topo     *Topology
	contract *contract.Contract
	group    string
	publish  *PublishFaults
	res      *Result

	mu      sync.Mutex
	members []*member // by slot; nil while stopped
	stopped []*member // told to stop; not yet waited for
}

// member is one incarnation of a member.
type member struct {
	slot   int
	rt     *registrar.RegistrationRuntime
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, once done is closed
}

// memberStopTimeout bounds the wait for a member's Run to return.
const memberStopTimeout = 30 * time.Second

func (r *run) start(ctx context.Context, slot int) error {
	r.mu.Lock()
	running := r.members[slot] != nil
	r.mu.Unlock()
	if running {
		return fmt.Errorf("chaos: start member %d: it is running", slot)
	}
	rt, err := newMember(MemberConfig{
		Contract: r.contract, Bus: WithPublishFaults(r.topo.MemberBus(slot), r.publish),
		Store: r.topo.Store, Exec: r.topo.Exec, Batch: r.cfg.Batch, Clock: Clock, Logger: r.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("chaos: start member %d: %w", slot, err)
	}
	mctx, cancel := context.WithCancel(ctx)
	m := &member{slot: slot, rt: rt, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.err = rt.Run(mctx)
	}()
	r.mu.Lock()
	r.members[slot] = m
	r.mu.Unlock()
	return nil
}

// stop tells the member in slot, if one runs, to stop, without waiting for
// it: its Run ends in the background (a Kafka member leaving its group
// takes a while), and a fresh member may start in the slot meanwhile.
// [run.stopAll] waits for every member stopped.
func (r *run) stop(slot int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[slot]
	r.members[slot] = nil
	if m == nil {
		return nil
	}
	select {
	case <-m.done:
		m.cancel()
		return fmt.Errorf("chaos: member %d stopped by itself: Run returned %w", m.slot, m.err)
	default:
	}
	m.cancel()
	r.stopped = append(r.stopped, m)
	return nil
}

// stopAll stops every member and waits until each member ever stopped
// returned from Run, nil, and adds their stats to the result.
func (r *run) stopAll() error {
	var errs []error
	for slot := range r.members {
		errs = append(errs, r.stop(slot))
	}
	r.mu.Lock()
	stopped := r.stopped
	r.stopped = nil
	r.mu.Unlock()
	timeout := time.After(memberStopTimeout)
	for _, m := range stopped {
		select {
		case <-m.done:
		case <-timeout:
			errs = append(errs, fmt.Errorf("chaos: member %d did not stop within %v of its context ending", m.slot, memberStopTimeout))
			continue
		}
		s, t := m.rt.Stats(), &r.res.Stats
		t.Handled += s.Handled
		t.NoOps += s.NoOps
		t.IntentsExecuted += s.IntentsExecuted
		t.IntentsSkipped += s.IntentsSkipped
		t.EventsPublished += s.EventsPublished
		t.DeadLettered += s.DeadLettered
		t.Retries += s.Retries
		t.Conflicts += s.Conflicts
		if m.err != nil {
			errs = append(errs, fmt.Errorf("chaos: member %d: Run returned %w", m.slot, m.err))
		}
	}
	return errors.Join(errs...)
}

// publishAll publishes every entity's script, each from a goroutine of its
// own, in order, each input at its time; a failed publish is repeated.
func (r *run) publishAll(ctx context.Context, w *Workload, start time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Window+time.Minute)
	defer cancel()
	errc := make(chan error, len(w.Entities))
	for _, id := range w.Entities {
		go func() {
			for _, in := range w.Scripts[id] {
				if !sleepUntil(ctx, start.Add(in.At)) {
					errc <- fmt.Errorf("chaos: publish inputs of %s: %w", id, ctx.Err())
					return
				}
				for {
					err := r.topo.Inputs.Publish(ctx, in.Msg.Clone())
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						errc <- fmt.Errorf("chaos: publish %s of %s: %w (last error: %w)", in.Describe(), id, ctx.Err(), err)
						return
					}
					sleepUntil(ctx, time.Now().Add(10*time.Millisecond))
				}
			}
			errc <- nil
		}()
	}
	var errs []error
	for range w.Entities {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// play runs the schedule, then ends every fault and restarts every member
// it stopped.
func (r *run) play(ctx context.Context, s *Schedule, start time.Time) error {
	outage := func(kind string) Outage {
		switch kind {
		case ActPublishFaults:
			return r.publish
		case ActStoreOutage:
			return r.topo.StoreOutage
		case ActRegistryOutage:
			return r.topo.RegistryOutage
		}
		return nil
	}
	on := map[string]bool{}
	for _, a := range s.Actions {
		if !sleepUntil(ctx, start.Add(a.At)) {
			return ctx.Err()
		}
		if a.Kind == ActMember {
			if a.Begin {
				if err := r.stop(a.Slot); err != nil {
					return err
				}
			} else if err := r.start(ctx, a.Slot); err != nil {
				return err
			}
			continue
		}
		o := outage(a.Kind)
		if o == nil {
			continue
		}
		if a.Begin {
			o.Begin()
			on[a.Kind] = true
		} else {
			if err := o.End(); err != nil {
				return fmt.Errorf("chaos: end %s: %w", a.Kind, err)
			}
			on[a.Kind] = false
		}
	}
	if !sleepUntil(ctx, start.Add(s.End)) {
		return ctx.Err()
	}
	for kind, isOn := range on {
		if isOn {
			if err := outage(kind).End(); err != nil {
				return fmt.Errorf("chaos: end %s: %w", kind, err)
			}
		}
	}
	for slot := range r.members {
		r.mu.Lock()
		stopped := r.members[slot] == nil
		r.mu.Unlock()
		if stopped {
			if err := r.start(ctx, slot); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitQuiet waits until the group committed every input partition to its
// end and then the watched topics and the store stayed unchanged for
// QuietFor. A partition that lags and makes no progress for Stall counts as
// stuck: the wait ends once every lagging partition is stuck, or at Timeout
// (the checker reports the partitions that lag then).
func (r *run) awaitQuiet(ctx context.Context, inputs, watched []string) error {
	cfg := r.cfg
	deadline := time.Now().Add(cfg.Timeout)
	lastMove := map[partitionKey]time.Time{}
	lastCommitted := map[partitionKey]int64{}
	waitStart := time.Now()
	for {
		prog, err := r.topo.Log.Progress(ctx, r.group, inputs)
		if err != nil {
			return err
		}
		lagging, stalled := 0, 0
		now := time.Now()
		for _, p := range prog {
			k := partitionKey{p.Topic, p.Partition}
			if c, seen := lastCommitted[k]; !seen || c != p.Committed {
				lastCommitted[k], lastMove[k] = p.Committed, now
			}
			if p.Lag() == 0 {
				continue
			}
			lagging++
			if now.Sub(lastMove[k]) >= cfg.Stall {
				stalled++
			}
		}
		switch {
		case lagging == 0:
			cfg.Logf("%s: every input committed %v after the faults ended", r.topo.Name, now.Sub(waitStart).Round(time.Millisecond))
			return r.awaitStable(ctx, watched, deadline)
		case lagging == stalled:
			cfg.Logf("%s: %d input partitions made no progress for %v; giving up on them", r.topo.Name, stalled, cfg.Stall)
			return nil
		case now.After(deadline):
			cfg.Logf("%s: %d input partitions still lag after %v", r.topo.Name, lagging, cfg.Timeout)
			return nil
		}
		if !sleepUntil(ctx, now.Add(cfg.Poll)) {
			return ctx.Err()
		}
	}
}

// awaitStable waits until the watched topics' end offsets and the store's
// projections stayed the same for QuietFor; it fails at deadline.
func (r *run) awaitStable(ctx context.Context, watched []string, deadline time.Time) error {
	var last [32]byte
	since := time.Now()
	for first := true; ; first = false {
		fp, err := r.fingerprint(ctx, watched)
		if err != nil {
			return err
		}
		now := time.Now()
		if first || fp != last {
			last, since = fp, now
		} else if now.Sub(since) >= r.cfg.QuietFor {
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("chaos: every input is committed, but the outputs or the store still change %v after the faults ended", r.cfg.Timeout)
		}
		if !sleepUntil(ctx, now.Add(r.cfg.Poll)) {
			return ctx.Err()
		}
	}
}

// fingerprint hashes the end offsets of the watched topics and the store's
// projections.
func (r *run) fingerprint(ctx context.Context, watched []string) ([32]byte, error) {
	prog, err := r.topo.Log.Progress(ctx, "", watched)
	if err != nil {
		return [32]byte{}, err
	}
	projections, err := r.topo.Projections(ctx)
	if err != nil {
		return [32]byte{}, fmt.Errorf("chaos: read projections: %w", err)
	}
	h := sha256.New()
	for _, p := range prog {
		fmt.Fprintf(h, "%s/%d:%d;", p.Topic, p.Partition, p.End)
	}
	if err := json.NewEncoder(h).Encode(projections); err != nil {
		return [32]byte{}, err
	}
	if r.topo.Services != nil {
		services, err := r.topo.Services(ctx)
		if err != nil {
			return [32]byte{}, fmt.Errorf("chaos: read the registry: %w", err)
		}
		if err := json.NewEncoder(h).Encode(services); err != nil {
			return [32]byte{}, err
		}
	}
	return [32]byte(h.Sum(nil)), nil
}

// observe reads back what the run left.
func (r *run) observe(ctx context.Context, inputs, outputs []string, deadLetter string) (*Observed, error) {
	obs := &Observed{Inputs: map[string][][]*bus.Message{}, Outputs: map[string][][]*bus.Message{}}
	var err error
	for _, t := range inputs {
		if obs.Inputs[t], err = r.topo.Log.Read(ctx, t); err != nil {
			return nil, err
		}
	}
	for _, t := range outputs {
		if obs.Outputs[t], err = r.topo.Log.Read(ctx, t); err != nil {
			return nil, err
		}
	}
	if obs.DeadLetters, err = r.topo.Log.Read(ctx, deadLetter); err != nil {
		return nil, err
	}
	if obs.Projections, err = r.topo.Projections(ctx); err != nil {
		return nil, fmt.Errorf("chaos: read projections: %w", err)
	}
	if r.topo.Services != nil {
		if obs.Services, err = r.topo.Services(ctx); err != nil {
			return nil, fmt.Errorf("chaos: read the registry: %w", err)
		}
		obs.RegistryRead = true
	}
	if r.topo.Pending != nil {
		pending, err := r.topo.Pending(ctx)
		if err != nil {
			return nil, fmt.Errorf("chaos: read the outbox: %w", err)
		}
		obs.Pending = map[uuid.UUID]bool{}
		for _, id := range pending {
			obs.Pending[id] = true
		}
	}
	if obs.Progress, err = r.topo.Log.Progress(ctx, r.group, inputs); err != nil {
		return nil, err
	}
	for _, p := range obs.Progress {
		if p.Lag() > 0 {
			obs.Stuck = append(obs.Stuck, p)
		}
	}
	return obs, nil
}

// reconcile counts the registry's services and runs the topology's
// reconcile pass, if it has one, once the registry was checked: the pass
// must change nothing in a registry that matched the active projections,
// and must leave every registry matching them.
func (r *run) reconcile(ctx context.Context, obs *Observed) error {
	g := &r.res.Registry
	g.Checked, g.Services = true, len(obs.Services)
	for _, p := range obs.Projections {
		if _, ok := WantService(p); ok {
			g.Active++
		}
	}
	if r.topo.Reconcile == nil {
		return nil
	}
	matched := !slices.ContainsFunc(r.res.Violations, func(v Violation) bool { return v.Invariant == Registered })
	g.Reconciles = true
	changes, err := r.topo.Reconcile(ctx)
	g.Reconciled = changes
	if err != nil {
		r.res.Violations = append(r.res.Violations, Violation{Invariant: Registered,
			Detail: fmt.Sprintf("a reconcile pass after the run failed (%d changes): %v", changes, err)})
	}
	if matched && changes > 0 {
		r.res.Violations = append(r.res.Violations, Violation{Invariant: Registered, Detail: fmt.Sprintf(
			"the registry matched the active projections, yet a reconcile pass changed %d services", changes)})
	}
	after, err := r.topo.Services(ctx)
	if err != nil {
		return fmt.Errorf("chaos: read the registry after the reconcile pass: %w", err)
	}
	for _, v := range CheckRegistry(obs.Projections, after, nil) {
		v.Detail = "after a reconcile pass: " + v.Detail
		r.res.Violations = append(r.res.Violations, v)
	}
	return nil
}

// sleepUntil waits until t; it reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
