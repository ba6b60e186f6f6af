package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// TopicSnapshot is the default snapshot topic, as ONEX names it: a compacted
// topic keyed by node id whose last message per key is the node's current
// registration.
const TopicSnapshot = "onex.snapshot.platform.registration-snapshots.v1"

// EventSnapshot is the envelope event_type of a snapshot message, the name
// of ONEX's model (ModelRegistrationSnapshot).
const EventSnapshot = "ModelRegistrationSnapshot"

// MetadataKey is the member of a snapshot envelope's metadata object that
// holds registrar's fields (see [Snapshot.Metadata]).
const MetadataKey = "registrar"

// Snapshot is a registration's state as the snapshot topic carries it:
// ONEX's fields in the payload (exactly them, since ONEX's model forbids
// others) and registrar's in the envelope metadata under "registrar".
//
// Times are written exactly (RFC 3339, every digit of the fraction); a zero
// time of registrar's fields is left out.
type Snapshot struct {
	// EntityID is the node's id (entity_id).
	EntityID uuid.UUID
	// Domain is the projection's domain (domain), [DefaultDomain] unless
	// configured otherwise.
	Domain string
	// State is the registration state (current_state).
	State State
	// NodeType is the node's type (node_type); empty is written as null.
	NodeType string
	// NodeName is the node's human-readable name (node_name); empty is
	// written as null. Registrar's projection has no name: [SnapshotOf]
	// leaves it empty.
	NodeName string
	// Capabilities is the JSON object the node declared (capabilities); nil
	// is written as null.
	Capabilities json.RawMessage
	// LastStateChangeAt is when the registration entered State
	// (last_state_change_at); see [SnapshotOf].
	LastStateChangeAt time.Time
	// Version is the snapshot's version (snapshot_version), at least 1 and
	// increasing per entity: the runtime writes the time of the decision
	// that published the snapshot, in Unix microseconds.
	Version int64
	// CreatedAt is when the snapshot was made (snapshot_created_at): the
	// time of that decision.
	CreatedAt time.Time

	// NodeVersion is the node's version, as [Projection.NodeVersion].
	NodeVersion string
	// Endpoints are the node's endpoints; nil and empty are the same.
	Endpoints map[string]string
	// Generation counts the node's registrations, as [Projection.Generation].
	Generation int64
	// RegisteredAt is when the current registration started.
	RegisteredAt time.Time
}

// SnapshotOf returns the snapshot of p with the given version and creation
// time. It reads only columns that the decisions publishing snapshots set,
// never those heartbeats move (updated_at, last_heartbeat_at,
// liveness_deadline), so the snapshot of a stored projection equals the last
// one published for it.
//
// LastStateChangeAt is the time of the transition into p.State as far as the
// projection records it: the timeout marker (ack_timeout_emitted_at,
// liveness_timeout_emitted_at) for the states a timeout enters, registered_at
// otherwise. For active that is the start of the registration, not the ack,
// whose time the projection does not keep (it came at most the ack timeout
// later).
//
// Times are truncated to microseconds, the precision of PostgreSQL and of
// Python's datetime, so a snapshot of a projection read from either store
// is the same. Empty capabilities are the empty object, as the stores
// write them. SnapshotOf of nil is nil.
func SnapshotOf(p *Projection, version int64, createdAt time.Time) *Snapshot {
	if p == nil {
		return nil
	}
	caps := p.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	changed := p.RegisteredAt
	switch p.State {
	case StateAckTimedOut:
		changed = p.AckTimeoutEmittedAt
	case StateLivenessExpired:
		changed = p.LivenessTimeoutEmittedAt
	}
	return &Snapshot{
		EntityID: p.EntityID, Domain: p.Domain, State: p.State, NodeType: p.NodeType,
		Capabilities:      bytes.Clone(caps),
		LastStateChangeAt: micro(changed), Version: version, CreatedAt: micro(createdAt),
		NodeVersion: p.NodeVersion, Endpoints: maps.Clone(p.Endpoints), Generation: p.Generation,
		RegisteredAt: micro(p.RegisteredAt),
	}
}

// micro returns t in UTC truncated to microseconds; the zero time stays zero.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Equal reports whether s and o hold the same snapshot: times compared with
// time.Time.Equal, capabilities as JSON values (so whitespace and member
// order do not matter, as in a jsonb column), nil and empty endpoints alike.
func (s *Snapshot) Equal(o *Snapshot) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.EntityID == o.EntityID && s.Domain == o.Domain && s.State == o.State &&
		s.NodeType == o.NodeType && s.NodeName == o.NodeName &&
		jsonEqual(s.Capabilities, o.Capabilities) &&
		s.LastStateChangeAt.Equal(o.LastStateChangeAt) && s.Version == o.Version &&
		s.CreatedAt.Equal(o.CreatedAt) && s.NodeVersion == o.NodeVersion &&
		maps.Equal(s.Endpoints, o.Endpoints) && s.Generation == o.Generation &&
		s.RegisteredAt.Equal(o.RegisteredAt)
}

