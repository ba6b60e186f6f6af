package discovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestCatchUpThenReady: a client started on 300 nodes in four versions
// each, some tombstoned, holds exactly their latest state the moment Ready
// is closed.
func TestCatchUpThenReady(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	msgs, want := workload(t, 300, 4)
	publish(t, b, msgs...)
	c := start(t, b)
	c.waitReady(t)
	if err := want.check(c.List()); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Messages != int64(len(msgs)) || st.Applied != 4*300 || st.Removed != 60 || st.Tombstones != 60 || st.Undecodable != 0 || st.Nodes != len(want) {
		t.Fatalf("stats %+v after %d messages", st, len(msgs))
	}
	if err := c.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after its context ended", err)
	}
	if n := b.Readers(); n != 0 {
		t.Fatalf("%d partition reads still in progress after Run returned", n)
	}
}

// TestReadyOnEmptyTopic: nothing to catch up with is caught up at once.
func TestReadyOnEmptyTopic(t *testing.T) {
	c := start(t, newMemBus(t, membus.Config{}))
	c.waitReady(t)
	if n := c.List(); len(n) != 0 {
		t.Fatalf("List = %v, want none", n)
	}
}

// TestReadyWithIdleWatcher: Ready is not closed before Run, and is closed
// with the whole backlog applied even though a watcher never reads.
func TestReadyWithIdleWatcher(t *testing.T) {
	b := newMemBus(t, membus.Config{Partitions: 1})
	msgs, _ := workload(t, 50, 1)
	publish(t, b, msgs...)
	c, err := discovery.New(b)
	if err != nil {
		t.Fatal(err)
	}
	// A watcher that is never read does not hold the client back either.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = c.Watch(ctx)
	select {
	case <-c.Ready():
		t.Fatal("Ready before Run")
	default:
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("not ready")
	}
	if got := c.Len(); got != 40 {
		t.Fatalf("Len = %d at Ready, want 40 (50 nodes, 10 tombstoned)", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestFollowAfterReady: snapshots published after Ready reach the view.
func TestFollowAfterReady(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	c := start(t, b)
	c.waitReady(t)
	id := uuid.New()
	publish(t, b, snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 1}))
	eventually(t, "the new node", func() bool { _, ok := c.Get(id); return ok })
	publish(t, b, snapMsg(t, spec{id: id, typ: "effect", state: registration.StateLivenessExpired, version: 2}))
	eventually(t, "the node expired", func() bool { n, _ := c.Get(id); return n.State == registration.StateLivenessExpired })
	if got := c.Lookup("effect"); len(got) != 0 {
		t.Fatalf("Lookup after expiry = %v, want none", got)
	}
}

// TestOlderVersionIgnored: a snapshot with a lower or equal version than
// the one held changes nothing, whether it arrives during catch-up or after.
func TestOlderVersionIgnored(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	id := uuid.New()
	publish(t, b,
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 5}),
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StateAwaitingAck, version: 3}),
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StateAckReceived, version: 5}))
	c := start(t, b)
	c.waitReady(t)
	n, ok := c.Get(id)
	if !ok || n.State != registration.StateActive || n.SnapshotVersion != 5 {
		t.Fatalf("Get = %+v, %v; want version 5, active", n, ok)
	}
	publish(t, b, snapMsg(t, spec{id: id, typ: "effect", state: registration.StateLivenessExpired, version: 4}),
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 6}))
	eventually(t, "version 6", func() bool { n, _ := c.Get(id); return n.SnapshotVersion == 6 })
	if st := c.Stats(); st.Stale != 3 || st.Applied != 2 {
		t.Fatalf("stats %+v, want 3 stale, 2 applied", st)
	}
}

