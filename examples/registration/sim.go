package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// simEpoch is where simulated time starts.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simNode is one simulated node: a node.Node, the real client, on the
// simulated clock.
type simNode struct {
	*node.Node
	expires bool
}

// summary is the -json output.
type summary struct {
	Nodes           int            `json:"nodes"`
	States          map[string]int `json:"states"`
	EventsPublished int64          `json:"events_published"`
	IntentsExecuted int64          `json:"intents_executed"`
	DeadLettered    int64          `json:"dead_lettered"`
	// Discovered counts the nodes a discovery client on the snapshot
	// topic sees, each as the store holds it.
	Discovered int   `json:"discovered"`
	ElapsedMS  int64 `json:"elapsed_ms"`
}

type simulation struct {
	o      options
	w      *world
	clock  *node.ManualClock
	rng    *rand.Rand
	bus    *countingBus // what the nodes publish through
	nodes  []simNode
	topics registration.Topics
	stderr io.Writer
	tty    bool
	phase  atomic.Value // string
	// live is the discovery client that reads the snapshot topic through
	// a consumer group from the start, on the memory bus; nil on Kafka.
	live *liveDiscovery
	// swept counts the timeout checks the sweeper published; with the
	// inputs the nodes and the malformed messages published, they are the
	// messages the runtime must handle.
	swept int64
}

func runSimulation(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	start := time.Now()
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s, err := newSimulation(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.w.close()
	if s.w.tel == nil {
		if err := s.execute(ctx, true); err != nil {
			return err
		}
		if err := s.writeHeapProfile(); err != nil {
			return err
		}
		return s.report(ctx, stdout, time.Since(start))
	}
	// -http: the runtime and the server run until interrupted, past the
	// simulation and its timeout, so that an operator can look.
	stopHTTP, err := s.w.tel.serve(outer, o.httpAddr, s.w, stderr)
	if err != nil {
		return err
	}
	stopRuntime := s.w.start(outer)
	defer func() { err = errors.Join(err, stopRuntime(), stopHTTP()) }()
	if err := s.execute(ctx, false); err != nil {
		return err
	}
	if err := s.writeHeapProfile(); err != nil {
		return err
	}
	if err := s.report(ctx, stdout, time.Since(start)); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "the simulation is done; the runtime and -http keep serving until interrupted")
	<-outer.Done()
	return nil
}

// execute runs the nodes and the simulation (and, with runRuntime, the
// runtime), then stops the nodes (and the runtime).
func (s *simulation) execute(ctx context.Context, runRuntime bool) error {
	stopRuntime := func() error { return nil }
	if runRuntime {
		stopRuntime = s.w.start(ctx)
	}
	nodeCtx, stopNodes := context.WithCancel(ctx)
	var wg sync.WaitGroup
	nodeErrs := make(chan error, 1)
	for _, nd := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nd.Run(nodeCtx); err != nil {
				select {
				case nodeErrs <- fmt.Errorf("node %s: %w", nd.Info().ID, err):
				default:
				}
			}
		}()
	}
	runErr := s.run(ctx, nodeErrs)
	stopNodes()
	wg.Wait()
	if runErr == nil {
		select {
		case runErr = <-nodeErrs:
		default:
		}
	}
	if err := stopRuntime(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func newSimulation(ctx context.Context, o options, stderr io.Writer) (*simulation, error) {
	clock := node.NewManualClock(simEpoch)
	var logOut io.Writer
	if o.verbose {
		logOut = stderr
	}
	w, err := newWorld(ctx, o.worldConfig(clock.Now, logOut))
	if err != nil {
		return nil, err
	}
	s := &simulation{
		o: o, w: w, clock: clock, stderr: stderr,
		rng:    rand.New(rand.NewPCG(uint64(o.seed), 0x5eed)),
		topics: registrarTopics(w),
	}
	s.bus = newCountingBus(w.bus, s.topics.Inputs())
	if f, ok := stderr.(*os.File); ok && !o.jsonOut {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.tty = true
		}
	}
	// The nodes read their events through one read per topic partition,
	// shared: with reads of their own, every node would be handed every
	// message of its partitions (n²/partitions in all) and hold a goroutine
	// per topic.
	shared := node.WithSharedReads(nil)
	if pr, ok := w.bus.(bus.PartitionReader); ok {
		sr := node.NewSharedReads(pr, nil)
		w.closers = append(w.closers, sr.Close)
		shared = node.WithSharedReads(sr)
	}
	if err := s.startDiscovery(); err != nil {
		w.close()
		return nil, err
	}
	nExpire := int(math.Round(o.expire * float64(o.nodes)))
	types := registration.NodeTypes[:4]
	for i := range o.nodes {
		nd, err := node.New(s.bus.withReads(), node.Info{
			ID: s.newID(), Type: types[i%len(types)], Version: bus.Version{Major: 1, Minor: 4, Patch: 2},
			Capabilities: json.RawMessage(`{"postgres":false,"read":true,"write":true}`),
			Endpoints:    map[string]string{"health": fmt.Sprintf("http://10.0.%d.%d:8080/health", i/250, i%250+1)},
		}, node.WithContract(w.contract), node.WithClock(clock), node.WithSourceTool("simulated-node"), node.WithHeartbeat(0, o.jitter),
			node.WithActiveOperations(func() int { return i % 8 }),
			// The summary reports the registry as the simulated nodes
			// leave it when the simulation stops them: kept, not removed
			// by shutdown announcements.
			node.WithoutShutdownAnnouncement(), shared)
		if err != nil {
			w.close()
			return nil, err
		}
		s.nodes = append(s.nodes, simNode{Node: nd, expires: i < nExpire})
	}
	return s, nil
}

