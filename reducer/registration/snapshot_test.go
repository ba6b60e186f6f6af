package registration_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

var snapNode = uuid.MustParse("7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10")

func fullSnapshot() *registration.Snapshot {
	return &registration.Snapshot{
		EntityID: snapNode, Domain: registration.DefaultDomain, State: registration.StateActive,
		NodeType: "effect", NodeName: "postgres-adapter",
		Capabilities:      json.RawMessage(`{"postgres":true,"pool":{"max":10}}`),
		LastStateChangeAt: time.Date(2026, 3, 1, 12, 0, 40, 123456789, time.UTC),
		Version:           1772366440123456,
		CreatedAt:         time.Date(2026, 3, 1, 12, 0, 41, 1, time.UTC),
		NodeVersion:       "1.2.3-rc.1+build.5",
		Endpoints:         map[string]string{"http": "http://10.0.0.1:8080"},
		Generation:        3,
		RegisteredAt:      time.Date(2026, 3, 1, 12, 0, 39, 999999999, time.UTC),
	}
}

// snapshotMessage encodes s as the runtime publishes it: an envelope with
// the payload and the metadata, keyed by the entity.
func snapshotMessage(t *testing.T, s *registration.Snapshot) *bus.Message {
	t.Helper()
	payload, err := s.Payload()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := s.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: s.CreatedAt, EventType: registration.EventSnapshot,
		Metadata: meta, Payload: payload}
	m, err := bus.EnvelopeMessage(registration.TopicSnapshot, env, bus.WithKey([]byte(s.EntityID.String())))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSnapshotRoundTrip(t *testing.T) {
	minimal := &registration.Snapshot{EntityID: snapNode, Domain: "other", State: registration.StateLivenessExpired,
		LastStateChangeAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Version: 1,
		CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for name, s := range map[string]*registration.Snapshot{"full": fullSnapshot(), "minimal": minimal} {
		t.Run(name, func(t *testing.T) {
			got, tomb, err := registration.DecodeSnapshot(snapshotMessage(t, s))
			if err != nil || tomb {
				t.Fatalf("DecodeSnapshot: %v, tombstone %v", err, tomb)
			}
			if !got.Equal(s) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, s)
			}
			// Exact, not only Equal: every nanosecond, the same bytes.
			if got.LastStateChangeAt != s.LastStateChangeAt || got.CreatedAt != s.CreatedAt || got.RegisteredAt != s.RegisteredAt {
				t.Fatalf("times not exact: %v %v %v", got.LastStateChangeAt, got.CreatedAt, got.RegisteredAt)
			}
			if string(got.Capabilities) != string(s.Capabilities) {
				t.Fatalf("capabilities %s, want %s", got.Capabilities, s.Capabilities)
			}
		})
	}
}

// TestSnapshotPayloadFields checks that the payload has exactly the fields
// of ONEX's ModelRegistrationSnapshot (extra="forbid") and null for the
// empty optional ones, and that registrar's fields are in the metadata.
func TestSnapshotPayloadFields(t *testing.T) {
	s := fullSnapshot()
	s.NodeType, s.NodeName, s.Capabilities = "", "", nil
	raw, err := s.Payload()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"entity_id", "domain", "current_state", "node_type", "node_name", "capabilities",
		"last_state_change_at", "snapshot_version", "snapshot_created_at", "source_projection_sequence"}
	if len(m) != len(want) {
		t.Fatalf("payload has %d fields, want %d: %s", len(m), len(want), raw)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Fatalf("payload lacks %s: %s", k, raw)
		}
	}
	for _, k := range []string{"node_type", "node_name", "capabilities", "source_projection_sequence"} {
		if string(m[k]) != "null" {
			t.Errorf("%s = %s, want null", k, m[k])
		}
	}
	if string(m["current_state"]) != `"active"` || string(m["snapshot_version"]) != "1772366440123456" {
		t.Errorf("current_state %s, snapshot_version %s", m["current_state"], m["snapshot_version"])
	}
	if string(m["last_state_change_at"]) != `"2026-03-01T12:00:40.123456789Z"` {
		t.Errorf("last_state_change_at %s", m["last_state_change_at"])
	}
	meta, err := s.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	const wantMeta = `{"registrar":{"node_version":"1.2.3-rc.1+build.5","endpoints":{"http":"http://10.0.0.1:8080"},"generation":3,"registered_at":"2026-03-01T12:00:39.999999999Z"}}`
	if string(meta) != wantMeta {
		t.Errorf("metadata\n%s\nwant\n%s", meta, wantMeta)
	}
	empty, err := (&registration.Snapshot{}).Metadata()
	if err != nil || string(empty) != `{"registrar":{"generation":0}}` {
		t.Errorf("metadata of zero fields %s, %v", empty, err)
	}
}

