package registration_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestCoalesceHeartbeats: of two heartbeats of an active node, deciding
// the one Coalesce keeps, alone, leaves the projection both decided in
// order leave, and is due a TTL pass whenever the two were, no earlier than
// their last. Other inputs do not coalesce.
func TestCoalesceHeartbeats(t *testing.T) {
	r, err := registration.New(registration.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	heartbeat := func(at time.Time) reducer.Input {
		return reducer.Input{EntityID: nodeID, Kind: registration.KindHeartbeat,
			Event:    &registration.Heartbeat{NodeID: nodeID, Timestamp: at},
			Envelope: &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, CorrelationID: corrID}}
	}
	// decide decides ins in order, evolving p, and returns the projection
	// and the times of the TTL passes.
	decide := func(p *registration.Projection, ins ...reducer.Input) (*registration.Projection, []time.Time) {
		var passes []time.Time
		for _, in := range ins {
			d := r.Decide(p, in, now)
			for _, it := range d.Intents {
				if pass, ok := it.Payload.(*registration.ConsulPassTTL); ok {
					passes = append(passes, pass.At)
				}
			}
			p = r.Evolve(p, in, d)
		}
		return p, passes
	}
	rapid.Check(t, func(rt *rapid.T) {
		last := t0.Add(time.Duration(rapid.IntRange(0, 120).Draw(rt, "last")) * time.Second)
		p := &registration.Projection{EntityID: nodeID, Domain: registration.DefaultDomain, State: registration.StateActive,
			NodeType: "compute", NodeVersion: "1.0.0", LastHeartbeatAt: last, LivenessDeadline: last.Add(90 * time.Second),
			RegisteredAt: t0, UpdatedAt: last, Generation: 1}
		a := heartbeat(t0.Add(time.Duration(rapid.IntRange(0, 200).Draw(rt, "a")) * time.Second))
		b := heartbeat(t0.Add(time.Duration(rapid.IntRange(0, 200).Draw(rt, "b")) * time.Second))
		keepLater, ok := r.Coalesce(a, b)
		if !ok {
			rt.Fatal("two heartbeats of one node do not coalesce")
		}
		kept := a
		if keepLater {
			kept = b
		}
		both, bothPasses := decide(p, a, b)
		alone, alonePasses := decide(p, kept)
		if both.LastHeartbeatAt != alone.LastHeartbeatAt || both.LivenessDeadline != alone.LivenessDeadline ||
			both.UpdatedAt != alone.UpdatedAt || both.State != alone.State || both.CorrelationID != alone.CorrelationID {
			rt.Fatalf("deciding both leaves %+v, the kept one alone %+v", both, alone)
		}
		switch {
		case len(bothPasses) == 0 && len(alonePasses) != 0, len(bothPasses) != 0 && len(alonePasses) != 1:
			rt.Fatalf("TTL passes: both %v, the kept one alone %v", bothPasses, alonePasses)
		case len(bothPasses) != 0 && alonePasses[0].Before(bothPasses[len(bothPasses)-1]):
			rt.Fatalf("the kept one passes at %v, before the last pass of both, %v", alonePasses[0], bothPasses[len(bothPasses)-1])
		}
	})

	ack := reducer.Input{EntityID: nodeID, Kind: registration.KindAck, Event: &registration.Ack{NodeID: nodeID, Timestamp: t0}}
	for _, pair := range [][2]reducer.Input{{heartbeat(t0), ack}, {ack, heartbeat(t0)}, {ack, ack}} {
		if _, ok := r.Coalesce(pair[0], pair[1]); ok {
			t.Errorf("%s and %s coalesce", pair[0].Kind, pair[1].Kind)
		}
	}
	if keepLater, _ := r.Coalesce(heartbeat(t0), heartbeat(t0)); keepLater {
		t.Error("of two heartbeats stamped alike the later is kept; the earlier is decided first and the later is stale after it")
	}
}
