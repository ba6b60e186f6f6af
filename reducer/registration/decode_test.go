package registration_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer"
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

// TestDecodeTimestampBounds: every timestamp of every payload is strict
// RFC 3339 between bus.MinTime and bus.MaxTime; anything else is an error
// naming the field.
func TestDecodeTimestampBounds(t *testing.T) {
	fields := []struct {
		name, field string
		decode      func([]byte) error
		input, old  string
	}{
		{"introspection", "timestamp", introspect, goodIntrospection, `"timestamp":"2026-03-01T12:00:00Z"`},
		{"ack", "timestamp", ack, goodAck, `"timestamp":"2026-03-01T12:00:05+01:00"`},
		{"heartbeat", "timestamp", heartbeat, goodHeartbeat, `"timestamp":"2026-03-01T12:00:30.123456Z"`},
		{"check", "deadline_at", check, goodCheck, `"deadline_at":"2026-03-01T12:00:00Z"`},
		{"check", "checked_at", check, goodCheck, `"checked_at":"2026-03-01T12:00:01Z"`},
	}
	accepted := []string{
		"2000-01-01T00:00:00Z", "9000-01-01T00:00:00Z", "2026-01-02T03:04:05Z", "2026-01-02t03:04:05z",
		"2026-01-02T03:04:05.123456+00:00", "2026-01-02T03:04:05-07:00", "2026-01-02T03:04:05.1Z",
		"2026-01-02T03:04:05.12Z", "2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05.1234Z",
		"2026-01-02T03:04:05.12345Z", "2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.1234567Z",
		"2026-01-02T03:04:05.12345678Z", "2026-01-02T03:04:05.123456789Z",
	}
	rejected := []string{
		"1999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9000-01-01T00:00:00.000001Z",
		"2026-03-01T8:00:00Z", "2026-03-01T08:00:00", "2026-03-01 08:00:00Z", "1741064767",
	}
	for _, f := range fields {
		if !strings.Contains(f.input, f.old) {
			t.Fatalf("%s fixture lacks %s", f.name, f.old)
		}
		with := func(ts string) []byte {
			return []byte(strings.Replace(f.input, f.old, `"`+f.field+`":"`+ts+`"`, 1))
		}
		for _, ts := range accepted {
			t.Run(f.name+"/"+f.field+"/"+ts, func(t *testing.T) {
				if err := f.decode(with(ts)); err != nil {
					t.Errorf("rejected: %v", err)
				}
			})
		}
		for _, ts := range rejected {
			t.Run(f.name+"/"+f.field+"/"+ts, func(t *testing.T) {
				err := f.decode(with(ts))
				var de *bus.DecodeError
				if !errors.As(err, &de) || de.Field != "payload."+f.field {
					t.Errorf("error %v, want a *bus.DecodeError naming payload.%s", err, f.field)
				}
			})
		}
	}
}

// checkTimes fails unless every time lies in [bus.MinTime, bus.MaxTime],
// marshals, and marshals plus MaxDuration: a deadline computed from it.
func checkTimes(t *testing.T, times ...time.Time) {
	t.Helper()
	for _, at := range times {
		if at.Before(bus.MinTime) || at.After(bus.MaxTime) {
			t.Fatalf("accepted %v, outside [%v, %v]", at, bus.MinTime, bus.MaxTime)
		}
		if _, err := json.Marshal(at); err != nil {
			t.Fatalf("json.Marshal(%v): %v", at, err)
		}
		if _, err := json.Marshal(at.Add(registration.MaxDuration)); err != nil {
			t.Fatalf("json.Marshal(%v + MaxDuration): %v", at, err)
		}
	}
}

// longestReducer returns a reducer whose durations are all MaxDuration.
func longestReducer(f *testing.F) *registration.Reducer {
	r, err := registration.New(registration.Config{
		AckTimeout: registration.MaxDuration, LivenessInterval: registration.MaxDuration,
		LivenessWindow: registration.MaxDuration, ConsulTTL: registration.MaxDuration,
	})
	if err != nil {
		f.Fatal(err)
	}
	return r
}

