package registrar_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// BenchmarkHandleBatchHeartbeats is the runtime's hot path under load:
// HandleBatch of micro-batches of 1024 heartbeats, one per active node, on
// the memory store. An op is one heartbeat.
func BenchmarkHandleBatchHeartbeats(b *testing.B) {
	const size = 1024
	d := newDirect(b)
	nodes := make([]uuid.UUID, size)
	for i := range nodes {
		nodes[i] = uuid.New()
		d.activate(b, nodes[i])
	}
	batches := make([][]*bus.Message, (b.N+size-1)/size)
	for k := range batches {
		n := min(size, b.N-k*size)
		batches[k] = make([]*bus.Message, n)
		for i := range n {
			at := t0.Add(time.Duration(k+1)*10*time.Second + time.Duration(i)*time.Microsecond)
			batches[k][i] = d.message(b, d.topics.Heartbeat, nodes[i], at, &registration.Heartbeat{NodeID: nodes[i], Timestamp: at, UptimeSeconds: 1})
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for _, batch := range batches {
		if err := d.rt.HandleBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st := d.rt.Stats(); st.NoOps != 0 || st.Conflicts != 0 {
		b.Fatalf("stats %+v: not every heartbeat applied", st)
	}
}
