package bus

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/internal/jsonobj"
)

// Envelope is the ONEX event envelope. Its JSON form is the one the Python
// ONEX services read and write: snake_case names, RFC 3339 timestamps.
type Envelope struct {
	// EnvelopeID identifies this envelope; consumers deduplicate by it.
	EnvelopeID uuid.UUID
	// EnvelopeTimestamp is when the envelope was created. [DecodeEnvelope]
	// returns it in UTC, truncated to microseconds, between [MinTime] and
	// [MaxTime].
	EnvelopeTimestamp time.Time
	// CorrelationID ties together every message of one workflow run; zero
	// when the sender set none.
	CorrelationID uuid.UUID
	// EventType names the payload's type.
	EventType string
	// SourceTool and TargetTool name the sending and the intended receiving
	// service; both are optional.
	SourceTool, TargetTool string
	// Metadata is an optional JSON object, carried through untouched.
	Metadata json.RawMessage
	// Priority is 1 (lowest) to 10; [DefaultPriority] when absent.
	Priority int
	// RetryCount counts how often the sender retried this envelope.
	RetryCount int
	// TraceID, SpanID and RequestID are optional tracing identifiers, carried
	// through as the sender wrote them.
	TraceID, SpanID, RequestID string
	// OnexVersion and EnvelopeVersion are semantic versions; a zero value
	// is written as [DefaultVersion] and [DefaultEnvelopeVersion].
	OnexVersion, EnvelopeVersion Version
	// Payload is the event itself, a JSON value.
	Payload json.RawMessage
}

// DefaultPriority is the priority of an envelope that names none.
const DefaultPriority = 5

// DefaultVersion is the onex_version written for a zero OnexVersion and read
// for a missing one: 1.0.0, the ONEX models' default.
var DefaultVersion = Version{Major: 1}

// DefaultEnvelopeVersion is the envelope_version written for a zero
// EnvelopeVersion and read for a missing one: 2.0.0, the ONEX envelope
// model's default.
var DefaultEnvelopeVersion = Version{Major: 2}

// DecodeError says which field of an envelope (or of a payload) is wrong.
type DecodeError struct {
	// Field is the JSON name of the offending field; empty when the input is
	// not a JSON object at all.
	Field string
	// Reason says what is wrong.
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "invalid envelope: " + e.Reason
	}
	return "invalid envelope: field " + e.Field + ": " + e.Reason
}

// envelopeFields are the members DecodeEnvelope reads, in the order of its
// variables.
var envelopeFields = []jsonobj.Field{
	{Name: "envelope_id", Kind: jsonobj.String}, {Name: "envelope_timestamp", Kind: jsonobj.String},
	{Name: "correlation_id", Kind: jsonobj.String}, {Name: "event_type", Kind: jsonobj.String},
	{Name: "source_tool", Kind: jsonobj.String}, {Name: "target_tool", Kind: jsonobj.String},
	{Name: "metadata"}, {Name: "priority", Kind: jsonobj.Number}, {Name: "retry_count", Kind: jsonobj.Number},
	{Name: "trace_id", Kind: jsonobj.String}, {Name: "span_id", Kind: jsonobj.String},
	{Name: "request_id", Kind: jsonobj.String}, {Name: "onex_version"}, {Name: "envelope_version"},
	{Name: "payload"},
}

