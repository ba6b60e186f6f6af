package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// ErrUnknownEvent is wrapped by the error [DecodeEvent] returns for an
// envelope whose event_type is not one of the registration events.
var ErrUnknownEvent = errors.New("registration: unknown output event type")

// DecodeEvent decodes the payload of an output event envelope, chosen by
// env.EventType, into *[Initiated], *[Accepted], *[AckReceived],
// *[BecameActive], *[AckTimedOut], *[LivenessExpired] or, with its
// metadata, *[Snapshot] ([DecodeSnapshotEnvelope]). An unknown event
// type is an error wrapping [ErrUnknownEvent]; a payload that does not
// decode is a [*bus.DecodeError] naming the field.
//
// The decoders check that every field the event's model requires is
// present, that ids are UUIDs other than the nil UUID and that times are
// RFC 3339 with a zone (returned in UTC, with every digit of the fraction
// kept, deadlines saturated at year 9999 included). Unknown fields of the
// payload are ignored, so a consumer accepts a newer producer's events.
func DecodeEvent(env *bus.Envelope) (any, error) {
	if env == nil {
		return nil, errors.New("registration: decode event: nil envelope")
	}
	switch env.EventType {
	case EventInitiated:
		return DecodeInitiated(env)
	case EventAccepted:
		return DecodeAccepted(env)
	case EventAckReceived:
		return DecodeAckReceived(env)
	case EventBecameActive:
		return DecodeBecameActive(env)
	case EventAckTimedOut:
		return DecodeAckTimedOut(env)
	case EventLivenessExpired:
		return DecodeLivenessExpired(env)
	case EventSnapshot:
		return DecodeSnapshotEnvelope(env)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownEvent, env.EventType)
}

// DecodeInitiated decodes the payload of an envelope of type
// [EventInitiated]; see [DecodeEvent] for the checks. Another event type is
// an error.
func DecodeInitiated(env *bus.Envelope) (*Initiated, error) {
	f, err := eventFields(env, EventInitiated)
	if err != nil {
		return nil, err
	}
	var ev Initiated
	if ev.EventHeader, err = f.header(); err != nil {
		return nil, err
	}
	if ev.AttemptID, err = f.uuid("registration_attempt_id"); err != nil {
		return nil, err
	}
	return &ev, nil
}

// DecodeAccepted decodes the payload of an envelope of type
// [EventAccepted]; see [DecodeEvent] for the checks. Another event type is
// an error.
func DecodeAccepted(env *bus.Envelope) (*Accepted, error) {
	f, err := eventFields(env, EventAccepted)
	if err != nil {
		return nil, err
	}
	var ev Accepted
	if ev.EventHeader, err = f.header(); err != nil {
		return nil, err
	}
	if ev.AckDeadline, err = f.time("ack_deadline"); err != nil {
		return nil, err
	}
	return &ev, nil
}

// DecodeAckReceived decodes the payload of an envelope of type
// [EventAckReceived]; see [DecodeEvent] for the checks. Another event type
// is an error.
func DecodeAckReceived(env *bus.Envelope) (*AckReceived, error) {
	f, err := eventFields(env, EventAckReceived)
	if err != nil {
		return nil, err
	}
	var ev AckReceived
	if ev.EventHeader, err = f.header(); err != nil {
		return nil, err
	}
	if ev.LivenessDeadline, err = f.time("liveness_deadline"); err != nil {
		return nil, err
	}
	return &ev, nil
}

// DecodeBecameActive decodes the payload of an envelope of type
// [EventBecameActive]; see [DecodeEvent] for the checks. capabilities must
// be a JSON object; its bytes are kept as they came. Another event type is
// an error.
func DecodeBecameActive(env *bus.Envelope) (*BecameActive, error) {
	f, err := eventFields(env, EventBecameActive)
	if err != nil {
		return nil, err
	}
	var ev BecameActive
	if ev.EventHeader, err = f.header(); err != nil {
		return nil, err
	}
	raw, err := f.required("capabilities")
	if err != nil {
		return nil, err
	}
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		return nil, &bus.DecodeError{Field: "capabilities", Reason: "not a JSON object"}
	}
	ev.Capabilities = bytes.Clone(raw)
	return &ev, nil
}

