package registration

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/internal/jsonobj"
)

// KindShutdown is the reducer.Input.Kind of a [Shutdown].
const KindShutdown = "shutdown"

// EventTypeShutdown is the event type of a node's shutdown announcement
// as ONEX writes it: omnibase_core's NODE_SHUTDOWN_EVENT, the default
// event_type of ModelNodeShutdownEvent. The reducer also accepts the
// model's name, "NodeShutdownEvent" (with or without "Model"), as it does
// for its other inputs.
const EventTypeShutdown = "node_shutdown_event"

// eventTypeShutdownModel is the name of the ONEX model, as the other
// inputs' event types name theirs.
const eventTypeShutdownModel = "NodeShutdownEvent"

// Shutdown reasons, as ModelNodeShutdownEvent's shutdown_reason names them.
const (
	ShutdownGraceful    = "graceful"
	ShutdownError       = "error"
	ShutdownForced      = "forced"
	ShutdownMaintenance = "maintenance"
)

// Shutdown is a node's announcement that it stops
// (ModelNodeShutdownEvent): the orchestrator removes its registration. It
// carries the model's fields that the decision or a reader of the log
// needs; [DecodeShutdown] ignores the others (uptime, requests processed,
// cleanup actions and errors, final metrics, service_id: the orchestrator
// derives the Consul service id from the projection, as it registered it).
type Shutdown struct {
	// NodeID identifies the node; it is the entity id.
	NodeID uuid.UUID
	// NodeName is the node's name; empty when the sender set none.
	NodeName string
	// Reason is shutdown_reason: graceful, error, forced or maintenance
	// (free text; empty when the sender set none).
	Reason string
	// FinalStatus is final_status: stopping, stopped or error (free text;
	// empty when the sender set none).
	FinalStatus string
	// RestartExpected says the node expects to start again.
	RestartExpected bool
	// EventID is ModelOnexEvent's event_id; zero when the sender set none.
	EventID uuid.UUID
	// CorrelationID is the sender's correlation id; zero when it set none.
	CorrelationID uuid.UUID
	// Timestamp is when the node sent it (ModelOnexEvent's timestamp), by
	// the node's clock: in UTC, between bus.MinTime and bus.MaxTime.
	Timestamp time.Time
}

var shutdownFields = []jsonobj.Field{str("node_id"), str("node_name"), str("shutdown_reason"), str("final_status"),
	{Name: "restart_expected", Kind: jsonobj.Bool}, str("event_id"), str("correlation_id"), str("timestamp")}

// DecodeShutdown parses and validates a shutdown announcement: a node_id
// UUID, a timestamp as [bus.ParseTimeField] reads it (strict RFC 3339 with
// a zone, between [bus.MinTime] and [bus.MaxTime]; ONEX's default, a naive
// datetime.now(), is refused as every input's zone-less time is), optional
// event_id and correlation_id UUIDs, optional strings node_name,
// shutdown_reason and final_status, an optional boolean restart_expected.
// Unknown fields are ignored. Errors are [*bus.DecodeError]s naming the
// field.
func DecodeShutdown(data []byte) (*Shutdown, error) {
	const kind = KindShutdown
	var vals [8][]byte
	if err := readPayload(kind, data, shutdownFields, vals[:]); err != nil {
		return nil, err
	}
	nodeID, name, reason, status, restart, eventID, corr, ts := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7]
	var s Shutdown
	var err error
	if s.NodeID, err = reqUUID(kind, "node_id", nodeID); err != nil {
		return nil, err
	}
	s.NodeName, s.Reason, s.FinalStatus = text(name), text(reason), text(status)
	s.RestartExpected = string(restart) == "true"
	if s.EventID, err = optUUID(kind, "event_id", eventID); err != nil {
		return nil, err
	}
	if s.CorrelationID, err = optUUID(kind, "correlation_id", corr); err != nil {
		return nil, err
	}
	if s.Timestamp, err = reqTime(kind, "timestamp", ts); err != nil {
		return nil, err
	}
	return &s, nil
}

// MarshalJSON writes the announcement as ModelNodeShutdownEvent: its
// event_type (NODE_SHUTDOWN_EVENT), ModelOnexEvent's node_id, timestamp,
// event_id and correlation_id (null when zero), and the model's node_name,
// shutdown_reason, shutdown_initiated_at (the timestamp), final_status and
// restart_expected. The model's other fields take their defaults there.
func (s *Shutdown) MarshalJSON() ([]byte, error) {
	opt := func(id uuid.UUID) *uuid.UUID {
		if id == uuid.Nil {
			return nil
		}
		return &id
	}
	ts := s.Timestamp.UTC().Format(time.RFC3339Nano)
	return json.Marshal(struct {
		EventType       string     `json:"event_type"`
		NodeID          uuid.UUID  `json:"node_id"`
		NodeName        string     `json:"node_name"`
		ShutdownReason  string     `json:"shutdown_reason"`
		InitiatedAt     string     `json:"shutdown_initiated_at"`
		FinalStatus     string     `json:"final_status,omitempty"`
		RestartExpected bool       `json:"restart_expected"`
		EventID         *uuid.UUID `json:"event_id,omitempty"`
		CorrelationID   *uuid.UUID `json:"correlation_id"`
		Timestamp       string     `json:"timestamp"`
	}{EventTypeShutdown, s.NodeID, s.NodeName, s.Reason, ts, s.FinalStatus, s.RestartExpected, opt(s.EventID), opt(s.CorrelationID), ts})
}
