package kafka_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// TestCommitAfterHandler checks that only acknowledged messages are
// committed, across a restart of the whole bus: a message whose handler kept
// failing is delivered again by a new bus in the same group, and the
// messages acknowledged before it are not. A content error is dead-lettered
// and committed: it is not delivered again either.
func TestCommitAfterHandler(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const topic, dlq, group = "commit", "commit.dlq", "workers"
	// One partition holds every key, so "after" is well defined.
	one := func(cfg *kafka.Config) { cfg.Partitions = 1 }

	b1 := c.NewBus(t, one)
	msgs := sequenced(topic, "m", 10, 3)
	if err := b1.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	var first log
	var failures atomic.Int32
	r := subscribe(t, b1, group, []string{topic}, func(_ context.Context, m *bus.Message) error {
		first.add(m)
		switch string(m.Value) {
		case "m-2":
			return bus.NewContentError(errors.New("cannot decode"))
		case "m-6":
			failures.Add(1)
			return errors.New("database down")
		}
		return nil
	}, bus.WithDeadLetterTopic(dlq), bus.WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	eventually(t, "m-6 to fail three times", func() bool { return failures.Load() >= 3 })
	r.stop(t)
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"m-0", "m-1", "m-2", "m-3", "m-4", "m-5"}
	if got := values(first.all()); !slices.Equal(got[:len(want)], want) || slices.Contains(got, "m-7") {
		t.Fatalf("first bus handled %q, want %q then only m-6", got, want)
	}

	// A new bus in the same group starts at the failed message.
	b2 := c.NewBus(t, one)
	var second, dead log
	subscribe(t, b2, group, []string{topic}, second.handler())
	subscribe(t, b2, "dlq-reader", []string{dlq}, dead.handler())
	eventually(t, "the rest of the partition", func() bool { return second.len() >= 4 })
	eventually(t, "the dead letter", func() bool { return dead.len() >= 1 })
	time.Sleep(200 * time.Millisecond) // time for a wrong redelivery to show
	if got, want := values(second.all()), []string{"m-6", "m-7", "m-8", "m-9"}; !slices.Equal(got, want) {
		t.Errorf("after the restart the group got %q, want %q", got, want)
	}
	d := dead.all()
	if len(d) != 1 || string(d[0].Value) != "m-2" ||
		d[0].Headers[bus.HeaderDLQOriginalTopic] != topic ||
		d[0].Headers[bus.HeaderDLQOriginalPart] != "0" ||
		d[0].Headers[bus.HeaderDLQOriginalOffset] != strconv.FormatInt(msgs[2].Offset, 10) ||
		d[0].Headers[bus.HeaderDLQReason] != "cannot decode" ||
		d[0].Headers["seq"] != "2" {
		t.Errorf("dead letters %v, want m-2 with its origin, reason and own headers", d)
	}
}

func values(msgs []*bus.Message) []string {
	var vs []string
	for _, m := range msgs {
		vs = append(vs, string(m.Value))
	}
	return vs
}
