package registrar_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

func seed(t *testing.T, s *memory.Store, id uuid.UUID, st registration.State, deadline time.Time) {
	t.Helper()
	p := registration.Projection{EntityID: id, Domain: registration.DefaultDomain, State: st, NodeType: "effect",
		RegisteredAt: deadline.Add(-time.Minute), UpdatedAt: deadline.Add(-time.Minute)}
	if st == registration.StateActive {
		p.LivenessDeadline = deadline
	} else {
		p.AckDeadline = deadline
	}
	res, err := s.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert,
		Payload: &registration.UpsertRegistration{Projection: p}})
	if err != nil || res.Status != intent.Applied {
		t.Fatalf("seed: %+v %v", res, err)
	}
}

func TestSweeperPublishesKeyedChecksOnce(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	rec := &bustest.Recorder{}
	now := t0
	sw, err := registrar.NewSweeper(store, rec, registrar.SweeperConfig{Clock: func() time.Time { return now }, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	late, live, early := uuid.New(), uuid.New(), uuid.New()
	seed(t, store, late, registration.StateAwaitingAck, t0.Add(-time.Second))
	seed(t, store, live, registration.StateActive, t0.Add(-2*time.Second))
	seed(t, store, early, registration.StateAwaitingAck, t0.Add(time.Second))
	n, err := sw.Sweep(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	got := map[string]registration.TimeoutKind{}
	for _, m := range rec.PublishedTo(registration.TopicTimeoutCheck) {
		env, err := bus.DecodeEnvelope(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		c, err := registration.DecodeTimeoutCheck(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != c.EntityID.String() || !env.EnvelopeTimestamp.Equal(now) || !c.CheckedAt.Equal(now) {
			t.Errorf("check %s keyed %q at %v", c.EntityID, m.Key, env.EnvelopeTimestamp)
		}
		got[c.EntityID.String()] = c.Kind
	}
	if got[late.String()] != registration.TimeoutAck || got[live.String()] != registration.TimeoutLiveness || len(got) != 2 {
		t.Fatalf("checks %v", got)
	}
	// Checked deadlines are not checked again until Resend (30 intervals);
	// the early one, overdue now, is.
	now = now.Add(5 * time.Second)
	if n, err := sw.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("second sweep: %d, %v; want only the newly overdue one", n, err)
	}
	now = now.Add(30 * time.Second)
	if n, err := sw.Sweep(context.Background()); err != nil || n != 3 {
		t.Fatalf("sweep after resend: %d, %v; want all three again", n, err)
	}
}

// checkedEntities returns the entities of the timeout checks rec received
// from index from on.
func checkedEntities(t *testing.T, rec *bustest.Recorder, from int) []uuid.UUID {
	t.Helper()
	var out []uuid.UUID
	for _, m := range rec.PublishedTo(registration.TopicTimeoutCheck)[from:] {
		env, err := bus.DecodeEnvelope(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		c, err := registration.DecodeTimeoutCheck(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.EntityID)
	}
	return out
}

// TestSweeperIsFairToEntitiesBehindStuckOnes (failure 6): with Limit 10,
// ten overdue entities whose checks never resolve (published, never
// decided: their partition is blocked) used to fill every sweep; the five
// other overdue entities were never checked. The sweeps now page past the
// stuck ones.
func TestSweeperIsFairToEntitiesBehindStuckOnes(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	rec := &bustest.Recorder{}
	now := t0
	sw, err := registrar.NewSweeper(store, rec, registrar.SweeperConfig{Clock: func() time.Time { return now },
		Interval: time.Second, Limit: 10, Resend: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var stuck, others []uuid.UUID
	for i := range 10 {
		stuck = append(stuck, uuid.New())
		seed(t, store, stuck[i], registration.StateAwaitingAck, t0.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	for i := range 5 {
		others = append(others, uuid.New())
		seed(t, store, others[i], registration.StateAwaitingAck, t0.Add(-time.Minute+time.Duration(i)*time.Second))
	}
	sweep := func(want []uuid.UUID) {
		t.Helper()
		from := len(rec.PublishedTo(registration.TopicTimeoutCheck))
		if _, err := sw.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := checkedEntities(t, rec, from)
		if !sameSet(got, want) {
			t.Errorf("at %v: checks for %v, want %v", now.Sub(t0), got, want)
		}
		now = now.Add(time.Second)
	}
	sweep(stuck)
	sweep(others) // the stuck ones are still in flight: read past them
	sweep(nil)    // every check is in flight
	now = now.Add(time.Minute)
	// Resend passed: each is checked again, ten per sweep.
	from := len(rec.PublishedTo(registration.TopicTimeoutCheck))
	for range 2 {
		if _, err := sw.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := checkedEntities(t, rec, from); !sameSet(got, append(append([]uuid.UUID{}, stuck...), others...)) {
		t.Errorf("after Resend: checks for %d entities %v, want all 15 once", len(got), got)
	}
}

// sameSet reports whether a and b hold the same ids, each once.
func sameSet(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[uuid.UUID]int{}
	for _, id := range a {
		seen[id]++
	}
	for _, id := range b {
		if seen[id] != 1 {
			return false
		}
		seen[id] = 0
	}
	return true
}

// TestSweeperPagesWrapAround: fifteen overdue entities and Limit 10: each
// sweep reads ten, continuing after the last one read and wrapping around,
// so every entity is read once in three sweeps' worth of pages.
func TestSweeperPagesWrapAround(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	rec := &bustest.Recorder{}
	now := t0
	sw, err := registrar.NewSweeper(store, rec, registrar.SweeperConfig{Clock: func() time.Time { return now },
		Interval: time.Second, Limit: 10, Resend: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i := range 15 {
		ids = append(ids, uuid.New())
		seed(t, store, ids[i], registration.StateActive, t0.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	for i, want := range [][]uuid.UUID{ids[:10], append(ids[10:15:15], ids[:5]...), ids[5:15], ids[:10]} {
		from := len(rec.PublishedTo(registration.TopicTimeoutCheck))
		if n, err := sw.Sweep(context.Background()); err != nil || n != 10 {
			t.Fatalf("sweep %d: %d, %v", i, n, err)
		}
		if got := checkedEntities(t, rec, from); !sameSet(got, want) {
			t.Errorf("sweep %d: checks for %v, want %v", i, got, want)
		}
		now = now.Add(time.Second)
	}
}

func TestSweeperReportsPublishFailure(t *testing.T) {
	store := memory.NewStore(memory.StoreConfig{})
	rec := &bustest.Recorder{}
	seed(t, store, uuid.New(), registration.StateAwaitingAck, t0)
	sw, err := registrar.NewSweeper(store, rec, registrar.SweeperConfig{Clock: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	rec.FailPublish(errors.New("broker down"), 1)
	if _, err := sw.Sweep(context.Background()); err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("sweep: %v", err)
	}
	// Not remembered as sent: the next sweep publishes it.
	if n, err := sw.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("retry sweep: %d, %v", n, err)
	}
}

func TestNewSweeperValidates(t *testing.T) {
	_, err := registrar.NewSweeper(nil, nil, registrar.SweeperConfig{Interval: -1, Limit: -1})
	for _, want := range []string{"scanner", "publisher", "interval", "limit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestTimeoutCheckMessageIsDeterministic(t *testing.T) {
	id := uuid.New()
	a, err := registrar.TimeoutCheckMessage("t", id, registration.TimeoutAck, t0, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := registrar.TimeoutCheckMessage("t", id, registration.TimeoutAck, t0, t0.Add(time.Second))
	c, _ := registrar.TimeoutCheckMessage("t", id, registration.TimeoutAck, t0, t0.Add(2*time.Second))
	if string(a.Value) != string(b.Value) || string(a.Value) == string(c.Value) {
		t.Fatal("a check must be a function of entity, kind, deadline and sweep time")
	}
	var env map[string]any
	if err := json.Unmarshal(a.Value, &env); err != nil || env["event_type"] != registration.EventTypeTimeoutCheck {
		t.Fatalf("envelope %s", a.Value)
	}
}
