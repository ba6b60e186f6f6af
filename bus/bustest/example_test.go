package bustest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
)

// A unit test of a consumer: subscribe it to a Recorder, hand it messages
// synchronously, and look at what it published.
func ExampleRecorder() {
	var rec bustest.Recorder
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	// The code under test: echoes every message to "out", rejects empty ones.
	handler := func(ctx context.Context, m *bus.Message) error {
		if len(m.Value) == 0 {
			return bus.NewContentError(errors.New("empty message"))
		}
		return rec.Publish(ctx, &bus.Message{Topic: "out", Key: m.Key, Value: append([]byte("echo: "), m.Value...)})
	}
	go func() { _ = rec.Subscribe(ctx, "echo", []string{"in"}, handler, bus.WithDeadLetterTopic("in.dlq")) }()
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rec.WaitSubscribed(wait, "echo", "in"); err != nil {
		fmt.Println(err)
		return
	}

	fmt.Println(rec.Deliver(ctx, &bus.Message{Topic: "in", Key: []byte("k"), Value: []byte("hello")}))
	fmt.Println(rec.Deliver(ctx, &bus.Message{Topic: "in", Key: []byte("k")}))
	for _, m := range rec.Published() {
		fmt.Printf("%s %q %q", m.Topic, m.Key, m.Value)
		if reason, ok := m.Headers[bus.HeaderDLQReason]; ok {
			fmt.Printf(" (dead letter: %s)", reason)
		}
		fmt.Println()
	}

	rec.FailPublish(errors.New("broker down"), 1)
	fmt.Println(rec.Deliver(ctx, &bus.Message{Topic: "in", Value: []byte("again")}))
	// Output:
	// <nil>
	// content error: empty message
	// out "k" "echo: hello"
	// in.dlq "k" "" (dead letter: empty message)
	// broker down
}
