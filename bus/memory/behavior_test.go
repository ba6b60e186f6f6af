package memory_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

func TestPublishCopiesBuffers(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1})
	key, value := []byte("key"), []byte("value")
	h := bus.Headers{"h": "1"}
	publish(t, b, &bus.Message{Topic: "t", Key: key, Value: value, Headers: h})
	key[0], value[0], h["h"] = 'X', 'X', "changed"
	m := b.Messages("t", 0)[0]
	if string(m.Key) != "key" || string(m.Value) != "value" || m.Headers["h"] != "1" {
		t.Errorf("stored message changed with the caller's buffers: %q %q %v", m.Key, m.Value, m.Headers)
	}
	// Messages returns clones too.
	m.Value[0] = 'Y'
	if string(b.Messages("t", 0)[0].Value) != "value" {
		t.Errorf("Messages exposed the stored buffer")
	}
	if b.Messages("nope", 0) != nil || b.Messages("t", 1) != nil || b.Messages("t", -1) != nil {
		t.Errorf("Messages of a missing topic or partition is not nil")
	}
}

func TestPublishKeepsNilAndEmpty(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1})
	publish(t, b,
		&bus.Message{Topic: "t"},
		&bus.Message{Topic: "t", Key: []byte{}, Value: []byte{}},
		&bus.Message{Topic: "t", Value: []byte("v")},
	)
	ms := b.Messages("t", 0)
	if ms[0].Key != nil || ms[0].Value != nil {
		t.Errorf("nil key/value stored as %q/%q", ms[0].Key, ms[0].Value)
	}
	if ms[1].Key == nil || ms[1].Value == nil {
		t.Errorf("empty key/value stored as nil: an empty key is a key")
	}
	if ms[2].Key != nil {
		t.Errorf("nil key stored as %q", ms[2].Key)
	}
}

func TestPublishValidation(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1})
	ctx := context.Background()
	if err := b.Publish(ctx, &bus.Message{Topic: "t"}, nil); err == nil {
		t.Errorf("Publish of a nil message returned nil")
	}
	if err := b.Publish(ctx, &bus.Message{Topic: "t"}, &bus.Message{}); err == nil {
		t.Errorf("Publish of a message without topic returned nil")
	}
	if _, next := b.Offsets("t", 0); next != 0 {
		t.Errorf("an invalid call stored %d messages, want none", next)
	}
	if err := b.PublishEnvelope(ctx, "t", &bus.Envelope{}); err == nil {
		t.Errorf("PublishEnvelope of an invalid envelope returned nil")
	}
	if err := b.Publish(ctx); err != nil {
		t.Errorf("Publish of nothing = %v", err)
	}
}

func TestSubscribeValidation(t *testing.T) {
	b := newBus(t, memory.Config{})
	ctx := context.Background()
	h := func(context.Context, *bus.Message) error { return nil }
	for name, err := range map[string]error{
		"empty group":  b.Subscribe(ctx, "", []string{"t"}, h),
		"no topics":    b.Subscribe(ctx, "g", nil, h),
		"empty topic":  b.Subscribe(ctx, "g", []string{"t", ""}, h),
		"nil handler":  b.Subscribe(ctx, "g", []string{"t"}, nil),
		"nil batch":    b.SubscribeBatch(ctx, "g", []string{"t"}, nil),
		"batch, group": b.SubscribeBatch(ctx, "", []string{"t"}, func(context.Context, []*bus.Message) error { return nil }),
	} {
		if err == nil || errors.Is(err, bus.ErrClosed) {
			t.Errorf("%s: Subscribe = %v, want a validation error", name, err)
		}
	}
}

func TestUnkeyedRoundRobin(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 4})
	var got []int32
	for range 8 {
		m := &bus.Message{Topic: "t", Value: []byte("x")}
		publish(t, b, m)
		got = append(got, m.Partition)
	}
	if want := []int32{0, 1, 2, 3, 0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("unkeyed partitions %v, want %v", got, want)
	}
}

func TestClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := newBus(t, memory.Config{Partitions: 1, Now: func() time.Time { return now }})
	m := &bus.Message{Topic: "t", Value: []byte("bad")}
	publish(t, b, m)
	if !m.Timestamp.Equal(now) {
		t.Errorf("Timestamp = %v, want the injected %v", m.Timestamp, now)
	}
	var dead values
	subscribe(t, b, "g", []string{"t"}, func(context.Context, *bus.Message) error {
		return bus.NewContentError(errors.New("no"))
	}, bus.WithDeadLetterTopic("dlq"))
	subscribe(t, b, "d", []string{"dlq"}, dead.handler())
	eventually(t, "the dead letter", func() bool { return len(dead.get()) == 1 })
	if at := b.Messages("dlq", 0)[0].Headers[bus.HeaderDLQDeadLetteredAt]; at != "2030-01-02T03:04:05Z" {
		t.Errorf("dead-lettered at %q, want the injected clock", at)
	}
}

func TestSubscribeSeveralTopics(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 2})
	publish(t, b, &bus.Message{Topic: "a", Value: []byte("a1")}, &bus.Message{Topic: "b", Value: []byte("b1")})
	var got values
	opt, parts := assigned()
	subscribe(t, b, "g", []string{"a", "b", "a"}, got.handler(), opt)
	eventually(t, "both messages", func() bool { return len(got.get()) == 2 })
	if !slices.Equal(parts("a"), []int32{0, 1}) || !slices.Equal(parts("b"), []int32{0, 1}) {
		t.Errorf("assignment a=%v b=%v", parts("a"), parts("b"))
	}
}

func TestBatchWaitCollectsLateMessages(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1})
	var mu sync.Mutex
	var sizes []int
	subscribeBatch(t, b, "g", []string{"t"}, func(_ context.Context, ms []*bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(ms))
		return nil
	}, bus.WithMaxBatch(3, 5*time.Second))
	get := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sizes)
	}
	for i := range 3 {
		publish(t, b, msgs("t", nil, "m", i, i+1)...)
	}
	eventually(t, "a batch", func() bool { return len(get()) > 0 })
	if got := get(); got[0] != 3 {
		t.Errorf("first batch has %d messages; with a 5s wait it should have filled up to 3", got[0])
	}

	// A lone message is delivered once the wait is over.
	b2 := newBus(t, memory.Config{Partitions: 1})
	done := make(chan int, 1)
	subscribeBatch(t, b2, "g", []string{"t"}, func(_ context.Context, ms []*bus.Message) error {
		done <- len(ms)
		return nil
	}, bus.WithMaxBatch(10, 20*time.Millisecond))
	publish(t, b2, msgs("t", nil, "m", 0, 1)...)
	select {
	case n := <-done:
		if n != 1 {
			t.Errorf("batch of %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lone message was never delivered")
	}
}

func TestBatchErrorIndexOutOfRange(t *testing.T) {
	b := newBus(t, memory.Config{Partitions: 1})
	publish(t, b, msgs("t", nil, "m", 0, 3)...)
	var mu sync.Mutex
	var firsts []string
	subscribeBatch(t, b, "g", []string{"t"}, func(_ context.Context, ms []*bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		firsts = append(firsts, string(ms[0].Value))
		if len(firsts) == 1 {
			return &bus.BatchError{Index: 99, Err: errors.New("bad index")}
		}
		return nil
	}, bus.WithRetryBackoff(time.Millisecond, time.Millisecond))
	eventually(t, "the redelivery", func() bool { return b.Committed("g", "t", 0) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(firsts, []string{"m0", "m0"}) {
		t.Errorf("batches started with %q, want the whole batch redelivered once", firsts)
	}
}

func TestLoggerNeverLogsValues(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := newBus(t, memory.Config{Partitions: 1, Logger: log})
	secret := "s3cr3t-password-value"
	publish(t, b, &bus.Message{Topic: "t", Key: []byte("key-" + secret), Value: []byte(secret)})
	var n int
	var dead values
	subscribe(t, b, "g", []string{"t"}, func(context.Context, *bus.Message) error {
		n++
		if n == 1 {
			return errors.New("transient")
		}
		return bus.NewContentError(errors.New("unparseable"))
	}, bus.WithDeadLetterTopic("dlq"), bus.WithRetryBackoff(time.Millisecond, time.Millisecond))
	subscribe(t, b, "d", []string{"dlq"}, dead.handler())
	eventually(t, "the dead letter", func() bool { return len(dead.get()) == 1 })
	out := buf.String()
	for _, want := range []string{"dead-lettered", "redelivering after backoff", "member joined"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Errorf("log contains a message key or value:\n%s", out)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
