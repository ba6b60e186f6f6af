package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
)

func TestMain(m *testing.M) {
	// After every test, every cluster and bus is closed: nothing but
	// process-global goroutines may remain.
	goleak.VerifyTestMain(m, leakOptions[:1]...)
}

// waitTimeout bounds every wait of these tests: generous, for a loaded
// machine under -race.
const waitTimeout = 60 * time.Second

// eventually waits until cond holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running is a Subscribe call in its own goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// subscribe runs b.Subscribe until stop or the end of the test.
func subscribe(t *testing.T, b *kafka.Bus, group string, topics []string, h bus.Handler, opts ...bus.SubscribeOption) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = b.Subscribe(ctx, group, topics, h, opts...)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// stop ends the subscription and checks that it returned nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(waitTimeout):
		t.Fatalf("Subscribe did not return after its context ended")
	}
	if r.err != nil {
		t.Fatalf("Subscribe = %v, want nil", r.err)
	}
}

// log records delivered messages, in delivery order, across handlers.
type log struct {
	mu   sync.Mutex
	msgs []*bus.Message
}

func (l *log) add(m *bus.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m.Clone())
}

func (l *log) all() []*bus.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*bus.Message(nil), l.msgs...)
}

func (l *log) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// distinct counts the different values delivered.
func (l *log) distinct() int {
	seen := make(map[string]bool)
	for _, m := range l.all() {
		seen[string(m.Value)] = true
	}
	return len(seen)
}

func (l *log) handler() bus.Handler {
	return func(_ context.Context, m *bus.Message) error {
		l.add(m)
		return nil
	}
}

// sequenced returns n messages for topic over keys keys: key "key-<i%keys>",
// value "<tag>-<i>", header "seq" = i.
func sequenced(topic, tag string, n, keys int) []*bus.Message {
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{
			Topic:   topic,
			Key:     fmt.Appendf(nil, "key-%d", i%keys),
			Value:   fmt.Appendf(nil, "%s-%d", tag, i),
			Headers: bus.Headers{"seq": fmt.Sprint(i)},
		}
	}
	return msgs
}

// checkExactlyOnceInOrder checks that got holds every message of want
// exactly once, and every key's messages in the order of want.
func checkExactlyOnceInOrder(t *testing.T, got []*bus.Message, want []*bus.Message) {
	t.Helper()
	count := make(map[string]int)
	lastSeq := make(map[string]int)
	pos := make(map[string]int, len(want))
	for i, m := range want {
		pos[string(m.Value)] = i
	}
	for _, m := range got {
		v := string(m.Value)
		i, ok := pos[v]
		if !ok {
			t.Errorf("unexpected message %q", v)
			continue
		}
		count[v]++
		k := string(m.Key)
		if last, ok := lastSeq[k]; ok && i <= last {
			t.Errorf("key %s: %q delivered after %q", k, v, want[last].Value)
		}
		lastSeq[k] = i
	}
	for _, m := range want {
		switch n := count[string(m.Value)]; {
		case n == 0:
			t.Errorf("message %q lost", m.Value)
		case n > 1:
			t.Errorf("message %q delivered %d times", m.Value, n)
		}
	}
}

// keyFor returns a key that lands on partition p of n.
func keyFor(p, n int32) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "key-%d", i)
		if bus.KeyPartition(k, n) == p {
			return k
		}
	}
}