// registrarTopics returns the topics the runtime's reducer uses.
func registrarTopics(w *world) registration.Topics {
	r, err := registration.New(registrar.ReducerConfig(w.contract))
	if err != nil {
		return registration.DefaultTopics()
	}
	return r.Config().Topics
}

// heartbeatStep is how far the simulated clock moves at a time during the
// heartbeat phase: well inside the nodes' heartbeat interval (20 s), so
// each round's heartbeats are handled before a deadline could pass.
const heartbeatStep = 5 * time.Second

func (s *simulation) run(ctx context.Context, nodeErrs <-chan error) error {
	done := make(chan struct{})
	defer close(done)
	s.phase.Store("start")
	if !s.o.jsonOut {
		go s.progress(ctx, done)
	}
	n := len(s.nodes)
	nExpire := 0
	for _, nd := range s.nodes {
		if nd.expires {
			nExpire++
		}
	}

	// Each node introspects, waits for its Accepted event, acks, and
	// becomes active on NodeBecameActive: package node runs the protocol.
	s.phase.Store("registration")
	if err := s.publishMalformed(ctx); err != nil {
		return err
	}
	if err := s.waitActive(ctx, nodeErrs); err != nil {
		return err
	}
	if err := s.settle(ctx, nodeErrs); err != nil {
		return err
	}
	if err := s.expect(ctx, map[registration.State]int{registration.StateActive: n}); err != nil {
		return err
	}

	// Heartbeats: the expiring nodes heartbeat once and then pause; the
	// others go on until the paused ones' liveness window passed. The
	// clock moves in steps; after each, the nodes react, the runtime
	// handles what they sent, and the sweeper runs as of the simulated
	// time.
	window := registrar.ReducerConfig(s.w.contract).LivenessWindow
	if window == 0 {
		window = registration.DefaultLivenessWindow
	}
	// The run lasts until the last node to pause has been silent for the
	// window and two steps more: a node whose first heartbeat came late
	// (jitter, a loaded machine) pauses late, and its deadline is later.
	total := 25*time.Second + window + 2*heartbeatStep
	for elapsed := time.Duration(0); elapsed < total; {
		elapsed += heartbeatStep
		s.phase.Store(fmt.Sprintf("heartbeats t+%s", elapsed))
		s.clock.Advance(heartbeatStep)
		if err := s.settle(ctx, nodeErrs); err != nil {
			return err
		}
		for _, nd := range s.nodes {
			if nd.expires && !nd.Paused() && nd.Stats().Heartbeats >= 1 {
				nd.Pause()
				total = max(total, elapsed+window+2*heartbeatStep)
			}
		}
	}
	s.phase.Store("done")
	return s.expect(ctx, map[registration.State]int{registration.StateActive: n - nExpire, registration.StateLivenessExpired: nExpire})
}

// waitActive waits until every node knows it is active.
func (s *simulation) waitActive(ctx context.Context, nodeErrs <-chan error) error {
	for _, nd := range s.nodes {
		select {
		case err := <-nodeErrs:
			return err
		default:
		}
		if err := nd.WaitActive(ctx); err != nil {
			return fmt.Errorf("waiting for node %s to become active (%v): %w", nd.Info().ID, nd.State(), err)
		}
	}
	return nil
}

