package node_test

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// BenchmarkHeartbeats10k: 10,000 nodes, active, on the memory bus against
// the registration Runtime (memory store and registry).
//
// sdk: each iteration moves the clock one heartbeat interval (plus its
// jitter), so every node.Node heartbeats once, and waits until the runtime
// handled all of them: heartbeats/s end to end (timer, encoding, bus,
// decision, store), and the messages each node read (none: a node reads
// no heartbeat).
//
// raw: the baseline, in the same run on the same world: the nodes paused,
// the benchmark encodes and publishes each node's heartbeat itself from 16
// goroutines, and waits the same way. sdk/raw is what the client costs.
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

	b.Run("sdk", func(b *testing.B) {
		read0 := totalRead(nodes)
		b.ReportAllocs()
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
	})

	for _, nd := range nodes {
		nd.Pause()
	}
	w.settle()
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for range b.N {
			handled := w.rt.Stats().Handled
			w.clock.Advance(step)
			ts := w.clock.Now().UTC()
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < n; i += 16 {
						if err := publishHeartbeat(w.bus, nodes[i].Info(), ts); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			w.waitFor("the round's heartbeats handled", func() bool { return w.rt.Stats().Handled >= handled+n })
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "heartbeats/s")
		b.ReportMetric(0, "ns/op")
	})
}

// publishHeartbeat publishes one heartbeat of the node as a service would
// by hand.
func publishHeartbeat(b bus.EventBus, info node.Info, ts time.Time) error {
	payload, err := json.Marshal(&registration.Heartbeat{NodeID: info.ID, NodeType: info.Type,
		NodeVersion: info.Version.String(), UptimeSeconds: 1, Timestamp: ts})
	if err != nil {
		return err
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: ts, EventType: registration.EventTypeHeartbeat, Payload: payload}
	return b.PublishEnvelope(context.Background(), registration.TopicHeartbeat, env, bus.WithKey([]byte(info.ID.String())))
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
