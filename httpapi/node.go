package httpapi

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/reducer/registration"
)

// nodeJSON is a projection as the API writes it: the columns of the
// projection table, snake_case as in the ONEX envelopes, times in UTC and
// null when unset.
type nodeJSON struct {
	EntityID                 uuid.UUID         `json:"entity_id"`
	Domain                   string            `json:"domain"`
	CurrentState             string            `json:"current_state"`
	NodeType                 string            `json:"node_type"`
	NodeVersion              string            `json:"node_version"`
	Capabilities             json.RawMessage   `json:"capabilities"`
	Endpoints                map[string]string `json:"endpoints"`
	AckDeadline              *time.Time        `json:"ack_deadline"`
	LivenessDeadline         *time.Time        `json:"liveness_deadline"`
	LastHeartbeatAt          *time.Time        `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *time.Time        `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *time.Time        `json:"liveness_timeout_emitted_at"`
	LastAppliedEventID       *uuid.UUID        `json:"last_applied_event_id"`
	RegisteredAt             *time.Time        `json:"registered_at"`
	UpdatedAt                *time.Time        `json:"updated_at"`
	CorrelationID            *uuid.UUID        `json:"correlation_id"`
	Generation               int64             `json:"generation"`
}

// jsonTime is t in UTC, nil when zero or outside what JSON times can
// write (years 0 to 9999).
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() || t.Year() < 0 || t.Year() > 9999 {
		return nil
	}
	u := t.UTC()
	return &u
}

func jsonUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// toJSON converts p. Capabilities that are not a JSON document (a store
// never holds such, but a broken one must not break the page) are null.
func toJSON(p *registration.Projection) nodeJSON {
	caps := p.Capabilities
	if len(caps) == 0 || !json.Valid(caps) {
		caps = json.RawMessage("null")
	}
	eps := p.Endpoints
	if eps == nil {
		eps = map[string]string{}
	}
	return nodeJSON{
		EntityID: p.EntityID, Domain: p.Domain, CurrentState: string(p.State),
		NodeType: p.NodeType, NodeVersion: p.NodeVersion, Capabilities: caps, Endpoints: eps,
		AckDeadline: jsonTime(p.AckDeadline), LivenessDeadline: jsonTime(p.LivenessDeadline),
		LastHeartbeatAt: jsonTime(p.LastHeartbeatAt), AckTimeoutEmittedAt: jsonTime(p.AckTimeoutEmittedAt),
		LivenessTimeoutEmittedAt: jsonTime(p.LivenessTimeoutEmittedAt), LastAppliedEventID: jsonUUID(p.LastAppliedEventID),
		RegisteredAt: jsonTime(p.RegisteredAt), UpdatedAt: jsonTime(p.UpdatedAt),
		CorrelationID: jsonUUID(p.CorrelationID), Generation: p.Generation,
	}
}
