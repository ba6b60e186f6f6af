// Package hooks is how registrar reports what it does to telemetry: tiny
// optional interfaces that a hook implements as it needs, detected by type
// assertion, in the manner of pgx's tracers and franz-go's hooks.
//
// A hook is any value. [New] sorts the hooks it is given by the interfaces
// they implement into a [Set], and the components report through the Set:
// the Runtime (registrar.WithHooks) for each message received, decoded,
// decided and handled, each step of its handling (load, decide, commit,
// each intent executed, each publish), retries, dead letters, conflicts,
// micro-batches and partitions assigned and revoked on the bus; the
// dispatch relay for the intents and events it runs from the outbox; and
// the timeout sweeper (registrar.SweeperConfig.Hooks) for each sweep.
//
// The interfaces:
//
//   - [MessageTracer]: the start and end of one message's handling. The
//     context MessageStart returns is the one the message's steps run in,
//     so a tracer starts the consumer span there, continuing the
//     producer's trace.
//   - [StepTracer]: the start and end of one step (load, decide, commit,
//     intent, publish).
//   - [Propagator]: carries a trace context from a message's handling onto
//     what it causes: the events published (headers and envelope) and the
//     outbox record their intents and events are relayed from.
//   - [DecodeHook], [DecideHook], [RetryHook], [DeadLetterHook],
//     [ConflictHook], [BatchHook], [PartitionHook], [SweepHook]: events.
//
// Hooks are called synchronously on the path they observe: a hook must be
// fast, must not block, and must be safe for concurrent use (partitions
// are handled concurrently). A nil *Set is valid and reports nothing; a
// component with no hooks installed does no extra work and makes no extra
// allocation on its hot path (BenchmarkHandleHeartbeat and
// BenchmarkHandleHeartbeatHooks in the root package).
//
// The OpenTelemetry adapter (package hooks/otelhooks) implements every
// interface; its Prometheus handler serves the resulting metrics.
package hooks
