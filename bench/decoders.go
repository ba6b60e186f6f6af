package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	goccy "github.com/goccy/go-json"
	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// The decoder comparison: the heartbeat workload of decodeFixture (the
// envelope and its heartbeat payload) decoded through reflection into the
// same wire structs by each maintained decoder, followed by the same
// validation DecodeEnvelope and DecodeHeartbeat do, so that the figures
// compare the JSON decoding alone with the hand-written jsonobj path.

// wireEnvelope is the envelope's JSON shape; pointers tell absent (or null)
// from empty.
type wireEnvelope struct {
	EnvelopeID        *string         `json:"envelope_id"`
	EnvelopeTimestamp *string         `json:"envelope_timestamp"`
	CorrelationID     *string         `json:"correlation_id"`
	EventType         *string         `json:"event_type"`
	SourceTool        *string         `json:"source_tool"`
	TargetTool        *string         `json:"target_tool"`
	Metadata          json.RawMessage `json:"metadata"`
	Priority          *int            `json:"priority"`
	RetryCount        *int            `json:"retry_count"`
	TraceID           *string         `json:"trace_id"`
	SpanID            *string         `json:"span_id"`
	RequestID         *string         `json:"request_id"`
	OnexVersion       json.RawMessage `json:"onex_version"`
	EnvelopeVersion   json.RawMessage `json:"envelope_version"`
	Payload           json.RawMessage `json:"payload"`
}

// wireHeartbeat is the heartbeat payload's JSON shape.
type wireHeartbeat struct {
	NodeID                *string         `json:"node_id"`
	NodeType              *string         `json:"node_type"`
	NodeVersion           json.RawMessage `json:"node_version"`
	UptimeSeconds         *float64        `json:"uptime_seconds"`
	ActiveOperationsCount *int            `json:"active_operations_count"`
	CorrelationID         *string         `json:"correlation_id"`
	Timestamp             *string         `json:"timestamp"`
}

// unmarshalFunc is a decoder's Unmarshal.
type unmarshalFunc func(data []byte, v any) error

// decoder is one contender of the comparison.
type decoder struct {
	name   string
	decode func(value []byte) (*bus.Envelope, *registration.Heartbeat, error)
}

// jsonobjDecoder is registrar's own path: bus.DecodeEnvelope and
// registration.DecodeHeartbeat, both on internal/jsonobj.
func jsonobjDecoder() decoder {
	return decoder{name: "jsonobj (registrar)", decode: func(value []byte) (*bus.Envelope, *registration.Heartbeat, error) {
		env, err := bus.DecodeEnvelope(value)
		if err != nil {
			return nil, nil, err
		}
		hb, err := registration.DecodeHeartbeat(env.Payload)
		return env, hb, err
	}}
}

