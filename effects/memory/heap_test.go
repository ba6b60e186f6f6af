package memory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// maxBytesPerProjection is the memory store's budget: the live heap one
// stored projection costs, its row, its map entry and its place in List's
// index included.
const maxBytesPerProjection = 2048

// TestLiveHeapPerProjection stores projections of the shape a registered,
// heartbeating node leaves (strings and capabilities decoded per message,
// so shared with nothing; one endpoint; every deadline set; replaced by a
// heartbeat's update), lists once so that the index is merged, and bounds
// the live heap they cost after a collection by maxBytesPerProjection.
func TestLiveHeapPerProjection(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 5_000
	}
	ctx := context.Background()
	before := liveHeap()
	s := memory.NewStore(memory.StoreConfig{})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := uuid.New()
		at := base.Add(time.Duration(i) * time.Millisecond)
		p := registration.Projection{EntityID: id, Domain: strings.Clone(registration.DefaultDomain), State: registration.StateActive,
			NodeType:     strings.Clone(registration.NodeTypes[i%4]),
			NodeVersion:  strings.Clone("1.4.2"),
			Capabilities: json.RawMessage(`{"postgres":false,"read":true,"write":true}`),
			Endpoints:    map[string]string{strings.Clone("health"): fmt.Sprintf("http://10.0.%d.%d:8080/health", i/250, i%250+1)},
			AckDeadline:  at.Add(30 * time.Second), LivenessDeadline: at.Add(90 * time.Second), LastHeartbeatAt: at,
			RegisteredAt: at, UpdatedAt: at, LastAppliedEventID: uuid.New(), CorrelationID: uuid.New(), Generation: 1}
		p.Capabilities = append(json.RawMessage(nil), p.Capabilities...)
		if _, err := s.Execute(ctx, intent.Intent{Type: registration.IntentUpsert,
			Payload: &registration.UpsertRegistration{Projection: p}}); err != nil {
			t.Fatal(err)
		}
		hb := at.Add(20 * time.Second)
		res, err := s.Execute(ctx, intent.Intent{Type: registration.IntentUpdate, Payload: &registration.UpdateRegistration{
			EntityID: id, Domain: registration.DefaultDomain, Set: registration.ColLivenessDeadline | registration.ColLastHeartbeatAt | registration.ColUpdatedAt,
			Values: registration.Projection{LivenessDeadline: hb.Add(90 * time.Second), LastHeartbeatAt: hb, UpdatedAt: hb}}})
		if err != nil || res.Status != intent.Applied {
			t.Fatalf("heartbeat update of %s: %v, %v", id, res.Status, err)
		}
	}
	if _, err := s.List(ctx, registration.Query{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	after := liveHeap()
	runtime.KeepAlive(s)
	per := (int64(after) - int64(before)) / int64(n)
	t.Logf("%d projections: %d bytes of live heap each", n, per)
	if per > maxBytesPerProjection {
		t.Errorf("a stored projection costs %d bytes of live heap, want at most %d", per, maxBytesPerProjection)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
