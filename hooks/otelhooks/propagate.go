package otelhooks

import (
	"context"
	"encoding/hex"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/registrar-go/registrar/bus"
)

// Inject writes the trace context of ctx into carrier through the
// Tracer's propagator (W3C traceparent and tracestate by default), and,
// when env is not nil and ctx holds a valid span context, into
// env.TraceID and env.SpanID in the ONEX form (see the package doc:
// "Envelope trace ids"). Either may be nil. A ctx without a span context
// writes nothing.
func (t *Tracer) Inject(ctx context.Context, carrier map[string]string, env *bus.Envelope) {
	if carrier != nil {
		t.prop.Inject(ctx, propagation.MapCarrier(carrier))
	}
	if env == nil {
		return
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		env.TraceID, env.SpanID = EnvelopeTraceID(sc.TraceID()), EnvelopeSpanID(sc.SpanID())
	}
}

// Extract returns ctx with the trace context that carrier holds, read
// through the Tracer's propagator, or ctx if it holds none or a malformed
// one.
func (t *Tracer) Extract(ctx context.Context, carrier map[string]string) context.Context {
	if len(carrier) == 0 {
		return ctx
	}
	return t.prop.Extract(ctx, propagation.MapCarrier(carrier))
}

// parent returns ctx with the producer's span context of m: from m's
// headers if they hold a valid one, else from env's trace_id and span_id
// (env may be nil), else ctx.
func (t *Tracer) parent(ctx context.Context, m *bus.Message, env *bus.Envelope) context.Context {
	if m != nil && len(m.Headers) > 0 {
		pctx := t.prop.Extract(ctx, propagation.MapCarrier(m.Headers))
		if sc := trace.SpanContextFromContext(pctx); sc.IsValid() && sc.IsRemote() {
			return pctx
		}
	}
	if env != nil {
		if sc, ok := EnvelopeSpanContext(env.TraceID, env.SpanID); ok {
			return trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	return ctx
}

// EnvelopeTraceID returns id as an envelope's trace_id: the canonical
// UUID string of its 16 bytes.
func EnvelopeTraceID(id trace.TraceID) string { return uuid.UUID(id).String() }

// EnvelopeSpanID returns id as an envelope's span_id: the canonical
// string of the UUID whose first 8 bytes are zero and last 8 are id's
// (Python's uuid.UUID(int=span_id)).
func EnvelopeSpanID(id trace.SpanID) string {
	var u uuid.UUID
	copy(u[8:], id[:])
	return u.String()
}

// EnvelopeSpanContext returns the remote span context that an envelope's
// trace_id and span_id name, sampled, and whether they name one: both
// must parse (see the package doc: "Envelope trace ids") and be non-zero.
func EnvelopeSpanContext(traceID, spanID string) (trace.SpanContext, bool) {
	if traceID == "" || spanID == "" {
		return trace.SpanContext{}, false
	}
	tid, ok := parseEnvelopeTraceID(traceID)
	if !ok {
		return trace.SpanContext{}, false
	}
	sid, ok := parseEnvelopeSpanID(spanID)
	if !ok {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	}), true
}

// parseEnvelopeTraceID parses a trace_id written as a UUID in any of the
// forms uuid.Parse reads, 32 hex digits among them.
func parseEnvelopeTraceID(s string) (trace.TraceID, bool) {
	u, err := uuid.Parse(s)
	if err != nil {
		return trace.TraceID{}, false
	}
	id := trace.TraceID(u)
	return id, id.IsValid()
}

// parseEnvelopeSpanID parses a span_id written as 16 hex digits or as a
// UUID, whose low 8 bytes it takes.
func parseEnvelopeSpanID(s string) (trace.SpanID, bool) {
	var id trace.SpanID
	if len(s) == 2*len(id) {
		if _, err := hex.Decode(id[:], []byte(s)); err != nil {
			return trace.SpanID{}, false
		}
		return id, id.IsValid()
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return trace.SpanID{}, false
	}
	copy(id[:], u[8:])
	return id, id.IsValid()
}