// TestTombstoneRemoves: a tombstone removes the node from Get, List and
// Lookup; a tombstone of an unknown node is harmless; a node registered
// again after its tombstone is back.
func TestTombstoneRemoves(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	a, z := uuid.New(), uuid.New()
	publish(t, b,
		snapMsg(t, spec{id: a, typ: "effect", state: registration.StateActive, version: 1}),
		snapMsg(t, spec{id: z, typ: "effect", state: registration.StateActive, version: 1}),
		tombMsg(a), tombMsg(uuid.New()))
	c := start(t, b)
	c.waitReady(t)
	if _, ok := c.Get(a); ok {
		t.Fatal("tombstoned node still there")
	}
	if got := c.Lookup("effect"); len(got) != 1 || got[0].ID != z {
		t.Fatalf("Lookup = %v, want only %s", got, z)
	}
	publish(t, b, tombMsg(z))
	eventually(t, "z removed", func() bool { return len(c.List()) == 0 })
	if got := c.Lookup("effect"); len(got) != 0 {
		t.Fatalf("Lookup = %v after the tombstones, want none", got)
	}
	publish(t, b, snapMsg(t, spec{id: a, typ: "effect", state: registration.StateActive, version: 1}))
	eventually(t, "a back", func() bool { _, ok := c.Get(a); return ok })
	if st := c.Stats(); st.Tombstones != 3 || st.Removed != 2 {
		t.Fatalf("stats %+v, want 3 tombstones, 2 removed", st)
	}
}

// TestLookup: only active nodes of the type, sorted by id; List has every
// node in any state.
func TestLookup(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	var msgs []*bus.Message
	var active []uuid.UUID
	for i := range 40 {
		s := spec{id: uuid.New(), typ: "effect", state: registration.StateActive, version: 1}
		switch i % 4 {
		case 1:
			s.typ = "compute"
		case 2:
			s.state = registration.StateAwaitingAck
		default:
			active = append(active, s.id)
		}
		msgs = append(msgs, snapMsg(t, s))
	}
	publish(t, b, msgs...)
	c := start(t, b)
	c.waitReady(t)
	slices.SortFunc(active, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
	got := c.Lookup("effect")
	ids := make([]uuid.UUID, len(got))
	for i, n := range got {
		ids[i] = n.ID
		if n.State != registration.StateActive || n.Type != "effect" {
			t.Fatalf("Lookup returned %+v", n)
		}
	}
	if !slices.Equal(ids, active) {
		t.Fatalf("Lookup ids %v, want %v", ids, active)
	}
	if n := len(c.Lookup("compute")); n != 10 {
		t.Fatalf("Lookup(compute) has %d nodes, want 10", n)
	}
	if n := len(c.Lookup("none")); n != 0 {
		t.Fatalf("Lookup(none) has %d nodes", n)
	}
	if n := len(c.List()); n != 40 {
		t.Fatalf("List has %d nodes, want 40", n)
	}
}

// next receives one change or fails.
func next(t *testing.T, ch <-chan discovery.Change) discovery.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return c
	case <-time.After(waitTimeout):
		t.Fatal("no change")
	}
	panic("unreachable")
}

// TestWatch: a watcher gets the view as Added changes, sorted, then the
// changes in order: added, changed (with the old node), removed; stale
// snapshots and unknown tombstones make no change.
func TestWatch(t *testing.T) {
	b := newMemBus(t, membus.Config{Partitions: 1})
	pre := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range pre {
		publish(t, b, snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 1}))
	}
	c := start(t, b)
	c.waitReady(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.Watch(ctx)
	slices.SortFunc(pre, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
	for _, id := range pre {
		if got := next(t, ch); got.Kind != discovery.Added || got.Node.ID != id {
			t.Fatalf("initial change %v %s, want added %s", got.Kind, got.Node.ID, id)
		}
	}
	id := uuid.New()
	publish(t, b,
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StateAwaitingAck, version: 1}),
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 2}),
		snapMsg(t, spec{id: id, typ: "effect", state: registration.StatePendingRegistration, version: 1}),
		tombMsg(uuid.New()),
		tombMsg(id))
	if got := next(t, ch); got.Kind != discovery.Added || got.Node.ID != id || got.Node.SnapshotVersion != 1 {
		t.Fatalf("change %v %+v, want added version 1", got.Kind, got.Node)
	}
	if got := next(t, ch); got.Kind != discovery.Changed || got.Node.State != registration.StateActive || got.Old.State != registration.StateAwaitingAck {
		t.Fatalf("change %v %s (old %s), want changed awaiting_ack -> active", got.Kind, got.Node.State, got.Old.State)
	}
	if got := next(t, ch); got.Kind != discovery.Removed || got.Node.ID != id || got.Node.SnapshotVersion != 2 {
		t.Fatalf("change %v %+v, want removed version 2", got.Kind, got.Node)
	}
	cancel()
	for range ch { // closed once ctx ended
	}
}

