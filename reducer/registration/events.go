package registration

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// The event types of the registration events, as the envelope's event_type
// and the ONEX contract's published_events name them.
const (
	EventInitiated       = "NodeRegistrationInitiated"
	EventAccepted        = "NodeRegistrationAccepted"
	EventAckReceived     = "NodeRegistrationAckReceived"
	EventBecameActive    = "NodeBecameActive"
	EventAckTimedOut     = "NodeRegistrationAckTimedOut"
	EventLivenessExpired = "NodeLivenessExpired"
)

// EventHeader holds the fields every registration event carries. The JSON
// forms of the events have exactly the ONEX models' fields, since those
// reject unknown ones.
type EventHeader struct {
	EntityID      uuid.UUID `json:"entity_id"`
	NodeID        uuid.UUID `json:"node_id"`
	CorrelationID uuid.UUID `json:"correlation_id"`
	// CausationID is the envelope id of the message that caused the event.
	CausationID uuid.UUID `json:"causation_id"`
	EmittedAt   time.Time `json:"emitted_at"`
}

// Initiated says a registration started
// (ModelNodeRegistrationInitiated).
type Initiated struct {
	EventHeader
	AttemptID uuid.UUID `json:"registration_attempt_id"`
}

// Accepted says the registration waits for an ack until
// AckDeadline (ModelNodeRegistrationAccepted).
type Accepted struct {
	EventHeader
	AckDeadline time.Time `json:"ack_deadline"`
}

// AckReceived says the node acknowledged (ModelNodeRegistrationAckReceived).
type AckReceived struct {
	EventHeader
	LivenessDeadline time.Time `json:"liveness_deadline"`
}

// BecameActive says the node is active (ModelNodeBecameActive).
type BecameActive struct {
	EventHeader
	Capabilities json.RawMessage `json:"capabilities"`
}

// AckTimedOut says no ack came before DeadlineAt
// (ModelNodeRegistrationAckTimedOut).
type AckTimedOut struct {
	EventHeader
	DeadlineAt time.Time `json:"deadline_at"`
}

// LivenessExpired says the node's liveness deadline passed
// (ModelNodeLivenessExpired). LastHeartbeatAt is null if it never sent one.
type LivenessExpired struct {
	EventHeader
	LastHeartbeatAt *time.Time `json:"last_heartbeat_at"`
}
