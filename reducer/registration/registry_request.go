package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// EventRegistryRequest is the event_type of a registry request, as the
// ONEX registration orchestrator's contract names the events of
// [TopicRegistryRequest].
const EventRegistryRequest = "RegistryRequestIntrospectionEvent"

// TopicRegistryRequest is the topic of registry requests: the registry asks
// nodes to introspect again. Nodes read every partition of it; requests
// are published without a key.
const TopicRegistryRequest = "onex.evt.platform.registry-request-introspection.v1"

// The reasons of a registry request (ONEX's EnumIntrospectionReason of
// the registry request model).
const (
	ReasonStartup            = "startup"
	ReasonStartupRebroadcast = "startup_rebroadcast"
	ReasonRecovery           = "recovery"
	ReasonRefresh            = "refresh"
	ReasonManual             = "manual"
	ReasonNodeJoin           = "node_join"
)

// DefaultRegistryID is the registry_id written for a [RegistryRequest]
// whose RegistryID is empty.
const DefaultRegistryID = "registrar"

// DefaultResponseTimeout is the response timeout written for a
// [RegistryRequest] whose ResponseTimeout is zero, and read for one that
// names none: 5 s, ONEX's default. [MaxResponseTimeout] is the longest
// ONEX accepts.
const (
	DefaultResponseTimeout = 5 * time.Second
	MaxResponseTimeout     = 30 * time.Second
)

// RegistryRequest asks nodes to introspect again, for example after the
// registry lost or restored its store. Its JSON form has exactly the
// fields of ONEX's ModelRegistryRequestEvent, which forbids others; so it
// has no filter by node id, only by node type.
type RegistryRequest struct {
	// RegistryID identifies the registry that asks (registry_id);
	// [DefaultRegistryID] when empty.
	RegistryID string
	// CorrelationID ties the request to the introspections it causes
	// (correlation_id); zero when none is set, written as null.
	CorrelationID uuid.UUID
	// Reason says why (reason): one of the Reason constants;
	// [ReasonManual] when empty. Decoding accepts any non-empty string.
	Reason string
	// Timestamp is when the request was made (request_timestamp), in UTC
	// when decoded.
	Timestamp time.Time
	// NodeTypes are the node types asked to introspect
	// (target_node_types); empty means every node, and is written as
	// null. A decoded empty list is taken as null too.
	NodeTypes []string
	// ResponseTimeout is how long a node may take before it responds
	// (response_timeout_ms, whole milliseconds); zero means
	// [DefaultResponseTimeout]; at most [MaxResponseTimeout].
	ResponseTimeout time.Duration
	// Metadata is a JSON object carried through (metadata); empty is
	// written as {}.
	Metadata json.RawMessage
}

// MarshalJSON writes the request as ONEX's ModelRegistryRequestEvent, with
// the defaults the field comments name. A ResponseTimeout outside (0,
// MaxResponseTimeout] after the default, or Metadata that is not a JSON
// object, is an error.
func (r *RegistryRequest) MarshalJSON() ([]byte, error) {
	id := r.RegistryID
	if id == "" {
		id = DefaultRegistryID
	}
	reason := r.Reason
	if reason == "" {
		reason = ReasonManual
	}
	timeout := r.ResponseTimeout
	if timeout == 0 {
		timeout = DefaultResponseTimeout
	}
	ms := timeout.Milliseconds()
	if ms <= 0 || timeout > MaxResponseTimeout {
		return nil, fmt.Errorf("registration: registry request: response timeout %v is outside 1ms..%v", timeout, MaxResponseTimeout)
	}
	meta := r.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	} else if t := bytes.TrimSpace(meta); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("registration: registry request: metadata is not a JSON object")
	}
	var corr *uuid.UUID
	if r.CorrelationID != uuid.Nil {
		corr = &r.CorrelationID
	}
	var types []string
	if len(r.NodeTypes) > 0 {
		types = r.NodeTypes
	}
	return json.Marshal(struct {
		RegistryID        string          `json:"registry_id"`
		RequestTimestamp  string          `json:"request_timestamp"`
		Reason            string          `json:"reason"`
		TargetNodeTypes   []string        `json:"target_node_types"`
		ResponseTimeoutMS int64           `json:"response_timeout_ms"`
		Metadata          json.RawMessage `json:"metadata"`
		CorrelationID     *uuid.UUID      `json:"correlation_id"`
	}{id, r.Timestamp.UTC().Format(time.RFC3339Nano), reason, types, ms, meta, corr})
}