// TestWatchReset: a watcher that does not read loses its pending changes
// but not the view: it gets a Reset and the whole view, then goes on.
func TestWatchReset(t *testing.T) {
	b := newMemBus(t, membus.Config{Partitions: 3})
	c := start(t, b, discovery.WithWatchBuffer(4))
	c.waitReady(t)
	ch := c.Watch(t.Context())
	ids := make([]uuid.UUID, 20)
	for i := range ids {
		ids[i] = uuid.New()
		publish(t, b, snapMsg(t, spec{id: ids[i], typ: "effect", state: registration.StateActive, version: 1}))
	}
	eventually(t, "20 nodes", func() bool { return c.Len() == 20 })
	// 20 changes overflow a buffer of 4 at least once (more if the
	// watcher's goroutine took a reset's view before the overflow).
	if st := c.Stats(); st.WatchResets < 1 || st.WatchResets > 4 {
		t.Fatalf("WatchResets = %d, want 1 to 4", st.WatchResets)
	}
	// A consumer applying the changes to its own map ends with the view.
	mine := map[uuid.UUID]discovery.Node{}
	sawReset := false
	for !sawReset || len(mine) != 20 {
		switch got := next(t, ch); got.Kind {
		case discovery.Reset:
			sawReset = true
			clear(mine)
		case discovery.Added, discovery.Changed:
			mine[got.Node.ID] = got.Node
		case discovery.Removed:
			delete(mine, got.Node.ID)
		}
	}
	for _, id := range ids {
		if _, ok := mine[id]; !ok {
			t.Fatalf("watcher lacks %s", id)
		}
	}
	id := uuid.New()
	publish(t, b, snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 1}))
	if got := next(t, ch); got.Kind != discovery.Added || got.Node.ID != id {
		t.Fatalf("after the reset: %v %s, want added %s", got.Kind, got.Node.ID, id)
	}
}

// TestMidStream: clients started before, during and after a workload
// converge to the same view, the model's.
func TestMidStream(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	msgs, want := workload(t, 200, 5)
	half := len(msgs) / 2
	early := start(t, b)
	publish(t, b, msgs[:half]...)
	mid := start(t, b)
	for _, m := range msgs[half:] {
		publish(t, b, m)
	}
	late := start(t, b)
	late.waitReady(t)
	if err := want.check(late.List()); err != nil {
		t.Fatalf("late client: %v", err)
	}
	for name, c := range map[string]*running{"early": early, "mid": mid} {
		c.waitReady(t)
		eventually(t, name+" client converged", func() bool { return want.check(c.List()) == nil })
	}
}

