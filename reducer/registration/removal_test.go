package registration_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// goodShutdown is a ModelNodeShutdownEvent as omnibase_core's
// create_graceful_shutdown writes it (with a zoned timestamp).
const goodShutdown = `{"event_type":"node_shutdown_event","node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","node_name":"billing",` +
	`"shutdown_reason":"graceful","shutdown_initiated_at":"2026-03-01T12:00:40Z","final_status":"stopping","uptime_seconds":7200,` +
	`"requests_processed":1000,"cleanup_actions":["closing_connections","saving_state","cleanup_resources"],"cleanup_errors":[],` +
	`"restart_expected":false,"restart_delay_seconds":null,"replacement_node_id":null,"service_id":null,"final_metrics":{},` +
	`"metadata":null,"timestamp":"2026-03-01T12:00:40.5+00:00","event_id":"5d7c0c52-7d0a-4a0e-9d0c-1d2e3f405060",` +
	`"correlation_id":"3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f","data":null}`

func shutdownInput(at time.Time) reducer.Input {
	return reducer.Input{Kind: registration.KindShutdown, EntityID: nodeID, Envelope: env(at),
		Event: &registration.Shutdown{NodeID: nodeID, Reason: registration.ShutdownGraceful, CorrelationID: corrID, Timestamp: at}}
}

