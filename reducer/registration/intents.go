package registration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// The intent types the registration reducer emits.
const (
	IntentUpsert        = "postgres.upsert_registration"
	IntentUpdate        = "postgres.update_registration"
	IntentDelete        = "postgres.delete_registration"
	IntentConsulReg     = "consul.register"
	IntentConsulDereg   = "consul.deregister"
	IntentConsulPassTTL = "consul.pass_ttl" //nolint:gosec // An intent type, not a credential.
)

// IntentTypes lists every intent type the reducer emits.
func IntentTypes() []string {
	return []string{IntentUpsert, IntentUpdate, IntentDelete, IntentConsulReg, IntentConsulDereg, IntentConsulPassTTL}
}

// UpsertRegistration is the payload of a postgres.upsert_registration
// intent: insert the projection if the decision saw no row, or overwrite the
// columns Columns of the row the decision saw.
//
// The guard: the row must be as the decision saw it. ExpectedState is the
// state the decision read. [StateNone] means the decision saw no row: the
// projection is inserted, and an existing row is a conflict. Any other state
// means the decision saw a row in that state: the columns Columns of the row
// are overwritten if it is still in that state; a row in another state is a
// conflict, and so is a missing row (another writer removed it since, as a
// postgres.delete_registration does): an upsert never inserts a row its
// decision saw. A guard that fails changes nothing and reports
// [intent.Conflict]; the runtime decides again against the current row. See
// [ApplyUpsert].
type UpsertRegistration struct {
	Projection    Projection
	Columns       Columns
	ExpectedState State
	CorrelationID uuid.UUID
}

// UpdateRegistration is the payload of a postgres.update_registration intent:
// set the columns Set of the row (EntityID, Domain) to their values in Values.
//
// Guards: an update writes only if the row still holds what its decision
// read, so a decision made on a row that another writer changed since is
// never applied on top of the change.
//
//   - ExpectedState, if not empty: the row must be in that state.
//   - Guard: each of these columns must hold its value in Expected, compared
//     as SQL's IS NOT DISTINCT FROM (times to the microsecond): a zero time
//     or the nil UUID in Expected means the column must be NULL. Only
//     [GuardableColumns] may be named.
//   - If Set has last_heartbeat_at, the stored one must be NULL or older
//     (the monotonic heartbeat guard).
//
// The update changes nothing when a guard fails. A missing row, a failed
// state guard or a failed column guard reports [intent.Conflict], with a
// reason that names the state or the column; a failed heartbeat guard
// alone reports [intent.Skipped]. They are checked in that order (see
// [UpdateRegistration.Check]): a skip says the decision still holds but was
// overtaken, so it is reported only when everything else the decision read
// still holds.
type UpdateRegistration struct {
	EntityID      uuid.UUID
	Domain        string
	Set           Columns
	Values        Projection
	ExpectedState State
	// Guard names the columns whose stored values the decision read and
	// another writer can change; the update applies only if each still
	// holds its value in Expected. Zero guards no column.
	Guard Columns
	// Expected holds, for each column of Guard, the value the decision
	// read; its other fields are ignored.
	Expected      Projection
	CorrelationID uuid.UUID
}

// DeleteRegistration is the payload of a postgres.delete_registration
// intent: remove the row (EntityID, Domain), the registration of a node
// that shut down.
//
// Guards, as an update's: the row must be in ExpectedState (required: a
// removal is decided about a row it read), and each column of Guard must
// hold its value in Expected (IS NOT DISTINCT FROM, times to the
// microsecond). A missing row, a row in another state or a failed column
// guard removes nothing and reports [intent.Conflict] with a reason that
// names the state or the column; the runtime then decides the shutdown
// again against the current row (a missing row makes it a no-op). See
// [DeleteRegistration.Check] and [ApplyDelete].
type DeleteRegistration struct {
	EntityID      uuid.UUID
	Domain        string
	ExpectedState State
	// Guard names the columns whose stored values the decision read and
	// another writer can change; zero guards no column. Only
	// [GuardableColumns] may be named.
	Guard Columns
	// Expected holds, for each column of Guard, the value the decision
	// read; its other fields are ignored.
	Expected      Projection
	CorrelationID uuid.UUID
}

