package registrar_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// live is the workflow running on the in-memory bus.
type live struct {
	bus      *membus.Bus
	store    *memory.Store
	registry *memory.Registry
	rt       *registrar.RegistrationRuntime
	c        *contract.Contract
	topics   registration.Topics
	stop     func() error
}

func startLive(t *testing.T, storeCfg memory.StoreConfig, rc registrar.RegistrationConfig, opts ...registrar.Option) *live {
	t.Helper()
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l := &live{bus: b, store: memory.NewStore(storeCfg), registry: memory.NewRegistry(memory.RegistryConfig{}), c: contract.Default()}
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, l.store, l.registry); err != nil {
		t.Fatal(err)
	}
	opts = append([]registrar.Option{registrar.WithRetryBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	l.rt, err = registrar.NewRegistration(l.c, b, l.store, exec, rc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	l.topics = mustReducer(t, l.c).Config().Topics
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.rt.Run(ctx) }()
	l.stop = sync.OnceValue(func() error {
		cancel()
		err := <-done
		_ = b.Close()
		return err
	})
	t.Cleanup(func() { _ = l.stop() })
	return l
}

func (l *live) publish(t *testing.T, topic string, node uuid.UUID, at time.Time, payload any) {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, CorrelationID: uuid.New(), Payload: raw}
	if err := l.bus.PublishEnvelope(context.Background(), topic, env, bus.WithKey([]byte(node.String()))); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func stateOf(t *testing.T, s *memory.Store, id uuid.UUID) registration.State {
	t.Helper()
	p, err := s.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		return registration.StateNone
	}
	return p.State
}

var t0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

func introspectionOf(node uuid.UUID, at time.Time) *registration.Introspection {
	return &registration.Introspection{NodeID: node, NodeType: "compute", NodeVersion: bus.Version{Major: 2},
		Endpoints: map[string]string{"api": "http://10.9.8.7:80"}, CorrelationID: uuid.New(), Timestamp: at}
}

// TestContentErrorsAreDeadLetteredAndThePartitionFlows: malformed input
// goes to the dead-letter topic with its reason and origin, and a valid
// message behind it on the same partition is processed.
func TestContentErrorsAreDeadLetteredAndThePartitionFlows(t *testing.T) {
	l := startLive(t, memory.StoreConfig{}, registrar.RegistrationConfig{NoSweeper: true})
	node := uuid.New()
	key := []byte(node.String())
	bad := []struct{ value, field string }{
		{`{"envelope_id":`, "not valid JSON"},
		{`{"envelope_id":"` + uuid.NewString() + `","envelope_timestamp":"2026-06-01T08:00:00","payload":{}}`, "envelope_timestamp"},
		{`{"envelope_id":"` + uuid.NewString() + `","envelope_timestamp":"2026-06-01T08:00:00Z","event_type":"NodeRebooted","payload":{}}`, "event_type"},
		{`{"envelope_id":"` + uuid.NewString() + `","envelope_timestamp":"2026-06-01T08:00:00Z","payload":{"node_id":"nope"}}`, "payload.node_id"},
	}
	for _, b := range bad {
		if err := l.bus.Publish(context.Background(), &bus.Message{Topic: l.topics.Introspection, Key: key, Value: []byte(b.value)}); err != nil {
			t.Fatal(err)
		}
	}
	l.publish(t, l.topics.Introspection, node, t0, introspectionOf(node, t0))
	eventually(t, "the valid introspection", func() bool { return stateOf(t, l.store, node) == registration.StateAwaitingAck })
	dlq := l.c.EventBus.DeadLetterTopic
	var dead []*bus.Message
	eventually(t, "the dead letters", func() bool {
		dead = nil
		for p := range l.bus.Partitions(dlq) {
			dead = append(dead, l.bus.Messages(dlq, p)...)
		}
		return len(dead) == len(bad)
	})
	for _, b := range bad {
		found := false
		for _, d := range dead {
			if string(d.Value) == b.value {
				found = true
				if !strings.Contains(d.Headers[bus.HeaderDLQReason], b.field) {
					t.Errorf("reason %q does not name %s", d.Headers[bus.HeaderDLQReason], b.field)
				}
				if d.Headers[bus.HeaderDLQOriginalTopic] != l.topics.Introspection || d.Headers[bus.HeaderDLQOriginalOffset] == "" {
					t.Errorf("dead letter headers %v", d.Headers)
				}
			}
		}
		if !found {
			t.Errorf("%s was not dead-lettered", b.value)
		}
	}
	if st := l.rt.Stats(); st.DeadLettered != int64(len(bad)) {
		t.Errorf("stats count %d dead letters, want %d", st.DeadLettered, len(bad))
	}
}

