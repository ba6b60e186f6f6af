package discovery

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/reducer/registration"
)

// Node is what a [Client] knows of one registered node: the fields of its
// latest registration snapshot that a service looking for peers needs.
//
// Nodes handed out by a Client share Capabilities and Endpoints with the
// Client's view and with each other: treat them as read-only (copy before
// modifying).
type Node struct {
	// ID is the node's id, the snapshot's key and entity_id.
	ID uuid.UUID
	// Domain is the registration domain the snapshot belongs to.
	Domain string
	// State is the node's registration state; only
	// registration.StateActive nodes are [Client.Lookup]'s answers.
	State registration.State
	// Type is the node's type (node_type), the key of [Client.Lookup].
	Type string
	// Name is the node's human-readable name (node_name), if the
	// publisher of the snapshot knows one (registrar's does not).
	Name string
	// Version is the node's own version (node_version).
	Version string
	// Capabilities is the node's capabilities object, as JSON.
	Capabilities json.RawMessage
	// Endpoints maps endpoint names to addresses.
	Endpoints map[string]string
	// Generation counts the node's registrations.
	Generation int64
	// RegisteredAt is when the current registration started; zero in a
	// snapshot ONEX published (it is registrar's metadata).
	RegisteredAt time.Time
	// StateChangedAt is when the node entered State (last_state_change_at;
	// see registration.SnapshotOf for what registrar writes there).
	StateChangedAt time.Time
	// SnapshotVersion is the snapshot's version (snapshot_version),
	// increasing per node: a snapshot with a version not above the one held
	// is ignored.
	SnapshotVersion int64
	// SnapshotAt is when the snapshot was made (snapshot_created_at).
	SnapshotAt time.Time
}

// nodeOf converts a decoded snapshot, sharing the strings that many nodes
// have in common through in.
func nodeOf(s *registration.Snapshot, in *interner) *Node {
	return &Node{
		ID:              s.EntityID,
		Domain:          in.intern(s.Domain),
		State:           registration.State(in.intern(string(s.State))),
		Type:            in.intern(s.NodeType),
		Name:            s.NodeName,
		Version:         in.intern(s.NodeVersion),
		Capabilities:    s.Capabilities,
		Endpoints:       s.Endpoints,
		Generation:      s.Generation,
		RegisteredAt:    s.RegisteredAt,
		StateChangedAt:  s.LastStateChangeAt,
		SnapshotVersion: s.Version,
		SnapshotAt:      s.CreatedAt,
	}
}

// byID orders nodes by id, as List and Lookup return them.
func byID(a, b Node) int { return bytes.Compare(a.ID[:], b.ID[:]) }

// maxInterned bounds an interner: past it, new strings are kept as they
// are.
const maxInterned = 4096

// interner shares equal strings (domains, states, types, versions: few
// values over many nodes), so that each node does not hold its own copy.
// It is not safe for concurrent use.
type interner struct{ m map[string]string }

func (in *interner) intern(s string) string {
	if v, ok := in.m[s]; ok {
		return v
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
