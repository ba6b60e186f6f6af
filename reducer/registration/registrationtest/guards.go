package registrationtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// testGuards checks the column guards of updates (Guard and Expected):
// every guardable column, equal and different values, NULL against NULL
// and against a value, their order against the state and heartbeat
// guards; then decisions of the reducer whose rows another writer changed
// between the decision and its write.
func testGuards(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	sub := func(name string, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			h := *h
			h.t = t
			f(&h)
		})
	}
	// A write that every case makes: only the column guards differ.
	write := func(id uuid.UUID, guard registration.Columns, expected registration.Projection) registration.UpdateRegistration {
		return registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion | registration.ColUpdatedAt,
			Values:        registration.Projection{NodeVersion: "9.9.9", UpdatedAt: baseTime.Add(time.Hour)},
			ExpectedState: registration.StateActive, Guard: guard, Expected: expected}
	}
	applied := func(old registration.Projection) *registration.Projection {
		want := old
		want.NodeVersion, want.UpdatedAt = "9.9.9", baseTime.Add(time.Hour)
		return &want
	}
	// other returns a projection whose every column differs from full's.
	other := func() registration.Projection {
		p := full(uuid.Nil, registration.StateActive)
		p.NodeType, p.NodeVersion, p.Generation = "compute", "0.0.1", p.Generation+1
		p.LastAppliedEventID, p.CorrelationID = idPool[2], idPool[2]
		for _, f := range []*time.Time{&p.AckDeadline, &p.LivenessDeadline, &p.LastHeartbeatAt, &p.AckTimeoutEmittedAt,
			&p.LivenessTimeoutEmittedAt, &p.RegisteredAt, &p.UpdatedAt} {
			*f = f.Add(time.Microsecond)
		}
		return p
	}()
	for c := range registration.GuardableColumns.Each() {
		sub("column "+c.Name()+"/equal value applies", func(h *harness) {
			id := uuid.New()
			old := full(id, registration.StateActive)
			h.insert(old)
			exp := old
			zoned(&exp)
			wantStatus(h.t, "update", h.update(write(id, c, exp)), intent.Applied)
			h.wantRow(id, applied(old))
		})
		sub("column "+c.Name()+"/other value is a conflict naming it", func(h *harness) {
			id := uuid.New()
			old := full(id, registration.StateActive)
			h.insert(old)
			r := h.update(write(id, c, other))
			wantStatus(h.t, "update", r, intent.Conflict)
			if !strings.Contains(r.Reason, c.Name()) {
				h.t.Errorf("reason %q does not name %s", r.Reason, c.Name())
			}
			h.wantRow(id, &old)
		})
		sub("column "+c.Name()+"/zero value against a stored one is a conflict", func(h *harness) {
			id := uuid.New()
			old := full(id, registration.StateActive)
			h.insert(old)
			wantStatus(h.t, "update", h.update(write(id, c, registration.Projection{})), intent.Conflict)
			h.wantRow(id, &old)
		})
		sub("column "+c.Name()+"/zero value against a zero one applies", func(h *harness) {
			if c == registration.ColNodeType {
				h.t.Skip("node_type is never empty")
			}
			id := uuid.New()
			old := minimal(id, registration.StateActive)
			h.insert(old)
			wantStatus(h.t, "update", h.update(write(id, c, registration.Projection{})), intent.Applied)
			h.wantRow(id, applied(old))
		})
		sub("column "+c.Name()+"/value against a zero one is a conflict", func(h *harness) {
			id := uuid.New()
			old := minimal(id, registration.StateActive)
			h.insert(old)
			wantStatus(h.t, "update", h.update(write(id, c, full(id, registration.StateActive))), intent.Conflict)
			h.wantRow(id, &old)
		})
	}
	sub("every guard column at once", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateActive)
		h.insert(old)
		wantStatus(h.t, "update", h.update(write(id, registration.GuardableColumns, old)), intent.Applied)
		h.wantRow(id, applied(old))
		// The row changed: the same guard fails on updated_at.
		r := h.update(write(id, registration.GuardableColumns, old))
		wantStatus(h.t, "update again", r, intent.Conflict)
		if !strings.Contains(r.Reason, "updated_at") {
			h.t.Errorf("reason %q does not name updated_at", r.Reason)
		}
	})
	sub("a failed state guard is reported before a failed column guard", func(h *harness) {
		id := uuid.New()
		old := full(id, registration.StateActive)
		h.insert(old)
		u := write(id, registration.ColGeneration, other)
		u.ExpectedState = registration.StateAwaitingAck
		r := h.update(u)
		wantStatus(h.t, "update", r, intent.Conflict)
		if !strings.Contains(r.Reason, "state") {
			h.t.Errorf("reason %q does not name the state", r.Reason)
		}
		h.wantRow(id, &old)
	})
	hb := baseTime.Add(10 * time.Second)
	for _, c := range []struct {
		name      string
		next      time.Time
		guardHold bool
		want      intent.Status
	}{
		{"newer heartbeat, guard holds", hb.Add(time.Second), true, intent.Applied},
		{"newer heartbeat, guard fails", hb.Add(time.Second), false, intent.Conflict},
		{"older heartbeat, guard holds", hb.Add(-time.Second), true, intent.Skipped},
		{"older heartbeat, guard fails: the conflict wins over the skip", hb.Add(-time.Second), false, intent.Conflict},
	} {
		sub("heartbeat guards/"+c.name, func(h *harness) {
			id := uuid.New()
			old := full(id, registration.StateActive)
			old.LastHeartbeatAt = hb
			h.insert(old)
			exp := old
			if !c.guardHold {
				exp.LivenessDeadline = exp.LivenessDeadline.Add(-time.Second)
			}
			v := registration.Projection{LastHeartbeatAt: c.next, LivenessDeadline: c.next.Add(90 * time.Second), UpdatedAt: c.next}
			wantStatus(h.t, "heartbeat", h.update(registration.UpdateRegistration{EntityID: id, Set: heartbeatColumns, Values: v,
				ExpectedState: registration.StateActive, Guard: registration.ColLivenessDeadline | registration.ColUpdatedAt, Expected: exp}), c.want)
			want := old
			if c.want == intent.Applied {
				want.LastHeartbeatAt, want.LivenessDeadline, want.UpdatedAt = v.LastHeartbeatAt, v.LivenessDeadline, v.UpdatedAt
			}
			h.wantRow(id, &want)
		})
	}
	sub("guards compare at the store's precision", func(h *harness) {
		// A row written with nanoseconds (a store may keep fewer), then
		// two heartbeats, each guarded with what the one before wrote, as
		// the runtime decides them against its overlay.
		id := uuid.New()
		old := full(id, registration.StateActive)
		old.LivenessDeadline, old.UpdatedAt = old.LivenessDeadline.Add(789), old.UpdatedAt.Add(789)
		h.insert(old)
		beat := func(prev registration.Projection, at time.Time) intent.Intent {
			return h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: heartbeatColumns, ExpectedState: registration.StateActive,
				Values: registration.Projection{LastHeartbeatAt: at, LivenessDeadline: at.Add(90 * time.Second), UpdatedAt: at},
				Guard:  registration.ColLivenessDeadline | registration.ColUpdatedAt, Expected: prev})
		}
		first := baseTime.Add(time.Minute + 123)
		b1 := beat(old, first)
		b2 := beat(b1.Payload.(*registration.UpdateRegistration).Values, first.Add(time.Second))
		wantStatus(h.t, "first heartbeat", h.execute(b1), intent.Applied)
		wantStatus(h.t, "second heartbeat", h.execute(b2), intent.Applied)
		if bd, ok := h.s.Update.(intent.BatchEffect); ok {
			prev := b2.Payload.(*registration.UpdateRegistration).Values
			b3 := beat(prev, first.Add(2*time.Second))
			b4 := beat(b3.Payload.(*registration.UpdateRegistration).Values, first.Add(3*time.Second))
			rs, err := bd.ExecuteBatch(h.ctx, []intent.Intent{b3, b4})
			if err != nil {
				h.t.Fatal(err)
			}
			wantStatus(h.t, "third heartbeat (batch)", rs[0], intent.Applied)
			wantStatus(h.t, "fourth heartbeat (batch)", rs[1], intent.Applied)
		}
		// A guard that fails on one column names that column only.
		cur := h.load(id)
		exp := *cur
		exp.LivenessDeadline = exp.LivenessDeadline.Add(456) // the same microsecond
		exp.UpdatedAt = exp.UpdatedAt.Add(-time.Second)
		r := h.update(write(id, registration.ColLivenessDeadline|registration.ColUpdatedAt, exp))
		wantStatus(h.t, "guard on a changed updated_at", r, intent.Conflict)
		if !strings.Contains(r.Reason, "updated_at") || strings.Contains(r.Reason, "liveness_deadline") {
			h.t.Errorf("reason %q: want updated_at named, liveness_deadline not", r.Reason)
		}
	})
	t.Run("decisions on a row that changed before their write", func(t *testing.T) {
		h := *h
		h.t = t
		testDecisionRaces(&h)
	})
}

