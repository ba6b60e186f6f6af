package bus_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

const (
	testID   = "6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60"
	testCorr = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)

// envelopeJSON returns a valid envelope as the Python services write it,
// with the fields in repl replaced (a nil value removes the field).
func envelopeJSON(t *testing.T, repl map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"envelope_id":        testID,
		"envelope_timestamp": "2025-03-04T05:06:07.123456Z",
		"correlation_id":     testCorr,
		"event_type":         "node.introspection",
		"source_tool":        "node-a",
		"target_tool":        "registrar",
		"metadata":           map[string]any{"tags": []string{"x"}},
		"priority":           7,
		"retry_count":        2,
		"trace_id":           "trace-1",
		"span_id":            "span-1",
		"request_id":         "req-1",
		"onex_version":       map[string]int{"major": 1, "minor": 2, "patch": 3},
		"envelope_version":   "2.0.1",
		"payload":            map[string]any{"node_id": "n-1"},
	}
	for k, v := range repl {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeEnvelopeValid(t *testing.T) {
	env, err := bus.DecodeEnvelope(envelopeJSON(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := bus.Envelope{
		EnvelopeID:        uuid.MustParse(testID),
		EnvelopeTimestamp: time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC),
		CorrelationID:     uuid.MustParse(testCorr),
		EventType:         "node.introspection",
		SourceTool:        "node-a",
		TargetTool:        "registrar",
		Priority:          7,
		RetryCount:        2,
		TraceID:           "trace-1",
		SpanID:            "span-1",
		RequestID:         "req-1",
		OnexVersion:       bus.Version{Major: 1, Minor: 2, Patch: 3},
		EnvelopeVersion:   bus.Version{Major: 2, Minor: 0, Patch: 1},
	}
	checkEnvelope(t, env, &want)
	if !jsonEqual(env.Payload, []byte(`{"node_id":"n-1"}`)) || !jsonEqual(env.Metadata, []byte(`{"tags":["x"]}`)) {
		t.Errorf("payload %s metadata %s", env.Payload, env.Metadata)
	}
}

// checkEnvelope compares everything but the raw JSON fields.
func checkEnvelope(t *testing.T, got, want *bus.Envelope) {
	t.Helper()
	g, w := *got, *want
	if !g.EnvelopeTimestamp.Equal(w.EnvelopeTimestamp) {
		t.Errorf("EnvelopeTimestamp = %v, want %v", g.EnvelopeTimestamp, w.EnvelopeTimestamp)
	}
	g.EnvelopeTimestamp, w.EnvelopeTimestamp = time.Time{}, time.Time{}
	g.Payload, w.Payload, g.Metadata, w.Metadata = nil, nil, nil, nil
	if g.EnvelopeID != w.EnvelopeID || g.CorrelationID != w.CorrelationID || g.EventType != w.EventType ||
		g.SourceTool != w.SourceTool || g.TargetTool != w.TargetTool || g.Priority != w.Priority ||
		g.RetryCount != w.RetryCount || g.TraceID != w.TraceID || g.SpanID != w.SpanID || g.RequestID != w.RequestID ||
		g.OnexVersion != w.OnexVersion || g.EnvelopeVersion != w.EnvelopeVersion {
		t.Errorf("envelope\n got %+v\nwant %+v", g, w)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

func TestDecodeEnvelopeDefaultsAndVariants(t *testing.T) {
	tests := []struct {
		name  string
		repl  map[string]any
		check func(t *testing.T, e *bus.Envelope)
	}{
		{"only required fields", map[string]any{
			"correlation_id": nil, "event_type": nil, "source_tool": nil, "target_tool": nil, "metadata": nil,
			"priority": nil, "retry_count": nil, "trace_id": nil, "span_id": nil, "request_id": nil,
			"onex_version": nil, "envelope_version": nil,
		}, func(t *testing.T, e *bus.Envelope) {
			if e.Priority != bus.DefaultPriority || e.RetryCount != 0 || e.CorrelationID != uuid.Nil || e.Metadata != nil {
				t.Errorf("defaults: %+v", e)
			}
			if e.OnexVersion != bus.DefaultVersion || e.EnvelopeVersion != bus.DefaultEnvelopeVersion {
				t.Errorf("versions %v %v, want %v and %v", e.OnexVersion, e.EnvelopeVersion, bus.DefaultVersion, bus.DefaultEnvelopeVersion)
			}
		}},
		{"string versions, minor and patch left out", map[string]any{"onex_version": "3", "envelope_version": "1.4"},
			func(t *testing.T, e *bus.Envelope) {
				if e.OnexVersion != (bus.Version{Major: 3}) || e.EnvelopeVersion != (bus.Version{Major: 1, Minor: 4}) {
					t.Errorf("versions %v %v", e.OnexVersion, e.EnvelopeVersion)
				}
			}},
		{"object version with major only", map[string]any{"onex_version": map[string]int{"major": 2}},
			func(t *testing.T, e *bus.Envelope) {
				if e.OnexVersion != (bus.Version{Major: 2}) {
					t.Errorf("version %v", e.OnexVersion)
				}
			}},
		{"semantic versions with prerelease and build, in both forms", map[string]any{
			"onex_version":     "1.2.3-rc.1+build.5",
			"envelope_version": json.RawMessage(`{"major":2,"minor":0,"patch":0,"prerelease":["beta",2],"build":["b","007"]}`),
		}, func(t *testing.T, e *bus.Envelope) {
			if e.OnexVersion != (bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1", Build: "build.5"}) ||
				e.EnvelopeVersion != (bus.Version{Major: 2, Prerelease: "beta.2", Build: "b.007"}) {
				t.Errorf("versions %#v %#v", e.OnexVersion, e.EnvelopeVersion)
			}
		}},
		{"null versions take the default", map[string]any{"onex_version": json.RawMessage("null")},
			func(t *testing.T, e *bus.Envelope) {
				if e.OnexVersion != bus.DefaultVersion {
					t.Errorf("version %v", e.OnexVersion)
				}
			}},
		{"timestamp with an offset", map[string]any{"envelope_timestamp": "2025-03-04T07:06:07+02:00"},
			func(t *testing.T, e *bus.Envelope) {
				if want := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC); !e.EnvelopeTimestamp.Equal(want) {
					t.Errorf("timestamp %v, want %v", e.EnvelopeTimestamp, want)
				}
			}},
		{"empty correlation id means none", map[string]any{"correlation_id": ""},
			func(t *testing.T, e *bus.Envelope) {
				if e.CorrelationID != uuid.Nil {
					t.Errorf("correlation id %v", e.CorrelationID)
				}
			}},
		{"uppercase and braced UUIDs", map[string]any{"envelope_id": strings.ToUpper(testID), "correlation_id": "{" + testCorr + "}"},
			func(t *testing.T, e *bus.Envelope) {
				if e.EnvelopeID != uuid.MustParse(testID) || e.CorrelationID != uuid.MustParse(testCorr) {
					t.Errorf("ids %v %v", e.EnvelopeID, e.CorrelationID)
				}
			}},
		{"unknown fields are ignored", map[string]any{"future_field": map[string]any{"x": 1}, "schema": "v9"},
			func(t *testing.T, e *bus.Envelope) {
				if e.EnvelopeID != uuid.MustParse(testID) {
					t.Errorf("id %v", e.EnvelopeID)
				}
			}},
		{"null metadata", map[string]any{"metadata": json.RawMessage("null")},
			func(t *testing.T, e *bus.Envelope) {
				if e.Metadata != nil {
					t.Errorf("metadata %s", e.Metadata)
				}
			}},
		{"payload that is not an object", map[string]any{"payload": []int{1, 2}},
			func(t *testing.T, e *bus.Envelope) {
				if string(e.Payload) != "[1,2]" {
					t.Errorf("payload %s", e.Payload)
				}
			}},
		{"timestamp truncated to microseconds", map[string]any{"envelope_timestamp": "2025-03-04T05:06:07.1234567891Z"},
			func(t *testing.T, e *bus.Envelope) {
				if want := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC); !e.EnvelopeTimestamp.Equal(want) {
					t.Errorf("timestamp %v, want %v", e.EnvelopeTimestamp, want)
				}
			}},
		{"earliest time", map[string]any{"envelope_timestamp": "2000-01-01T00:00:00Z"},
			func(t *testing.T, e *bus.Envelope) {
				if !e.EnvelopeTimestamp.Equal(bus.MinTime) {
					t.Errorf("timestamp %v, want %v", e.EnvelopeTimestamp, bus.MinTime)
				}
			}},
		{"latest time, written with an offset", map[string]any{"envelope_timestamp": "9000-01-01T01:00:00+01:00"},
			func(t *testing.T, e *bus.Envelope) {
				if !e.EnvelopeTimestamp.Equal(bus.MaxTime) || e.EnvelopeTimestamp.Location() != time.UTC {
					t.Errorf("timestamp %v, want %v in UTC", e.EnvelopeTimestamp, bus.MaxTime)
				}
			}},
		{"priority bounds", map[string]any{"priority": 10},
			func(t *testing.T, e *bus.Envelope) {
				if e.Priority != 10 {
					t.Errorf("priority %d", e.Priority)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := bus.DecodeEnvelope(envelopeJSON(t, tt.repl))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, e)
		})
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	tests := []struct {
		name   string
		input  []byte // if nil, envelopeJSON(repl)
		repl   map[string]any
		field  string
		reason string // substring
	}{
		{name: "not JSON", input: []byte(`{"envelope_id":`), field: "", reason: "not valid JSON"},
		{name: "not an object", input: []byte(`[1,2]`), field: "", reason: "not a JSON object"},
		{name: "missing envelope_id", repl: map[string]any{"envelope_id": nil}, field: "envelope_id", reason: "missing"},
		{name: "bad envelope_id", repl: map[string]any{"envelope_id": "not-a-uuid"}, field: "envelope_id", reason: `"not-a-uuid" is not a UUID`},
		{name: "nil envelope_id", repl: map[string]any{"envelope_id": uuid.Nil.String()}, field: "envelope_id", reason: "nil UUID"},
		{name: "numeric envelope_id", repl: map[string]any{"envelope_id": 42}, field: "envelope_id", reason: "want string"},
		{name: "bad correlation_id", repl: map[string]any{"correlation_id": "1234"}, field: "correlation_id", reason: "not a UUID"},
		{name: "missing timestamp", repl: map[string]any{"envelope_timestamp": nil}, field: "envelope_timestamp", reason: "missing"},
		{name: "zone-less timestamp", repl: map[string]any{"envelope_timestamp": "2025-03-04T05:06:07.123456"}, field: "envelope_timestamp", reason: "no time zone"},
		{name: "date only", repl: map[string]any{"envelope_timestamp": "2025-03-04"}, field: "envelope_timestamp", reason: "not an RFC 3339 time"},
		{name: "zero time", repl: map[string]any{"envelope_timestamp": "0001-01-01T00:00:00Z"}, field: "envelope_timestamp", reason: "outside 2000-01-01T00:00:00Z to 9000-01-01T00:00:00Z"},
		{name: "year 9999", repl: map[string]any{"envelope_timestamp": "9999-12-31T23:59:59Z"}, field: "envelope_timestamp", reason: "outside"},
		{name: "before MinTime in UTC", repl: map[string]any{"envelope_timestamp": "2000-01-01T00:30:00+01:00"}, field: "envelope_timestamp", reason: "outside"},
		{name: "after MaxTime in UTC", repl: map[string]any{"envelope_timestamp": "8999-12-31T23:30:00-01:00"}, field: "envelope_timestamp", reason: "outside"},
		{name: "one-digit hour", repl: map[string]any{"envelope_timestamp": "2025-03-04T8:06:07Z"}, field: "envelope_timestamp", reason: "not an RFC 3339 time"},
		{name: "unix timestamp", repl: map[string]any{"envelope_timestamp": 1741064767}, field: "envelope_timestamp", reason: "want string"},
		{name: "priority too low", repl: map[string]any{"priority": 0}, field: "priority", reason: "outside 1..10"},
		{name: "priority too high", repl: map[string]any{"priority": 11}, field: "priority", reason: "outside 1..10"},
		{name: "priority not a number", repl: map[string]any{"priority": "high"}, field: "priority", reason: "want number"},
		{name: "fractional priority", repl: map[string]any{"priority": 5.5}, field: "priority", reason: "want int"},
		{name: "negative retry_count", repl: map[string]any{"retry_count": -1}, field: "retry_count", reason: "negative"},
		{name: "event_type not a string", repl: map[string]any{"event_type": 3}, field: "event_type", reason: "want string"},
		{name: "metadata not an object", repl: map[string]any{"metadata": "x"}, field: "metadata", reason: "not a JSON object"},
		{name: "missing payload", repl: map[string]any{"payload": nil}, field: "payload", reason: "missing"},
		{name: "null payload", repl: map[string]any{"payload": json.RawMessage("null")}, field: "payload", reason: "missing"},
		{name: "bad version string", repl: map[string]any{"onex_version": "1.x"}, field: "onex_version", reason: "not major.minor.patch"},
		{name: "version with four parts", repl: map[string]any{"envelope_version": "1.2.3.4"}, field: "envelope_version", reason: "not major.minor.patch"},
		{name: "version object without major", repl: map[string]any{"onex_version": map[string]int{"minor": 1}}, field: "onex_version", reason: `no "major"`},
		{name: "negative version", repl: map[string]any{"onex_version": map[string]int{"major": 1, "patch": -1}}, field: "onex_version", reason: "negative"},
		{name: "version with an empty prerelease", repl: map[string]any{"onex_version": "1.2.3-"}, field: "onex_version", reason: "prerelease after '-' is empty"},
		{name: "version with a leading zero", repl: map[string]any{"onex_version": "1.02.3"}, field: "onex_version", reason: "leading zero"},
		{name: "version object with a bad prerelease", repl: map[string]any{"envelope_version": map[string]any{"major": 2, "prerelease": []any{"rc", "01"}}},
			field: "envelope_version", reason: `identifier "01" is numeric with a leading zero`},
		{name: "version of the wrong type", repl: map[string]any{"envelope_version": true}, field: "envelope_version", reason: "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.input
			if in == nil {
				in = envelopeJSON(t, tt.repl)
			}
			_, err := bus.DecodeEnvelope(in)
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeEnvelope = %v, want a *DecodeError", err)
			}
			if de.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", de.Field, tt.field, err)
			}
			if !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", de.Reason, tt.reason)
			}
			if tt.field != "" && !strings.Contains(err.Error(), "field "+tt.field) {
				t.Errorf("Error() = %q does not name the field", err)
			}
		})
	}
}