// reflectDecoder decodes with unmarshal into the wire structs and validates
// as registrar's decoders do.
func reflectDecoder(name string, unmarshal unmarshalFunc) decoder {
	return decoder{name: name, decode: func(value []byte) (*bus.Envelope, *registration.Heartbeat, error) {
		var w wireEnvelope
		if err := unmarshal(value, &w); err != nil {
			return nil, nil, err
		}
		env, err := envelopeOf(&w)
		if err != nil {
			return nil, nil, err
		}
		var hw wireHeartbeat
		if err := unmarshal(env.Payload, &hw); err != nil {
			return nil, nil, err
		}
		hb, err := heartbeatOf(&hw)
		return env, hb, err
	}}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isNull(raw []byte) bool { return len(raw) == 0 || bytes.Equal(raw, []byte("null")) }

// envelopeOf validates w as bus.DecodeEnvelope does.
func envelopeOf(w *wireEnvelope) (*bus.Envelope, error) {
	if w.EnvelopeID == nil || w.EnvelopeTimestamp == nil || isNull(w.Payload) {
		return nil, errors.New("envelope_id, envelope_timestamp or payload missing")
	}
	e := &bus.Envelope{EventType: deref(w.EventType), SourceTool: deref(w.SourceTool), TargetTool: deref(w.TargetTool),
		TraceID: deref(w.TraceID), SpanID: deref(w.SpanID), RequestID: deref(w.RequestID), Priority: bus.DefaultPriority,
		OnexVersion: bus.DefaultVersion, EnvelopeVersion: bus.DefaultEnvelopeVersion}
	var err error
	if e.EnvelopeID, err = bus.ParseUUIDField("envelope_id", *w.EnvelopeID); err != nil {
		return nil, err
	}
	if e.EnvelopeTimestamp, err = bus.ParseTimeField("envelope_timestamp", *w.EnvelopeTimestamp); err != nil {
		return nil, err
	}
	if s := deref(w.CorrelationID); s != "" {
		if e.CorrelationID, err = bus.ParseUUIDField("correlation_id", s); err != nil {
			return nil, err
		}
	}
	if !isNull(w.Metadata) {
		e.Metadata = bytes.Clone(w.Metadata)
	}
	if w.Priority != nil {
		e.Priority = *w.Priority
	}
	if w.RetryCount != nil {
		e.RetryCount = *w.RetryCount
	}
	if !isNull(w.OnexVersion) {
		if err := e.OnexVersion.UnmarshalJSON(w.OnexVersion); err != nil {
			return nil, err
		}
	}
	if !isNull(w.EnvelopeVersion) {
		if err := e.EnvelopeVersion.UnmarshalJSON(w.EnvelopeVersion); err != nil {
			return nil, err
		}
	}
	e.Payload = bytes.Clone(w.Payload)
	return e, nil
}

// heartbeatOf validates w as registration.DecodeHeartbeat does.
func heartbeatOf(w *wireHeartbeat) (*registration.Heartbeat, error) {
	if w.NodeID == nil || w.UptimeSeconds == nil || w.Timestamp == nil {
		return nil, errors.New("node_id, uptime_seconds or timestamp missing")
	}
	h := &registration.Heartbeat{NodeType: deref(w.NodeType), UptimeSeconds: *w.UptimeSeconds}
	var err error
	if h.NodeID, err = bus.ParseUUIDField("payload.node_id", *w.NodeID); err != nil {
		return nil, err
	}
	if !isNull(w.NodeVersion) {
		var v bus.Version
		if err := v.UnmarshalJSON(w.NodeVersion); err != nil {
			return nil, err
		}
		h.NodeVersion = v.String()
	}
	if w.ActiveOperationsCount != nil {
		h.ActiveOperationsCount = *w.ActiveOperationsCount
	}
	if s := deref(w.CorrelationID); s != "" {
		if h.CorrelationID, err = uuid.Parse(s); err != nil {
			return nil, err
		}
	}
	if h.Timestamp, err = bus.ParseTimeField("payload.timestamp", *w.Timestamp); err != nil {
		return nil, err
	}
	return h, nil
}

// decoders are the contenders: jsonobj first (the baseline), then
// encoding/json and the maintained alternatives; a build with
// GOEXPERIMENT=jsonv2 adds encoding/json/v2 (decoders_jsonv2.go).
func decoders() []decoder {
	return append([]decoder{
		jsonobjDecoder(),
		reflectDecoder("encoding/json", json.Unmarshal),
		reflectDecoder("goccy/go-json v0.12.0", goccy.Unmarshal),
		reflectDecoder("segmentio/encoding/json v0.5.4", segjson.Unmarshal),
	}, extraDecoders...)
}

// extraDecoders are contenders that only some builds have.
var extraDecoders []decoder

// semanticsCases are envelopes on which encoding/json's key matching shows:
// case-insensitive names, Unicode simple folding (ſ U+017F is s, the Kelvin
// sign U+212A is k), the later duplicate winning, null as absent.
var semanticsCases = []string{
	`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","SOURCE_TOOL":"a","payload":{"NODE_ID":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","Uptime_Seconds":1,"timestamp":"2026-03-01T12:00:30Z"}}`,
	`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timeſtamp":"2025-03-04T05:06:07Z","ſource_tool":"a","payload":{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_ſeconds":1,"timeſtamp":"2026-03-01T12:00:30Z"}}`,
	`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","\u017fource_tool":"a","payload":{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_seconds":1,"timestamp":"2026-03-01T12:00:30Z","active_operations_count":1,"ACTIVE_OPERATIONS_COUNT":2}}`,
	`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","source_tool":"a","source_tool":"b","Source_Tool":null,"payload":{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_seconds":1,"timestamp":"2026-03-01T12:00:30Z","node_type":"effect","NODE_TYPE":"compute"}}`,
	`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","sourcetool":"a","source-tool":"b","payload":{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_seconds":1,"timestamp":"2026-03-01T12:00:30Z","\u212aind":1}}`,
}

// semantics returns "" when d decodes every semantics case as encoding/json
// does, else which cases differ and how.
func semantics(d decoder) string {
	ref := reflectDecoder("encoding/json", json.Unmarshal)
	var diffs []string
	for i, c := range semanticsCases {
		env, hb, err := d.decode([]byte(c))
		wantEnv, wantHB, wantErr := ref.decode([]byte(c))
		switch {
		case (err == nil) != (wantErr == nil):
			diffs = append(diffs, fmt.Sprintf("case %d: error %v, encoding/json %v", i+1, err, wantErr))
		case err == nil && env.SourceTool != wantEnv.SourceTool:
			diffs = append(diffs, fmt.Sprintf("case %d: source_tool %q, encoding/json %q", i+1, env.SourceTool, wantEnv.SourceTool))
		case err == nil && !reflect.DeepEqual(hb, wantHB):
			diffs = append(diffs, fmt.Sprintf("case %d: heartbeat %+v, encoding/json %+v", i+1, *hb, *wantHB))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d cases differ from encoding/json (%s)", len(diffs), len(semanticsCases), diffs[0])
}

// benchmark is testing.Benchmark's function decoding the fixture's value
// with d.
func (f *decodeFixture) decoderBenchmark(d decoder) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := d.decode(f.value); err != nil {
				b.Fatal(err)
			}
		}
	}
}
