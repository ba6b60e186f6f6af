package memory_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/bus/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newBus(t *testing.T, cfg memory.Config) *memory.Bus {
	t.Helper()
	b, err := memory.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	bustest.Run(t, bustest.Features{Partitions: memory.DefaultPartitions, BatchSubscriber: true},
		func(t *testing.T) bus.EventBus { return newBus(t, memory.Config{}) })
}

func TestConformanceSmallRetention(t *testing.T) {
	// The suite publishes up to 100 messages on one partition before it
	// subscribes, so 100 is the least retention it passes with; the
	// concurrent cases then run into back-pressure.
	cfg := memory.Config{Partitions: 4, RetentionMessages: 100, RetentionBytes: 3 << 20}
	bustest.Run(t, bustest.Features{Partitions: 4, BatchSubscriber: true},
		func(t *testing.T) bus.EventBus { return newBus(t, cfg) })
}

func TestConformanceSizeLimit(t *testing.T) {
	// 2 MiB leaves room for the suite's 1 MiB message; the size-limit
	// cases publish and dead-letter messages of exactly 2 MiB.
	cfg := memory.Config{MaxMessageBytes: 2 << 20}
	bustest.Run(t, bustest.Features{Partitions: memory.DefaultPartitions, BatchSubscriber: true, SizeLimited: true},
		func(t *testing.T) bus.EventBus { return newBus(t, cfg) })
}

// run starts sub in a goroutine; the returned stop cancels its context
// and returns its result. The test's cleanup stops it too.
func run(t *testing.T, sub func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Subscribe did not return within 10s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func subscribe(t *testing.T, b *memory.Bus, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) (stop func() error) {
	t.Helper()
	return run(t, func(ctx context.Context) error { return b.Subscribe(ctx, group, topics, h, opts...) })
}

func subscribeBatch(t *testing.T, b *memory.Bus, group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) (stop func() error) {
	t.Helper()
	return run(t, func(ctx context.Context) error { return b.SubscribeBatch(ctx, group, topics, h, opts...) })
}

// eventually polls cond until it holds, failing after 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// assigned returns an OnAssign option and a function that reports the
// member's latest assignment of topic.
func assigned() (bus.SubscribeOption, func(topic string) []int32) {
	var mu sync.Mutex
	var latest map[string][]int32
	opt := bus.WithOnAssign(func(a map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		latest = a
	})
	return opt, func(topic string) []int32 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(latest[topic])
	}
}

// values collects delivered values.
type values struct {
	mu sync.Mutex
	vs []string
}

func (v *values) add(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.vs = append(v.vs, s)
}

func (v *values) get() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.vs)
}

func (v *values) handler() bus.Handler {
	return func(_ context.Context, m *bus.Message) error {
		v.add(string(m.Value))
		return nil
	}
}

func publish(t *testing.T, b *memory.Bus, msgs ...*bus.Message) {
	t.Helper()
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// msgs returns n messages on topic with key (nil: none) and values
// "<prefix><i>".
func msgs(topic string, key []byte, prefix string, from, to int) []*bus.Message {
	var out []*bus.Message
	for i := from; i < to; i++ {
		out = append(out, &bus.Message{Topic: topic, Key: key, Value: []byte(prefix + strconv.Itoa(i))})
	}
	return out
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}
