package otelhooks

import (
	"context"
	"strconv"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
)

// TracerName is the instrumentation scope name of the Tracer's spans.
const TracerName = "github.com/registrar-go/registrar/hooks/otelhooks"

// DefaultMessagingSystem is the messaging.system of the Tracer's spans
// unless [WithMessagingSystem] names another.
const DefaultMessagingSystem = "kafka"

// The registrar attributes of the Tracer's spans.
const (
	// AttrEventType is the envelope's event_type.
	AttrEventType = attribute.Key("registrar.event_type")
	// AttrInputKind is the reducer's input kind (e.g. "heartbeat").
	AttrInputKind = attribute.Key("registrar.input_kind")
	// AttrEntityID is the id of the entity the message is about.
	AttrEntityID = attribute.Key("registrar.entity_id")
	// AttrOutcome is the message's hooks.Outcome.
	AttrOutcome = attribute.Key("registrar.outcome")
	// AttrState is the entity's state after the decision, when it changed.
	AttrState = attribute.Key("registrar.state")
	// AttrStep is a step span's hooks.StepKind.
	AttrStep = attribute.Key("registrar.step")
	// AttrCount is how many messages, entities, decisions, intents or
	// events a step covers.
	AttrCount = attribute.Key("registrar.count")
	// AttrIntentType is the intent type of an intent step.
	AttrIntentType = attribute.Key("registrar.intent_type")
	// AttrSkipped counts the intents of an intent step whose idempotence
	// guard held; set when not zero.
	AttrSkipped = attribute.Key("registrar.skipped")
	// AttrConflicts counts the intents or writes of a step that met a
	// conflict; set when not zero.
	AttrConflicts = attribute.Key("registrar.conflicts")
)

// Tracer turns the Runtime's message and step hooks into OpenTelemetry
// spans, and carries their context across the bus and the outbox; see the
// package doc. It implements hooks.MessageTracer, hooks.StepTracer and
// hooks.Propagator, and is safe for concurrent use.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	system attribute.KeyValue
	kafka  bool
}

var (
	_ hooks.MessageTracer = (*Tracer)(nil)
	_ hooks.StepTracer    = (*Tracer)(nil)
	_ hooks.Propagator    = (*Tracer)(nil)
)

// TracerOption configures a [Tracer]; see [NewTracer].
type TracerOption interface{ applyTracer(*tracerConfig) }

type tracerConfig struct {
	provider trace.TracerProvider
	prop     propagation.TextMapPropagator
	system   string
}

type tracerOptionFunc func(*tracerConfig)

func (f tracerOptionFunc) applyTracer(c *tracerConfig) { f(c) }

// WithTracerProvider sets the provider of the Tracer's spans; the default
// is otel.GetTracerProvider() when NewTracer is called. A nil provider
// keeps the default.
func WithTracerProvider(tp trace.TracerProvider) TracerOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if tp != nil {
			c.provider = tp
		}
	})
}

// WithPropagator sets how trace context is written into and read from
// message headers and outbox records; the default is the W3C Trace
// Context propagator (traceparent, tracestate). A composite propagator
// (propagation.NewCompositeTextMapPropagator) adds baggage. A nil
// propagator keeps the default. The envelope's trace_id and span_id are
// written and read whatever the propagator.
func WithPropagator(p propagation.TextMapPropagator) TracerOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if p != nil {
			c.prop = p
		}
	})
}

// WithMessagingSystem sets the messaging.system attribute of the consumer
// and publish spans; the default is [DefaultMessagingSystem]. The
// messaging.kafka.* attributes are set only for "kafka". Name the bus the
// Runtime runs on, e.g. "memory" for the in-process bus. An empty name
// keeps the default.
func WithMessagingSystem(name string) TracerOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if name != "" {
			c.system = name
		}
	})
}

