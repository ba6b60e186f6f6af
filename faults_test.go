package registrar_test

// Regression tests for the failures found on main by fault injection and
// hostile input (the delivery-guarantees issue); each names its failure.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// rig is the registration workflow on a Recorder, driven synchronously,
// with fault hooks on the store and the registry.
type rig struct {
	rec        *bustest.Recorder
	store      *memory.Store
	registry   *memory.Registry
	rt         *registrar.RegistrationRuntime
	topics     registration.Topics
	c          *contract.Contract
	clock      atomic.Int64 // unix nanos
	storeFault atomic.Pointer[func(intent.Intent) error]
	regFault   atomic.Pointer[func(intent.Intent) error]
	seq        atomic.Int64
}

func newRig(t *testing.T, bus bus.EventBus, rec *bustest.Recorder, opts ...registrar.Option) *rig {
	t.Helper()
	return newRigWith(t, contract.Default(), bus, rec, opts...)
}

// newRigWith is newRig with the contract c.
func newRigWith(t *testing.T, c *contract.Contract, bus bus.EventBus, rec *bustest.Recorder, opts ...registrar.Option) *rig {
	t.Helper()
	g := &rig{rec: rec, c: c}
	g.clock.Store(t0.Add(time.Hour).UnixNano())
	g.store = memory.NewStore(memory.StoreConfig{Fault: func(in intent.Intent) error {
		if f := g.storeFault.Load(); f != nil {
			return (*f)(in)
		}
		return nil
	}})
	g.registry = memory.NewRegistry(memory.RegistryConfig{Fault: func(in intent.Intent) error {
		if f := g.regFault.Load(); f != nil {
			return (*f)(in)
		}
		return nil
	}})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, g.store, g.registry); err != nil {
		t.Fatal(err)
	}
	opts = append([]registrar.Option{
		registrar.WithRetryBackoff(time.Millisecond, 5*time.Millisecond),
		registrar.WithClock(func() time.Time { return time.Unix(0, g.clock.Load()).UTC() }),
		registrar.WithRelay(-1, 0),
	}, opts...)
	rt, err := registrar.NewRegistration(g.c, bus, g.store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	g.rt = rt
	g.topics = mustReducer(t, g.c).Config().Topics
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rt.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if err := rec.WaitSubscribed(ctx, g.c.Group(), g.topics.Heartbeat); err != nil {
		t.Fatal(err)
	}
	return g
}

func newRecorderRig(t *testing.T, opts ...registrar.Option) *rig {
	rec := &bustest.Recorder{}
	return newRig(t, rec, rec, opts...)
}

func (g *rig) setStoreFault(f func(intent.Intent) error) { g.storeFault.Store(&f) }
func (g *rig) setRegistryFault(f func(intent.Intent) error) {
	g.regFault.Store(&f)
}

// msg builds the message of a node input stamped at.
func (g *rig) msg(t *testing.T, topic string, node uuid.UUID, at time.Time, payload any) *bus.Message {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	n := g.seq.Add(1)
	env := &bus.Envelope{
		EnvelopeID:        uuid.NewSHA1(node, fmt.Appendf(nil, "rig-%d", n)),
		EnvelopeTimestamp: at, CorrelationID: uuid.NewSHA1(node, fmt.Appendf(nil, "rig-corr-%d", n)), Payload: raw,
	}
	m, err := bus.EnvelopeMessage(topic, env, bus.WithKey([]byte(node.String())))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (g *rig) introspection(t *testing.T, node uuid.UUID, at time.Time, version int) *bus.Message {
	return g.msg(t, g.topics.Introspection, node, at, &registration.Introspection{
		NodeID: node, NodeType: "effect", NodeVersion: bus.Version{Major: version}, CorrelationID: uuid.New(), Timestamp: at,
		Endpoints: map[string]string{"health": "http://127.0.0.1:9/health"},
	})
}

func (g *rig) ack(t *testing.T, node uuid.UUID, at time.Time) *bus.Message {
	return g.msg(t, g.topics.Ack, node, at, &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: at})
}

