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

// The decoders as they were, on encoding/json: the reference the
// differential fuzz tests compare the reflection-free decoders with.

func refDecodeObject(kind string, data []byte, v any) error {
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

func refReqUUID(kind, field string, s *string) (uuid.UUID, error) {
	if s == nil || *s == "" {
		return uuid.Nil, payloadError(kind, field, "missing")
	}
	id, err := bus.ParseUUIDField("payload."+field, *s)
	if err != nil {
		return uuid.Nil, err
	}
	return id, nil
}

func refOptUUID(field string, s *string) (uuid.UUID, error) {
	if s == nil || *s == "" {
		return uuid.Nil, nil
	}
	return bus.ParseUUIDField("payload."+field, *s)
}

func refReqTime(kind, field string, s *string) (time.Time, error) {
	if s == nil || *s == "" {
		return time.Time{}, payloadError(kind, field, "missing")
	}
	return bus.ParseTimeField("payload."+field, *s)
}

type refIntrospectionWire struct {
	NodeID               *string           `json:"node_id"`
	NodeType             *string           `json:"node_type"`
	NodeVersion          json.RawMessage   `json:"node_version"`
	DeclaredCapabilities json.RawMessage   `json:"declared_capabilities"`
	Capabilities         json.RawMessage   `json:"capabilities"`
	Endpoints            map[string]string `json:"endpoints"`
	CorrelationID        *string           `json:"correlation_id"`
	Timestamp            *string           `json:"timestamp"`
}

// refDecodeIntrospection parses and validates an introspection payload: node_id
// and correlation_id UUIDs, a known node_type, node_version as "1.2.3" or a
// {"major","minor","patch"} object (default 1.0.0), endpoints that are URLs
// with a scheme and a host, and a timestamp with a zone. Unknown fields are
func refDecodeIntrospection(data []byte) (*Introspection, error) {
	const kind = KindIntrospection
	var w refIntrospectionWire
	if err := refDecodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var in Introspection
	var err error
	if in.NodeID, err = refReqUUID(kind, "node_id", w.NodeID); err != nil {
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
	if in.CorrelationID, err = refReqUUID(kind, "correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	if in.Timestamp, err = refReqTime(kind, "timestamp", w.Timestamp); err != nil {
		return nil, err
	}
	return &in, nil
}

type refAckWire struct {
	CommandID     *string `json:"command_id"`
	NodeID        *string `json:"node_id"`
	CorrelationID *string `json:"correlation_id"`
	Timestamp     *string `json:"timestamp"`
}

// refDecodeAck parses and validates a registration-acked command: node_id and
func refDecodeAck(data []byte) (*Ack, error) {
	const kind = KindAck
	var w refAckWire
	if err := refDecodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var a Ack
	var err error
	if a.CommandID, err = refOptUUID("command_id", w.CommandID); err != nil {
		return nil, err
	}
	if a.NodeID, err = refReqUUID(kind, "node_id", w.NodeID); err != nil {
		return nil, err
	}
	if a.CorrelationID, err = refReqUUID(kind, "correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	if a.Timestamp, err = refReqTime(kind, "timestamp", w.Timestamp); err != nil {
		return nil, err
	}
	return &a, nil
}

type refHeartbeatWire struct {
	NodeID                *string         `json:"node_id"`
	NodeType              *string         `json:"node_type"`
	NodeVersion           json.RawMessage `json:"node_version"`
	UptimeSeconds         *float64        `json:"uptime_seconds"`
	ActiveOperationsCount *int            `json:"active_operations_count"`
	CorrelationID         *string         `json:"correlation_id"`
	Timestamp             *string         `json:"timestamp"`
}

// refDecodeHeartbeat parses and validates a heartbeat: a node_id UUID, a
// timestamp with a zone, uptime_seconds present and not negative,
func refDecodeHeartbeat(data []byte) (*Heartbeat, error) {
	const kind = KindHeartbeat
	var w refHeartbeatWire
	if err := refDecodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var h Heartbeat
	var err error
	if h.NodeID, err = refReqUUID(kind, "node_id", w.NodeID); err != nil {
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
	if h.CorrelationID, err = refOptUUID("correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	if h.Timestamp, err = refReqTime(kind, "timestamp", w.Timestamp); err != nil {
		return nil, err
	}
	return &h, nil
}

type refTimeoutCheckWire struct {
	EntityID      *string `json:"entity_id"`
	Kind          *string `json:"kind"`
	DeadlineAt    *string `json:"deadline_at"`
	CheckedAt     *string `json:"checked_at"`
	CorrelationID *string `json:"correlation_id"`
}

// refDecodeTimeoutCheck parses and validates a timeout check: an entity_id
func refDecodeTimeoutCheck(data []byte) (*TimeoutCheck, error) {
	const kind = KindTimeoutCheck
	var w refTimeoutCheckWire
	if err := refDecodeObject(kind, data, &w); err != nil {
		return nil, err
	}
	var c TimeoutCheck
	var err error
	if c.EntityID, err = refReqUUID(kind, "entity_id", w.EntityID); err != nil {
		return nil, err
	}
	if w.Kind == nil {
		return nil, payloadError(kind, "kind", "missing")
	}
	c.Kind = TimeoutKind(*w.Kind)
	if c.Kind != TimeoutAck && c.Kind != TimeoutLiveness {
		return nil, payloadError(kind, "kind", fmt.Sprintf("%q is not ack or liveness", *w.Kind))
	}
	if c.DeadlineAt, err = refReqTime(kind, "deadline_at", w.DeadlineAt); err != nil {
		return nil, err
	}
	if c.CheckedAt, err = refReqTime(kind, "checked_at", w.CheckedAt); err != nil {
		return nil, err
	}
	if c.CorrelationID, err = refOptUUID("correlation_id", w.CorrelationID); err != nil {
		return nil, err
	}
	return &c, nil
}
