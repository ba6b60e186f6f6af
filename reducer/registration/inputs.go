package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// Input kinds, as reducer.Input.Kind names them.
const (
	KindIntrospection = "introspection"
	KindAck           = "ack"
	KindHeartbeat     = "heartbeat"
	KindTimeoutCheck  = "timeout_check"
)

// NodeTypes are the node types ONEX nodes declare (EnumNodeKind).
var NodeTypes = []string{"effect", "compute", "reducer", "orchestrator", "runtime_host"}

func validNodeType(t string) bool {
	for _, n := range NodeTypes {
		if n == t {
			return true
		}
	}
	return false
}

// Introspection is a node's announcement of itself
// (ModelNodeIntrospectionEvent).
type Introspection struct {
	NodeID      uuid.UUID
	NodeType    string
	NodeVersion bus.Version
	// Capabilities is the declared_capabilities object (older senders call
	// it capabilities), kept as JSON.
	Capabilities json.RawMessage
	// Endpoints maps names ("health", "api") to URLs.
	Endpoints     map[string]string
	CorrelationID uuid.UUID
	Timestamp     time.Time
}

// Ack is the command that acknowledges a node's registration
// (ModelNodeRegistrationAcked).
type Ack struct {
	CommandID     uuid.UUID
	NodeID        uuid.UUID
	CorrelationID uuid.UUID
	Timestamp     time.Time
}

// Heartbeat is a node's liveness signal (ModelNodeHeartbeatEvent).
type Heartbeat struct {
	NodeID                uuid.UUID
	NodeType              string
	NodeVersion           string
	UptimeSeconds         float64
	ActiveOperationsCount int
	CorrelationID         uuid.UUID
	Timestamp             time.Time
}

// TimeoutKind says which deadline a [TimeoutCheck] is about.
type TimeoutKind string

// The timeout kinds.
const (
	TimeoutAck      TimeoutKind = "ack"
	TimeoutLiveness TimeoutKind = "liveness"
)

// TimeoutCheck is the command the sweeper publishes, keyed by entity, for an
// entity whose deadline passed: the partition owner decides it in order with
// the entity's other messages.
type TimeoutCheck struct {
	EntityID uuid.UUID   `json:"entity_id"`
	Kind     TimeoutKind `json:"kind"`
	// DeadlineAt is the deadline the sweeper saw pass.
	DeadlineAt time.Time `json:"deadline_at"`
	// CheckedAt is the sweep's time; the check is decided as of it.
	CheckedAt     time.Time `json:"checked_at"`
	CorrelationID uuid.UUID `json:"correlation_id"`
}

// payloadError names a field of a payload.
func payloadError(kind, field, reason string) error {
	return &bus.DecodeError{Field: "payload." + field, Reason: reason + " (" + kind + ")"}
}

func decodeObject(kind string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return payloadError(kind, te.Field, "want "+te.Type.String()+", got JSON "+te.Value)
		}
		return &bus.DecodeError{Field: "payload", Reason: fmt.Sprintf("not a JSON object (%s): %v", kind, err)}
	}
	return nil
}

func reqUUID(kind, field string, s *string) (uuid.UUID, error) {
	if s == nil || *s == "" {
		return uuid.Nil, payloadError(kind, field, "missing")
	}
	id, err := bus.ParseUUIDField("payload."+field, *s)
	if err != nil {
		return uuid.Nil, err
	}
	return id, nil
}

func optUUID(field string, s *string) (uuid.UUID, error) {
	if s == nil || *s == "" {
		return uuid.Nil, nil
	}
	return bus.ParseUUIDField("payload."+field, *s)
}

func reqTime(kind, field string, s *string) (time.Time, error) {
	if s == nil || *s == "" {
		return time.Time{}, payloadError(kind, field, "missing")
	}
	return bus.ParseTimeField("payload."+field, *s)
}

type introspectionWire struct {
	NodeID               *string           `json:"node_id"`
	NodeType             *string           `json:"node_type"`
	NodeVersion          json.RawMessage   `json:"node_version"`
	DeclaredCapabilities json.RawMessage   `json:"declared_capabilities"`
	Capabilities         json.RawMessage   `json:"capabilities"`
	Endpoints            map[string]string `json:"endpoints"`
	CorrelationID        *string           `json:"correlation_id"`
	Timestamp            *string           `json:"timestamp"`
}

// DecodeIntrospection parses and validates an introspection payload: node_id
// and correlation_id UUIDs, a known node_type, node_version as "1.2.3" or a
// {"major","minor","patch"} object (default 1.0.0), endpoints that are URLs
// with a scheme and a host, and a timestamp with a zone. Unknown fields are
// ignored. Errors are [*bus.DecodeError]s naming the field.
func DecodeIntrospection(data []byte) (*Introspection, error) {
	const kind = KindIntrospection
	var w introspectionWire
	if err := decodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var in Introspection
	var err error
	if in.NodeID, err = reqUUID(kind, "node_id", w.NodeID); err != nil {
		return nil, err
	}
	if w.NodeType == nil || *w.NodeType == "" {
		return nil, payloadError(kind, "node_type", "missing")
	}
	if !validNodeType(*w.NodeType) {
		return nil, payloadError(kind, "node_type", fmt.Sprintf("%q is not one of %v", *w.NodeType, NodeTypes))
	}
	in.NodeType = *w.NodeType
	in.NodeVersion = bus.Version{Major: 1}
	if len(w.NodeVersion) > 0 && !bytes.Equal(w.NodeVersion, []byte("null")) {
		if err := in.NodeVersion.UnmarshalJSON(w.NodeVersion); err != nil {
			return nil, payloadError(kind, "node_version", err.Error())
		}
	}
	caps := w.DeclaredCapabilities
	if len(caps) == 0 || bytes.Equal(caps, []byte("null")) {
		caps = w.Capabilities
	}
	if len(caps) > 0 && !bytes.Equal(caps, []byte("null")) {
		if caps[0] != '{' {
			return nil, payloadError(kind, "declared_capabilities", "not a JSON object")
		}
		in.Capabilities = caps
	}
	for name, u := range w.Endpoints {
		if !validEndpoint(u) {
			return nil, payloadError(kind, "endpoints."+name, fmt.Sprintf("%q is not a URL with a scheme and a host", u))
		}
	}
	in.Endpoints = w.Endpoints
	if in.CorrelationID, err = reqUUID(kind, "correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	if in.Timestamp, err = reqTime(kind, "timestamp", w.Timestamp); err != nil {
		return nil, err
	}
	return &in, nil
}

