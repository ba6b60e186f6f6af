package registration_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	busmemory "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// eventWire turns the events of a decision into the bytes the runtime
// publishes: dispatch.Applier.Envelope, then bus.EnvelopeMessage (the
// relay's path), and reads them back as a consumer does.
type eventWire struct {
	t  *testing.T
	ap *dispatch.Applier
}

func newEventWire(t *testing.T) *eventWire {
	t.Helper()
	b, err := busmemory.New(busmemory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := dispatch.New(dispatch.Config{Publisher: b, Executor: intent.NewExecutor(), Outbox: memory.NewStore(memory.StoreConfig{}), SourceTool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &eventWire{t: t, ap: ap}
}

// roundTrip encodes event i of a decision caused by cause, decodes it with
// DecodeEvent and checks that the decoded value equals the emitted payload.
func (w *eventWire) roundTrip(cause *bus.Envelope, i int, ev reducer.Event) any {
	w.t.Helper()
	out, err := w.ap.Envelope(cause, i, ev)
	if err != nil {
		w.t.Fatal(err)
	}
	msg, err := bus.EnvelopeMessage(ev.Topic, out, bus.WithKey(ev.PartitionKey()))
	if err != nil {
		w.t.Fatal(err)
	}
	got, err := bus.DecodeEnvelope(msg.Value)
	if err != nil {
		w.t.Fatalf("%s: decode envelope: %v", ev.Type, err)
	}
	dec, err := registration.DecodeEvent(got)
	if err != nil {
		w.t.Fatalf("%s: DecodeEvent: %v\npayload %s", ev.Type, err, got.Payload)
	}
	if snap, ok := ev.Payload.(*registration.Snapshot); ok {
		// Capabilities are compacted on the way: compare as JSON.
		if !snap.Equal(dec.(*registration.Snapshot)) {
			w.t.Fatalf("snapshot: decoded\n%+v\nemitted\n%+v\npayload %s", dec, snap, got.Payload)
		}
		return dec
	}
	if !reflect.DeepEqual(dec, ev.Payload) {
		w.t.Fatalf("%s: decoded\n%#v\nemitted\n%#v\npayload %s", ev.Type, dec, ev.Payload, got.Payload)
	}
	return dec
}

func input(kind string, id uuid.UUID, event any, envID uuid.UUID, at time.Time) reducer.Input {
	return reducer.Input{EntityID: id, Kind: kind, Event: event,
		Envelope: &bus.Envelope{EnvelopeID: envID, EnvelopeTimestamp: at, CorrelationID: corrID, Payload: json.RawMessage(`{}`)}}
}

// TestDecodeEventRoundTrip drives the real reducer through a whole
// workflow (introspection, ack, heartbeat, liveness timeout,
// re-introspection, ack timeout) and checks that every event it emits
// decodes, through the runtime's encoding, to what it emitted.
func TestDecodeEventRoundTrip(t *testing.T) {
	r := newReducer(t)
	w := newEventWire(t)
	var p *registration.Projection
	seen := map[string]int{}
	step := func(in reducer.Input, now time.Time, wantEvents ...string) {
		t.Helper()
		d := r.Decide(p, in, now)
		if len(d.Events) != len(wantEvents) {
			t.Fatalf("%s: %d events (%s), want %v", in.Kind, len(d.Events), d.Reason, wantEvents)
		}
		for i, ev := range d.Events {
			if ev.Type != wantEvents[i] {
				t.Fatalf("%s: event %d is %s, want %s", in.Kind, i, ev.Type, wantEvents[i])
			}
			w.roundTrip(in.Envelope, i, ev)
			seen[ev.Type]++
		}
		p = r.Evolve(p, in, d)
	}
	n := 0
	id := func() uuid.UUID { n++; return uuid.NewSHA1(envID, []byte{byte(n)}) }
	intro := introspection()
	step(input(registration.KindIntrospection, nodeID, intro, id(), t0), t0, registration.EventInitiated, registration.EventAccepted, registration.EventSnapshot)
	ack := &registration.Ack{NodeID: nodeID, CorrelationID: corrID, Timestamp: t0.Add(time.Second)}
	step(input(registration.KindAck, nodeID, ack, id(), ack.Timestamp), t0, registration.EventAckReceived, registration.EventBecameActive, registration.EventSnapshot)
	hb := &registration.Heartbeat{NodeID: nodeID, Timestamp: t0.Add(2 * time.Second), UptimeSeconds: 2}
	step(input(registration.KindHeartbeat, nodeID, hb, id(), hb.Timestamp), t0)
	if p.LastHeartbeatAt.IsZero() {
		t.Fatal("the heartbeat was not applied")
	}
	// A check decided at a clock with nanoseconds: emitted_at keeps them.
	late := p.LivenessDeadline.Add(time.Second + 123456789)
	check := &registration.TimeoutCheck{EntityID: nodeID, Kind: registration.TimeoutLiveness, DeadlineAt: p.LivenessDeadline, CheckedAt: late, CorrelationID: corrID}
	step(input(registration.KindTimeoutCheck, nodeID, check, id(), late), late, registration.EventLivenessExpired, registration.EventSnapshot)
	again := late.Add(time.Minute)
	intro2 := introspection()
	intro2.Timestamp = again
	step(input(registration.KindIntrospection, nodeID, intro2, id(), again), again, registration.EventInitiated, registration.EventAccepted, registration.EventSnapshot)
	late = p.AckDeadline.Add(987654321)
	check = &registration.TimeoutCheck{EntityID: nodeID, Kind: registration.TimeoutAck, DeadlineAt: p.AckDeadline, CheckedAt: late}
	step(input(registration.KindTimeoutCheck, nodeID, check, id(), late), late, registration.EventAckTimedOut, registration.EventSnapshot)
	// A node that never heartbeats: last_heartbeat_at is null.
	p = nil
	other := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	intro3 := introspection()
	intro3.NodeID = other
	step(input(registration.KindIntrospection, other, intro3, id(), t0), t0, registration.EventInitiated, registration.EventAccepted, registration.EventSnapshot)
	ack3 := &registration.Ack{NodeID: other, CorrelationID: corrID, Timestamp: t0.Add(time.Second)}
	step(input(registration.KindAck, other, ack3, id(), ack3.Timestamp), t0, registration.EventAckReceived, registration.EventBecameActive, registration.EventSnapshot)
	late = p.LivenessDeadline.Add(time.Nanosecond)
	check = &registration.TimeoutCheck{EntityID: other, Kind: registration.TimeoutLiveness, DeadlineAt: p.LivenessDeadline, CheckedAt: late}
	step(input(registration.KindTimeoutCheck, other, check, id(), late), late, registration.EventLivenessExpired, registration.EventSnapshot)
	for _, typ := range []string{registration.EventInitiated, registration.EventAccepted, registration.EventAckReceived,
		registration.EventBecameActive, registration.EventAckTimedOut, registration.EventLivenessExpired, registration.EventSnapshot} {
		if seen[typ] == 0 {
			t.Errorf("the workflow emitted no %s", typ)
		}
	}
}

// TestDecodeEventSaturatedDeadline checks that a deadline saturated at the
// reducer's ceiling (year 9999) round-trips exactly, where
// bus.ParseTimeField would refuse it.
func TestDecodeEventSaturatedDeadline(t *testing.T) {
	r := newReducer(t)
	w := newEventWire(t)
	at := time.Date(9999, 12, 31, 23, 59, 50, 0, time.UTC)
	intro := introspection()
	intro.Timestamp = at
	in := input(registration.KindIntrospection, nodeID, intro, envID, at)
	d := r.Decide(nil, in, at)
	if len(d.Events) != 3 || d.Events[2].Type != registration.EventSnapshot {
		t.Fatalf("got %d events: %s", len(d.Events), d.Reason)
	}
	// The bus refuses an envelope stamped after bus.MaxTime, so the
	// payload goes the runtime's way (dispatch.Applier.Envelope) without
	// the envelope's trip.
	out, err := w.ap.Envelope(in.Envelope, 1, d.Events[1])
	if err != nil {
		t.Fatal(err)
	}
	dec, err := registration.DecodeEvent(out)
	if err != nil {
		t.Fatalf("%v\npayload %s", err, out.Payload)
	}
	if !reflect.DeepEqual(dec, d.Events[1].Payload) {
		t.Fatalf("decoded %#v, emitted %#v", dec, d.Events[1].Payload)
	}
	acc := dec.(*registration.Accepted)
	if want := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC); !acc.AckDeadline.Equal(want) {
		t.Fatalf("ack_deadline %v, want the saturated %v", acc.AckDeadline, want)
	}
}

const goodAccepted = `{"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10",` +
	`"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","causation_id":"00000000-0000-4000-8000-0000000000e1",` +
	`"emitted_at":"2026-03-01T12:00:00.123456789Z","ack_deadline":"2026-03-01T14:00:30+02:00"}`

func acceptedEnvelope(payload string) *bus.Envelope {
	return &bus.Envelope{EnvelopeID: envID, EnvelopeTimestamp: t0, EventType: registration.EventAccepted, Payload: json.RawMessage(payload)}
}

// TestDecodeEventFields checks the decoded values of a hand-written
// payload: times in UTC with every digit, an offset applied, unknown
// fields ignored.
func TestDecodeEventFields(t *testing.T) {
	payload := strings.Replace(goodAccepted, `{`, `{"added_by_a_newer_producer":[1,2],`, 1)
	got, err := registration.DecodeAccepted(acceptedEnvelope(payload))
	if err != nil {
		t.Fatal(err)
	}
	want := &registration.Accepted{
		EventHeader: registration.EventHeader{EntityID: nodeID, NodeID: nodeID, CorrelationID: corrID, CausationID: envID,
			EmittedAt: t0.Add(123456789)},
		AckDeadline: t0.Add(30 * time.Second),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

// TestDecodeEventErrors checks that hostile input gives an error naming
// what is wrong.
func TestDecodeEventErrors(t *testing.T) {
	drop := func(field string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(goodAccepted), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, field)
		b, _ := json.Marshal(m)
		return string(b)
	}
	set := func(field string, v any) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(goodAccepted), &m); err != nil {
			t.Fatal(err)
		}
		m[field] = v
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name, payload, field, reason string
	}{
		{"not an object", `[1,2]`, "payload", "not a JSON object"},
		{"a string", `"x"`, "payload", "not a JSON object"},
		{"null", `null`, "payload", "not a JSON object"},
		{"broken", `{"entity_id":`, "payload", "not valid JSON"},
		{"missing entity_id", drop("entity_id"), "entity_id", "missing"},
		{"missing node_id", drop("node_id"), "node_id", "missing"},
		{"missing correlation_id", drop("correlation_id"), "correlation_id", "missing"},
		{"missing causation_id", drop("causation_id"), "causation_id", "missing"},
		{"missing emitted_at", drop("emitted_at"), "emitted_at", "missing"},
		{"missing ack_deadline", drop("ack_deadline"), "ack_deadline", "missing"},
		{"null ack_deadline", set("ack_deadline", nil), "ack_deadline", "missing"},
		{"bad uuid", set("node_id", "not-a-uuid"), "node_id", "not a UUID"},
		{"nil uuid", set("entity_id", uuid.Nil.String()), "entity_id", "nil UUID"},
		{"number uuid", set("causation_id", 7), "causation_id", "not a JSON string"},
		{"no zone", set("emitted_at", "2026-03-01T12:00:00"), "emitted_at", "RFC 3339"},
		{"date only", set("ack_deadline", "2026-03-01"), "ack_deadline", "RFC 3339"},
		{"year 10000", set("ack_deadline", "10000-01-01T00:00:00Z"), "ack_deadline", "RFC 3339"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registration.DecodeEvent(acceptedEnvelope(tc.payload))
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T), want a *bus.DecodeError", err, err)
			}
			if de.Field != tc.field || !strings.Contains(de.Reason, tc.reason) {
				t.Fatalf("field %q reason %q, want field %q reason containing %q", de.Field, de.Reason, tc.field, tc.reason)
			}
		})
	}
}

