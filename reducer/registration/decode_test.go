package registration_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

const (
	goodIntrospection = `{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"effect","node_version":{"major":1,"minor":2,"patch":3},"declared_capabilities":{"postgres":true},"endpoints":{"health":"http://10.0.0.5:8080/health"},"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","timestamp":"2026-03-01T12:00:00Z","node_role":"x"}`
	goodAck           = `{"command_id":"11111111-1111-4111-8111-111111111111","node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","timestamp":"2026-03-01T12:00:05+01:00"}`
	goodHeartbeat     = `{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"effect","node_version":"1.2.3","uptime_seconds":12.5,"active_operations_count":2,"memory_usage_mb":10.5,"correlation_id":null,"timestamp":"2026-03-01T12:00:30.123456Z"}`
	goodCheck         = `{"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","kind":"liveness","deadline_at":"2026-03-01T12:00:00Z","checked_at":"2026-03-01T12:00:01Z","correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f"}`
)

func TestDecodeValid(t *testing.T) {
	in, err := registration.DecodeIntrospection([]byte(goodIntrospection))
	if err != nil || in.NodeVersion.String() != "1.2.3" || in.Endpoints["health"] == "" || string(in.Capabilities) != `{"postgres":true}` {
		t.Fatalf("introspection: %+v, %v", in, err)
	}
	older := strings.Replace(strings.Replace(goodIntrospection, `{"major":1,"minor":2,"patch":3}`, `"2.0.1"`, 1), "declared_capabilities", "capabilities", 1)
	in, err = registration.DecodeIntrospection([]byte(older))
	if err != nil || in.NodeVersion.String() != "2.0.1" || string(in.Capabilities) != `{"postgres":true}` {
		t.Fatalf("older introspection: %+v, %v", in, err)
	}
	a, err := registration.DecodeAck([]byte(goodAck))
	if err != nil || a.Timestamp.UTC().Hour() != 11 {
		t.Fatalf("ack: %+v, %v", a, err)
	}
	h, err := registration.DecodeHeartbeat([]byte(goodHeartbeat))
	if err != nil || h.UptimeSeconds != 12.5 || h.NodeVersion != "1.2.3" || h.ActiveOperationsCount != 2 {
		t.Fatalf("heartbeat: %+v, %v", h, err)
	}
	c, err := registration.DecodeTimeoutCheck([]byte(goodCheck))
	if err != nil || c.Kind != registration.TimeoutLiveness {
		t.Fatalf("check: %+v, %v", c, err)
	}
}