func TestSnapshotPayloadInvalid(t *testing.T) {
	for name, edit := range map[string]func(*registration.Snapshot){
		"nil entity":        func(s *registration.Snapshot) { s.EntityID = uuid.Nil },
		"empty domain":      func(s *registration.Snapshot) { s.Domain = "" },
		"long domain":       func(s *registration.Snapshot) { s.Domain = strings.Repeat("d", 129) },
		"unknown state":     func(s *registration.Snapshot) { s.State = "gone" },
		"no state":          func(s *registration.Snapshot) { s.State = registration.StateNone },
		"long name":         func(s *registration.Snapshot) { s.NodeName = strings.Repeat("n", 257) },
		"version 0":         func(s *registration.Snapshot) { s.Version = 0 },
		"zero change time":  func(s *registration.Snapshot) { s.LastStateChangeAt = time.Time{} },
		"zero created time": func(s *registration.Snapshot) { s.CreatedAt = time.Time{} },
		"array caps":        func(s *registration.Snapshot) { s.Capabilities = json.RawMessage(`[1]`) },
		"broken caps":       func(s *registration.Snapshot) { s.Capabilities = json.RawMessage(`{"a":`) },
	} {
		s := fullSnapshot()
		edit(s)
		if b, err := s.Payload(); err == nil {
			t.Errorf("%s: Payload = %s, want an error", name, b)
		}
	}
}

func TestSnapshotOf(t *testing.T) {
	reg := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	p := &registration.Projection{
		EntityID: snapNode, Domain: "registration", State: registration.StateAwaitingAck, NodeType: "effect",
		NodeVersion: "1.0.0", Endpoints: map[string]string{"a": "b"}, RegisteredAt: reg,
		UpdatedAt: reg.Add(time.Minute), LastHeartbeatAt: reg.Add(time.Minute), LivenessDeadline: reg.Add(time.Hour),
		AckTimeoutEmittedAt: reg.Add(2 * time.Minute), LivenessTimeoutEmittedAt: reg.Add(3 * time.Minute), Generation: 2,
	}
	created := reg.Add(5 * time.Minute)
	for _, c := range []struct {
		state registration.State
		want  time.Time
	}{
		{registration.StateAwaitingAck, reg}, {registration.StateActive, reg},
		{registration.StateAckTimedOut, reg.Add(2 * time.Minute)}, {registration.StateLivenessExpired, reg.Add(3 * time.Minute)},
	} {
		p.State = c.state
		s := registration.SnapshotOf(p, 42, created)
		if want := c.want.Truncate(time.Microsecond); s.LastStateChangeAt != want {
			t.Errorf("%s: last_state_change_at %v, want %v", c.state, s.LastStateChangeAt, want)
		}
		if s.State != c.state || s.Version != 42 || s.CreatedAt != created.Truncate(time.Microsecond) ||
			s.Generation != 2 || s.NodeVersion != "1.0.0" || s.Endpoints["a"] != "b" || string(s.Capabilities) != "{}" ||
			s.RegisteredAt != reg.Truncate(time.Microsecond) || s.NodeName != "" {
			t.Errorf("%s: %+v", c.state, s)
		}
	}
	// A heartbeat moves updated_at, last_heartbeat_at and the liveness
	// deadline: the snapshot is the same.
	p.State = registration.StateActive
	before := registration.SnapshotOf(p, 42, created)
	p.UpdatedAt, p.LastHeartbeatAt, p.LivenessDeadline = p.UpdatedAt.Add(time.Hour), p.UpdatedAt.Add(time.Hour), p.LivenessDeadline.Add(time.Hour)
	if after := registration.SnapshotOf(p, 42, created); !after.Equal(before) {
		t.Errorf("a heartbeat changed the snapshot:\n%+v\n%+v", after, before)
	}
	// The snapshot shares no memory with the projection.
	before.Endpoints["a"] = "changed"
	if p.Endpoints["a"] != "b" {
		t.Error("SnapshotOf shares the endpoints map")
	}
	if registration.SnapshotOf(nil, 1, created) != nil {
		t.Error("SnapshotOf(nil) is not nil")
	}
}

