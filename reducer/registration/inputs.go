package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/internal/jsonobj"
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

// knownNodeType returns the entry of NodeTypes that b spells, without
// allocating, and whether there is one.
func knownNodeType(b []byte) (string, bool) {
	for _, n := range NodeTypes {
		if string(b) == n {
			return n, true
		}
	}
	return "", false
}

// Introspection is a node's announcement of itself
// (ModelNodeIntrospectionEvent).
type Introspection struct {
	// NodeID identifies the node; it is the entity id.
	NodeID uuid.UUID
	// NodeType is one of [NodeTypes].
	NodeType string
	// NodeVersion is the node's version, prerelease and build metadata
	// included; 1.0.0 when the sender names none.
	NodeVersion bus.Version
	// Capabilities is the declared_capabilities object (older senders call
	// it capabilities), kept as JSON.
	Capabilities json.RawMessage
	// Endpoints maps names ("health", "api") to URLs.
	Endpoints map[string]string
	// CorrelationID ties the registration's messages together.
	CorrelationID uuid.UUID
	// Timestamp is when the node sent it, by the node's clock: in UTC,
	// between bus.MinTime and bus.MaxTime.
	Timestamp time.Time
}

// Ack is the command that acknowledges a node's registration
// (ModelNodeRegistrationAcked).
type Ack struct {
	// CommandID identifies the command; zero when the sender set none.
	CommandID uuid.UUID
	// NodeID identifies the acknowledging node; it is the entity id.
	NodeID uuid.UUID
	// CorrelationID ties the registration's messages together.
	CorrelationID uuid.UUID
	// Timestamp is when the node sent it, by the node's clock: in UTC,
	// between bus.MinTime and bus.MaxTime.
	Timestamp time.Time
}

// Heartbeat is a node's liveness signal (ModelNodeHeartbeatEvent).
type Heartbeat struct {
	// NodeID identifies the node; it is the entity id.
	NodeID uuid.UUID
	// NodeType is one of [NodeTypes], or empty when the sender left it out.
	NodeType string
	// NodeVersion is the node's version as [bus.Version.String] writes it,
	// prerelease and build metadata included ("1.2.3-rc.1+build.5"), or
	// empty when the sender left it out.
	NodeVersion string
	// UptimeSeconds is how long the node has run; not negative.
	UptimeSeconds float64
	// ActiveOperationsCount is how many operations the node is running;
	// not negative.
	ActiveOperationsCount int
	// CorrelationID is the sender's correlation id; zero when it set none.
	CorrelationID uuid.UUID
	// Timestamp is when the node sent it, by the node's clock: in UTC,
	// between bus.MinTime and bus.MaxTime.
	Timestamp time.Time
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
	// EntityID is the entity whose deadline passed.
	EntityID uuid.UUID `json:"entity_id"`
	// Kind says which deadline passed.
	Kind TimeoutKind `json:"kind"`
	// DeadlineAt is the deadline the sweeper saw pass. Decoded, it is in
	// UTC, between bus.MinTime and bus.MaxTime, as CheckedAt is.
	// Informational: the check is judged against the projection's current
	// deadline.
	DeadlineAt time.Time `json:"deadline_at"`
	// CheckedAt is the sweep's time, by the sweeper's clock.
	// Informational: the check is decided as of the deciding runtime's
	// clock.
	CheckedAt time.Time `json:"checked_at"`
	// CorrelationID ties the check to a workflow run; zero when none was
	// set, and then left out of the JSON (the decoder takes a missing one,
	// not the nil UUID).
	CorrelationID uuid.UUID `json:"correlation_id,omitzero"`
}

