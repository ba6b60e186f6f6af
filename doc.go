// Package registrar runs a reducer-authoritative registration workflow:
// services announce themselves on an event bus, one pure reducer decides
// every state transition, and its decisions come out as events, published
// keyed by entity, and as intents, executed by pluggable effects.
//
// # The flow of one message
//
//  1. The bus (package bus: bus/memory in process, bus/kafka on Kafka)
//     delivers a message to the [Runtime]. Messages of one partition are
//     handled one at a time, in offset order; partitions run concurrently.
//  2. The Runtime decodes the ONEX envelope and the reducer decodes its
//     payload. Input that cannot be decoded or is invalid is a content
//     error: the message goes to the dead-letter topic with the reason and
//     its origin in headers, its offset is committed, and the partition goes
//     on. Nothing panics, nothing blocks.
//  3. The Runtime loads the entity's state from the [StateStore] and calls
//     the reducer's Decide(state, input, now), with now the envelope's
//     timestamp. Decide is pure: no I/O, no clock, no randomness; ids derive
//     from the causing envelope, so a redelivered message yields the same
//     decision.
//  4. The dispatch.ResultApplier executes the decision's intents in order
//     through the intent.Executor (Postgres upsert and update, Consul
//     register and deregister, or the in-memory effects), then publishes its
//     events, each keyed by its entity id so that every event of one entity
//     lands on one partition in order. Output envelope ids are UUIDv5 of the
//     causing envelope id and the event's index.
//  5. Only then is the offset committed. An infrastructure error (a database
//     or broker down) is retried with exponential backoff without
//     committing: at least once, nothing lost. An effect error marked
//     permanent dead-letters the message. If a guarded write finds the state
//     moved (a conflict), the events are not published and the message is
//     decided again against the current state.
//
// # The registration workflow
//
// [NewRegistration] wires the registration reducer (package
// reducer/registration: awaiting_ack → active → liveness_expired, with ack
// and liveness deadlines and heartbeats) from a contract (package contract),
// a bus, a store and an executor, and runs a [Sweeper] beside it: timeouts
// travel through the bus as keyed timeout checks, so the partition owner
// decides them in order with the entity's other messages, and a timeout
// really changes the state.
//
//	store := memory.NewStore(memory.StoreConfig{})
//	exec := intent.NewExecutor()
//	_ = memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{}))
//	rt, err := registrar.NewRegistration(contract.Default(), b, store, exec, registrar.WithLogger(log))
//	if err != nil { ... }
//	err = rt.Run(ctx) // until ctx ends
//
// # Lifecycle
//
// [New] and [NewRegistration] start no goroutines. [Runtime.Run] blocks until
// its context ends and returns nil then; [Runtime.Close] stops a Run and
// waits for it. The Runtime does not own the bus, the store or the effects:
// whoever built them closes them, after the Runtime stopped.
package registrar
