package registrationtest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// testGuards checks the column guards of updates (Guard and Expected):
// every guardable column, equal and different values, NULL against NULL
// and against a value, their order against the state and heartbeat
// guards.
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
