package kafka_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// TestCloseLeavesNoGoroutine uses every part of a bus (publishing, a
// subscription, a batch subscription, dead-lettering, a retrying handler),
// closes it while handlers are busy, and checks that no goroutine it
// started is left: neither the bus's, nor sarama's, nor the fake broker's
// side of the bus's connections.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	c := kafkatest.Start(t)
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, leakOptions[0])

	b, err := kafka.New(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Publish(ctx, sequenced("leak", "m", 50, 5)...); err != nil {
		t.Fatal(err)
	}
	var got log
	busy := make(chan struct{}, 1)
	subDone := make(chan error, 2)
	go func() {
		subDone <- b.Subscribe(ctx, "each", []string{"leak"}, func(ctx context.Context, m *bus.Message) error {
			got.add(m)
			switch string(m.Value) {
			case "m-3":
				return bus.NewContentError(errors.New("bad"))
			case "m-7":
				return errors.New("retry me")
			}
			return nil
		}, bus.WithDeadLetterTopic("leak.dlq"))
	}()
	go func() {
		subDone <- b.SubscribeBatch(ctx, "batch", []string{"leak"}, func(ctx context.Context, msgs []*bus.Message) error {
			select {
			case busy <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	<-busy
	eventually(t, "the retried message", func() bool {
		n := 0
		for _, m := range got.all() {
			if string(m.Value) == "m-7" {
				n++
			}
		}
		return n >= 2
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-subDone; !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Subscribe = %v after Close, want bus.ErrClosed", err)
		}
	}
	goleak.VerifyNone(t, opts...)
}
