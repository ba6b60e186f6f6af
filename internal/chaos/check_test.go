package chaos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/internal/chaos"
	"github.com/registrar-go/registrar/reducer/registration"
)

const testPartitions = 12

// newReducer returns the reducer that the harness's model runs.
func newReducer(t *testing.T) *registration.Reducer {
	t.Helper()
	red, err := registration.New(registrar.ReducerConfig(contract.Default()))
	if err != nil {
		t.Fatal(err)
	}
	return red
}

// perfectRun is what an engine that keeps every guarantee leaves behind
// for w: every input on its partition and committed, the model's events
// published once each, the model's projections stored, the poisons
// dead-lettered.
func perfectRun(t *testing.T, w *chaos.Workload) (*chaos.Observed, *chaos.Model) {
	t.Helper()
	red := newReducer(t)
	topics := red.Config().Topics
	inputs := make([][]*bus.Message, testPartitions)
	var dead []*bus.Message
	for _, id := range w.Entities {
		for _, in := range w.Scripts[id] {
			m := in.Msg.Clone()
			m.Partition = bus.KeyPartition(m.Key, testPartitions)
			m.Offset = int64(len(inputs[m.Partition]))
			inputs[m.Partition] = append(inputs[m.Partition], m)
			if in.Poison != "" {
				dead = append(dead, bus.DeadLetter(registration.TopicDeadLetter, "group", m, errors.New("poison"), chaos.Clock))
			}
		}
	}
	obs := &chaos.Observed{
		Inputs:      map[string][][]*bus.Message{topics.Introspection: inputs},
		Outputs:     map[string][][]*bus.Message{},
		DeadLetters: [][]*bus.Message{dead},
	}
	for p, msgs := range inputs {
		obs.Progress = append(obs.Progress, chaos.PartitionProgress{
			Topic: topics.Introspection, Partition: int32(p), Committed: int64(len(msgs)), End: int64(len(msgs)),
		})
	}
	m, err := chaos.RunModel(red, obs.Inputs, w.Poisons, func(string, int32) int64 { return 1 << 62 })
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range w.Entities {
		for _, ev := range m.Events[id] {
			env := &bus.Envelope{EnvelopeID: ev.ID, EnvelopeTimestamp: ev.Cause.Time, EventType: ev.Type, Payload: ev.Payload}
			msg, err := bus.EnvelopeMessage(ev.Topic, env, bus.WithKey([]byte(id.String())))
			if err != nil {
				t.Fatal(err)
			}
			parts := obs.Outputs[ev.Topic]
			if parts == nil {
				parts = make([][]*bus.Message, testPartitions)
			}
			msg.Partition = bus.KeyPartition(msg.Key, testPartitions)
			msg.Offset = int64(len(parts[msg.Partition]))
			parts[msg.Partition] = append(parts[msg.Partition], msg)
			obs.Outputs[ev.Topic] = parts
		}
		if p := m.Projections[id]; p != nil {
			obs.Projections = append(obs.Projections, p.Clone())
		}
	}
	return obs, m
}

func invariantsOf(vs []chaos.Violation) []chaos.Invariant {
	var out []chaos.Invariant
	for _, v := range vs {
		if !slices.Contains(out, v.Invariant) {
			out = append(out, v.Invariant)
		}
	}
	slices.Sort(out)
	return out
}