// ConsulRegister is the payload of a consul.register intent: register the
// node as a service (see [ServiceName] and [ServiceID]) with the given
// generation.
type ConsulRegister struct {
	NodeID        uuid.UUID         `json:"node_id"`
	NodeType      string            `json:"node_type"`
	NodeVersion   string            `json:"node_version"`
	Endpoints     map[string]string `json:"endpoints,omitempty"`
	Generation    int64             `json:"generation"`
	CorrelationID uuid.UUID         `json:"correlation_id"`
}

// ConsulDeregister is the payload of a consul.deregister intent: remove the
// node's service, but only if the registered generation is Generation, so a
// late deregister never removes a newer registration.
type ConsulDeregister struct {
	NodeID        uuid.UUID `json:"node_id"`
	NodeType      string    `json:"node_type"`
	Generation    int64     `json:"generation"`
	CorrelationID uuid.UUID `json:"correlation_id"`
}

// ConsulPassTTL is the payload of a consul.pass_ttl intent: mark the TTL check
// of the node's service passing, as of At, if Generation is registered.
// The reducer emits one when a heartbeat enters a new third of the TTL, so a
// node that heartbeats keeps its check passing, and a node whose registrar
// vanished is removed by Consul itself.
//
// NodeVersion and Endpoints are the active projection's, as the decision
// read it: an effect that finds the service missing, or registered with
// other metadata, registers it again from them (effects/consul heals the
// registry on the hot path).
type ConsulPassTTL struct {
	NodeID        uuid.UUID         `json:"node_id"`
	NodeType      string            `json:"node_type"`
	NodeVersion   string            `json:"node_version,omitempty"`
	Endpoints     map[string]string `json:"endpoints,omitempty"`
	Generation    int64             `json:"generation"`
	At            time.Time         `json:"at"`
	CorrelationID uuid.UUID         `json:"correlation_id"`
}

// Register returns the consul.register payload that registers what p
// names: the registration a heal writes when the service is missing.
func (p *ConsulPassTTL) Register() *ConsulRegister {
	return &ConsulRegister{NodeID: p.NodeID, NodeType: p.NodeType, NodeVersion: p.NodeVersion,
		Endpoints: p.Endpoints, Generation: p.Generation, CorrelationID: p.CorrelationID}
}

// ServiceName is the Consul service name of a node type, as the ONEX services
// name it: "onex-{node_type}".
func ServiceName(nodeType string) string { return "onex-" + nodeType }

// ServiceID is the Consul service id of a node: "onex-{node_type}-{node_id}".
func ServiceID(nodeType string, nodeID uuid.UUID) string {
	return "onex-" + nodeType + "-" + nodeID.String()
}

// ServiceTags are the Consul tags of a node: "onex" and "node-type:{node_type}".
func ServiceTags(nodeType string) []string {
	return []string{"onex", "node-type:" + nodeType}
}

// ServiceAddress returns the host and port of the node's "health" endpoint,
// else its "api" endpoint; port is 0 if the URL names none.
func ServiceAddress(endpoints map[string]string) (host string, port int) {
	for _, name := range [...]string{"health", "api"} {
		raw, ok := endpoints[name]
		if !ok {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			continue
		}
		p, _ := strconv.Atoi(u.Port())
		return u.Hostname(), p
	}
	return "", 0
}

func postgresTarget(id uuid.UUID) string { return "postgres://node_registrations/" + id.String() }

func consulTarget(nodeType string, id uuid.UUID) string {
	return "consul://service/" + ServiceID(nodeType, id)
}

// UpdatesFromMap converts a column → value map, as JSON or the Python
// services produce it, to an update's column set and values. Column names
// come from the allowlist of writable columns; values are normalized: UUID
// strings to UUIDs, RFC 3339 strings to times (a time without a zone is
// taken as UTC), JSON numbers to integers, nil to NULL. An empty map, an
// unknown column or a value of the wrong type is an error that names the
// column.
func UpdatesFromMap(m map[string]any) (Columns, Projection, error) {
	var cols Columns
	var p Projection
	if len(m) == 0 {
		return 0, p, fmt.Errorf("registrar/registration: empty update set")
	}
	for name, v := range m {
		c, ok := ColumnByName(name)
		if !ok {
			return 0, p, fmt.Errorf("registrar/registration: column %q is not a writable column", name)
		}
		if err := setColumnValue(&p, c, v); err != nil {
			return 0, p, fmt.Errorf("registrar/registration: column %q: %w", name, err)
		}
		cols |= c
	}
	return cols, p, nil
}

