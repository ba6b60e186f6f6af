package node_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/registrar-go/registrar/node"
)

// BenchmarkHeartbeats10k: 10,000 SDK nodes, active, on the memory bus
// against the registration Runtime (memory store and registry). Each
// iteration moves the clock one heartbeat interval (plus its jitter), so
// every node heartbeats once, and waits until the runtime handled all of
// them. It reports heartbeats/s end to end (node, bus, decision, store)
// and the messages each node read per iteration: a node reads none of the
// others' heartbeats.
func BenchmarkHeartbeats10k(b *testing.B) {
	const n = 10_000
	w := newWorld(b, newMemBus(b, 0), false)
	heap0, g0 := heapInUse(), runtime.NumGoroutine()
	nodes := w.start(n)
	w.waitFor("every node active", all(nodes, node.StateActive))
	w.settle()
	// What the nodes hold, with the store's projections and the bus's
	// retained messages of their registrations.
	heapPerNode := float64(heapInUse()-heap0) / n
	goroutinesPerNode := float64(runtime.NumGoroutine()-g0) / n
	step := time.Duration(float64(20*time.Second) * (1 + node.DefaultJitter))
	read0 := totalRead(nodes)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		handled := w.rt.Stats().Handled
		w.clock.Advance(step)
		w.waitFor("the round's heartbeats handled", func() bool { return w.rt.Stats().Handled >= handled+n })
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "heartbeats/s")
	b.ReportMetric(float64(totalRead(nodes)-read0)/float64(n*b.N), "msgs-read/node/round")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(heapPerNode, "heap-B/node")
	b.ReportMetric(goroutinesPerNode, "goroutines/node")
	var hb int64
	for _, nd := range nodes {
		hb += nd.Stats().Heartbeats
	}
	if hb < int64(n*b.N) {
		b.Fatalf("%d heartbeats sent, want %d", hb, n*b.N)
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func totalRead(nodes []*node.Node) int64 {
	var t int64
	for _, nd := range nodes {
		t += nd.Stats().MessagesRead
	}
	return t
}