func TestDecodeErrorTruncatesLongInput(t *testing.T) {
	long := strings.Repeat("x", 500)
	_, err := bus.DecodeEnvelope(envelopeJSON(t, map[string]any{"envelope_id": long}))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 500-byte id is %d bytes long: %v", len(err.Error()), err)
	}
}

func TestEnvelopeMarshalJSON(t *testing.T) {
	ts := time.Date(2025, 3, 4, 7, 6, 7, 500, time.FixedZone("CEST", 2*3600))
	env := &bus.Envelope{EnvelopeID: uuid.MustParse(testID), EnvelopeTimestamp: ts, Payload: json.RawMessage(`{"a":1}`)}
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"envelope_id":        `"` + testID + `"`,
		"envelope_timestamp": `"2025-03-04T05:06:07.0000005Z"`,
		"priority":           `5`,
		"retry_count":        `0`,
		"onex_version":       `{"major":1,"minor":0,"patch":0}`,
		"envelope_version":   `{"major":2,"minor":0,"patch":0}`,
		"payload":            `{"a":1}`,
	}
	for k, v := range want {
		if string(m[k]) != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
	for _, k := range []string{"correlation_id", "event_type", "source_tool", "target_tool", "metadata", "trace_id", "span_id", "request_id"} {
		if _, ok := m[k]; ok {
			t.Errorf("empty %s was written: %s", k, m[k])
		}
	}
	if len(m) != len(want) {
		t.Errorf("wrote %d fields, want %d: %s", len(m), len(want), b)
	}
}

