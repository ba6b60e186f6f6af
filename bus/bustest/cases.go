package bustest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// cases are run in this order by Run.
var cases = []testCase{
	{name: "RoundTrip", run: testRoundTrip},
	{name: "PublishEnvelope", run: testPublishEnvelope},
	{name: "NewGroupStartsAtOldest", run: testNewGroupStartsAtOldest},
	{name: "KeyOrder", run: testKeyOrder},
	{name: "PartitionsConcurrent", run: testPartitionsConcurrent},
	{name: "RedeliverAfterError", run: testRedeliverAfterError},
	{name: "NoRedeliveryAfterCommit", run: testNoRedeliveryAfterCommit},
	{name: "DeadLetter", run: testDeadLetter},
	{name: "ContentErrorWithoutDeadLetterTopic", run: testContentErrorWithoutDeadLetterTopic},
	{name: "GroupsIndependent", run: testGroupsIndependent},
	{name: "MembersSplitPartitions", run: testMembersSplitPartitions},
	{name: "MemberLeaves", run: testMemberLeaves},
	{name: "RebalanceRevokes", run: testRebalanceRevokes},
	{name: "Revoke", run: testRevoke},
	{name: "ConsumerLag", lag: true, run: testConsumerLag},
	{name: "ContextCancel", run: testContextCancel},
	{name: "LargeMessage", run: testLargeMessage},
	{name: "SizeLimitAtLimit", sizeLimit: true, run: testSizeLimitAtLimit},
	{name: "SizeLimitTooLarge", sizeLimit: true, run: testSizeLimitTooLarge},
	{name: "SizeLimitDeadLetter", sizeLimit: true, run: testSizeLimitDeadLetter},
	{name: "CloseWhileBusy", leakCheck: true, run: testCloseWhileBusy},
	{name: "BatchBounds", batch: true, run: testBatchBounds},
	{name: "BatchPartialAck", batch: true, run: testBatchPartialAck},
	{name: "BatchContentError", batch: true, run: testBatchContentError},
	{name: "BatchWholeError", batch: true, run: testBatchWholeError},
	{name: "ReadNewest", reader: true, run: testReadNewest},
	{name: "ReadStartedRace", reader: true, run: testReadStartedRace},
	{name: "ReadFromOldest", reader: true, run: testReadFromOldest},
	{name: "ReadOnlyItsPartition", reader: true, run: testReadOnlyItsPartition},
	{name: "ReadManyReadersSamePartition", reader: true, run: testReadManyReadersSamePartition},
	{name: "ReadHandlerError", reader: true, run: testReadHandlerError},
	{name: "ReadContextCancel", reader: true, run: testReadContextCancel},
	{name: "ReadClose", reader: true, leakCheck: true, run: testReadClose},
}

// collect returns a handler that adds every message to in and acks it.
func collect(in *inbox) bus.Handler {
	return func(_ context.Context, m *bus.Message) error {
		in.add(m)
		return nil
	}
}

