// Package otelhooks reports what registrar does to OpenTelemetry: traces
// that follow a registration across services, and metrics. It is the
// adapter of package hooks: install its values on the Runtime with
// registrar.WithHooks (and on the sweeper with SweeperConfig.Hooks, on a
// node with node.WithPropagator), and the core stays free of any
// OpenTelemetry dependency.
//
// # Traces
//
// A [Tracer] (from [NewTracer]) implements hooks.MessageTracer,
// hooks.StepTracer and hooks.Propagator:
//
//   - Each message the Runtime handles gets a consumer span,
//     "process <topic>", whose parent is the producer's span: taken from
//     the W3C traceparent and tracestate message headers when they hold
//     one, else from the envelope's trace_id and span_id (which is how the
//     Python ONEX services send it; see below). Its attributes follow the
//     OpenTelemetry messaging semantic conventions (messaging.system,
//     messaging.destination.name, messaging.destination.partition.id,
//     messaging.kafka.offset, messaging.kafka.message.key,
//     messaging.message.id = the envelope id,
//     messaging.message.conversation_id = the correlation id) plus
//     registrar's own (registrar.event_type, registrar.input_kind,
//     registrar.entity_id, registrar.outcome, registrar.state). A message
//     that is dead-lettered or aborted ends with status Error and its
//     error recorded. messaging.consumer.group.name is not set: the hooks
//     are not told the group.
//   - Each step of its handling is a child span: "load", "decide",
//     "commit", "intent <type>" and "publish <topic>" (a producer span),
//     with the count of what it covers (registrar.count); a failed step
//     ends with status Error.
//   - Every event the Runtime publishes carries the trace context of the
//     message that caused it, in its headers (traceparent, tracestate) and
//     in its envelope (trace_id, span_id), so the consumer of, e.g., a
//     BecameActive event continues the trace: one trace shows node →
//     registrar → consumer. The outbox record that an event is relayed
//     from carries it too, so what the relay does after a restart still
//     belongs to the trace.
//
// # Envelope trace ids
//
// The ONEX envelope (omnibase_core ModelEventEnvelope) types trace_id and
// span_id as UUIDs, written in their canonical 36-character form. A
// [Tracer] writes an OpenTelemetry trace id as the UUID of its 16 bytes
// and a span id as the UUID whose integer value is the span id (the first
// 8 bytes zero): what Python's uuid.UUID(int=...) makes of the OpenTelemetry
// ids, so that a Python service can read them back. It reads a trace_id as
// any form of UUID (36 characters with hyphens, 32 hex digits — the W3C
// form —, braces or urn:uuid:) and a span_id as 16 hex digits (the W3C
// form) or any form of UUID, whose low 8 bytes are the span id. A value
// that does not parse, or is all zeros (the ONEX "not set"), is ignored
// without a log: the span then starts a new trace. An envelope carries no
// trace flags; its context is taken as sampled, since a sender that wrote
// ids wants the trace continued. A sampler decides what is recorded, as for
// any remote parent: sdktrace.ParentBased's WithRemoteParentSampled
// option chooses otherwise.
//
// # Metrics
//
// The metrics are described on the Metrics type.
package otelhooks
