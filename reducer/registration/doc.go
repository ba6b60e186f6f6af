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
//	introspection  active                                 metadata refresh: BecameActive (the new capabilities);
//	                                                      upsert metadata columns, consul.register
//	ack            awaiting_ack, accepted                 -> active: AckReceived, BecameActive;
//	                                                      update {state, liveness_deadline}, consul.register
//	ack            active, ack_received                   no-op: duplicate ack
//	ack            none, pending, ack_timed_out, terminal no-op (warned): unknown node, too early, too late, terminal
//	heartbeat      active                                 update {last_heartbeat_at, liveness_deadline};
//	                                                      consul.pass_ttl when it enters a new third of the TTL
//	heartbeat      any other, none                        no-op (warned): a heartbeat never revives a node
//	timeout (ack)  awaiting_ack, deadline passed, unmarked -> ack_timed_out: AckTimedOut; update {state, marker}
//	timeout (liv.) active, deadline passed, unmarked      -> liveness_expired: LivenessExpired;
//	                                                      update {state, marker}, consul.deregister
//	shutdown       any (a stored state)                   -> removed (no projection): delete the row;
//	                                                      consul.deregister if active or ack_received;
//	                                                      a tombstone on the snapshot topic; no event
//	shutdown       none                                   no-op (not warned): nothing to remove
//	any            after a removal                        as for none: an introspection registers from
//	                                                      scratch (generation 1); an ack or a heartbeat
//	                                                      is a warned no-op; a timeout check a no-op
//
// A shutdown is ONEX's ModelNodeShutdownEvent ([Shutdown], event_type
// node_shutdown_event), on [TopicShutdown]: ONEX's platform topics name no
// shutdown topic, and this is the name ONEX's event streaming topic
// specification gives it. ONEX's orchestrator handles no shutdown; here it
// removes the registration, so the registry and the compacted snapshot
// topic hold only nodes that are there. A removal forgets the node: the
// staleness checks below then have no row to compare with, so a replay of
// the node's messages older than its shutdown (a consumer group reset)
// would register it again, and it would expire again as a node that is
// not there does.
//
// Introspections, acks, heartbeats and shutdowns come from the node, and
// the reducer decides them at the node's clock, their envelope timestamp:
// one that is not newer than the projection's updated_at (the time of the
// node's last message that changed it; timeouts leave it alone) is stale
// and a no-op.
// So a replay of old messages leaves the projections as they are. Timeout
// checks are decided at the deciding runtime's clock (Decide's now), not
// at the sweeper's: a sweeper whose clock runs ahead publishes checks
// early, and they are no-ops until the deadline passes by the partition
// owner's clock; the marker a timeout writes is that clock, so the node's
// next introspection is not refused for a time that lies in the future.
//
// Every introspection gets an answer: Accepted when it starts a
// registration, BecameActive when it refreshes an active one (the Python
// services answer a refresh with nothing, which leaves a node that
// restarted under its old id unable to tell that it is registered). A
// consumer of BecameActive therefore sees it again when an active node's
// metadata changes; it is keyed by node id, like every event, and carries
// the capabilities as they now are.
//
// Every no-op carries a reason. Durations are [Config] fields: AckTimeout
// (30 s), LivenessInterval (60 s, the deadline after activation) and
// LivenessWindow (90 s, the deadline after a heartbeat), each at most
// [MaxDuration] (ten years).
//
// # Ordering across topics
//
// Messages of one node are ordered only within one topic (each topic's
// partition). An introspection and its ack travel on different topics, so
// a node must not send the ack until it has seen the
// NodeRegistrationAccepted event addressed to it (its node id, the same
// correlation id): an ack that overtakes its introspection finds no
// registration awaiting it and is a no-op. The reducer marks that no-op,
// and every other sign that a node and the orchestrator disagree (an ack
// for an unknown node, too early, too late or in a terminal state; a
// heartbeat from an unknown node or in a state other than active), with
// reducer.Decision.Warn, and the runtime logs it at WARN. A duplicate ack
// of an active node and a stale heartbeat are at-least-once noise and not
// marked. Package node does the waiting for a node.
//
// # Output events and registry requests
//
// [DecodeEvent] and the typed decoders ([DecodeAccepted], ...) read the
// events the reducer emits back from their envelopes, for consumers such
// as nodes waiting for their acceptance; unknown payload fields are
// ignored, so a consumer accepts a newer producer's events. A
// [RegistryRequest] on [TopicRegistryRequest] asks nodes to introspect
// again; [RegistryRequest.Targets] says which.
//
// # Snapshots
//
// Every decision that changes the state, and the metadata refresh of an
// active node, also publishes a [Snapshot] of the registration to
// Topics.Snapshot ([TopicSnapshot] unless configured; off with
// Config.DisableSnapshots): a compacted topic keyed by node id, so its
// last message per key is the node's current registration. The payload is
// ONEX's ModelRegistrationSnapshot, exactly; registrar's own fields
// (node_version, endpoints, generation, registered_at) ride in the
// envelope metadata under "registrar". snapshot_version is the decision's
// time in Unix microseconds, strictly increasing per node (see
// [Reducer.Decide]). Heartbeats publish none, so a snapshot carries no
// liveness deadline or heartbeat time. A removal publishes a tombstone of
// the node (reducer.Event.Tombstone: its key, a nil value), which
// compaction keeps until it deletes the key. [DecodeSnapshot] reads a
// message of the topic, tombstones included.
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
// it expects ([UpdateRegistration].ExpectedState), an upsert the state of
// the row it overwrites, or none if it inserts (so an upsert whose row
// another writer removed is a conflict, not an insert). A state-changing update also carries every other value its
// decision read that another writer can change ([UpdateRegistration].Guard
// and Expected, compared as IS NOT DISTINCT FROM): the ack guards the
// generation (a timeout and a re-registration leave the row awaiting an ack
// again, one generation on) and updated_at; the ack timeout guards
// ack_deadline and its unset marker; the liveness timeout guards
// liveness_deadline, last_heartbeat_at (which its event reports), its unset
// marker, and the node type and generation its consul.deregister names. A
// removal ([DeleteRegistration]) names the state it read and guards the
// generation, updated_at and the node type its consul.deregister names. A
// heartbeat update guards liveness_deadline (the new one is the later of
// its own and the stored one) and updated_at, and carries the monotonic
// guard "stored last_heartbeat_at is NULL or older". A write whose state or
// column guard fails changes nothing and reports a conflict; the runtime
// then decides the message again against the current row, so the events of
// a decision made on a stale row are never published, and no write mixes
// two decisions. [ApplyUpsert], [ApplyUpdate] and [ApplyDelete] define
// these semantics; every store implements them.
//
// # Determinism and redelivery
//
// Decide reads no clock: it is given now, the deciding runtime's clock,
// and reads node inputs' times from their envelopes. Ids derive from the
// causing envelope, and a state change records the causing envelope id as
// last_applied_event_id. A redelivered message that was applied before
// decides nothing (it is stale, or its transition is made): the runtime's
// outbox, not a replay of the decision, carries the work its first
// delivery left undone.
//
// # Reading the registry
//
// [Reader] is the read API of the projections, which effects/memory and
// effects/postgres implement alike: Get by id, List a page of the
// projections that match a [Query] (any of some states, a node type, a
// capability whose value is true, updated since a time), ordered by entity
// id, after an opaque keyset cursor, and CountByState. The cursor is the
// last entity id of a page with a hash of the query's filters, so a cursor
// is refused ([ErrBadCursor]) by a query with other filters; the page size
// may change from page to page. Ordering by the entity id, which never
// changes, is what keeps a walk from skipping or repeating a row while
// rows change: a row that matches throughout the walk appears exactly
// once. [ListAll] collects every page, for tools and tests.
//
// Finding peers: a service that can reach the store asks it directly,
// List(ctx, Query{States: []State{StateActive}, NodeType: "effect"}) (see
// effects/memory's ExampleStore_List); one that should not touch the
// database runs a discovery.Client on the snapshot topic and asks its
// Lookup("effect") (see package discovery's Example).
//
//	page, err := reader.List(ctx, registration.Query{
//		States: []registration.State{registration.StateActive}, NodeType: "effect"})
//
// # Timeouts
//
// Timeouts travel through the bus: a sweeper scans the [Store] for overdue
// entities and publishes a [TimeoutCheck] keyed by the entity; the partition
// owner decides it against the current projection, as of its own clock.
// Duplicate checks are no-ops, and a heartbeat that was applied first wins.
package registration