// armed is the number of timers the nodes hold when every one is idle: one
// each, except a paused node that is active or expired (it waits for
// nothing).
func (s *simulation) armed() int {
	n := 0
	for _, nd := range s.nodes {
		switch st := nd.State(); st {
		case node.StateRegistering, node.StateAwaitingAck:
			n++
		case node.StateActive:
			if !nd.Paused() {
				n++
			}
		}
	}
	return n
}

// settle waits until every node is idle and the runtime handled every
// message sent so far, sweeps as of the simulated time, and repeats until
// a sweep finds nothing.
func (s *simulation) settle(ctx context.Context, nodeErrs <-chan error) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		for {
			st := s.w.rt.Stats()
			sent := s.bus.sent.Load() + s.swept
			if st.Handled+st.DeadLettered >= sent && s.clock.Timers() == s.armed() {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for the nodes and the runtime (%d of %d messages handled): %w", st.Handled+st.DeadLettered, sent, ctx.Err())
			case err := <-nodeErrs:
				return err
			case <-t.C:
			}
		}
		n, err := s.w.sweeper.Sweep(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		s.swept += int64(n)
	}
}

// expect checks the counts by state once everything settled.
func (s *simulation) expect(ctx context.Context, want map[registration.State]int) error {
	got, err := s.w.store.CountByState(ctx)
	if err != nil {
		return err
	}
	for state, n := range want {
		if got[state] != n {
			return fmt.Errorf("after %s: %d nodes %s, want %d (all states: %v)", s.phase.Load(), got[state], state, n, got)
		}
	}
	return nil
}

func (s *simulation) newID() uuid.UUID {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b)
}