// DecodeAckTimedOut decodes the payload of an envelope of type
// [EventAckTimedOut]; see [DecodeEvent] for the checks. Another event type
// is an error.
func DecodeAckTimedOut(env *bus.Envelope) (*AckTimedOut, error) {
	f, err := eventFields(env, EventAckTimedOut)
	if err != nil {
		return nil, err
	}
	var ev AckTimedOut
	if ev.EventHeader, err = f.header(); err != nil {
		return nil, err
	}
	if ev.DeadlineAt, err = f.time("deadline_at"); err != nil {
		return nil, err
	}
	return &ev, nil
}

// DecodeLivenessExpired decodes the payload of an envelope of type
// [EventLivenessExpired]; see [DecodeEvent] for the checks.
// last_heartbeat_at may be null or absent (the node never sent a
// heartbeat): LastHeartbeatAt is then nil. Another event type is an error.
func DecodeLivenessExpired(env *bus.Envelope) (*LivenessExpired, error) {
	f, err := eventFields(env, EventLivenessExpired)
	if err != nil {
		return nil, err
	}
	var ev LivenessExpired
	if ev.EventHeader, err = f.header(); err != nil {
		return nil, err
	}
	if raw, ok := f["last_heartbeat_at"]; ok && !isNull(raw) {
		t, err := f.time("last_heartbeat_at")
		if err != nil {
			return nil, err
		}
		ev.LastHeartbeatAt = &t
	}
	return &ev, nil
}

// payloadFields are the members of a payload object, by name.
type payloadFields map[string]json.RawMessage

// eventFields checks that env is of type want and returns its payload's
// members.
func eventFields(env *bus.Envelope, want string) (payloadFields, error) {
	if env == nil {
		return nil, fmt.Errorf("registration: decode %s: nil envelope", want)
	}
	if env.EventType != want {
		return nil, &bus.DecodeError{Field: "event_type", Reason: fmt.Sprintf("is %q, want %q", env.EventType, want)}
	}
	return objectFields(env.Payload)
}

// objectFields returns the members of the JSON object raw, or a
// *bus.DecodeError if raw is not one.
func objectFields(raw json.RawMessage) (payloadFields, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, &bus.DecodeError{Field: "payload", Reason: "not a JSON object"}
	}
	var f payloadFields
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, &bus.DecodeError{Field: "payload", Reason: "not valid JSON: " + err.Error()}
	}
	return f, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// required returns the member name, or an error if it is absent or null.
func (f payloadFields) required(name string) (json.RawMessage, error) {
	raw, ok := f[name]
	if !ok || isNull(raw) {
		return nil, &bus.DecodeError{Field: name, Reason: "missing"}
	}
	return raw, nil
}

// str returns the required string member name.
func (f payloadFields) str(name string) (string, error) {
	raw, err := f.required(name)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &bus.DecodeError{Field: name, Reason: "not a JSON string"}
	}
	return s, nil
}

// uuid returns the required UUID member name; the nil UUID is an error.
func (f payloadFields) uuid(name string) (uuid.UUID, error) {
	s, err := f.str(name)
	if err != nil {
		return uuid.Nil, err
	}
	return bus.ParseUUIDField(name, s)
}

// time returns the required time member name, parsed exactly: RFC 3339 with
// a zone, every fraction digit kept, any year up to 9999, in UTC.
// (bus.ParseTimeField bounds years and truncates to microseconds, which
// would not round-trip what the reducer writes.)
func (f payloadFields) time(name string) (time.Time, error) {
	s, err := f.str(name)
	if err != nil {
		return time.Time{}, err
	}
	t, err := parseEventTime(s)
	if err != nil {
		return time.Time{}, &bus.DecodeError{Field: name, Reason: err.Error()}
	}
	return t, nil
}

// parseEventTime parses s as time.Time's JSON form does (RFC 3339, a zone
// required), in UTC.
func parseEventTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time with a zone", truncateString(s))
	}
	return t.UTC(), nil
}

func truncateString(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// header decodes the members every registration event carries.
func (f payloadFields) header() (EventHeader, error) {
	var h EventHeader
	var err error
	for _, m := range []struct {
		name string
		dst  *uuid.UUID
	}{
		{"entity_id", &h.EntityID}, {"node_id", &h.NodeID},
		{"correlation_id", &h.CorrelationID}, {"causation_id", &h.CausationID},
	} {
		if *m.dst, err = f.uuid(m.name); err != nil {
			return h, err
		}
	}
	if h.EmittedAt, err = f.time("emitted_at"); err != nil {
		return h, err
	}
	return h, nil
}