// zoned moves the times of p into another zone: the same instants.
func zoned(p *registration.Projection) {
	for _, f := range []*time.Time{&p.AckDeadline, &p.LivenessDeadline, &p.LastHeartbeatAt, &p.AckTimeoutEmittedAt,
		&p.LivenessTimeoutEmittedAt, &p.RegisteredAt, &p.UpdatedAt} {
		if !f.IsZero() {
			*f = f.In(otherZone)
		}
	}
}

// decider drives the registration reducer as the runtime does: it loads
// the row, decides, and executes the decision's postgres update.
type decider struct {
	h *harness
	r *registration.Reducer
}

// stamped wraps event in an envelope stamped at.
func stamped(event any, at time.Time) reducer.Input {
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, CorrelationID: uuid.New(), Payload: json.RawMessage(`{}`)}
	return reducer.Input{Event: event, Envelope: env}
}

// decide decides in against the stored row at now, the deciding clock.
func (d *decider) decide(id uuid.UUID, in reducer.Input, now time.Time) reducer.Decision {
	in.EntityID = id
	return d.r.Decide(d.h.load(id), in, now)
}

// update returns the decision's postgres.update_registration intent.
func (d *decider) update(dec reducer.Decision) intent.Intent {
	d.h.t.Helper()
	for _, in := range dec.Intents {
		if in.Type == registration.IntentUpdate {
			return in
		}
	}
	d.h.t.Fatalf("decision without an update (state %q, reason %q)", dec.State, dec.Reason)
	return intent.Intent{}
}

