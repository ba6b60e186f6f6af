package memory_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

// BenchmarkPublishConsume measures keyed publish -> consume throughput: the
// benchmark's parallel goroutines publish b.N messages over 1024 keys (a
// 256-byte value and two headers each) to a 12-partition topic, while one
// group consumes them; it reports the end-to-end rate as msgs/s. ns/op and
// allocs/op are per message, publish and delivery together.
func BenchmarkPublishConsume(b *testing.B) {
	for _, mode := range []string{"Handler", "Batch"} {
		b.Run(mode, func(b *testing.B) {
			bb, err := memory.New(memory.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close()
			const topic = "bench"
			keys := make([][]byte, 1024)
			for i := range keys {
				keys[i] = []byte("entity-" + strconv.Itoa(i))
			}
			value := make([]byte, 256)
			headers := bus.Headers{bus.HeaderContentType: bus.ContentTypeJSON, bus.HeaderEventType: "bench"}

			var consumed atomic.Int64
			total := int64(b.N)
			done := make(chan struct{})
			count := func(n int) {
				if consumed.Add(int64(n)) == total {
					close(done)
				}
			}
			ready := make(chan struct{})
			var once sync.Once
			onAssign := bus.WithOnAssign(func(map[string][]int32) { once.Do(func() { close(ready) }) })
			ctx, cancel := context.WithCancel(context.Background())
			subDone := make(chan error, 1)
			go func() {
				if mode == "Batch" {
					subDone <- bb.SubscribeBatch(ctx, "g", []string{topic}, func(_ context.Context, msgs []*bus.Message) error {
						count(len(msgs))
						return nil
					}, onAssign)
				} else {
					subDone <- bb.Subscribe(ctx, "g", []string{topic}, func(context.Context, *bus.Message) error {
						count(1)
						return nil
					}, onAssign)
				}
			}()
			<-ready

			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				m := &bus.Message{Topic: topic, Value: value, Headers: headers}
				for pb.Next() {
					m.Key = keys[next.Add(1)%int64(len(keys))]
					m.Timestamp = time.Time{}
					if err := bb.Publish(ctx, m); err != nil {
						panic(fmt.Sprint("Publish: ", err))
					}
				}
			})
			<-done
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			cancel()
			if err := <-subDone; err != nil {
				b.Fatal(err)
			}
		})
	}
}
