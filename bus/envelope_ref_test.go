package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// refWireEnvelope is the JSON shape; typed fields are parsed by hand so that an
// error can name its field.
type refWireEnvelope struct {
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

// refDecodeEnvelope is DecodeEnvelope as it was, on encoding/json: the
// reference the differential fuzz test compares the reflection-free decoder
// with. Unknown fields are
// ignored. A malformed or invalid envelope is reported as a [*DecodeError]
// naming the field: envelope_id must be a UUID, envelope_timestamp an RFC 3339
// time with a zone, priority 1 to 10, retry_count not negative, payload
// present and not null.
func refDecodeEnvelope(data []byte) (*Envelope, error) {
	var w refWireEnvelope
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, refJSONDecodeError(err)
	}
	var e Envelope
	var err error
	if w.EnvelopeID == nil {
		return nil, &DecodeError{Field: "envelope_id", Reason: "missing"}
	}
	if e.EnvelopeID, err = ParseUUIDField("envelope_id", *w.EnvelopeID); err != nil {
		return nil, err
	}
	if w.EnvelopeTimestamp == nil {
		return nil, &DecodeError{Field: "envelope_timestamp", Reason: "missing"}
	}
	if e.EnvelopeTimestamp, err = ParseTimeField("envelope_timestamp", *w.EnvelopeTimestamp); err != nil {
		return nil, err
	}
	if w.CorrelationID != nil && *w.CorrelationID != "" {
		if e.CorrelationID, err = ParseUUIDField("correlation_id", *w.CorrelationID); err != nil {
			return nil, err
		}
	}
	e.EventType = refDeref(w.EventType)
	e.SourceTool = refDeref(w.SourceTool)
	e.TargetTool = refDeref(w.TargetTool)
	e.TraceID = refDeref(w.TraceID)
	e.SpanID = refDeref(w.SpanID)
	e.RequestID = refDeref(w.RequestID)
	if len(w.Metadata) > 0 && !bytes.Equal(w.Metadata, []byte("null")) {
		if w.Metadata[0] != '{' {
			return nil, &DecodeError{Field: "metadata", Reason: "not a JSON object"}
		}
		e.Metadata = w.Metadata
	}
	e.Priority = DefaultPriority
	if w.Priority != nil {
		if *w.Priority < 1 || *w.Priority > 10 {
			return nil, &DecodeError{Field: "priority", Reason: fmt.Sprintf("%d is outside 1..10", *w.Priority)}
		}
		e.Priority = *w.Priority
	}
	if w.RetryCount != nil {
		if *w.RetryCount < 0 {
			return nil, &DecodeError{Field: "retry_count", Reason: "negative"}
		}
		e.RetryCount = *w.RetryCount
	}
	if e.OnexVersion, err = refDecodeVersion("onex_version", w.OnexVersion, DefaultVersion); err != nil {
		return nil, err
	}
	if e.EnvelopeVersion, err = refDecodeVersion("envelope_version", w.EnvelopeVersion, DefaultEnvelopeVersion); err != nil {
		return nil, err
	}
	if len(w.Payload) == 0 || bytes.Equal(w.Payload, []byte("null")) {
		return nil, &DecodeError{Field: "payload", Reason: "missing"}
	}
	e.Payload = w.Payload
	return &e, nil
}

func refDecodeVersion(field string, raw json.RawMessage, def Version) (Version, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return def, nil
	}
	var v Version
	if err := v.UnmarshalJSON(raw); err != nil {
		return Version{}, &DecodeError{Field: field, Reason: err.Error()}
	}
	return v, nil
}

func refDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// jsonDecodeError turns an encoding/json error into a DecodeError that names
// the field where the JSON names one.
func refJSONDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &DecodeError{Field: te.Field, Reason: "want " + te.Type.String() + ", got JSON " + te.Value}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Reason: fmt.Sprintf("not valid JSON (offset %d): %v", se.Offset, se)}
	}
	return &DecodeError{Reason: err.Error()}
}