// TestCheck checks the checker: a perfect run has no violation, and each
// way of breaking a guarantee is reported as a violation of the invariant
// it breaks, and only of those.
func TestCheck(t *testing.T) {
	w := chaos.Generate(7, chaos.WorkloadConfig{Entities: 60, PoisonsPerKind: 1, Topic: registration.TopicIntrospection, Window: time.Second})
	obs, m := perfectRun(t, w)
	vs, counts := chaos.Check(w, m, obs)
	if len(vs) > 0 {
		t.Fatalf("a perfect run has %d violations, first: %+v", len(vs), vs[0])
	}
	if counts.Published != counts.ExpectedEvents || counts.Duplicates != 0 || counts.DeadLetters != len(w.Poisons) || counts.Inputs != w.Inputs {
		t.Fatalf("counts of a perfect run: %+v; want %d events, %d inputs, %d dead letters", counts, counts.ExpectedEvents, w.Inputs, len(w.Poisons))
	}

	// Helpers that find what to break.
	firstOutput := func(obs *chaos.Observed, topic string) (int, int) {
		for p, msgs := range obs.Outputs[topic] {
			if len(msgs) > 0 {
				return p, 0
			}
		}
		t.Fatalf("no event on %s", topic)
		return 0, 0
	}
	// twoOnOneTopic finds an entity with two events on one topic.
	twoOnOneTopic := func(obs *chaos.Observed, topic string) (p, i, j int) {
		for p, msgs := range obs.Outputs[topic] {
			for i := range msgs {
				for j := i + 1; j < len(msgs); j++ {
					if bytes.Equal(msgs[i].Key, msgs[j].Key) {
						return p, i, j
					}
				}
			}
		}
		t.Fatalf("no entity has two events on %s", topic)
		return
	}
	for _, tc := range []struct {
		name   string
		mutate func(obs *chaos.Observed)
		want   []chaos.Invariant
	}{
		{"identical duplicate", func(obs *chaos.Observed) {
			p, i := firstOutput(obs, registration.TopicInitiated)
			msgs := obs.Outputs[registration.TopicInitiated][p]
			obs.Outputs[registration.TopicInitiated][p] = append(msgs, msgs[i].Clone())
		}, nil},
		{"lost event", func(obs *chaos.Observed) {
			p, i := firstOutput(obs, registration.TopicAccepted)
			msgs := obs.Outputs[registration.TopicAccepted][p]
			obs.Outputs[registration.TopicAccepted][p] = slices.Delete(slices.Clone(msgs), i, i+1)
		}, []chaos.Invariant{chaos.Delivered, chaos.Sequenced}},
		{"duplicate in other bytes", func(obs *chaos.Observed) {
			p, i := firstOutput(obs, registration.TopicBecameActive)
			msgs := obs.Outputs[registration.TopicBecameActive][p]
			env, err := bus.DecodeEnvelope(msgs[i].Value)
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any // the same value, its keys in another order
			if err := json.Unmarshal(env.Payload, &v); err != nil {
				t.Fatal(err)
			}
			if env.Payload, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
			dup, err := bus.EnvelopeMessage(msgs[i].Topic, env, bus.WithKey(msgs[i].Key))
			if err != nil {
				t.Fatal(err)
			}
			obs.Outputs[registration.TopicBecameActive][p] = append(msgs, dup)
		}, []chaos.Invariant{chaos.Delivered}},
		{"out of order", func(obs *chaos.Observed) {
			p, i, j := twoOnOneTopic(obs, registration.TopicInitiated)
			msgs := slices.Clone(obs.Outputs[registration.TopicInitiated][p])
			msgs[i], msgs[j] = msgs[j], msgs[i]
			obs.Outputs[registration.TopicInitiated][p] = msgs
		}, []chaos.Invariant{chaos.Sequenced}},
		{"projection differs", func(obs *chaos.Observed) {
			obs.Projections[3] = obs.Projections[3].Clone()
			obs.Projections[3].UpdatedAt = obs.Projections[3].UpdatedAt.Add(time.Microsecond)
		}, []chaos.Invariant{chaos.Projected}},
		{"projection missing", func(obs *chaos.Observed) {
			obs.Projections = obs.Projections[1:]
		}, []chaos.Invariant{chaos.Projected}},
		{"projection unexpected", func(obs *chaos.Observed) {
			extra := obs.Projections[0].Clone()
			extra.EntityID = uuid.New()
			obs.Projections = append(obs.Projections, extra)
		}, []chaos.Invariant{chaos.Projected}},
		{"poison not dead-lettered", func(obs *chaos.Observed) {
			obs.DeadLetters = [][]*bus.Message{obs.DeadLetters[0][1:]}
		}, []chaos.Invariant{chaos.DeadLettered}},
		{"input dead-lettered", func(obs *chaos.Observed) {
			in := obs.Inputs[registration.TopicIntrospection][0][0]
			dl := bus.DeadLetter(registration.TopicDeadLetter, "group", in, errors.New("oops"), chaos.Clock)
			obs.DeadLetters = [][]*bus.Message{append(slices.Clone(obs.DeadLetters[0]), dl)}
		}, []chaos.Invariant{chaos.DeadLettered}},
		{"poison dead-lettered twice", func(obs *chaos.Observed) {
			obs.DeadLetters = [][]*bus.Message{append(slices.Clone(obs.DeadLetters[0]), obs.DeadLetters[0][0].Clone())}
		}, nil},
		{"stuck partition", func(obs *chaos.Observed) {
			obs.Stuck = []chaos.PartitionProgress{obs.Progress[0]}
			obs.Stuck[0].Committed = 0
		}, []chaos.Invariant{chaos.Unblocked}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, m := perfectRun(t, w)
			tc.mutate(obs)
			vs, _ := chaos.Check(w, m, obs)
			if got := invariantsOf(vs); !slices.Equal(got, tc.want) {
				t.Errorf("violated %v, want %v: %+v", got, tc.want, vs)
			}
			for _, v := range vs {
				t.Logf("invariant %d: entity %s: %s", v.Invariant, v.Entity, v.Detail)
			}
		})
	}
}