func TestSnapshotEqual(t *testing.T) {
	a, b := fullSnapshot(), fullSnapshot()
	b.Capabilities = json.RawMessage(`{ "pool" : {"max":10}, "postgres":true }`)
	b.Endpoints = map[string]string{"http": "http://10.0.0.1:8080"}
	if !a.Equal(b) {
		t.Fatal("capabilities in another order are not Equal")
	}
	for name, edit := range map[string]func(*registration.Snapshot){
		"caps": func(s *registration.Snapshot) {
			s.Capabilities = json.RawMessage(`{"postgres":false,"pool":{"max":10}}`)
		},
		"caps nil": func(s *registration.Snapshot) { s.Capabilities = nil },
		"caps num": func(s *registration.Snapshot) {
			s.Capabilities = json.RawMessage(`{"postgres":true,"pool":{"max":10.5}}`)
		},
		"version":    func(s *registration.Snapshot) { s.Version++ },
		"state":      func(s *registration.Snapshot) { s.State = registration.StateAwaitingAck },
		"created":    func(s *registration.Snapshot) { s.CreatedAt = s.CreatedAt.Add(1) },
		"endpoints":  func(s *registration.Snapshot) { s.Endpoints = nil },
		"generation": func(s *registration.Snapshot) { s.Generation++ },
		"name":       func(s *registration.Snapshot) { s.NodeName = "x" },
	} {
		c := fullSnapshot()
		edit(c)
		if a.Equal(c) {
			t.Errorf("%s: Equal despite the change", name)
		}
	}
	if !(*registration.Snapshot)(nil).Equal(nil) || a.Equal(nil) {
		t.Error("Equal with nil")
	}
}

func TestDecodeSnapshotTombstone(t *testing.T) {
	for _, key := range []string{snapNode.String(), "registration:" + snapNode.String()} {
		s, tomb, err := registration.DecodeSnapshot(&bus.Message{Topic: registration.TopicSnapshot, Key: []byte(key)})
		if s != nil || !tomb || err != nil {
			t.Errorf("key %q: %v, %v, %v", key, s, tomb, err)
		}
	}
	_, tomb, err := registration.DecodeSnapshot(&bus.Message{Key: []byte("nope")})
	if !tomb || !isFieldError(err, "key") {
		t.Errorf("tombstone with a bad key: tombstone %v, %v", tomb, err)
	}
	// An empty value is not a tombstone: it is a message that does not decode.
	if _, tomb, err := registration.DecodeSnapshot(&bus.Message{Key: []byte(snapNode.String()), Value: []byte{}}); tomb || err == nil {
		t.Errorf("empty value: tombstone %v, %v", tomb, err)
	}
}

func TestDecodeSnapshotKey(t *testing.T) {
	for _, ok := range []string{snapNode.String(), "registration:" + snapNode.String(), "other:" + strings.ToUpper(snapNode.String())} {
		if id, err := registration.DecodeSnapshotKey([]byte(ok)); err != nil || id != snapNode {
			t.Errorf("%q: %v, %v", ok, id, err)
		}
	}
	for _, bad := range []string{"", ":" + snapNode.String(), "registration:", "registration:x", "urn:uuid:" + snapNode.String(),
		"{" + snapNode.String() + "}", uuid.Nil.String(), "registration:" + uuid.Nil.String(), snapNode.String() + " ",
		strings.Repeat("d", 129) + ":" + snapNode.String(), strings.ReplaceAll(snapNode.String(), "-", "")} {
		if _, err := registration.DecodeSnapshotKey([]byte(bad)); !isFieldError(err, "key") {
			t.Errorf("%q: %v, want a key error", bad, err)
		}
	}
}

