package bustest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
)

// Features tells [Run] what the bus under test supports and how fast it is.
// The zero value describes a fast bus of unknown partition count without
// batch support.
type Features struct {
	// Partitions is the partition count of the topics the bus creates for
	// the suite. When it is positive the suite also checks that a keyed
	// message lands on bus.KeyPartition(key, Partitions) and that the
	// members of a group together own every partition. Zero skips those
	// checks.
	Partitions int32

	// BatchSubscriber says the bus implements [bus.BatchSubscriber]; the
	// batch cases run only then. If it is false but the bus implements the
	// interface anyway, the batch cases run too.
	BatchSubscriber bool

	// SizeLimited says the bus implements [bus.SizeLimited] with a positive
	// MaxMessageBytes; the size-limit cases run only then. If it is false but
	// the bus has a limit anyway, they run too. The cases publish messages
	// of exactly MaxMessageBytes and one byte more (as bus.MessageSize
	// counts), so the broker behind the bus must accept the first.
	SizeLimited bool

	// TimeScale multiplies every deadline of the suite: 1 (the default) suits
	// an in-process bus, a real broker may need 3 or more.
	TimeScale float64

	// Timeout is the base deadline for one condition the suite waits for
	// (a message arriving, a member being assigned), before TimeScale. The
	// default is 10 seconds.
	Timeout time.Duration

	// NamePrefix starts every topic and group name the suite makes; the
	// default is "bustest". Names are unique per test and per run whatever
	// the prefix, so that buses sharing one broker never see each other's
	// messages.
	NamePrefix string

	// CreateTopics, if set, is called with the topics a case is about to
	// use, before it publishes or subscribes, for brokers that do not create
	// topics on first use. It gets the case's bus.
	CreateTopics func(t *testing.T, b bus.EventBus, topics ...string)

	// LargeMessageBytes is the value size of the large-message case: 0
	// means 1 MiB, a negative value skips the case (for brokers configured
	// with a smaller limit).
	LargeMessageBytes int

	// LeakOptions are passed to goleak.VerifyNone after a bus was closed,
	// for goroutines the implementation legitimately leaves behind (such as
	// a client library's global metrics goroutine).
	LeakOptions []goleak.Option

	// SkipLeakCheck skips the goroutine-leak check altogether.
	SkipLeakCheck bool
}

func (f Features) timeout() time.Duration {
	d := f.Timeout
	if d <= 0 {
		d = 10 * time.Second
	}
	return f.scale(d)
}

func (f Features) scale(d time.Duration) time.Duration {
	s := f.TimeScale
	if s <= 0 {
		s = 1
	}
	return time.Duration(float64(d) * s)
}

// Run runs the conformance suite: one subtest per case, each on a fresh bus
// from newBus, which it closes when the case ends (newBus may register its
// own cleanup for anything else it started). Cases run one after another,
// never in parallel, because the close case checks for leaked goroutines.
func Run(t *testing.T, f Features, newBus func(t *testing.T) bus.EventBus) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.batch && !f.BatchSubscriber {
				b := newBus(t)
				_, ok := b.(bus.BatchSubscriber)
				_ = b.Close()
				if !ok {
					t.Skip("the bus does not implement bus.BatchSubscriber")
				}
			}
			if c.sizeLimit && !f.SizeLimited {
				b := newBus(t)
				sl, ok := b.(bus.SizeLimited)
				_ = b.Close()
				if !ok || sl.MaxMessageBytes() <= 0 {
					t.Skip("the bus has no size limit (bus.SizeLimited)")
				}
			}
			var leakOpts []goleak.Option
			if c.leakCheck && !f.SkipLeakCheck {
				// Snapshot before the case's bus exists, so that goleak sees
				// every goroutine the bus starts.
				leakOpts = append(append(leakOpts, f.LeakOptions...), goleak.IgnoreCurrent())
			}
			e := newEnv(t, f, newBus)
			if _, ok := e.b.(bus.PartitionReader); c.reader && !ok {
				t.Skip("the bus does not implement bus.PartitionReader")
			}
			if _, ok := e.b.(bus.LagReporter); c.lag && !ok {
				t.Skip("the bus does not implement bus.LagReporter")
			}
			e.leakOpts = leakOpts
			c.run(e)
		})
	}
}

