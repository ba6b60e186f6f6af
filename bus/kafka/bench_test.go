package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/registrar-go/registrar/bus"
)

// Shape of BenchmarkPublish's load.
const (
	benchPublishers = 4096
	benchKeys       = 1000
	benchValueBytes = 128
	benchPartitions = 12
)

// BenchmarkPublish compares Bus.Publish, one message per call from many
// concurrent publishers that each wait for their acknowledgement, with raw
// sarama: the same publishers feeding an AsyncProducer (same configuration:
// idempotent, acks=all, murmur2, no linger) without waiting, and one
// goroutine draining its successes. Both run against the same in-process
// kfake cluster, one after the other, and report msgs/s, the process's CPU
// time per message (less sensitive to a busy machine than wall time), and
// messages per produce request.
//
// The ratio registrar/raw is the cost of per-call acknowledgement. Raw
// sarama keeps its pipeline full and so sends few, large requests; a
// publisher that waits for its acknowledgement is back only after a round
// trip, and against a broker that answers in microseconds the requests
// carry only what arrived meanwhile. The ratio therefore grows with the
// number of publishers and with the broker's latency (a real cluster's
// replicated acks take milliseconds).
func BenchmarkPublish(b *testing.B) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(benchPartitions, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	var produces atomic.Int64
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		produces.Add(1)
		return nil, nil, false
	})
	report := func(b *testing.B, before int64, cpuBefore time.Duration) {
		b.ReportMetric(float64(b.N)/float64(produces.Load()-before), "msgs/req")
		b.ReportMetric(float64(cpuTime()-cpuBefore)/float64(b.N), "cpu-ns/msg")
	}
	cfg := Config{Brokers: cluster.ListenAddrs()}
	value := make([]byte, benchValueBytes)
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "entity-%d", i)
	}
	headers := bus.Headers{bus.HeaderContentType: bus.ContentTypeJSON, bus.HeaderEventType: "bench"}

	b.Run("registrar", func(b *testing.B) {
		bb, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = bb.Close() }()
		ctx := context.Background()
		warm := &bus.Message{Topic: "bench", Key: keys[0], Value: value}
		if err := bb.Publish(ctx, warm); err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		before, cpuBefore := produces.Load(), cpuTime()
		defer report(b, before, cpuBefore)
		var wg sync.WaitGroup
		for range benchPublishers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					m := &bus.Message{Topic: "bench", Key: keys[i%benchKeys], Value: value, Headers: headers}
					if err := bb.Publish(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})

	b.Run("raw-sarama-async", func(b *testing.B) {
		sc, err := cfg.withDefaults().saramaConfig()
		if err != nil {
			b.Fatal(err)
		}
		p, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = p.Close() }()
		p.Input() <- &sarama.ProducerMessage{Topic: "bench", Key: sarama.ByteEncoder(keys[0]), Value: sarama.ByteEncoder(value)}
		select {
		case <-p.Successes():
		case err := <-p.Errors():
			b.Fatal(err)
		}
		hs := []sarama.RecordHeader{
			{Key: []byte(bus.HeaderContentType), Value: []byte(bus.ContentTypeJSON)},
			{Key: []byte(bus.HeaderEventType), Value: []byte("bench")},
		}
		var next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		before, cpuBefore := produces.Load(), cpuTime()
		defer report(b, before, cpuBefore)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range b.N {
				select {
				case <-p.Successes():
				case err := <-p.Errors():
					b.Error(err)
				}
			}
		}()
		var wg sync.WaitGroup
		for range benchPublishers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					p.Input() <- &sarama.ProducerMessage{Topic: "bench", Key: sarama.ByteEncoder(keys[i%benchKeys]),
						Value: sarama.ByteEncoder(value), Headers: hs}
				}
			})
		}
		wg.Wait()
		<-done
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

// cpuTime returns the CPU time the process used so far, user and system:
// unlike wall time, it hardly depends on what else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
