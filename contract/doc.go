// Package contract reads, checks and describes a node's YAML contract: the
// topics it consumes and publishes, its dead-letter topic and consumer
// group, the event type on each topic, the intent types it executes and the
// effect that executes each, and its timeouts.
//
// The contract is the one place topic names come from. The Runtime takes its
// input topics, consumer group and dead-letter topic from it
// (registrar.WithContract); the registration reducer takes its durations and
// its topics by event type ([Contract.EventTypeOf], [Contract.TopicFor]); the
// intent executor checks at start-up that every type in the routing table
// has an effect ([Contract.RoutedIntents]). It imitates, in spirit, the
// contract.yaml of the ONEX node_registration_orchestrator, whose topic and
// event type names it shares.
//
// # The file
//
//	name: node_registration_orchestrator   # required; the default consumer group
//	contract_version: 1.0.0                # or 1.0.0-rc.1, or {major: 1, minor: 0, patch: 0}
//	node_version: "1.0.0"                  # optional, free-form
//	description: ...                       # optional
//	event_bus:
//	  subscribe_topics: [onex.evt.platform.node-introspection.v1, ...]
//	  publish_topics: [onex.evt.platform.node-became-active.v1, ...]
//	  dead_letter_topic: onex.dlq.platform.registration.v1
//	  consumer_group: ...                  # optional; default: name
//	consumed_events:                       # event type per input topic
//	  - {topic: onex.evt.platform.node-introspection.v1, event_type: NodeIntrospectionEvent}
//	published_events:                      # topic per output event type
//	  - {topic: onex.evt.platform.node-became-active.v1, event_type: NodeBecameActive}
//	intent_consumption:
//	  subscribed_intents: [consul.register, ...]
//	  intent_routing_table: {consul.register: node_registry_effect, ...}
//	timeouts: {ack_timeout: 30s, liveness_interval: 60s, liveness_window: 90s, sweep_interval: 1s}
//
// Durations are Go duration strings ("30s", "1m30s") or whole seconds (30).
// A zero or absent timeout means the consumer's default (30s, 60s, 90s and
// one second); a negative one is a validation error. liveness_window may be
// shorter than liveness_interval.
//
// # Parsing
//
// [Parse] and [Load] are strict: unknown keys at any depth, keys given twice,
// values of the wrong kind, empty input and a second YAML document are all
// errors, and an unknown key that looks like a known one gets a hint ("did
// you mean", or the section it belongs in). Anchors and aliases work, but
// merge keys (<<) do not, and aliases that blow the document up are cut
// short with an error. A YAML syntax error carries the line of the
// offending text (yaml itself reports where the enclosing block starts).
// A parsed contract is validated before it is returned, and the errors of
// both steps come back together.
//
// # Validation
//
// [Contract.Validate] checks that the parts agree: every routed intent type
// is subscribed and the other way round, topics are unique and not both
// consumed and published, the dead-letter topic exists and is neither,
// consumed and published events name declared topics, and so on (the full
// list is on Validate). It works the same on a contract built in Go code.
//
// # Errors
//
// Every problem is reported at once (up to 100, then a count). The error is
// an [Errors] list of
// [*Error], each carrying File, Line, Column, Path and Message and printed
// as
//
//	billing.yaml:10:5: intent_consumption.intent_routing_table["ledger.void"]: intent type "ledger.void" is routed but not in intent_consumption.subscribed_intents
//
// A parsed contract keeps its YAML node tree, so validation errors point at
// the offending line. A contract built in code has no lines; neither has an
// element changed in code after parsing: such errors carry only the path.
// Errors implements Unwrap() []error, so [errors.As] finds an *Error.
//
// # The default contract
//
// [Default] returns the registration contract embedded from
// registration.yaml (read it for the commented original): the ONEX
// registration topics, the dead-letter topic onex.dlq.platform.registration.v1,
// the six intent types of the registration reducer routed to
// node_registry_effect, and timeouts of 30s, 60s, 90s and a one-second sweep.
// Each call returns a new deep copy; edit it freely and call Validate.
package contract
