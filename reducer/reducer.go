package reducer

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
)

// Reducer decides state transitions for entities of type S (the state as the
// state store returns it; a pointer type whose nil means "no state yet" is
// typical). Implementations must be safe for concurrent use.
type Reducer[S any] interface {
	// Decode turns an envelope read from topic into the reducer's input. An
	// envelope it cannot use (an unknown event type, a payload that does not
	// parse or is invalid) returns an error that says which field is wrong;
	// the runtime dead-letters the message.
	Decode(topic string, env *bus.Envelope) (Input, error)

	// Decide returns the decision for in, given the entity's current state
	// and now, the deciding process's clock (the runtime's WithClock, not
	// the envelope's timestamp). A reducer that orders inputs by their
	// origin's clock reads that from in.Envelope itself: the registration
	// reducer decides node-originated inputs at their envelope timestamp
	// and timeout checks at now. Decide must be pure and deterministic: the
	// same arguments always give the same decision.
	Decide(state S, in Input, now time.Time) Decision
}

// Input is one decoded message.
type Input struct {
	// EntityID is the entity the message is about; the runtime loads its
	// state before calling Decide.
	EntityID uuid.UUID
	// Kind names the input type, e.g. "introspection"; for logs and metrics.
	Kind string
	// Event is the typed payload, e.g. *registration.Heartbeat.
	Event any
	// Envelope is the envelope the input came in; deterministic ids derive
	// from its EnvelopeID.
	Envelope *bus.Envelope
}

// Decision is what a reducer decided for one input.
type Decision struct {
	// State is the entity's state after the decision; empty when unchanged.
	State string
	// Events are published, in order, after every intent succeeded (by
	// the runtime's relay, from the record written with the state).
	Events []Event
	// Intents are executed in order: those the store owns (the projection
	// writes) atomically with the decision's record, then, from the
	// record, the others (volatile ones, on a decision without events,
	// before the write instead; see intent.Volatile).
	Intents []intent.Intent
	// Reason says why the decision is a no-op (no events and no intents), or
	// qualifies a partial one; empty otherwise.
	Reason string
	// Warn says the no-op deserves an operator's attention: the sender and
	// the orchestrator disagree about the entity (an ack or a heartbeat
	// for an entity the orchestrator does not know, or knows in a state
	// that does not take it). The runtime logs such a no-op at WARN, not
	// DEBUG, and counts it. A no-op that is ordinary at-least-once noise (a
	// redelivery, a duplicate, a stale message) leaves it false.
	Warn bool
}

// IsNoop reports whether d changes nothing.
func (d Decision) IsNoop() bool { return len(d.Events) == 0 && len(d.Intents) == 0 }

// Event is one output event of a decision.
type Event struct {
	// Topic is where the event is published.
	Topic string
	// Type is the envelope's event_type.
	Type string
	// EntityID, NodeID and CorrelationID resolve the partition key: the
	// first one that is not zero, as the canonical UUID string, so every
	// event of one entity lands on one partition in order.
	EntityID, NodeID, CorrelationID uuid.UUID
	// Payload is marshaled to JSON as the envelope's payload.
	Payload any
	// Metadata is the envelope's metadata object, carried as it is; nil
	// leaves the envelope without one.
	Metadata json.RawMessage
	// Tombstone makes the event a tombstone: a message with the partition
	// key and a nil value, no envelope (Type, Payload and Metadata are not
	// published), which deletes the key from a compacted topic.
	Tombstone bool
}

// PartitionKey returns the key the event is published with: entity id, else
// node id, else correlation id, as the bytes of the canonical UUID string; nil
// if all three are zero.
func (e Event) PartitionKey() []byte {
	for _, id := range [...]uuid.UUID{e.EntityID, e.NodeID, e.CorrelationID} {
		if id != uuid.Nil {
			return []byte(id.String())
		}
	}
	return nil
}

// Evolver is an optional interface of a [Reducer]: it returns the state that
// results from applying d's intents to state, without I/O. When a reducer
// implements it, the runtime decides a batch of messages against an
// in-memory overlay and reads the store once per entity per batch.
type Evolver[S any] interface {
	Evolve(state S, in Input, d Decision) S
}

// Coalescer is an optional interface of a [Reducer] whose inputs can stand
// for one another. Two inputs of one entity that follow each other in a
// micro-batch (no input of that entity comes between them) coalesce when
// deciding one of them alone leaves the store, and the work to do, as
// deciding both in order would, whatever the state: the runtime then
// decides only that one, and acknowledges the other as coalesced. The
// registration reducer coalesces a node's heartbeats into the newest.
type Coalescer interface {
	// Coalesce reports whether earlier and later coalesce (ok), and if so
	// whether later is the one that stands for both (keepLater; else
	// earlier does). It must not depend on anything but the two inputs.
	Coalesce(earlier, later Input) (keepLater, ok bool)
}

// IntentDecoder is an optional interface of a [Reducer]: it decodes the JSON
// payload of one of its intents back into the typed value the effect takes.
// The runtime records a decision's intents on systems other than the store
// in the store's outbox, as JSON, and decodes them with it before it
// executes them; a reducer whose decisions have such intents must
// implement it.
type IntentDecoder interface {
	DecodeIntentPayload(intentType string, payload json.RawMessage) (any, error)
}
