package discovery_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/reducer/registration"
)

// BenchmarkCatchUp100k: a client catches up with 100,000 snapshots (one per
// node, over the default 12 partitions of the memory bus) and is Ready. It
// reports the time to Ready (ms-to-ready, also ns/op) and the heap the view
// holds per node, measured after a GC with the client Ready against a GC
// before it was created (heap-B/node).
func BenchmarkCatchUp100k(b *testing.B) {
	const nodes = 100_000
	mb, err := membus.New(membus.Config{RetentionMessages: membus.NoLimit, RetentionBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer mb.Close()
	msgs := make([]*bus.Message, 0, 1000)
	for i := range nodes {
		st := registration.StateActive
		if i%10 == 0 {
			st = registration.StateAwaitingAck
		}
		msgs = append(msgs, snapMsg(b, spec{id: uuid.New(), typ: fmt.Sprintf("type-%d", i%8), state: st, version: 1}))
		if len(msgs) == cap(msgs) {
			publish(b, mb, msgs...)
			msgs = msgs[:0]
		}
	}
	msgs = nil

	var total time.Duration
	var heap uint64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		c, err := discovery.New(mb)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		<-c.Ready()
		total += time.Since(t0)
		b.StopTimer()
		if n := c.Len(); n != nodes {
			b.Fatalf("%d nodes at Ready, want %d", n, nodes)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap += after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
		runtime.KeepAlive(c)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
	b.ReportMetric(float64(heap)/float64(b.N)/nodes, "heap-B/node")
}
