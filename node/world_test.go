package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// epoch is where the tests' simulated time starts.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testBus wraps a bus: it counts the messages published to the
// runtime's input topics (so that a test can wait until the runtime handled
// them all), can drop messages, and passes partition reads through when
// the bus has them (noReader hides them, for the fallback path).
type testBus struct {
	bus.EventBus
	inputs map[string]bool
	sent   atomic.Int64 // input messages published

	mu      sync.Mutex
	drop    func(*bus.Message) bool
	dropped []*bus.Message
}

func newTestBus(b bus.EventBus) *testBus {
	in := map[string]bool{}
	for _, t := range registration.DefaultTopics().Inputs() {
		in[t] = true
	}
	return &testBus{EventBus: b, inputs: in}
}

// dropOnce drops the first message f selects.
func (b *testBus) dropOnce(f func(*bus.Message) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	done := false
	b.drop = func(m *bus.Message) bool {
		if !done && f(m) {
			done = true
			return true
		}
		return false
	}
}

func (b *testBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	kept := msgs[:0:0]
	b.mu.Lock()
	for _, m := range msgs {
		if b.drop != nil && b.drop(m) {
			b.dropped = append(b.dropped, m)
			continue
		}
		kept = append(kept, m)
	}
	b.mu.Unlock()
	if len(kept) == 0 {
		return nil
	}
	if err := b.EventBus.Publish(ctx, kept...); err != nil {
		return err
	}
	for _, m := range kept {
		if b.inputs[m.Topic] {
			b.sent.Add(1)
		}
	}
	return nil
}

func (b *testBus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}

// readerBus is a testBus that also reads partitions.
type readerBus struct {
	*testBus
	pr bus.PartitionReader
}

func (b readerBus) PartitionCount(ctx context.Context, topic string) (int32, error) {
	return b.pr.PartitionCount(ctx, topic)
}

func (b readerBus) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	return b.pr.ReadPartition(ctx, topic, partition, h, opts...)
}

// world is an orchestrator (the registration Runtime on an in-memory store
// and registry, its sweeper every few milliseconds of real time as of the
// simulated clock) and nodes, on one bus and one ManualClock.
type world struct {
	t        testing.TB
	clock    *node.ManualClock
	tb       *testBus
	bus      bus.EventBus // tb, with partition reads when the bus has them
	store    *memory.Store
	registry *memory.Registry // the Consul effects' registry
	rt       *registrar.RegistrationRuntime
	ctx      context.Context
	nodes    []*node.Node
	cancel   []context.CancelFunc
	errs     chan error
	wg       sync.WaitGroup
}

func newWorld(t testing.TB, b bus.EventBus, noReader bool) *world {
	t.Helper()
	clock := node.NewManualClock(epoch)
	tb := newTestBus(b)
	w := &world{t: t, clock: clock, tb: tb, bus: tb, errs: make(chan error, 16)}
	if pr, ok := b.(bus.PartitionReader); ok && !noReader {
		w.bus = readerBus{testBus: tb, pr: pr}
	}
	w.store = memory.NewStore(memory.StoreConfig{})
	registry := memory.NewRegistry(memory.RegistryConfig{})
	w.registry = registry
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, w.store, registry); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(nil, tb, w.store, exec,
		registrar.RegistrationConfig{SweepInterval: 5 * time.Millisecond},
		registrar.WithClock(clock.Now), registrar.WithRetryBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w.rt = rt
	ctx, cancel := context.WithCancel(context.Background())
	w.ctx = ctx
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		w.stopNodes()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runtime: %v", err)
		}
	})
	return w
}

// info returns the info of simulated node i.
func info(i int) node.Info {
	return node.Info{
		ID:           uuid.New(),
		Type:         registration.NodeTypes[i%4],
		Version:      bus.Version{Major: 1, Minor: 4, Patch: 2, Prerelease: "rc.1", Build: "build.5"},
		Capabilities: []byte(`{"read":true}`),
		Endpoints:    map[string]string{"health": fmt.Sprintf("http://10.0.%d.%d:8080/health", i/250, i%250+1)},
	}
}

// start creates and runs n nodes.
func (w *world) start(n int, opts ...node.Option) []*node.Node {
	w.t.Helper()
	var out []*node.Node
	for i := range n {
		nd, err := node.New(w.bus, info(len(w.nodes)+i), append([]node.Option{node.WithClock(w.clock)}, opts...)...)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, nd)
	}
	for _, nd := range out {
		w.run(nd)
	}
	return out
}

// run runs nd until the test ends or stop is called.
func (w *world) run(nd *node.Node) {
	ctx, cancel := context.WithCancel(w.ctx)
	w.nodes = append(w.nodes, nd)
	w.cancel = append(w.cancel, cancel)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := nd.Run(ctx); err != nil {
			select {
			case w.errs <- fmt.Errorf("node %s: %w", nd.Info().ID, err):
			default:
			}
		}
	}()
}

func (w *world) stopNodes() {
	for _, c := range w.cancel {
		c()
	}
	w.wg.Wait()
	select {
	case err := <-w.errs:
		w.t.Error(err)
	default:
	}
}

// waitFor polls cond until it holds, failing the test after a minute of
// real time.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case err := <-w.errs:
			w.t.Fatal(err)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s (runtime %+v)", what, w.rt.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// armed is how many timers the running nodes hold when all are idle.