// DecodeRegistryRequest decodes the payload of a registry request
// envelope. The envelope's event_type must be [EventRegistryRequest], the
// ONEX bridge's "registry_request_introspection" (in any case), the topic
// name, or empty. registry_id, reason and request_timestamp (RFC 3339 with
// a zone) are required; target_node_types, response_timeout_ms (1 to
// 30000), metadata (an object) and correlation_id (a UUID) may be null or
// absent. Unknown fields are ignored. A bad field is a [*bus.DecodeError]
// naming it.
func DecodeRegistryRequest(env *bus.Envelope) (*RegistryRequest, error) {
	if env == nil {
		return nil, errors.New("registration: decode registry request: nil envelope")
	}
	switch t := env.EventType; {
	case t == "", t == EventRegistryRequest, t == TopicRegistryRequest, strings.EqualFold(t, "registry_request_introspection"):
	default:
		return nil, &bus.DecodeError{Field: "event_type", Reason: fmt.Sprintf("is %q, want %q", t, EventRegistryRequest)}
	}
	f, err := objectFields(env.Payload)
	if err != nil {
		return nil, err
	}
	var r RegistryRequest
	if r.RegistryID, err = f.str("registry_id"); err != nil {
		return nil, err
	}
	if r.RegistryID == "" {
		return nil, &bus.DecodeError{Field: "registry_id", Reason: "empty"}
	}
	if r.Reason, err = f.str("reason"); err != nil {
		return nil, err
	}
	if r.Reason == "" {
		return nil, &bus.DecodeError{Field: "reason", Reason: "empty"}
	}
	if r.Timestamp, err = f.time("request_timestamp"); err != nil {
		return nil, err
	}
	if raw, ok := f["target_node_types"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &r.NodeTypes); err != nil {
			return nil, &bus.DecodeError{Field: "target_node_types", Reason: "not a JSON array of strings"}
		}
		if len(r.NodeTypes) == 0 {
			r.NodeTypes = nil
		}
	}
	r.ResponseTimeout = DefaultResponseTimeout
	if raw, ok := f["response_timeout_ms"]; ok && !isNull(raw) {
		var ms int64
		if err := json.Unmarshal(raw, &ms); err != nil {
			return nil, &bus.DecodeError{Field: "response_timeout_ms", Reason: "not a JSON integer"}
		}
		if ms <= 0 || ms > MaxResponseTimeout.Milliseconds() {
			return nil, &bus.DecodeError{Field: "response_timeout_ms", Reason: fmt.Sprintf("%d is outside 1..%d", ms, MaxResponseTimeout.Milliseconds())}
		}
		r.ResponseTimeout = time.Duration(ms) * time.Millisecond
	}
	if raw, ok := f["metadata"]; ok && !isNull(raw) {
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			return nil, &bus.DecodeError{Field: "metadata", Reason: "not a JSON object"}
		}
		r.Metadata = bytes.Clone(raw)
	}
	if raw, ok := f["correlation_id"]; ok && !isNull(raw) {
		if r.CorrelationID, err = f.uuid("correlation_id"); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// Targets reports whether the request asks the node with this id and type
// to introspect: every node when NodeTypes is empty, else a node whose type
// is one of NodeTypes (compared case-insensitively). ONEX's request has no
// filter by node id, so nodeID does not narrow it.
func (r *RegistryRequest) Targets(nodeID uuid.UUID, nodeType string) bool {
	_ = nodeID
	if len(r.NodeTypes) == 0 {
		return true
	}
	return slices.ContainsFunc(r.NodeTypes, func(t string) bool { return strings.EqualFold(t, nodeType) })
}
