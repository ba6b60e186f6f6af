// Package dispatch applies a reducer's decisions so that their work is never
// lost: the decision's state change and the record of everything that must
// follow it are one atomic write, and the work is done from that record.
//
// # The transactional outbox
//
// A decision has intents and events. The projection store executes the
// intents it owns ([Outbox.Owns]: the projection writes) itself; every
// other intent (a Consul register or deregister) and every event goes into
// a [Record] that the store appends to its outbox in the same atomic write
// ([Outbox.Commit]): the same Postgres transaction as the projection row,
// or the same critical section of the memory store. The [Relay] then
// executes the record's intents, publishes its events keyed by entity, and
// removes the record; records of one entity are relayed strictly in order.
// A crash or a failover between the write and the relay delays the work,
// never loses it: whoever relays next (the runtime's relay task scans for
// records left behind, on start-up too) does it. A failure of the relay
// never sends the decision back to the reducer: the state is committed, so
// a re-decision would see a state that moved on and decide nothing. This is
// what replaces the replay detection by last applied event id, which could
// not survive a state that moved on.
//
// Decisions without events whose intents outside the store are all
// volatile (intent.Volatile: a heartbeat's Consul TTL pass) take the fast
// path: no record; the volatile intents run before the write, so a failure
// anywhere retries the whole decision, which is the same decision again.
//
// # Prepared before anything runs
//
// [Applier.Prepare] encodes every event as the message the relay will
// publish, checks it against the bus's size limit (bus.SizeLimited), and
// encodes the payload of every recorded intent, before any effect runs. A
// failure there is a [*PrepareError]: a fault of the input, which the
// runtime dead-letters; never a retry.
//
// # Envelopes
//
// Output envelopes are deterministic: the envelope id of event i is the
// UUIDv5 of the causing envelope id and i ([EventID]), and the envelope
// timestamp is the causing envelope's. A record relayed twice (after a
// failure between publish and removal, or by two relays during a failover)
// republishes byte-identical envelopes that consumers deduplicate by id.
//
// # Errors
//
// A recorded intent that fails with an error marked intent.Retryable (the
// environment: an agent down, a refused token) is retried for as long as it
// takes, and holds back only its own entity's later records. One marked
// intent.Permanent, or unmarked and failed [Config.MaxAttempts] times, is
// dead-lettered with its reason and attempt count ([HeaderDLQIntentType],
// [HeaderDLQAttempts]), and the record goes on with its events: the state
// they announce is committed.
package dispatch