// TestUndecodable: messages with a bad key, a bad value or a key naming
// another node are counted and skipped; the others are applied.
func TestUndecodable(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	good := spec{id: uuid.New(), typ: "effect", state: registration.StateActive, version: 1}
	other := snapMsg(t, spec{id: uuid.New(), typ: "effect", state: registration.StateActive, version: 1})
	other.Key = []byte(uuid.NewString())
	publish(t, b,
		&bus.Message{Topic: topic, Key: []byte("not-a-uuid"), Value: []byte(`{}`)},
		&bus.Message{Topic: topic, Key: []byte(uuid.NewString()), Value: []byte(`{not json`)},
		other,
		snapMsg(t, good))
	c := start(t, b)
	c.waitReady(t)
	if st := c.Stats(); st.Undecodable != 3 || st.Applied != 1 || st.Nodes != 1 {
		t.Fatalf("stats %+v, want 3 undecodable, 1 applied", st)
	}
	if _, ok := c.Get(good.id); !ok {
		t.Fatal("the good snapshot is missing")
	}
}

// TestRunEnds: Run returns bus.ErrClosed when the bus closes, and closes
// the watch channels; a second Run returns ErrRunning; a Watch after Run
// returned is closed at once.
func TestRunEnds(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	c := start(t, b)
	c.waitReady(t)
	ch := c.Watch(context.Background())
	if err := c.Run(context.Background()); !errors.Is(err, discovery.ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
	_ = b.Close()
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after the bus closed")
	}
	if !errors.Is(c.err, bus.ErrClosed) {
		t.Fatalf("Run = %v, want bus.ErrClosed", c.err)
	}
	for range ch {
	}
	if _, ok := <-c.Watch(context.Background()); ok {
		t.Fatal("Watch after Run returned delivered a change")
	}
}