// DecodeEnvelope parses and validates an envelope. Unknown fields are
// ignored. A malformed or invalid envelope is reported as a [*DecodeError]
// naming the field: envelope_id must be a UUID, envelope_timestamp present and
// an RFC 3339 time with a zone between [MinTime] and [MaxTime] (see
// [ParseTimeField]), priority 1 to 10, retry_count not negative, payload
// present and not null.
//
// It reads the JSON without reflection ([jsonobj]), with encoding/json's
// semantics: field names match case-insensitively under Unicode simple
// folding (so "ſource_tool", with U+017F, is source_tool), a later
// duplicate wins, null is the same as absent.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	var v [15][]byte // one per envelopeFields entry
	if err := jsonobj.Read(data, envelopeFields, v[:]); err != nil {
		var ke *jsonobj.KindError
		if errors.As(err, &ke) {
			return nil, &DecodeError{Field: ke.Name, Reason: "want " + ke.Want.String() + ", got JSON " + ke.Got.String()}
		}
		if errors.Is(err, jsonobj.ErrNotObject) {
			return nil, &DecodeError{Reason: "not a JSON object"}
		}
		return nil, jsonDecodeError(err)
	}
	w := struct {
		id, ts, corr, eventType, source, target, metadata, priority, retries []byte
		traceID, spanID, requestID, onex, envVersion, payload                []byte
	}{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]}
	var e Envelope
	var err error
	// The optional strings share one allocation.
	strs := [...]struct {
		raw []byte
		dst *string
	}{
		{w.eventType, &e.EventType}, {w.source, &e.SourceTool}, {w.target, &e.TargetTool},
		{w.traceID, &e.TraceID}, {w.spanID, &e.SpanID}, {w.requestID, &e.RequestID},
	}
	var sb [128]byte
	buf := sb[:0]
	var ends [len(strs)]int
	for k, f := range strs {
		if f.raw != nil {
			buf = jsonobj.AppendStr(buf, f.raw)
		}
		ends[k] = len(buf)
	}
	if len(buf) > 0 {
		all, start := string(buf), 0
		for k, f := range strs {
			*f.dst, start = all[start:ends[k]], ends[k]
		}
	}
	if w.id == nil {
		return nil, &DecodeError{Field: "envelope_id", Reason: "missing"}
	}
	if e.EnvelopeID, err = parseUUIDBytes("envelope_id", jsonobj.Bytes(w.id)); err != nil {
		return nil, err
	}
	if w.ts == nil {
		return nil, &DecodeError{Field: "envelope_timestamp", Reason: "missing"}
	}
	if e.EnvelopeTimestamp, err = ParseTimeBytes("envelope_timestamp", jsonobj.Bytes(w.ts)); err != nil {
		return nil, err
	}
	if w.corr != nil {
		if b := jsonobj.Bytes(w.corr); len(b) > 0 {
			if e.CorrelationID, err = parseUUIDBytes("correlation_id", b); err != nil {
				return nil, err
			}
		}
	}
	if w.metadata != nil {
		if jsonobj.KindOf(w.metadata) != jsonobj.Object {
			return nil, &DecodeError{Field: "metadata", Reason: "not a JSON object"}
		}
		e.Metadata = bytes.Clone(w.metadata)
	}
	e.Priority = DefaultPriority
	if w.priority != nil {
		p, err := jsonobj.Int(w.priority)
		if err != nil {
			return nil, &DecodeError{Field: "priority", Reason: "want int, got JSON number " + string(w.priority)}
		}
		if p < 1 || p > 10 {
			return nil, &DecodeError{Field: "priority", Reason: fmt.Sprintf("%d is outside 1..10", p)}
		}
		e.Priority = p
	}
	if w.retries != nil {
		n, err := jsonobj.Int(w.retries)
		if err != nil {
			return nil, &DecodeError{Field: "retry_count", Reason: "want int, got JSON number " + string(w.retries)}
		}
		if n < 0 {
			return nil, &DecodeError{Field: "retry_count", Reason: "negative"}
		}
		e.RetryCount = n
	}
	if e.OnexVersion, err = decodeVersion("onex_version", w.onex, DefaultVersion); err != nil {
		return nil, err
	}
	if e.EnvelopeVersion, err = decodeVersion("envelope_version", w.envVersion, DefaultEnvelopeVersion); err != nil {
		return nil, err
	}
	if w.payload == nil {
		return nil, &DecodeError{Field: "payload", Reason: "missing"}
	}
	e.Payload = bytes.Clone(w.payload)
	return &e, nil
}

// parseUUIDBytes is ParseUUIDField without converting b to a string on
// the good path.
func parseUUIDBytes(field string, b []byte) (uuid.UUID, error) {
	id, err := uuid.ParseBytes(b)
	if err != nil || id == uuid.Nil {
		return ParseUUIDField(field, string(b))
	}
	return id, nil
}

func decodeVersion(field string, raw []byte, def Version) (Version, error) {
	if raw == nil {
		return def, nil
	}
	var v Version
	if err := v.UnmarshalJSON(raw); err != nil {
		return Version{}, &DecodeError{Field: field, Reason: err.Error()}
	}
	return v, nil
}

// jsonDecodeError turns a syntax error into a DecodeError.
func jsonDecodeError(err error) error {
	var se *jsonobj.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Reason: fmt.Sprintf("not valid JSON (offset %d): %v", se.Offset, se)}
	}
	return &DecodeError{Reason: err.Error()}
}

// ParseUUIDField parses a UUID in any of the forms uuid.Parse accepts and
// reports a failure as a [*DecodeError] naming field. The nil UUID is an error.
func ParseUUIDField(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, &DecodeError{Field: field, Reason: fmt.Sprintf("%q is not a UUID", truncate(s))}
	}
	if id == uuid.Nil {
		return uuid.Nil, &DecodeError{Field: field, Reason: "is the nil UUID"}
	}
	return id, nil
}

