package intent

import (
	"context"
	"strconv"

	"github.com/google/uuid"
)

// Intent is one side effect a reducer decided on.
type Intent struct {
	// Type selects the effect, e.g. "postgres.update_registration".
	Type string
	// Target names what the intent acts on, for logs and errors: an entity id
	// or a service id. Effects take what they need from Payload.
	Target string
	// Payload is the typed request, e.g. *registration.UpdateRegistration.
	// An effect that gets a payload type it does not know returns a
	// [Permanent] error that names the type.
	Payload any
	// CorrelationID ties the intent to the message that caused it.
	CorrelationID uuid.UUID
}

// Status says what an effect did with an intent it executed without error.
type Status uint8

const (
	// Applied means the intent took effect (or had already taken effect
	// identically, for idempotent writes).
	Applied Status = iota
	// Skipped means nothing changed because an idempotence guard held, for
	// example a heartbeat no newer than the one stored. Not an error, not
	// retried.
	Skipped
	// Conflict means nothing changed because the entity is not in the state the
	// intent expected; the decision was made on state that has since moved.
	// The runtime does not publish the decision's events; it decides the
	// message again against the current state.
	Conflict
)

// String returns "applied", "skipped" or "conflict".
func (s Status) String() string {
	switch s {
	case Applied:
		return "applied"
	case Skipped:
		return "skipped"
	case Conflict:
		return "conflict"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Result is what an effect reports for an intent it executed without error.
// The zero Result means applied.
type Result struct {
	// Status says whether the intent changed anything.
	Status Status
	// Reason says why the intent was skipped or conflicted.
	Reason string
}

// IntentEffect performs the intents of one or more types. Implementations
// must be idempotent and safe for concurrent use.
//
//nolint:revive // The name is the one the ONEX services and the design use.
type IntentEffect interface {
	// Execute performs in. It returns an error only if the effect did not
	// take place; see [Retryable] and [Permanent].
	Execute(ctx context.Context, in Intent) (Result, error)
}

// BatchEffect is an [IntentEffect] that can perform many intents in one round
// trip. The runtime detects it by type assertion.
type BatchEffect interface {
	IntentEffect
	// ExecuteBatch performs ins as if each were executed with Execute in the
	// order given, and returns one Result per intent. If it returns an error,
	// none, some or all intents may have taken effect; the caller retries the
	// whole batch, which idempotence makes safe.
	ExecuteBatch(ctx context.Context, ins []Intent) ([]Result, error)
}

// EffectFunc adapts a function to [IntentEffect].
type EffectFunc func(ctx context.Context, in Intent) (Result, error)

// Execute calls f.
func (f EffectFunc) Execute(ctx context.Context, in Intent) (Result, error) { return f(ctx, in) }
