package dispatch

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
)

// Outbox is the store side of the engine: the projection store that applies
// the intents it owns and records the rest of a decision's work in the same
// atomic write. effects/memory.Store and effects/postgres.Store implement
// it. Implementations must be safe for concurrent use.
type Outbox interface {
	// Owns reports whether the store executes intents of intentType itself,
	// inside [Outbox.Commit] (for the registration stores: the two
	// postgres.* projection writes). Every other intent is recorded.
	Owns(intentType string) bool

	// Commit applies writes in order as one atomic write: for each write
	// its intents, in order, then, unless one of them reported
	// [intent.Conflict], its Record is appended to the entity's outbox.
	// After a conflict, the write's later intents are not executed and no
	// later write of the same entity in this call is attempted (its status
	// is [WriteNotAttempted]): those were decided on state that is gone.
	//
	// It returns one [WriteResult] per write. An error means nothing was
	// written (the atomic write rolled back or never started); it is
	// marked like the effects' errors ([intent.Retryable] for transport
	// failures).
	Commit(ctx context.Context, writes []Write) ([]WriteResult, error)

	// Pending returns the records of the given entities not yet removed,
	// ordered by Seq, at most limit of them (limit > 0). A stored record
	// that does not decode is returned with Invalid set, in its place, so
	// that the relay can dead-letter it instead of stopping at it.
	Pending(ctx context.Context, entities []uuid.UUID, limit int) ([]Record, error)

	// PendingEntities returns up to limit distinct entities whose oldest
	// record was appended at least minAge ago (by the store's clock),
	// oldest first: what a relay task picks up after a crash or a
	// failover left records behind.
	PendingEntities(ctx context.Context, minAge time.Duration, limit int) ([]uuid.UUID, error)

	// Done removes the records with the given sequence numbers. Removing a
	// record that is already gone is not an error.
	Done(ctx context.Context, seqs []int64) error

	// Lease takes the relay lease of entities: until it is released, no
	// other Lease of any of them (in this process or another one sharing
	// the store) is granted; Lease waits for them, or for ctx. It returns
	// the entities' pending records (as Pending does) with the lease.
	// Relaying under a lease is what keeps one entity's work in order when
	// two processes relay it at once (a failover, a relay task).
	Lease(ctx context.Context, entities []uuid.UUID, limit int) (Lease, error)
}

// Lease is a relay lease of some entities, from [Outbox.Lease].
type Lease interface {
	// Records returns the entities' pending records when the lease was
	// taken, ordered by Seq.
	Records() []Record
	// Done removes records, as [Outbox.Done]; a store may make the
	// removal durable only on Release.
	Done(ctx context.Context, seqs []int64) error
	// Release gives the lease up. It is safe to call more than once.
	Release(ctx context.Context) error
}

// Write is one decision's atomic write: the intents the store owns, and the
// record of the work that follows it.
type Write struct {
	// EntityID is the entity the decision is about.
	EntityID uuid.UUID
	// Intents are the intents the store owns ([Outbox.Owns]), in order.
	Intents []intent.Intent
	// Record is appended unless an intent conflicts; nil when the decision
	// has no events and no intent outside the store.
	Record *Record
}

// WriteStatus says what [Outbox.Commit] did with one [Write].
type WriteStatus uint8

const (
	// WriteCommitted means every intent executed (applied or skipped by an
	// idempotence guard) and the record, if any, was appended.
	WriteCommitted WriteStatus = iota
	// WriteConflict means an intent reported [intent.Conflict]: the
	// intents after it did not run and no record was appended.
	WriteConflict
	// WriteNotAttempted means an earlier write of the same entity in the
	// call conflicted, so this one was not tried.
	WriteNotAttempted
)

// String returns "committed", "conflict" or "not attempted".
func (s WriteStatus) String() string {
	switch s {
	case WriteCommitted:
		return "committed"
	case WriteConflict:
		return "conflict"
	case WriteNotAttempted:
		return "not attempted"
	}
	return "WriteStatus(" + strconv.Itoa(int(s)) + ")"
}

// WriteResult is the outcome of one [Write].
type WriteResult struct {
	// Status says whether the write took place.
	Status WriteStatus
	// Results holds one result per executed intent, the conflicting one
	// included.
	Results []intent.Result
}

// Record is the durable work of one applied decision: intents on systems
// other than the store, then events, executed and published in that order
// by the [Relay], in Seq order per entity.
type Record struct {
	// Seq orders records; the store assigns it on append, increasing.
	Seq int64 `json:"-"`
	// EntityID is the entity the decision is about.
	EntityID uuid.UUID `json:"entity_id"`
	// Cause is the envelope id of the input that was decided.
	Cause uuid.UUID `json:"cause"`
	// Intents are executed first, in order.
	Intents []RecordedIntent `json:"intents,omitempty"`
	// Messages are the encoded events, published in order after the
	// intents.
	Messages []RecordedMessage `json:"messages,omitempty"`
	// Trace is the trace context of the decision's cause, as a
	// [hooks.Propagator] injected it (e.g. W3C traceparent and tracestate):
	// the relay runs the record's intents and publishes its events in it.
	// Empty without a propagator.
	Trace map[string]string `json:"trace,omitempty"`
	// CreatedAt is when the store appended the record (the store's clock).
	CreatedAt time.Time `json:"-"`
	// Invalid, set by Pending only, says why the stored record did not
	// decode; Raw then holds it as stored, and nothing else but Seq and
	// EntityID is set.
	Invalid error  `json:"-"`
	Raw     []byte `json:"-"`
}

// RecordedIntent is an intent as the outbox keeps it: its payload encoded
// as JSON, decoded again by the relay with the reducer's [PayloadDecoder].
type RecordedIntent struct {
	Type          string          `json:"type"`
	Target        string          `json:"target,omitempty"`
	CorrelationID uuid.UUID       `json:"correlation_id"`
	Payload       json.RawMessage `json:"payload"`
}

// RecordedMessage is an encoded event ready to publish. A nil Value is a
// tombstone (reducer.Event.Tombstone); its JSON form writes it as null,
// which decodes to nil again, so it survives a store that keeps records as
// JSON.
type RecordedMessage struct {
	Topic   string      `json:"topic"`
	Key     []byte      `json:"key,omitempty"`
	Value   []byte      `json:"value"`
	Headers bus.Headers `json:"headers,omitempty"`
}

// message returns the bus message to publish.
func (m *RecordedMessage) message() *bus.Message {
	return &bus.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers}
}

// PayloadDecoder turns a recorded intent's payload back into the typed value
// its effect takes (for the registration reducer: *registration.ConsulRegister
// and its kin). An unknown type or a payload that does not decode is an
// error.
type PayloadDecoder func(intentType string, payload json.RawMessage) (any, error)
