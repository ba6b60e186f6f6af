package otelhooks_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	registrar "github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/hooks/otelhooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// envelopeOnly is a node propagator that writes the trace context only into
// the envelope's trace_id and span_id, as the Python ONEX services do: the
// messages carry no traceparent header.
type envelopeOnly struct{ t *otelhooks.Tracer }

func (e envelopeOnly) Inject(ctx context.Context, _ map[string]string, env *bus.Envelope) {
	e.t.Inject(ctx, nil, env)
}

func (e envelopeOnly) Extract(ctx context.Context, _ map[string]string) context.Context { return ctx }

// traced is what one traced registration on Kafka left behind.
type traced struct {
	spans    tracetest.SpanStubs
	nodeSpan trace.SpanContext // the node's producer span, parent of its messages
	became   *bus.Envelope     // the BecameActive envelope the downstream service read
	downName string
}

// traceRegistration runs one node's registration on kfake (sarama): the
// node publishes in a span of its own, through the propagator nodeProp
// makes of the Runtime's tracer; the registration Runtime (memory store,
// the tracer installed) handles its introspection, ack and a heartbeat;
// a downstream service, a plain subscription, continues the trace of the
// BecameActive event with the same propagator. It returns every span once
// all of them ended.
func traceRegistration(t *testing.T, nodeProp func(*otelhooks.Tracer) hooks.Propagator) traced {
	t.Helper()
	c := kafkatest.Start(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := otelhooks.NewTracer(otelhooks.WithTracerProvider(tp))

	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(nil, c.NewBus(t), store, exec, registrar.RegistrationConfig{NoSweeper: true},
		registrar.WithHooks(tracer), registrar.WithRetryBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rtDone := make(chan error, 1)
	go func() { rtDone <- rt.Run(ctx) }()

	const downName = "downstream handle became-active"
	became := make(chan *bus.Envelope, 1)
	svcDone := make(chan error, 1)
	svc := c.NewBus(t)
	go func() {
		svcDone <- svc.Subscribe(ctx, "downstream", []string{registration.TopicBecameActive}, func(mctx context.Context, m *bus.Message) error {
			_, span := tp.Tracer("downstream").Start(tracer.Extract(mctx, m.Headers), downName,
				trace.WithSpanKind(trace.SpanKindConsumer))
			span.End()
			env, err := bus.DecodeEnvelope(m.Value)
			if err != nil {
				t.Errorf("downstream: %v", err)
				return nil
			}
			select {
			case became <- env:
			default:
			}
			return nil
		})
	}()

	nd, err := node.New(c.NewBus(t), node.Info{ID: uuid.New(), Type: registration.NodeTypes[0], Version: bus.Version{Major: 1}},
		node.WithPropagator(nodeProp(tracer)), node.WithHeartbeat(200*time.Millisecond, 0),
		// Its shutdown would be handled while the spans are collected.
		node.WithoutShutdownAnnouncement())
	if err != nil {
		t.Fatal(err)
	}
	nctx, nspan := tp.Tracer("node").Start(ctx, "node run", trace.WithSpanKind(trace.SpanKindProducer))
	nctx, cancelNode := context.WithCancel(nctx)
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- nd.Run(nctx) }()
	// The body and the cleanup both stop the node; Run returns once.
	stopNode := sync.OnceFunc(func() {
		cancelNode()
		if err := <-nodeDone; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	t.Cleanup(func() {
		stopNode()
		cancel()
		if err := <-rtDone; err != nil {
			t.Errorf("runtime: %v", err)
		}
		if err := <-svcDone; err != nil {
			t.Errorf("downstream: %v", err)
		}
	})

	var env *bus.Envelope
	select {
	case env = <-became:
	case <-time.After(60 * time.Second):
		t.Fatal("the downstream service got no BecameActive event")
	}
	// Wait for the consumer spans of the introspection, the ack and a
	// heartbeat to end, and for the downstream span.
	want := []string{"process " + registration.TopicIntrospection, "process " + registration.TopicAck,
		"process " + registration.TopicHeartbeat, downName}
	deadline := time.Now().Add(60 * time.Second)
	for !hasAll(exp.GetSpans(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("spans %v; want at least %v", names(exp.GetSpans()), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopNode()
	nspan.End()
	return traced{spans: exp.GetSpans(), nodeSpan: nspan.SpanContext(), became: env, downName: downName}
}

func hasAll(spans tracetest.SpanStubs, want []string) bool {
	have := map[string]bool{}
	for _, s := range spans {
		have[s.Name] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

// checkTrace asserts the shape of a traced registration: one trace id; each
// Runtime consumer span's parent is the node's span (remote); each step
// span's parent is a Runtime consumer span; the downstream span's parent is
// the consumer span of the ack that made the node active; and the
// BecameActive envelope names that span in the ONEX form.
func checkTrace(t *testing.T, tr traced) {
	t.Helper()
	consumers := map[trace.SpanID]tracetest.SpanStub{}
	var ackSpan trace.SpanID
	var down *tracetest.SpanStub
	steps := map[string]int{}
	for i, s := range tr.spans {
		if got := s.SpanContext.TraceID(); got != tr.nodeSpan.TraceID() {
			t.Errorf("span %q has trace %s; want the node's %s", s.Name, got, tr.nodeSpan.TraceID())
		}
		switch {
		case s.Name == tr.downName:
			down = &tr.spans[i]
		case s.InstrumentationScope.Name == otelhooks.TracerName && s.SpanKind == trace.SpanKindConsumer:
			consumers[s.SpanContext.SpanID()] = s
			if s.Name == "process "+registration.TopicAck {
				ackSpan = s.SpanContext.SpanID()
			}
		}
	}
	if len(consumers) < 3 {
		t.Fatalf("%d Runtime consumer spans; want at least 3 (introspection, ack, heartbeat): %v", len(consumers), names(tr.spans))
	}
	for _, s := range consumers {
		if s.Parent.SpanID() != tr.nodeSpan.SpanID() || !s.Parent.IsRemote() {
			t.Errorf("consumer span %q: parent %s (remote %v); want the node's span %s, remote",
				s.Name, s.Parent.SpanID(), s.Parent.IsRemote(), tr.nodeSpan.SpanID())
		}
		if outcome := attr(s, otelhooks.AttrOutcome); outcome != string(hooks.OutcomeApplied) && outcome != string(hooks.OutcomeNoop) {
			t.Errorf("consumer span %q: outcome %q", s.Name, outcome)
		}
	}
	for _, s := range tr.spans {
		if s.InstrumentationScope.Name != otelhooks.TracerName || s.SpanKind == trace.SpanKindConsumer {
			continue
		}
		steps[s.Name]++
		if _, ok := consumers[s.Parent.SpanID()]; !ok {
			t.Errorf("step span %q: parent %s is not a Runtime consumer span", s.Name, s.Parent.SpanID())
		}
	}
	// A decision's events go to several topics (the event's and the
	// snapshot topic) in one publish: the span is named "publish".
	for _, name := range []string{"load", "decide", "commit", "intent " + registration.IntentConsulReg, "publish"} {
		if steps[name] == 0 {
			t.Errorf("no %q step span; steps: %v", name, steps)
		}
	}
	if down == nil {
		t.Fatal("no downstream span")
	}
	if down.Parent.SpanID() != ackSpan {
		t.Errorf("downstream span's parent %s; want the ack's consumer span %s", down.Parent.SpanID(), ackSpan)
	}
	if tr.became.TraceID != otelhooks.EnvelopeTraceID(tr.nodeSpan.TraceID()) || tr.became.SpanID != otelhooks.EnvelopeSpanID(ackSpan) {
		t.Errorf("BecameActive envelope trace_id %q span_id %q; want %q %q", tr.became.TraceID, tr.became.SpanID,
			otelhooks.EnvelopeTraceID(tr.nodeSpan.TraceID()), otelhooks.EnvelopeSpanID(ackSpan))
	}
}

// attr returns the value of s's attribute key as a string, "" if unset.
func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestTraceAcrossServicesKafka: a node's introspection, ack and heartbeat
// carry a traceparent header (and the envelope ids); the Runtime on kfake
// continues the node's trace; the downstream consumer of BecameActive
// continues the Runtime's.
func TestTraceAcrossServicesKafka(t *testing.T) {
	checkTrace(t, traceRegistration(t, func(tr *otelhooks.Tracer) hooks.Propagator { return tr }))
}

// TestTraceAcrossServicesKafkaEnvelopeOnly: the same with only the
// envelope's trace_id and span_id set, as the Python services send them.
func TestTraceAcrossServicesKafkaEnvelopeOnly(t *testing.T) {
	checkTrace(t, traceRegistration(t, func(tr *otelhooks.Tracer) hooks.Propagator { return envelopeOnly{tr} }))
}
