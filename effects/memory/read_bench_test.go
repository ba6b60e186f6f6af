package memory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

const benchRows = 1_000_000

var (
	benchOnce  sync.Once
	benchStore *memory.Store
	benchIDs   []uuid.UUID
)

// benchFill returns a store of 1M projections: 90% active, node types and
// capabilities as in the Postgres plan test (cap_N: one row in a
// thousand), and their ids.
func benchFill(b *testing.B) (*memory.Store, []uuid.UUID) {
	benchOnce.Do(func() {
		s := memory.NewStore(memory.StoreConfig{})
		ids := make([]uuid.UUID, benchRows)
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range ids {
			ids[i] = uuid.New()
			st := registration.StateActive
			if i%10 == 0 {
				st = registration.StateAwaitingAck
			}
			p := registration.Projection{EntityID: ids[i], Domain: registration.DefaultDomain, State: st,
				NodeType:     registration.NodeTypes[i%len(registration.NodeTypes)],
				Capabilities: json.RawMessage(fmt.Sprintf(`{"kafka": %t, "cap_%d": true}`, i%3 == 0, i%1000)),
				UpdatedAt:    base.Add(time.Duration(i) * time.Millisecond)}
			if _, err := s.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert,
				Payload: &registration.UpsertRegistration{Projection: p}}); err != nil {
				panic(err)
			}
		}
		benchStore, benchIDs = s, ids
	})
	return benchStore, benchIDs
}

// BenchmarkList measures List on 1M projections: a page of 100 from a
// cursor (unfiltered, by node type, by a rare capability: a thousand
// matches, so a page scans 100k rows), the first List after an insert
// (which merges the new id into the ordered index: O(n)), and, for
// comparison, what sorting the ids on every call would cost.
func BenchmarkList(b *testing.B) {
	s, ids := benchFill(b)
	ctx := context.Background()
	// A cursor in the middle of the id space, as a walk would reach it.
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, c uuid.UUID) int { return bytes.Compare(a[:], c[:]) })
	cursorAt := func(q registration.Query) string {
		r, err := q.Request()
		if err != nil {
			b.Fatal(err)
		}
		return r.Cursor(sorted[len(sorted)/2])
	}
	for _, c := range []struct {
		name string
		q    registration.Query
	}{
		{"page100/unfiltered", registration.Query{}},
		{"page100/state", registration.Query{States: []registration.State{registration.StateAwaitingAck}}},
		{"page100/node_type", registration.Query{NodeType: "effect"}},
		{"page100/capability_rare", registration.Query{Capability: "cap_17"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := c.q
			q.Cursor = cursorAt(q)
			for b.Loop() {
				page, err := s.List(ctx, q)
				if err != nil || len(page.Items) == 0 {
					b.Fatal(len(page.Items), err)
				}
			}
		})
	}
	b.Run("after_insert", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			p := registration.Projection{EntityID: uuid.New(), Domain: registration.DefaultDomain,
				State: registration.StateActive, NodeType: "effect"}
			if _, err := s.Execute(ctx, intent.Intent{Type: registration.IntentUpsert,
				Payload: &registration.UpsertRegistration{Projection: p}}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := s.List(ctx, registration.Query{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_sort_per_call", func(b *testing.B) {
		for b.Loop() {
			c := slices.Clone(ids)
			slices.SortFunc(c, func(a, d uuid.UUID) int { return bytes.Compare(a[:], d[:]) })
		}
	})
}