func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// wireOut is the JSON written for an envelope.
type wireOut struct {
	EnvelopeID        uuid.UUID       `json:"envelope_id"`
	EnvelopeTimestamp string          `json:"envelope_timestamp"`
	CorrelationID     *uuid.UUID      `json:"correlation_id,omitempty"`
	EventType         string          `json:"event_type,omitempty"`
	SourceTool        string          `json:"source_tool,omitempty"`
	TargetTool        string          `json:"target_tool,omitempty"`
	Metadata          json.RawMessage `json:"metadata,omitempty"`
	Priority          int             `json:"priority"`
	RetryCount        int             `json:"retry_count"`
	TraceID           string          `json:"trace_id,omitempty"`
	SpanID            string          `json:"span_id,omitempty"`
	RequestID         string          `json:"request_id,omitempty"`
	OnexVersion       Version         `json:"onex_version"`
	EnvelopeVersion   Version         `json:"envelope_version"`
	Payload           json.RawMessage `json:"payload"`
}

// MarshalJSON writes the ONEX wire form. Zero versions are written as
// [DefaultVersion] and [DefaultEnvelopeVersion], a zero priority as [DefaultPriority]; a zero correlation
// id and empty optional strings are left out.
//
// The output is encoding/json's for the wire struct, byte for byte: the
// common envelope (strings of printable ASCII without <, > and &, raw
// payload and metadata without them) is appended by hand, any other by
// encoding/json.
func (e *Envelope) MarshalJSON() ([]byte, error) {
	if b, ok := e.appendJSON(make([]byte, 0, 448+len(e.Payload)+len(e.Metadata))); ok {
		return b, nil
	}
	return e.marshalReflect()
}

// appendJSON appends the wire form to b; ok is false for an envelope it
// leaves to encoding/json.
func (e *Envelope) appendJSON(b []byte) (_ []byte, ok bool) {
	payload := e.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	for _, s := range [...]string{e.EventType, e.SourceTool, e.TargetTool, e.TraceID, e.SpanID, e.RequestID} {
		if !plainJSONString(s) {
			return b, false
		}
	}
	if !plainRaw(payload) || (len(e.Metadata) > 0 && !plainRaw(e.Metadata)) {
		return b, false
	}
	onex, envVersion := e.OnexVersion, e.EnvelopeVersion
	if onex.IsZero() {
		onex = DefaultVersion
	}
	if envVersion.IsZero() {
		envVersion = DefaultEnvelopeVersion
	}
	if onex.Prerelease != "" || onex.Build != "" || envVersion.Prerelease != "" || envVersion.Build != "" {
		return b, false
	}
	b = append(b, `{"envelope_id":"`...)
	b = appendUUID(b, e.EnvelopeID)
	b = append(b, `","envelope_timestamp":"`...)
	b = e.EnvelopeTimestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.CorrelationID != uuid.Nil {
		b = append(b, `,"correlation_id":"`...)
		b = appendUUID(b, e.CorrelationID)
		b = append(b, '"')
	}
	b = appendOptString(b, `,"event_type":"`, e.EventType)
	b = appendOptString(b, `,"source_tool":"`, e.SourceTool)
	b = appendOptString(b, `,"target_tool":"`, e.TargetTool)
	if len(e.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		if b, ok = appendCompact(b, e.Metadata); !ok {
			return b, false
		}
	}
	priority := e.Priority
	if priority == 0 {
		priority = DefaultPriority
	}
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(priority), 10)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(e.RetryCount), 10)
	b = appendOptString(b, `,"trace_id":"`, e.TraceID)
	b = appendOptString(b, `,"span_id":"`, e.SpanID)
	b = appendOptString(b, `,"request_id":"`, e.RequestID)
	b = append(b, `,"onex_version":`...)
	b = appendPlainVersion(b, onex)
	b = append(b, `,"envelope_version":`...)
	b = appendPlainVersion(b, envVersion)
	b = append(b, `,"payload":`...)
	if b, ok = appendCompact(b, payload); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// marshalReflect is MarshalJSON by encoding/json, for any envelope.
func (e *Envelope) marshalReflect() ([]byte, error) {
	w := wireOut{
		EnvelopeID:        e.EnvelopeID,
		EnvelopeTimestamp: e.EnvelopeTimestamp.UTC().Format(time.RFC3339Nano),
		EventType:         e.EventType,
		SourceTool:        e.SourceTool,
		TargetTool:        e.TargetTool,
		Metadata:          e.Metadata,
		Priority:          e.Priority,
		RetryCount:        e.RetryCount,
		TraceID:           e.TraceID,
		SpanID:            e.SpanID,
		RequestID:         e.RequestID,
		OnexVersion:       e.OnexVersion,
		EnvelopeVersion:   e.EnvelopeVersion,
		Payload:           e.Payload,
	}
	if e.CorrelationID != uuid.Nil {
		w.CorrelationID = &e.CorrelationID
	}
	if w.Priority == 0 {
		w.Priority = DefaultPriority
	}
	if w.OnexVersion.IsZero() {
		w.OnexVersion = DefaultVersion
	}
	if w.EnvelopeVersion.IsZero() {
		w.EnvelopeVersion = DefaultEnvelopeVersion
	}
	if len(w.Payload) == 0 {
		w.Payload = json.RawMessage("null")
	}
	return json.Marshal(w)
}