func TestEncodeEnvelope(t *testing.T) {
	env := &bus.Envelope{
		EnvelopeID:        uuid.MustParse(testID),
		EnvelopeTimestamp: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		CorrelationID:     uuid.MustParse(testCorr),
		EventType:         "node.heartbeat",
		EnvelopeVersion:   bus.Version{Major: 2, Minor: 1},
		Payload:           json.RawMessage(`{}`),
	}
	value, h, err := bus.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	want := bus.Headers{
		bus.HeaderContentType:   bus.ContentTypeJSON,
		bus.HeaderMessageID:     testID,
		bus.HeaderTimestamp:     "2025-03-04T05:06:07Z",
		bus.HeaderSchemaVersion: bus.HeadersSchemaVersion, // not the envelope version
		bus.HeaderCorrelationID: testCorr,
		bus.HeaderEventType:     "node.heartbeat",
	}
	if len(h) != len(want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	back, err := bus.DecodeEnvelope(value)
	if err != nil {
		t.Fatal(err)
	}
	checkEnvelope(t, back, &bus.Envelope{
		EnvelopeID: env.EnvelopeID, EnvelopeTimestamp: env.EnvelopeTimestamp, CorrelationID: env.CorrelationID,
		EventType: env.EventType, Priority: bus.DefaultPriority, OnexVersion: bus.DefaultVersion, EnvelopeVersion: env.EnvelopeVersion,
	})

	// Without a correlation id or event type those headers are left out,
	// and a zero envelope version is written as the default.
	_, h, err = bus.EncodeEnvelope(&bus.Envelope{EnvelopeID: env.EnvelopeID, EnvelopeTimestamp: env.EnvelopeTimestamp, Payload: json.RawMessage(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h[bus.HeaderCorrelationID]; ok {
		t.Errorf("correlation_id header without a correlation id")
	}
	if _, ok := h[bus.HeaderEventType]; ok {
		t.Errorf("event_type header without an event type")
	}
	if h[bus.HeaderSchemaVersion] != "1.0.0" {
		t.Errorf("schema_version %q, want 1.0.0", h[bus.HeaderSchemaVersion])
	}
}

func TestEncodeEnvelopeErrors(t *testing.T) {
	ts := time.Now()
	for name, env := range map[string]*bus.Envelope{
		"nil":          nil,
		"no id":        {EnvelopeTimestamp: ts, Payload: json.RawMessage(`1`)},
		"no timestamp": {EnvelopeID: uuid.New(), Payload: json.RawMessage(`1`)},
	} {
		if _, _, err := bus.EncodeEnvelope(env); err == nil {
			t.Errorf("%s: EncodeEnvelope returned nil", name)
		}
	}
	if _, _, err := bus.EncodeEnvelope(&bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: ts, Payload: json.RawMessage(`{bad`)}); err == nil {
		t.Errorf("EncodeEnvelope with an invalid payload returned nil")
	}
}

// TestEnvelopeRoundTrip encodes and decodes envelopes whose timestamps have
// microsecond precision, the precision decoding keeps.
func TestEnvelopeRoundTrip(t *testing.T) {
	envs := []*bus.Envelope{
		{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Date(2025, 1, 1, 0, 0, 0, 1000, time.UTC), Payload: json.RawMessage(`{"x":[1,2,{"y":null}]}`)},
		{
			EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Date(2099, 12, 31, 23, 59, 59, 999999000, time.UTC),
			CorrelationID: uuid.New(), EventType: "a.b", SourceTool: "s", TargetTool: "t",
			Metadata: json.RawMessage(`{"k":"v"}`), Priority: 1, RetryCount: 9, TraceID: "tr", SpanID: "sp", RequestID: "rq",
			OnexVersion: bus.Version{Major: 4, Minor: 5, Patch: 6}, EnvelopeVersion: bus.Version{Major: 1, Minor: 1},
			Payload: json.RawMessage(`"just a string ünïcødé"`),
		},
		{
			EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC),
			OnexVersion:     bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1", Build: "build.5"},
			EnvelopeVersion: bus.Version{Major: 2, Build: "sha.0a1b"},
			Payload:         json.RawMessage(`{}`),
		},
	}
	for _, env := range envs {
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		var back bus.Envelope
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := *env
		if want.Priority == 0 {
			want.Priority = bus.DefaultPriority
		}
		if want.OnexVersion.IsZero() {
			want.OnexVersion = bus.DefaultVersion
		}
		if want.EnvelopeVersion.IsZero() {
			want.EnvelopeVersion = bus.DefaultEnvelopeVersion
		}
		checkEnvelope(t, &back, &want)
		if !jsonEqual(back.Payload, env.Payload) || (env.Metadata != nil && !jsonEqual(back.Metadata, env.Metadata)) {
			t.Errorf("payload %s metadata %s, want %s %s", back.Payload, back.Metadata, env.Payload, env.Metadata)
		}
	}
	var e bus.Envelope
	if err := json.Unmarshal([]byte(`{"envelope_id":"x"}`), &e); err == nil {
		t.Errorf("UnmarshalJSON accepted an invalid envelope")
	}
}

func TestEnvelopeMessage(t *testing.T) {
	env := &bus.Envelope{EnvelopeID: uuid.MustParse(testID), EnvelopeTimestamp: time.Now(), Payload: json.RawMessage(`1`)}
	m, err := bus.EnvelopeMessage("topic", env, bus.WithKey([]byte("k")),
		bus.WithHeaders(bus.Headers{"extra": "1"}), bus.WithHeaders(bus.Headers{bus.HeaderContentType: "application/x-custom"}))
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "topic" || string(m.Key) != "k" || m.Headers["extra"] != "1" ||
		m.Headers[bus.HeaderContentType] != "application/x-custom" || m.Headers[bus.HeaderMessageID] != testID {
		t.Errorf("message %+v", m)
	}
	if m, _ := bus.EnvelopeMessage("topic", env); m.Key != nil {
		t.Errorf("without WithKey the key is %q, want nil", m.Key)
	}
	if _, err := bus.EnvelopeMessage("", env); err == nil {
		t.Errorf("EnvelopeMessage with an empty topic returned nil")
	}
}
