package discovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestMain fails the package when a goroutine outlives the tests; sarama's
// process-wide metrics ticker and kfake's connection loops are allowed to.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read.func1"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write"),
	)
}

const (
	topic       = registration.TopicSnapshot
	waitTimeout = 60 * time.Second
)

// spec is the part of a snapshot the tests vary.
type spec struct {
	id      uuid.UUID
	typ     string
	state   registration.State
	version int64
}

// epoch is the registration time of every test node.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// snapMsg encodes the snapshot of a projection as s describes it, as the
// orchestrator publishes it: an envelope keyed by the node id.
func snapMsg(t testing.TB, s spec) *bus.Message {
	t.Helper()
	p := &registration.Projection{
		EntityID: s.id, Domain: registration.DefaultDomain, State: s.state, NodeType: s.typ,
		NodeVersion: "1.0.0", Capabilities: json.RawMessage(`{"postgres":true}`),
		Endpoints:    map[string]string{"http": "http://" + s.id.String()[:8] + ":8080"},
		RegisteredAt: epoch, AckTimeoutEmittedAt: epoch, LivenessTimeoutEmittedAt: epoch,
		Generation: 1,
	}
	return encode(t, registration.SnapshotOf(p, s.version, epoch.Add(time.Duration(s.version)*time.Second)))
}

// encode makes the message of a snapshot.
func encode(t testing.TB, s *registration.Snapshot) *bus.Message {
	t.Helper()
	payload, err := s.Payload()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := s.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: s.CreatedAt, EventType: registration.EventSnapshot,
		Metadata: meta, Payload: payload}
	m, err := bus.EnvelopeMessage(topic, env, bus.WithKey([]byte(s.EntityID.String())))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tombMsg is the tombstone of node id.
func tombMsg(id uuid.UUID) *bus.Message {
	return &bus.Message{Topic: topic, Key: []byte(id.String())}
}

func publish(t testing.TB, b bus.EventBus, msgs ...*bus.Message) {
	t.Helper()
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func newMemBus(t testing.TB, cfg membus.Config) *membus.Bus {
	t.Helper()
	b, err := membus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// running is a Client whose Run runs until stop or the end of the test.
type running struct {
	*discovery.Client
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func start(t testing.TB, b bus.EventBus, opts ...discovery.Option) *running {
	t.Helper()
	c, err := discovery.New(b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Client: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// stop ends Run and returns its error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after its context ended")
	}
	return r.err
}

func (r *running) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-r.Ready():
	case <-r.done:
		t.Fatalf("Run returned %v before Ready", r.err)
	case <-time.After(waitTimeout):
		t.Fatalf("not Ready after %v; stats %+v", waitTimeout, r.Stats())
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// model is the view a client should hold after the specs and tombstones
// published so far: the highest version per node, minus removed nodes.
type model map[uuid.UUID]spec

func (m model) put(s spec) {
	if old, ok := m[s.id]; !ok || s.version > old.version {
		m[s.id] = s
	}
}

// check compares a view with the model: same nodes, states, types and
// versions.
func (m model) check(view []discovery.Node) error {
	if len(view) != len(m) {
		return fmt.Errorf("view has %d nodes, want %d", len(view), len(m))
	}
	if !slices.IsSortedFunc(view, func(a, b discovery.Node) int { return slices.Compare(a.ID[:], b.ID[:]) }) {
		return errors.New("view not sorted by id")
	}
	for _, n := range view {
		s, ok := m[n.ID]
		if !ok {
			return fmt.Errorf("view has unexpected node %s", n.ID)
		}
		if n.Type != s.typ || n.State != s.state || n.SnapshotVersion != s.version {
			return fmt.Errorf("node %s: type %q state %s version %d, want %q %s %d", n.ID, n.Type, n.State, n.SnapshotVersion, s.typ, s.state, s.version)
		}
	}
	return nil
}

// workload returns the messages of n nodes, each published in versions
// 1..versions, alternating states, with every fifth node tombstoned at the
// end, and the model of the view they leave.
func workload(t testing.TB, n, versions int) ([]*bus.Message, model) {
	t.Helper()
	m := model{}
	var msgs []*bus.Message
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	states := []registration.State{registration.StatePendingRegistration, registration.StateAwaitingAck, registration.StateActive}
	for v := 1; v <= versions; v++ {
		for i, id := range ids {
			s := spec{id: id, typ: fmt.Sprintf("type-%d", i%3), state: states[(v-1)%len(states)], version: int64(v)}
			if v == versions {
				s.state = registration.StateActive
				if i%7 == 0 {
					s.state = registration.StateLivenessExpired
				}
			}
			msgs = append(msgs, snapMsg(t, s))
			m.put(s)
		}
	}
	for i, id := range ids {
		if i%5 == 0 {
			msgs = append(msgs, tombMsg(id))
			delete(m, id)
		}
	}
	return msgs, m
}