// publishMalformed publishes o.malformed messages that are each wrong in a
// different way; every one is dead-lettered with a reason naming the field.
func (s *simulation) publishMalformed(ctx context.Context) error {
	now := s.clock.Now().Format(time.RFC3339)
	id := func() string { return s.newID().String() }
	bad := []struct{ topic, value string }{
		{s.topics.Introspection, `{"envelope_id": "` + id() + `", "payload": {`},
		{s.topics.Heartbeat, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","event_type":"NodeRebooted","payload":{}}`},
		{s.topics.Ack, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","payload":{"node_id":"not-a-uuid","correlation_id":"` + id() + `","timestamp":"` + now + `"}}`},
		{s.topics.Heartbeat, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","payload":{"node_id":"` + id() + `","uptime_seconds":3,"timestamp":"2026-01-01T00:00:00"}}`},
		{s.topics.Heartbeat, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","payload":{"node_id":"` + id() + `","uptime_seconds":-1,"timestamp":"` + now + `"}}`},
	}
	for i := range s.o.malformed {
		b := bad[i%len(bad)]
		if err := s.bus.Publish(ctx, &bus.Message{Topic: b.topic, Value: []byte(b.value)}); err != nil {
			return err
		}
	}
	return nil
}

func (s *simulation) progress(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-done:
			if s.tty {
				fmt.Fprintf(s.stderr, "\r%s\n", s.progressLine(ctx))
			}
			return
		case <-t.C:
		}
		phase, _ := s.phase.Load().(string)
		if s.tty {
			fmt.Fprintf(s.stderr, "\r%s", s.progressLine(ctx))
		} else if phase != last {
			last = phase
			fmt.Fprintln(s.stderr, s.progressLine(ctx))
		}
	}
}

func (s *simulation) progressLine(ctx context.Context) string {
	c, _ := s.w.store.CountByState(ctx)
	st := s.w.rt.Stats()
	phase, _ := s.phase.Load().(string)
	return fmt.Sprintf("[t+%-6s] %-22s awaiting_ack %-5d active %-5d liveness_expired %-5d events %-6d intents %-6d dead-lettered %d",
		since(s.clock), phase, c[registration.StateAwaitingAck], c[registration.StateActive],
		c[registration.StateLivenessExpired], st.EventsPublished, st.IntentsExecuted, st.DeadLettered)
}

func (s *simulation) report(ctx context.Context, stdout io.Writer, elapsed time.Duration) error {
	counts, err := s.w.store.CountByState(ctx)
	if err != nil {
		return err
	}
	st := s.w.rt.Stats()
	seen, err := s.discover(ctx)
	if err != nil {
		return err
	}
	if s.o.jsonOut {
		states := map[string]int{}
		for _, state := range registration.States() {
			states[string(state)] = counts[state]
		}
		enc := json.NewEncoder(stdout)
		return enc.Encode(summary{
			Nodes: len(s.nodes), States: states, EventsPublished: st.EventsPublished,
			IntentsExecuted: st.IntentsExecuted, DeadLettered: st.DeadLettered, Discovered: seen.nodes, ElapsedMS: elapsed.Milliseconds(),
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-20s %8s\n", "state", "nodes")
	for _, state := range registration.States() {
		fmt.Fprintf(&b, "%-20s %8d\n", state, counts[state])
	}
	fmt.Fprintf(&b, "%-20s %8d\n\n", "total", len(s.nodes))
	fmt.Fprintf(&b, "simulated %s in %s: %d events published, %d intents executed (%d changed nothing), %d dead-lettered\n",
		since(s.clock), elapsed.Truncate(time.Millisecond), st.EventsPublished, st.IntentsExecuted,
		st.IntentsSkipped, st.DeadLettered)
	if s.w.registry != nil {
		fmt.Fprintf(&b, "%d services in the in-memory registry\n", s.w.registry.Len())
	}
	fmt.Fprintf(&b, "a discovery client on the snapshot topic sees all %d nodes (%d active) as the store holds them", seen.nodes, seen.active)
	if seen.others > 0 {
		fmt.Fprintf(&b, ", and %d nodes of earlier runs", seen.others)
	}
	b.WriteString("\n")
	_, err = io.WriteString(stdout, b.String())
	return err
}

// since is the simulated time passed, in whole seconds.
func since(c *node.ManualClock) string { return c.Now().Sub(simEpoch).Truncate(time.Second).String() }

// countingBus is the bus the simulated nodes publish through: it counts
// the messages published to the runtime's input topics, so the simulation
// knows how many the runtime must handle.
type countingBus struct {
	bus.EventBus
	inputs map[string]bool
	sent   atomic.Int64
}

func newCountingBus(b bus.EventBus, inputs []string) *countingBus {
	c := &countingBus{EventBus: b, inputs: map[string]bool{}}
	for _, t := range inputs {
		c.inputs[t] = true
	}
	return c
}

// Publish publishes msgs and counts those on input topics.
func (c *countingBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	if err := c.EventBus.Publish(ctx, msgs...); err != nil {
		return err
	}
	for _, m := range msgs {
		if c.inputs[m.Topic] {
			c.sent.Add(1)
		}
	}
	return nil
}

// PublishEnvelope publishes env through Publish.
func (c *countingBus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return c.Publish(ctx, m)
}

// withReads returns c with the partition reads of the bus beneath, when it
// has them (both of the example's buses do), so that the nodes read one
// partition each instead of falling back to a group each.
func (c *countingBus) withReads() bus.EventBus {
	if pr, ok := c.EventBus.(bus.PartitionReader); ok {
		return readingBus{c, pr}
	}
	return c
}

type readingBus struct {
	*countingBus
	pr bus.PartitionReader
}

// PartitionCount is the bus beneath's.
func (b readingBus) PartitionCount(ctx context.Context, topic string) (int32, error) {
	return b.pr.PartitionCount(ctx, topic)
}

// ReadPartition is the bus beneath's.
func (b readingBus) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	return b.pr.ReadPartition(ctx, topic, partition, h, opts...)
}

// writeHeapProfile writes -memprofile: a heap profile taken after a
// collection, while the world (bus, store, runtime's state) and the
// simulated nodes are still referenced, and the live heap per node on
// stderr.
func (s *simulation) writeHeapProfile() error {
	if s.o.memprof == "" {
		return nil
	}
	f, err := os.Create(s.o.memprof) //nolint:gosec // the path is the operator's own -memprofile flag
	if err != nil {
		return err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(s.stderr, "live heap after GC: %d MiB, %d bytes per node (%d nodes); goroutine stacks %d MiB (%d goroutines); heap profile in %s\n",
		ms.HeapAlloc>>20, ms.HeapAlloc/uint64(len(s.nodes)), len(s.nodes), ms.StackInuse>>20, runtime.NumGoroutine(), s.o.memprof)
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	runtime.KeepAlive(s)
	return f.Close()
}