func setColumnValue(p *Projection, c Columns, v any) error {
	switch {
	case c&timeColumns != 0:
		t, err := normalizeTime(v)
		if err != nil {
			return err
		}
		one := Projection{}
		switch c {
		case ColAckDeadline:
			one.AckDeadline = t
		case ColLivenessDeadline:
			one.LivenessDeadline = t
		case ColLastHeartbeatAt:
			one.LastHeartbeatAt = t
		case ColAckTimeoutEmittedAt:
			one.AckTimeoutEmittedAt = t
		case ColLivenessTimeoutEmittedAt:
			one.LivenessTimeoutEmittedAt = t
		case ColRegisteredAt:
			one.RegisteredAt = t
		case ColUpdatedAt:
			one.UpdatedAt = t
		}
		p.set(c, &one)
		return nil
	case c == ColLastAppliedEventID || c == ColCorrelationID:
		id, err := normalizeUUID(v)
		if err != nil {
			return err
		}
		if c == ColLastAppliedEventID {
			p.LastAppliedEventID = id
		} else {
			p.CorrelationID = id
		}
		return nil
	}
	switch c {
	case ColCurrentState:
		s, ok := v.(string)
		if st, isState := v.(State); isState {
			s, ok = string(st), true
		}
		if !ok || !State(s).Valid() {
			return fmt.Errorf("want a registration state, got %v", describe(v))
		}
		p.State = State(s)
	case ColNodeType, ColNodeVersion:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", describe(v))
		}
		if c == ColNodeType {
			p.NodeType = s
		} else {
			p.NodeVersion = s
		}
	case ColCapabilities:
		switch x := v.(type) {
		case json.RawMessage:
			if !json.Valid(x) {
				return fmt.Errorf("not valid JSON")
			}
			p.Capabilities = x
		case nil:
			p.Capabilities = nil
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("not JSON-encodable: %w", err)
			}
			p.Capabilities = b
		}
	case ColEndpoints:
		switch x := v.(type) {
		case map[string]string:
			p.Endpoints = x
		case map[string]any:
			eps := make(map[string]string, len(x))
			for k, val := range x {
				s, ok := val.(string)
				if !ok {
					return fmt.Errorf("endpoint %q: want a string, got %s", k, describe(val))
				}
				eps[k] = s
			}
			p.Endpoints = eps
		case nil:
			p.Endpoints = nil
		default:
			return fmt.Errorf("want a map of endpoint names to URLs, got %s", describe(v))
		}
	case ColGeneration:
		switch x := v.(type) {
		case int64:
			p.Generation = x
		case int:
			p.Generation = int64(x)
		case float64:
			if x != float64(int64(x)) {
				return fmt.Errorf("want an integer, got %v", x)
			}
			p.Generation = int64(x)
		case json.Number:
			n, err := x.Int64()
			if err != nil {
				return fmt.Errorf("want an integer, got %s", x)
			}
			p.Generation = n
		default:
			return fmt.Errorf("want an integer, got %s", describe(v))
		}
	}
	return nil
}

func normalizeTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return x, nil
	case *time.Time:
		if x == nil {
			return time.Time{}, nil
		}
		return *x, nil
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, nil
		}
		for _, layout := range [...]string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
			if t, err := time.ParseInLocation(layout, x, time.UTC); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", x)
	}
	return time.Time{}, fmt.Errorf("want a time, got %s", describe(v))
}

func normalizeUUID(v any) (uuid.UUID, error) {
	switch x := v.(type) {
	case nil:
		return uuid.Nil, nil
	case uuid.UUID:
		return x, nil
	case [16]byte:
		return uuid.UUID(x), nil
	case string:
		id, err := uuid.Parse(x)
		if err != nil {
			return uuid.Nil, fmt.Errorf("%q is not a UUID", x)
		}
		return id, nil
	}
	return uuid.Nil, fmt.Errorf("want a UUID, got %s", describe(v))
}

func describe(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// validEndpoint reports whether raw is a URL with a scheme and a host.
func validEndpoint(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return false
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}