type ackWire struct {
	CommandID     *string `json:"command_id"`
	NodeID        *string `json:"node_id"`
	CorrelationID *string `json:"correlation_id"`
	Timestamp     *string `json:"timestamp"`
}

// DecodeAck parses and validates a registration-acked command: node_id and
// correlation_id UUIDs, an optional command_id UUID, a timestamp with a zone.
func DecodeAck(data []byte) (*Ack, error) {
	const kind = KindAck
	var w ackWire
	if err := decodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var a Ack
	var err error
	if a.CommandID, err = optUUID("command_id", w.CommandID); err != nil {
		return nil, err
	}
	if a.NodeID, err = reqUUID(kind, "node_id", w.NodeID); err != nil {
		return nil, err
	}
	if a.CorrelationID, err = reqUUID(kind, "correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	if a.Timestamp, err = reqTime(kind, "timestamp", w.Timestamp); err != nil {
		return nil, err
	}
	return &a, nil
}

type heartbeatWire struct {
	NodeID                *string         `json:"node_id"`
	NodeType              *string         `json:"node_type"`
	NodeVersion           json.RawMessage `json:"node_version"`
	UptimeSeconds         *float64        `json:"uptime_seconds"`
	ActiveOperationsCount *int            `json:"active_operations_count"`
	CorrelationID         *string         `json:"correlation_id"`
	Timestamp             *string         `json:"timestamp"`
}

// DecodeHeartbeat parses and validates a heartbeat: a node_id UUID, a
// timestamp with a zone, uptime_seconds present and not negative,
// active_operations_count not negative; node_type, if present, known.
func DecodeHeartbeat(data []byte) (*Heartbeat, error) {
	const kind = KindHeartbeat
	var w heartbeatWire
	if err := decodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var h Heartbeat
	var err error
	if h.NodeID, err = reqUUID(kind, "node_id", w.NodeID); err != nil {
		return nil, err
	}
	if w.NodeType != nil && *w.NodeType != "" {
		if !validNodeType(*w.NodeType) {
			return nil, payloadError(kind, "node_type", fmt.Sprintf("%q is not one of %v", *w.NodeType, NodeTypes))
		}
		h.NodeType = *w.NodeType
	}
	if len(w.NodeVersion) > 0 && !bytes.Equal(w.NodeVersion, []byte("null")) {
		var v bus.Version
		if err := v.UnmarshalJSON(w.NodeVersion); err != nil {
			return nil, payloadError(kind, "node_version", err.Error())
		}
		h.NodeVersion = v.String()
	}
	if w.UptimeSeconds == nil {
		return nil, payloadError(kind, "uptime_seconds", "missing")
	}
	if *w.UptimeSeconds < 0 || math.IsNaN(*w.UptimeSeconds) {
		return nil, payloadError(kind, "uptime_seconds", fmt.Sprintf("%v is negative", *w.UptimeSeconds))
	}
	h.UptimeSeconds = *w.UptimeSeconds
	if w.ActiveOperationsCount != nil {
		if *w.ActiveOperationsCount < 0 {
			return nil, payloadError(kind, "active_operations_count", "negative")
		}
		h.ActiveOperationsCount = *w.ActiveOperationsCount
	}
	if h.CorrelationID, err = optUUID("correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	if h.Timestamp, err = reqTime(kind, "timestamp", w.Timestamp); err != nil {
		return nil, err
	}
	return &h, nil
}

type timeoutCheckWire struct {
	EntityID      *string `json:"entity_id"`
	Kind          *string `json:"kind"`
	DeadlineAt    *string `json:"deadline_at"`
	CheckedAt     *string `json:"checked_at"`
	CorrelationID *string `json:"correlation_id"`
}

// DecodeTimeoutCheck parses and validates a timeout check: an entity_id
// UUID, kind "ack" or "liveness", deadline_at and checked_at times with a zone.
func DecodeTimeoutCheck(data []byte) (*TimeoutCheck, error) {
	const kind = KindTimeoutCheck
	var w timeoutCheckWire
	if err := decodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var c TimeoutCheck
	var err error
	if c.EntityID, err = reqUUID(kind, "entity_id", w.EntityID); err != nil {
		return nil, err
	}
	if w.Kind == nil {
		return nil, payloadError(kind, "kind", "missing")
	}
	c.Kind = TimeoutKind(*w.Kind)
	if c.Kind != TimeoutAck && c.Kind != TimeoutLiveness {
		return nil, payloadError(kind, "kind", fmt.Sprintf("%q is not ack or liveness", *w.Kind))
	}
	if c.DeadlineAt, err = reqTime(kind, "deadline_at", w.DeadlineAt); err != nil {
		return nil, err
	}
	if c.CheckedAt, err = reqTime(kind, "checked_at", w.CheckedAt); err != nil {
		return nil, err
	}
	if c.CorrelationID, err = optUUID("correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	return &c, nil
}
