package registration

// State is a registration state, as stored in the projection's current_state
// column (the lowercase values of the ONEX enum).
type State string

// The registration states.
const (
	// StateNone is not a stored state: it stands for "no projection".
	StateNone                State = ""
	StatePendingRegistration State = "pending_registration"
	StateAccepted            State = "accepted"
	StateAwaitingAck         State = "awaiting_ack"
	StateAckReceived         State = "ack_received"
	StateActive              State = "active"
	StateAckTimedOut         State = "ack_timed_out"
	StateLivenessExpired     State = "liveness_expired"
	StateRejected            State = "rejected"
)

// States lists the stored states in their enum order.
func States() []State {
	return []State{StatePendingRegistration, StateAccepted, StateAwaitingAck, StateRejected,
		StateAckTimedOut, StateAckReceived, StateActive, StateLivenessExpired}
}

// Valid reports whether s is one of the stored states.
func (s State) Valid() bool {
	switch s {
	case StatePendingRegistration, StateAccepted, StateAwaitingAck, StateAckReceived,
		StateActive, StateAckTimedOut, StateLivenessExpired, StateRejected:
		return true
	}
	return false
}

// Retriable reports whether a new introspection starts a new registration from
// s: no projection, or a terminal state (ack_timed_out, liveness_expired,
// rejected).
func (s State) Retriable() bool {
	switch s {
	case StateNone, StateAckTimedOut, StateLivenessExpired, StateRejected:
		return true
	}
	return false
}

// Terminal reports whether s is left only by a new introspection.
func (s State) Terminal() bool { return s != StateNone && s.Retriable() }

// awaitingAck reports whether an ack moves s to active.
func (s State) awaitingAck() bool { return s == StateAwaitingAck || s == StateAccepted }

// String returns the stored value, or "none" for StateNone.
func (s State) String() string {
	if s == StateNone {
		return "none"
	}
	return string(s)
}
