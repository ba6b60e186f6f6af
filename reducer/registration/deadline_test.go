package registration_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// latestMarshalable is the last instant every store and encoder of
// registrar can hold, where the reducer's deadlines saturate.
var latestMarshalable = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// decisionDeadlines returns the deadlines a decision writes: the events'
// ack and liveness deadlines and its intents' projection deadlines.
func decisionDeadlines(d reducer.Decision) []time.Time {
	var out []time.Time
	for _, e := range d.Events {
		switch pl := e.Payload.(type) {
		case *registration.Accepted:
			out = append(out, pl.AckDeadline)
		case *registration.AckReceived:
			out = append(out, pl.LivenessDeadline)
		}
	}
	for _, in := range d.Intents {
		switch pl := in.Payload.(type) {
		case *registration.UpsertRegistration:
			out = append(out, pl.Projection.AckDeadline)
		case *registration.UpdateRegistration:
			if pl.Set.Has(registration.ColLivenessDeadline) {
				out = append(out, pl.Values.LivenessDeadline)
			}
		}
	}
	return out
}

// checkDecisionMarshals fails unless every event payload and intent
// payload of d marshals to JSON.
func checkDecisionMarshals(t *testing.T, d reducer.Decision) {
	t.Helper()
	for _, e := range d.Events {
		if _, err := json.Marshal(e.Payload); err != nil {
			t.Errorf("event %s does not marshal: %v", e.Type, err)
		}
	}
	for _, in := range d.Intents {
		if _, err := json.Marshal(in.Payload); err != nil {
			t.Errorf("intent %s does not marshal: %v", in.Type, err)
		}
	}
}

// decideAll decides an introspection, then an ack, then a heartbeat, each
// against the projection the one before left, all at now, and returns the
// three decisions.
func decideAll(t *testing.T, r *registration.Reducer, now time.Time) []reducer.Decision {
	t.Helper()
	envelope := func(name string) *bus.Envelope {
		e := env(now)
		e.EnvelopeID = uuid.NewSHA1(envID, []byte(name))
		return e
	}
	intro := introspection()
	intro.Timestamp = now
	first := r.Decide(nil, reducer.Input{EntityID: nodeID, Event: intro, Envelope: envelope("introspection")}, now)
	p := r.Evolve(nil, reducer.Input{}, first)
	if p == nil {
		t.Fatalf("introspection at %v: %q", now, first.Reason)
	}
	// Acks and heartbeats must be newer than the node's last change.
	p.UpdatedAt = p.UpdatedAt.Add(-time.Second)
	ack := &registration.Ack{NodeID: nodeID, CorrelationID: corrID, Timestamp: now}
	second := r.Decide(p, reducer.Input{EntityID: nodeID, Event: ack, Envelope: envelope("ack")}, now)
	p = r.Evolve(p, reducer.Input{}, second)
	if p.State != registration.StateActive {
		t.Fatalf("ack at %v: %q", now, second.Reason)
	}
	p.UpdatedAt = p.UpdatedAt.Add(-time.Second)
	hb := &registration.Heartbeat{NodeID: nodeID, UptimeSeconds: 1, Timestamp: now}
	third := r.Decide(p, reducer.Input{EntityID: nodeID, Event: hb, Envelope: envelope("heartbeat")}, now)
	if len(third.Intents) == 0 {
		t.Fatalf("heartbeat at %v: %q", now, third.Reason)
	}
	return []reducer.Decision{first, second, third}
}

// TestDeadlineFromLatestInputMarshals: the latest time a decoder accepts
// plus the longest duration Config accepts is a deadline that is computed
// exactly, and marshals.
func TestDeadlineFromLatestInputMarshals(t *testing.T) {
	r, err := registration.New(registration.Config{
		AckTimeout: registration.MaxDuration, LivenessInterval: registration.MaxDuration,
		LivenessWindow: registration.MaxDuration, ConsulTTL: registration.MaxDuration,
	})
	if err != nil {
		t.Fatal(err)
	}
	now, err := bus.ParseTimeField("envelope_timestamp", "9000-01-01T00:00:00Z")
	if err != nil || !now.Equal(bus.MaxTime) {
		t.Fatalf("the latest accepted time: %v, %v", now, err)
	}
	want := bus.MaxTime.Add(registration.MaxDuration)
	var n int
	for _, d := range decideAll(t, r, now) {
		checkDecisionMarshals(t, d)
		for _, dl := range decisionDeadlines(d) {
			n++
			if !dl.Equal(want) {
				t.Errorf("deadline %v, want %v", dl, want)
			}
		}
	}
	if n != 5 { // ack deadline twice, liveness deadline three times
		t.Errorf("%d deadlines, want 5", n)
	}
}

// TestDeadlinesSaturate: Decide called with a now no decoder accepts still
// writes deadlines that marshal, saturated at the last marshalable instant.
func TestDeadlinesSaturate(t *testing.T) {
	r := newReducer(t)
	for _, now := range []time.Time{
		latestMarshalable.Add(-time.Second),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("west", -12*3600)),
		time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		for _, d := range decideAll(t, r, now) {
			for _, dl := range decisionDeadlines(d) {
				if !dl.Equal(latestMarshalable) || dl.Location() != time.UTC {
					t.Errorf("now %v: deadline %v, want %v in UTC", now, dl, latestMarshalable)
				}
				if _, err := json.Marshal(dl); err != nil {
					t.Errorf("now %v: deadline %v does not marshal: %v", now, dl, err)
				}
			}
		}
	}
}

// TestDeadlinesBelowTheCeiling: far from the ceiling a deadline is now plus
// the duration, to the nanosecond.
func TestDeadlinesBelowTheCeiling(t *testing.T) {
	r := newReducer(t)
	now := t0.Add(123456789 * time.Nanosecond)
	ds := decideAll(t, r, now)
	want := []time.Time{
		now.Add(registration.DefaultAckTimeout), now.Add(registration.DefaultAckTimeout),
		now.Add(registration.DefaultLivenessInterval), now.Add(registration.DefaultLivenessInterval),
		now.Add(registration.DefaultLivenessWindow),
	}
	var got []time.Time
	for _, d := range ds {
		got = append(got, decisionDeadlines(d)...)
	}
	if len(got) != len(want) {
		t.Fatalf("deadlines %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("deadline %d = %v, want %v", i, got[i], want[i])
		}
	}
}