// NewTracer returns a Tracer configured by opts.
func NewTracer(opts ...TracerOption) *Tracer {
	c := tracerConfig{prop: propagation.TraceContext{}, system: DefaultMessagingSystem}
	for _, o := range opts {
		o.applyTracer(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	return &Tracer{
		tracer: c.provider.Tracer(TracerName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   c.prop,
		system: semconv.MessagingSystemKey.String(c.system),
		kafka:  c.system == DefaultMessagingSystem,
	}
}

// spanKey is the context key of the span a Tracer started: with several
// tracers installed, the context StepEnd or MessageEnd gets may have
// another tracer's span as its current span.
type spanKey struct{}

func (t *Tracer) start(ctx context.Context, name string, opts ...trace.SpanStartOption) context.Context {
	ctx, span := t.tracer.Start(ctx, name, opts...)
	return context.WithValue(ctx, spanKey{}, span)
}

func spanOf(ctx context.Context) trace.Span {
	if s, ok := ctx.Value(spanKey{}).(trace.Span); ok {
		return s
	}
	return trace.SpanFromContext(ctx)
}

// MessageStart starts the consumer span of m, "process <topic>", whose
// parent is the producer's span (from m's headers, else env's trace_id and
// span_id), and returns the context that holds it.
func (t *Tracer) MessageStart(ctx context.Context, m *bus.Message, env *bus.Envelope) context.Context {
	ctx = t.parent(ctx, m, env)
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs, t.system,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(m.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(m.Partition))),
		semconv.MessagingMessageBodySize(len(m.Value)))
	if t.kafka {
		attrs = append(attrs, semconv.MessagingKafkaOffset(int(m.Offset)))
		if m.Key != nil && utf8.Valid(m.Key) {
			attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(m.Key)))
		}
		if m.Value == nil {
			attrs = append(attrs, semconv.MessagingKafkaMessageTombstone(true))
		}
	}
	if env != nil {
		attrs = append(attrs, semconv.MessagingMessageID(env.EnvelopeID.String()))
		if env.CorrelationID != [16]byte{} {
			attrs = append(attrs, semconv.MessagingMessageConversationID(env.CorrelationID.String()))
		}
		if env.EventType != "" {
			attrs = append(attrs, AttrEventType.String(env.EventType))
		}
	}
	return t.start(ctx, "process "+m.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// MessageEnd ends the consumer span of m with its outcome: the input kind,
// entity, outcome and new state as attributes; a dead-lettered or aborted
// message ends with status Error and its error recorded.
func (t *Tracer) MessageEnd(ctx context.Context, _ *bus.Message, end hooks.MessageEnd) {
	span := spanOf(ctx)
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, AttrOutcome.String(string(end.Outcome)))
	if end.Kind != "" {
		attrs = append(attrs, AttrInputKind.String(end.Kind))
	}
	if end.EntityID != [16]byte{} {
		attrs = append(attrs, AttrEntityID.String(end.EntityID.String()))
	}
	if end.State != "" {
		attrs = append(attrs, AttrState.String(end.State))
	}
	switch end.Outcome {
	case hooks.OutcomeDeadLettered, hooks.OutcomeAborted:
		attrs = append(attrs, semconv.ErrorTypeKey.String(string(end.Outcome)))
		span.SetAttributes(attrs...)
		desc := string(end.Outcome)
		if end.Err != nil {
			span.RecordError(end.Err)
			desc = end.Err.Error()
		}
		span.SetStatus(codes.Error, desc)
	default:
		span.SetAttributes(attrs...)
	}
	span.End()
}

// StepStart starts the span of step s, a child of the span in ctx: "load",
// "decide", "commit", "intent <type>" or "publish <topic>" (a producer
// span).
func (t *Tracer) StepStart(ctx context.Context, s hooks.Step) context.Context {
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, AttrStep.String(string(s.Kind)), AttrCount.Int(s.Count))
	kind := trace.SpanKindInternal
	name := string(s.Kind)
	switch s.Kind {
	case hooks.StepIntent:
		name += " " + s.IntentType
		attrs = append(attrs, AttrIntentType.String(s.IntentType))
	case hooks.StepPublish:
		kind = trace.SpanKindProducer
		attrs = append(attrs, t.system, semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("publish"))
		if s.Topic != "" {
			name += " " + s.Topic
			attrs = append(attrs, semconv.MessagingDestinationName(s.Topic))
		}
		if s.Count > 1 {
			attrs = append(attrs, semconv.MessagingBatchMessageCount(s.Count))
		}
	}
	return t.start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// StepEnd ends the span of step s; a failed step ends with status Error
// and its error recorded.
func (t *Tracer) StepEnd(ctx context.Context, _ hooks.Step, end hooks.StepEnd) {
	span := spanOf(ctx)
	if end.Skipped != 0 {
		span.SetAttributes(AttrSkipped.Int(end.Skipped))
	}
	if end.Conflicts != 0 {
		span.SetAttributes(AttrConflicts.Int(end.Conflicts))
	}
	if end.Err != nil {
		span.RecordError(end.Err)
		span.SetStatus(codes.Error, end.Err.Error())
	}
	span.End()
}
