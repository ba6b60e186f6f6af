package node_test

// Review tests: each one fails against the code it was written for and
// names the bug it shows.

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// faultBus is a readerBus whose partition reads fail on the messages fail
// selects: the handler returns an error, so ReadPartition returns it, as a
// broker or connection fault would end a read.
type faultBus struct {
	readerBus
	fail func(*bus.Message) bool
}

func (b faultBus) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	return b.pr.ReadPartition(ctx, topic, partition, func(ctx context.Context, m *bus.Message) error {
		if b.fail(m) {
			return errors.New("injected read fault")
		}
		return h(ctx, m)
	}, opts...)
}

// TestReviewMissedLivenessExpiredAfterReadFault: readLoop's doc says that
// the events a failed read missed "are recovered by the protocol's own
// retries", and Resume's that a node "whose registration expired meanwhile
// registers again". An active node has no retry: when the read of the
// liveness topic fails on the node's NodeLivenessExpired (and restarts from
// the newest offset, past it), the node believes it is active forever, and
// after Resume its heartbeats are no-ops for an expired registration. The
// orchestrator never has it back.
func TestReviewMissedLivenessExpiredAfterReadFault(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	inf := info(0)
	var faults atomic.Int64
	fb := faultBus{readerBus: w.bus.(readerBus), fail: func(m *bus.Message) bool {
		if m.Topic == registration.TopicLivenessExpired && string(m.Key) == inf.ID.String() && faults.Load() == 0 {
			faults.Add(1)
			return true
		}
		return false
	}}
	nd, err := node.New(fb, inf, node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.run(nd)
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	nd.Pause()
	w.settle()
	w.advance(registration.DefaultLivenessWindow+15*time.Second, 5*time.Second)
	w.waitFor("the read fault on NodeLivenessExpired", func() bool { return faults.Load() == 1 })
	if got := w.storeStates([]*node.Node{nd}); got[registration.StateLivenessExpired] != 1 {
		t.Fatalf("store: %v, want liveness_expired", got)
	}
	time.Sleep(300 * time.Millisecond) // the read restarts (100 ms)
	nd.Resume()
	w.settle()
	// Two liveness windows: plenty for any recovery.
	w.advance(2*registration.DefaultLivenessWindow, 5*time.Second)
	if got := w.storeStates([]*node.Node{nd}); got[registration.StateActive] != 1 {
		t.Fatalf("store: %v, node state %v, stats %+v: the node thinks it is active, the orchestrator expired it, and nothing brings them together",
			got, nd.State(), nd.Stats())
	}
}

// skewClock runs d behind c; its timers are c's.
type skewClock struct {
	c *node.ManualClock
	d *atomic.Int64
}

func (s skewClock) Now() time.Time                      { return s.c.Now().Add(-time.Duration(s.d.Load())) }
func (s skewClock) NewTimer(d time.Duration) node.Timer { return s.c.NewTimer(d) }

// TestReviewClockBehindReregisters: the package doc promises that "a clock
// that stands still or runs behind the orchestrator's does not make its
// messages stale". saw() ignores emitted_at more than maxAhead (5 min) ahead
// of the node's clock, so a node whose clock is set back 10 min (an NTP
// step, a VM restore) while it is paused ignores its NodeLivenessExpired's
// time, stamps its next introspection before the orchestrator's
// liveness-timeout marker, and that introspection is a stale no-op, as is
// every retry, until the node's clock has caught up with the marker
// (10 min; never, for a clock that stands still).
func TestReviewClockBehindReregisters(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	var skew atomic.Int64
	nd, err := node.New(w.bus, info(0), node.WithClock(skewClock{c: w.clock, d: &skew}))
	if err != nil {
		t.Fatal(err)
	}
	w.run(nd)
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	nd.Pause()
	w.settle()
	skew.Store(int64(10 * time.Minute))
	w.advance(registration.DefaultLivenessWindow+15*time.Second, 5*time.Second)
	w.waitFor("expired", all([]*node.Node{nd}, node.StateExpired))
	nd.Resume()
	w.waitFor("out of expired", func() bool { return nd.State() != node.StateExpired })
	w.settle()
	// Three minutes: the first retries (30 s, 60 s, 120 s) all happen. The
	// node registers again; it may expire again afterwards, since the
	// orchestrator computes liveness deadlines from its heartbeats' stamps,
	// which stand still until its clock catches up (see the package
	// documentation), and registers again each time.
	w.advance(3*time.Minute, 5*time.Second)
	if st := nd.Stats(); st.Activations < 2 {
		t.Fatalf("node %v after 3 min, stats %+v, runtime %+v: its introspections are stale (stamped before the orchestrator's timeout marker)",
			nd.State(), st, w.rt.Stats())
	}
}

// TestReviewRerunStampsAfterPreviousRun: Run's doc promises that "every
// message is stamped later than the last one the node sent". The watermark
// lives in the per-Run protocol, so a second Run of the same Node starts
// again from the clock: on a clock that stood still, its introspection is
// stamped before the previous Run's ack, which the orchestrator drops as
// stale (not newer than updated_at), and the node stays registering.
func TestReviewRerunStampsAfterPreviousRun(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	nd, err := node.New(w.bus, info(0), node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	if err := nd.WaitActive(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	go func() { done <- nd.Run(ctx) }()
	wctx, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	if err := nd.WaitActive(wctx); err != nil {
		t.Fatalf("second Run: %v, state %v, stats %+v, runtime %+v: its introspection was stamped before the first Run's ack (stale)",
			err, nd.State(), nd.Stats(), w.rt.Stats())
	}
}

// TestReviewInfoAliased: New validates info, but keeps the caller's
// Endpoints map (and Capabilities slice) and Info returns them again: a
// change after New (or through Info()) changes what every later
// introspection sends, unvalidated, and races with Run's encoding.
func TestReviewInfoAliased(t *testing.T) {
	inf := info(0)
	nd, err := node.New(newMemBus(t, 0), inf)
	if err != nil {
		t.Fatal(err)
	}
	inf.Endpoints["health"] = "not a url"
	nd.Info().Capabilities[0] = '['
	if got := nd.Info().Endpoints["health"]; got == "not a url" {
		t.Fatalf("the node's endpoints changed after New validated them: %q", got)
	}
	if got := string(nd.Info().Capabilities); got != `{"read":true}` {
		t.Fatalf("the node's capabilities changed after New validated them: %q", got)
	}
}

// TestReviewStaleAckTimedOut: the relay is at-least-once, and
// NodeRegistrationAckTimedOut is acted on by state alone, not by
// correlation id (unlike Accepted and BecameActive, which must match a
// pending introspection). A redelivered ack timeout of an earlier attempt,
// read while the node waits on its current one, throws the current
// registration away and starts another (the orchestrator then blocks it,
// "registration in progress", or answers the old one, which the node now
// ignores).
func TestReviewStaleAckTimedOut(t *testing.T) {
	b := newMemBus(t, 1)
	w := newWorld(t, b, false)
	inf := info(0)
	var acks atomic.Int64
	w.tb.mu.Lock()
	w.tb.drop = func(m *bus.Message) bool { // lose the node's first two acks
		return m.Topic == registration.TopicAck && string(m.Key) == inf.ID.String() && acks.Add(1) <= 2
	}
	w.tb.mu.Unlock()
	nd, err := node.New(w.bus, inf, node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.run(nd)
	w.waitFor("the first ack", func() bool { return nd.Stats().Acks == 1 })
	w.settle()
	w.advance(registration.DefaultAckTimeout+5*time.Second, 5*time.Second)
	w.waitFor("the second ack", func() bool { return nd.Stats().Acks == 2 && nd.State() == node.StateAwaitingAck })
	w.settle()
	var stale *bus.Message
	for _, m := range b.Messages(registration.TopicAckTimedOut, 0) {
		if string(m.Key) == inf.ID.String() {
			stale = m
		}
	}
	if stale == nil {
		t.Fatal("no NodeRegistrationAckTimedOut for the first attempt")
	}
	before, events := nd.Stats().Introspections, nd.Stats().Events
	// The relay delivers it again.
	if err := b.Publish(context.Background(), &bus.Message{Topic: stale.Topic, Key: stale.Key, Value: stale.Value, Headers: stale.Headers}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the redelivery read", func() bool { return nd.Stats().Events > events })
	w.settle()
	if st := nd.Stats(); st.Introspections != before || nd.State() != node.StateAwaitingAck {
		t.Fatalf("after a redelivered ack timeout of the previous attempt: state %v, %d introspections (was %d): the current registration was dropped",
			nd.State(), st.Introspections, before)
	}
}

// TestReviewPauseResumeStorm: many goroutines pause and resume an active
// node while the clock moves; once the storm ends resumed, the node
// heartbeats and stays active. (Held up.)
func TestReviewPauseResumeStorm(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	nd := w.start(1)[0]
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if (i+g)%2 == 0 {
					nd.Pause()
				} else {
					nd.Resume()
				}
			}
		}()
	}
	for range 20 {
		w.clock.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	nd.Resume()
	w.settle()
	hb := nd.Stats().Heartbeats
	w.advance(time.Minute, 5*time.Second)
	if nd.State() != node.StateActive || nd.Stats().Heartbeats <= hb {
		t.Fatalf("after the storm: %v, %+v", nd.State(), nd.Stats())
	}
	if got := w.storeStates([]*node.Node{nd}); got[registration.StateActive] != 1 {
		t.Fatalf("store %v", got)
	}
}

// TestReviewRunCancelRace: Run cancelled at every moment of its start,
// and the bus closed under running nodes, returns nil or ErrClosed and
// leaves no goroutine behind (TestMain's goleak). (Held up.)
func TestReviewRunCancelRace(t *testing.T) {
	b := newMemBus(t, 4)
	nd, err := node.New(b, info(0), node.WithClock(node.NewManualClock(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- nd.Run(ctx) }()
		time.Sleep(time.Duration(i%20) * 50 * time.Microsecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	b2 := newMemBus(t, 4)
	for i := range 20 {
		nd, err := node.New(b2, info(i), node.WithClock(node.NewManualClock(epoch)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nd.Run(context.Background()); !errors.Is(err, bus.ErrClosed) {
				t.Errorf("Run on a closed bus: %v", err)
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	_ = b2.Close()
	wg.Wait()
}

// TestReviewHostileMessages: garbage, envelopes that do not decode, events
// naming another node under this node's key, a huge value and a key-less
// event for another node, on every topic the node reads, neither crash the
// node nor move it: it stays active and heartbeats. (Held up.)
func TestReviewHostileMessages(t *testing.T) {
	b := newMemBus(t, 0)
	w := newWorld(t, b, false)
	nd := w.start(1)[0]
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	key := []byte(nd.Info().ID.String())
	other := info(1).ID
	env := func(typ string, payload string) []byte {
		m, err := bus.EnvelopeMessage("x", &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: epoch, EventType: typ, Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return m.Value
	}
	hdr := func(id uuid.UUID) string {
		return `{"entity_id":"` + id.String() + `","node_id":"` + id.String() + `","correlation_id":"` + uuid.NewString() + `","emitted_at":"2999-01-01T00:00:00Z"}`
	}
	huge := bytes.Repeat([]byte("x"), 4<<20)
	topics := []string{registration.TopicAccepted, registration.TopicBecameActive, registration.TopicAckTimedOut,
		registration.TopicLivenessExpired, registration.TopicRegistryRequest}
	types := []string{registration.EventAccepted, registration.EventBecameActive, registration.EventAckTimedOut,
		registration.EventLivenessExpired, registration.EventRegistryRequest}
	for i, topic := range topics {
		for _, v := range [][]byte{nil, []byte("{"), []byte(`{"event_type":42}`), huge,
			env(types[i], `{}`), env(types[i], `[]`), env(types[i], hdr(other)),
			env(types[i], `{"target_node_id":"`+other.String()+`","reason":"recovery"}`)} {
			for _, k := range [][]byte{key, nil} {
				if err := b.Publish(context.Background(), &bus.Message{Topic: topic, Key: k, Value: v}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	w.settle()
	hb := nd.Stats().Heartbeats
	w.advance(time.Minute, 5*time.Second)
	st := nd.Stats()
	if nd.State() != node.StateActive || st.Heartbeats <= hb || st.Introspections != 1 {
		t.Fatalf("after hostile input: %v, %+v", nd.State(), st)
	}
}

// TestReviewPausedActiveTimers: Run's doc says that while it waits a
// running node has exactly one timer armed, unless it is paused while
// active or expired: a paused active node holds none (a simulation counts
// on it).
func TestReviewPausedActiveTimers(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	nd := w.start(1)[0]
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	if n := w.clock.Timers(); n != 1 {
		t.Fatalf("an active node holds %d timers, want 1", n)
	}
	nd.Pause()
	w.waitFor("the pause handled", func() bool { return w.clock.Timers() == 0 })
	nd.Resume()
	w.waitFor("the resume handled", func() bool { return w.clock.Timers() == 1 })
}

// frozenClock's Now stands still; its timers are c's.
type frozenClock struct{ c *node.ManualClock }

func (f frozenClock) Now() time.Time                      { return epoch }
func (f frozenClock) NewTimer(d time.Duration) node.Timer { return f.c.NewTimer(d) }

// TestReviewFrozenClockRecovers: the orchestrator computes liveness
// deadlines from the heartbeats' timestamps, so a node whose clock stands
// still expires every liveness window however often it beats (the package
// documentation says so, and its ack deadlines too); it registers again
// each time and ends active.
func TestReviewFrozenClockRecovers(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	nd, err := node.New(w.bus, info(0), node.WithClock(frozenClock{w.clock}))
	if err != nil {
		t.Fatal(err)
	}
	w.run(nd)
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	w.advance(5*time.Minute, 5*time.Second)
	w.waitFor("active again", all([]*node.Node{nd}, node.StateActive))
	st := nd.Stats()
	if st.Expirations < 1 || st.Activations != st.Expirations+1 {
		t.Fatalf("a node on a clock that stands still: %+v, want expiries each followed by a registration", st)
	}
}

// TestReviewRegistryRequestWhileAwaitingAck: a registry request that
// reaches a node waiting for NodeBecameActive (its ack sent) makes it start
// a new registration (introspect fresh): the pending answers are replaced,
// so the NodeBecameActive its ack earns is ignored, and the new
// introspection reached an orchestrator awaiting the ack ("registration in
// progress", a no-op). The node stays registering until its retry timer
// (the ack timeout, 30 s) although the orchestrator has it active.
func TestReviewRegistryRequestWhileAwaitingAck(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	inf := info(0)
	w.tb.dropOnce(func(m *bus.Message) bool { // held back, published later
		return m.Topic == registration.TopicAck && string(m.Key) == inf.ID.String()
	})
	nd, err := node.New(w.bus, inf, node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.run(nd)
	w.waitFor("the ack sent", func() bool { return nd.Stats().Acks == 1 && nd.State() == node.StateAwaitingAck })
	if err := registrar.RequestIntrospection(context.Background(), w.bus, registration.RegistryRequest{Reason: registration.ReasonRecovery}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the request answered", func() bool { return nd.Stats().RegistryRequests == 1 && nd.Stats().Introspections == 2 })
	w.settle()
	w.tb.mu.Lock()
	held := w.tb.dropped[0]
	w.tb.mu.Unlock()
	if err := w.tb.Publish(context.Background(), held); err != nil { // the ack arrives
		t.Fatal(err)
	}
	w.settle()
	if got := w.storeStates([]*node.Node{nd}); got[registration.StateActive] != 1 {
		t.Fatalf("store %v, want active", got)
	}
	deadline := time.Now().Add(3 * time.Second)
	for nd.State() != node.StateActive && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := nd.State(); s != node.StateActive {
		t.Fatalf("the orchestrator has the node active; the node is %v (%+v): it ignored the NodeBecameActive its ack earned", s, nd.Stats())
	}
}

// TestReviewRedeliveredBecameActiveWhileExpired: the relay is at-least-once.
// A paused node whose registration expired (StateExpired) still counts the
// expired registration's answers as pending (pending is reset only by a new
// introspection), so a redelivered NodeBecameActive of that registration
// makes it active again. Resumed, it heartbeats for a registration the
// orchestrator expired (no-ops) instead of registering again, and never
// comes back.
func TestReviewRedeliveredBecameActiveWhileExpired(t *testing.T) {
	b := newMemBus(t, 1)
	w := newWorld(t, b, false)
	nd := w.start(1)[0]
	w.waitFor("active", all([]*node.Node{nd}, node.StateActive))
	w.settle()
	key := nd.Info().ID.String()
	var old *bus.Message
	for _, m := range b.Messages(registration.TopicBecameActive, 0) {
		if string(m.Key) == key {
			old = m
		}
	}
	if old == nil {
		t.Fatal("no NodeBecameActive")
	}
	nd.Pause()
	w.settle()
	w.advance(registration.DefaultLivenessWindow+15*time.Second, 5*time.Second)
	w.waitFor("expired", all([]*node.Node{nd}, node.StateExpired))
	events := nd.Stats().Events
	if err := b.Publish(context.Background(), &bus.Message{Topic: old.Topic, Key: old.Key, Value: old.Value, Headers: old.Headers}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the redelivery read", func() bool { return nd.Stats().Events > events })
	w.settle()
	if s := nd.State(); s != node.StateExpired {
		t.Fatalf("a redelivered NodeBecameActive of the expired registration moved the node to %v", s)
	}
}

// flakyBus fails every publish with a transient error until the bus closes.
type flakyBus struct{ *membusT }

// TestReviewCloseDuringPublishRetry: Run, retrying an introspection the bus
// refuses, returns bus.ErrClosed promptly when the bus closes. (Held up.)
func TestReviewCloseDuringPublishRetry(t *testing.T) {
	mb := newMemBus(t, 2)
	nd, err := node.New(flakyBus{&membusT{mb}}, info(0), node.WithClock(node.NewManualClock(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- nd.Run(context.Background()) }()
	time.Sleep(350 * time.Millisecond) // a few retries
	_ = mb.Close()
	select {
	case err := <-done:
		if !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Run: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the bus closed")
	}
}

type membusT struct{ b *membus.Bus }

func (m *membusT) Publish(ctx context.Context, msgs ...*bus.Message) error {
	if err := m.b.Publish(ctx); errors.Is(err, bus.ErrClosed) {
		return err
	}
	return errors.New("transient: broker unavailable")
}

func (m *membusT) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	return m.Publish(ctx)
}

func (m *membusT) Subscribe(ctx context.Context, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) error {
	return m.b.Subscribe(ctx, group, topics, h, opts...)
}

func (m *membusT) Close() error { return m.b.Close() }

func (m *membusT) PartitionCount(ctx context.Context, topic string) (int32, error) {
	return m.b.PartitionCount(ctx, topic)
}

func (m *membusT) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	return m.b.ReadPartition(ctx, topic, partition, h, opts...)
}