// TestInfrastructureErrorsAreRetriedWithoutCommit: while the store fails,
// the message is retried and its offset is not committed; once the store is
// back, it is applied once and committed.
func TestInfrastructureErrorsAreRetriedWithoutCommit(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var attempts atomic.Int64
	l := startLive(t, memory.StoreConfig{Fault: func(intent.Intent) error {
		attempts.Add(1)
		if down.Load() {
			return intent.Retryable(errors.New("connection refused"))
		}
		return nil
	}}, registrar.RegistrationConfig{NoSweeper: true})
	node := uuid.New()
	l.publish(t, l.topics.Introspection, node, t0, introspectionOf(node, t0))
	eventually(t, "retries", func() bool { return attempts.Load() >= 3 })
	part := bus.KeyPartition([]byte(node.String()), l.bus.Partitions(l.topics.Introspection))
	if c := l.bus.Committed(l.c.Group(), l.topics.Introspection, part); c > 0 {
		t.Fatalf("offset committed (%d) while the effect failed", c)
	}
	if st := stateOf(t, l.store, node); st != registration.StateNone {
		t.Fatalf("state %s while the store is down", st)
	}
	down.Store(false)
	eventually(t, "the retried introspection", func() bool { return stateOf(t, l.store, node) == registration.StateAwaitingAck })
	eventually(t, "the commit", func() bool { return l.bus.Committed(l.c.Group(), l.topics.Introspection, part) == 1 })
	st := l.rt.Stats()
	if st.Retries < 2 || st.DeadLettered != 0 || st.EventsPublished != 3 { // Initiated, Accepted, the snapshot
		t.Errorf("stats %+v", st)
	}
}

// TestPermanentEffectErrorDeadLetters: an effect error no retry can fix
// dead-letters the message that caused it.
func TestPermanentEffectErrorDeadLetters(t *testing.T) {
	l := startLive(t, memory.StoreConfig{Fault: func(in intent.Intent) error {
		return intent.Permanent(errors.New("value too long for type character varying(32)"))
	}}, registrar.RegistrationConfig{NoSweeper: true})
	node := uuid.New()
	l.publish(t, l.topics.Introspection, node, t0, introspectionOf(node, t0))
	dlq := l.c.EventBus.DeadLetterTopic
	eventually(t, "the dead letter", func() bool {
		for p := range l.bus.Partitions(dlq) {
			for _, m := range l.bus.Messages(dlq, p) {
				if strings.Contains(m.Headers[bus.HeaderDLQReason], "character varying") {
					return true
				}
			}
		}
		return false
	})
}

// conflictStore moves a row's state behind the runtime's back, once, just
// before the runtime's first write: the write conflicts, the runtime
// decides again, and the first decision's events are not published.
type conflictStore struct {
	*memory.Store
	once atomic.Bool
}

func (s *conflictStore) Commit(ctx context.Context, writes []dispatch.Write) ([]dispatch.WriteResult, error) {
	for _, w := range writes {
		for _, in := range w.Intents {
			if err := s.interfere(ctx, in); err != nil {
				return nil, err
			}
		}
	}
	return s.Store.Commit(ctx, writes)
}

func (s *conflictStore) interfere(ctx context.Context, in intent.Intent) error {
	if u, ok := in.Payload.(*registration.UpdateRegistration); ok && s.once.CompareAndSwap(false, true) {
		// Another writer times the registration out first.
		other := &registration.UpdateRegistration{EntityID: u.EntityID, Domain: u.Domain, ExpectedState: registration.StateAwaitingAck,
			Set:    registration.ColCurrentState | registration.ColAckTimeoutEmittedAt,
			Values: registration.Projection{State: registration.StateAckTimedOut, AckTimeoutEmittedAt: t0.Add(time.Minute)}}
		if res, err := s.Execute(ctx, intent.Intent{Type: registration.IntentUpdate, Payload: other}); err != nil || res.Status != intent.Applied {
			return errors.Join(err, errors.New("setting up the conflict failed"))
		}
	}
	return nil
}

func TestConflictDecidesAgainAndPublishesNothingStale(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := &conflictStore{Store: memory.NewStore(memory.StoreConfig{})}
	exec := intent.NewExecutor()
	for _, typ := range []string{registration.IntentUpsert, registration.IntentUpdate} {
		_ = exec.Register(typ, store)
	}
	reg := memory.NewRegistry(memory.RegistryConfig{})
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL} {
		_ = exec.Register(typ, reg)
	}
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{NoSweeper: true})
	if err != nil {
		t.Fatal(err)
	}
	topics := mustReducer(t, contract.Default()).Config().Topics
	node := uuid.New()
	send := func(topic string, at time.Time, payload any) {
		raw, _ := json.Marshal(payload)
		m, err := bus.EnvelopeMessage(topic, &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, Payload: raw})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	send(topics.Introspection, t0, introspectionOf(node, t0))
	send(topics.Ack, t0.Add(time.Second), &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: t0.Add(time.Second)})
	if st := stateOf(t, store.Store, node); st != registration.StateAckTimedOut {
		t.Fatalf("state %s, want the other writer's ack_timed_out", st)
	}
	if n := len(b.Messages(topics.BecameActive, bus.KeyPartition([]byte(node.String()), b.Partitions(topics.BecameActive)))); n != 0 {
		t.Fatalf("%d BecameActive events published for a registration that timed out", n)
	}
	if reg.Len() != 0 {
		t.Fatal("the conflicting decision registered the node in Consul")
	}
	if st := rt.Stats(); st.Conflicts != 1 {
		t.Fatalf("stats %+v, want one conflict", st)
	}
}

