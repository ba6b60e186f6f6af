package bustest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
)

func testLargeMessage(e *env) {
	size := e.f.LargeMessageBytes
	if size < 0 {
		e.t.Skip("Features.LargeMessageBytes is negative")
	}
	if size == 0 {
		size = 1 << 20
	}
	topic := e.topic()
	value := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = rng.Read(value)
	e.publish(&bus.Message{Topic: topic, Key: []byte("large"), Value: value})
	var in inbox
	e.subscribe(e.name("group"), []string{topic}, collect(&in))
	e.eventually("the large message", func() bool { return in.len() >= 1 })
	got := in.all()[0]
	if !bytes.Equal(got.Value, value) {
		e.t.Errorf("a %d-byte value came back as %d bytes, or changed", len(value), len(got.Value))
	}
	if string(got.Key) != "large" {
		e.t.Errorf("Key = %q, want %q", got.Key, "large")
	}
}

func testCloseWhileBusy(e *env) {
	t := e.t
	b := e.b
	topic := e.topic()
	group := e.name("group")

	entered := make(chan struct{})
	var once sync.Once
	var ctxErr atomic.Value
	var returned atomic.Bool
	h := func(ctx context.Context, m *bus.Message) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		ctxErr.Store(ctx.Err())
		time.Sleep(10 * time.Millisecond) // widen the window for Close not waiting
		returned.Store(true)
		return ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.f.timeout())
	defer cancel()
	if err := b.Publish(ctx, &bus.Message{Topic: topic, Key: []byte("k"), Value: []byte("busy")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- b.Subscribe(context.Background(), group, []string{topic}, h) }()
	e.wait("the handler call", entered)

	closeDone := make(chan error, 1)
	go func() { closeDone <- b.Close() }()
	select {
	case err := <-closeDone:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(e.f.timeout()):
		t.Fatalf("Close did not return within %v while a handler was busy", e.f.timeout())
	}
	if !returned.Load() {
		t.Errorf("Close returned before the handler call in progress did")
	}
	if ctxErr.Load() == nil {
		t.Errorf("the handler's context was not canceled by Close")
	}
	select {
	case err := <-subDone:
		if !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Subscribe ended by Close returned %v, want bus.ErrClosed", err)
		}
	case <-time.After(e.f.timeout()):
		t.Fatalf("Subscribe did not return after Close")
	}

	if err := b.Publish(ctx, &bus.Message{Topic: topic, Value: []byte("late")}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close = %v, want bus.ErrClosed", err)
	}
	env := &bus.Envelope{EnvelopeID: [16]byte{1}, EnvelopeTimestamp: time.Now(), Payload: []byte(`1`)}
	if err := b.PublishEnvelope(ctx, topic, env); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("PublishEnvelope after Close = %v, want bus.ErrClosed", err)
	}
	late := make(chan error, 2)
	go func() {
		late <- b.Subscribe(ctx, group, []string{topic}, func(context.Context, *bus.Message) error { return nil })
	}()
	bs, isBatch := b.(bus.BatchSubscriber)
	if isBatch {
		go func() {
			late <- bs.SubscribeBatch(ctx, group, []string{topic}, func(context.Context, []*bus.Message) error { return nil })
		}()
	}
	for range 1 + btoi(isBatch) {
		select {
		case err := <-late:
			if !errors.Is(err, bus.ErrClosed) {
				t.Errorf("Subscribe after Close = %v, want bus.ErrClosed", err)
			}
		case <-time.After(e.f.timeout()):
			t.Fatalf("Subscribe after Close did not return")
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if e.leakOpts != nil {
		goleak.VerifyNone(t, e.leakOpts...)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
