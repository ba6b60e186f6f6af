package bus

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzDecodeEnvelopeMatchesEncodingJSON compares the reflection-free
// DecodeEnvelope with the encoding/json decoder it replaced: both accept or
// both reject, and what they accept is the same envelope. It shares the
// FuzzDecodeEnvelope corpus.
func FuzzDecodeEnvelopeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","payload":{}}`,
		`{"Envelope_ID":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07.123+02:00","payload":[1],"event_type":"a\u00e9\ud83d\ude00\"x","priority":3,"retry_count":0,"metadata":{"a":[1,{"b":"}"}]},"onex_version":"1.2.3","envelope_version":{"major":2,"minor":null}}`,
		`{"envelope_id":5,"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","payload":1}`,
		`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_id":null,"envelope_timestamp":"2025-03-04T05:06:07Z","payload":1}`,
		`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","payload":"\udd00 \xff"}`,
		`null`, `[]`, `{"a":`,
		`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timeſtamp":"2025-03-04T05:06:07Z","payload":{},"ſource_tool":"a","\u017fpan_id":"b","request_id":"c","REQUEST_ID":null}`,
		`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","payload":{},"onex_verſion":{"MAJOR":1,"patch":2},"\u212aind":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := DecodeEnvelope(data)
		want, wantErr := refDecodeEnvelope(data)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("input %q:\nDecodeEnvelope: %+v, %v\nencoding/json:  %+v, %v", data, got, gotErr, want, wantErr)
		}
		if gotErr != nil {
			var de *DecodeError
			if !errors.As(gotErr, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", gotErr, gotErr)
			}
			return
		}
		// encoding/json keeps raw JSON byte for byte, as the new decoder does.
		if !bytes.Equal(got.Payload, want.Payload) || !bytes.Equal(got.Metadata, want.Metadata) {
			t.Fatalf("input %q: raw values differ:\n%s %s\n%s %s", data, got.Payload, got.Metadata, want.Payload, want.Metadata)
		}
		g, w := *got, *want
		g.Payload, w.Payload, g.Metadata, w.Metadata = nil, nil, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("input %q:\nDecodeEnvelope %+v\nencoding/json  %+v", data, g, w)
		}
	})
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	data := []byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07.123456Z",` +
		`"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","source_tool":"node","target_tool":null,` +
		`"metadata":{"trace_id":null,"span_id":null,"parent_span_id":null,"request_id":null,"headers":{},"tags":{}},` +
		`"priority":5,"retry_count":0,"onex_version":{"major":1,"minor":0,"patch":0},"envelope_version":{"major":2,"minor":0,"patch":0},` +
		`"payload":{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_seconds":12.5,"timestamp":"2026-03-01T12:00:30Z"}}`)
	for _, tc := range []struct {
		name string
		fn   func([]byte) (*Envelope, error)
	}{{"jsonobj", DecodeEnvelope}, {"encoding-json", refDecodeEnvelope}} {
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

// TestDecodeEnvelopeFoldsKeysAsEncodingJSON: keys match field names under
// Unicode simple folding, as in encoding/json: U+017F (ſ) stands for s and
// U+212A (Kelvin sign) for k, raw or escaped; other look-alikes match
// nothing. Each input is also checked against the encoding/json reference.
func TestDecodeEnvelopeFoldsKeysAsEncodingJSON(t *testing.T) {
	const base = `"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","payload":{}`
	for _, tc := range []struct {
		member string
		source string // the SourceTool it must decode to
		spanID string
	}{
		{`"ſource_tool":"a"`, "a", ""},
		{`"\u017fource_tool":"a"`, "a", ""},
		{`"SOURCE_TOOL":"a","ſpan_id":"b"`, "a", "b"},
		{`"ſource_tool":"a","source_tool":"b"`, "b", ""}, // the later duplicate wins
		{`"source_tool":"b","\u017Fource_tool":"a"`, "a", ""},
		{`"ſource_tool":"a","ſource_tool":null`, "", ""},
		{`"\u0073ource_tool":"a"`, "a", ""},
		{`"śource_tool":"a"`, "", ""},      // U+015B folds to Ś, not to s
		{`"\u212aource_tool":"a"`, "", ""}, // the Kelvin sign is a k, not an s
		{`"source_toolſ":"a"`, "", ""},
	} {
		data := []byte("{" + base + "," + tc.member + "}")
		got, err := DecodeEnvelope(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if got.SourceTool != tc.source || got.SpanID != tc.spanID {
			t.Errorf("%s: source_tool %q, span_id %q; want %q, %q", data, got.SourceTool, got.SpanID, tc.source, tc.spanID)
		}
		want, err := refDecodeEnvelope(data)
		if err != nil {
			t.Fatalf("%s: encoding/json: %v", data, err)
		}
		if got.SourceTool != want.SourceTool || got.SpanID != want.SpanID {
			t.Errorf("%s: DecodeEnvelope %q %q, encoding/json %q %q", data, got.SourceTool, got.SpanID, want.SourceTool, want.SpanID)
		}
	}
	// A folded key reaches the required fields and the versions too.
	data := []byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timeſtamp":"2025-03-04T05:06:07Z",` +
		`"payload":{},"onex_verſion":{"MAJOR":3,"minor":1},"envelope_ver\u017fion":"4.0.0"}`)
	got, err := DecodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := refDecodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.EnvelopeTimestamp.IsZero() || got.OnexVersion != (Version{Major: 3, Minor: 1}) || got.EnvelopeVersion != (Version{Major: 4}) ||
		!reflect.DeepEqual(got, want) {
		t.Errorf("DecodeEnvelope %+v\nencoding/json %+v", got, want)
	}
}

// FuzzMarshalJSONMatchesEncodingJSON: the hand-written MarshalJSON writes
// what encoding/json writes for the wire struct, byte for byte, and fails
// where it fails.
func FuzzMarshalJSONMatchesEncodingJSON(f *testing.F) {
	f.Add("NodeHeartbeatEvent", "node", "", "", []byte(`{"a": [1, "<x>"]}`), []byte(` {"b":1} `), 0, 0, int64(1772366400123456789), true, 1, 0)
	f.Add("a\"b", "\u2028", "é", "&", []byte(`{}`), []byte(nil), 3, 2, int64(0), false, 0, 7)
	f.Add("", "", "", "", []byte(`{"a":`), []byte(`[]`), -1, -5, int64(-1), true, -1, 0)
	f.Add("x", "y", "z", "w", []byte(nil), []byte("{\"k\":\"\xff\"}"), 10, 1, int64(253402300799999999), false, 2, 3)
	f.Fuzz(func(t *testing.T, eventType, source, trace, span string, payload, metadata []byte, priority, retries int,
		nanos int64, corr bool, major, minor int) {
		e := &Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Unix(0, nanos), EventType: eventType, SourceTool: source,
			TargetTool: span + trace, TraceID: trace, SpanID: span, RequestID: source, Metadata: metadata, Payload: payload,
			Priority: priority, RetryCount: retries, OnexVersion: Version{Major: major, Minor: minor}, EnvelopeVersion: Version{Patch: minor}}
		if corr {
			e.CorrelationID = uuid.New()
		}
		if major == 2 {
			e.OnexVersion.Prerelease = "rc.1"
		}
		got, gotErr := e.MarshalJSON()
		want, wantErr := e.marshalReflect()
		if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("%+v:\nMarshalJSON   %s %v\nencoding/json %s %v", e, got, gotErr, want, wantErr)
		}
	})
}

func BenchmarkEnvelopeMarshalJSON(b *testing.B) {
	e := &Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), CorrelationID: uuid.New(),
		EventType: "NodeHeartbeatEvent", SourceTool: "registrar-node",
		Payload: []byte(`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_type":"effect","node_version":"1.2.3","uptime_seconds":12.5,"active_operations_count":0,"correlation_id":null,"timestamp":"2026-03-01T12:00:30.123456Z"}`)}
	for _, tc := range []struct {
		name string
		fn   func() ([]byte, error)
	}{{"append", e.MarshalJSON}, {"encoding-json", e.marshalReflect}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