// plainJSONString reports whether encoding/json writes s as its bytes
// between quotes: printable ASCII other than '"', '\\', '<', '>' and '&'.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainRaw reports whether raw JSON holds none of the bytes encoding/json
// escapes when it writes a json.RawMessage: '<', '>', '&' and the lead
// byte of U+2028 and U+2029 (0xE2, conservatively).
func plainRaw(raw []byte) bool {
	for _, c := range raw {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return false
		}
	}
	return true
}

// appendCompact appends raw compacted, as encoding/json writes a
// json.RawMessage without HTML escapes (plainRaw); ok is false for invalid
// JSON.
func appendCompact(b, raw []byte) ([]byte, bool) {
	if !bytes.ContainsAny(raw, " \t\n\r") {
		// No space at all, so none to drop: valid is compact.
		return append(b, raw...), jsonobj.Valid(raw)
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return b, false
	}
	return buf.Bytes(), true
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	b = append(b, s...)
	return append(b, '"')
}

func appendUUID(b []byte, id uuid.UUID) []byte {
	var buf [36]byte
	hex.Encode(buf[:8], id[:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], id[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], id[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], id[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], id[10:])
	return append(b, buf[:]...)
}

// appendPlainVersion appends a version without prerelease and build as
// Version.MarshalJSON writes it.
func appendPlainVersion(b []byte, v Version) []byte {
	b = append(b, `{"major":`...)
	b = strconv.AppendInt(b, int64(v.Major), 10)
	b = append(b, `,"minor":`...)
	b = strconv.AppendInt(b, int64(v.Minor), 10)
	b = append(b, `,"patch":`...)
	b = strconv.AppendInt(b, int64(v.Patch), 10)
	return append(b, '}')
}

// UnmarshalJSON decodes with [DecodeEnvelope].
func (e *Envelope) UnmarshalJSON(data []byte) error {
	d, err := DecodeEnvelope(data)
	if err != nil {
		return err
	}
	*e = *d
	return nil
}

// HeadersSchemaVersion is the schema_version header registrar writes: the
// version of the ONEX header schema, "1.0.0", as the Python services write it.
const HeadersSchemaVersion = "1.0.0"

// EncodeEnvelope returns the message value and headers for env: the JSON
// form, and the headers content_type, correlation_id, message_id, timestamp,
// event_type and schema_version that the ONEX services write.
func EncodeEnvelope(env *Envelope) ([]byte, Headers, error) {
	if env == nil {
		return nil, nil, errors.New("registrar/bus: nil envelope")
	}
	if env.EnvelopeID == uuid.Nil {
		return nil, nil, errors.New("registrar/bus: envelope has no envelope_id")
	}
	if env.EnvelopeTimestamp.IsZero() {
		return nil, nil, errors.New("registrar/bus: envelope has no envelope_timestamp")
	}
	value, err := env.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("registrar/bus: encode envelope %s: %w", env.EnvelopeID, err)
	}
	h := Headers{
		HeaderContentType:   ContentTypeJSON,
		HeaderMessageID:     env.EnvelopeID.String(),
		HeaderTimestamp:     env.EnvelopeTimestamp.UTC().Format(time.RFC3339Nano),
		HeaderSchemaVersion: HeadersSchemaVersion,
	}
	if env.CorrelationID != uuid.Nil {
		h[HeaderCorrelationID] = env.CorrelationID.String()
	}
	if env.EventType != "" {
		h[HeaderEventType] = env.EventType
	}
	return value, h, nil
}

// EnvelopeMessage returns the message that PublishEnvelope publishes for env:
// [EncodeEnvelope]'s value and headers, with the options' key and headers
// applied. Bus implementations build PublishEnvelope from it and Publish.
func EnvelopeMessage(topic string, env *Envelope, opts ...PublishOption) (*Message, error) {
	if topic == "" {
		return nil, errors.New("registrar/bus: publish envelope: empty topic")
	}
	value, h, err := EncodeEnvelope(env)
	if err != nil {
		return nil, err
	}
	cfg := NewPublishConfig(opts...)
	for k, v := range cfg.Headers {
		h[k] = v
	}
	return &Message{Topic: topic, Key: cfg.Key, Value: value, Headers: h}, nil
}
