package chaos_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/internal/chaos"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestGenerate checks the workload's promises: the same seed gives the
// same bytes; every real input decodes, is keyed by its entity, and is
// stamped after the entity's previous one and before the members' clock;
// the poisons that no decoder can read fail to decode; and the scripts
// reach every event the reducer emits.
func TestGenerate(t *testing.T) {
	cfg := chaos.WorkloadConfig{Entities: 150, PoisonsPerKind: 2, Topic: registration.TopicIntrospection, Window: 2 * time.Second}
	w, again := chaos.Generate(11, cfg), chaos.Generate(11, cfg)
	red := newReducer(t)
	if len(w.Poisons) != 2*len(chaos.PoisonKinds) {
		t.Errorf("%d poisons, want %d", len(w.Poisons), 2*len(chaos.PoisonKinds))
	}
	for i, id := range w.Entities {
		script, other := w.Scripts[id], again.Scripts[again.Entities[i]]
		if len(script) != len(other) {
			t.Fatalf("entity %d: scripts of %d and %d inputs from one seed", i, len(script), len(other))
		}
		var last time.Time
		var lastAt time.Duration
		for k, in := range script {
			if !bytes.Equal(in.Msg.Value, other[k].Msg.Value) {
				t.Fatalf("entity %s input %d: different bytes from one seed", id, k)
			}
			if string(in.Msg.Key) != id.String() || in.Msg.Topic != cfg.Topic {
				t.Errorf("entity %s input %d: keyed %q on %s", id, k, in.Msg.Key, in.Msg.Topic)
			}
			if in.At < lastAt || in.At > cfg.Window {
				t.Errorf("entity %s input %d: published at %v after %v", id, k, in.At, lastAt)
			}
			lastAt = in.At
			env, envErr := bus.DecodeEnvelope(in.Msg.Value)
			if in.Poison != "" {
				switch in.Poison {
				case chaos.PoisonInvalidJSON:
					if envErr == nil {
						t.Errorf("poison %s decodes", in.Poison)
					}
				case chaos.PoisonUnknownEventType, chaos.PoisonMissingNodeID:
					if envErr != nil {
						t.Fatalf("poison %s: envelope: %v", in.Poison, envErr)
					}
					if _, err := red.Decode(in.Msg.Topic, env); err == nil {
						t.Errorf("poison %s decodes", in.Poison)
					}
				}
				continue
			}
			if envErr != nil {
				t.Fatalf("entity %s input %d: %v", id, k, envErr)
			}
			got, err := red.Decode(in.Msg.Topic, env)
			if err != nil {
				t.Fatalf("entity %s input %d (%s): %v", id, k, in.Kind, err)
			}
			if got.EntityID != id || got.Kind != in.Kind {
				t.Errorf("entity %s input %d: decodes as %s of %s", id, k, got.Kind, got.EntityID)
			}
			if k == 0 && in.Kind != registration.KindIntrospection {
				t.Errorf("entity %s starts with %s", id, in.Kind)
			}
			// Strictly increasing, and at most two minutes past the
			// members' clock (a registration after a timeout), well
			// inside the Runtime's five minutes of allowed skew.
			if !env.EnvelopeTimestamp.After(last) || env.EnvelopeTimestamp.After(chaos.Clock.Add(2*time.Minute)) {
				t.Errorf("entity %s input %d: stamped %v after %v (clock %v)", id, k, env.EnvelopeTimestamp, last, chaos.Clock)
			}
			last = env.EnvelopeTimestamp
		}
	}

	_, m := perfectRun(t, w)
	seen := map[string]int{}
	refreshed := 0
	for _, evs := range m.Events {
		for _, ev := range evs {
			seen[ev.Type]++
		}
	}
	for _, p := range m.Projections {
		if p.Generation > 1 {
			seen["re-registration"]++
		}
		if p.NodeVersion != "1.0.0" {
			refreshed++
		}
	}
	for _, want := range []string{registration.EventInitiated, registration.EventAccepted, registration.EventAckReceived,
		registration.EventBecameActive, registration.EventAckTimedOut, registration.EventLivenessExpired, "re-registration"} {
		if seen[want] == 0 {
			t.Errorf("no %s in a workload of %d entities", want, cfg.Entities)
		}
	}
	if refreshed == 0 {
		t.Errorf("no metadata refresh in a workload of %d entities", cfg.Entities)
	}
	t.Logf("%d inputs; events %v; %d refreshed", w.Inputs, seen, refreshed)
}
