package bustest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// subscribe runs r.Subscribe in a goroutine and waits until it is
// registered; the returned function stops it and returns its result.
func subscribe(t *testing.T, r *bustest.Recorder, group, topic string, h bus.Handler, opts ...bus.SubscribeOption) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Subscribe(ctx, group, []string{topic}, h, opts...) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := r.WaitSubscribed(wctx, group, topic); err != nil {
		cancel()
		t.Fatal(err)
	}
	stopped := false
	var result error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestRecorderRecordsPublished(t *testing.T) {
	var r bustest.Recorder
	ctx := context.Background()
	stamp := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r.Now = func() time.Time { return stamp }
	msgs := []*bus.Message{
		{Topic: "a", Key: []byte("k1"), Value: []byte("v1"), Headers: bus.Headers{"h": "x"}},
		{Topic: "a", Key: []byte("k1"), Value: []byte("v2")},
		{Topic: "b", Value: []byte("unkeyed-0")},
		{Topic: "b", Value: []byte("unkeyed-1")},
	}
	if err := r.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	want := bus.KeyPartition([]byte("k1"), bustest.DefaultRecorderPartitions)
	if msgs[0].Partition != want || msgs[1].Partition != want {
		t.Errorf("keyed partitions %d, %d, want %d", msgs[0].Partition, msgs[1].Partition, want)
	}
	if msgs[0].Offset != 0 || msgs[1].Offset != 1 {
		t.Errorf("offsets %d, %d, want 0, 1", msgs[0].Offset, msgs[1].Offset)
	}
	if msgs[2].Partition == msgs[3].Partition {
		t.Errorf("unkeyed messages both on partition %d, want round-robin", msgs[2].Partition)
	}
	if !msgs[0].Timestamp.Equal(stamp) {
		t.Errorf("Timestamp = %v, want the injected clock's %v", msgs[0].Timestamp, stamp)
	}
	msgs[0].Headers["h"] = "changed after publish"
	got := r.PublishedTo("a")
	if len(got) != 2 || string(got[0].Value) != "v1" || got[0].Headers["h"] != "x" {
		t.Fatalf("PublishedTo(a) = %+v, want clones of v1, v2", got)
	}
	if n := len(r.Published()); n != 4 {
		t.Errorf("Published has %d messages, want 4", n)
	}
	r.Reset()
	if n := len(r.Published()); n != 0 {
		t.Errorf("after Reset, Published has %d messages", n)
	}
}

func TestRecorderFailPublish(t *testing.T) {
	var r bustest.Recorder
	ctx := context.Background()
	boom := errors.New("broker down")
	r.FailPublish(boom, 2)
	for i := range 2 {
		if err := r.Publish(ctx, &bus.Message{Topic: "t", Value: []byte("x")}); !errors.Is(err, boom) {
			t.Fatalf("call %d: Publish = %v, want %v", i, err, boom)
		}
	}
	if err := r.Publish(ctx, &bus.Message{Topic: "t", Value: []byte("ok")}); err != nil {
		t.Fatalf("third call: %v", err)
	}
	r.FailPublish(boom, 0)
	for range 5 {
		if err := r.Publish(ctx, &bus.Message{Topic: "t"}); !errors.Is(err, boom) {
			t.Fatalf("Publish = %v, want %v until cleared", err, boom)
		}
	}
	r.FailPublish(nil, 0)
	if err := r.Publish(ctx, &bus.Message{Topic: "t", Value: []byte("ok2")}); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	if got := r.PublishedTo("t"); len(got) != 2 {
		t.Errorf("recorded %d messages, want the 2 that succeeded", len(got))
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Publish(canceled, &bus.Message{Topic: "t"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a canceled context = %v", err)
	}
}

func TestRecorderPublishEnvelope(t *testing.T) {
	var r bustest.Recorder
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Now(), EventType: "x.y", Payload: json.RawMessage(`{"a":1}`)}
	if err := r.PublishEnvelope(context.Background(), "t", env, bus.WithKey([]byte("e1"))); err != nil {
		t.Fatal(err)
	}
	envs, err := r.Envelopes("t")
	if err != nil || len(envs) != 1 || envs[0].EnvelopeID != env.EnvelopeID {
		t.Fatalf("Envelopes = %v, %v", envs, err)
	}
	if m := r.PublishedTo("t")[0]; string(m.Key) != "e1" || m.Headers[bus.HeaderEventType] != "x.y" {
		t.Errorf("message key %q headers %v", m.Key, m.Headers)
	}
	if err := r.PublishEnvelope(context.Background(), "t", &bus.Envelope{}); err == nil {
		t.Errorf("PublishEnvelope of an invalid envelope returned nil")
	}
}

func TestRecorderDeliver(t *testing.T) {
	var r bustest.Recorder
	ctx := context.Background()
	msg := &bus.Message{Topic: "in", Key: []byte("k"), Value: []byte("v"), Headers: bus.Headers{"h": "1"}}
	if err := r.Deliver(ctx, msg); !errors.Is(err, bustest.ErrNoSubscriber) {
		t.Fatalf("Deliver without subscriber = %v, want ErrNoSubscriber", err)
	}

	var got []string
	stop := subscribe(t, &r, "g1", "in", func(_ context.Context, m *bus.Message) error {
		got = append(got, "g1:"+string(m.Value))
		m.Headers["h"] = "handler changed its copy"
		return nil
	})
	failing := errors.New("db down")
	subscribe(t, &r, "g2", "in", func(_ context.Context, m *bus.Message) error {
		got = append(got, "g2:"+string(m.Value))
		return failing
	})
	// A second member of g1 does not get a second copy.
	subscribe(t, &r, "g1", "in", func(_ context.Context, m *bus.Message) error {
		t.Errorf("second member of g1 got %q", m.Value)
		return nil
	})
	for deadline := time.Now().Add(5 * time.Second); len(r.Subscriptions()) < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second member of g1 did not subscribe")
		}
	}
	if err := r.Deliver(ctx, msg); !errors.Is(err, failing) {
		t.Fatalf("Deliver = %v, want the failing handler's error", err)
	}
	if len(got) != 2 || got[0] != "g1:v" || got[1] != "g2:v" {
		t.Errorf("handlers saw %q", got)
	}
	if msg.Headers["h"] != "1" {
		t.Errorf("Deliver let a handler modify the caller's message")
	}
	if subs := r.Subscriptions(); len(subs) != 3 || subs[0].Group != "g1" || subs[0].Topics[0] != "in" {
		t.Errorf("Subscriptions = %+v", subs)
	}
	if err := stop(); err != nil {
		t.Errorf("Subscribe returned %v after its context ended", err)
	}
	if subs := r.Subscriptions(); len(subs) != 2 {
		t.Errorf("after one stopped, %d subscriptions", len(subs))
	}
}

