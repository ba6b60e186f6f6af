package memory_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

func TestPublishFault(t *testing.T) {
	boom := errors.New("broker unavailable")
	var calls int
	b := newBus(t, memory.Config{Partitions: 1, PublishFault: func(m *bus.Message) error {
		calls++
		if string(m.Value) == "boom" {
			return boom
		}
		return nil
	}})
	err := b.Publish(context.Background(), msgs("t", nil, "a", 0, 1)[0], &bus.Message{Topic: "t", Value: []byte("boom")}, &bus.Message{Topic: "t", Value: []byte("c")})
	if !errors.Is(err, boom) {
		t.Fatalf("Publish = %v, want the injected fault", err)
	}
	if _, next := b.Offsets("t", 0); next != 1 {
		t.Errorf("%d messages stored, want only the one before the fault", next)
	}
	if calls != 2 {
		t.Errorf("PublishFault called %d times, want 2 (not for messages after the failed one)", calls)
	}
	publish(t, b, &bus.Message{Topic: "t", Value: []byte("c")})
}

// failFirst returns a HandlerFault that fails the first delivery of every
// message to group, and counts its calls per offset.
func failFirst(group string, err error) (func(string, *bus.Message) error, func(int64) int) {
	var mu sync.Mutex
	calls := make(map[int64]int)
	fault := func(g string, m *bus.Message) error {
		if g != group {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		calls[m.Offset]++
		if calls[m.Offset] == 1 {
			return err
		}
		return nil
	}
	return fault, func(off int64) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[off]
	}
}

func TestHandlerFaultRedelivers(t *testing.T) {
	fault, calls := failFirst("g", errors.New("crash before commit"))
	b := newBus(t, memory.Config{Partitions: 1, HandlerFault: fault})
	publish(t, b, msgs("t", nil, "m", 0, 5)...)
	var got, other values
	subscribe(t, b, "g", []string{"t"}, got.handler(), bus.WithRetryBackoff(time.Millisecond, 2*time.Millisecond))
	subscribe(t, b, "h", []string{"t"}, other.handler())
	eventually(t, "both groups to finish", func() bool { return len(got.get()) == 5 && len(other.get()) == 5 })
	if want := seq("m", 0, 5); !slices.Equal(got.get(), want) || !slices.Equal(other.get(), want) {
		t.Errorf("handled %q and %q, want each message once, in order", got.get(), other.get())
	}
	for off := range int64(5) {
		if n := calls(off); n != 2 {
			t.Errorf("offset %d: %d fault calls, want 2 (the failed delivery and the redelivery)", off, n)
		}
	}
}

func TestHandlerFaultContentErrorDeadLetters(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, HandlerFault: func(group string, m *bus.Message) error {
		if group == "g" && string(m.Value) == "poison" {
			return bus.NewContentError(errors.New("injected poison"))
		}
		return nil
	}})
	publish(t, b, &bus.Message{Topic: "t", Value: []byte("a")}, &bus.Message{Topic: "t", Value: []byte("poison")}, &bus.Message{Topic: "t", Value: []byte("b")})
	var got, dead values
	subscribe(t, b, "g", []string{"t"}, got.handler(), bus.WithDeadLetterTopic("t.dlq"))
	subscribe(t, b, "d", []string{"t.dlq"}, dead.handler())
	eventually(t, "the dead letter", func() bool { return len(dead.get()) == 1 && len(got.get()) == 2 })
	if !slices.Equal(got.get(), []string{"a", "b"}) || dead.get()[0] != "poison" {
		t.Errorf("handled %q, dead-lettered %q", got.get(), dead.get())
	}
	dl := b.Messages("t.dlq", 0)[0]
	if dl.Headers[bus.HeaderDLQReason] != "injected poison" || dl.Headers[bus.HeaderDLQOriginalOffset] != "1" {
		t.Errorf("dead letter headers %v", dl.Headers)
	}
}

func TestHandlerFaultInBatch(t *testing.T) {
	var mu sync.Mutex
	calls := make(map[int64]int)
	b := newBus(t, memory.Config{Partitions: 1, HandlerFault: func(_ string, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		calls[m.Offset]++
		if m.Offset == 3 && calls[m.Offset] == 1 {
			return errors.New("crash")
		}
		return nil
	}})
	publish(t, b, msgs("t", nil, "m", 0, 10)...)
	var bmu sync.Mutex
	var batches [][]string
	subscribeBatch(t, b, "g", []string{"t"}, func(_ context.Context, ms []*bus.Message) error {
		var vs []string
		for _, m := range ms {
			vs = append(vs, string(m.Value))
		}
		bmu.Lock()
		defer bmu.Unlock()
		batches = append(batches, vs)
		return nil
	}, bus.WithMaxBatch(10, 0), bus.WithRetryBackoff(time.Millisecond, 2*time.Millisecond))
	get := func() [][]string {
		bmu.Lock()
		defer bmu.Unlock()
		return slices.Clone(batches)
	}
	eventually(t, "two batches", func() bool { return len(get()) == 2 })
	got := get()
	if !slices.Equal(got[0], seq("m", 0, 3)) || !slices.Equal(got[1], seq("m", 3, 10)) {
		t.Errorf("batches %q, want m0..m2 (the handler sees the messages before the faulty one), then m3..m9", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[3] != 2 {
		t.Errorf("offset 3: %d fault calls, want 2 (one per delivery)", calls[3])
	}
	for _, off := range []int64{0, 1, 2, 4, 9} {
		if calls[off] != 1 {
			t.Errorf("offset %d: %d fault calls, want 1", off, calls[off])
		}
	}
}
