// Package dispatch applies a reducer's decision: intents first, then events.
//
// [ResultApplier.Apply] executes the decision's intents in order through an
// executor and stops at the first failure; only when every intent succeeded
// does it publish the decision's events, each with [bus.EventBus.PublishEnvelope]
// and keyed by its entity (see [reducer.Event.PartitionKey]), so every event of
// one entity lands on one partition, in order, and no event announces a write
// that did not happen.
//
// Output envelopes are deterministic: the envelope id of event i is the UUIDv5
// of the causing envelope id and i ([EventID]), and the envelope timestamp is
// the causing envelope's. A redelivered message therefore republishes
// byte-identical envelopes that consumers can deduplicate by envelope id.
package dispatch
