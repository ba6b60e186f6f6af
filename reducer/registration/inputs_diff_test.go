package registration

import (
	"errors"
	"reflect"
	"testing"

	"github.com/registrar-go/registrar/bus"
)

// differential checks that a reflection-free decoder and its encoding/json
// reference agree: both accept or both reject, and accept the same value.
func differential[T any](t *testing.T, data []byte, got func([]byte) (*T, error), ref func([]byte) (*T, error)) {
	t.Helper()
	g, gErr := got(data)
	r, rErr := ref(data)
	if (gErr == nil) != (rErr == nil) {
		t.Fatalf("input %q:\ndecoder:       %+v, %v\nencoding/json: %+v, %v", data, g, gErr, r, rErr)
	}
	if gErr != nil {
		var de *bus.DecodeError
		if !errors.As(gErr, &de) {
			t.Fatalf("error %T %v is not a *bus.DecodeError", gErr, gErr)
		}
		return
	}
	if !reflect.DeepEqual(g, r) {
		t.Fatalf("input %q:\ndecoder:       %+v\nencoding/json: %+v", data, g, r)
	}
}

func FuzzDecodersMatchEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"effect","node_version":{"major":1,"minor":2,"patch":3},"declared_capabilities":{"postgres":true},"endpoints":{"health":"http://10.0.0.5:8080/health","x\u0041":null},"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","timestamp":"2026-03-01T12:00:00Z"}`,
		`{"Node_ID":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"compute","capabilities":{},"endpoints":{"api":1},"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","timestamp":"2026-03-01T12:00:00+01:00"}`,
		`{"command_id":"11111111-1111-4111-8111-111111111111","node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","timestamp":"2026-03-01T12:00:05Z"}`,
		`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_version":"1.2","uptime_seconds":1e2,"active_operations_count":2,"correlation_id":null,"timestamp":"2026-03-01T12:00:30.123456Z"}`,
		`{"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","kind":"liveness","deadline_at":"2026-03-01T12:00:00Z","checked_at":"2026-03-01T12:00:01Z"}`,
		`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"effect","node_version":{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]},"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","timestamp":"2026-03-01T12:00:00Z"}`,
		`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_version":"1.2.3-rc.1+build.5","uptime_seconds":1,"timestamp":"2026-03-01T12:00:30Z"}`,
		`{"node_id":5,"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10"}`, `[]`, `null`, `{"uptime_seconds":-0}`,
		`{"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","\u212aind":"ack","deadline_at":"2026-03-01T12:00:00Z","chec\u212a\u212aed_at":"2026-03-01T12:00:01Z"}`,
		`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_ſeconds":1,"timeſtamp":"2026-03-01T12:00:30Z","ACTIVE_OPERATIONS_COUNT":3,"node_veRſion":"1.2.3"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		differential(t, data, DecodeIntrospection, refDecodeIntrospection)
		differential(t, data, DecodeAck, refDecodeAck)
		differential(t, data, DecodeHeartbeat, refDecodeHeartbeat)
		differential(t, data, DecodeTimeoutCheck, refDecodeTimeoutCheck)
	})
}

// TestDecodersFoldKeysAsEncodingJSON: payload keys match under Unicode
// simple folding, as in encoding/json: U+212A (Kelvin sign) stands for k and
// U+017F (ſ) for s, so these payloads decode, and decode alike.
func TestDecodersFoldKeysAsEncodingJSON(t *testing.T) {
	check := []byte(`{"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","\u212aind":"liveness","deadline_at":"2026-03-01T12:00:00Z","checKed_at":"2026-03-01T12:00:01Z"}`)
	c, err := DecodeTimeoutCheck(check)
	if err != nil || c.Kind != TimeoutLiveness || c.CheckedAt.IsZero() {
		t.Fatalf("DecodeTimeoutCheck: %+v, %v", c, err)
	}
	differential(t, check, DecodeTimeoutCheck, refDecodeTimeoutCheck)
	hb := []byte(`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_ſeconds":2.5,"timeſtamp":"2026-03-01T12:00:30Z","active_operationſ_count":3,"node_type":"efFect"}`)
	if _, err := DecodeHeartbeat(hb); err == nil {
		t.Fatal("node_type efFect accepted") // values do not fold, only keys
	}
	hb = []byte(`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_ſeconds":2.5,"timeſtamp":"2026-03-01T12:00:30Z","active_operationſ_count":3,"NODE_TYPE":"effect"}`)
	h, err := DecodeHeartbeat(hb)
	if err != nil || h.UptimeSeconds != 2.5 || h.ActiveOperationsCount != 3 || h.NodeType != "effect" {
		t.Fatalf("DecodeHeartbeat: %+v, %v", h, err)
	}
	differential(t, hb, DecodeHeartbeat, refDecodeHeartbeat)
}

func BenchmarkDecodeHeartbeat(b *testing.B) {
	data := []byte(`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"effect","node_version":"1.2.3","uptime_seconds":12.5,"active_operations_count":2,"memory_usage_mb":10.5,"correlation_id":null,"timestamp":"2026-03-01T12:00:30.123456Z"}`)
	for _, tc := range []struct {
		name string
		fn   func([]byte) (*Heartbeat, error)
	}{{"jsonobj", DecodeHeartbeat}, {"encoding-json", refDecodeHeartbeat}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.fn(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
