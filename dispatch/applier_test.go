package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func causeOf(n int) *bus.Envelope {
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(n)})
	return &bus.Envelope{EnvelopeID: id, EnvelopeTimestamp: t0, CorrelationID: uuid.NewSHA1(id, []byte("corr"))}
}

// rig is an applier over a memory store and registry and a recorder.
type rig struct {
	store    *memory.Store
	registry *memory.Registry
	rec      *bustest.Recorder
	exec     *intent.Executor
	a        *dispatch.Applier
}

func newRig(t *testing.T, edit func(*dispatch.Config)) *rig {
	t.Helper()
	g := &rig{store: memory.NewStore(memory.StoreConfig{}), registry: memory.NewRegistry(memory.RegistryConfig{}), rec: &bustest.Recorder{}, exec: intent.NewExecutor()}
	if err := memory.RegisterEffects(g.exec, g.store, g.registry); err != nil {
		t.Fatal(err)
	}
	cfg := dispatch.Config{Publisher: g.rec, Executor: g.exec, Outbox: g.store, Decode: registration.DecodeIntentPayload,
		DeadLetterTopic: "dlq", SourceTool: "test"}
	if edit != nil {
		edit(&cfg)
	}
	a, err := dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.a = a
	return g
}

// registrationDecision is a new node's decision: an upsert, a Consul
// register and two events.
func registrationDecision(node uuid.UUID) reducer.Decision {
	p := registration.Projection{EntityID: node, Domain: registration.DefaultDomain, State: registration.StateAwaitingAck,
		NodeType: "effect", NodeVersion: "1.0.0", Generation: 1, UpdatedAt: t0, RegisteredAt: t0}
	return reducer.Decision{
		State: string(registration.StateAwaitingAck),
		Intents: []intent.Intent{
			{Type: registration.IntentUpsert, Target: node.String(), Payload: &registration.UpsertRegistration{Projection: p}},
			{Type: registration.IntentConsulReg, Target: node.String(), Payload: &registration.ConsulRegister{NodeID: node, NodeType: "effect", Generation: 1}},
		},
		Events: []reducer.Event{
			{Topic: "initiated", Type: "Initiated", EntityID: node, Payload: map[string]string{"n": "1"}},
			{Topic: "accepted", Type: "Accepted", EntityID: node, Payload: map[string]string{"n": "2"}},
		},
	}
}

func (g *rig) prepare(t *testing.T, cause *bus.Envelope, node uuid.UUID, d reducer.Decision) dispatch.Prepared {
	t.Helper()
	p, err := g.a.Prepare(context.Background(), cause, node, d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrepareSplitsStoreWritesFromRecordedWork(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	cause := causeOf(1)
	p := g.prepare(t, cause, node, registrationDecision(node))
	if len(p.Write.Intents) != 1 || p.Write.Intents[0].Type != registration.IntentUpsert {
		t.Fatalf("write intents %+v", p.Write.Intents)
	}
	rec := p.Write.Record
	if rec == nil || rec.Cause != cause.EnvelopeID || len(rec.Intents) != 1 || len(rec.Messages) != 2 || len(p.Volatile) != 0 {
		t.Fatalf("prepared %+v", p)
	}
	if rec.Intents[0].Type != registration.IntentConsulReg || !strings.Contains(string(rec.Intents[0].Payload), node.String()) {
		t.Errorf("recorded intent %+v", rec.Intents[0])
	}
	for i, m := range rec.Messages {
		env, err := bus.DecodeEnvelope(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if env.EnvelopeID != dispatch.EventID(cause.EnvelopeID, i) || string(m.Key) != node.String() || env.SourceTool != "test" {
			t.Errorf("message %d: id %s key %q source %q", i, env.EnvelopeID, m.Key, env.SourceTool)
		}
	}
}

func TestPrepareFastPathOnlyForVolatileWithoutEvents(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	pass := intent.Intent{Type: registration.IntentConsulPassTTL, Payload: &registration.ConsulPassTTL{NodeID: node}}
	update := intent.Intent{Type: registration.IntentUpdate, Payload: &registration.UpdateRegistration{EntityID: node}}
	p := g.prepare(t, causeOf(2), node, reducer.Decision{Intents: []intent.Intent{update, pass}})
	if p.Write.Record != nil || len(p.Volatile) != 1 || len(p.Write.Intents) != 1 {
		t.Errorf("heartbeat-shaped decision: %+v", p)
	}
	reg := intent.Intent{Type: registration.IntentConsulReg, Payload: &registration.ConsulRegister{NodeID: node}}
	p = g.prepare(t, causeOf(3), node, reducer.Decision{Intents: []intent.Intent{update, pass, reg}})
	if p.Write.Record == nil || len(p.Volatile) != 0 || len(p.Write.Record.Intents) != 2 {
		t.Errorf("a durable intent beside a volatile one: %+v", p)
	}
	p = g.prepare(t, causeOf(4), node, reducer.Decision{Intents: []intent.Intent{update, pass}, Events: []reducer.Event{{Topic: "t", Type: "E", Payload: 1}}})
	if p.Write.Record == nil || len(p.Volatile) != 0 {
		t.Errorf("a decision with events took the fast path: %+v", p)
	}
}

func TestPrepareFailuresAreContentErrors(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	far := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Add(time.Hour) // year 10000: encoding/json refuses it
	cases := map[string]reducer.Decision{
		"unencodable event":   {Events: []reducer.Event{{Topic: "t", Type: "Accepted", Payload: map[string]time.Time{"ack_deadline": far}}}},
		"unencodable payload": {Intents: []intent.Intent{{Type: registration.IntentConsulReg, Payload: func() {}}}},
		"unrouted intent":     {Intents: []intent.Intent{{Type: "nobody.handles_this"}}},
		"event without topic": {Events: []reducer.Event{{Type: "E", Payload: 1}}},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := g.a.Prepare(context.Background(), causeOf(5), node, d)
			var pe *dispatch.PrepareError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *dispatch.PrepareError", err)
			}
		})
	}
}