// jsonEqual compares two JSON values (nil is null) by value, numbers by
// their text.
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, erra := jsonValue(a)
	vb, errb := jsonValue(b)
	if erra != nil || errb != nil {
		return false
	}
	return equalValues(va, vb)
}

func jsonValue(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func equalValues(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !equalValues(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// snapshotPayload is the JSON form of the payload: ModelRegistrationSnapshot's
// fields, exactly.
type snapshotPayload struct {
	EntityID                 uuid.UUID       `json:"entity_id"`
	Domain                   string          `json:"domain"`
	CurrentState             State           `json:"current_state"`
	NodeType                 *string         `json:"node_type"`
	NodeName                 *string         `json:"node_name"`
	Capabilities             json.RawMessage `json:"capabilities"`
	LastStateChangeAt        string          `json:"last_state_change_at"`
	SnapshotVersion          int64           `json:"snapshot_version"`
	SnapshotCreatedAt        string          `json:"snapshot_created_at"`
	SourceProjectionSequence *int64          `json:"source_projection_sequence"`
}

// snapshotMeta is the JSON form of registrar's fields in the metadata.
type snapshotMeta struct {
	NodeVersion  string            `json:"node_version,omitempty"`
	Endpoints    map[string]string `json:"endpoints,omitempty"`
	Generation   int64             `json:"generation"`
	RegisteredAt string            `json:"registered_at,omitempty"`
}

// The bounds ONEX's model puts on its fields.
const (
	maxDomainLen   = 128
	maxNodeNameLen = 256
)

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// validate checks what ONEX's model requires of the payload fields.
func (s *Snapshot) validate() error {
	switch {
	case s.EntityID == uuid.Nil:
		return errors.New("entity_id is the nil UUID")
	case s.Domain == "" || len(s.Domain) > maxDomainLen:
		return fmt.Errorf("domain must have 1 to %d characters, has %d", maxDomainLen, len(s.Domain))
	case !s.State.Valid():
		return fmt.Errorf("current_state %q is not a registration state", string(s.State))
	case len(s.NodeName) > maxNodeNameLen:
		return fmt.Errorf("node_name has more than %d characters", maxNodeNameLen)
	case s.Version < 1:
		return fmt.Errorf("snapshot_version %d is below 1", s.Version)
	case s.LastStateChangeAt.IsZero():
		return errors.New("last_state_change_at is zero")
	case s.CreatedAt.IsZero():
		return errors.New("snapshot_created_at is zero")
	}
	if s.Capabilities != nil && !isObject(s.Capabilities) {
		return errors.New("capabilities is not a JSON object")
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// Payload returns the envelope payload: a JSON object with exactly the
// fields of ONEX's ModelRegistrationSnapshot (source_projection_sequence is
// null: registrar's projection has no sequence). It is an error if a field
// breaks that model's constraints: a nil entity_id, a domain of 0 or more
// than 128 bytes, an unknown state, a node_name over 256 bytes, a version
// below 1, a zero last_state_change_at or snapshot_created_at, capabilities
// that are not a JSON object.
func (s *Snapshot) Payload() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("registration: encode snapshot: %w", err)
	}
	var caps json.RawMessage
	if s.Capabilities != nil {
		caps = s.Capabilities
	}
	b, err := json.Marshal(snapshotPayload{
		EntityID: s.EntityID, Domain: s.Domain, CurrentState: s.State,
		NodeType: optString(s.NodeType), NodeName: optString(s.NodeName), Capabilities: caps,
		LastStateChangeAt: formatTime(s.LastStateChangeAt), SnapshotVersion: s.Version,
		SnapshotCreatedAt: formatTime(s.CreatedAt),
	})
	if err != nil {
		return nil, fmt.Errorf("registration: encode snapshot: %w", err)
	}
	return b, nil
}

// Metadata returns the envelope metadata: {"registrar":{...}} with
// node_version, endpoints and registered_at (each left out when empty or
// zero) and generation.
func (s *Snapshot) Metadata() (json.RawMessage, error) {
	m := snapshotMeta{NodeVersion: s.NodeVersion, Endpoints: s.Endpoints, Generation: s.Generation}
	if !s.RegisteredAt.IsZero() {
		m.RegisteredAt = formatTime(s.RegisteredAt)
	}
	b, err := json.Marshal(map[string]snapshotMeta{MetadataKey: m})
	if err != nil {
		return nil, fmt.Errorf("registration: encode snapshot metadata: %w", err)
	}
	return b, nil
}

// MarshalJSON writes [Snapshot.Payload], so that a *Snapshot is an event
// payload as it is.
func (s *Snapshot) MarshalJSON() ([]byte, error) { return s.Payload() }

// DecodeSnapshot decodes a message of the snapshot topic. A tombstone (a
// nil Value) returns (nil, true, nil) if its key names an entity (see
// [DecodeSnapshotKey]). Otherwise the value must be an envelope
// ([bus.DecodeEnvelope]) of event_type [EventSnapshot] whose payload is a
// snapshot and whose key, if present, names the payload's entity_id.
//
// The payload must carry entity_id (a UUID other than the nil UUID),
// current_state (a registration state), last_state_change_at,
// snapshot_version (an integer of at least 1) and snapshot_created_at;
// domain defaults to [DefaultDomain] when absent or null, and must then have
// 1 to 128 bytes; node_type and node_name are strings or null, capabilities
// a JSON object or null, source_projection_sequence a non-negative integer
// or null (read and dropped). Times are RFC 3339 with a zone, kept to the
// nanosecond, in UTC. Unknown members are ignored, so that a newer
// producer's snapshots decode. Registrar's metadata is optional: without it
// (a snapshot ONEX published) its fields are zero.
//
// Every failure is a [*bus.DecodeError] naming the field (key, value,
// event_type, metadata.registrar.<name> or the payload's member).
func DecodeSnapshot(msg *bus.Message) (s *Snapshot, tombstone bool, err error) {
	if msg == nil {
		return nil, false, &bus.DecodeError{Field: "value", Reason: "nil message"}
	}
	if msg.Value == nil {
		if _, err := DecodeSnapshotKey(msg.Key); err != nil {
			return nil, true, err
		}
		return nil, true, nil
	}
	env, err := bus.DecodeEnvelope(msg.Value)
	if err != nil {
		return nil, false, err
	}
	if env.EventType != EventSnapshot {
		return nil, false, &bus.DecodeError{Field: "event_type", Reason: fmt.Sprintf("is %q, want %q", truncateString(env.EventType), EventSnapshot)}
	}
	s, err = decodeSnapshotPayload(env.Payload)
	if err != nil {
		return nil, false, err
	}
	if err := s.decodeMetadata(env.Metadata); err != nil {
		return nil, false, err
	}
	if len(msg.Key) > 0 {
		id, err := DecodeSnapshotKey(msg.Key)
		if err != nil {
			return nil, false, err
		}
		if id != s.EntityID {
			return nil, false, &bus.DecodeError{Field: "key", Reason: fmt.Sprintf("names %s, the payload's entity_id is %s", id, s.EntityID)}
		}
	}
	return s, false, nil
}

// DecodeSnapshotKey returns the entity a snapshot message's key names: the
// canonical UUID string registrar writes, or ONEX's "<domain>:<uuid>" form
// ("registration:<uuid>"). Anything else, the nil UUID included, is a
// [*bus.DecodeError] for the field "key".
func DecodeSnapshotKey(key []byte) (uuid.UUID, error) {
	if len(key) == 0 {
		return uuid.Nil, &bus.DecodeError{Field: "key", Reason: "missing"}
	}
	s := string(key)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if i == 0 || i > maxDomainLen {
			return uuid.Nil, &bus.DecodeError{Field: "key", Reason: fmt.Sprintf("%q is not <uuid> or <domain>:<uuid>", truncateString(s))}
		}
		s = s[i+1:]
	}
	// uuid.Parse also takes the urn: and braced forms; a key is the
	// canonical 36-character string.
	if len(s) != 36 {
		return uuid.Nil, &bus.DecodeError{Field: "key", Reason: fmt.Sprintf("%q is not <uuid> or <domain>:<uuid>", truncateString(string(key)))}
	}
	return bus.ParseUUIDField("key", s)
}

// decodeSnapshotPayload decodes the ONEX fields.
func decodeSnapshotPayload(raw json.RawMessage) (*Snapshot, error) {
	f, err := objectFields(raw)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Domain: DefaultDomain}
	if s.EntityID, err = f.uuid("entity_id"); err != nil {
		return nil, err
	}
	if _, ok := f["domain"]; ok && !isNull(f["domain"]) {
		if s.Domain, err = f.str("domain"); err != nil {
			return nil, err
		}
		if s.Domain == "" || len(s.Domain) > maxDomainLen {
			return nil, &bus.DecodeError{Field: "domain", Reason: fmt.Sprintf("must have 1 to %d characters, has %d", maxDomainLen, len(s.Domain))}
		}
	}
	st, err := f.str("current_state")
	if err != nil {
		return nil, err
	}
	if s.State = State(st); !s.State.Valid() {
		return nil, &bus.DecodeError{Field: "current_state", Reason: fmt.Sprintf("%q is not a registration state", truncateString(st))}
	}
	if s.NodeType, err = f.optStr("node_type"); err != nil {
		return nil, err
	}
	if s.NodeName, err = f.optStr("node_name"); err != nil {
		return nil, err
	}
	if len(s.NodeName) > maxNodeNameLen {
		return nil, &bus.DecodeError{Field: "node_name", Reason: fmt.Sprintf("has more than %d characters", maxNodeNameLen)}
	}
	if c, ok := f["capabilities"]; ok && !isNull(c) {
		if !isObject(c) {
			return nil, &bus.DecodeError{Field: "capabilities", Reason: "not a JSON object"}
		}
		s.Capabilities = bytes.Clone(bytes.TrimSpace(c))
	}
	if s.LastStateChangeAt, err = f.time("last_state_change_at"); err != nil {
		return nil, err
	}
	if s.Version, err = f.int("snapshot_version"); err != nil {
		return nil, err
	}
	if s.Version < 1 {
		return nil, &bus.DecodeError{Field: "snapshot_version", Reason: fmt.Sprintf("%d is below 1", s.Version)}
	}
	if s.CreatedAt, err = f.time("snapshot_created_at"); err != nil {
		return nil, err
	}
	if c, ok := f["source_projection_sequence"]; ok && !isNull(c) {
		n, err := f.int("source_projection_sequence")
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, &bus.DecodeError{Field: "source_projection_sequence", Reason: "negative"}
		}
	}
	return s, nil
}