// TestDecodeInvalidNamesField: every invalid input is an error that names
// the offending field.
func TestDecodeInvalidNamesField(t *testing.T) {
	rep := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	cases := []struct {
		name, field string
		decode      func([]byte) error
		input       string
	}{
		{"introspection not json", "payload", introspect, `{"node_id":`},
		{"introspection array", "payload", introspect, `[1,2]`},
		{"introspection no node_id", "payload.node_id", introspect, rep(goodIntrospection, `"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10",`, ``)},
		{"introspection bad node_id", "payload.node_id", introspect, rep(goodIntrospection, `7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10`, `not-a-uuid`)},
		{"introspection nil node_id", "payload.node_id", introspect, rep(goodIntrospection, `7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10`, `00000000-0000-0000-0000-000000000000`)},
		{"introspection node_id number", "payload.node_id", introspect, rep(goodIntrospection, `"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10"`, `42`)},
		{"introspection node_type", "payload.node_type", introspect, rep(goodIntrospection, `"effect"`, `"toaster"`)},
		{"introspection node_version", "payload.node_version", introspect, rep(goodIntrospection, `{"major":1,"minor":2,"patch":3}`, `"one"`)},
		{"introspection endpoint", "payload.endpoints.health", introspect, rep(goodIntrospection, `http://10.0.0.5:8080/health`, `10.0.0.5:8080`)},
		{"introspection zone-less timestamp", "payload.timestamp", introspect, rep(goodIntrospection, `2026-03-01T12:00:00Z`, `2026-03-01T12:00:00`)},
		{"introspection no correlation", "payload.correlation_id", introspect, rep(goodIntrospection, `"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f",`, ``)},
		{"introspection capabilities", "payload.declared_capabilities", introspect, rep(goodIntrospection, `{"postgres":true}`, `[true]`)},
		{"ack no node_id", "payload.node_id", ack, rep(goodAck, `"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10",`, ``)},
		{"ack bad command_id", "payload.command_id", ack, rep(goodAck, `11111111-1111-4111-8111-111111111111`, `x`)},
		{"ack no timestamp", "payload.timestamp", ack, rep(goodAck, `,"timestamp":"2026-03-01T12:00:05+01:00"`, ``)},
		{"heartbeat negative uptime", "payload.uptime_seconds", heartbeat, rep(goodHeartbeat, `12.5`, `-1`)},
		{"heartbeat no uptime", "payload.uptime_seconds", heartbeat, rep(goodHeartbeat, `"uptime_seconds":12.5,`, ``)},
		{"heartbeat uptime string", "payload.uptime_seconds", heartbeat, rep(goodHeartbeat, `12.5`, `"12.5"`)},
		{"heartbeat negative operations", "payload.active_operations_count", heartbeat, rep(goodHeartbeat, `"active_operations_count":2`, `"active_operations_count":-2`)},
		{"heartbeat zone-less", "payload.timestamp", heartbeat, rep(goodHeartbeat, `2026-03-01T12:00:30.123456Z`, `2026-03-01T12:00:30.123456`)},
		{"heartbeat bad node_id", "payload.node_id", heartbeat, rep(goodHeartbeat, `7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10`, `7b0c`)},
		{"check kind", "payload.kind", check, rep(goodCheck, `"liveness"`, `"soon"`)},
		{"check deadline", "payload.deadline_at", check, rep(goodCheck, `2026-03-01T12:00:00Z`, `yesterday`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode([]byte(tc.input))
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *bus.DecodeError", err)
			}
			if de.Field != tc.field {
				t.Errorf("field %q, want %q (error: %v)", de.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q does not name %s", err, tc.field)
			}
		})
	}
}

func introspect(b []byte) error { _, err := registration.DecodeIntrospection(b); return err }
func ack(b []byte) error        { _, err := registration.DecodeAck(b); return err }
func heartbeat(b []byte) error  { _, err := registration.DecodeHeartbeat(b); return err }
func check(b []byte) error      { _, err := registration.DecodeTimeoutCheck(b); return err }

// fuzzDecoder checks that a decoder never panics, and that what it accepts
// is valid and survives a round trip through its JSON form where it has one.
func FuzzDecodeIntrospection(f *testing.F) {
	f.Add([]byte(goodIntrospection))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := registration.DecodeIntrospection(data)
		if err != nil {
			return
		}
		raw, err := in.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := registration.DecodeIntrospection(raw)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", raw, err)
		}
		if again.NodeID != in.NodeID || again.NodeType != in.NodeType || again.NodeVersion != in.NodeVersion || !again.Timestamp.Equal(in.Timestamp) {
			t.Fatalf("round trip changed %+v into %+v", in, again)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(goodAck))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := registration.DecodeAck(data)
		if err != nil {
			return
		}
		raw, err := a.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := registration.DecodeAck(raw)
		if err != nil || again.NodeID != a.NodeID || !again.Timestamp.Equal(a.Timestamp) {
			t.Fatalf("round trip of %s: %+v, %v", raw, again, err)
		}
	})
}

func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add([]byte(goodHeartbeat))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := registration.DecodeHeartbeat(data)
		if err != nil {
			return
		}
		if h.UptimeSeconds < 0 || h.ActiveOperationsCount < 0 || h.Timestamp.IsZero() {
			t.Fatalf("accepted invalid heartbeat %+v", h)
		}
		raw, err := h.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := registration.DecodeHeartbeat(raw); err != nil {
			t.Fatalf("re-decode of %s: %v", raw, err)
		}
	})
}

func FuzzDecodeTimeoutCheck(f *testing.F) {
	f.Add([]byte(goodCheck))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := registration.DecodeTimeoutCheck(data)
		if err != nil {
			return
		}
		if c.Kind != registration.TimeoutAck && c.Kind != registration.TimeoutLiveness {
			t.Fatalf("accepted kind %q", c.Kind)
		}
	})
}
