package registration

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// MarshalJSON writes the introspection as the ONEX services do
// (ModelNodeIntrospectionEvent's field names; node_version as ModelSemVer's
// object, with its prerelease and build metadata, see
// [bus.Version.MarshalJSON]).
func (in *Introspection) MarshalJSON() ([]byte, error) {
	caps := in.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	eps := in.Endpoints
	if eps == nil {
		eps = map[string]string{}
	}
	return json.Marshal(struct {
		NodeID               uuid.UUID         `json:"node_id"`
		NodeType             string            `json:"node_type"`
		NodeVersion          bus.Version       `json:"node_version"`
		DeclaredCapabilities json.RawMessage   `json:"declared_capabilities"`
		Endpoints            map[string]string `json:"endpoints"`
		CorrelationID        uuid.UUID         `json:"correlation_id"`
		Timestamp            string            `json:"timestamp"`
	}{in.NodeID, in.NodeType, in.NodeVersion, caps, eps, in.CorrelationID, in.Timestamp.UTC().Format(time.RFC3339Nano)})
}

// MarshalJSON writes the ack as the ONEX services do
// (ModelNodeRegistrationAcked's field names).
func (a *Ack) MarshalJSON() ([]byte, error) {
	var cmd *uuid.UUID
	if a.CommandID != uuid.Nil {
		cmd = &a.CommandID
	}
	return json.Marshal(struct {
		CommandID     *uuid.UUID `json:"command_id,omitempty"`
		NodeID        uuid.UUID  `json:"node_id"`
		CorrelationID uuid.UUID  `json:"correlation_id"`
		Timestamp     string     `json:"timestamp"`
	}{cmd, a.NodeID, a.CorrelationID, a.Timestamp.UTC().Format(time.RFC3339Nano)})
}

// MarshalJSON writes the heartbeat as the ONEX services do
// (ModelNodeHeartbeatEvent's field names), node_version as the string
// NodeVersion holds, whole, or "1.0.0" when it is empty.
func (h *Heartbeat) MarshalJSON() ([]byte, error) {
	var corr *uuid.UUID
	if h.CorrelationID != uuid.Nil {
		corr = &h.CorrelationID
	}
	ver := h.NodeVersion
	if ver == "" {
		ver = "1.0.0"
	}
	return json.Marshal(struct {
		NodeID                uuid.UUID  `json:"node_id"`
		NodeType              string     `json:"node_type,omitempty"`
		NodeVersion           string     `json:"node_version"`
		UptimeSeconds         float64    `json:"uptime_seconds"`
		ActiveOperationsCount int        `json:"active_operations_count"`
		CorrelationID         *uuid.UUID `json:"correlation_id"`
		Timestamp             string     `json:"timestamp"`
	}{h.NodeID, h.NodeType, ver, h.UptimeSeconds, h.ActiveOperationsCount, corr, h.Timestamp.UTC().Format(time.RFC3339Nano)})
}
