package postgres

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestSweeperIsFairOnPostgres (failure 6) runs the sweeper on this store:
// with Limit 10, ten overdue entities whose checks never resolve do not
// keep the sweeps from the five other overdue entities.
func TestSweeperIsFairOnPostgres(t *testing.T) {
	db := newTestDB(t)
	up, _ := db.effects(t, EffectConfig{})
	rec := &bustest.Recorder{}
	now := t0
	sw, err := registrar.NewSweeper(db.store(t), rec, registrar.SweeperConfig{Clock: func() time.Time { return now },
		Interval: time.Second, Limit: 10, Resend: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	seed := func(deadline time.Time) uuid.UUID {
		p := activeRow(uuid.New())
		p.LivenessDeadline = deadline
		mustApply(t, up, upsertIntent(p, registration.StateNone), intent.Applied)
		return p.EntityID
	}
	stuck, others := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	for i := range 10 {
		stuck[seed(t0.Add(-time.Hour+time.Duration(i)*time.Second))] = true
	}
	for i := range 5 {
		others[seed(t0.Add(-time.Minute+time.Duration(i)*time.Second))] = true
	}
	for i, want := range []map[uuid.UUID]bool{stuck, others, {}} {
		from := len(rec.PublishedTo(registration.TopicTimeoutCheck))
		if _, err := sw.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := map[uuid.UUID]bool{}
		for _, m := range rec.PublishedTo(registration.TopicTimeoutCheck)[from:] {
			env, err := bus.DecodeEnvelope(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			c, err := registration.DecodeTimeoutCheck(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			got[c.EntityID] = true
		}
		if len(got) != len(want) {
			t.Errorf("sweep %d: checks for %d entities, want %d", i, len(got), len(want))
		}
		for id := range want {
			if !got[id] {
				t.Errorf("sweep %d: no check for %s", i, id)
			}
		}
		now = now.Add(time.Second)
	}
}
