package discovery_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// The workload tests run the whole registration workflow (package node's
// nodes on a ManualClock, the registration Runtime, a Sweeper swept by
// hand) through registrations, ack timeouts, liveness expiries and
// re-registrations, and then hold the snapshot topic and discovery
// Clients to the store:
//
//   - the last snapshot of every node on the topic is the snapshot of the
//     node's stored projection (registration.SnapshotOf), and each node's
//     snapshots went through the states its role went through, with
//     versions increasing;
//   - a Client started after the workload is Ready with a view equal to
//     the store's ListAll, and its Lookup by type equals the read API's
//     List of the active nodes of that type;
//   - Clients started before the workload and in its middle converge to
//     the same view.

// The roles of the workload's nodes: what each does, and the states its
// registration goes through (consecutive repeats, the metadata refreshes
// of an active node, left out).
const (
	roleSteady   = "steady"    // registers and heartbeats throughout
	roleResumed  = "resumed"   // pauses past its liveness window, expires, resumes and registers again
	rolePaused   = "paused"    // pauses past its liveness window and stays paused
	roleKilled   = "killed"    // stops while active, and expires
	roleLateAck  = "late-ack"  // loses its first ack, times out and registers again
	roleNeverAck = "never-ack" // loses every ack, times out again and again, then stops
)

var roleStates = map[string][]registration.State{
	roleSteady:  {registration.StateAwaitingAck, registration.StateActive},
	roleResumed: {registration.StateAwaitingAck, registration.StateActive, registration.StateLivenessExpired, registration.StateAwaitingAck, registration.StateActive},
	rolePaused:  {registration.StateAwaitingAck, registration.StateActive, registration.StateLivenessExpired},
	roleKilled:  {registration.StateAwaitingAck, registration.StateActive, registration.StateLivenessExpired},
	roleLateAck: {registration.StateAwaitingAck, registration.StateAckTimedOut, registration.StateAwaitingAck, registration.StateActive},
	// roleNeverAck: awaiting_ack, then ack_timed_out and awaiting_ack
	// alternating, ending in ack_timed_out; see checkHistory.
}

// roleGeneration is the generation each role's registration ends in; 0:
// at least 2 (the never-ack nodes register again after each timeout).
var roleGeneration = map[string]int64{
	roleSteady: 1, roleResumed: 2, rolePaused: 1, roleKilled: 1, roleLateAck: 2, roleNeverAck: 0,
}

// roleCounts is how many nodes of each role a workload runs.
type roleCounts map[string]int

// workloadStore is what the workload needs of a store: the workflow's
// reads, the read API, and whether the outbox is drained.
type workloadStore interface {
	registration.Store
	registration.Reader
	PendingEntities(ctx context.Context, minAge time.Duration, limit int) ([]uuid.UUID, error)
}

// nodeBus is the bus the workload's nodes publish through: it counts the
// messages on the runtime's input topics (so settle knows how many the
// runtime must handle) and drops the acks of the nodes told to lose them.
type nodeBus struct {
	bus.EventBus
	inputs map[string]bool
	ack    string
	sent   atomic.Int64

	mu      sync.Mutex
	dropAll map[string]bool // node id -> every ack is dropped
	dropOne map[string]bool // node id -> the next ack is dropped
	dropped int
}