// TestDecodeEventType checks the event type checks: DecodeEvent refuses an
// unknown type with ErrUnknownEvent, a typed decoder any other type.
func TestDecodeEventType(t *testing.T) {
	env := acceptedEnvelope(goodAccepted)
	env.EventType = "NodeRegistrationRejected"
	if _, err := registration.DecodeEvent(env); !errors.Is(err, registration.ErrUnknownEvent) || !strings.Contains(err.Error(), "NodeRegistrationRejected") {
		t.Fatalf("unknown type: %v", err)
	}
	env.EventType = ""
	if _, err := registration.DecodeEvent(env); !errors.Is(err, registration.ErrUnknownEvent) {
		t.Fatalf("empty type: %v", err)
	}
	if _, err := registration.DecodeEvent(nil); err == nil {
		t.Fatal("nil envelope decoded")
	}
	env = acceptedEnvelope(goodAccepted)
	var de *bus.DecodeError
	if _, err := registration.DecodeAckReceived(env); !errors.As(err, &de) || de.Field != "event_type" ||
		!strings.Contains(de.Reason, registration.EventAckReceived) {
		t.Fatalf("wrong type: %v", err)
	}
	for name, dec := range map[string]func(*bus.Envelope) (any, error){
		"Initiated":       func(e *bus.Envelope) (any, error) { return registration.DecodeInitiated(e) },
		"BecameActive":    func(e *bus.Envelope) (any, error) { return registration.DecodeBecameActive(e) },
		"AckTimedOut":     func(e *bus.Envelope) (any, error) { return registration.DecodeAckTimedOut(e) },
		"LivenessExpired": func(e *bus.Envelope) (any, error) { return registration.DecodeLivenessExpired(e) },
	} {
		if _, err := dec(env); err == nil {
			t.Errorf("%s decoded an Accepted envelope", name)
		}
	}
	if _, err := registration.DecodeAccepted(env); err != nil {
		t.Fatalf("the right type: %v", err)
	}
}