// checkDecides decides a decoded input, stamped at, against a projection
// in the state that makes it act (p: an older projection in that state, or
// nil), and fails unless every payload of the decision marshals.
func checkDecides(t *testing.T, r *registration.Reducer, p *registration.Projection, event any, at time.Time) {
	t.Helper()
	if p != nil {
		p.UpdatedAt = bus.MinTime.Add(-time.Second)
	}
	d := r.Decide(p, reducer.Input{EntityID: nodeID, Event: event, Envelope: env(at)}, at)
	if d.IsNoop() {
		t.Fatalf("decision of %+v at %v is a no-op: %s", event, at, d.Reason)
	}
	checkDecisionMarshals(t, d)
}

// The decoder fuzz targets check that a decoder never panics, reports every
// failure as a *bus.DecodeError, and that what it accepts is valid: its
// timestamps within bounds and marshalable (so is each plus MaxDuration), a
// round trip through its JSON form unchanged, and a decision on it, with
// the longest durations, that marshals.

func FuzzDecodeIntrospection(f *testing.F) {
	f.Add([]byte(goodIntrospection))
	r := longestReducer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := registration.DecodeIntrospection(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkTimes(t, in.Timestamp)
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
		checkDecides(t, r, nil, in, in.Timestamp)
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(goodAck))
	r := longestReducer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := registration.DecodeAck(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkTimes(t, a.Timestamp)
		raw, err := a.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := registration.DecodeAck(raw)
		if err != nil || again.NodeID != a.NodeID || !again.Timestamp.Equal(a.Timestamp) {
			t.Fatalf("round trip of %s: %+v, %v", raw, again, err)
		}
		checkDecides(t, r, projection(registration.StateAwaitingAck), a, a.Timestamp)
	})
}

func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add([]byte(goodHeartbeat))
	r := longestReducer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := registration.DecodeHeartbeat(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if h.UptimeSeconds < 0 || h.ActiveOperationsCount < 0 || h.Timestamp.IsZero() {
			t.Fatalf("accepted invalid heartbeat %+v", h)
		}
		checkTimes(t, h.Timestamp)
		raw, err := h.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := registration.DecodeHeartbeat(raw)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", raw, err)
		}
		if again.NodeID != h.NodeID || !again.Timestamp.Equal(h.Timestamp) || again.UptimeSeconds != h.UptimeSeconds {
			t.Fatalf("round trip changed %+v into %+v", h, again)
		}
		p := projection(registration.StateActive)
		p.LastHeartbeatAt = time.Time{}
		checkDecides(t, r, p, h, h.Timestamp)
	})
}

func FuzzDecodeTimeoutCheck(f *testing.F) {
	f.Add([]byte(goodCheck))
	r := longestReducer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := registration.DecodeTimeoutCheck(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if c.Kind != registration.TimeoutAck && c.Kind != registration.TimeoutLiveness {
			t.Fatalf("accepted kind %q", c.Kind)
		}
		checkTimes(t, c.DeadlineAt, c.CheckedAt)
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := registration.DecodeTimeoutCheck(raw)
		if err != nil || again.EntityID != c.EntityID || again.Kind != c.Kind ||
			!again.DeadlineAt.Equal(c.DeadlineAt) || !again.CheckedAt.Equal(c.CheckedAt) {
			t.Fatalf("round trip of %s: %+v, %v", raw, again, err)
		}
		// A projection whose deadline passed before any accepted time.
		p := projection(registration.StateActive)
		p.AckDeadline, p.LivenessDeadline = bus.MinTime.Add(-time.Second), bus.MinTime.Add(-time.Second)
		if c.Kind == registration.TimeoutAck {
			p.State = registration.StateAwaitingAck
		}
		checkDecides(t, r, p, c, c.CheckedAt)
	})
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *bus.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v is not a *bus.DecodeError", err, err)
	}
}
