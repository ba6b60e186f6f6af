package registration_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// snapshotOf returns the decision's snapshot event, failing unless it is
// exactly one, the last event, keyed by the node.
func snapshotOf(t *testing.T, d reducer.Decision) (*registration.Snapshot, reducer.Event) {
	t.Helper()
	var found []reducer.Event
	for _, ev := range d.Events {
		if ev.Type == registration.EventSnapshot {
			found = append(found, ev)
		}
	}
	if len(found) != 1 || d.Events[len(d.Events)-1].Type != registration.EventSnapshot {
		t.Fatalf("decision (state %q, %s) has %d snapshot events of %d, want one, last", d.State, d.Reason, len(found), len(d.Events))
	}
	ev := found[0]
	if ev.Topic != registration.TopicSnapshot || string(ev.PartitionKey()) != nodeID.String() || len(ev.Metadata) == 0 || ev.Tombstone {
		t.Fatalf("snapshot event %+v", ev)
	}
	return ev.Payload.(*registration.Snapshot), ev
}

func hasSnapshot(d reducer.Decision) bool {
	for _, ev := range d.Events {
		if ev.Type == registration.EventSnapshot {
			return true
		}
	}
	return false
}

// TestDecideSnapshots drives one node through registration, activation,
// heartbeats, a metadata refresh, a liveness expiry, a re-registration and
// an ack timeout, and checks at every step that a decision publishes a
// snapshot exactly when it changes the state or refreshes an active node,
// that the snapshot is SnapshotOf the projection the decision leaves, at
// the decision's time, and that versions strictly increase.
func TestDecideSnapshots(t *testing.T) {
	r := newReducer(t)
	var p *registration.Projection
	var last int64
	n := 0
	step := func(kind string, event any, at, now time.Time, wantSnapshot bool) *registration.Snapshot {
		t.Helper()
		n++
		e := env(at)
		e.EnvelopeID = uuid.NewSHA1(envID, []byte{byte(n)})
		in := reducer.Input{EntityID: nodeID, Kind: kind, Event: event, Envelope: e}
		d := r.Decide(p, in, now)
		if d.IsNoop() {
			t.Fatalf("step %d (%s): no-op: %s", n, kind, d.Reason)
		}
		p = r.Evolve(p, in, d)
		if !wantSnapshot {
			if hasSnapshot(d) {
				t.Fatalf("step %d (%s): a snapshot", n, kind)
			}
			return nil
		}
		s, ev := snapshotOf(t, d)
		if s.Version <= last {
			t.Fatalf("step %d (%s): version %d after %d", n, kind, s.Version, last)
		}
		last = s.Version
		if s.Version != s.CreatedAt.UnixMicro() {
			t.Errorf("step %d: version %d is not snapshot_created_at %v in microseconds", n, s.Version, s.CreatedAt)
		}
		if want := registration.SnapshotOf(p, s.Version, s.CreatedAt); !s.Equal(want) {
			t.Errorf("step %d (%s): snapshot\n%+v\nwant SnapshotOf the new projection\n%+v", n, kind, s, want)
		}
		if meta, _ := s.Metadata(); string(meta) != string(ev.Metadata) {
			t.Errorf("step %d: event metadata %s, want %s", n, ev.Metadata, meta)
		}
		return s
	}
	intro := introspection()
	s := step(registration.KindIntrospection, intro, t0, t0, true)
	if s.State != registration.StateAwaitingAck || !s.CreatedAt.Equal(t0) || !s.LastStateChangeAt.Equal(t0) || s.Generation != 1 {
		t.Errorf("registration snapshot %+v", s)
	}
	ackAt := t0.Add(time.Second)
	s = step(registration.KindAck, &registration.Ack{NodeID: nodeID, CorrelationID: corrID, Timestamp: ackAt}, ackAt, t0, true)
	if s.State != registration.StateActive || !s.CreatedAt.Equal(ackAt) {
		t.Errorf("activation snapshot %+v", s)
	}
	for i := 2; i < 5; i++ {
		hb := t0.Add(time.Duration(i) * time.Second)
		step(registration.KindHeartbeat, &registration.Heartbeat{NodeID: nodeID, Timestamp: hb}, hb, t0, false)
	}
	// The node's clock runs an hour ahead of the sweeper's: its refresh is
	// stamped an hour on, after its liveness deadline.
	refreshAt := p.LivenessDeadline.Add(time.Hour)
	refresh := introspection()
	refresh.Capabilities = []byte(`{"postgres":true,"kafka":true}`)
	s = step(registration.KindIntrospection, refresh, refreshAt, t0, true)
	if s.State != registration.StateActive || !s.CreatedAt.Equal(refreshAt) || string(s.Capabilities) != `{"postgres":true,"kafka":true}` {
		t.Errorf("refresh snapshot %+v", s)
	}
	// The sweeper's clock passed the deadline but is behind the refresh: the
	// expiry is stamped a microsecond after it.
	sweep := p.LivenessDeadline.Add(time.Second + 500)
	check := &registration.TimeoutCheck{EntityID: nodeID, Kind: registration.TimeoutLiveness, DeadlineAt: p.LivenessDeadline, CheckedAt: sweep}
	s = step(registration.KindTimeoutCheck, check, sweep, sweep, true)
	if want := refreshAt.Add(time.Microsecond); !s.CreatedAt.Equal(want) || !p.LivenessTimeoutEmittedAt.Equal(want) || !s.LastStateChangeAt.Equal(want) {
		t.Errorf("expiry behind the node's clock: created %v, marker %v, want %v", s.CreatedAt, p.LivenessTimeoutEmittedAt, want)
	}
	again := refreshAt.Add(time.Second)
	s = step(registration.KindIntrospection, introspection(), again, t0, true)
	if s.State != registration.StateAwaitingAck || s.Generation != 2 {
		t.Errorf("re-registration snapshot %+v", s)
	}
	// An ack timeout on a clock ahead: stamped at that clock, nanoseconds
	// cut to microseconds in the snapshot.
	late := p.AckDeadline.Add(time.Minute + 789)
	check = &registration.TimeoutCheck{EntityID: nodeID, Kind: registration.TimeoutAck, DeadlineAt: p.AckDeadline, CheckedAt: late}
	s = step(registration.KindTimeoutCheck, check, late, late, true)
	if s.State != registration.StateAckTimedOut || !s.CreatedAt.Equal(late.Truncate(time.Microsecond)) || !p.AckTimeoutEmittedAt.Equal(late) {
		t.Errorf("ack timeout snapshot %+v, marker %v", s, p.AckTimeoutEmittedAt)
	}
}

