package memory_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

func TestRetentionWithoutGroups(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, RetentionMessages: 5})
	publish(t, b, msgs("t", nil, "m", 0, 12)...)
	if oldest, next := b.Offsets("t", 0); oldest != 7 || next != 12 {
		t.Errorf("Offsets = %d, %d; want 7, 12", oldest, next)
	}
	var got []string
	for _, m := range b.Messages("t", 0) {
		got = append(got, string(m.Value))
	}
	if want := seq("m", 7, 12); !slices.Equal(got, want) {
		t.Errorf("retained %q, want %q", got, want)
	}
}

func TestRetentionBytes(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, RetentionMessages: memory.NoLimit, RetentionBytes: 100})
	for range 10 {
		publish(t, b, &bus.Message{Topic: "t", Value: bytes.Repeat([]byte("x"), 30)})
	}
	if oldest, next := b.Offsets("t", 0); oldest != 7 || next != 10 {
		t.Errorf("Offsets = %d, %d; want 7, 10 (three 30-byte messages fit in 100 bytes)", oldest, next)
	}
	// Headers count too: 2 x 20 bytes of headers + 30 of value leave room for one.
	publish(t, b, &bus.Message{Topic: "t", Value: bytes.Repeat([]byte("y"), 30),
		Headers: bus.Headers{"aaaaaaaaaa": "bbbbbbbbbb", "cccccccccc": "dddddddddd"}})
	if oldest, next := b.Offsets("t", 0); oldest != 9 || next != 11 {
		t.Errorf("Offsets = %d, %d; want 9, 11", oldest, next)
	}
}

func TestRetentionOversizedMessage(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, RetentionBytes: 10})
	publish(t, b, &bus.Message{Topic: "t", Value: []byte("small")})
	publish(t, b, &bus.Message{Topic: "t", Value: bytes.Repeat([]byte("L"), 50)})
	if oldest, next := b.Offsets("t", 0); oldest != 1 || next != 2 {
		t.Errorf("Offsets = %d, %d; want 1, 2: the oversized message alone", oldest, next)
	}
	publish(t, b, &bus.Message{Topic: "t", Value: []byte("next")})
	if oldest, next := b.Offsets("t", 0); oldest != 2 || next != 3 {
		t.Errorf("Offsets = %d, %d; want 2, 3", oldest, next)
	}
}

// gate is a handler that records each value and blocks until released (or
// its context ends, which it reports as an error).
type gate struct {
	values
	open    chan struct{}
	entered chan string
}

func newGate() *gate { return &gate{open: make(chan struct{}), entered: make(chan string, 100)} }

func (g *gate) handler(ctx context.Context, m *bus.Message) error {
	g.entered <- string(m.Value)
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.add(string(m.Value))
	return nil
}

func TestBackPressureBlocksPublishUntilCommit(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, RetentionMessages: 4})
	g := newGate()
	opt, parts := assigned()
	subscribe(t, b, "slow", []string{"t"}, g.handler, opt)
	eventually(t, "the assignment", func() bool { return len(parts("t")) == 1 })

	publish(t, b, msgs("t", nil, "m", 0, 4)...)
	<-g.entered // m0 is in progress, nothing committed
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.Publish(ctx, &bus.Message{Topic: "t", Value: []byte("m4")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish beyond retention with an uncommitted backlog = %v, want it to block until ctx ended", err)
	}
	if lag := b.Lag("slow"); lag != 4 {
		t.Errorf("Lag = %d, want 4", lag)
	}

	done := make(chan error, 1)
	go func() { done <- b.Publish(context.Background(), msgs("t", nil, "m", 4, 8)...) }()
	close(g.open)
	if err := <-done; err != nil {
		t.Fatalf("Publish after the group caught up: %v", err)
	}
	eventually(t, "all 8 messages", func() bool { return len(g.get()) == 8 })
	if got := g.get(); !slices.Equal(got, seq("m", 0, 8)) {
		t.Errorf("handled %q", got)
	}
	if oldest, next := b.Offsets("t", 0); oldest != 4 || next != 8 {
		t.Errorf("Offsets = %d, %d; want 4, 8", oldest, next)
	}
	eventually(t, "the last commit", func() bool { return b.Committed("slow", "t", 0) == 8 })
	if lag := b.Lag("slow"); lag != 0 {
		t.Errorf("Lag = %d, want 0", lag)
	}
}

func TestBackPressureFollowsTheSlowestActiveGroup(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, RetentionMessages: 3})
	var fast values
	opt1, parts1 := assigned()
	subscribe(t, b, "fast", []string{"t"}, fast.handler(), opt1)
	g := newGate()
	opt2, parts2 := assigned()
	stopSlow := subscribe(t, b, "slow", []string{"t"}, g.handler, opt2)
	eventually(t, "both groups assigned", func() bool { return len(parts1("t")) == 1 && len(parts2("t")) == 1 })

	publish(t, b, msgs("t", nil, "m", 0, 3)...)
	eventually(t, "the fast group to commit everything", func() bool { return b.Committed("fast", "t", 0) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Publish(ctx, &bus.Message{Topic: "t", Value: []byte("m3")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want it held back by the slow group", err)
	}

	// The slow group leaving releases the publisher: a group without
	// members holds nothing back.
	done := make(chan error, 1)
	go func() { done <- b.Publish(context.Background(), msgs("t", nil, "m", 3, 6)...) }()
	if err := stopSlow(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Publish after the slow group left: %v", err)
	}
	eventually(t, "the fast group to get all 6", func() bool { return len(fast.get()) == 6 })
	if c := b.Committed("slow", "t", 0); c != 0 {
		t.Errorf("slow group committed %d, want 0 (its handler never returned nil)", c)
	}

	// Coming back, it resumes at the oldest retained message: what
	// retention dropped meanwhile is skipped, and counted out of its lag.
	oldest, next := b.Offsets("t", 0)
	if oldest != 3 || next != 6 {
		t.Fatalf("Offsets = %d, %d; want 3, 6", oldest, next)
	}
	if lag := b.Lag("slow"); lag != 3 {
		t.Errorf("Lag of the returning group = %d, want the 3 retained", lag)
	}
	var back values
	subscribe(t, b, "slow", []string{"t"}, back.handler())
	eventually(t, "the returning group to catch up", func() bool { return len(back.get()) == 3 })
	if got := back.get(); !slices.Equal(got, seq("m", 3, 6)) {
		t.Errorf("returning group got %q, want the retained m3..m5", got)
	}
}

func TestBackPressureEndsWithClose(t *testing.T) {
	b, err := memory.New(memory.Config{Partitions: 1, RetentionMessages: 1})
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	opt, parts := assigned()
	subDone := make(chan error, 1)
	go func() { subDone <- b.Subscribe(context.Background(), "slow", []string{"t"}, g.handler, opt) }()
	eventually(t, "the assignment", func() bool { return len(parts("t")) == 1 })
	publish(t, b, &bus.Message{Topic: "t", Value: []byte("m0")})
	<-g.entered
	done := make(chan error, 1)
	go func() { done <- b.Publish(context.Background(), &bus.Message{Topic: "t", Value: []byte("m1")}) }()
	// Close must not wait for the blocked publisher, and must end it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, bus.ErrClosed) {
		t.Errorf("blocked Publish after Close = %v, want ErrClosed", err)
	}
	if err := <-subDone; !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}