func (b *nodeBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	kept := msgs[:0:0]
	b.mu.Lock()
	for _, m := range msgs {
		if m.Topic == b.ack {
			k := string(m.Key)
			if b.dropAll[k] || b.dropOne[k] {
				delete(b.dropOne, k)
				b.dropped++
				continue
			}
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

func (b *nodeBus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}

// readingNodeBus is a nodeBus with the partition reads of the bus beneath,
// so that each node reads the one partition its key maps to.
type readingNodeBus struct {
	*nodeBus
	pr bus.PartitionReader
}

func (b readingNodeBus) PartitionCount(ctx context.Context, topic string) (int32, error) {
	return b.pr.PartitionCount(ctx, topic)
}

func (b readingNodeBus) ReadPartition(ctx context.Context, topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) error {
	return b.pr.ReadPartition(ctx, topic, partition, h, opts...)
}

// runtimeBus is the bus the runtime publishes through: it counts, per
// node, the events it publishes on the topics the nodes read, so that
// settle can wait until every node received its events. It keeps the
// batch subscriptions and the size limit of the bus beneath.
type runtimeBus struct {
	fullBus
	nodeTopics map[string]bool
	mu         sync.Mutex
	toNode     map[string]int64 // node id -> events published to it
}

// fullBus is what the workload's buses (bus/memory, bus/kafka) have.
type fullBus interface {
	bus.EventBus
	bus.BatchSubscriber
	bus.SizeLimited
}

func (b *runtimeBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	if err := b.fullBus.Publish(ctx, msgs...); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range msgs {
		if b.nodeTopics[m.Topic] {
			b.toNode[string(m.Key)]++
		}
	}
	return nil
}

func (b *runtimeBus) PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	m, err := bus.EnvelopeMessage(topic, env, opts...)
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}

// published returns how many events the runtime published to node id.
func (b *runtimeBus) published(id uuid.UUID) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.toNode[id.String()]
}

// wnode is one node of the workload.
type wnode struct {
	*node.Node
	role   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	// requests counts the registry requests published while the node ran.
	requests int64
}

func (n *wnode) id() uuid.UUID { return n.Info().ID }

// stopped reports whether the node's Run returned.
func (n *wnode) stopped() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// workloadWorld is the orchestrator and the nodes of one workload.
type workloadWorld struct {
	t       *testing.T
	ctx     context.Context
	clock   *node.ManualClock
	raw     bus.EventBus // what the runtime, the sweeper and the Clients use
	reader  bus.PartitionReader
	nb      *nodeBus
	rb      *runtimeBus
	store   workloadStore
	rt      *registrar.RegistrationRuntime
	sweeper *registrar.Sweeper
	swept   int64
	nodes   []*wnode
	topics  registration.Topics
	cfg     registration.Config
}

// newWorkloadWorld runs a registration Runtime (no sweeper of its own) on
// b and store, whose effects exec holds, until the test ends.
func newWorkloadWorld(t *testing.T, clock *node.ManualClock, b bus.EventBus, store workloadStore, exec *intent.Executor) *workloadWorld {
	t.Helper()
	pr, ok := b.(bus.PartitionReader)
	if !ok {
		t.Fatalf("%T has no partition reads", b)
	}
	red, err := registration.New(registrar.ReducerConfig(contract.Default()))
	if err != nil {
		t.Fatal(err)
	}
	w := &workloadWorld{t: t, clock: clock, raw: b, reader: pr, store: store, cfg: red.Config(), topics: red.Config().Topics}
	w.nb = &nodeBus{EventBus: b, inputs: map[string]bool{}, ack: w.topics.Ack, dropAll: map[string]bool{}, dropOne: map[string]bool{}}
	for _, topic := range w.topics.Inputs() {
		w.nb.inputs[topic] = true
	}
	full, ok := b.(fullBus)
	if !ok {
		t.Fatalf("%T has no batch subscriptions or no size limit", b)
	}
	w.rb = &runtimeBus{fullBus: full, toNode: map[string]int64{}, nodeTopics: map[string]bool{
		w.topics.Accepted: true, w.topics.BecameActive: true, w.topics.AckTimedOut: true, w.topics.LivenessExpired: true}}
	w.rt, err = registrar.NewRegistration(nil, w.rb, store, exec, registrar.RegistrationConfig{NoSweeper: true},
		registrar.WithClock(clock.Now), registrar.WithRetryBackoff(time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w.sweeper, err = registrar.NewSweeper(store, b, registrar.SweeperConfig{Topic: w.topics.TimeoutCheck, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.ctx = ctx
	done := make(chan error, 1)
	go func() { done <- w.rt.Run(ctx) }()
	t.Cleanup(func() {
		w.stopNodes(w.nodes)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runtime: %v", err)
		}
	})
	return w
}

// startNodes creates and runs the nodes of counts, in a fixed order of
// roles; the acks of the late-ack (first only) and never-ack (all) nodes
// are dropped.
func (w *workloadWorld) startNodes(counts roleCounts) {
	w.t.Helper()
	i := 0
	for _, role := range []string{roleSteady, roleResumed, rolePaused, roleKilled, roleLateAck, roleNeverAck} {
		for range counts[role] {
			info := node.Info{
				ID:           uuid.New(),
				Type:         registration.NodeTypes[i%4],
				Version:      bus.Version{Major: 1, Minor: 4, Patch: i % 3},
				Capabilities: json.RawMessage(fmt.Sprintf(`{"read":true,"write":%v,"shard":%d}`, i%2 == 0, i)),
				Endpoints:    map[string]string{"health": fmt.Sprintf("http://10.0.%d.%d:8080/health", i/250, i%250+1)},
			}
			i++
			var b bus.EventBus = readingNodeBus{w.nb, w.reader}
			nd, err := node.New(b, info, node.WithClock(w.clock), node.WithSourceTool("workload-node"),
				// Stopped nodes model crashes: they keep their registrations.
				node.WithoutShutdownAnnouncement())
			if err != nil {
				w.t.Fatal(err)
			}
			w.nb.mu.Lock()
			switch role {
			case roleLateAck:
				w.nb.dropOne[info.ID.String()] = true
			case roleNeverAck:
				w.nb.dropAll[info.ID.String()] = true
			}
			w.nb.mu.Unlock()
			ctx, cancel := context.WithCancel(w.ctx)
			wn := &wnode{Node: nd, role: role, cancel: cancel, done: make(chan struct{})}
			w.nodes = append(w.nodes, wn)
			go func() {
				defer close(wn.done)
				wn.err = nd.Run(ctx)
			}()
		}
	}
}

// role returns the nodes of role.
func (w *workloadWorld) role(role string) []*wnode {
	var out []*wnode
	for _, n := range w.nodes {
		if n.role == role {
			out = append(out, n)
		}
	}
	return out
}

// stopNodes ends the Runs of nodes and waits for them.
func (w *workloadWorld) stopNodes(nodes []*wnode) {
	for _, n := range nodes {
		n.cancel()
	}
	for _, n := range nodes {
		<-n.done
		if n.err != nil {
			w.t.Errorf("node %s (%s): Run: %v", n.id(), n.role, n.err)
		}
	}
}

// armed is how many timers the running nodes hold when all are idle: one
// each, except a paused node that is active or expired.
func (w *workloadWorld) armed() int {
	n := 0
	for _, nd := range w.nodes {
		if nd.stopped() {
			continue
		}
		switch nd.State() {
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

// waitFor polls cond until it holds, failing the test after two minutes of
// real time.
func (w *workloadWorld) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s (runtime %+v, %d sent, %d swept, timers %d of %d)",
				what, w.rt.Stats(), w.nb.sent.Load(), w.swept, w.clock.Timers(), w.armed())
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// settled reports whether every running node received the events and
// registry requests published to it and is idle, and the runtime handled
// every input sent so far and drained its outbox.
func (w *workloadWorld) settled() bool {
	st := w.rt.Stats()
	if st.Handled+st.DeadLettered < w.nb.sent.Load()+w.swept || w.clock.Timers() != w.armed() {
		return false
	}
	for _, n := range w.nodes {
		if !n.stopped() && n.Stats().Events < w.rb.published(n.id())+n.requests {
			return false
		}
	}
	pending, err := w.store.PendingEntities(w.ctx, 0, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	return len(pending) == 0
}

// settle waits until the world settled (twice in a row, a few milliseconds
// apart, so that a node that just queued an event had the time to act on
// it), then sweeps as of the simulated time, and repeats until a sweep
// finds nothing.
func (w *workloadWorld) settle() {
	w.t.Helper()
	for {
		w.waitFor("the nodes and the runtime to settle", func() bool {
			if !w.settled() {
				return false
			}
			time.Sleep(3 * time.Millisecond)
			return w.settled()
		})
		n, err := w.sweeper.Sweep(w.ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		w.swept += int64(n)
	}
}

// advance moves the clock by total in steps, settling after each.
func (w *workloadWorld) advance(total, step time.Duration) {
	w.t.Helper()
	for d := time.Duration(0); d < total; d += step {
		w.clock.Advance(step)
		w.settle()
	}
}

func nodesIn(nodes []*wnode, s node.State) func() bool {
	return func() bool {
		for _, n := range nodes {
			if n.State() != s {
				return false
			}
		}
		return true
	}
}

// runWorkload runs the workload with the nodes of counts, and returns a
// Client it started in the middle of it.
func (w *workloadWorld) runWorkload(counts roleCounts) (mid *running) {
	t := w.t
	t.Helper()
	w.startNodes(counts)
	var first []*wnode
	for _, role := range []string{roleSteady, roleResumed, rolePaused, roleKilled} {
		first = append(first, w.role(role)...)
	}
	w.waitFor("the nodes that ack to be active", nodesIn(first, node.StateActive))
	w.settle()

	// The pausing nodes stop heartbeating, the killed ones stop; a Client
	// starts reading what the topic has so far, and follows the rest.
	for _, n := range append(w.role(roleResumed), w.role(rolePaused)...) {
		n.Pause()
	}
	w.stopNodes(w.role(roleKilled))
	w.settle()
	mid = start(t, w.raw)

	// Past the liveness window, in steps shorter than the heartbeat
	// interval: the ack timeouts (30 s) and the liveness expiries (60 s
	// after the ack, without a heartbeat) pass.
	w.advance(w.cfg.LivenessWindow+15*time.Second, 5*time.Second)
	w.waitFor("the paused nodes expired", nodesIn(append(w.role(roleResumed), w.role(rolePaused)...), node.StateExpired))
	w.waitFor("the late-ack nodes active", nodesIn(w.role(roleLateAck), node.StateActive))
	for _, n := range w.role(roleResumed) {
		n.Resume()
	}
	w.waitFor("the resumed nodes active again", nodesIn(w.role(roleResumed), node.StateActive))
	w.settle()

	// A registry request: every running node that is not paused
	// introspects again, a metadata refresh of the active ones.
	for _, n := range w.nodes {
		if !n.stopped() {
			n.requests++
		}
	}
	if err := registrar.RequestIntrospection(w.ctx, w.raw, registration.RegistryRequest{Reason: registration.ReasonRecovery},
		registrar.WithRequestClock(w.clock.Now)); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the nodes to answer the registry request", func() bool {
		for _, n := range w.nodes {
			if !n.stopped() && !n.Paused() && n.Stats().RegistryRequests == 0 {
				return false
			}
		}
		return true
	})
	w.settle()
	w.clock.Advance(time.Second)
	w.settle()

	// The never-ack nodes stop; their last registration times out.
	w.stopNodes(w.role(roleNeverAck))
	w.advance(w.cfg.AckTimeout+10*time.Second, 5*time.Second)

	// Everything stops; what the topic and the store hold is final.
	w.stopNodes(w.nodes)
	w.settle()
	return mid
}

// topicMessage is one message of the snapshot topic, decoded.
type topicMessage struct {
	partition int32
	offset    int64
	snap      *registration.Snapshot // nil for a tombstone
}

// readTopic reads every partition of the snapshot topic from its oldest
// message up to its high-water mark, and returns the messages by node, in
// offset order (one node's are on one partition).
func (w *workloadWorld) readTopic() map[uuid.UUID][]topicMessage {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	n, err := w.reader.PartitionCount(ctx, registration.TopicSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		out  = map[uuid.UUID][]topicMessage{}
		errs []error
		wg   sync.WaitGroup
	)
	for p := range n {
		wg.Go(func() {
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			target := int64(-1)
			started := func(start, next int64) {
				target = next - 1
				if start >= next {
					stop()
				}
			}
			h := func(_ context.Context, m *bus.Message) error {
				s, tomb, err := registration.DecodeSnapshot(m)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("partition %d offset %d: %w", p, m.Offset, err))
				} else {
					id, _ := registration.DecodeSnapshotKey(m.Key)
					if tomb {
						s = nil
					}
					out[id] = append(out[id], topicMessage{partition: p, offset: m.Offset, snap: s})
				}
				if m.Offset >= target {
					stop()
				}
				return nil
			}
			err := w.reader.ReadPartition(rctx, registration.TopicSnapshot, p, h, bus.ReadFromOldest(), bus.WithReadStarted(started))
			if err == nil && ctx.Err() != nil {
				err = fmt.Errorf("partition %d: %w", p, ctx.Err())
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("snapshot topic: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// storeView returns the store's every projection (ListAll), by id.
func (w *workloadWorld) storeView() []*registration.Projection {
	w.t.Helper()
	all, err := registration.ListAll(w.ctx, w.store, registration.Query{Limit: registration.MaxListLimit})
	if err != nil {
		w.t.Fatal(err)
	}
	return all
}

// checkWorkload holds the store, the snapshot topic and the Clients to one
// another once the workload settled; each Client in converging must reach
// the view (polled), fresh is started now.
func (w *workloadWorld) checkWorkload(counts roleCounts, converging map[string]*running) {
	t := w.t
	t.Helper()
	all := w.storeView()
	total := 0
	for _, n := range counts {
		total += n
	}
	if len(all) != total {
		t.Fatalf("store has %d projections, want %d", len(all), total)
	}
	byID := map[uuid.UUID]*registration.Projection{}
	for _, p := range all {
		byID[p.EntityID] = p
	}
	w.checkRoles(byID)

	topic := w.readTopic()
	for id := range topic {
		if byID[id] == nil {
			t.Errorf("snapshot topic has messages of %s, which the store does not know", id)
		}
	}
	want := make([]discovery.Node, 0, len(all))
	for _, n := range w.nodes {
		if !w.checkHistory(n, byID[n.id()], topic[n.id()]) {
			continue
		}
		msgs := topic[n.id()]
		want = append(want, nodeOfSnapshot(msgs[len(msgs)-1].snap))
	}
	if t.Failed() {
		t.FailNow()
	}
	slices.SortFunc(want, func(a, b discovery.Node) int { return slices.Compare(a.ID[:], b.ID[:]) })

	fresh := start(t, w.raw)
	fresh.waitReady(t)
	if d := viewDiff(want, fresh.List()); d != "" {
		t.Errorf("a Client started after the workload, at Ready: its view differs from the store's:\n%s", d)
	}
	w.checkLookup(fresh)
	if st := fresh.Stats(); st.Undecodable != 0 || st.Nodes != len(want) {
		t.Errorf("fresh Client's stats %+v, want %d nodes and nothing undecodable", st, len(want))
	}
	for name, c := range converging {
		deadline := time.Now().Add(2 * time.Minute)
		for viewDiff(want, c.List()) != "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if d := viewDiff(want, c.List()); d != "" {
			t.Errorf("the Client started %s did not converge to the store's view:\n%s", name, d)
		}
		if st := c.Stats(); st.Undecodable != 0 {
			t.Errorf("the Client started %s: %d undecodable messages", name, st.Undecodable)
		}
	}
}

// checkRoles checks that the workload did what its roles say: the states
// and generations the store ends with.
func (w *workloadWorld) checkRoles(byID map[uuid.UUID]*registration.Projection) {
	t := w.t
	t.Helper()
	wantState := map[string]registration.State{
		roleSteady: registration.StateActive, roleResumed: registration.StateActive, rolePaused: registration.StateLivenessExpired,
		roleKilled: registration.StateLivenessExpired, roleLateAck: registration.StateActive, roleNeverAck: registration.StateAckTimedOut,
	}
	for _, n := range w.nodes {
		p := byID[n.id()]
		if p == nil {
			t.Errorf("node %s (%s): no projection", n.id(), n.role)
			continue
		}
		gen := roleGeneration[n.role]
		if p.State != wantState[n.role] || (gen > 0 && p.Generation != gen) || (gen == 0 && p.Generation < 2) {
			t.Errorf("node %s (%s): stored %s generation %d, want %s generation %d (0: at least 2)",
				n.id(), n.role, p.State, p.Generation, wantState[n.role], gen)
		}
	}
}

// checkHistory checks the snapshots of node n on the topic against its
// role and its stored projection p: no tombstone, versions increasing
// (each the decision time in Unix microseconds, as snapshot_created_at),
// the states of the role, and a last snapshot that is exactly
// registration.SnapshotOf(p) at its version. It reports whether the last
// snapshot is usable.
func (w *workloadWorld) checkHistory(n *wnode, p *registration.Projection, msgs []topicMessage) bool {
	t := w.t
	t.Helper()
	if p == nil {
		return false
	}
	if len(msgs) == 0 {
		t.Errorf("node %s (%s): no snapshot on the topic", n.id(), n.role)
		return false
	}
	var states []registration.State
	var last *registration.Snapshot
	for i, m := range msgs {
		if m.snap == nil {
			t.Errorf("node %s (%s): tombstone at %d/%d, and no node was removed", n.id(), n.role, m.partition, m.offset)
			return false
		}
		if i > 0 && (m.partition != msgs[0].partition || m.offset <= msgs[i-1].offset) {
			t.Errorf("node %s (%s): snapshot %d at %d/%d, after %d/%d", n.id(), n.role, i, m.partition, m.offset, msgs[i-1].partition, msgs[i-1].offset)
		}
		if m.snap.Version != m.snap.CreatedAt.UnixMicro() {
			t.Errorf("node %s (%s): snapshot %d has version %d, created at %s (%d µs)", n.id(), n.role, i, m.snap.Version, m.snap.CreatedAt, m.snap.CreatedAt.UnixMicro())
		}
		if last != nil && m.snap.Version <= last.Version {
			t.Errorf("node %s (%s): snapshot %d has version %d, not above the previous %d", n.id(), n.role, i, m.snap.Version, last.Version)
		}
		if len(states) == 0 || states[len(states)-1] != m.snap.State {
			states = append(states, m.snap.State)
		}
		last = m.snap
	}
	if !historyMatches(n.role, states) {
		t.Errorf("node %s (%s): the topic's snapshots went through %v, want %v", n.id(), n.role, states, roleHistory(n.role))
	}
	want := registration.SnapshotOf(p, last.Version, last.CreatedAt)
	if !want.Equal(last) {
		t.Errorf("node %s (%s): the last snapshot on the topic is not SnapshotOf the stored projection:\n%s", n.id(), n.role, snapshotDiff(want, last))
	}
	// Where the projection keeps the time of its last transition, it is
	// the version.
	var at time.Time
	switch p.State {
	case registration.StateAckTimedOut:
		at = p.AckTimeoutEmittedAt
	case registration.StateLivenessExpired:
		at = p.LivenessTimeoutEmittedAt
	}
	if !at.IsZero() && last.Version != at.UnixMicro() {
		t.Errorf("node %s (%s): last snapshot version %d, want the time of the timeout, %d", n.id(), n.role, last.Version, at.UnixMicro())
	}
	if last.Version < p.RegisteredAt.UnixMicro() || (p.State == registration.StateActive && last.Version > p.UpdatedAt.UnixMicro()) {
		t.Errorf("node %s (%s): last snapshot version %d outside [registered_at %s, updated_at %s]", n.id(), n.role, last.Version, p.RegisteredAt, p.UpdatedAt)
	}
	return true
}

// roleHistory is the states a role's snapshots go through; never-ack's is
// described, see historyMatches.
func roleHistory(role string) string {
	if role == roleNeverAck {
		return "[awaiting_ack (ack_timed_out awaiting_ack)+ ack_timed_out]"
	}
	return fmt.Sprint(roleStates[role])
}

func historyMatches(role string, states []registration.State) bool {
	if role != roleNeverAck {
		return slices.Equal(states, roleStates[role])
	}
	if len(states) < 4 || len(states)%2 == 1 {
		return false
	}
	for i, s := range states {
		want := registration.StateAwaitingAck
		if i%2 == 1 {
			want = registration.StateAckTimedOut
		}
		if s != want {
			return false
		}
	}
	return true
}

// checkLookup compares the Client's Lookup of every type with the read
// API's List of the active nodes of that type.
func (w *workloadWorld) checkLookup(c *running) {
	t := w.t
	t.Helper()
	for _, typ := range registration.NodeTypes {
		page, err := w.store.List(w.ctx, registration.Query{States: []registration.State{registration.StateActive}, NodeType: typ, Limit: registration.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		var fromStore, fromClient []uuid.UUID
		for _, p := range page.Items {
			fromStore = append(fromStore, p.EntityID)
		}
		for _, n := range c.Lookup(typ) {
			fromClient = append(fromClient, n.ID)
		}
		if !slices.Equal(fromStore, fromClient) {
			t.Errorf("Lookup(%q) = %v, the store's active %s nodes are %v", typ, fromClient, typ, fromStore)
		}
	}
}

// nodeOfSnapshot is the Node a Client makes of s.
func nodeOfSnapshot(s *registration.Snapshot) discovery.Node {
	return discovery.Node{
		ID: s.EntityID, Domain: s.Domain, State: s.State, Type: s.NodeType, Name: s.NodeName, Version: s.NodeVersion,
		Capabilities: s.Capabilities, Endpoints: s.Endpoints, Generation: s.Generation, RegisteredAt: s.RegisteredAt,
		StateChangedAt: s.LastStateChangeAt, SnapshotVersion: s.Version, SnapshotAt: s.CreatedAt,
	}
}

// viewDiff describes how got differs from want, both sorted by id: nodes
// missing or extra, and the fields that differ; "" if they are the same.
// Capabilities are compared as JSON values, times with Equal.
func viewDiff(want, got []discovery.Node) string {
	var b strings.Builder
	lines := 0
	add := func(format string, args ...any) {
		lines++
		if lines <= 30 {
			fmt.Fprintf(&b, "\t"+format+"\n", args...)
		}
	}
	wm := map[uuid.UUID]discovery.Node{}
	for _, n := range want {
		wm[n.ID] = n
	}
	gm := map[uuid.UUID]discovery.Node{}
	for _, n := range got {
		gm[n.ID] = n
	}
	for _, w := range want {
		g, ok := gm[w.ID]
		if !ok {
			add("%s: missing (want %s %s version %d)", w.ID, w.Type, w.State, w.SnapshotVersion)
			continue
		}
		for _, d := range nodeFieldDiff(w, g) {
			add("%s: %s", w.ID, d)
		}
	}
	for _, g := range got {
		if _, ok := wm[g.ID]; !ok {
			add("%s: unexpected (%s %s version %d)", g.ID, g.Type, g.State, g.SnapshotVersion)
		}
	}
	if lines > 30 {
		fmt.Fprintf(&b, "\t... and %d more differences\n", lines-30)
	}
	if lines > 0 {
		fmt.Fprintf(&b, "\t(want %d nodes, got %d)\n", len(want), len(got))
	}
	return b.String()
}

func nodeFieldDiff(w, g discovery.Node) []string {
	var out []string
	field := func(name string, want, got any, equal bool) {
		if !equal {
			out = append(out, fmt.Sprintf("%s = %v, want %v", name, got, want))
		}
	}
	field("Domain", w.Domain, g.Domain, w.Domain == g.Domain)
	field("State", w.State, g.State, w.State == g.State)
	field("Type", w.Type, g.Type, w.Type == g.Type)
	field("Name", w.Name, g.Name, w.Name == g.Name)
	field("Version", w.Version, g.Version, w.Version == g.Version)
	field("Capabilities", string(w.Capabilities), string(g.Capabilities), jsonEq(w.Capabilities, g.Capabilities))
	field("Endpoints", w.Endpoints, g.Endpoints, len(w.Endpoints) == len(g.Endpoints) && (len(w.Endpoints) == 0 || reflect.DeepEqual(w.Endpoints, g.Endpoints)))
	field("Generation", w.Generation, g.Generation, w.Generation == g.Generation)
	field("RegisteredAt", w.RegisteredAt, g.RegisteredAt, w.RegisteredAt.Equal(g.RegisteredAt))
	field("StateChangedAt", w.StateChangedAt, g.StateChangedAt, w.StateChangedAt.Equal(g.StateChangedAt))
	field("SnapshotVersion", w.SnapshotVersion, g.SnapshotVersion, w.SnapshotVersion == g.SnapshotVersion)
	field("SnapshotAt", w.SnapshotAt, g.SnapshotAt, w.SnapshotAt.Equal(g.SnapshotAt))
	return out
}

// snapshotDiff describes how got differs from want, field by field.
func snapshotDiff(want, got *registration.Snapshot) string {
	d := nodeFieldDiff(nodeOfSnapshot(want), nodeOfSnapshot(got))
	if want.EntityID != got.EntityID {
		d = append(d, fmt.Sprintf("EntityID = %s, want %s", got.EntityID, want.EntityID))
	}
	if len(d) == 0 {
		return "\t(no field differs as a Node; compare with Snapshot.Equal)"
	}
	return "\t" + strings.Join(d, "\n\t")
}

// jsonEq compares two JSON values (nil is null).
func jsonEq(a, b json.RawMessage) bool {
	var va, vb any
	if len(a) > 0 {
		if json.Unmarshal(a, &va) != nil {
			return false
		}
	}
	if len(b) > 0 {
		if json.Unmarshal(b, &vb) != nil {
			return false
		}
	}
	return reflect.DeepEqual(va, vb)
}

// TestWorkloadMemory runs the workload on the memory bus and the memory
// store; see the comment at the top of the file for what it checks.
func TestWorkloadMemory(t *testing.T) {
	counts := roleCounts{roleSteady: 16, roleResumed: 8, rolePaused: 6, roleKilled: 6, roleLateAck: 6, roleNeverAck: 6}
	if testing.Short() {
		counts = roleCounts{roleSteady: 4, roleResumed: 2, rolePaused: 2, roleKilled: 2, roleLateAck: 2, roleNeverAck: 2}
	}
	clock := node.NewManualClock(epoch)
	b := newMemBus(t, membus.Config{Now: clock.Now, RetentionMessages: membus.NoLimit, RetentionBytes: 1 << 30})
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	early := start(t, b)
	early.waitReady(t)
	w := newWorkloadWorld(t, clock, b, store, exec)
	mid := w.runWorkload(counts)
	w.checkWorkload(counts, map[string]*running{"before the workload": early, "in the middle of the workload": mid})
	if w.nb.dropped < counts[roleLateAck]+2*counts[roleNeverAck] {
		t.Errorf("%d acks dropped, want the late-ack nodes' first and at least two of each never-ack node", w.nb.dropped)
	}
}

// TestWorkloadKafkaPostgres runs the workload on Kafka's wire protocol
// (kfake, spoken by sarama) with the Postgres store.
func TestWorkloadKafkaPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	counts := roleCounts{roleSteady: 8, roleResumed: 4, rolePaused: 3, roleKilled: 3, roleLateAck: 3, roleNeverAck: 3}
	if testing.Short() {
		counts = roleCounts{roleSteady: 2, roleResumed: 1, rolePaused: 1, roleKilled: 1, roleLateAck: 1, roleNeverAck: 1}
	}
	cluster := kafkatest.Start(t)
	b := cluster.NewBus(t, func(c *kafka.Config) { c.CompactTopics = []string{registration.TopicSnapshot} })
	store, exec := postgresWorkloadStore(t, dsn)
	early := start(t, b)
	early.waitReady(t)
	w := newWorkloadWorld(t, node.NewManualClock(epoch), b, store, exec)
	mid := w.runWorkload(counts)
	w.checkWorkload(counts, map[string]*running{"before the workload": early, "in the middle of the workload": mid})
}

// postgresWorkloadStore migrates a schema of the test's own, dropped when
// it ends, and returns its store and an executor with the Postgres effects
// and an in-memory registry.
func postgresWorkloadStore(t *testing.T, dsn string) (*postgres.Store, *intent.Executor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	schema := "discworkload_" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := postgres.Migrate(ctx, pool, postgres.MigrateConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	exec := intent.NewExecutor()
	if err := postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	registry := memory.NewRegistry(memory.RegistryConfig{})
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL} {
		if err := exec.Register(typ, registry); err != nil {
			t.Fatal(err)
		}
	}
	store, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return store, exec
}