func isFieldError(err error, field string) bool {
	var de *bus.DecodeError
	return errors.As(err, &de) && de.Field == field
}

// TestDecodeSnapshotHostile feeds snapshot messages that break one rule each
// and checks the error names the field.
func TestDecodeSnapshotHostile(t *testing.T) {
	good := map[string]any{
		"entity_id": snapNode.String(), "domain": "registration", "current_state": "active",
		"node_type": "effect", "node_name": nil, "capabilities": map[string]any{},
		"last_state_change_at": "2026-03-01T12:00:40Z", "snapshot_version": 5,
		"snapshot_created_at": "2026-03-01T12:00:41+02:00", "source_projection_sequence": nil,
	}
	message := func(edit func(p map[string]any), meta string, key string) *bus.Message {
		p := map[string]any{}
		for k, v := range good {
			p[k] = v
		}
		edit(p)
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Now(), EventType: registration.EventSnapshot, Payload: raw}
		if meta != "" {
			env.Metadata = json.RawMessage(meta)
		}
		m, err := bus.EnvelopeMessage(registration.TopicSnapshot, env, bus.WithKey([]byte(key)))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	key := snapNode.String()
	set := func(k string, v any) func(map[string]any) { return func(p map[string]any) { p[k] = v } }
	del := func(k string) func(map[string]any) { return func(p map[string]any) { delete(p, k) } }
	none := func(map[string]any) {}

	// The good message decodes, with the defaults and the zone applied.
	s, _, err := registration.DecodeSnapshot(message(del("domain"), "", key))
	if err != nil {
		t.Fatal(err)
	}
	if s.Domain != registration.DefaultDomain || !s.CreatedAt.Equal(time.Date(2026, 3, 1, 10, 0, 41, 0, time.UTC)) ||
		s.CreatedAt.Location() != time.UTC || s.NodeName != "" || s.Generation != 0 {
		t.Fatalf("decoded %+v", s)
	}
	if _, _, err := registration.DecodeSnapshot(message(set("extra_field", 1), `{"other":1}`, "registration:"+key)); err != nil {
		t.Fatalf("unknown members and foreign metadata: %v", err)
	}
	if _, _, err := registration.DecodeSnapshot(message(none, "", "")); err != nil {
		t.Fatalf("no key: %v", err)
	}
	if _, _, err := registration.DecodeSnapshot(message(set("source_projection_sequence", 7), "", key)); err != nil {
		t.Fatalf("a source_projection_sequence: %v", err)
	}

	for _, c := range []struct {
		name, field string
		edit        func(map[string]any)
		meta, key   string
	}{
		{"no entity", "entity_id", del("entity_id"), "", key},
		{"nil entity", "entity_id", set("entity_id", uuid.Nil.String()), "", key},
		{"number entity", "entity_id", set("entity_id", 5), "", key},
		{"empty domain", "domain", set("domain", ""), "", key},
		{"long domain", "domain", set("domain", strings.Repeat("x", 129)), "", key},
		{"number domain", "domain", set("domain", 1), "", key},
		{"no state", "current_state", del("current_state"), "", key},
		{"upper state", "current_state", set("current_state", "ACTIVE"), "", key},
		{"node_type object", "node_type", set("node_type", map[string]any{}), "", key},
		{"long name", "node_name", set("node_name", strings.Repeat("n", 257)), "", key},
		{"caps array", "capabilities", set("capabilities", []int{1}), "", key},
		{"caps string", "capabilities", set("capabilities", "{}"), "", key},
		{"no change time", "last_state_change_at", del("last_state_change_at"), "", key},
		{"naive change time", "last_state_change_at", set("last_state_change_at", "2026-03-01T12:00:40"), "", key},
		{"no version", "snapshot_version", del("snapshot_version"), "", key},
		{"version 0", "snapshot_version", set("snapshot_version", 0), "", key},
		{"version fraction", "snapshot_version", set("snapshot_version", 1.5), "", key},
		{"version string", "snapshot_version", set("snapshot_version", "5"), "", key},
		{"version huge", "snapshot_version", set("snapshot_version", json.Number("99999999999999999999")), "", key},
		{"no created time", "snapshot_created_at", del("snapshot_created_at"), "", key},
		{"negative sequence", "source_projection_sequence", set("source_projection_sequence", -1), "", key},
		{"metadata registrar array", "metadata.registrar", none, `{"registrar":[]}`, key},
		{"metadata endpoints", "metadata.registrar.endpoints", none, `{"registrar":{"endpoints":{"a":1}}}`, key},
		{"metadata generation", "metadata.registrar.generation", none, `{"registrar":{"generation":-1}}`, key},
		{"metadata registered_at", "metadata.registrar.registered_at", none, `{"registrar":{"registered_at":"yesterday"}}`, key},
		{"metadata node_version", "metadata.registrar.node_version", none, `{"registrar":{"node_version":1}}`, key},
		{"other key", "key", none, "", uuid.New().String()},
		{"bad key", "key", none, "", "node-1"},
	} {
		m := message(c.edit, c.meta, c.key)
		if _, _, err := registration.DecodeSnapshot(m); !isFieldError(err, c.field) {
			t.Errorf("%s: %v, want a *bus.DecodeError for %s", c.name, err, c.field)
		}
	}

	// Not an envelope, another event type, a payload that is not an object.
	for name, c := range map[string]struct {
		value []byte
		field string
	}{
		"garbage":    {[]byte("{"), ""},
		"event type": {[]byte(`{"envelope_id":"` + uuid.NewString() + `","envelope_timestamp":"2026-03-01T12:00:40Z","event_type":"NodeBecameActive","payload":{}}`), "event_type"},
		"payload":    {[]byte(`{"envelope_id":"` + uuid.NewString() + `","envelope_timestamp":"2026-03-01T12:00:40Z","event_type":"ModelRegistrationSnapshot","payload":[1]}`), "payload"},
	} {
		_, tomb, err := registration.DecodeSnapshot(&bus.Message{Key: []byte(key), Value: c.value})
		if tomb || !isFieldError(err, c.field) {
			t.Errorf("%s: tombstone %v, %v, want a *bus.DecodeError for %q", name, tomb, err, c.field)
		}
	}
	if _, _, err := registration.DecodeSnapshot(nil); err == nil {
		t.Error("nil message decodes")
	}
}

