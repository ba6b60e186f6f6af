// Package registration is the registration workflow's domain: the state
// machine ([Reducer]), the ONEX messages it reads and the events it writes,
// the projection it keeps ([Projection]), and the intents it emits with their
// typed payloads.
//
// # The state machine
//
//	input          state                                  decision
//	introspection  none, ack_timed_out, liveness_expired,  -> awaiting_ack: Initiated, Accepted(ack_deadline);
//	               rejected                               upsert the projection (markers cleared, generation+1)
//	introspection  awaiting_ack, accepted, pending, ack_r. no-op: registration in progress
//	introspection  active                                 metadata refresh: upsert metadata columns, consul.register
//	ack            awaiting_ack, accepted                 -> active: AckReceived, BecameActive;
//	                                                      update {state, liveness_deadline}, consul.register
//	ack            active, ack_received                   no-op: duplicate ack
//	ack            none, ack_timed_out, terminal          no-op: unknown node, too late, terminal
//	heartbeat      active                                 update {last_heartbeat_at, liveness_deadline};
//	                                                      consul.pass_ttl when it enters a new third of the TTL
//	heartbeat      any other, none                        no-op: a heartbeat never revives a node
//	timeout (ack)  awaiting_ack, deadline passed, unmarked -> ack_timed_out: AckTimedOut; update {state, marker}
//	timeout (liv.) active, deadline passed, unmarked      -> liveness_expired: LivenessExpired;
//	                                                      update {state, marker}, consul.deregister
//
// Introspections, acks and heartbeats come from the node, and the reducer
// orders them by the node's clock: one that is not newer than the
// projection's updated_at (the time of the node's last message that changed
// it; timeouts leave it alone) is stale and a no-op. So a replay of old
// messages leaves the projections as they are, and no comparison mixes the
// node's clock with the sweeper's.
//
// Every no-op carries a reason. Durations are [Config] fields: AckTimeout
// (30 s), LivenessInterval (60 s, the deadline after activation) and
// LivenessWindow (90 s, the deadline after a heartbeat), each at most
// [MaxDuration] (ten years).
//
// # Time bounds
//
// Every timestamp the decoders accept is strict RFC 3339 with a zone, in
// UTC, between bus.MinTime (2000-01-01) and bus.MaxTime (9000-01-01); a zero,
// epoch or far-future time is a [*bus.DecodeError] naming the field, so the
// runtime dead-letters it. A deadline is its start plus a Config duration,
// in UTC, saturated at 9999-12-31T23:59:59.999999Z: from decoded input it is
// exact and far below that ceiling, and whatever now Decide is given, every
// deadline it writes marshals with encoding/json.
//
// # Guards
//
// Every write carries the state its decision saw: an update names the state
// it expects ([UpdateRegistration].ExpectedState), an upsert the state it
// overwrites, and a heartbeat update also carries the monotonic guard
// "stored last_heartbeat_at is NULL or older". A write whose state guard
// fails changes nothing and reports a conflict; the runtime then decides the
// message again against the current state, so the events of a decision made
// on stale state are never published. [ApplyUpsert] and [ApplyUpdate] define
// these semantics; every store implements them.
//
// # Determinism and redelivery
//
// Decide reads no clock: now is the causing envelope's timestamp (for a
// timeout check, the sweep's time). Ids derive from the causing envelope. A
// state change records the causing envelope id as last_applied_event_id, so a
// redelivered message is recognized and its events (and the idempotent Consul
// intents) are emitted again, identical, while its already-applied write is
// not repeated.
//
// # Timeouts
//
// Timeouts travel through the bus: a sweeper scans the [Store] for overdue
// entities and publishes a [TimeoutCheck] keyed by the entity; the partition
// owner decides it against the current projection. Duplicate checks are
// no-ops, and a heartbeat that was applied first wins.
package registration