// TestDecodeBecameActiveCapabilities checks that capabilities must be an
// object and are kept byte for byte.
func TestDecodeBecameActiveCapabilities(t *testing.T) {
	header := `"entity_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10",` +
		`"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","causation_id":"00000000-0000-4000-8000-0000000000e1",` +
		`"emitted_at":"2026-03-01T12:00:00Z"`
	env := func(caps string) *bus.Envelope {
		return &bus.Envelope{EventType: registration.EventBecameActive, Payload: json.RawMessage(`{` + header + `,"capabilities":` + caps + `}`)}
	}
	got, err := registration.DecodeBecameActive(env(`{"a": [1, 2]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Capabilities, []byte(`{"a": [1, 2]}`)) {
		t.Fatalf("capabilities %s", got.Capabilities)
	}
	for _, caps := range []string{`[]`, `"x"`, `null`, `3`} {
		var de *bus.DecodeError
		if _, err := registration.DecodeBecameActive(env(caps)); !errors.As(err, &de) || de.Field != "capabilities" {
			t.Errorf("capabilities %s: %v", caps, err)
		}
	}
}

// FuzzDecodeEvent checks that DecodeEvent never panics, that every error
// for a known type is a *bus.DecodeError with a reason, and that what it
// decodes marshals back to a payload it decodes to the same value.
func FuzzDecodeEvent(f *testing.F) {
	types := []string{registration.EventInitiated, registration.EventAccepted, registration.EventAckReceived,
		registration.EventBecameActive, registration.EventAckTimedOut, registration.EventLivenessExpired, "Other"}
	f.Add(uint8(1), []byte(goodAccepted))
	f.Add(uint8(5), []byte(strings.Replace(goodAccepted, `"ack_deadline"`, `"last_heartbeat_at"`, 1)))
	f.Add(uint8(3), []byte(strings.Replace(goodAccepted, `"ack_deadline":"2026-03-01T14:00:30+02:00"`, `"capabilities":{}`, 1)))
	f.Add(uint8(0), []byte(`{}`))
	f.Add(uint8(2), []byte(`[`))
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		env := &bus.Envelope{EventType: types[int(typ)%len(types)], Payload: payload}
		ev, err := registration.DecodeEvent(env)
		if err != nil {
			if env.EventType == "Other" {
				if !errors.Is(err, registration.ErrUnknownEvent) {
					t.Fatalf("unknown type: %v", err)
				}
				return
			}
			var de *bus.DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %v (%T) is not a *bus.DecodeError with a reason", err, err)
			}
			return
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("decoded %#v does not marshal: %v", ev, err)
		}
		again, err := registration.DecodeEvent(&bus.Envelope{EventType: env.EventType, Payload: b})
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if ba, _ := json.Marshal(again); !bytes.Equal(ba, b) {
			t.Fatalf("re-decoded %s, want %s", ba, b)
		}
	})
}

// TestDecideWarn checks which no-ops the reducer marks for an operator:
// acks and heartbeats the state disagrees with, not at-least-once noise.
func TestDecideWarn(t *testing.T) {
	r := newReducer(t)
	at := t0.Add(time.Second)
	ack := &registration.Ack{NodeID: nodeID, CorrelationID: corrID, Timestamp: at}
	hb := &registration.Heartbeat{NodeID: nodeID, Timestamp: at, UptimeSeconds: 1}
	stale := projection(registration.StateActive)
	stale.LastHeartbeatAt = at.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		p     *registration.Projection
		kind  string
		event any
		warn  bool
	}{
		{"ack unknown", nil, registration.KindAck, ack, true},
		{"ack pending", projection(registration.StatePendingRegistration), registration.KindAck, ack, true},
		{"ack too late", projection(registration.StateAckTimedOut), registration.KindAck, ack, true},
		{"ack terminal", projection(registration.StateLivenessExpired), registration.KindAck, ack, true},
		{"ack duplicate", projection(registration.StateActive), registration.KindAck, ack, false},
		{"heartbeat unknown", nil, registration.KindHeartbeat, hb, true},
		{"heartbeat awaiting ack", projection(registration.StateAwaitingAck), registration.KindHeartbeat, hb, true},
		{"heartbeat expired", projection(registration.StateLivenessExpired), registration.KindHeartbeat, hb, true},
		{"heartbeat stale", stale, registration.KindHeartbeat, hb, false},
		{"introspection in progress", projection(registration.StateAwaitingAck), registration.KindIntrospection, introspection(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Decide(tc.p, input(tc.kind, nodeID, tc.event, envID, at), at)
			if !d.IsNoop() {
				t.Fatalf("not a no-op: %+v", d)
			}
			if d.Warn != tc.warn {
				t.Fatalf("Warn = %v, want %v (reason %q)", d.Warn, tc.warn, d.Reason)
			}
		})
	}
}