// TestDecideShutdownRemoves: a shutdown newer than the projection's last
// change removes a known node in every state: one guarded delete (the
// state, generation, updated_at and node type it read), a Consul
// deregister of the generation when the node may be registered there
// (active, ack_received), a tombstone of the node on the snapshot topic,
// and no other event; Evolve then gives no projection.
func TestDecideShutdownRemoves(t *testing.T) {
	r := newReducer(t)
	at := t0.Add(time.Minute)
	for _, st := range registration.States() {
		t.Run(string(st), func(t *testing.T) {
			p := projection(st)
			d := r.Decide(p, shutdownInput(at), at)
			if d.IsNoop() || d.Warn {
				t.Fatalf("decision %+v: want a removal, not warned", d)
			}
			checkDecisionMarshals(t, d)
			if d.Intents[0].Type != registration.IntentDelete {
				t.Fatalf("first intent %s, want %s", d.Intents[0].Type, registration.IntentDelete)
			}
			del, ok := d.Intents[0].Payload.(*registration.DeleteRegistration)
			if !ok {
				t.Fatalf("delete payload %T", d.Intents[0].Payload)
			}
			want := registration.DeleteRegistration{EntityID: nodeID, Domain: registration.DefaultDomain, ExpectedState: st,
				Guard:         registration.ColGeneration | registration.ColUpdatedAt | registration.ColNodeType,
				Expected:      registration.Projection{Generation: p.Generation, UpdatedAt: p.UpdatedAt, NodeType: p.NodeType},
				CorrelationID: corrID}
			if got, _ := json.Marshal(del); string(got) != string(must(json.Marshal(&want))) {
				t.Errorf("delete %s\nwant   %s", got, must(json.Marshal(&want)))
			}
			if err := del.Validate(); err != nil {
				t.Error(err)
			}
			registered := st == registration.StateActive || st == registration.StateAckReceived
			var dereg *registration.ConsulDeregister
			for _, in := range d.Intents[1:] {
				if in.Type != registration.IntentConsulDereg {
					t.Errorf("unexpected intent %s", in.Type)
					continue
				}
				dereg = in.Payload.(*registration.ConsulDeregister)
			}
			switch {
			case registered && dereg == nil:
				t.Error("no consul.deregister for a node that may be registered in Consul")
			case !registered && dereg != nil:
				t.Errorf("consul.deregister in state %s, where the node is not registered", st)
			case dereg != nil && (dereg.Generation != p.Generation || dereg.NodeType != p.NodeType || dereg.NodeID != nodeID):
				t.Errorf("deregister %+v, want generation %d of %s", dereg, p.Generation, p.NodeType)
			}
			if len(d.Events) != 1 {
				t.Fatalf("%d events, want the tombstone only", len(d.Events))
			}
			ev := d.Events[0]
			if !ev.Tombstone || ev.Topic != registration.TopicSnapshot || string(ev.PartitionKey()) != nodeID.String() {
				t.Errorf("event %+v: want a tombstone keyed by the node on %s", ev, registration.TopicSnapshot)
			}
			if next := r.Evolve(p, shutdownInput(at), d); next != nil {
				t.Errorf("Evolve after a removal = %+v, want nil (no projection)", next)
			}
			if next, res, err := registration.ApplyDelete(p, del); next != nil || res.Status != intent.Applied || err != nil {
				t.Errorf("ApplyDelete on the row it read = %v, %v, %v", next, res, err)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestDecideShutdownNoops: a stale shutdown (not newer than updated_at)
// and a shutdown of an unknown node change nothing and are not warned
// (duplicates are ordinary at-least-once noise).
func TestDecideShutdownNoops(t *testing.T) {
	r := newReducer(t)
	p := projection(registration.StateActive)
	for name, c := range map[string]struct {
		p  *registration.Projection
		at time.Time
	}{
		"unknown":          {nil, t0},
		"stale":            {p, p.UpdatedAt.Add(-time.Second)},
		"same as updated":  {p, p.UpdatedAt},
		"unknown, far old": {nil, bus.MinTime},
	} {
		t.Run(name, func(t *testing.T) {
			d := r.Decide(c.p, shutdownInput(c.at), c.at)
			if !d.IsNoop() || d.Warn || d.Reason == "" {
				t.Errorf("decision %+v: want an unwarned no-op with a reason", d)
			}
		})
	}
}

// TestDecideAfterRemoval: after a removal the reducer has no projection:
// a heartbeat is a warned no-op, a timeout check a no-op, an ack a warned
// no-op, and an introspection registers from scratch (generation 1,
// awaiting_ack, Initiated and Accepted, a snapshot).
func TestDecideAfterRemoval(t *testing.T) {
	r := newReducer(t)
	at := t0.Add(time.Minute)
	p := projection(registration.StateActive)
	gone := r.Evolve(p, reducer.Input{}, r.Decide(p, shutdownInput(at), at))
	if gone != nil {
		t.Fatalf("projection after removal: %+v", gone)
	}
	later := at.Add(time.Second)
	hb := r.Decide(gone, reducer.Input{EntityID: nodeID, Envelope: env(later), Event: &registration.Heartbeat{NodeID: nodeID, Timestamp: later}}, later)
	if !hb.IsNoop() || !hb.Warn {
		t.Errorf("heartbeat after removal: %+v, want a warned no-op", hb)
	}
	for _, k := range []registration.TimeoutKind{registration.TimeoutAck, registration.TimeoutLiveness} {
		tc := r.Decide(gone, reducer.Input{EntityID: nodeID, Envelope: env(later),
			Event: &registration.TimeoutCheck{EntityID: nodeID, Kind: k, DeadlineAt: at, CheckedAt: later}}, later)
		if !tc.IsNoop() || tc.Warn {
			t.Errorf("%s timeout check after removal: %+v, want an unwarned no-op", k, tc)
		}
	}
	ack := r.Decide(gone, reducer.Input{EntityID: nodeID, Envelope: env(later),
		Event: &registration.Ack{NodeID: nodeID, CorrelationID: corrID, Timestamp: later}}, later)
	if !ack.IsNoop() || !ack.Warn {
		t.Errorf("ack after removal: %+v, want a warned no-op", ack)
	}
	in := introspection()
	in.Timestamp = later
	d := r.Decide(gone, reducer.Input{EntityID: nodeID, Envelope: env(later), Event: in}, later)
	if d.State != string(registration.StateAwaitingAck) {
		t.Fatalf("introspection after removal: %+v", d)
	}
	up := d.Intents[0].Payload.(*registration.UpsertRegistration)
	if up.ExpectedState != registration.StateNone || up.Projection.Generation != 1 {
		t.Errorf("re-registration upsert expects %s at generation %d, want none at 1", up.ExpectedState, up.Projection.Generation)
	}
	var types []string
	for _, e := range d.Events {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "NodeRegistrationInitiated,NodeRegistrationAccepted,"+registration.EventSnapshot {
		t.Errorf("events %s", got)
	}
	// A duplicate of the shutdown, delivered after the removal, is a
	// no-op without a warning.
	if dup := r.Decide(gone, shutdownInput(at), at); !dup.IsNoop() || dup.Warn {
		t.Errorf("duplicate shutdown: %+v", dup)
	}
}

// TestDecideShutdownConfig: without snapshots there is no tombstone;
// without Consul no deregister; the delete stays.
func TestDecideShutdownConfig(t *testing.T) {
	r, err := registration.New(registration.Config{DisableSnapshots: true, DisableConsul: true})
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	d := r.Decide(projection(registration.StateActive), shutdownInput(at), at)
	if len(d.Events) != 0 || len(d.Intents) != 1 || d.Intents[0].Type != registration.IntentDelete {
		t.Errorf("decision %+v: want the delete alone", d)
	}
}

// TestDecodeShutdown reads ONEX's ModelNodeShutdownEvent, by topic and by
// each event type it may carry, and refuses invalid fields with a
// DecodeError naming them; MarshalJSON writes what DecodeShutdown reads,
// with ONEX's field names and event type.
func TestDecodeShutdown(t *testing.T) {
	r := newReducer(t)
	e := &bus.Envelope{EnvelopeID: envID, EnvelopeTimestamp: t0, Payload: json.RawMessage(goodShutdown)}
	for _, c := range []struct{ topic, eventType string }{
		{registration.TopicShutdown, ""}, {"other", registration.EventTypeShutdown},
		{"other", "NodeShutdownEvent"}, {"other", "ModelNodeShutdownEvent"}, {"other", registration.TopicShutdown},
	} {
		e.EventType = c.eventType
		in, err := r.Decode(c.topic, e)
		if err != nil || in.Kind != registration.KindShutdown || in.EntityID != nodeID {
			t.Fatalf("decode on %s as %q: %+v, %v", c.topic, c.eventType, in, err)
		}
	}
	s, err := registration.DecodeShutdown([]byte(goodShutdown))
	if err != nil {
		t.Fatal(err)
	}
	want := registration.Shutdown{NodeID: nodeID, NodeName: "billing", Reason: "graceful", FinalStatus: "stopping",
		EventID: uuid.MustParse("5d7c0c52-7d0a-4a0e-9d0c-1d2e3f405060"), CorrelationID: corrID,
		Timestamp: time.Date(2026, 3, 1, 12, 0, 40, 500000000, time.UTC)}
	if *s != want {
		t.Errorf("decoded %+v\nwant    %+v", *s, want)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"event_type", "node_id", "node_name", "shutdown_reason", "shutdown_initiated_at", "final_status", "restart_expected", "event_id", "correlation_id", "timestamp"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("MarshalJSON left out %s: %s", f, raw)
		}
	}
	if fields["event_type"] != "node_shutdown_event" {
		t.Errorf("event_type %v", fields["event_type"])
	}
	again, err := registration.DecodeShutdown(raw)
	if err != nil || *again != *s {
		t.Errorf("round trip of %s: %+v, %v", raw, again, err)
	}
	minimal, err := registration.DecodeShutdown([]byte(`{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","timestamp":"2026-03-01T12:00:00Z"}`))
	if err != nil || minimal.Reason != "" || minimal.CorrelationID != uuid.Nil {
		t.Errorf("minimal shutdown: %+v, %v", minimal, err)
	}
	for field, payload := range map[string]string{
		"payload.node_id":          `{"timestamp":"2026-03-01T12:00:00Z"}`,
		"payload.timestamp":        `{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","timestamp":"2026-03-01T12:00:00"}`,
		"payload.correlation_id":   `{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","timestamp":"2026-03-01T12:00:00Z","correlation_id":"x"}`,
		"payload.restart_expected": `{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","timestamp":"2026-03-01T12:00:00Z","restart_expected":"yes"}`,
		"payload":                  `[]`,
	} {
		_, err := registration.DecodeShutdown([]byte(payload))
		var de *bus.DecodeError
		if !errorsAs(err, &de) || de.Field != field {
			t.Errorf("%s: error %v, want a DecodeError naming %s", payload, err, field)
		}
	}
}

// FuzzDecodeShutdown: whatever DecodeShutdown accepts has a node id and a
// time in bounds, marshals, and reads back the same.
func FuzzDecodeShutdown(f *testing.F) {
	f.Add([]byte(goodShutdown))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := registration.DecodeShutdown(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if s.NodeID == uuid.Nil {
			t.Fatal("accepted the nil node id")
		}
		checkTimes(t, s.Timestamp)
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := registration.DecodeShutdown(raw)
		if err != nil || again.NodeID != s.NodeID || !again.Timestamp.Equal(s.Timestamp) || again.Reason != s.Reason ||
			again.NodeName != s.NodeName || again.CorrelationID != s.CorrelationID || again.RestartExpected != s.RestartExpected {
			t.Fatalf("round trip of %s: %+v, %v", raw, again, err)
		}
	})
}