// readPayload reads the fields of a payload object into vals; errors name
// the field.
func readPayload(kind string, data []byte, fields []jsonobj.Field, vals [][]byte) error {
	err := jsonobj.Read(data, fields, vals)
	if err == nil {
		return nil
	}
	var ke *jsonobj.KindError
	if errors.As(err, &ke) {
		return payloadError(kind, ke.Name, "want "+ke.Want.String()+", got JSON "+ke.Got.String())
	}
	if errors.Is(err, jsonobj.ErrNotObject) {
		return &bus.DecodeError{Field: "payload", Reason: "not a JSON object (" + kind + ")"}
	}
	return &bus.DecodeError{Field: "payload", Reason: fmt.Sprintf("not a JSON object (%s): %v", kind, err)}
}

func str(name string) jsonobj.Field { return jsonobj.Field{Name: name, Kind: jsonobj.String} }
func num(name string) jsonobj.Field { return jsonobj.Field{Name: name, Kind: jsonobj.Number} }
func obj(name string) jsonobj.Field { return jsonobj.Field{Name: name, Kind: jsonobj.Object} }
func raw(name string) jsonobj.Field { return jsonobj.Field{Name: name} }

// The fields each payload decoder reads, in the order of its variables.
var (
	introspectionFields = []jsonobj.Field{str("node_id"), str("node_type"), raw("node_version"),
		raw("declared_capabilities"), raw("capabilities"), obj("endpoints"), str("correlation_id"), str("timestamp")}
	ackFields       = []jsonobj.Field{str("command_id"), str("node_id"), str("correlation_id"), str("timestamp")}
	heartbeatFields = []jsonobj.Field{str("node_id"), str("node_type"), raw("node_version"),
		num("uptime_seconds"), num("active_operations_count"), str("correlation_id"), str("timestamp")}
	timeoutCheckFields = []jsonobj.Field{str("entity_id"), str("kind"), str("deadline_at"), str("checked_at"), str("correlation_id")}
)

func payloadError(kind, field, reason string) error {
	return &bus.DecodeError{Field: "payload." + field, Reason: reason + " (" + kind + ")"}
}

func reqUUID(kind, field string, v []byte) (uuid.UUID, error) {
	if v == nil {
		return uuid.Nil, payloadError(kind, field, "missing")
	}
	b := jsonobj.Bytes(v)
	if len(b) == 0 {
		return uuid.Nil, payloadError(kind, field, "missing")
	}
	if id, err := uuid.ParseBytes(b); err == nil && id != uuid.Nil {
		return id, nil
	}
	return bus.ParseUUIDField("payload."+field, string(b))
}

func optUUID(kind, field string, v []byte) (uuid.UUID, error) {
	if v == nil || len(jsonobj.Bytes(v)) == 0 {
		return uuid.Nil, nil
	}
	return reqUUID(kind, field, v)
}

func reqTime(kind, field string, v []byte) (time.Time, error) {
	if v == nil {
		return time.Time{}, payloadError(kind, field, "missing")
	}
	b := jsonobj.Bytes(v)
	if len(b) == 0 {
		return time.Time{}, payloadError(kind, field, "missing")
	}
	t, err := bus.ParseTimeBytes(field, b)
	if err != nil {
		var de *bus.DecodeError
		if errors.As(err, &de) {
			de.Field = "payload." + field // named here, so that the good path builds no string
		}
	}
	return t, err
}

// text returns the value of a raw JSON string, or "" for nil.
func text(v []byte) string {
	if v == nil {
		return ""
	}
	return jsonobj.Str(v)
}

