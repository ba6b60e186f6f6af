package memory_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

// TestReaderHoldsNothingBack holds a reader's handler while far more
// messages than the partition retains are published: no publish blocks, and
// the reader, released, skips what retention dropped and goes on with the
// oldest retained message.
func TestReaderHoldsNothingBack(t *testing.T) {
	const retain, total = 10, 500
	b := newBus(t, memory.Config{Partitions: 1, RetentionMessages: retain})
	hold := make(chan struct{})
	var got values
	started := make(chan struct{})
	stop := run(t, func(ctx context.Context) error {
		return b.ReadPartition(ctx, "t", 0, func(ctx context.Context, m *bus.Message) error {
			got.add(string(m.Value))
			select {
			case <-hold:
			case <-ctx.Done():
			}
			return nil
		}, bus.WithReadStarted(func(start, next int64) { close(started) }))
	})
	<-started
	if n := b.Readers(); n != 1 {
		t.Errorf("Readers() = %d with one reader, want 1", n)
	}
	publish(t, b, msgs("t", nil, "m", 0, 1)...)
	eventually(t, "the first message to be handled", func() bool { return len(got.get()) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Publish(ctx, msgs("t", nil, "m", 1, total)...); err != nil {
		t.Fatalf("Publish while a reader is held: %v (a reader must not hold publishers back)", err)
	}
	if oldest, next := b.Offsets("t", 0); next-oldest > retain || next != total {
		t.Fatalf("Offsets = %d, %d: want the last %d of %d retained", oldest, next, retain, total)
	}
	close(hold)
	want := append([]string{"m0"}, seq("m", total-retain, total)...)
	eventually(t, "the retained messages", func() bool { return len(got.get()) >= len(want) })
	if g := got.get(); !slices.Equal(g, want) {
		t.Errorf("reader handed %q, want %q", g, want)
	}
	if err := stop(); err != nil {
		t.Errorf("ReadPartition = %v after its context ended, want nil", err)
	}
	if n := b.Readers(); n != 0 {
		t.Errorf("Readers() = %d after the reader returned, want 0", n)
	}
}

// TestReaderNextAfterRetention checks Started's offsets when retention
// dropped the partition's first messages: start is the oldest retained
// offset, next the offset after the last.
func TestReaderNextAfterRetention(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1, RetentionMessages: 5})
	publish(t, b, msgs("t", nil, "m", 0, 12)...)
	type offs struct{ start, next int64 }
	for _, tc := range []struct {
		opts []bus.ReadOption
		want offs
	}{
		{nil, offs{12, 12}},
		{[]bus.ReadOption{bus.ReadFromOldest()}, offs{7, 12}},
	} {
		ch := make(chan offs, 1)
		ctx, cancel := context.WithCancel(context.Background())
		opts := append(tc.opts, bus.WithReadStarted(func(start, next int64) {
			ch <- offs{start, next}
			cancel()
		}))
		err := b.ReadPartition(ctx, "t", 0, func(context.Context, *bus.Message) error { return nil }, opts...)
		if err != nil {
			t.Errorf("ReadPartition = %v, want nil", err)
		}
		if got := <-ch; got != tc.want {
			t.Errorf("Started(%d, %d), want (%d, %d)", got.start, got.next, tc.want.start, tc.want.next)
		}
	}
	if err := b.ReadPartition(context.Background(), "t", 1, func(context.Context, *bus.Message) error { return nil }); err == nil || errors.Is(err, bus.ErrClosed) {
		t.Errorf("ReadPartition of partition 1 of 1 = %v, want a range error", err)
	}
}