func testRoundTrip(e *env) {
	t := e.t
	topic := e.topic()
	stamp := time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	published := []*bus.Message{
		{Topic: topic, Key: []byte("entity-42"), Value: []byte(`{"hello":"world"}`),
			Headers: bus.Headers{"h1": "v1", "unicode": "ünïcødé ✓", "empty": ""}},
		{Topic: topic, Value: []byte("no key")},
		{Topic: topic, Key: []byte{}, Value: []byte("empty key")},
		{Topic: topic, Key: []byte("stamped"), Value: []byte("own timestamp"), Timestamp: stamp},
	}
	e.publish(published...)
	for _, m := range published {
		if m.Timestamp.IsZero() {
			t.Errorf("Publish left Timestamp zero for %q", m.Value)
		}
		if m.Offset < 0 {
			t.Errorf("Publish set Offset %d for %q", m.Offset, m.Value)
		}
		if e.f.Partitions > 0 && (m.Partition < 0 || m.Partition >= e.f.Partitions) {
			t.Errorf("Publish set Partition %d for %q, outside 0..%d", m.Partition, m.Value, e.f.Partitions-1)
		}
	}
	if !published[3].Timestamp.Equal(stamp) {
		t.Errorf("Publish replaced a set Timestamp %v with %v", stamp, published[3].Timestamp)
	}
	if n := e.f.Partitions; n > 0 {
		for _, m := range []*bus.Message{published[0], published[2], published[3]} {
			if want := bus.KeyPartition(m.Key, n); m.Partition != want {
				t.Errorf("key %q landed on partition %d, want KeyPartition = %d", m.Key, m.Partition, want)
			}
		}
	}

	var in inbox
	e.subscribe(e.name("group"), []string{topic}, collect(&in))
	e.eventually("4 messages", func() bool { return in.len() >= len(published) })
	got := make(map[string]*bus.Message)
	for _, m := range in.all() {
		if got[string(m.Value)] != nil {
			t.Errorf("message %q delivered twice", m.Value)
		}
		got[string(m.Value)] = m
	}
	for _, p := range published {
		d := got[string(p.Value)]
		if d == nil {
			t.Errorf("message %q not delivered; got %q", p.Value, in.values())
			continue
		}
		if d.Topic != topic {
			t.Errorf("%q: Topic = %q, want %q", p.Value, d.Topic, topic)
		}
		if d.Partition != p.Partition || d.Offset != p.Offset {
			t.Errorf("%q: delivered at %d/%d, Publish said %d/%d", p.Value, d.Partition, d.Offset, p.Partition, p.Offset)
		}
		if diff := d.Timestamp.Sub(p.Timestamp).Abs(); diff > time.Millisecond {
			t.Errorf("%q: Timestamp = %v, Publish said %v", p.Value, d.Timestamp, p.Timestamp)
		}
		for k, v := range p.Headers {
			if got, ok := d.Headers[k]; !ok || got != v {
				t.Errorf("%q: header %q = %q (present %v), want %q", p.Value, k, got, ok, v)
			}
		}
		if p.Key == nil {
			if d.Key != nil {
				t.Errorf("%q: published without a key, delivered with key %q", p.Value, d.Key)
			}
		} else if !bytes.Equal(d.Key, p.Key) {
			t.Errorf("%q: Key = %q, want %q", p.Value, d.Key, p.Key)
		}
	}
}

func testPublishEnvelope(e *env) {
	t := e.t
	topic := e.topic()
	env := &bus.Envelope{
		EnvelopeID:        uuid.New(),
		EnvelopeTimestamp: time.Now().UTC().Truncate(time.Millisecond),
		CorrelationID:     uuid.New(),
		EventType:         "bustest.ping",
		SourceTool:        "bustest",
		Priority:          7,
		Payload:           json.RawMessage(`{"n":1,"s":"x"}`),
	}
	key := []byte("entity-7")
	ctx, cancel := context.WithTimeout(e.ctx, e.f.timeout())
	defer cancel()
	if err := e.b.PublishEnvelope(ctx, topic, env, bus.WithKey(key), bus.WithHeaders(bus.Headers{"extra": "x"})); err != nil {
		t.Fatalf("PublishEnvelope: %v", err)
	}
	unkeyed := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Now(), Payload: json.RawMessage(`2`)}
	if err := e.b.PublishEnvelope(ctx, topic, unkeyed); err != nil {
		t.Fatalf("PublishEnvelope without key: %v", err)
	}
	if err := e.b.PublishEnvelope(ctx, topic, &bus.Envelope{Payload: json.RawMessage(`1`)}); err == nil {
		t.Errorf("PublishEnvelope of an envelope without id returned nil")
	}

	var in inbox
	e.subscribe(e.name("group"), []string{topic}, collect(&in))
	e.eventually("2 envelopes", func() bool { return in.len() >= 2 })
	for _, d := range in.all() {
		got, err := bus.DecodeEnvelope(d.Value)
		if err != nil {
			t.Fatalf("delivered value does not decode: %v\n%s", err, d.Value)
		}
		if got.EnvelopeID == unkeyed.EnvelopeID {
			if d.Key != nil {
				t.Errorf("envelope published without WithKey delivered with key %q", d.Key)
			}
			continue
		}
		if got.EnvelopeID != env.EnvelopeID {
			t.Fatalf("unexpected envelope %s", got.EnvelopeID)
		}
		if !bytes.Equal(d.Key, key) {
			t.Errorf("Key = %q, want %q", d.Key, key)
		}
		if n := e.f.Partitions; n > 0 && d.Partition != bus.KeyPartition(key, n) {
			t.Errorf("Partition = %d, want KeyPartition = %d", d.Partition, bus.KeyPartition(key, n))
		}
		if got.CorrelationID != env.CorrelationID || got.EventType != env.EventType || got.Priority != 7 ||
			!got.EnvelopeTimestamp.Equal(env.EnvelopeTimestamp) || got.SourceTool != "bustest" {
			t.Errorf("decoded envelope %+v, want %+v", got, env)
		}
		var a, b any
		_ = json.Unmarshal(got.Payload, &a)
		_ = json.Unmarshal(env.Payload, &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("Payload = %s, want %s", got.Payload, env.Payload)
		}
		want := bus.Headers{
			bus.HeaderMessageID:     env.EnvelopeID.String(),
			bus.HeaderContentType:   bus.ContentTypeJSON,
			bus.HeaderCorrelationID: env.CorrelationID.String(),
			bus.HeaderEventType:     "bustest.ping",
			"extra":                 "x",
		}
		for k, v := range want {
			if d.Headers[k] != v {
				t.Errorf("header %q = %q, want %q", k, d.Headers[k], v)
			}
		}
	}
}