func (d *decider) execute(in intent.Intent) intent.Result {
	d.h.t.Helper()
	r, err := d.h.s.Update.Execute(d.h.ctx, in)
	if err != nil {
		d.h.t.Fatalf("execute %s: %v", in.Type, err)
	}
	return r
}

// testDecisionRaces interleaves the writes of two decisions made on one
// row, as two processes deciding the same entity do: the second write
// must conflict, and its decision made again must see the first's effect.
func testDecisionRaces(h *harness) {
	r, err := registration.New(registration.Config{})
	if err != nil {
		h.t.Fatal(err)
	}
	now := baseTime.Add(time.Hour)
	active := func(id uuid.UUID) registration.Projection {
		p := minimal(id, registration.StateActive)
		p.LivenessDeadline, p.LastHeartbeatAt = now.Add(-10*time.Second), now.Add(-100*time.Second)
		p.RegisteredAt, p.UpdatedAt, p.Generation = now.Add(-time.Hour), now.Add(-100*time.Second), 1
		return p
	}
	livenessCheck := func(id uuid.UUID, at time.Time) reducer.Input {
		return stamped(&registration.TimeoutCheck{EntityID: id, Kind: registration.TimeoutLiveness,
			DeadlineAt: now.Add(-10 * time.Second), CheckedAt: at}, at)
	}
	heartbeat := func(id uuid.UUID, at time.Time) reducer.Input {
		return stamped(&registration.Heartbeat{NodeID: id, NodeType: "compute", UptimeSeconds: 1, Timestamp: at}, at)
	}

	h.t.Run("a heartbeat between a liveness timeout's decision and its write", func(t *testing.T) {
		h := *h
		h.t = t
		d := &decider{h: &h, r: r}
		id := uuid.New()
		h.insert(active(id))
		check := livenessCheck(id, now)
		timeout := d.decide(id, check, now)
		if timeout.State != string(registration.StateLivenessExpired) {
			t.Fatalf("timeout decision: state %q (%s), want liveness_expired", timeout.State, timeout.Reason)
		}
		write := d.update(timeout)
		beat := now.Add(-time.Second)
		wantStatus(t, "heartbeat", d.execute(d.update(d.decide(id, heartbeat(id, beat), beat))), intent.Applied)
		r := d.execute(write)
		wantStatus(t, "timeout written after the heartbeat", r, intent.Conflict)
		if !strings.Contains(r.Reason, "liveness_deadline") {
			t.Errorf("conflict reason %q does not name liveness_deadline", r.Reason)
		}
		row := h.load(id)
		if row == nil || row.State != registration.StateActive || !row.LastHeartbeatAt.Equal(beat) ||
			!row.LivenessTimeoutEmittedAt.IsZero() {
			t.Fatalf("row after the conflict: %+v", row)
		}
		again := d.decide(id, check, now)
		if !again.IsNoop() || !strings.Contains(again.Reason, "not passed") {
			t.Errorf("timeout decided again: state %q, %d intents, reason %q; want a no-op, deadline not passed",
				again.State, len(again.Intents), again.Reason)
		}
	})
	h.t.Run("liveness timeouts of a batch whose rows got heartbeats", func(t *testing.T) {
		h := *h
		h.t = t
		d := &decider{h: &h, r: r}
		bd, ok := h.s.Update.(intent.BatchEffect)
		if !ok {
			t.Skip("the update effect does not implement intent.BatchEffect")
		}
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
		var writes []intent.Intent
		for _, id := range ids {
			h.insert(active(id))
			writes = append(writes, d.update(d.decide(id, livenessCheck(id, now), now)))
		}
		beat := now.Add(-time.Second)
		for _, id := range ids[1:3] {
			wantStatus(t, "heartbeat", d.execute(d.update(d.decide(id, heartbeat(id, beat), beat))), intent.Applied)
		}
		rs, err := bd.ExecuteBatch(h.ctx, writes)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []intent.Status{intent.Applied, intent.Conflict, intent.Conflict, intent.Applied} {
			wantStatus(t, fmt.Sprintf("timeout %d", i), rs[i], want)
		}
		for i, want := range []registration.State{registration.StateLivenessExpired, registration.StateActive,
			registration.StateActive, registration.StateLivenessExpired} {
			if row := h.load(ids[i]); row == nil || row.State != want {
				t.Errorf("row %d: %+v, want state %s", i, row, want)
			}
		}
	})
	h.t.Run("an ack decided before a timeout and a re-registration", func(t *testing.T) {
		h := *h
		h.t = t
		d := &decider{h: &h, r: r}
		id := uuid.New()
		reg := now.Add(-time.Minute)
		intro := func(at time.Time) reducer.Input {
			return stamped(&registration.Introspection{NodeID: id, NodeType: "compute", CorrelationID: uuid.New(), Timestamp: at}, at)
		}
		first := d.decide(id, intro(reg), reg)
		if rs := d.execIntents(first); rs[0].Status != intent.Applied {
			t.Fatalf("first registration: %v (%s)", rs[0].Status, rs[0].Reason)
		}
		ackAt := reg.Add(40 * time.Second)
		ack := d.update(d.decide(id, stamped(&registration.Ack{NodeID: id, CorrelationID: uuid.New(), Timestamp: ackAt}, ackAt), ackAt))
		// Meanwhile another process times the registration out, and the
		// node registers again: the row awaits an ack again, one
		// generation on.
		timeout := d.decide(id, stamped(&registration.TimeoutCheck{EntityID: id, Kind: registration.TimeoutAck}, ackAt), ackAt)
		wantStatus(t, "ack timeout", d.execute(d.update(timeout)), intent.Applied)
		again := ackAt.Add(time.Second)
		if rs := d.execIntents(d.decide(id, intro(again), again)); rs[0].Status != intent.Applied {
			t.Fatalf("second registration: %v (%s)", rs[0].Status, rs[0].Reason)
		}
		r := d.execute(ack)
		wantStatus(t, "the first registration's ack", r, intent.Conflict)
		if !strings.Contains(r.Reason, "generation") {
			t.Errorf("conflict reason %q does not name generation", r.Reason)
		}
		if row := h.load(id); row == nil || row.State != registration.StateAwaitingAck || row.Generation != 2 {
			t.Errorf("row after the conflict: %+v, want awaiting_ack, generation 2", row)
		}
	})
}

// execIntents executes the postgres intents of dec, in order.
func (d *decider) execIntents(dec reducer.Decision) []intent.Result {
	d.h.t.Helper()
	var out []intent.Result
	for _, in := range dec.Intents {
		eff := d.h.s.Update
		switch in.Type {
		case registration.IntentUpsert:
			eff = d.h.s.Upsert
		case registration.IntentUpdate:
		default:
			continue
		}
		r, err := eff.Execute(d.h.ctx, in)
		if err != nil {
			d.h.t.Fatalf("execute %s: %v", in.Type, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		d.h.t.Fatalf("decision without postgres intents (state %q, reason %q)", dec.State, dec.Reason)
	}
	return out
}