func (g *rig) heartbeat(t *testing.T, node uuid.UUID, at time.Time) *bus.Message {
	return g.msg(t, g.topics.Heartbeat, node, at, &registration.Heartbeat{NodeID: node, UptimeSeconds: 1, Timestamp: at})
}

func (g *rig) deliver(t *testing.T, m *bus.Message) {
	t.Helper()
	if err := g.rec.Deliver(context.Background(), m); err != nil {
		t.Fatalf("deliver %s: %v", m.Topic, err)
	}
}

func (g *rig) state(t *testing.T, node uuid.UUID) *registration.Projection {
	t.Helper()
	p, err := g.store.Load(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventTypes lists the event types published for node, in publish order.
func (g *rig) eventTypes(t *testing.T, node uuid.UUID) []string {
	t.Helper()
	var out []string
	for _, m := range g.rec.Published() {
		if string(m.Key) != node.String() || m.Topic == g.topics.TimeoutCheck || m.Topic == g.c.EventBus.DeadLetterTopic {
			continue
		}
		out = append(out, m.Headers[bus.HeaderEventType])
	}
	return out
}

func (g *rig) deadLetters() []*bus.Message { return g.rec.PublishedTo(g.c.EventBus.DeadLetterTopic) }

func (g *rig) activate(t *testing.T, node uuid.UUID, at time.Time) {
	t.Helper()
	g.deliver(t, g.introspection(t, node, at, 1))
	g.deliver(t, g.ack(t, node, at.Add(time.Second)))
	if st := g.state(t, node); st == nil || st.State != registration.StateActive {
		t.Fatalf("node not active: %+v", st)
	}
}

var errTopicDown = intent.Retryable(errors.New("topic unavailable"))

// Failure 1: an introspection's upsert ran, its publish failed, and the
// runtime stopped; meanwhile the node's ack (another topic) moved the
// projection on. The redelivered introspection decides nothing, yet its
// Initiated, Accepted and snapshot are published, before the ack's events.
func TestFault01EventsSurviveAStateThatMovedOn(t *testing.T) {
	rec := &bustest.Recorder{}
	g := newRig(t, rec, rec)
	node := uuid.New()
	intro := g.introspection(t, node, t0, 1)
	rec.FailPublish(errTopicDown, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := rec.Deliver(ctx, intro)
	cancel()
	if err == nil || bus.IsContentError(err) {
		t.Fatalf("introspection with the topic down: %v", err)
	}
	if st := g.state(t, node); st == nil || st.State != registration.StateAwaitingAck {
		t.Fatalf("the upsert did not commit: %+v", st)
	}
	rec.FailPublish(nil, 0)
	g.deliver(t, g.ack(t, node, t0.Add(time.Second))) // the state moves on
	g.deliver(t, intro)                               // the redelivery
	got := strings.Join(g.eventTypes(t, node), ",")
	want := strings.Join([]string{registration.EventInitiated, registration.EventAccepted, registration.EventSnapshot,
		registration.EventAckReceived, registration.EventBecameActive, registration.EventSnapshot}, ",")
	if got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if n := len(g.deadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// Failure 2: input stamped at a time no deadline can follow (year 9999) is
// dead-lettered at once, the messages after it flow, and nothing it would
// cause runs again and again.
func TestFault02FarFutureStampIsDeadLettered(t *testing.T) {
	g := newRecorderRig(t)
	node, next := uuid.New(), uuid.New()
	g.activate(t, node, t0)
	var registers atomic.Int64
	g.setRegistryFault(func(in intent.Intent) error {
		if in.Type == registration.IntentConsulReg {
			registers.Add(1)
		}
		return nil
	})
	// Year 9999 fails decoding (bus.MaxTime); a stamp inside the bounds
	// but far ahead fails the skew check.
	if err := g.rec.Deliver(context.Background(), g.introspection(t, node, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), 2)); !bus.IsContentError(err) {
		t.Fatalf("year 9999: %v", err)
	}
	far := time.Date(8999, 12, 31, 23, 59, 59, 0, time.UTC)
	batch := []*bus.Message{
		g.introspection(t, node, far, 2), // a metadata refresh from the far future
		g.introspection(t, next, t0.Add(time.Minute), 1),
	}
	batch[1].Topic = batch[0].Topic
	err := g.rec.DeliverBatch(context.Background(), batch...)
	var be *bus.BatchError
	if !errors.As(err, &be) || be.Index != 0 || !bus.IsContentError(be.Err) {
		t.Fatalf("batch error %v", err)
	}
	if dl := g.deadLetters(); len(dl) != 2 || !strings.Contains(dl[1].Headers[bus.HeaderDLQReason], "ahead of this runtime's clock") {
		t.Fatalf("dead letters %+v", dl)
	}
	if registers.Load() != 0 {
		t.Errorf("the far-future refresh registered in Consul %d times", registers.Load())
	}
	if err := g.rec.DeliverBatch(context.Background(), batch[1]); err != nil {
		t.Fatal(err)
	}
	if st := g.state(t, next); st == nil || st.State != registration.StateAwaitingAck {
		t.Errorf("the message after the poison: %+v", st)
	}
}

// sizedRecorder is a Recorder with a size limit, as the Kafka bus has.
type sizedRecorder struct {
	*bustest.Recorder
	limit int
}

func (s sizedRecorder) MaxMessageBytes() int { return s.limit }

// Failure 3: an introspection under the limit is accepted, but the event
// its ack causes (BecameActive carries the capabilities) would not fit:
// the ack is dead-lettered before anything runs, and the partition moves
// on. (Snapshots are off: the introspection's snapshot carries the
// capabilities too, and would not fit either.)
func TestFault03EventTooLargeIsDeadLetteredBeforeEffects(t *testing.T) {
	rec := &bustest.Recorder{}
	c := contract.Default()
	c.EventBus.SnapshotTopic = contract.NoSnapshots
	g := newRigWith(t, c, sizedRecorder{Recorder: rec, limit: 4096}, rec)
	node := uuid.New()
	caps := map[string]string{"blob": strings.Repeat("x", 3500)}
	capsRaw, _ := json.Marshal(caps)
	g.deliver(t, g.msg(t, g.topics.Introspection, node, t0, &registration.Introspection{
		NodeID: node, NodeType: "effect", NodeVersion: bus.Version{Major: 1}, CorrelationID: uuid.New(), Timestamp: t0,
		Capabilities: capsRaw,
	}))
	if st := g.state(t, node); st == nil || st.State != registration.StateAwaitingAck {
		t.Fatalf("introspection: %+v", st)
	}
	err := g.rec.Deliver(context.Background(), g.ack(t, node, t0.Add(time.Second)))
	if !bus.IsContentError(err) || !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("ack: %v", err)
	}
	if st := g.state(t, node); st.State != registration.StateAwaitingAck {
		t.Errorf("the ack's write ran: %s", st.State)
	}
	if g.registry.Len() != 0 {
		t.Error("the ack's Consul register ran")
	}
	if dl := g.deadLetters(); len(dl) != 1 || !strings.Contains(dl[0].Headers[bus.HeaderDLQReason], "exceeds the limit") {
		t.Errorf("dead letters %+v", dl)
	}
}

// Failure 4: one heartbeat stamped far in the future is dead-lettered; it
// cannot push the deadline out of reach, and later real heartbeats count.
func TestFault04FutureHeartbeatCannotPinTheDeadline(t *testing.T) {
	g := newRecorderRig(t)
	node := uuid.New()
	g.activate(t, node, t0)
	err := g.rec.Deliver(context.Background(), g.heartbeat(t, node, time.Date(8999, 12, 31, 0, 0, 0, 0, time.UTC)))
	if !bus.IsContentError(err) {
		t.Fatalf("far-future heartbeat: %v", err)
	}
	at := t0.Add(10 * time.Second)
	g.deliver(t, g.heartbeat(t, node, at))
	st := g.state(t, node)
	if !st.LastHeartbeatAt.Equal(at) || st.LivenessDeadline.Year() > 2026 {
		t.Errorf("after a real heartbeat: last %v, deadline %v", st.LastHeartbeatAt, st.LivenessDeadline)
	}
}

// abaReducer decides, for every input, intents on system a, then b, then
// a again: an order every downstream reducer may emit.
type abaReducer struct{}

func (abaReducer) Decode(_ string, env *bus.Envelope) (reducer.Input, error) {
	id, err := uuid.ParseBytes(env.Payload[1 : len(env.Payload)-1])
	if err != nil {
		return reducer.Input{}, err
	}
	return reducer.Input{EntityID: id, Kind: "aba", Event: id}, nil
}

func (abaReducer) Decide(_ *registration.Projection, in reducer.Input, _ time.Time) reducer.Decision {
	id := in.Event.(uuid.UUID)
	return reducer.Decision{Intents: []intent.Intent{
		{Type: "a.first", Target: id.String(), Payload: id},
		{Type: "b.only", Target: id.String(), Payload: id},
		{Type: "a.second", Target: id.String(), Payload: id},
	}}
}

func (abaReducer) DecodeIntentPayload(_ string, raw json.RawMessage) (any, error) {
	var id uuid.UUID
	err := json.Unmarshal(raw, &id)
	return id, err
}

// Failure 7: a decision with intents a, b, a no longer spins the batch
// path: both paths finish, and every entity sees a, b, a in order.
func TestFault07IntentsABAFinishInOrder(t *testing.T) {
	for _, size := range []int{1, 64} {
		t.Run(fmt.Sprintf("batch%d", size), func(t *testing.T) {
			rec := &bustest.Recorder{}
			store := memory.NewStore(memory.StoreConfig{})
			var mu sync.Mutex
			seen := map[uuid.UUID][]string{}
			exec := intent.NewExecutor()
			for _, typ := range []string{"a.first", "b.only", "a.second"} {
				_ = exec.Register(typ, intent.EffectFunc(func(_ context.Context, in intent.Intent) (intent.Result, error) {
					mu.Lock()
					defer mu.Unlock()
					id := in.Payload.(uuid.UUID)
					seen[id] = append(seen[id], in.Type)
					return intent.Result{}, nil
				}))
			}
			rt, err := registrar.New[*registration.Projection](rec, abaReducer{}, store, exec,
				registrar.WithTopics("in"), registrar.WithGroup("g"), registrar.WithDeadLetterTopic("dlq"), registrar.WithBatch(size, 0))
			if err != nil {
				t.Fatal(err)
			}
			var msgs []*bus.Message
			ids := make([]uuid.UUID, 20)
			for i := range ids {
				ids[i] = uuid.New()
				env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: t0, Payload: json.RawMessage(`"` + ids[i].String() + `"`)}
				m, err := bus.EnvelopeMessage("in", env)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rt.HandleBatch(ctx, msgs); err != nil {
				t.Fatalf("batch of a, b, a decisions: %v", err)
			}
			for _, id := range ids {
				if got := strings.Join(seen[id], ","); got != "a.first,b.only,a.second" {
					t.Errorf("%s saw %s", id, got)
				}
			}
		})
	}
}

// Failure 8: in batch mode, publish faults of single messages retry those
// messages' records, not the whole batch: everything finishes, each event
// once.
func TestFault08PerMessagePublishFaultsDoNotRetryTheBatch(t *testing.T) {
	g := newRecorderRig(t)
	rng := rand.New(rand.NewPCG(8, 8))
	var mu sync.Mutex
	var faults int
	g.rec.FailPublishIf(func(m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Topic != g.c.EventBus.DeadLetterTopic && rng.IntN(10) == 0 {
			faults++
			return errTopicDown
		}
		return nil
	})
	var batch []*bus.Message
	nodes := make([]uuid.UUID, 300)
	for i := range nodes {
		nodes[i] = uuid.New()
		batch = append(batch, g.introspection(t, nodes[i], t0.Add(time.Duration(i)*time.Millisecond), 1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.rec.DeliverBatch(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	for _, m := range g.rec.Published() {
		events[m.Headers[bus.HeaderMessageID]]++
	}
	if len(events) != 3*len(nodes) { // Initiated, Accepted, the snapshot
		t.Fatalf("%d distinct events published, want %d", len(events), 3*len(nodes))
	}
	for id, n := range events {
		if n != 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	st := g.rt.Stats()
	t.Logf("%d publish faults, %d retries, stats %+v", faults, st.Retries, st)
	if faults == 0 || st.Handled != int64(len(nodes)) {
		t.Errorf("faults %d, handled %d", faults, st.Handled)
	}
}

// Failure 9: a metadata refresh whose Consul call fails once after the
// upsert committed still reaches Consul; so does a heartbeat's TTL pass.
func TestFault09ExternalIntentsAfterTheWriteAreNotLost(t *testing.T) {
	g := newRecorderRig(t)
	node := uuid.New()
	g.activate(t, node, t0)
	var failed atomic.Int64
	g.setRegistryFault(func(in intent.Intent) error {
		if failed.Add(1) == 1 {
			return errors.New("consul agent hiccup")
		}
		return nil
	})
	g.deliver(t, g.introspection(t, node, t0.Add(5*time.Second), 7))
	if st := g.state(t, node); st.NodeVersion != "7.0.0" {
		t.Fatalf("upsert did not commit: %s", st.NodeVersion)
	}
	svc := g.registry.Services()
	if len(svc) != 1 || svc[0].Meta["node_version"] != "7.0.0" {
		t.Fatalf("Consul after a failed register: %+v", svc)
	}
	failed.Store(0)
	hb := t0.Add(40 * time.Second)
	g.deliver(t, g.heartbeat(t, node, hb))
	if svc := g.registry.Services(); !svc[0].PassedAt.Equal(hb) {
		t.Errorf("TTL pass after a failed pass: passed at %v, want %v", svc[0].PassedAt, hb)
	}
	if st := g.state(t, node); !st.LastHeartbeatAt.Equal(hb) {
		t.Errorf("heartbeat not applied: %v", st.LastHeartbeatAt)
	}
	if n := len(g.deadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// Failure 10: an environment error (an ACL token Consul refuses, marked
// retryable by the adapter) never costs an input: retried until the
// environment heals, nothing dead-lettered, the events published.
func TestFault10EnvironmentErrorsAreRetriedNotDeadLettered(t *testing.T) {
	g := newRecorderRig(t, registrar.WithMaxAttempts(2))
	node := uuid.New()
	var refusals atomic.Int64
	g.setRegistryFault(func(in intent.Intent) error {
		if refusals.Add(1) <= 6 {
			return intent.Retryable(errors.New("Unexpected response code: 403 (ACL not found)"))
		}
		return nil
	})
	g.deliver(t, g.introspection(t, node, t0, 1))
	g.deliver(t, g.ack(t, node, t0.Add(time.Second)))
	g.deliver(t, g.heartbeat(t, node, t0.Add(31*time.Second)))
	if n := len(g.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters for an environment error", n)
	}
	if g.registry.Len() != 1 || !strings.Contains(strings.Join(g.eventTypes(t, node), ","), registration.EventBecameActive) {
		t.Errorf("after the refusals: %d services, events %v", g.registry.Len(), g.eventTypes(t, node))
	}
	if n := refusals.Load(); n <= 6 {
		t.Errorf("%d calls: the refusals were not retried past", n)
	}
}

// WithMaxAttempts: an error marked neither way is tried that often, then
// the message is dead-lettered with the count; in a batch, only the
// message at fault.
func TestUnmarkedErrorsAreCappedToTheMessageAtFault(t *testing.T) {
	g := newRecorderRig(t, registrar.WithMaxAttempts(3))
	bad, good := uuid.New(), uuid.New()
	var tries atomic.Int64
	g.setStoreFault(func(in intent.Intent) error {
		if u, ok := in.Payload.(*registration.UpsertRegistration); ok && u.Projection.EntityID == bad {
			tries.Add(1)
			return errors.New("driver: something odd")
		}
		return nil
	})
	batch := []*bus.Message{g.introspection(t, good, t0, 1), g.introspection(t, bad, t0, 1), g.introspection(t, uuid.New(), t0, 1)}
	err := g.rec.DeliverBatch(context.Background(), batch...)
	var be *bus.BatchError
	if !errors.As(err, &be) || be.Index != 1 || !bus.IsContentError(be.Err) {
		t.Fatalf("batch error %v", err)
	}
	dl := g.deadLetters()
	if len(dl) != 1 || !strings.Contains(dl[0].Headers[bus.HeaderDLQReason], "after 3 attempts") {
		t.Fatalf("dead letters %+v", dl)
	}
	if st := g.state(t, good); st == nil {
		t.Error("the message before the one at fault was not applied")
	}
}

// Failure 11: a timeout check from a sweeper whose clock runs ahead is
// decided at the partition owner's clock: a healthy node does not expire,
// and an expiry writes the owner's time, so the node's next introspection
// starts a new registration at once.
func TestFault11TimeoutsAreDecidedAtTheOwnersClock(t *testing.T) {
	g := newRecorderRig(t)
	node := uuid.New()
	g.activate(t, node, t0)
	deadline := g.state(t, node).LivenessDeadline
	g.clock.Store(deadline.Add(-10 * time.Second).UnixNano()) // the owner: not yet
	ahead := deadline.Add(4 * time.Minute)                    // the sweeper: well past it
	check, err := registrar.TimeoutCheckMessage(g.topics.TimeoutCheck, node, registration.TimeoutLiveness, deadline, ahead)
	if err != nil {
		t.Fatal(err)
	}
	g.deliver(t, check)
	if st := g.state(t, node); st.State != registration.StateActive {
		t.Fatalf("a check from a clock running ahead expired a healthy node: %s", st.State)
	}
	owner := deadline.Add(time.Second)
	g.clock.Store(owner.UnixNano())
	check, err = registrar.TimeoutCheckMessage(g.topics.TimeoutCheck, node, registration.TimeoutLiveness, deadline, owner)
	if err != nil {
		t.Fatal(err)
	}
	g.deliver(t, check)
	st := g.state(t, node)
	if st.State != registration.StateLivenessExpired || !st.LivenessTimeoutEmittedAt.Equal(owner) {
		t.Fatalf("expiry: state %s, marker %v, want %v", st.State, st.LivenessTimeoutEmittedAt, owner)
	}
	g.deliver(t, g.introspection(t, node, owner.Add(time.Millisecond), 1))
	if st := g.state(t, node); st.State != registration.StateAwaitingAck || st.Generation != 2 {
		t.Errorf("re-introspection right after the expiry: %s, generation %d", st.State, st.Generation)
	}
}

// A crash between the write and the relay: the records wait in the
// outbox, and the relay task publishes them on start-up.
func TestRelayTaskPublishesWhatACrashLeftBehind(t *testing.T) {
	rec := &bustest.Recorder{}
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	newRT := func() *registrar.RegistrationRuntime {
		rt, err := registrar.NewRegistration(nil, rec, store, exec, registrar.RegistrationConfig{NoSweeper: true},
			registrar.WithRetryBackoff(time.Millisecond, 2*time.Millisecond), registrar.WithRelay(10*time.Millisecond, 0),
			registrar.WithClock(func() time.Time { return t0.Add(time.Hour) }))
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	first := newRT()
	node := uuid.New()
	g := &rig{c: contract.Default(), topics: mustReducer(t, contract.Default()).Config().Topics}
	rec.FailPublish(errTopicDown, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := first.Handle(ctx, g.introspection(t, node, t0, 1)); err == nil {
		t.Fatal("handled with the topic down")
	}
	cancel()
	if store.PendingRecords() != 1 {
		t.Fatalf("%d records pending after the failed relay", store.PendingRecords())
	}
	rec.FailPublish(nil, 0)
	second := newRT()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- second.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for store.PendingRecords() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(rec.PublishedTo(g.topics.Accepted)); n != 1 || store.PendingRecords() != 0 {
		t.Fatalf("after start-up: %d accepted published, %d records pending", n, store.PendingRecords())
	}
	if st := second.Stats(); st.Relayed != 1 {
		t.Errorf("stats %+v", st)
	}
}