type testCase struct {
	name      string
	batch     bool // needs bus.BatchSubscriber
	sizeLimit bool // needs bus.SizeLimited with a limit
	reader    bool // needs bus.PartitionReader
	lag       bool // needs bus.LagReporter
	leakCheck bool // ends with a goroutine-leak check
	run       func(e *env)
}

// env is one case's bus and helpers.
type env struct {
	t      *testing.T
	f      Features
	b      bus.EventBus
	ctx    context.Context // ends with the case
	prefix string
	// leakOpts are the goleak options of a leakCheck case, with the
	// goroutines that ran before its bus was made; nil skips the check.
	leakOpts []goleak.Option
}

// runID tells this process's names from those of earlier runs on a shared
// broker; nameSeq tells names within the run apart.
var (
	runID   = strconv.FormatInt(time.Now().UnixNano(), 36)
	nameSeq atomic.Uint64
)

func newEnv(t *testing.T, f Features, newBus func(t *testing.T) bus.EventBus) *env {
	ctx, cancel := context.WithCancel(context.Background())
	b := newBus(t)
	prefix := f.NamePrefix
	if prefix == "" {
		prefix = "bustest"
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, t.Name())
	e := &env{t: t, f: f, b: b, ctx: ctx, prefix: fmt.Sprintf("%s.%s.%s", prefix, name, runID)}
	t.Cleanup(func() {
		cancel()
		closeBus(t, b)
	})
	return e
}

func closeBus(t *testing.T, b bus.EventBus) {
	if err := b.Close(); err != nil && !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// name returns a new unique topic or group name.
func (e *env) name(kind string) string {
	return fmt.Sprintf("%s.%s%d", e.prefix, kind, nameSeq.Add(1))
}

// topics returns n new topic names, created if the bus needs that.
func (e *env) topics(n int) []string {
	ts := make([]string, n)
	for i := range ts {
		ts[i] = e.name("topic")
	}
	if e.f.CreateTopics != nil {
		e.f.CreateTopics(e.t, e.b, ts...)
	}
	return ts
}

func (e *env) topic() string { return e.topics(1)[0] }

// eventually waits until cond holds, failing the test after the timeout.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(e.f.timeout())
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s", e.f.timeout(), what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wait waits for ch to be closed or to deliver, failing after the timeout.
func (e *env) wait(what string, ch <-chan struct{}) {
	e.t.Helper()
	select {
	case <-ch:
	case <-time.After(e.f.timeout()):
		e.t.Fatalf("timed out after %v waiting for %s", e.f.timeout(), what)
	}
}

func (e *env) publish(msgs ...*bus.Message) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, e.f.timeout())
	defer cancel()
	if err := e.b.Publish(ctx, msgs...); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
}

// sub is a Subscribe call running in its own goroutine.
type sub struct {
	e      *env
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
}

// subscribe starts Subscribe in a goroutine; the case's cleanup stops it.
func (e *env) subscribe(group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) *sub {
	return e.start(func(ctx context.Context) error { return e.b.Subscribe(ctx, group, topics, h, opts...) })
}

// subscribeBatch starts SubscribeBatch in a goroutine.
func (e *env) subscribeBatch(group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) *sub {
	bs, ok := e.b.(bus.BatchSubscriber)
	if !ok {
		e.t.Fatalf("%T does not implement bus.BatchSubscriber", e.b)
	}
	return e.start(func(ctx context.Context) error { return bs.SubscribeBatch(ctx, group, topics, h, opts...) })
}

