package bus

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
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
