package registration

import (
	"encoding/json"
	"maps"
	"time"

	"github.com/google/uuid"
)

// DefaultDomain is the projection's domain unless configured otherwise.
const DefaultDomain = "registration"

// Projection is one row of registration_projections: the current
// registration of one node. Zero times are NULL.
type Projection struct {
	EntityID uuid.UUID
	Domain   string
	State    State
	NodeType string
	// NodeVersion is the node's version as bus.Version.String writes it,
	// prerelease and build metadata included ("1.2.3-rc.1+build.5"); it is
	// stored and registered (in Consul's node_version meta) as it is.
	NodeVersion  string
	Capabilities json.RawMessage
	Endpoints    map[string]string

	AckDeadline              time.Time
	LivenessDeadline         time.Time
	LastHeartbeatAt          time.Time
	AckTimeoutEmittedAt      time.Time
	LivenessTimeoutEmittedAt time.Time

	// LastAppliedEventID is the envelope id of the last message whose
	// decision changed the state; a redelivery of that message is recognized
	// by it and republishes the same events.
	LastAppliedEventID uuid.UUID
	RegisteredAt       time.Time
	UpdatedAt          time.Time
	CorrelationID      uuid.UUID
	// Generation counts the node's registrations: each registration from no
	// state or a terminal state increments it. Consul deregisters only the
	// generation they name, so a late one never removes a newer registration.
	Generation int64
}

// Clone returns a copy of p that shares no memory with it. Clone of nil is nil.
func (p *Projection) Clone() *Projection {
	if p == nil {
		return nil
	}
	c := *p
	if p.Capabilities != nil {
		c.Capabilities = append(json.RawMessage{}, p.Capabilities...)
	}
	c.Endpoints = maps.Clone(p.Endpoints)
	return &c
}

// set copies the columns cols of src into p.
func (p *Projection) set(cols Columns, src *Projection) {
	for c := range cols.Each() {
		switch c {
		case ColCurrentState:
			p.State = src.State
		case ColNodeType:
			p.NodeType = src.NodeType
		case ColNodeVersion:
			p.NodeVersion = src.NodeVersion
		case ColCapabilities:
			p.Capabilities = src.Capabilities
		case ColEndpoints:
			p.Endpoints = src.Endpoints
		case ColAckDeadline:
			p.AckDeadline = src.AckDeadline
		case ColLivenessDeadline:
			p.LivenessDeadline = src.LivenessDeadline
		case ColLastHeartbeatAt:
			p.LastHeartbeatAt = src.LastHeartbeatAt
		case ColAckTimeoutEmittedAt:
			p.AckTimeoutEmittedAt = src.AckTimeoutEmittedAt
		case ColLivenessTimeoutEmittedAt:
			p.LivenessTimeoutEmittedAt = src.LivenessTimeoutEmittedAt
		case ColLastAppliedEventID:
			p.LastAppliedEventID = src.LastAppliedEventID
		case ColRegisteredAt:
			p.RegisteredAt = src.RegisteredAt
		case ColUpdatedAt:
			p.UpdatedAt = src.UpdatedAt
		case ColCorrelationID:
			p.CorrelationID = src.CorrelationID
		case ColGeneration:
			p.Generation = src.Generation
		}
	}
}

// Value returns the value of a single column as a Go value a database driver
// takes: string, []byte (JSON), map[string]string, time.Time or nil for a
// NULL time, uuid.UUID or nil for a nil UUID, int64.
func (p *Projection) Value(c Columns) any {
	switch c {
	case ColCurrentState:
		return string(p.State)
	case ColNodeType:
		return p.NodeType
	case ColNodeVersion:
		return p.NodeVersion
	case ColCapabilities:
		if len(p.Capabilities) == 0 {
			return json.RawMessage("{}")
		}
		return p.Capabilities
	case ColEndpoints:
		if p.Endpoints == nil {
			return map[string]string{}
		}
		return p.Endpoints
	case ColAckDeadline:
		return nullTime(p.AckDeadline)
	case ColLivenessDeadline:
		return nullTime(p.LivenessDeadline)
	case ColLastHeartbeatAt:
		return nullTime(p.LastHeartbeatAt)
	case ColAckTimeoutEmittedAt:
		return nullTime(p.AckTimeoutEmittedAt)
	case ColLivenessTimeoutEmittedAt:
		return nullTime(p.LivenessTimeoutEmittedAt)
	case ColLastAppliedEventID:
		return nullUUID(p.LastAppliedEventID)
	case ColRegisteredAt:
		return nullTime(p.RegisteredAt)
	case ColUpdatedAt:
		return nullTime(p.UpdatedAt)
	case ColCorrelationID:
		return nullUUID(p.CorrelationID)
	case ColGeneration:
		return p.Generation
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// projectionJSON is the JSON form: column names, NULL for zero times.
type projectionJSON struct {
	EntityID                 uuid.UUID         `json:"entity_id"`
	Domain                   string            `json:"domain"`
	State                    State             `json:"current_state"`
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

// MarshalJSON writes the projection as a JSON object keyed by column name,
// with null for zero times and ids.
func (p Projection) MarshalJSON() ([]byte, error) {
	t := func(v time.Time) *time.Time {
		if v.IsZero() {
			return nil
		}
		v = v.UTC()
		return &v
	}
	id := func(v uuid.UUID) *uuid.UUID {
		if v == uuid.Nil {
			return nil
		}
		return &v
	}
	caps := p.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	eps := p.Endpoints
	if eps == nil {
		eps = map[string]string{}
	}
	return json.Marshal(projectionJSON{
		EntityID: p.EntityID, Domain: p.Domain, State: p.State, NodeType: p.NodeType,
		NodeVersion: p.NodeVersion, Capabilities: caps, Endpoints: eps,
		AckDeadline: t(p.AckDeadline), LivenessDeadline: t(p.LivenessDeadline),
		LastHeartbeatAt: t(p.LastHeartbeatAt), AckTimeoutEmittedAt: t(p.AckTimeoutEmittedAt),
		LivenessTimeoutEmittedAt: t(p.LivenessTimeoutEmittedAt),
		LastAppliedEventID:       id(p.LastAppliedEventID), RegisteredAt: t(p.RegisteredAt),
		UpdatedAt: t(p.UpdatedAt), CorrelationID: id(p.CorrelationID), Generation: p.Generation,
	})
}