// FuzzDecodeSnapshot checks that any message either fails with a
// *bus.DecodeError or decodes to a snapshot that encodes again and decodes
// to the same snapshot.
func FuzzDecodeSnapshot(f *testing.F) {
	s := fullSnapshot()
	payload, _ := s.Payload()
	meta, _ := s.Metadata()
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: s.CreatedAt, EventType: registration.EventSnapshot, Metadata: meta, Payload: payload}
	value, _, _ := bus.EncodeEnvelope(env)
	f.Add([]byte(snapNode.String()), value, false)
	f.Add([]byte("registration:"+snapNode.String()), value, false)
	f.Add([]byte(snapNode.String()), []byte(nil), true)
	f.Add([]byte("x"), []byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2026-03-01T12:00:40Z","event_type":"ModelRegistrationSnapshot","payload":{"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","current_state":"accepted","last_state_change_at":"0001-01-01T00:00:00Z","snapshot_version":1,"snapshot_created_at":"9999-12-31T23:59:59.999999999Z","capabilities":{ }}}`), false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		got, tomb, err := registration.DecodeSnapshot(&bus.Message{Key: key, Value: value})
		if tomb != (value == nil) {
			t.Fatalf("tombstone %v for value %q", tomb, value)
		}
		if err != nil {
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *bus.DecodeError", err, err)
			}
			return
		}
		if tomb {
			if got != nil {
				t.Fatal("a tombstone returned a snapshot")
			}
			return
		}
		again, _, err := registration.DecodeSnapshot(snapshotMessage(t, got))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v\n%+v", err, got)
		}
		if !again.Equal(got) {
			t.Fatalf("round trip changed the snapshot:\n%+v\n%+v", again, got)
		}
	})
}
