package registration_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// onexRegistryRequestFields are the fields of ONEX's
// ModelRegistryRequestEvent, which forbids any other.
var onexRegistryRequestFields = []string{"correlation_id", "metadata", "reason", "registry_id", "request_timestamp",
	"response_timeout_ms", "target_node_types"}

func registryEnvelope(payload []byte) *bus.Envelope {
	return &bus.Envelope{EnvelopeID: envID, EnvelopeTimestamp: t0, EventType: registration.EventRegistryRequest, Payload: payload}
}

// TestRegistryRequestJSON checks the wire form (exactly ONEX's fields, the
// defaults) and the round trip.
func TestRegistryRequestJSON(t *testing.T) {
	req := &registration.RegistryRequest{
		RegistryID: "reg-1", CorrelationID: corrID, Reason: registration.ReasonStartup, Timestamp: t0.Add(123456789),
		NodeTypes: []string{"effect", "reducer"}, ResponseTimeout: 1500 * time.Millisecond, Metadata: json.RawMessage(`{"k":1}`),
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"registry_id":"reg-1","request_timestamp":"2026-03-01T12:00:00.123456789Z","reason":"startup",` +
		`"target_node_types":["effect","reducer"],"response_timeout_ms":1500,"metadata":{"k":1},"correlation_id":"` + corrID.String() + `"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := registration.DecodeRegistryRequest(registryEnvelope(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("decoded %#v\nwant %#v", got, req)
	}

	b, err = json.Marshal(&registration.RegistryRequest{Timestamp: t0})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, onexRegistryRequestFields) {
		t.Fatalf("fields %v, want ONEX's %v", keys, onexRegistryRequestFields)
	}
	if m["registry_id"] != registration.DefaultRegistryID || m["reason"] != registration.ReasonManual ||
		m["response_timeout_ms"] != 5000.0 || m["target_node_types"] != nil || m["correlation_id"] != nil {
		t.Fatalf("defaults: %s", b)
	}
	for _, bad := range []registration.RegistryRequest{
		{ResponseTimeout: 31 * time.Second}, {ResponseTimeout: -time.Second}, {ResponseTimeout: time.Microsecond},
		{Metadata: json.RawMessage(`[1]`)},
	} {
		if b, err := json.Marshal(&bad); err == nil {
			t.Errorf("%+v marshaled: %s", bad, b)
		}
	}
}

// TestDecodeRegistryRequestErrors checks hostile and partial input.
func TestDecodeRegistryRequestErrors(t *testing.T) {
	good := map[string]any{"registry_id": "r", "reason": "refresh", "request_timestamp": "2026-03-01T12:00:00+01:00"}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	got, err := registration.DecodeRegistryRequest(registryEnvelope(with("unknown_new_field", true)))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Timestamp.Equal(t0.Add(-time.Hour)) || got.ResponseTimeout != registration.DefaultResponseTimeout || got.NodeTypes != nil {
		t.Fatalf("decoded %+v", got)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		field   string
	}{
		{"array", []byte(`[]`), "payload"},
		{"missing registry_id", with("registry_id", nil), "registry_id"},
		{"empty registry_id", with("registry_id", ""), "registry_id"},
		{"missing reason", with("reason", nil), "reason"},
		{"missing timestamp", with("request_timestamp", nil), "request_timestamp"},
		{"no zone", with("request_timestamp", "2026-03-01T12:00:00"), "request_timestamp"},
		{"types not strings", with("target_node_types", []int{1}), "target_node_types"},
		{"timeout zero", with("response_timeout_ms", 0), "response_timeout_ms"},
		{"timeout too long", with("response_timeout_ms", 30001), "response_timeout_ms"},
		{"timeout fraction", with("response_timeout_ms", 1.5), "response_timeout_ms"},
		{"metadata array", with("metadata", []int{}), "metadata"},
		{"bad correlation", with("correlation_id", "x"), "correlation_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registration.DecodeRegistryRequest(registryEnvelope(tc.payload))
			var de *bus.DecodeError
			if !errors.As(err, &de) || de.Field != tc.field {
				t.Fatalf("error %v, want a *bus.DecodeError for %s", err, tc.field)
			}
		})
	}
	env := registryEnvelope(with("x", 1))
	for _, typ := range []string{"", registration.TopicRegistryRequest, "REGISTRY_REQUEST_INTROSPECTION", "registry_request_introspection"} {
		env.EventType = typ
		if _, err := registration.DecodeRegistryRequest(env); err != nil {
			t.Errorf("event type %q: %v", typ, err)
		}
	}
	env.EventType = registration.EventAccepted
	if _, err := registration.DecodeRegistryRequest(env); err == nil || !strings.Contains(err.Error(), "event_type") {
		t.Errorf("event type %q: %v", env.EventType, err)
	}
}

// TestRegistryRequestTargets: empty filter targets every node; otherwise
// the node types named, case-insensitively.
func TestRegistryRequestTargets(t *testing.T) {
	all := &registration.RegistryRequest{}
	if !all.Targets(nodeID, "effect") || !all.Targets(uuid.New(), "") {
		t.Fatal("an empty filter must target every node")
	}
	some := &registration.RegistryRequest{NodeTypes: []string{"effect", "Orchestrator"}}
	for typ, want := range map[string]bool{"effect": true, "orchestrator": true, "EFFECT": true, "compute": false, "": false} {
		if got := some.Targets(nodeID, typ); got != want {
			t.Errorf("Targets(%q) = %v, want %v", typ, got, want)
		}
	}
}
