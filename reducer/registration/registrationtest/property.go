package registrationtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// entityOf returns the entity an upsert or update intent writes.
func entityOf(in intent.Intent) uuid.UUID {
	switch p := in.Payload.(type) {
	case *registration.UpsertRegistration:
		return p.Projection.EntityID
	case *registration.UpdateRegistration:
		return p.EntityID
	}
	return uuid.Nil
}

// remap returns a copy of in that writes to(entity) instead of entity.
func remap(in intent.Intent, to map[uuid.UUID]uuid.UUID) intent.Intent {
	switch p := in.Payload.(type) {
	case *registration.UpsertRegistration:
		c := *p
		c.Projection = *p.Projection.Clone()
		c.Projection.EntityID = to[p.Projection.EntityID]
		in.Payload = &c
		in.Target = c.Projection.EntityID.String()
	case *registration.UpdateRegistration:
		c := *p
		c.Values = *p.Values.Clone()
		c.EntityID = to[p.EntityID]
		in.Payload = &c
		in.Target = c.EntityID.String()
	}
	return in
}

func (s Subject) effect(typ string) intent.IntentEffect {
	if typ == registration.IntentUpsert {
		return s.Upsert
	}
	return s.Update
}

func testBatch(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	bu, okU := h.s.Upsert.(intent.BatchEffect)
	bd, okD := h.s.Update.(intent.BatchEffect)
	if !okU || !okD {
		t.Skip("registrationtest: the effects do not implement intent.BatchEffect")
	}
	batchOf := func(typ string) intent.BatchEffect {
		if typ == registration.IntentUpsert {
			return bu
		}
		return bd
	}
	t.Run("empty batch", func(t *testing.T) {
		for _, b := range []intent.BatchEffect{bu, bd} {
			rs, err := b.ExecuteBatch(h.ctx, nil)
			if err != nil || len(rs) != 0 {
				t.Errorf("ExecuteBatch(nil) = %v, %v; want no results, no error", rs, err)
			}
		}
	})
	t.Run("a repeated entity sees its earlier write", func(t *testing.T) {
		h := *h
		h.t = t
		e1, e2 := uuid.New(), uuid.New()
		p1, p2 := full(e1, registration.StateAwaitingAck), minimal(e2, registration.StateAwaitingAck)
		again := minimal(e1, registration.StateAwaitingAck)
		rs, err := bu.ExecuteBatch(h.ctx, []intent.Intent{
			h.upsertIntent(p1, 0, registration.StateNone), h.upsertIntent(p2, 0, registration.StateNone),
			h.upsertIntent(again, 0, registration.StateNone),
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []intent.Status{intent.Applied, intent.Applied, intent.Conflict} {
			wantStatus(t, fmt.Sprintf("upsert %d", i), rs[i], want)
		}
		hb := baseTime.Add(time.Minute)
		beat := func(id uuid.UUID, at time.Time) intent.Intent {
			return h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: heartbeatColumns, ExpectedState: registration.StateActive,
				Values: registration.Projection{LastHeartbeatAt: at, LivenessDeadline: at.Add(90 * time.Second), UpdatedAt: at}})
		}
		ack := h.updateIntent(registration.UpdateRegistration{EntityID: e1, Set: registration.ColCurrentState | registration.ColUpdatedAt,
			ExpectedState: registration.StateAwaitingAck, Values: registration.Projection{State: registration.StateActive, UpdatedAt: hb}})
		rs, err = bd.ExecuteBatch(h.ctx, []intent.Intent{
			beat(e1, hb), ack, beat(e1, hb), beat(e2, hb), beat(e1, hb), beat(e1, hb.Add(-time.Second)), beat(e1, hb.Add(time.Second)),
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []intent.Status{intent.Conflict, intent.Applied, intent.Applied, intent.Conflict, intent.Skipped, intent.Skipped, intent.Applied} {
			wantStatus(t, fmt.Sprintf("update %d", i), rs[i], want)
		}
		want := p1
		want.State, want.UpdatedAt = registration.StateActive, hb.Add(time.Second)
		want.LastHeartbeatAt, want.LivenessDeadline = hb.Add(time.Second), hb.Add(91*time.Second)
		h.wantRow(e1, &want)
		h.wantRow(e2, &p2)
	})
	t.Run("an invalid intent fails the batch permanently", func(t *testing.T) {
		h := *h
		h.t = t
		id := uuid.New()
		_, err := bd.ExecuteBatch(h.ctx, []intent.Intent{
			h.updateIntent(registration.UpdateRegistration{EntityID: id, Set: registration.ColNodeVersion}),
			h.updateIntent(registration.UpdateRegistration{EntityID: id}),
		})
		if !intent.IsPermanent(err) {
			t.Errorf("batch with an empty update set: error %v, want a permanent one", err)
		}
		_, err = bu.ExecuteBatch(h.ctx, []intent.Intent{{Type: registration.IntentUpsert, Payload: 42}})
		if !intent.IsPermanent(err) {
			t.Errorf("batch with a payload of another type: error %v, want a permanent one", err)
		}
	})
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6} {
		t.Run(fmt.Sprintf("equals one by one/seed=%d", seed), func(t *testing.T) {
			h := *h
			h.t = t
			const entities, n = 12, 240
			abstract := make([]uuid.UUID, entities)
			toA, toB := map[uuid.UUID]uuid.UUID{}, map[uuid.UUID]uuid.UUID{}
			for i := range abstract {
				abstract[i] = uuid.New()
				toA[abstract[i]], toB[abstract[i]] = uuid.New(), uuid.New()
			}
			work := Workload(seed, abstract, n)
			model := NewModel()
			r := rand.New(rand.NewPCG(seed, 7)) //nolint:gosec // reproducible batch sizes
			// A: one by one. B: batches of consecutive intents of one type.
			var resA, resB, resModel []intent.Result
			for _, in := range work {
				a := remap(in, toA)
				ra, err := h.s.effect(a.Type).Execute(h.ctx, a)
				if err != nil {
					t.Fatalf("execute %s: %v", a.Type, err)
				}
				resA = append(resA, ra)
				rm, _ := model.Execute(h.ctx, remap(in, toA))
				resModel = append(resModel, rm)
			}
			for i := 0; i < len(work); {
				j := i + 1
				limit := i + 1 + r.IntN(64)
				for j < len(work) && j < limit && work[j].Type == work[i].Type {
					j++
				}
				batch := make([]intent.Intent, 0, j-i)
				for _, in := range work[i:j] {
					batch = append(batch, remap(in, toB))
				}
				rs, err := batchOf(work[i].Type).ExecuteBatch(h.ctx, batch)
				if err != nil {
					t.Fatalf("batch [%d, %d) of %s: %v", i, j, work[i].Type, err)
				}
				if len(rs) != len(batch) {
					t.Fatalf("batch [%d, %d): %d results for %d intents", i, j, len(rs), len(batch))
				}
				resB = append(resB, rs...)
				i = j
			}
			for i := range work {
				if resA[i].Status != resModel[i].Status || resB[i].Status != resModel[i].Status {
					t.Errorf("intent %d (%s): one by one %v (%s), batch %v (%s), model %v (%s)", i, work[i].Type,
						resA[i].Status, resA[i].Reason, resB[i].Status, resB[i].Reason, resModel[i].Status, resModel[i].Reason)
				}
			}
			for _, e := range abstract {
				want := model.Row(toA[e], registration.DefaultDomain)
				h.wantRow(toA[e], want)
				if want != nil {
					want.EntityID = toB[e]
				}
				h.wantRow(toB[e], want)
			}
		})
	}
}

// testModel is the property test: random intents on a few entities, each
// compared with the model as it is executed, then the overdue scans.
func testModel(t *testing.T, newStore func(t *testing.T) Subject) {
	h := newHarness(t, newStore)
	ctx := h.ctx
	rapid.Check(t, func(rt *rapid.T) {
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		mine := map[uuid.UUID]bool{ids[0]: true, ids[1]: true, ids[2]: true}
		m := NewModel()
		g := rapidGen(rt, m, registration.DefaultDomain)
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for step := range steps {
			in := g.intent(ids)
			want, werr := m.Execute(ctx, in)
			got, gerr := h.s.effect(in.Type).Execute(ctx, in)
			if werr != nil || gerr != nil {
				rt.Fatalf("step %d (%s): model error %v, store error %v", step, in.Type, werr, gerr)
			}
			if got.Status != want.Status {
				rt.Fatalf("step %d (%s %+v): store %v (%s), model %v (%s)", step, in.Type, in.Payload, got.Status, got.Reason, want.Status, want.Reason)
			}
			id := entityOf(in)
			p, err := h.s.Store.Load(ctx, id)
			if err != nil {
				rt.Fatalf("step %d: load: %v", step, err)
			}
			if d := Diff(m.Row(id, registration.DefaultDomain), p); d != "" {
				rt.Fatalf("step %d (%s %+v): row %s: %s", step, in.Type, in.Payload, id, d)
			}
		}
		now := baseTime.Add(time.Duration(rapid.IntRange(0, 10).Draw(rt, "now")) * time.Second)
		for _, scan := range []struct {
			name string
			f    func(context.Context, time.Time, registration.Overdue, int) ([]registration.Overdue, error)
			due  func(p *registration.Projection, now time.Time) (time.Time, bool)
		}{
			{"OverdueAcks", h.s.Store.OverdueAcks, ackDue},
			{"OverdueLiveness", h.s.Store.OverdueLiveness, livenessDue},
		} {
			all, err := scan.f(ctx, now, registration.Overdue{}, 1<<20)
			if err != nil {
				rt.Fatalf("%s: %v", scan.name, err)
			}
			// Pages read with a cursor are the one-shot scan, cut.
			limit := rapid.IntRange(1, 4).Draw(rt, "page size")
			var paged []registration.Overdue
			for after := (registration.Overdue{}); ; {
				page, err := scan.f(ctx, now, after, limit)
				if err != nil {
					rt.Fatalf("%s(after %v, limit %d): %v", scan.name, after, limit, err)
				}
				paged = append(paged, page...)
				if len(page) < limit || len(paged) > len(all) {
					break
				}
				after = page[len(page)-1]
			}
			if !slices.EqualFunc(paged, all, func(a, b registration.Overdue) bool {
				return a.EntityID == b.EntityID && a.Deadline.Equal(b.Deadline)
			}) {
				rt.Fatalf("%s: pages of %d %v, one scan %v", scan.name, limit, paged, all)
			}
			var got, want []registration.Overdue
			for i, o := range all {
				if i > 0 && o.Deadline.Before(all[i-1].Deadline) {
					rt.Fatalf("%s: not ordered by deadline at %d: %v", scan.name, i, all)
				}
				if mine[o.EntityID] {
					got = append(got, o)
				}
			}
			for _, id := range ids {
				if p := m.Row(id, registration.DefaultDomain); p != nil {
					if d, ok := scan.due(p, now); ok {
						want = append(want, registration.Overdue{EntityID: id, Deadline: d})
					}
				}
			}
			slices.SortFunc(got, byDeadline)
			slices.SortFunc(want, byDeadline)
			if !slices.EqualFunc(got, want, func(a, b registration.Overdue) bool {
				return a.EntityID == b.EntityID && a.Deadline.Equal(b.Deadline)
			}) {
				rt.Fatalf("%s at %s: store %v, model %v", scan.name, fmtTime(now), got, want)
			}
		}
	})
}