// decodeMetadata decodes registrar's fields from the envelope metadata
// (absent: they stay zero).
func (s *Snapshot) decodeMetadata(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	outer, err := objectFields(raw)
	if err != nil {
		return &bus.DecodeError{Field: "metadata", Reason: "not a JSON object"}
	}
	inner, ok := outer[MetadataKey]
	if !ok || isNull(inner) {
		return nil
	}
	f, err := objectFields(inner)
	if err != nil {
		return &bus.DecodeError{Field: "metadata." + MetadataKey, Reason: "not a JSON object"}
	}
	prefix := func(err error) error {
		var de *bus.DecodeError
		if errors.As(err, &de) {
			return &bus.DecodeError{Field: "metadata." + MetadataKey + "." + de.Field, Reason: de.Reason}
		}
		return err
	}
	if s.NodeVersion, err = f.optStr("node_version"); err != nil {
		return prefix(err)
	}
	if e, ok := f["endpoints"]; ok && !isNull(e) {
		if !isObject(e) {
			return prefix(&bus.DecodeError{Field: "endpoints", Reason: "not a JSON object"})
		}
		var eps map[string]string
		if err := json.Unmarshal(e, &eps); err != nil {
			return prefix(&bus.DecodeError{Field: "endpoints", Reason: "not an object of strings"})
		}
		if len(eps) > 0 {
			s.Endpoints = eps
		}
	}
	if g, ok := f["generation"]; ok && !isNull(g) {
		if s.Generation, err = f.int("generation"); err != nil {
			return prefix(err)
		}
		if s.Generation < 0 {
			return prefix(&bus.DecodeError{Field: "generation", Reason: "negative"})
		}
	}
	if r, ok := f["registered_at"]; ok && !isNull(r) {
		if s.RegisteredAt, err = f.time("registered_at"); err != nil {
			return prefix(err)
		}
	}
	return nil
}

// optStr returns the string member name, or "" if it is absent or null.
func (f payloadFields) optStr(name string) (string, error) {
	if raw, ok := f[name]; !ok || isNull(raw) {
		return "", nil
	}
	return f.str(name)
}

// int returns the required integer member name: a JSON number without a
// fraction or an exponent, within int64.
func (f payloadFields) int(name string) (int64, error) {
	raw, err := f.required(name)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if perr != nil {
		return 0, &bus.DecodeError{Field: name, Reason: fmt.Sprintf("%s is not an integer", truncateString(string(raw)))}
	}
	return n, nil
}
