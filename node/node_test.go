package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestMain fails the package when a goroutine outlives the tests; sarama's
// process-wide metrics ticker is the one allowed to.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func newMemBus(t testing.TB, partitions int32) *membus.Bus {
	t.Helper()
	b, err := membus.New(membus.Config{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestLifecycleMemory: 1,000 nodes through package node against the
// registration Runtime on the memory bus.
func TestLifecycleMemory(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	w := newWorld(t, newMemBus(t, 0), false)
	lifecycle(t, w, n)
}

// TestDroppedAck: an ack lost on its way ends in an ack timeout, and the
// node registers again.
func TestDroppedAck(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	victim := uuid.New()
	w.tb.dropOnce(func(m *bus.Message) bool {
		return m.Topic == registration.TopicAck && string(m.Key) == victim.String()
	})
	inf := info(0)
	inf.ID = victim
	nd, err := node.New(w.bus, inf, node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	others := w.start(10)
	w.run(nd)
	w.waitFor("the others active", all(others, node.StateActive))
	w.waitFor("the victim awaiting its activation", func() bool { return nd.State() == node.StateAwaitingAck })
	w.settle()
	if p, _ := w.store.Load(context.Background(), victim); p == nil || p.State != registration.StateAwaitingAck {
		t.Fatalf("store: %+v, want awaiting_ack", p)
	}
	// Past the ack timeout (30 s): the sweeper's check times it out.
	w.advance(registration.DefaultAckTimeout+5*time.Second, 5*time.Second)
	w.waitFor("the victim active", func() bool { return nd.State() == node.StateActive })
	st := nd.Stats()
	if st.AckTimeouts != 1 || st.Activations != 1 || st.Acks != 2 || st.Introspections != 2 {
		t.Fatalf("victim stats %+v, want 1 ack timeout, 2 introspections, 2 acks, 1 activation", st)
	}
	p, _ := w.store.Load(context.Background(), victim)
	if p.State != registration.StateActive || p.Generation != 2 {
		t.Fatalf("store: state %s generation %d, want active in generation 2", p.State, p.Generation)
	}
	if len(w.tb.dropped) != 1 {
		t.Fatalf("%d messages dropped, want the one ack", len(w.tb.dropped))
	}
	for _, o := range others {
		if st := o.Stats(); st.AckTimeouts != 0 || st.Activations != 1 {
			t.Fatalf("bystander %+v", st)
		}
	}
}

// TestPartitionScopedReads: a node reads, of each event topic, only the
// partition its key maps to: once every node reads, the messages a node is
// handed are exactly those published to its partitions, however many other
// nodes' events the topics carry.
func TestPartitionScopedReads(t *testing.T) {
	const partitions = 8
	b := newMemBus(t, partitions)
	w := newWorld(t, b, false)
	nodes := w.start(200)
	w.waitFor("every node active", all(nodes, node.StateActive))
	w.settle()
	eventTopics := []string{registration.TopicAccepted, registration.TopicBecameActive,
		registration.TopicAckTimedOut, registration.TopicLivenessExpired}
	// offsets returns the next offset of each partition of the event
	// topics, by partition, and of the registry request topic, summed.
	offsets := func() (byPart [partitions]int64, total, reqs int64) {
		for _, topic := range eventTopics {
			for p := range int32(partitions) {
				_, next := b.Offsets(topic, p)
				byPart[p] += next
				total += next
			}
		}
		for p := range b.Partitions(registration.TopicRegistryRequest) {
			_, next := b.Offsets(registration.TopicRegistryRequest, p)
			reqs += next
		}
		return byPart, total, reqs
	}
	// The readers run behind the publishers: count once they stopped.
	quiet := func() {
		last := int64(-1)
		for {
			n := totalRead(nodes)
			if n == last {
				return
			}
			last = n
			time.Sleep(50 * time.Millisecond)
		}
	}
	quiet()
	before := map[uuid.UUID]int64{}
	for _, nd := range nodes {
		before[nd.Info().ID] = nd.Stats().MessagesRead
	}
	part0, total0, reqs0 := offsets()
	// Traffic of every node: a registry request makes each introspect,
	// and the orchestrator answers each with NodeBecameActive.
	if err := registrar.RequestIntrospection(context.Background(), w.bus, registration.RegistryRequest{Reason: registration.ReasonRefresh}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("every node answered", func() bool {
		// Four events per registration, one per refresh.
		return w.rt.Stats().EventsPublished >= int64(5*len(nodes))
	})
	w.settle()
	quiet()
	part1, total1, reqs1 := offsets()
	if total1-total0 != int64(len(nodes)) || reqs1-reqs0 != partitions {
		t.Fatalf("the request produced %d events and %d copies, want %d and one per partition (%d)",
			total1-total0, reqs1-reqs0, len(nodes), partitions)
	}
	var readSum int64
	for _, nd := range nodes {
		readSum += nd.Stats().MessagesRead - before[nd.Info().ID] - 1
	}
	t.Logf("%d events of %d nodes on %d partitions: a node read %.1f of them on average (%.3f per event; 1/%d = %.3f)",
		total1-total0, len(nodes), partitions, float64(readSum)/float64(len(nodes)),
		float64(readSum)/float64(len(nodes))/float64(total1-total0), partitions, 1.0/partitions)
	for _, nd := range nodes {
		p := bus.KeyPartition([]byte(nd.Info().ID.String()), partitions)
		own := part1[p] - part0[p]
		got := nd.Stats().MessagesRead - before[nd.Info().ID]
		if got != own+1 {
			t.Fatalf("node %s read %d messages; its partition %d received %d, and 1 request: it read other partitions",
				nd.Info().ID, got, p, own)
		}
		if own*3 > total1-total0 {
			t.Fatalf("partition %d received %d of %d events: keys do not spread", p, own, total1-total0)
		}
	}
}

// TestRestartUnderSameID: a node that restarts under its id while its
// registration is active (it stopped without announcing its shutdown) is
// active again at once: the orchestrator answers its introspection with
// NodeBecameActive.
func TestRestartUnderSameID(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	inf := info(1)
	first, err := node.New(w.bus, inf, node.WithClock(w.clock), node.WithoutShutdownAnnouncement())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	if err := first.WaitActive(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	if s := first.State(); s != node.StateStopped {
		t.Fatalf("state after Run returned: %v", s)
	}
	w.clock.Advance(10 * time.Second)
	second, err := node.New(w.bus, inf, node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.run(second)
	w.waitFor("the restarted node active", func() bool { return second.State() == node.StateActive })
	if st := second.Stats(); st.Introspections != 1 || st.Acks != 0 {
		t.Fatalf("restarted node %+v: want active on one introspection, without an ack", st)
	}
	p, _ := w.store.Load(context.Background(), inf.ID)
	if p.Generation != 1 || p.State != registration.StateActive {
		t.Fatalf("store: generation %d state %s, want the same registration, active", p.Generation, p.State)
	}
}

// TestFallbackGroup: on a bus without partition reads the node reads
// through a consumer group of its own, and skips what came before it.
func TestFallbackGroup(t *testing.T) {
	b := newMemBus(t, 0)
	w := newWorld(t, b, true)
	if _, ok := w.bus.(bus.PartitionReader); ok {
		t.Fatal("the test bus reads partitions")
	}
	early := w.start(5)
	w.waitFor("the early nodes active", all(early, node.StateActive))
	late := w.start(5)
	w.waitFor("the late nodes active", all(late, node.StateActive))
	for _, nd := range late {
		if st := nd.Stats(); st.Events != 2 {
			t.Fatalf("late node: %+v: want only its own 2 events", st)
		}
	}
}

func TestNewValidates(t *testing.T) {
	b := newMemBus(t, 0)
	good := info(0)
	for _, tc := range []struct {
		name string
		edit func(*node.Info)
		opts []node.Option
		want string
	}{
		{"nil id", func(i *node.Info) { i.ID = uuid.Nil }, nil, "nil UUID"},
		{"bad type", func(i *node.Info) { i.Type = "gateway" }, nil, "node_type"},
		{"bad endpoint", func(i *node.Info) { i.Endpoints = map[string]string{"health": "10.0.0.1:80"} }, nil, "endpoints.health"},
		{"bad prerelease", func(i *node.Info) { i.Version.Prerelease = "01" }, nil, "prerelease"},
		{"capabilities not an object", func(i *node.Info) { i.Capabilities = []byte(`[1]`) }, nil, "capabilities"},
		{"jitter", nil, []node.Option{node.WithHeartbeat(time.Second, 1)}, "jitter"},
		{"interval too long", nil, []node.Option{node.WithHeartbeat(time.Minute, 0)}, "would expire between heartbeats"},
		{"nil contract", nil, []node.Option{node.WithContract(nil)}, "WithContract(nil)"},
		{"nil clock", nil, []node.Option{node.WithClock(nil)}, "WithClock(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inf := good
			if tc.edit != nil {
				tc.edit(&inf)
			}
			_, err := node.New(b, inf, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if _, err := node.New(nil, good); err == nil {
		t.Fatal("New(nil bus) succeeded")
	}
	small, err := membus.New(membus.Config{MaxMessageBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	big := good
	big.Capabilities = json.RawMessage(`{"blob":"` + strings.Repeat("x", 1000) + `"}`)
	if _, err := node.New(small, big); !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("New with an introspection larger than the bus takes: %v", err)
	}
	// The contract's durations are the defaults: a heartbeat of 55 s (up
	// to 60.5 s with its jitter) is refused under the default contract
	// (liveness 60 s / 90 s), taken under one whose liveness interval and
	// window are 10 minutes.
	c := contract.Default()
	c.Timeouts.LivenessInterval = contract.Duration(10 * time.Minute)
	c.Timeouts.LivenessWindow = contract.Duration(10 * time.Minute)
	if _, err := node.New(b, good, node.WithHeartbeat(55*time.Second, 0.1)); err == nil {
		t.Fatal("a 55 s heartbeat under a 60 s liveness interval was taken")
	}
	if _, err := node.New(b, good, node.WithContract(c), node.WithHeartbeat(55*time.Second, 0.1)); err != nil {
		t.Fatalf("a 55 s heartbeat under a 10 min liveness window: %v", err)
	}
}

// TestRunLifecycle: Run refuses a second concurrent Run, returns nil when
// ctx ends and bus.ErrClosed when the bus closes.
func TestRunLifecycle(t *testing.T) {
	b := newMemBus(t, 0)
	nd, err := node.New(b, info(0), node.WithClock(node.NewManualClock(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for nd.State() != node.StateRegistering {
		if time.Now().After(deadline) {
			t.Fatal("node never registering")
		}
		time.Sleep(time.Millisecond)
	}
	if err := nd.Run(ctx); !errors.Is(err, node.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
	waitCtx, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	if err := nd.WaitActive(waitCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitActive without an orchestrator: %v", err)
	}
	stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	// Run again, then close the bus under it.
	go func() { done <- nd.Run(context.Background()) }()
	for nd.State() != node.StateRegistering {
		time.Sleep(time.Millisecond)
	}
	_ = b.Close()
	if err := <-done; !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Run after the bus closed: %v, want ErrClosed", err)
	}
}

// TestTimestampsMove: on a clock that never moves, every message the node
// sends is still later than the one before and than the events it read,
// so none is stale for the orchestrator.
func TestTimestampsMove(t *testing.T) {
	b := newMemBus(t, 1)
	w := newWorld(t, b, false)
	nodes := w.start(3, node.WithHeartbeat(time.Second, 0))
	w.waitFor("active", all(nodes, node.StateActive))
	for range 5 {
		w.clock.Advance(time.Second)
		w.settle()
	}
	for _, nd := range nodes {
		if st := nd.Stats(); st.Heartbeats != 5 {
			t.Fatalf("%+v, want 5 heartbeats", st)
		}
	}
	var last time.Time
	key := []byte(nodes[0].Info().ID.String())
	for _, topic := range []string{registration.TopicIntrospection, registration.TopicAck, registration.TopicHeartbeat} {
		for _, m := range b.Messages(topic, 0) {
			if !bytes.Equal(m.Key, key) {
				continue
			}
			env, err := bus.DecodeEnvelope(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !env.EnvelopeTimestamp.After(last) {
				t.Fatalf("%s stamped %v, not after %v", topic, env.EnvelopeTimestamp, last)
			}
			last = env.EnvelopeTimestamp
		}
	}
	if st := w.rt.Stats(); st.NoOps != 0 {
		t.Fatalf("runtime: %d no-ops, want none (stale messages?)", st.NoOps)
	}
}

func TestManualClock(t *testing.T) {
	c := node.NewManualClock(epoch)
	a, b2, stopped := c.NewTimer(3*time.Second), c.NewTimer(time.Second), c.NewTimer(2*time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true once, then false")
	}
	if c.Timers() != 2 {
		t.Fatalf("Timers %d, want 2", c.Timers())
	}
	if next, ok := c.Next(); !ok || !next.Equal(epoch.Add(time.Second)) {
		t.Fatalf("Next %v %v", next, ok)
	}
	c.Advance(1500 * time.Millisecond)
	select {
	case at := <-b2.C():
		if !at.Equal(epoch.Add(time.Second)) {
			t.Fatalf("fired with %v", at)
		}
	default:
		t.Fatal("the 1 s timer did not fire at 1.5 s")
	}
	select {
	case <-a.C():
		t.Fatal("the 3 s timer fired at 1.5 s")
	default:
	}
	c.Set(epoch) // backwards: ignored
	if !c.Now().Equal(epoch.Add(1500 * time.Millisecond)) {
		t.Fatalf("Set moved the clock back to %v", c.Now())
	}
	c.Advance(2 * time.Second)
	<-a.C()
	if a.Stop() || c.Timers() != 0 {
		t.Fatal("a fired timer is still armed")
	}
	now := c.NewTimer(0)
	<-now.C() // fires at once
}

// flakyCount fails the first PartitionCount calls, as a bus whose brokers
// are not up yet does.
type flakyCount struct {
	readerBus
	fails atomic.Int32
}

func (b *flakyCount) PartitionCount(ctx context.Context, topic string) (int32, error) {
	if b.fails.Add(-1) >= 0 {
		return 0, errors.New("metadata: no broker reachable")
	}
	return b.readerBus.PartitionCount(ctx, topic)
}

// TestRunRetriesStart: a node whose bus cannot tell the topics'
// partitions yet tries again, and registers once it can.
func TestRunRetriesStart(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	fb := &flakyCount{readerBus: w.bus.(readerBus)}
	fb.fails.Store(3)
	nd, err := node.New(fb, info(0), node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.run(nd)
	w.waitFor("the node active", func() bool { return nd.State() == node.StateActive })
	if fb.fails.Load() >= 0 {
		t.Fatalf("PartitionCount failures left: %d", fb.fails.Load())
	}
}