// DecodeIntrospection parses and validates an introspection payload: node_id
// and correlation_id UUIDs, a known node_type, node_version a semantic
// version with an optional prerelease and build metadata, as a
// "1.2.3-rc.1+build.5" string or a {"major","minor","patch","prerelease",
// "build"} object (see [bus.Version.UnmarshalJSON]; default 1.0.0),
// endpoints that are URLs with a scheme and a host, and a timestamp (see
// [bus.ParseTimeField]: strict RFC 3339 with a zone, between [bus.MinTime]
// and [bus.MaxTime]). Unknown fields are ignored. Errors are
// [*bus.DecodeError]s naming the field.
func DecodeIntrospection(data []byte) (*Introspection, error) {
	const kind = KindIntrospection
	var vals [8][]byte
	err := readPayload(kind, data, introspectionFields, vals[:])
	if err != nil {
		return nil, err
	}
	nodeID, nodeType, version, declared, caps, endpoints, corr, ts := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7]
	var eps map[string]string
	if endpoints != nil {
		eps = map[string]string{}
		var typeErr error
		_ = jsonobj.Members(endpoints, func(name, u []byte) error {
			switch jsonobj.KindOf(u) {
			case jsonobj.String:
				eps[string(name)] = jsonobj.Str(u)
			case jsonobj.Null:
				eps[string(name)] = ""
			default:
				if typeErr == nil {
					typeErr = payloadError(kind, "endpoints", "want string, got JSON "+jsonobj.KindOf(u).String())
				}
			}
			return nil
		})
		if typeErr != nil {
			return nil, typeErr
		}
	}
	var in Introspection
	if in.NodeID, err = reqUUID(kind, "node_id", nodeID); err != nil {
		return nil, err
	}
	if t := text(nodeType); t == "" {
		return nil, payloadError(kind, "node_type", "missing")
	} else if !validNodeType(t) {
		return nil, payloadError(kind, "node_type", fmt.Sprintf("%q is not one of %v", t, NodeTypes))
	} else {
		in.NodeType = t
	}
	in.NodeVersion = bus.Version{Major: 1}
	if version != nil {
		if err := in.NodeVersion.UnmarshalJSON(version); err != nil {
			return nil, payloadError(kind, "node_version", err.Error())
		}
	}
	if declared == nil {
		declared = caps
	}
	if declared != nil {
		if jsonobj.KindOf(declared) != jsonobj.Object {
			return nil, payloadError(kind, "declared_capabilities", "not a JSON object")
		}
		in.Capabilities = bytes.Clone(declared)
	}
	for name, u := range eps {
		if !validEndpoint(u) {
			return nil, payloadError(kind, "endpoints."+name, fmt.Sprintf("%q is not a URL with a scheme and a host", u))
		}
	}
	in.Endpoints = eps
	if in.CorrelationID, err = reqUUID(kind, "correlation_id", corr); err != nil {
		return nil, err
	}
	if in.Timestamp, err = reqTime(kind, "timestamp", ts); err != nil {
		return nil, err
	}
	return &in, nil
}

// DecodeAck parses and validates a registration-acked command: node_id and
// correlation_id UUIDs, an optional command_id UUID, a timestamp as
// [bus.ParseTimeField] reads it (strict RFC 3339 with a zone, between
// [bus.MinTime] and [bus.MaxTime]). Errors are [*bus.DecodeError]s naming
// the field.
func DecodeAck(data []byte) (*Ack, error) {
	const kind = KindAck
	var vals [8][]byte
	err := readPayload(kind, data, ackFields, vals[:])
	if err != nil {
		return nil, err
	}
	cmd, nodeID, corr, ts := vals[0], vals[1], vals[2], vals[3]
	var a Ack
	if a.CommandID, err = optUUID(kind, "command_id", cmd); err != nil {
		return nil, err
	}
	if a.NodeID, err = reqUUID(kind, "node_id", nodeID); err != nil {
		return nil, err
	}
	if a.CorrelationID, err = reqUUID(kind, "correlation_id", corr); err != nil {
		return nil, err
	}
	if a.Timestamp, err = reqTime(kind, "timestamp", ts); err != nil {
		return nil, err
	}
	return &a, nil
}