func TestRunLifecycle(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	_ = memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{}))
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{SweepInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	topics := mustReducer(t, contract.Default()).Config().Topics
	// running waits until Run consumes: a message published now is handled.
	running := func(at time.Time) {
		t.Helper()
		node := uuid.New()
		raw, _ := json.Marshal(introspectionOf(node, at))
		env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, Payload: raw}
		if err := b.PublishEnvelope(context.Background(), topics.Introspection, env, bus.WithKey([]byte(node.String()))); err != nil {
			t.Fatal(err)
		}
		// (The sweeper runs on real time, so the registration may already
		// have timed out.)
		eventually(t, "the runtime consuming", func() bool { return stateOf(t, store, node) != registration.StateNone })
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	running(t0)
	if err := rt.Run(ctx); !errors.Is(err, registrar.ErrRunning) {
		t.Fatalf("second Run returned %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	// Run again, then Close stops it.
	go func() { done <- rt.Run(context.Background()) }()
	running(t0.Add(time.Second))
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := rt.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := rt.Run(context.Background()); !errors.Is(err, registrar.ErrClosed) {
		t.Fatalf("Run after Close returned %v", err)
	}
}

func TestRunReturnsBusFailure(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	_ = memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{}))
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	if err := rt.Run(context.Background()); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Run on a closed bus returned %v", err)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	_ = exec.Register(registration.IntentUpsert, store)
	red, err := registration.New(registration.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = registrar.New[*registration.Projection](b, red, store, exec,
		registrar.WithRoutes(registration.IntentUpdate, registration.IntentConsulReg))
	if err == nil {
		t.Fatal("New accepted a runtime without topics, group, dead-letter topic and routes")
	}
	for _, want := range []string{"input topics", "consumer group", "dead-letter topic", `"consul.register"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	// The store owns the projection writes: they need no effect.
	if strings.Contains(err.Error(), registration.IntentUpdate) {
		t.Errorf("error names %s, which the store owns:\n%v", registration.IntentUpdate, err)
	}
	// The contract's routes need an effect too.
	if _, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{}); err == nil || !strings.Contains(err.Error(), "consul.deregister") {
		t.Errorf("NewRegistration with missing effects: %v", err)
	}
}

// TestSweeperTimesOutThroughTheBus: the sweeper publishes keyed checks, the
// runtime decides them, and the timeout changes the state.
func TestSweeperTimesOutThroughTheBus(t *testing.T) {
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	l := startLive(t, memory.StoreConfig{}, registrar.RegistrationConfig{SweepInterval: 5 * time.Millisecond}, registrar.WithClock(clock))
	late, prompt := uuid.New(), uuid.New()
	l.publish(t, l.topics.Introspection, late, t0, introspectionOf(late, t0))
	l.publish(t, l.topics.Introspection, prompt, t0, introspectionOf(prompt, t0))
	eventually(t, "registrations", func() bool {
		c, err := l.store.CountByState(t.Context())
		return err == nil && c[registration.StateAwaitingAck] == 2
	})
	l.publish(t, l.topics.Ack, prompt, t0.Add(time.Second), &registration.Ack{NodeID: prompt, CorrelationID: uuid.New(), Timestamp: t0.Add(time.Second)})
	eventually(t, "activation", func() bool { return stateOf(t, l.store, prompt) == registration.StateActive })
	now.Store(t0.Add(31 * time.Second).UnixNano())
	eventually(t, "the ack timeout", func() bool { return stateOf(t, l.store, late) == registration.StateAckTimedOut })
	now.Store(t0.Add(62 * time.Second).UnixNano())
	eventually(t, "the liveness expiry", func() bool { return stateOf(t, l.store, prompt) == registration.StateLivenessExpired })
	// The deregistration runs from the outbox, after the state is written.
	eventually(t, "the expired node deregistered", func() bool { return l.registry.Len() == 0 })
	timedOut := l.bus.Messages(l.topics.AckTimedOut, bus.KeyPartition([]byte(late.String()), l.bus.Partitions(l.topics.AckTimedOut)))
	if len(timedOut) != 1 || string(timedOut[0].Key) != late.String() {
		t.Fatalf("AckTimedOut events on the entity's partition: %d", len(timedOut))
	}
}