func testNewGroupStartsAtOldest(e *env) {
	topic := e.topic()
	msgs := keyed(topic, "old", 20, 5)
	e.publish(msgs...)
	for range 2 {
		var in inbox
		e.subscribe(e.name("group"), []string{topic}, collect(&in))
		e.eventually("a new group to receive the 20 messages published before it joined", func() bool { return in.distinct() >= 20 })
		if n := in.len(); n != 20 {
			e.t.Errorf("new group got %d deliveries of 20 messages: %q", n, in.values())
		}
	}
}

func testKeyOrder(e *env) {
	t := e.t
	const keys, perKey, publishers = 60, 20, 4
	topic := e.topic()
	var in inbox
	x := newExclusive(t)
	as := newAssignments(1)
	s := e.subscribe(e.name("group"), []string{topic}, func(_ context.Context, m *bus.Message) error {
		x.enter(m)
		defer x.leave(m)
		in.add(m)
		return nil
	}, as.option(0))
	// Consume while the publishers publish (and, on a bus with little
	// retention, hold them back rather than lose what they publish before
	// the group joined).
	e.eventually("the subscriber to be assigned", func() bool { return len(as.of(0, topic)) > 0 })

	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range perKey {
				var batch []*bus.Message
				for k := p; k < keys; k += publishers {
					batch = append(batch, &bus.Message{
						Topic: topic, Key: fmt.Appendf(nil, "key-%d", k),
						Value:   fmt.Appendf(nil, "key-%d/%d", k, seq),
						Headers: bus.Headers{"seq": strconv.Itoa(seq)},
					})
				}
				// One to three messages per call: a call's messages are
				// stored in the order given.
				for len(batch) > 0 {
					n := min(1+seq%3, len(batch))
					if err := e.b.Publish(e.ctx, batch[:n]...); err != nil {
						errs <- err
						return
					}
					batch = batch[n:]
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	const total = keys * perKey
	e.eventually(fmt.Sprintf("%d messages", total), func() bool { return in.distinct() >= total })
	s.failIfDone()

	seqs := make(map[string][]int)
	keyPart := make(map[string]int32)
	lastOff := make(map[int32]int64)
	for _, m := range in.all() {
		k := string(m.Key)
		seq, _ := strconv.Atoi(m.Headers["seq"])
		seqs[k] = append(seqs[k], seq)
		if p, ok := keyPart[k]; ok && p != m.Partition {
			t.Errorf("key %s delivered from partitions %d and %d", k, p, m.Partition)
		}
		keyPart[k] = m.Partition
		if last, ok := lastOff[m.Partition]; ok && m.Offset <= last {
			t.Errorf("partition %d: offset %d delivered after offset %d", m.Partition, m.Offset, last)
		}
		lastOff[m.Partition] = m.Offset
	}
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for k, got := range seqs {
		if !slices.Equal(got, want) {
			t.Errorf("key %s delivered in order %v, want %v", k, got, want)
		}
	}
	if n := in.len(); n != total {
		t.Errorf("%d deliveries of %d messages, want each exactly once", n, total)
	}
	if n := e.f.Partitions; n > 0 {
		wantParts := make(map[int32]bool)
		for k, p := range keyPart {
			if want := bus.KeyPartition([]byte(k), n); p != want {
				t.Errorf("key %s on partition %d, want KeyPartition = %d", k, p, want)
			}
			wantParts[p] = true
		}
		if n > 1 && len(wantParts) < 2 {
			t.Errorf("%d keys all landed on one partition", keys)
		}
	}
}

func testPartitionsConcurrent(e *env) {
	t := e.t
	topic := e.topic()
	// Learn two keys on different partitions from where Publish puts them.
	probes := keyed(topic, "probe", 32, 32)
	e.publish(probes...)
	a := probes[0]
	var b *bus.Message
	for _, p := range probes[1:] {
		if p.Partition != a.Partition {
			b = p
			break
		}
	}
	if b == nil {
		t.Skip("all keys landed on one partition")
	}
	blocker := &bus.Message{Topic: topic, Key: a.Key, Value: []byte("blocker")}
	other := &bus.Message{Topic: topic, Key: b.Key, Value: []byte("other")}
	entered := make(chan struct{})
	otherDone := make(chan struct{})
	timeout := e.f.timeout()
	e.subscribe(e.name("group"), []string{topic}, func(ctx context.Context, m *bus.Message) error {
		switch string(m.Value) {
		case "blocker":
			close(entered)
			select {
			case <-otherDone:
			case <-ctx.Done():
			case <-time.After(timeout):
				t.Errorf("partition %d made no progress while a handler call on partition %d was in progress", other.Partition, blocker.Partition)
			}
		case "other":
			close(otherDone)
		}
		return nil
	})
	e.publish(blocker)
	e.wait("the blocking handler call", entered)
	e.publish(other)
	e.wait("the message on the other partition", otherDone)
}

func testRedeliverAfterError(e *env) {
	t := e.t
	topic := e.topic()
	msgs := keyed(topic, "m", 10, 1)
	e.publish(msgs...)
	var in inbox
	var fails atomic.Int32
	var mu sync.Mutex
	var failedAt []time.Time
	const retryMin = 20 * time.Millisecond
	e.subscribe(e.name("group"), []string{topic}, func(ctx context.Context, m *bus.Message) error {
		in.add(m)
		if string(m.Value) == "m-3" {
			mu.Lock()
			failedAt = append(failedAt, time.Now())
			mu.Unlock()
			if fails.Add(1) <= 2 {
				return errors.New("bustest: transient failure")
			}
		}
		if ctx.Err() != nil {
			t.Errorf("handler context canceled during an ordinary delivery: %v", ctx.Err())
		}
		return nil
	}, bus.WithRetryBackoff(retryMin, 2*retryMin))
	e.eventually("the last message", func() bool { return slices.Contains(in.values(), "m-9") })
	want := []string{"m-0", "m-1", "m-2", "m-3", "m-3", "m-3", "m-4", "m-5", "m-6", "m-7", "m-8", "m-9"}
	if got := in.values(); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q (the failed message again, nothing after it before it succeeded)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(failedAt); i++ {
		if gap := failedAt[i].Sub(failedAt[i-1]); gap < retryMin/2 {
			t.Errorf("redelivery %d came %v after the failure, want a backoff of about %v", i, gap, retryMin)
		}
	}
}

func testNoRedeliveryAfterCommit(e *env) {
	t := e.t
	topic := e.topic()
	group := e.name("group")
	first := keyed(topic, "first", 80, 4)
	e.publish(first...)
	var in1 inbox
	s := e.subscribe(group, []string{topic}, collect(&in1))
	e.eventually("80 messages", func() bool { return in1.distinct() >= 80 })
	s.stop()
	if n := in1.len(); n != 80 {
		t.Errorf("%d deliveries of 80 acknowledged messages, want each once", n)
	}

	// Restart with the same group: only the new messages come. Every key
	// has new messages, which follow the old ones on the key's partition,
	// so a redelivered old message would arrive before the last new one.
	second := keyed(topic, "second", 40, 4)
	e.publish(second...)
	var in2 inbox
	e.subscribe(group, []string{topic}, collect(&in2))
	e.eventually("40 new messages after the restart", func() bool { return in2.distinct() >= 40 })
	for _, v := range in2.values() {
		if !bytes.HasPrefix([]byte(v), []byte("second-")) {
			t.Errorf("message %q, acknowledged before the restart, was delivered again", v)
		}
	}
	if n := in2.len(); n != 40 {
		t.Errorf("%d deliveries of 40 messages after the restart, want each once", n)
	}
}

func testDeadLetter(e *env) {
	t := e.t
	ts := e.topics(2)
	topic, dlq := ts[0], ts[1]
	group := e.name("group")
	msgs := []*bus.Message{
		{Topic: topic, Key: []byte("k"), Value: []byte("ok-0")},
		{Topic: topic, Key: []byte("k"), Value: []byte("bad"), Headers: bus.Headers{"orig": "kept"}},
		{Topic: topic, Key: []byte("k"), Value: []byte("ok-1")},
	}
	e.publish(msgs...)
	bad := msgs[1]
	var in, dead inbox
	e.subscribe(group, []string{topic}, func(_ context.Context, m *bus.Message) error {
		in.add(m)
		if string(m.Value) == "bad" {
			return fmt.Errorf("decoding: %w", bus.NewContentError(errors.New("bustest: bad payload")))
		}
		return nil
	}, bus.WithDeadLetterTopic(dlq), bus.WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond))
	e.subscribe(e.name("dlq-reader"), []string{dlq}, collect(&dead))
	e.eventually("the message after the dead-lettered one", func() bool { return slices.Contains(in.values(), "ok-1") })
	if got, want := in.values(), []string{"ok-0", "bad", "ok-1"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q (content errors are not redelivered)", got, want)
	}
	e.eventually("the dead letter", func() bool { return dead.len() >= 1 })
	d := dead.all()[0]
	if d.Topic != dlq || string(d.Value) != "bad" || string(d.Key) != "k" {
		t.Errorf("dead letter %s key %q value %q, want %s key %q value %q", d.Topic, d.Key, d.Value, dlq, "k", "bad")
	}
	want := bus.Headers{
		"orig":                      "kept",
		bus.HeaderDLQOriginalTopic:  topic,
		bus.HeaderDLQOriginalPart:   strconv.Itoa(int(bad.Partition)),
		bus.HeaderDLQOriginalOffset: strconv.FormatInt(bad.Offset, 10),
		bus.HeaderDLQConsumerGroup:  group,
	}
	for k, v := range want {
		if d.Headers[k] != v {
			t.Errorf("dead letter header %q = %q, want %q", k, d.Headers[k], v)
		}
	}
	if r := d.Headers[bus.HeaderDLQReason]; !bytes.Contains([]byte(r), []byte("bad payload")) {
		t.Errorf("dead letter reason %q does not say why", r)
	}
	if _, err := time.Parse(time.RFC3339Nano, d.Headers[bus.HeaderDLQDeadLetteredAt]); err != nil {
		t.Errorf("dead letter time %q: %v", d.Headers[bus.HeaderDLQDeadLetteredAt], err)
	}
	if n := dead.len(); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

func testContentErrorWithoutDeadLetterTopic(e *env) {
	topic := e.topic()
	e.publish(
		&bus.Message{Topic: topic, Key: []byte("k"), Value: []byte("a")},
		&bus.Message{Topic: topic, Key: []byte("k"), Value: []byte("bad")},
		&bus.Message{Topic: topic, Key: []byte("k"), Value: []byte("b")},
	)
	var in inbox
	var fails atomic.Int32
	e.subscribe(e.name("group"), []string{topic}, func(_ context.Context, m *bus.Message) error {
		in.add(m)
		if string(m.Value) == "bad" && fails.Add(1) <= 2 {
			return bus.NewContentError(errors.New("bustest: bad payload"))
		}
		return nil
	}, bus.WithRetryBackoff(5*time.Millisecond, 10*time.Millisecond))
	e.eventually("the message after the failing one", func() bool { return slices.Contains(in.values(), "b") })
	if got, want := in.values(), []string{"a", "bad", "bad", "bad", "b"}; !slices.Equal(got, want) {
		e.t.Errorf("delivered %q, want %q (without a dead-letter topic a content error is redelivered)", got, want)
	}
}

func testGroupsIndependent(e *env) {
	topic := e.topic()
	e.publish(keyed(topic, "m", 50, 10)...)
	var in1, in2 inbox
	var fails atomic.Int32
	e.subscribe(e.name("group"), []string{topic}, func(_ context.Context, m *bus.Message) error {
		in1.add(m)
		if fails.Add(1) <= 3 {
			return errors.New("bustest: this group fails a few times")
		}
		return nil
	}, bus.WithRetryBackoff(5*time.Millisecond, 10*time.Millisecond))
	e.subscribe(e.name("group"), []string{topic}, collect(&in2))
	e.eventually("both groups to receive all 50 messages", func() bool { return in1.distinct() >= 50 && in2.distinct() >= 50 })
	if n := in2.len(); n != 50 {
		e.t.Errorf("the second group got %d deliveries of 50 messages, want each once", n)
	}
	if n := in1.len(); n != 53 {
		e.t.Errorf("the first group got %d deliveries of 50 messages and 3 failures, want 53", n)
	}
}
