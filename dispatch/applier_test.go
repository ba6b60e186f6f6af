package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

type published struct {
	topic string
	env   *bus.Envelope
	key   []byte
}

type fakePublisher struct {
	got  []published
	fail error
}

func (p *fakePublisher) PublishEnvelope(_ context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error {
	if p.fail != nil {
		return p.fail
	}
	p.got = append(p.got, published{topic, env, bus.NewPublishConfig(opts...).Key})
	return nil
}

var (
	cause  = &bus.Envelope{EnvelopeID: uuid.MustParse("00000000-0000-4000-8000-000000000001"), EnvelopeTimestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), CorrelationID: uuid.MustParse("00000000-0000-4000-8000-0000000000cc")}
	entity = uuid.MustParse("7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10")
	node   = uuid.MustParse("8b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10")
)

func newApplier(t *testing.T, pub dispatch.Publisher, ex dispatch.Executor) *dispatch.ResultApplier {
	t.Helper()
	a, err := dispatch.NewResultApplier(pub, ex, dispatch.Config{SourceTool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestApplyIntentsThenKeyedEvents(t *testing.T) {
	var order []string
	ex := intent.NewExecutor()
	_ = ex.Register("x", intent.EffectFunc(func(_ context.Context, in intent.Intent) (intent.Result, error) {
		order = append(order, "intent "+in.Target)
		return intent.Result{}, nil
	}))
	pub := &fakePublisher{}
	a := newApplier(t, pub, ex)
	d := reducer.Decision{
		Intents: []intent.Intent{{Type: "x", Target: "1"}, {Type: "x", Target: "2"}},
		Events: []reducer.Event{
			{Topic: "t1", Type: "A", EntityID: entity, NodeID: node, Payload: map[string]int{"n": 1}},
			{Topic: "t2", Type: "B", NodeID: node, Payload: map[string]int{"n": 2}},
			{Topic: "t3", Type: "C", CorrelationID: cause.CorrelationID, Payload: nil},
			{Topic: "t4", Type: "D", Payload: "x"},
		},
	}
	out, err := a.Apply(context.Background(), cause, d)
	if err != nil {
		t.Fatal(err)
	}
	if out.Published != 4 || len(out.Results) != 2 || strings.Join(order, ",") != "intent 1,intent 2" {
		t.Fatalf("outcome %+v, order %v", out, order)
	}
	wantKeys := []string{entity.String(), node.String(), cause.CorrelationID.String(), ""}
	for i, p := range pub.got {
		if string(p.key) != wantKeys[i] {
			t.Errorf("event %d key %q, want %q", i, p.key, wantKeys[i])
		}
		if p.env.EnvelopeID != dispatch.EventID(cause.EnvelopeID, i) {
			t.Errorf("event %d envelope id %s is not derived from the cause", i, p.env.EnvelopeID)
		}
		if !p.env.EnvelopeTimestamp.Equal(cause.EnvelopeTimestamp) || p.env.CorrelationID != cause.CorrelationID || p.env.SourceTool != "test" {
			t.Errorf("event %d envelope %+v", i, p.env)
		}
	}
	if pub.got[3].key != nil {
		t.Error("an event without ids got a key")
	}
	var payload map[string]int
	if err := json.Unmarshal(pub.got[1].env.Payload, &payload); err != nil || payload["n"] != 2 {
		t.Errorf("payload %s", pub.got[1].env.Payload)
	}
}

func TestApplyIsDeterministic(t *testing.T) {
	ex := intent.NewExecutor()
	d := reducer.Decision{Events: []reducer.Event{{Topic: "t", Type: "A", EntityID: entity, Payload: map[string]string{"a": "b"}}}}
	var runs [2][]byte
	for i := range runs {
		pub := &fakePublisher{}
		if _, err := newApplier(t, pub, ex).Apply(context.Background(), cause, d); err != nil {
			t.Fatal(err)
		}
		raw, err := pub.got[0].env.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = raw
	}
	if string(runs[0]) != string(runs[1]) {
		t.Fatalf("two applications differ:\n%s\n%s", runs[0], runs[1])
	}
}

func TestApplyPublishesNothingAfterFailureOrConflict(t *testing.T) {
	for name, eff := range map[string]intent.EffectFunc{
		"failure": func(context.Context, intent.Intent) (intent.Result, error) {
			return intent.Result{}, intent.Retryable(errors.New("db down"))
		},
		"conflict": func(context.Context, intent.Intent) (intent.Result, error) {
			return intent.Result{Status: intent.Conflict, Reason: "state moved"}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			ex := intent.NewExecutor()
			_ = ex.Register("x", eff)
			pub := &fakePublisher{}
			d := reducer.Decision{Intents: []intent.Intent{{Type: "x"}}, Events: []reducer.Event{{Topic: "t", EntityID: entity}}}
			_, err := newApplier(t, pub, ex).Apply(context.Background(), cause, d)
			if err == nil || len(pub.got) != 0 {
				t.Fatalf("err %v, published %d", err, len(pub.got))
			}
			if name == "conflict" && !errors.Is(err, dispatch.ErrConflict) {
				t.Errorf("conflict error %v does not wrap ErrConflict", err)
			}
			if name == "failure" && !intent.IsRetryable(err) {
				t.Errorf("failure %v lost its retryable mark", err)
			}
		})
	}
}

func TestApplyReportsPublishFailure(t *testing.T) {
	pub := &fakePublisher{fail: bus.ErrClosed}
	d := reducer.Decision{Events: []reducer.Event{{Topic: "t", Type: "A", EntityID: entity}}}
	_, err := newApplier(t, pub, intent.NewExecutor()).Apply(context.Background(), cause, d)
	if !errors.Is(err, bus.ErrClosed) || !strings.Contains(err.Error(), "publish A") {
		t.Fatalf("error %v", err)
	}
}

func TestNewResultApplierRejectsNil(t *testing.T) {
	if _, err := dispatch.NewResultApplier(nil, intent.NewExecutor(), dispatch.Config{}); err == nil {
		t.Error("nil publisher accepted")
	}
	if _, err := dispatch.NewResultApplier(&fakePublisher{}, nil, dispatch.Config{}); err == nil {
		t.Error("nil executor accepted")
	}
}

func TestEventIDStable(t *testing.T) {
	a, b := dispatch.EventID(cause.EnvelopeID, 0), dispatch.EventID(cause.EnvelopeID, 1)
	if a == b || a != dispatch.EventID(cause.EnvelopeID, 0) || a.Version() != 5 {
		t.Fatalf("ids %s %s", a, b)
	}
}