func TestRecorderDeliverDeadLetters(t *testing.T) {
	var r bustest.Recorder
	ctx := context.Background()
	subscribe(t, &r, "g", "in", func(context.Context, *bus.Message) error {
		return bus.NewContentError(errors.New("unparseable"))
	}, bus.WithDeadLetterTopic("in.dlq"))
	msg := &bus.Message{Topic: "in", Partition: 3, Offset: 17, Key: []byte("k"), Value: []byte("junk")}
	err := r.Deliver(ctx, msg)
	if !bus.IsContentError(err) {
		t.Fatalf("Deliver = %v, want the content error", err)
	}
	dead := r.PublishedTo("in.dlq")
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	h := dead[0].Headers
	if string(dead[0].Value) != "junk" || h[bus.HeaderDLQReason] != "unparseable" || h[bus.HeaderDLQOriginalTopic] != "in" ||
		h[bus.HeaderDLQOriginalPart] != "3" || h[bus.HeaderDLQOriginalOffset] != strconv.Itoa(17) || h[bus.HeaderDLQConsumerGroup] != "g" {
		t.Errorf("dead letter %q headers %v", dead[0].Value, h)
	}

	// Without a dead-letter topic nothing is recorded.
	var r2 bustest.Recorder
	subscribe(t, &r2, "g", "in", func(context.Context, *bus.Message) error {
		return bus.NewContentError(errors.New("unparseable"))
	})
	if err := r2.Deliver(ctx, msg); !bus.IsContentError(err) {
		t.Fatalf("Deliver = %v", err)
	}
	if n := len(r2.Published()); n != 0 {
		t.Errorf("recorded %d messages without a dead-letter topic", n)
	}
}

func TestRecorderClose(t *testing.T) {
	var r bustest.Recorder
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		done <- r.Subscribe(ctx, "g", []string{"t"}, func(context.Context, *bus.Message) error { return nil })
	}()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.WaitSubscribed(wctx, "g", "t"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe ended by Close = %v, want ErrClosed", err)
	}
	if err := r.Publish(ctx, &bus.Message{Topic: "t"}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := r.Subscribe(ctx, "g", []string{"t"}, func(context.Context, *bus.Message) error { return nil }); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close = %v", err)
	}
	if err := r.Deliver(ctx, &bus.Message{Topic: "t"}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Deliver after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestRecorderWaitSubscribedTimesOut(t *testing.T) {
	var r bustest.Recorder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := r.WaitSubscribed(ctx, "g", "nobody"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitSubscribed = %v, want DeadlineExceeded", err)
	}
}
