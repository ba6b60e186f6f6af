// Package registrar runs a reducer-authoritative registration workflow:
// services announce themselves on an event bus, one pure reducer decides
// every state transition, and its decisions come out as events, published
// keyed by entity, and as intents, executed by pluggable effects.
//
// # The flow of one message
//
//  1. The bus (package bus: bus/memory in process, bus/kafka on Kafka)
//     delivers a message to the [Runtime], or a micro-batch of a
//     partition's waiting messages. Messages of one partition are handled
//     one at a time, in offset order; partitions run concurrently. A single
//     message is a batch of one: there is one engine.
//  2. The Runtime decodes the ONEX envelope and the reducer decodes its
//     payload. Input that cannot be decoded, is invalid, or is stamped more
//     than [WithMaxClockSkew] ahead of the Runtime's clock is a content
//     error: the message goes to the dead-letter topic with the reason and
//     its origin in headers, its offset is committed, and the partition goes
//     on. Nothing panics, nothing blocks.
//  3. The Runtime loads the entities' states from the [StateStore] (or
//     finds them in its state cache, [WithStateCache]: the partition owner
//     is the only writer of its entities, so what its last write left is
//     what the store holds, and the guards catch it when that does not
//     hold) and calls the reducer's Decide(state, input, now), with now the
//     Runtime's clock ([WithClock]; the registration reducer decides node
//     messages at their own timestamps and timeouts at now). Decide is pure:
//     no I/O, no clock, no randomness; ids derive from the causing envelope.
//     Inputs of one entity in one micro-batch that stand for one another
//     (a node's heartbeats: the newest covers the others) are decided once
//     ([WithCoalescing]); every message is still acknowledged.
//  4. Everything the decision needs is prepared before anything runs
//     (dispatch.Applier.Prepare): its events encoded as messages and
//     checked against the bus's size limit, its recorded intents encoded. A
//     failure is a content error of the input: dead-lettered with the
//     reason, never retried.
//  5. The store applies the decision's projection writes and appends a
//     record of the rest (its events, its intents on other systems such as
//     Consul) in one atomic write: the transactional outbox
//     (dispatch.Outbox). A guarded write that finds the state moved (a
//     conflict) writes nothing and appends nothing; the message is decided
//     again against the current state.
//  6. The relay executes the record's intents and publishes its events,
//     each keyed by its entity id so that every event of one entity lands
//     on one partition in order, then removes the record. Output envelope
//     ids are UUIDv5 of the causing envelope id and the event's index.
//  7. Then the offset is committed. An error of the environment (a
//     database, a broker or an agent down, a refused credential; marked
//     intent.Retryable by the adapters) is retried with backoff and never
//     costs an input; an error that will recur (marked permanent, or
//     unmarked and repeated [WithMaxAttempts] times) dead-letters the
//     message at fault with its reason and attempt count. A crash between
//     5 and 7 only delays the work: the redelivered message decides nothing
//     new, and the record is relayed by whoever handles the entity next or
//     by the relay task ([WithRelay]), which also runs on start-up.
//
// # The registration workflow
//
// [NewRegistration] wires the registration reducer (package
// reducer/registration: awaiting_ack → active → liveness_expired, with ack
// and liveness deadlines and heartbeats, and removal on a node's shutdown
// announcement, ModelNodeShutdownEvent on onex.node.shutdown.announced.v1,
// which package node sends when it stops) from a contract (package contract),
// a bus, a store and an executor, and runs a [Sweeper] beside it: timeouts
// travel through the bus as keyed timeout checks, so the partition owner
// decides them in order with the entity's other messages, and a timeout
// really changes the state. With RegistrationConfig.Reconciler set (the
// Consul reconciler of effects/consul), it also runs the anti-entropy that
// brings Consul back in line with the projections ([WithReconciler]).
//
//	store := memory.NewStore(memory.StoreConfig{})
//	exec := intent.NewExecutor()
//	_ = memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{}))
//	rt, err := registrar.NewRegistration(contract.Default(), b, store, exec, registrar.RegistrationConfig{}, registrar.WithLogger(log))
//	if err != nil { ... }
//	err = rt.Run(ctx) // until ctx ends
//
// # Ordering across topics
//
// Messages of one node are ordered only within one topic: the bus keeps
// the order of each topic's partition, and nothing orders two topics. An
// introspection and its ack travel on different topics, so a node must not
// send the ack until it has seen the NodeRegistrationAccepted event
// addressed to it (its node id, the same correlation id); an ack that
// overtakes its introspection finds no registration awaiting it and is a
// no-op. Such no-ops, and every ack or heartbeat for a node the
// orchestrator does not know or knows in a state that does not take it
// (reducer.Decision.Warn), are logged at WARN with the reason, the node id
// and the message's topic, partition and offset, at most ten a minute per
// Runtime, and all counted in [Stats].NoOpsWarned. Package node does the
// waiting for a node.
//
// # Re-introspection
//
// [RequestIntrospection] publishes a registry request
// (registration.RegistryRequest) on
// onex.evt.platform.registry-request-introspection.v1, asking the nodes it
// targets to introspect again, for example after the store was lost or
// restored.
//
// # Telemetry
//
// [WithHooks] installs telemetry hooks (package hooks): each message is
// reported from its start to its outcome, with its steps (load, decide,
// commit, each intent, each publish), retries, dead letters, conflicts,
// micro-batches and partition assignments; the relay reports the intents
// and events it runs from the outbox, in the trace context the outbox
// record carries; [SweeperConfig].Hooks reports every sweep. Without
// hooks the Runtime does no telemetry work. Package hooks/otelhooks adapts
// them to OpenTelemetry traces and metrics and serves the metrics to
// Prometheus.
//
// # Lifecycle
//
// [New] and [NewRegistration] start no goroutines. [Runtime.Run] blocks until
// its context ends and returns nil then; it runs the consumer, the relay
// task, the reconciler and the tasks of [WithTask] (the sweeper); [Runtime.Close] stops a Run and
// waits for it. The Runtime does not own the bus, the store or the effects:
// whoever built them closes them, after the Runtime stopped.
package registrar