// TestDecideSnapshotsDisabled: DisableSnapshots leaves every decision as it
// was, without the snapshot event.
func TestDecideSnapshotsDisabled(t *testing.T) {
	on := newReducer(t)
	off, err := registration.New(registration.Config{DisableSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rows() {
		in := reducer.Input{EntityID: nodeID, Event: tc.event, Envelope: env(tc.now)}
		a, b := on.Decide(tc.state, in, tc.now), off.Decide(tc.state, in, tc.now)
		if hasSnapshot(b) {
			t.Errorf("%s: a snapshot with snapshots disabled", tc.name)
		}
		if want := len(b.Events) + btoi(hasSnapshot(a)); len(a.Events) != want {
			t.Errorf("%s: %d events with snapshots, %d without", tc.name, len(a.Events), len(b.Events))
		}
		if hasSnapshot(a) != (a.State != "" || len(b.Events) > 0) {
			t.Errorf("%s: snapshot %v for state %q and %d events", tc.name, hasSnapshot(a), a.State, len(b.Events))
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestConfigSnapshotTopic(t *testing.T) {
	for name, cfg := range map[string]registration.Config{
		"input":  {Topics: registration.Topics{Snapshot: registration.TopicHeartbeat}},
		"output": {Topics: registration.Topics{Snapshot: registration.TopicBecameActive}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: snapshot topic %q accepted", name, cfg.Topics.Snapshot)
		}
		cfg.DisableSnapshots = true
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s, snapshots disabled: %v", name, err)
		}
	}
	r, err := registration.New(registration.Config{})
	if err != nil || r.Config().Topics.Snapshot != registration.TopicSnapshot {
		t.Fatalf("default snapshot topic: %v, %v", r, err)
	}
}