func (w *world) armed() int {
	n := 0
	for _, nd := range w.nodes {
		switch s := nd.State(); {
		case s == node.StateRegistering || s == node.StateAwaitingAck:
			n++
		case s == node.StateActive && !nd.Paused():
			n++
		}
	}
	return n
}

// settle waits until every node is idle (its timer armed again) and the
// runtime handled every input published so far.
func (w *world) settle() {
	w.t.Helper()
	w.waitFor("the nodes and the runtime to settle", func() bool {
		st := w.rt.Stats()
		return w.clock.Timers() == w.armed() && st.Handled+st.DeadLettered >= w.tb.sent.Load()
	})
}

// advance moves the clock in steps, settling after each.
func (w *world) advance(total, step time.Duration) {
	w.t.Helper()
	for d := time.Duration(0); d < total; d += step {
		w.clock.Advance(step)
		w.settle()
	}
}

// states counts the nodes by State.
func states(nodes []*node.Node) map[node.State]int {
	m := map[node.State]int{}
	for _, nd := range nodes {
		m[nd.State()]++
	}
	return m
}

func all(nodes []*node.Node, s node.State) func() bool {
	return func() bool { return states(nodes)[s] == len(nodes) }
}

// storeStates counts the nodes' projections by state.
func (w *world) storeStates(nodes []*node.Node) map[registration.State]int {
	m := map[registration.State]int{}
	for _, nd := range nodes {
		p, err := w.store.Load(context.Background(), nd.Info().ID)
		if err != nil {
			w.t.Fatal(err)
		}
		if p == nil {
			m[registration.StateNone]++
			continue
		}
		m[p.State]++
	}
	return m
}

// lifecycle is the test both buses run: n nodes become active; a fifth
// pause past the liveness window and expire; resumed, they register again;
// a registry request makes every live node introspect once more.
func lifecycle(t *testing.T, w *world, n int) {
	nodes := w.start(n)
	w.waitFor("every node active", all(nodes, node.StateActive))
	if got := w.storeStates(nodes); got[registration.StateActive] != n {
		t.Fatalf("store: %v, want %d active", got, n)
	}
	for _, nd := range nodes {
		if nd.Info().Version.String() != "1.4.2-rc.1+build.5" {
			t.Fatalf("version %q", nd.Info().Version)
		}
		p, _ := w.store.Load(context.Background(), nd.Info().ID)
		if p.NodeVersion != "1.4.2-rc.1+build.5" {
			t.Fatalf("stored version %q, want it whole", p.NodeVersion)
		}
	}
	w.settle()

	paused, live := nodes[:n/5], nodes[n/5:]
	for _, nd := range paused {
		nd.Pause()
	}
	w.settle()
	// Past the liveness window (90 s) in steps shorter than the heartbeat
	// interval (20 s), so the live nodes' heartbeats are handled in time.
	w.advance(registration.DefaultLivenessWindow+15*time.Second, 5*time.Second)
	w.waitFor("the paused nodes expired", all(paused, node.StateExpired))
	if got := w.storeStates(paused); got[registration.StateLivenessExpired] != len(paused) {
		t.Fatalf("store, paused nodes: %v, want %d liveness_expired", got, len(paused))
	}
	if got := states(live); got[node.StateActive] != len(live) {
		t.Fatalf("live nodes: %v, want every one active", got)
	}
	for _, nd := range live {
		if st := nd.Stats(); st.Expirations != 0 || st.Activations != 1 || st.Heartbeats < 4 {
			t.Fatalf("live node %s: %+v, want 1 activation, no expiry, 4 heartbeats or more", nd.Info().ID, st)
		}
	}
	for _, nd := range paused {
		nd.Resume()
	}
	w.waitFor("the resumed nodes active again", all(paused, node.StateActive))
	for _, nd := range paused {
		if st := nd.Stats(); st.Expirations != 1 || st.Activations != 2 {
			t.Fatalf("resumed node %s: %+v, want 1 expiry and 2 activations", nd.Info().ID, st)
		}
	}
	if got := w.storeStates(nodes); got[registration.StateActive] != n {
		t.Fatalf("store after resume: %v, want %d active", got, n)
	}
	w.settle()

	before := map[uuid.UUID]int64{}
	for _, nd := range nodes {
		before[nd.Info().ID] = nd.Stats().Introspections
	}
	if err := registrar.RequestIntrospection(context.Background(), w.bus, registration.RegistryRequest{Reason: registration.ReasonRecovery}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("every node to answer the registry request", func() bool {
		for _, nd := range nodes {
			if st := nd.Stats(); st.RegistryRequests != 1 || st.Introspections == before[nd.Info().ID] {
				return false
			}
		}
		return true
	})
	// Every refresh is answered (NodeBecameActive) before the counts are
	// final.
	w.settle()
	w.clock.Advance(time.Second)
	w.settle()
	for _, nd := range nodes {
		st := nd.Stats()
		if got := st.Introspections - before[nd.Info().ID]; got != 1 {
			t.Fatalf("node %s introspected %d times after the registry request, want 1", nd.Info().ID, got)
		}
		if nd.State() != node.StateActive {
			t.Fatalf("node %s is %v after the registry request", nd.Info().ID, nd.State())
		}
	}
}
