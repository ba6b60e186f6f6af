package registration_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	nodeID  = uuid.MustParse("7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10")
	corrID  = uuid.MustParse("3f1e9a50-8f3c-4d0e-b2a4-5a6b7c8d9e0f")
	envID   = uuid.MustParse("00000000-0000-4000-8000-0000000000e1")
	priorID = uuid.MustParse("00000000-0000-4000-8000-0000000000aa")
)

func newReducer(t *testing.T) *registration.Reducer {
	t.Helper()
	r, err := registration.New(registration.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func env(at time.Time) *bus.Envelope {
	return &bus.Envelope{EnvelopeID: envID, EnvelopeTimestamp: at, CorrelationID: corrID, Payload: json.RawMessage(`{}`)}
}

func introspection() *registration.Introspection {
	return &registration.Introspection{
		NodeID: nodeID, NodeType: "effect", NodeVersion: bus.Version{Major: 1, Minor: 2, Patch: 3},
		Capabilities:  json.RawMessage(`{"postgres":true}`),
		Endpoints:     map[string]string{"health": "http://10.0.0.5:8080/health"},
		CorrelationID: corrID, Timestamp: t0,
	}
}

// projection returns a stored projection in state s, registered at t0 - 1m.
func projection(s registration.State) *registration.Projection {
	reg := t0.Add(-time.Minute)
	p := &registration.Projection{
		EntityID: nodeID, Domain: registration.DefaultDomain, State: s, NodeType: "effect", NodeVersion: "1.2.3",
		Capabilities: json.RawMessage(`{"postgres":true}`), Endpoints: map[string]string{"health": "http://10.0.0.5:8080/health"},
		AckDeadline: reg.Add(30 * time.Second), LastAppliedEventID: priorID,
		RegisteredAt: reg, UpdatedAt: reg, CorrelationID: corrID, Generation: 3,
	}
	switch s {
	case registration.StateActive:
		p.LivenessDeadline = t0.Add(-10 * time.Second)
		p.LastHeartbeatAt = t0.Add(-100 * time.Second)
	case registration.StateAckTimedOut:
		p.AckTimeoutEmittedAt = reg.Add(31 * time.Second)
	case registration.StateLivenessExpired:
		p.LivenessTimeoutEmittedAt = t0.Add(-5 * time.Second)
	}
	return p
}

type row struct {
	name  string
	state *registration.Projection
	event any
	now   time.Time
	// want: the decided state ("" unchanged) and whether it is a no-op.
	wantState string
	wantNoop  bool
}

func rows() []row {
	ack := &registration.Ack{CommandID: uuid.MustParse("11111111-1111-4111-8111-111111111111"), NodeID: nodeID, CorrelationID: corrID, Timestamp: t0}
	hb := &registration.Heartbeat{NodeID: nodeID, NodeType: "effect", UptimeSeconds: 120, Timestamp: t0}
	ackCheck := &registration.TimeoutCheck{EntityID: nodeID, Kind: registration.TimeoutAck, DeadlineAt: t0.Add(-30 * time.Second), CheckedAt: t0}
	livCheck := &registration.TimeoutCheck{EntityID: nodeID, Kind: registration.TimeoutLiveness, DeadlineAt: t0.Add(-10 * time.Second), CheckedAt: t0}
	awaitingLate := projection(registration.StateAwaitingAck)
	awaitingOnTime := projection(registration.StateAwaitingAck)
	awaitingOnTime.AckDeadline = t0.Add(time.Second)
	activeAlive := projection(registration.StateActive)
	activeAlive.LivenessDeadline = t0.Add(time.Minute)
	markedAck := projection(registration.StateAwaitingAck)
	markedAck.AckTimeoutEmittedAt = t0.Add(-time.Second)
	return []row{
		{name: "introspection/none", event: introspection(), now: t0, wantState: "awaiting_ack"},
		{name: "introspection/ack_timed_out", state: projection(registration.StateAckTimedOut), event: introspection(), now: t0, wantState: "awaiting_ack"},
		{name: "introspection/liveness_expired", state: projection(registration.StateLivenessExpired), event: introspection(), now: t0, wantState: "awaiting_ack"},
		{name: "introspection/rejected", state: projection(registration.StateRejected), event: introspection(), now: t0, wantState: "awaiting_ack"},
		{name: "introspection/awaiting_ack", state: projection(registration.StateAwaitingAck), event: introspection(), now: t0, wantNoop: true},
		{name: "introspection/accepted", state: projection(registration.StateAccepted), event: introspection(), now: t0, wantNoop: true},
		{name: "introspection/pending_registration", state: projection(registration.StatePendingRegistration), event: introspection(), now: t0, wantNoop: true},
		{name: "introspection/ack_received", state: projection(registration.StateAckReceived), event: introspection(), now: t0, wantNoop: true},
		{name: "introspection/active", state: projection(registration.StateActive), event: introspection(), now: t0},
		{name: "introspection/active_new_type", state: projection(registration.StateActive), event: func() *registration.Introspection {
			in := introspection()
			in.NodeType = "compute"
			return in
		}(), now: t0},
		{name: "introspection/active_stale", state: projection(registration.StateActive), event: introspection(), now: t0.Add(-2 * time.Minute), wantNoop: true},
		{name: "introspection/liveness_expired_stale", state: projection(registration.StateLivenessExpired), event: introspection(), now: t0.Add(-time.Minute), wantNoop: true},
		{name: "ack/awaiting_ack", state: projection(registration.StateAwaitingAck), event: ack, now: t0, wantState: "active"},
		{name: "ack/accepted", state: projection(registration.StateAccepted), event: ack, now: t0, wantState: "active"},
		{name: "ack/awaiting_ack_stale", state: projection(registration.StateAwaitingAck), event: ack, now: t0.Add(-2 * time.Minute), wantNoop: true},
		{name: "ack/active", state: projection(registration.StateActive), event: ack, now: t0, wantNoop: true},
		{name: "ack/ack_received", state: projection(registration.StateAckReceived), event: ack, now: t0, wantNoop: true},
		{name: "ack/none", event: ack, now: t0, wantNoop: true},
		{name: "ack/ack_timed_out", state: projection(registration.StateAckTimedOut), event: ack, now: t0, wantNoop: true},
		{name: "ack/liveness_expired", state: projection(registration.StateLivenessExpired), event: ack, now: t0, wantNoop: true},
		{name: "ack/rejected", state: projection(registration.StateRejected), event: ack, now: t0, wantNoop: true},
		{name: "ack/pending_registration", state: projection(registration.StatePendingRegistration), event: ack, now: t0, wantNoop: true},
		{name: "heartbeat/active", state: projection(registration.StateActive), event: hb, now: t0},
		{name: "heartbeat/active_stale", state: func() *registration.Projection {
			p := projection(registration.StateActive)
			p.LastHeartbeatAt = t0
			return p
		}(), event: hb, now: t0, wantNoop: true},
		{name: "heartbeat/none", event: hb, now: t0, wantNoop: true},
		{name: "heartbeat/awaiting_ack", state: projection(registration.StateAwaitingAck), event: hb, now: t0, wantNoop: true},
		{name: "heartbeat/liveness_expired", state: projection(registration.StateLivenessExpired), event: hb, now: t0, wantNoop: true},
		{name: "heartbeat/ack_timed_out", state: projection(registration.StateAckTimedOut), event: hb, now: t0, wantNoop: true},
		{name: "timeout_ack/awaiting_ack_overdue", state: awaitingLate, event: ackCheck, now: t0, wantState: "ack_timed_out"},
		{name: "timeout_ack/accepted_overdue", state: func() *registration.Projection {
			p := projection(registration.StateAccepted)
			return p
		}(), event: ackCheck, now: t0, wantState: "ack_timed_out"},
		{name: "timeout_ack/awaiting_ack_not_due", state: awaitingOnTime, event: ackCheck, now: t0, wantNoop: true},
		{name: "timeout_ack/marker_set", state: markedAck, event: ackCheck, now: t0, wantNoop: true},
		{name: "timeout_ack/active", state: projection(registration.StateActive), event: ackCheck, now: t0, wantNoop: true},
		{name: "timeout_ack/none", event: ackCheck, now: t0, wantNoop: true},
		{name: "timeout_liveness/active_overdue", state: projection(registration.StateActive), event: livCheck, now: t0, wantState: "liveness_expired"},
		{name: "timeout_liveness/active_alive", state: activeAlive, event: livCheck, now: t0, wantNoop: true},
		{name: "timeout_liveness/awaiting_ack", state: projection(registration.StateAwaitingAck), event: livCheck, now: t0, wantNoop: true},
		{name: "timeout_liveness/liveness_expired", state: projection(registration.StateLivenessExpired), event: livCheck, now: t0, wantNoop: true},
	}
}

// TestDecideNodeTypeChangeDeregistersOldService: a metadata refresh that
// changes an active node's type deregisters the service of the old type
// (its id names the type) before it registers the new one, in the same
// decision and generation; a refresh of the same type deregisters nothing.
func TestDecideNodeTypeChangeDeregistersOldService(t *testing.T) {
	r := newReducer(t)
	in := introspection()
	in.NodeType = "compute"
	d := r.Decide(projection(registration.StateActive), reducer.Input{Event: in, Envelope: env(t0)}, t0)
	if len(d.Intents) != 3 {
		t.Fatalf("refresh with a new type: %d intents, want upsert, deregister, register", len(d.Intents))
	}
	dereg, ok := d.Intents[1].Payload.(*registration.ConsulDeregister)
	if !ok || dereg.NodeType != "effect" || dereg.Generation != 3 || dereg.NodeID != nodeID {
		t.Errorf("second intent: %+v, want the deregister of the effect service, generation 3", d.Intents[1].Payload)
	}
	reg, ok := d.Intents[2].Payload.(*registration.ConsulRegister)
	if !ok || reg.NodeType != "compute" || reg.Generation != 3 {
		t.Errorf("third intent: %+v, want the register of the compute service, generation 3", d.Intents[2].Payload)
	}
	if registration.ServiceID(dereg.NodeType, nodeID) == registration.ServiceID(reg.NodeType, nodeID) {
		t.Error("old and new service ids are equal")
	}
	same := r.Decide(projection(registration.StateActive), reducer.Input{Event: introspection(), Envelope: env(t0)}, t0)
	for _, in := range same.Intents {
		if in.Type == registration.IntentConsulDereg {
			t.Errorf("refresh of the same type deregisters: %+v", in.Payload)
		}
	}
}

// TestDecideGolden checks the decision of every row of the state table
// against its golden file (go test -update rewrites them).
func TestDecideGolden(t *testing.T) {
	r := newReducer(t)
	for _, tc := range rows() {
		t.Run(tc.name, func(t *testing.T) {
			in := reducer.Input{EntityID: nodeID, Event: tc.event, Envelope: env(tc.now)}
			d := r.Decide(tc.state, in, tc.now)
			if d.State != tc.wantState {
				t.Errorf("state = %q, want %q", d.State, tc.wantState)
			}
			if d.IsNoop() != tc.wantNoop {
				t.Errorf("no-op = %v, want %v (reason %q)", d.IsNoop(), tc.wantNoop, d.Reason)
			}
			if d.IsNoop() && d.Reason == "" {
				t.Error("a no-op without a reason")
			}
			// The same arguments always give the same decision.
			again := r.Decide(tc.state, in, tc.now)
			if a, b := render(t, d), render(t, again); !bytes.Equal(a, b) {
				t.Errorf("Decide is not deterministic:\n%s\n%s", a, b)
			}
			// A node input is decided at its envelope's timestamp,
			// whatever the deciding clock says.
			if _, check := tc.event.(*registration.TimeoutCheck); !check {
				for _, skew := range []time.Duration{time.Hour, -time.Hour} {
					other := r.Decide(tc.state, in, tc.now.Add(skew))
					if a, b := render(t, d), render(t, other); !bytes.Equal(a, b) {
						t.Errorf("a node input decided with the clock %v off differs:\n%s\n%s", skew, a, b)
					}
				}
			}
			golden(t, filepath.Join("testdata", "golden", strings.ReplaceAll(tc.name, "/", "__")+".json"), render(t, d))
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decision differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// render writes a decision as indented JSON: events with their keys and
// payloads, intents with their payloads, update column sets by name.
func render(t *testing.T, d reducer.Decision) []byte {
	t.Helper()
	type ev struct {
		Topic, Type, Key string
		Payload          any
		Metadata         json.RawMessage `json:",omitempty"`
	}
	type in struct {
		Type, Target string
		Payload      any
	}
	out := struct {
		State, Reason string
		Events        []ev
		Intents       []in
	}{State: d.State, Reason: d.Reason}
	for _, e := range d.Events {
		out.Events = append(out.Events, ev{e.Topic, e.Type, string(e.PartitionKey()), e.Payload, e.Metadata})
	}
	for _, i := range d.Intents {
		out.Intents = append(out.Intents, in{i.Type, i.Target, renderPayload(i.Payload)})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func renderPayload(p any) any {
	switch pl := p.(type) {
	case *registration.UpdateRegistration:
		vals := map[string]any{}
		for c := range pl.Set.Each() {
			vals[c.Name()] = pl.Values.Value(c)
		}
		guard := map[string]any{}
		for c := range pl.Guard.Each() {
			guard[c.Name()] = pl.Expected.Value(c)
		}
		return map[string]any{"entity_id": pl.EntityID, "domain": pl.Domain, "expected_state": pl.ExpectedState, "set": vals, "guard": guard}
	case *registration.UpsertRegistration:
		return map[string]any{"columns": pl.Columns.String(), "expected_state": pl.ExpectedState, "projection": pl.Projection}
	}
	return p
}

func TestDecideHeartbeatGuards(t *testing.T) {
	r := newReducer(t)
	p := projection(registration.StateActive)
	hbAt := t0
	d := r.Decide(p, reducer.Input{Event: &registration.Heartbeat{NodeID: nodeID, UptimeSeconds: 1, Timestamp: hbAt}, Envelope: env(t0)}, t0)
	if len(d.Intents) == 0 {
		t.Fatalf("no intents: %q", d.Reason)
	}
	u, ok := d.Intents[0].Payload.(*registration.UpdateRegistration)
	if !ok {
		t.Fatalf("payload %T", d.Intents[0].Payload)
	}
	if !u.Set.Has(registration.ColLastHeartbeatAt) || !u.Values.LastHeartbeatAt.Equal(hbAt) {
		t.Errorf("heartbeat update sets %v = %v, want last_heartbeat_at %v", u.Set, u.Values.LastHeartbeatAt, hbAt)
	}
	if u.ExpectedState != registration.StateActive {
		t.Errorf("expected state guard %q, want active", u.ExpectedState)
	}
	if want := hbAt.Add(registration.DefaultLivenessWindow); !u.Values.LivenessDeadline.Equal(want) {
		t.Errorf("liveness deadline %v, want %v", u.Values.LivenessDeadline, want)
	}
	if len(d.Events) != 0 {
		t.Errorf("a heartbeat published %d events", len(d.Events))
	}
}

func TestDecideStateChangesCarryExpectedState(t *testing.T) {
	r := newReducer(t)
	for _, tc := range rows() {
		if tc.wantState == "" || tc.state == nil {
			continue
		}
		d := r.Decide(tc.state, reducer.Input{Event: tc.event, Envelope: env(tc.now)}, tc.now)
		switch pl := d.Intents[0].Payload.(type) {
		case *registration.UpdateRegistration:
			if pl.ExpectedState != tc.state.State {
				t.Errorf("%s: update expects %q, the decision saw %q", tc.name, pl.ExpectedState, tc.state.State)
			}
			if pl.Values.LastAppliedEventID != envID {
				t.Errorf("%s: state change does not record the causing envelope", tc.name)
			}
		case *registration.UpsertRegistration:
			if pl.ExpectedState != tc.state.State {
				t.Errorf("%s: upsert expects %q, the decision saw %q", tc.name, pl.ExpectedState, tc.state.State)
			}
		default:
			t.Errorf("%s: first intent payload %T", tc.name, pl)
		}
	}
}

// TestDecideUpdatesGuardWhatTheyRead: every update the reducer emits
// guards the columns its decision read, with the values it read, so that
// it applies to the row it was decided on and to no other.
func TestDecideUpdatesGuardWhatTheyRead(t *testing.T) {
	r := newReducer(t)
	want := map[string]registration.Columns{
		"ack/":              registration.ColGeneration | registration.ColUpdatedAt,
		"heartbeat/":        registration.ColLivenessDeadline | registration.ColUpdatedAt,
		"timeout_ack/":      registration.ColAckDeadline | registration.ColAckTimeoutEmittedAt,
		"timeout_liveness/": registration.ColLivenessDeadline | registration.ColLastHeartbeatAt | registration.ColLivenessTimeoutEmittedAt | registration.ColNodeType | registration.ColGeneration,
	}
	seen := 0
	for _, tc := range rows() {
		d := r.Decide(tc.state, reducer.Input{Event: tc.event, Envelope: env(tc.now)}, tc.now)
		for _, in := range d.Intents {
			u, ok := in.Payload.(*registration.UpdateRegistration)
			if !ok {
				continue
			}
			seen++
			prefix := tc.name[:strings.Index(tc.name, "/")+1]
			if u.Guard != want[prefix] {
				t.Errorf("%s: guard %v, want %v", tc.name, u.Guard, want[prefix])
			}
			// The guards hold on the row decided on, and on no row that
			// differs in one of their columns.
			if res := u.Check(tc.state); res.Status != intent.Applied {
				t.Errorf("%s: the guards fail on the row decided on: %v (%s)", tc.name, res.Status, res.Reason)
			}
			for c := range u.Guard.Each() {
				changed := *tc.state
				switch c {
				case registration.ColNodeType:
					changed.NodeType += "-changed"
				case registration.ColGeneration:
					changed.Generation++
				case registration.ColAckDeadline:
					changed.AckDeadline = changed.AckDeadline.Add(time.Second)
				case registration.ColLivenessDeadline:
					changed.LivenessDeadline = changed.LivenessDeadline.Add(time.Second)
				case registration.ColLastHeartbeatAt:
					changed.LastHeartbeatAt = changed.LastHeartbeatAt.Add(-time.Second)
				case registration.ColUpdatedAt:
					changed.UpdatedAt = changed.UpdatedAt.Add(-time.Second)
				case registration.ColAckTimeoutEmittedAt:
					changed.AckTimeoutEmittedAt = t0
				case registration.ColLivenessTimeoutEmittedAt:
					changed.LivenessTimeoutEmittedAt = t0
				}
				if res := u.Check(&changed); res.Status != intent.Conflict || !strings.Contains(res.Reason, c.Name()) {
					t.Errorf("%s: row with another %s: %v (%s), want a conflict naming it", tc.name, c.Name(), res.Status, res.Reason)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no update decided")
	}
}

// TestDecideTimeoutsAtTheDecidingClock: a timeout check is decided at the
// deciding process's clock, not at the sweeper's (failure 11). A sweeper
// whose clock runs an hour ahead cannot expire a healthy node; an expiry
// writes the deciding clock as its marker, so the node's next
// introspection starts a new registration at once.
func TestDecideTimeoutsAtTheDecidingClock(t *testing.T) {
	r := newReducer(t)
	ahead := t0.Add(time.Hour) // the sweeper's clock
	check := func(kind registration.TimeoutKind, deadline time.Time) reducer.Input {
		return reducer.Input{EntityID: nodeID, Event: &registration.TimeoutCheck{EntityID: nodeID, Kind: kind,
			DeadlineAt: deadline, CheckedAt: ahead}, Envelope: env(ahead)}
	}
	t.Run("a healthy node is not expired by a check stamped ahead", func(t *testing.T) {
		alive := projection(registration.StateActive)
		alive.LivenessDeadline = t0.Add(time.Minute)
		if d := r.Decide(alive, check(registration.TimeoutLiveness, alive.LivenessDeadline), t0); !d.IsNoop() || !strings.Contains(d.Reason, "not passed") {
			t.Errorf("liveness check: state %q, reason %q; want a no-op, deadline not passed", d.State, d.Reason)
		}
		waiting := projection(registration.StateAwaitingAck)
		waiting.AckDeadline = t0.Add(time.Second)
		if d := r.Decide(waiting, check(registration.TimeoutAck, waiting.AckDeadline), t0); !d.IsNoop() || !strings.Contains(d.Reason, "not passed") {
			t.Errorf("ack check: state %q, reason %q; want a no-op, deadline not passed", d.State, d.Reason)
		}
	})
	t.Run("a check is judged against the row's deadline, not its own", func(t *testing.T) {
		alive := projection(registration.StateActive)
		alive.LivenessDeadline = t0.Add(time.Minute)
		if d := r.Decide(alive, check(registration.TimeoutLiveness, t0.Add(-time.Hour)), t0); !d.IsNoop() {
			t.Errorf("check of an old deadline: state %q; want a no-op", d.State)
		}
		late := projection(registration.StateActive) // deadline t0 - 10 s
		if d := r.Decide(late, check(registration.TimeoutLiveness, t0.Add(time.Hour)), t0); d.State != string(registration.StateLivenessExpired) {
			t.Errorf("check of a later deadline than the row's: state %q (%s); want liveness_expired", d.State, d.Reason)
		}
	})
	t.Run("an expiry writes the deciding clock; the next introspection registers", func(t *testing.T) {
		for _, kind := range []registration.TimeoutKind{registration.TimeoutLiveness, registration.TimeoutAck} {
			p := projection(registration.StateActive)
			if kind == registration.TimeoutAck {
				p = projection(registration.StateAwaitingAck)
			}
			in := check(kind, ahead)
			d := r.Decide(p, in, t0)
			if d.IsNoop() || len(d.Events) != 2 || d.Events[1].Type != registration.EventSnapshot {
				t.Fatalf("%s: %q, %d events (%s); want an expiry", kind, d.State, len(d.Events), d.Reason)
			}
			u := d.Intents[0].Payload.(*registration.UpdateRegistration)
			marker := u.Values.LivenessTimeoutEmittedAt
			if kind == registration.TimeoutAck {
				marker = u.Values.AckTimeoutEmittedAt
			}
			if !marker.Equal(t0) {
				t.Errorf("%s: marker %v, want the deciding clock %v", kind, marker, t0)
			}
			if b, err := json.Marshal(d.Events); err != nil || !strings.Contains(string(b), `"emitted_at":"`+t0.Format(time.RFC3339)+`"`) {
				t.Errorf("%s: event not emitted at the deciding clock: %s", kind, b)
			}
			expired := r.Evolve(p, in, d)
			intro := reducer.Input{EntityID: nodeID, Event: introspection(), Envelope: env(t0.Add(time.Millisecond))}
			// The deciding clock does not matter to a node input.
			if d := r.Decide(expired, intro, t0.Add(-time.Hour)); d.State != string(registration.StateAwaitingAck) {
				t.Errorf("%s: introspection right after the expiry: state %q (%s); want awaiting_ack", kind, d.State, d.Reason)
			}
		}
	})
}

// TestDecideRedeliveryIsNoop: a message decided and applied before decides
// nothing when it comes again; the runtime's outbox, not a replay of the
// decision, carries what its first delivery left undone.
func TestDecideRedeliveryIsNoop(t *testing.T) {
	r := newReducer(t)
	for _, tc := range rows() {
		if tc.wantState == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			in := reducer.Input{EntityID: nodeID, Event: tc.event, Envelope: env(tc.now)}
			first := r.Decide(tc.state, in, tc.now)
			after := r.Evolve(tc.state, in, first)
			if after == nil || string(after.State) != tc.wantState {
				t.Fatalf("after applying: %+v", after)
			}
			again := r.Decide(after, in, tc.now)
			if !again.IsNoop() || again.Reason == "" {
				t.Errorf("redelivery decided %+v", again)
			}
		})
	}
}

func TestDecodeByTopicAndEventType(t *testing.T) {
	r := newReducer(t)
	payload, _ := json.Marshal(introspection())
	e := &bus.Envelope{EnvelopeID: envID, EnvelopeTimestamp: t0, Payload: payload}
	in, err := r.Decode(registration.TopicIntrospection, e)
	if err != nil || in.Kind != registration.KindIntrospection || in.EntityID != nodeID {
		t.Fatalf("by topic: %+v, %v", in, err)
	}
	e.EventType = "ModelNodeIntrospectionEvent"
	if in, err = r.Decode("some.other.topic", e); err != nil || in.Kind != registration.KindIntrospection {
		t.Fatalf("by event type: %+v, %v", in, err)
	}
	e.EventType = "NodeRebooted"
	_, err = r.Decode(registration.TopicIntrospection, e)
	var de *bus.DecodeError
	if !errorsAs(err, &de) || de.Field != "event_type" || !strings.Contains(err.Error(), "NodeRebooted") {
		t.Fatalf("unknown event type: %v", err)
	}
	e.EventType = ""
	if _, err = r.Decode("unknown.topic", e); err == nil {
		t.Fatal("a message on an unknown topic without event type decoded")
	}
}

func BenchmarkDecideHeartbeat(b *testing.B) {
	r, err := registration.New(registration.Config{})
	if err != nil {
		b.Fatal(err)
	}
	p := projection(registration.StateActive)
	p.LastHeartbeatAt = t0
	e := env(t0)
	hb := &registration.Heartbeat{NodeID: nodeID, UptimeSeconds: 1}
	in := reducer.Input{EntityID: nodeID, Event: hb, Envelope: e}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Heartbeats every 10 s: every third one also passes the TTL check.
		hb.Timestamp = t0.Add(time.Duration(i+1) * 10 * time.Second)
		d := r.Decide(p, in, hb.Timestamp)
		if len(d.Intents) == 0 {
			b.Fatal(d.Reason)
		}
	}
}

// TestDecideHeartbeatAllocs pins the hot path's allocation budget: at most
// two per heartbeat decision, TTL pass included.
func TestDecideHeartbeatAllocs(t *testing.T) {
	r := newReducer(t)
	p := projection(registration.StateActive)
	p.LastHeartbeatAt = t0
	hb := &registration.Heartbeat{NodeID: nodeID, UptimeSeconds: 1}
	in := reducer.Input{EntityID: nodeID, Event: hb, Envelope: env(t0)}
	i := 0
	allocs := testing.AllocsPerRun(300, func() {
		i++
		hb.Timestamp = t0.Add(time.Duration(i) * 10 * time.Second)
		_ = r.Decide(p, in, hb.Timestamp)
	})
	if allocs > 2 {
		t.Errorf("%.1f allocations per heartbeat decision, want at most 2", allocs)
	}
}