// TestModelCommittedPrefix checks that the model leaves out the inputs at
// and after a partition's committed offset, and says whose they were.
func TestModelCommittedPrefix(t *testing.T) {
	w := chaos.Generate(3, chaos.WorkloadConfig{Entities: 20, Topic: registration.TopicIntrospection, Window: time.Second})
	obs, full := perfectRun(t, w)
	red := newReducer(t)
	part := obs.Inputs[registration.TopicIntrospection][0]
	if len(part) < 2 {
		t.Skip("partition 0 has fewer than two inputs")
	}
	cut := int64(len(part) / 2)
	m, err := chaos.RunModel(red, obs.Inputs, w.Poisons, func(_ string, p int32) int64 {
		if p == 0 {
			return cut
		}
		return 1 << 62
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Decided != full.Decided-(len(part)-int(cut)) {
		t.Errorf("decided %d inputs, want %d", m.Decided, full.Decided-(len(part)-int(cut)))
	}
	first, _ := uuid.ParseBytes(part[cut].Key)
	if c := m.Uncommitted[first]; c == nil || c.Offset != cut {
		t.Errorf("uncommitted input of %s = %v, want the one at offset %d", first, c, cut)
	}
}

// TestCheckRegistry checks the registry's checker: the services of the
// active projections pass, and each way the registry can differ from them
// is a violation of Registered that names the entity.
func TestCheckRegistry(t *testing.T) {
	w := chaos.Generate(7, chaos.WorkloadConfig{Entities: 60, Topic: registration.TopicIntrospection, Window: time.Second})
	obs, _ := perfectRun(t, w)
	var active, inactive []*registration.Projection
	var services []chaos.Service
	for _, p := range obs.Projections {
		if s, ok := chaos.WantService(p); ok {
			active = append(active, p)
			services = append(services, s)
		} else {
			inactive = append(inactive, p)
		}
	}
	if len(active) < 2 || len(inactive) == 0 {
		t.Fatalf("the workload has %d active and %d other projections; want some of each", len(active), len(inactive))
	}
	if vs := chaos.CheckRegistry(obs.Projections, services, nil); len(vs) > 0 {
		t.Fatalf("the registry of the active projections has %d violations, first: %+v", len(vs), vs[0])
	}
	stray, ok := chaos.WantService(&registration.Projection{EntityID: inactive[0].EntityID, State: registration.StateActive,
		NodeType: inactive[0].NodeType, Generation: inactive[0].Generation})
	if !ok {
		t.Fatal("no service for an active projection")
	}
	first := active[0].EntityID
	edit := func(f func(s *chaos.Service)) func([]chaos.Service) []chaos.Service {
		return func(svcs []chaos.Service) []chaos.Service {
			svcs = slices.Clone(svcs)
			s := svcs[0]
			s.Meta = maps.Clone(s.Meta)
			f(&s)
			svcs[0] = s
			return svcs
		}
	}
	for _, tc := range []struct {
		name    string
		mutate  func([]chaos.Service) []chaos.Service
		entity  uuid.UUID
		pending bool
	}{
		{"missing", func(svcs []chaos.Service) []chaos.Service { return svcs[1:] }, first, false},
		{"other generation", edit(func(s *chaos.Service) { s.Meta["generation"] += "0" }), first, false},
		{"other version", edit(func(s *chaos.Service) { s.Meta["node_version"] = "0.0.1" }), first, false},
		{"other address", edit(func(s *chaos.Service) { s.Address = "10.9.9.9" }), first, false},
		{"other port", edit(func(s *chaos.Service) { s.Port++ }), first, false},
		{"other tags", edit(func(s *chaos.Service) { s.Tags = s.Tags[:1] }), first, false},
		{"no generation", edit(func(s *chaos.Service) { delete(s.Meta, "generation") }), first, false},
		{"of an inactive projection", func(svcs []chaos.Service) []chaos.Service { return append(slices.Clone(svcs), stray) }, inactive[0].EntityID, false},
		{"of an unknown node", func(svcs []chaos.Service) []chaos.Service {
			s := stray
			s.Meta = maps.Clone(s.Meta)
			s.ID, s.Meta["node_id"] = "onex-effect-unknown", uuid.NewString()
			return append(slices.Clone(svcs), s)
		}, uuid.Nil, false},
		{"of an old type", func(svcs []chaos.Service) []chaos.Service {
			s := svcs[0]
			s.ID = registration.ServiceID("old-type", first)
			return append(slices.Clone(svcs), s)
		}, first, false},
		{"missing, with records pending", func(svcs []chaos.Service) []chaos.Service { return svcs[1:] }, first, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pending map[uuid.UUID]bool
			if tc.pending {
				pending = map[uuid.UUID]bool{first: true}
			}
			vs := chaos.CheckRegistry(obs.Projections, tc.mutate(services), pending)
			if len(vs) != 1 || vs[0].Invariant != chaos.Registered {
				t.Fatalf("%d violations, want 1 of Registered: %+v", len(vs), vs)
			}
			v := vs[0]
			t.Logf("entity %s: %s", v.Entity, v.Detail)
			if tc.entity != uuid.Nil && v.Entity != tc.entity {
				t.Errorf("the violation names entity %s, want %s", v.Entity, tc.entity)
			}
			if got := strings.Contains(v.Detail, "outbox still holds records"); got != tc.pending {
				t.Errorf("the violation says the outbox holds records: %v, want %v", got, tc.pending)
			}
		})
	}

	// Check reports them only on a topology that read its registry back.
	obs.Services = services[1:]
	if vs, _ := chaos.Check(w, mustModel(t, w, obs), obs); len(vs) != 0 {
		t.Errorf("registry not read, yet %d violations: %+v", len(vs), vs)
	}
	obs.RegistryRead = true
	if vs, _ := chaos.Check(w, mustModel(t, w, obs), obs); !slices.Equal(invariantsOf(vs), []chaos.Invariant{chaos.Registered}) {
		t.Errorf("registry read with a service missing: violated %v, want %v", invariantsOf(vs), []chaos.Invariant{chaos.Registered})
	}
}

func mustModel(t *testing.T, w *chaos.Workload, obs *chaos.Observed) *chaos.Model {
	t.Helper()
	m, err := chaos.RunModel(newReducer(t), obs.Inputs, w.Poisons, func(string, int32) int64 { return 1 << 62 })
	if err != nil {
		t.Fatal(err)
	}
	return m
}