// TestNewOptions: invalid options are refused.
func TestNewOptions(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	for name, o := range map[string]discovery.Option{
		"empty topic": discovery.WithTopic(""),
		"nil logger":  discovery.WithLogger(nil),
		"buffer 0":    discovery.WithWatchBuffer(0),
		"quiet 0":     discovery.WithQuietPeriod(0),
	} {
		if _, err := discovery.New(b, o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := discovery.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

// TestWithTopic: the client reads the topic it is given, only it.
func TestWithTopic(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	m := snapMsg(t, spec{id: uuid.New(), typ: "effect", state: registration.StateActive, version: 1})
	m.Topic = "other.snapshots"
	publish(t, b, m, snapMsg(t, spec{id: uuid.New(), typ: "effect", state: registration.StateActive, version: 1}))
	c := start(t, b, discovery.WithTopic("other.snapshots"))
	c.waitReady(t)
	if n := c.List(); len(n) != 1 || n[0].ID.String() != string(m.Key) {
		t.Fatalf("List = %v, want the other topic's node only", n)
	}
}

// hidden is a bus without bus.PartitionReader.
type hidden struct{ bus.EventBus }

// TestFallbackGroup: on a bus without bus.PartitionReader the client
// reads with a consumer group of its own, is Ready after the quiet period,
// holds the whole view, and follows.
func TestFallbackGroup(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	msgs, want := workload(t, 200, 3)
	publish(t, b, msgs...)
	c := start(t, hidden{b}, discovery.WithQuietPeriod(100*time.Millisecond))
	c.waitReady(t)
	if err := want.check(c.List()); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	publish(t, b, snapMsg(t, spec{id: id, typ: "effect", state: registration.StateActive, version: 1}))
	eventually(t, "the new node", func() bool { _, ok := c.Get(id); return ok })
	// A second client reads from the oldest again: its group is new.
	c2 := start(t, hidden{b}, discovery.WithQuietPeriod(100*time.Millisecond))
	c2.waitReady(t)
	want.put(spec{id: id, typ: "effect", state: registration.StateActive, version: 1})
	if err := want.check(c2.List()); err != nil {
		t.Fatalf("second client: %v", err)
	}
	_ = b.Close()
	<-c.done
	if !errors.Is(c.err, bus.ErrClosed) {
		t.Fatalf("Run = %v, want bus.ErrClosed", c.err)
	}
}

// TestDomain: WithDomain keeps one domain's snapshots.
func TestDomain(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	publish(t, b, snapMsg(t, spec{id: uuid.New(), typ: "effect", state: registration.StateActive, version: 1}))
	c := start(t, b, discovery.WithDomain("elsewhere"))
	c.waitReady(t)
	if st := c.Stats(); st.Filtered != 1 || st.Nodes != 0 {
		t.Fatalf("stats %+v, want 1 filtered, no node", st)
	}
}

// TestNodeFields: a Node carries the snapshot's fields, registrar's
// metadata included, and ONEX's "<domain>:<uuid>" key form is read.
func TestNodeFields(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	s := &registration.Snapshot{
		EntityID: uuid.New(), Domain: registration.DefaultDomain, State: registration.StateActive,
		NodeType: "effect", NodeName: "postgres-adapter",
		Capabilities:      json.RawMessage(`{"postgres":true}`),
		LastStateChangeAt: epoch.Add(time.Second), Version: 7, CreatedAt: epoch.Add(2 * time.Second),
		NodeVersion: "1.2.3", Endpoints: map[string]string{"http": "http://10.0.0.1:8080"},
		Generation: 3, RegisteredAt: epoch,
	}
	m := encode(t, s)
	m.Key = []byte("registration:" + s.EntityID.String())
	publish(t, b, m)
	c := start(t, b)
	c.waitReady(t)
	n, ok := c.Get(s.EntityID)
	if !ok {
		t.Fatalf("node missing; stats %+v", c.Stats())
	}
	want := discovery.Node{
		ID: s.EntityID, Domain: s.Domain, State: s.State, Type: "effect", Name: "postgres-adapter",
		Version: "1.2.3", Capabilities: s.Capabilities, Endpoints: s.Endpoints, Generation: 3,
		RegisteredAt: epoch, StateChangedAt: s.LastStateChangeAt, SnapshotVersion: 7, SnapshotAt: s.CreatedAt,
	}
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("Get =\n%+v, want\n%+v", n, want)
	}
	// A tombstone in the ONEX form removes it; one with a bad key is
	// undecodable.
	publish(t, b, &bus.Message{Topic: topic, Key: []byte("not-a-node")},
		&bus.Message{Topic: topic, Key: []byte("registration:" + s.EntityID.String())})
	eventually(t, "the node removed", func() bool { return c.Len() == 0 })
	if st := c.Stats(); st.Undecodable != 1 || st.Removed != 1 {
		t.Fatalf("stats %+v, want 1 undecodable, 1 removed", st)
	}
}

// TestWatchDuringCatchUp: a watcher registered before Run sees the
// catch-up as changes and, applying them, holds the view at Ready.
func TestWatchDuringCatchUp(t *testing.T) {
	b := newMemBus(t, membus.Config{})
	msgs, want := workload(t, 100, 3)
	publish(t, b, msgs...)
	c, err := discovery.New(b, discovery.WithWatchBuffer(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.Watch(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	mine := map[uuid.UUID]discovery.Node{}
	// Every message of the workload changes the view: a newer version, or
	// the tombstone of a node the view holds.
	for applied := 0; applied < len(msgs); {
		got := next(t, ch)
		switch got.Kind {
		case discovery.Added:
			mine[got.Node.ID] = got.Node
		case discovery.Changed:
			if mine[got.Node.ID].SnapshotVersion != got.Old.SnapshotVersion {
				t.Fatalf("changed from version %d, the watcher holds %d", got.Old.SnapshotVersion, mine[got.Node.ID].SnapshotVersion)
			}
			mine[got.Node.ID] = got.Node
		case discovery.Removed:
			delete(mine, got.Node.ID)
		default:
			t.Fatalf("unexpected %v", got.Kind)
		}
		applied++
	}
	<-c.Ready()
	view := make([]discovery.Node, 0, len(mine))
	for _, n := range mine {
		view = append(view, n)
	}
	slices.SortFunc(view, func(a, b discovery.Node) int { return slices.Compare(a.ID[:], b.ID[:]) })
	if err := want.check(view); err != nil {
		t.Fatalf("the watcher's view: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