func (e *env) start(run func(ctx context.Context) error) *sub {
	ctx, cancel := context.WithCancel(e.ctx)
	s := &sub{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(e.f.timeout()):
			e.t.Errorf("Subscribe did not return within %v of its context ending", e.f.timeout())
		}
	})
	return s
}

// stop cancels the subscription and checks that Subscribe returned nil.
func (s *sub) stop() {
	s.e.t.Helper()
	s.cancel()
	s.e.wait("Subscribe to return after its context ended", s.done)
	if s.err != nil {
		s.e.t.Fatalf("Subscribe returned %v after its context ended, want nil", s.err)
	}
}

// failIfDone fails the test if the subscription ended on its own.
func (s *sub) failIfDone() {
	s.e.t.Helper()
	select {
	case <-s.done:
		s.e.t.Fatalf("Subscribe returned early: %v", s.err)
	default:
	}
}

// inbox collects delivered messages (as clones) from handler goroutines.
type inbox struct {
	mu   sync.Mutex
	msgs []*bus.Message
}

func (l *inbox) add(m *bus.Message) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m.Clone())
	return len(l.msgs)
}

func (l *inbox) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

func (l *inbox) all() []*bus.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*bus.Message(nil), l.msgs...)
}

// values returns the delivered values as strings, in delivery order.
func (l *inbox) values() []string {
	var vs []string
	for _, m := range l.all() {
		vs = append(vs, string(m.Value))
	}
	return vs
}

// distinct returns how many different values were delivered.
func (l *inbox) distinct() int {
	seen := make(map[string]bool)
	for _, m := range l.all() {
		seen[string(m.Value)] = true
	}
	return len(seen)
}

// exclusive checks that no two handler calls of one group run on the same
// partition at once.
type exclusive struct {
	t        *testing.T
	mu       sync.Mutex
	inFlight map[string]int
}

func newExclusive(t *testing.T) *exclusive {
	return &exclusive{t: t, inFlight: make(map[string]int)}
}

func (x *exclusive) enter(m *bus.Message) {
	k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.inFlight[k]++
	if x.inFlight[k] > 1 {
		x.t.Errorf("two handler calls of one group at once on partition %s (offset %d)", k, m.Offset)
	}
}

func (x *exclusive) leave(m *bus.Message) {
	k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.inFlight[k]--
}

// keyed returns n messages for topic: key "key-<i % keys>", value
// "<tag>-<i>", header "seq" = i.
func keyed(topic, tag string, n, keys int) []*bus.Message {
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{
			Topic:   topic,
			Key:     fmt.Appendf(nil, "key-%d", i%keys),
			Value:   fmt.Appendf(nil, "%s-%d", tag, i),
			Headers: bus.Headers{"seq": fmt.Sprint(i)},
		}
	}
	return msgs
}

// assignments tracks the latest OnAssign call of each member.
type assignments struct {
	mu     sync.Mutex
	latest []map[string][]int32
}

func newAssignments(members int) *assignments {
	return &assignments{latest: make([]map[string][]int32, members)}
}

func (a *assignments) option(member int) bus.SubscribeOption {
	return bus.WithOnAssign(func(m map[string][]int32) {
		a.mu.Lock()
		defer a.mu.Unlock()
		c := make(map[string][]int32, len(m))
		for t, ps := range m {
			c[t] = append([]int32(nil), ps...)
		}
		a.latest[member] = c
	})
}

func (a *assignments) of(member int, topic string) []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int32(nil), a.latest[member][topic]...)
}

// split reports whether the members' latest assignments of topic are
// disjoint, each non-empty, and (when partitions > 0) cover every partition.
func (a *assignments) split(topic string, partitions int32, members ...int) bool {
	seen := make(map[int32]bool)
	for _, m := range members {
		ps := a.of(m, topic)
		if len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return partitions <= 0 || len(seen) == int(partitions)
}