// limitedRecorder is a recorder with a size limit.
type limitedRecorder struct {
	*bustest.Recorder
	limit int
}

func (l limitedRecorder) MaxMessageBytes() int { return l.limit }

func TestPrepareChecksTheBusSizeLimit(t *testing.T) {
	lr := limitedRecorder{Recorder: &bustest.Recorder{}, limit: 1000}
	g := newRig(t, func(c *dispatch.Config) { c.Publisher = lr })
	node := uuid.New()
	small := reducer.Decision{Events: []reducer.Event{{Topic: "t", Type: "E", EntityID: node, Payload: "x"}}}
	if _, err := g.a.Prepare(context.Background(), causeOf(6), node, small); err != nil {
		t.Fatalf("a small event: %v", err)
	}
	big := reducer.Decision{Events: []reducer.Event{{Topic: "t", Type: "E", EntityID: node, Payload: strings.Repeat("x", 1000)}}}
	_, err := g.a.Prepare(context.Background(), causeOf(6), node, big)
	if !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("an event over the limit: %v", err)
	}
}

func TestApplyRunsVolatileIntentsBeforeTheWrite(t *testing.T) {
	var order []string
	store := memory.NewStore(memory.StoreConfig{Fault: func(in intent.Intent) error {
		order = append(order, in.Type)
		return nil
	}})
	registry := memory.NewRegistry(memory.RegistryConfig{Fault: func(in intent.Intent) error {
		order = append(order, in.Type)
		return nil
	}})
	g := newRig(t, nil)
	g.exec = intent.NewExecutor()
	if err := memory.RegisterEffects(g.exec, store, registry); err != nil {
		t.Fatal(err)
	}
	a, err := dispatch.New(dispatch.Config{Publisher: g.rec, Executor: g.exec, Outbox: store, Decode: registration.DecodeIntentPayload})
	if err != nil {
		t.Fatal(err)
	}
	node := uuid.New()
	p, err := a.Prepare(context.Background(), causeOf(7), node, registrationDecision(node))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(context.Background(), []dispatch.Prepared{p}); err != nil {
		t.Fatal(err)
	}
	hb := reducer.Decision{Intents: []intent.Intent{
		{Type: registration.IntentUpdate, Payload: &registration.UpdateRegistration{EntityID: node, Domain: registration.DefaultDomain,
			Set: registration.ColLastHeartbeatAt, Values: registration.Projection{LastHeartbeatAt: t0.Add(time.Second)}}},
		{Type: registration.IntentConsulPassTTL, Payload: &registration.ConsulPassTTL{NodeID: node, NodeType: "effect", Generation: 1}},
	}}
	p, err = a.Prepare(context.Background(), causeOf(8), node, hb)
	if err != nil {
		t.Fatal(err)
	}
	order = nil
	res, err := a.Apply(context.Background(), []dispatch.Prepared{p})
	if err != nil || res[0].Status != dispatch.WriteCommitted {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	if strings.Join(order, ",") != registration.IntentConsulPassTTL+","+registration.IntentUpdate {
		t.Errorf("order %v: the volatile pass must run before the write", order)
	}
	if store.PendingRecords() != 1 {
		t.Errorf("%d records pending: the heartbeat must add none", store.PendingRecords())
	}
}

func commitOne(t *testing.T, g *rig, cause *bus.Envelope, node uuid.UUID, d reducer.Decision) {
	t.Helper()
	res, err := g.a.Apply(context.Background(), []dispatch.Prepared{g.prepare(t, cause, node, d)})
	if err != nil || res[0].Status != dispatch.WriteCommitted {
		t.Fatalf("apply: %+v, %v", res, err)
	}
}

func TestRelayExecutesThenPublishesThenRemoves(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	commitOne(t, g, causeOf(9), node, registrationDecision(node))
	if len(g.rec.Published()) != 0 || g.registry.Len() != 0 {
		t.Fatal("the commit itself published or registered")
	}
	res, err := g.a.Relay(context.Background(), []uuid.UUID{node})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1 || res.Intents != 1 || res.Events != 2 || g.registry.Len() != 1 || len(g.rec.Published()) != 2 {
		t.Fatalf("relay %+v, %d services, %d published", res, g.registry.Len(), len(g.rec.Published()))
	}
	if g.store.PendingRecords() != 0 {
		t.Errorf("%d records left", g.store.PendingRecords())
	}
	// Relaying again does nothing.
	if res, err := g.a.Relay(context.Background(), []uuid.UUID{node}); err != nil || res != (dispatch.RelayResult{}) {
		t.Errorf("second relay: %+v, %v", res, err)
	}
}

func TestRelayKeepsEntityOrderAndIsolatesFailures(t *testing.T) {
	g := newRig(t, nil)
	a, b := uuid.New(), uuid.New()
	// a has two records; b one.
	commitOne(t, g, causeOf(10), a, registrationDecision(a))
	commitOne(t, g, causeOf(11), a, reducer.Decision{Events: []reducer.Event{{Topic: "later", Type: "Later", EntityID: a, Payload: 1}}})
	commitOne(t, g, causeOf(12), b, registrationDecision(b))
	// Every publish that carries an event of a's first record fails.
	first := dispatch.EventID(causeOf(10).EnvelopeID, 0).String()
	g.rec.FailPublishIf(func(m *bus.Message) error {
		if strings.Contains(string(m.Value), first) {
			return errors.New("broker refused the message")
		}
		return nil
	})
	_, err := g.a.Relay(context.Background(), []uuid.UUID{a, b})
	if err == nil {
		t.Fatal("relay reported no failure")
	}
	if got := len(g.rec.PublishedTo("later")); got != 0 {
		t.Errorf("a's later record was published before its first one")
	}
	if got := len(g.rec.PublishedTo("accepted")); got != 1 {
		t.Errorf("b's events: %d accepted published, want 1 (one failing record must not hold others back)", got)
	}
	if g.store.PendingRecords() != 2 {
		t.Errorf("%d records pending, want a's two", g.store.PendingRecords())
	}
	g.rec.FailPublishIf(nil)
	if _, err := g.a.Relay(context.Background(), []uuid.UUID{a, b}); err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, m := range g.rec.Published() {
		if string(m.Key) == a.String() {
			topics = append(topics, m.Topic)
		}
	}
	if strings.Join(topics, ",") != "initiated,accepted,later" {
		t.Errorf("a's events in order %v", topics)
	}
}

func TestRelayDeadLettersWhatWillFailAgain(t *testing.T) {
	var calls atomic.Int64
	registry := memory.NewRegistry(memory.RegistryConfig{Fault: func(in intent.Intent) error {
		calls.Add(1)
		if in.Type == registration.IntentConsulReg {
			return errors.New("unmarked failure")
		}
		return nil
	}})
	g := newRig(t, func(c *dispatch.Config) { c.MaxAttempts = 3 })
	g.exec = intent.NewExecutor()
	if err := memory.RegisterEffects(g.exec, g.store, registry); err != nil {
		t.Fatal(err)
	}
	a, err := dispatch.New(dispatch.Config{Publisher: g.rec, Executor: g.exec, Outbox: g.store, Decode: registration.DecodeIntentPayload,
		DeadLetterTopic: "dlq", MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	g.a = a
	node := uuid.New()
	commitOne(t, g, causeOf(13), node, registrationDecision(node))
	for i := 1; i < 3; i++ {
		if _, err := g.a.Relay(context.Background(), []uuid.UUID{node}); err == nil {
			t.Fatalf("attempt %d succeeded", i)
		}
	}
	res, err := g.a.Relay(context.Background(), []uuid.UUID{node})
	if err != nil || res.DeadLettered != 1 || res.Events != 2 {
		t.Fatalf("third attempt: %+v, %v", res, err)
	}
	dl := g.rec.PublishedTo("dlq")
	if len(dl) != 1 || dl[0].Headers[dispatch.HeaderDLQAttempts] != "3" || !strings.Contains(dl[0].Headers[bus.HeaderDLQReason], "unmarked failure") ||
		dl[0].Headers[bus.HeaderDLQOriginalTopic] != dispatch.OutboxTopic {
		t.Fatalf("dead letters %+v", dl)
	}
	var ri dispatch.RecordedIntent
	if err := json.Unmarshal(dl[0].Value, &ri); err != nil || ri.Type != registration.IntentConsulReg {
		t.Errorf("dead letter value %s: %v", dl[0].Value, err)
	}
}

func TestRelayRetriesRetryableForever(t *testing.T) {
	registry := memory.NewRegistry(memory.RegistryConfig{Fault: func(intent.Intent) error {
		return intent.Retryable(errors.New("403 ACL not found"))
	}})
	g := newRig(t, nil)
	g.exec = intent.NewExecutor()
	if err := memory.RegisterEffects(g.exec, g.store, registry); err != nil {
		t.Fatal(err)
	}
	a, err := dispatch.New(dispatch.Config{Publisher: g.rec, Executor: g.exec, Outbox: g.store, Decode: registration.DecodeIntentPayload,
		DeadLetterTopic: "dlq", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	node := uuid.New()
	g.a = a
	commitOne(t, g, causeOf(14), node, registrationDecision(node))
	for range 5 {
		if _, err := a.Relay(context.Background(), []uuid.UUID{node}); !intent.IsRetryable(err) {
			t.Fatalf("relay error %v is not retryable", err)
		}
	}
	if len(g.rec.PublishedTo("dlq")) != 0 || g.store.PendingRecords() != 1 {
		t.Errorf("a retryable failure was given up on")
	}
}

func TestNewRejectsMissingParts(t *testing.T) {
	_, err := dispatch.New(dispatch.Config{MaxAttempts: -1})
	for _, want := range []string{"publisher", "executor", "outbox", "max attempts"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestEventIDStable(t *testing.T) {
	c := causeOf(15).EnvelopeID
	a, b := dispatch.EventID(c, 0), dispatch.EventID(c, 1)
	if a == b || a != dispatch.EventID(c, 0) || a.Version() != 5 {
		t.Fatalf("ids %s %s", a, b)
	}
}

// An event the bus refuses as too large (its topic's limit is below what
// the bus was told) cannot be published ever: its record is dead-lettered
// rather than retried for good, and the entity's later records go on.
func TestRelayDeadLettersEventsTheBusRefusesAsTooLarge(t *testing.T) {
	g := newRig(t, nil)
	node := uuid.New()
	commitOne(t, g, causeOf(16), node, registrationDecision(node))
	commitOne(t, g, causeOf(17), node, reducer.Decision{Events: []reducer.Event{{Topic: "later", Type: "Later", EntityID: node, Payload: 1}}})
	g.rec.FailPublishIf(func(m *bus.Message) error {
		if m.Topic == "accepted" {
			return fmt.Errorf("topic limit: %w", bus.ErrMessageTooLarge)
		}
		return nil
	})
	res, err := g.a.Relay(context.Background(), []uuid.UUID{node})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2 || res.DeadLettered != 2 || g.store.PendingRecords() != 0 {
		t.Fatalf("relay %+v, %d pending", res, g.store.PendingRecords())
	}
	if dl := g.rec.PublishedTo("dlq"); len(dl) != 2 || !strings.Contains(dl[0].Headers[bus.HeaderDLQReason], "topic limit") {
		t.Errorf("dead letters %+v", dl)
	}
	if len(g.rec.PublishedTo("later")) != 1 {
		t.Error("the later record did not go on")
	}
}