// DecodeHeartbeat parses and validates a heartbeat: a node_id UUID, a
// timestamp as [bus.ParseTimeField] reads it (strict RFC 3339 with a zone,
// between [bus.MinTime] and [bus.MaxTime]), uptime_seconds present and not
// negative, active_operations_count not negative; node_type, if present,
// known; node_version, if present, a semantic version as for
// [DecodeIntrospection]. Errors are [*bus.DecodeError]s naming the field.
func DecodeHeartbeat(data []byte) (*Heartbeat, error) {
	const kind = KindHeartbeat
	var vals [8][]byte
	err := readPayload(kind, data, heartbeatFields, vals[:])
	if err != nil {
		return nil, err
	}
	nodeID, nodeType, version, uptime, ops, corr, ts := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6]
	var h Heartbeat
	if h.NodeID, err = reqUUID(kind, "node_id", nodeID); err != nil {
		return nil, err
	}
	if nodeType != nil {
		if b := jsonobj.Bytes(nodeType); len(b) > 0 {
			t, ok := knownNodeType(b)
			if !ok {
				return nil, payloadError(kind, "node_type", fmt.Sprintf("%q is not one of %v", b, NodeTypes))
			}
			h.NodeType = t
		}
	}
	if version != nil {
		var v bus.Version
		if err := v.UnmarshalJSON(version); err != nil {
			return nil, payloadError(kind, "node_version", err.Error())
		}
		h.NodeVersion = v.String()
	}
	if uptime == nil {
		return nil, payloadError(kind, "uptime_seconds", "missing")
	}
	up, err := jsonobj.Float(uptime)
	if err != nil {
		return nil, payloadError(kind, "uptime_seconds", "want float64, got JSON number "+string(uptime))
	}
	if up < 0 {
		return nil, payloadError(kind, "uptime_seconds", fmt.Sprintf("%v is negative", up))
	}
	h.UptimeSeconds = up
	if ops != nil {
		n, err := jsonobj.Int(ops)
		if err != nil {
			return nil, payloadError(kind, "active_operations_count", "want int, got JSON number "+string(ops))
		}
		if n < 0 {
			return nil, payloadError(kind, "active_operations_count", "negative")
		}
		h.ActiveOperationsCount = n
	}
	if h.CorrelationID, err = optUUID(kind, "correlation_id", corr); err != nil {
		return nil, err
	}
	if h.Timestamp, err = reqTime(kind, "timestamp", ts); err != nil {
		return nil, err
	}
	return &h, nil
}

// DecodeTimeoutCheck parses and validates a timeout check: an entity_id
// UUID, kind "ack" or "liveness", deadline_at and checked_at as
// [bus.ParseTimeField] reads them (strict RFC 3339 with a zone, between
// [bus.MinTime] and [bus.MaxTime]). Errors are [*bus.DecodeError]s naming
// the field.
func DecodeTimeoutCheck(data []byte) (*TimeoutCheck, error) {
	const kind = KindTimeoutCheck
	var vals [8][]byte
	err := readPayload(kind, data, timeoutCheckFields, vals[:])
	if err != nil {
		return nil, err
	}
	entity, tk, deadline, checked, corr := vals[0], vals[1], vals[2], vals[3], vals[4]
	var c TimeoutCheck
	if c.EntityID, err = reqUUID(kind, "entity_id", entity); err != nil {
		return nil, err
	}
	if tk == nil {
		return nil, payloadError(kind, "kind", "missing")
	}
	c.Kind = TimeoutKind(jsonobj.Str(tk))
	if c.Kind != TimeoutAck && c.Kind != TimeoutLiveness {
		return nil, payloadError(kind, "kind", fmt.Sprintf("%q is not ack or liveness", string(c.Kind)))
	}
	if c.DeadlineAt, err = reqTime(kind, "deadline_at", deadline); err != nil {
		return nil, err
	}
	if c.CheckedAt, err = reqTime(kind, "checked_at", checked); err != nil {
		return nil, err
	}
	if c.CorrelationID, err = optUUID(kind, "correlation_id", corr); err != nil {
		return nil, err
	}
	return &c, nil
}
