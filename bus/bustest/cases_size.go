package bustest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// sizeLimit returns the bus's [bus.SizeLimited] limit. A bus without one
// fails the case if Features.SizeLimited says it has one, and skips it
// otherwise.
func (e *env) sizeLimit() int {
	e.t.Helper()
	limit := 0
	if sl, ok := e.b.(bus.SizeLimited); ok {
		limit = sl.MaxMessageBytes()
	}
	switch {
	case limit > 0:
		return limit
	case e.f.SizeLimited:
		e.t.Fatalf("Features.SizeLimited is set, but %T has no size limit (bus.SizeLimited)", e.b)
	default:
		e.t.Skip("the bus has no size limit (bus.SizeLimited)")
	}
	return 0
}

// sized returns a message for topic with key and headers whose random value
// makes bus.MessageSize of it exactly size bytes.
func (e *env) sized(topic string, key []byte, headers bus.Headers, size int, seed byte) *bus.Message {
	e.t.Helper()
	m := &bus.Message{Topic: topic, Key: key, Headers: headers}
	n := size - bus.MessageSize(m)
	if n < 0 {
		e.t.Fatalf("MaxMessageBytes %d is too small for the size-limit cases", size)
	}
	m.Value = make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(m.Value)
	return m
}

func testSizeLimitAtLimit(e *env) {
	t := e.t
	limit := e.sizeLimit()
	topic := e.topic()
	m := e.sized(topic, []byte("at-limit"), bus.Headers{"h": "v"}, limit, 1)
	if n := bus.MessageSize(m); n != limit {
		t.Fatalf("test message has %d bytes, want %d", n, limit)
	}
	if err := bus.CheckSize(m, limit); err != nil {
		t.Fatalf("CheckSize of a message at the limit: %v", err)
	}
	e.publish(m)
	var in inbox
	e.subscribe(e.name("group"), []string{topic}, collect(&in))
	e.eventually("the message at the size limit", func() bool { return in.len() >= 1 })
	got := in.all()[0]
	if !bytes.Equal(got.Value, m.Value) || string(got.Key) != "at-limit" || got.Headers["h"] != "v" {
		t.Errorf("a message of MaxMessageBytes (%d) came back changed: key %q, %d-byte value, headers %v", limit, got.Key, len(got.Value), got.Headers)
	}
}

func testSizeLimitTooLarge(e *env) {
	t := e.t
	limit := e.sizeLimit()
	topic := e.topic()
	key := []byte("k")
	ctx, cancel := context.WithTimeout(e.ctx, e.f.timeout())
	defer cancel()

	over := e.sized(topic, key, nil, limit+1, 2)
	err := e.b.Publish(ctx, over)
	if !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("Publish of a message of MaxMessageBytes+1 (%d) bytes = %v, want an error wrapping bus.ErrMessageTooLarge", limit+1, err)
	}
	// A call with one message too large publishes none of them.
	before := &bus.Message{Topic: topic, Key: key, Value: []byte("same call as a message too large")}
	if err := e.b.Publish(ctx, before, over); !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("Publish of a small and a too-large message = %v, want an error wrapping bus.ErrMessageTooLarge", err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: time.Now(),
		Payload: []byte(`"` + strings.Repeat("x", limit) + `"`)}
	if err := e.b.PublishEnvelope(ctx, topic, env, bus.WithKey(key)); !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("PublishEnvelope of a too-large envelope = %v, want an error wrapping bus.ErrMessageTooLarge", err)
	}
	// The bus still publishes.
	e.publish(&bus.Message{Topic: topic, Key: key, Value: []byte("marker")})
	var in inbox
	e.subscribe(e.name("group"), []string{topic}, collect(&in))
	e.eventually("the message after the refused ones", func() bool { return slices.Contains(in.values(), "marker") })
	if got := in.values(); !slices.Equal(got, []string{"marker"}) {
		t.Errorf("delivered %d messages, want only the marker: a refused call published some of its messages", len(got))
	}
}

func testSizeLimitDeadLetter(e *env) {
	t := e.t
	limit := e.sizeLimit()
	ts := e.topics(2)
	topic, dlq := ts[0], ts[1]
	group := e.name("group")
	key := []byte("k")
	// A message at the limit, whose dead letter's value must be cut; one
	// whose headers take up the limit, whose dead letter must drop them.
	bigValue := e.sized(topic, key, bus.Headers{"orig": "kept", "kind": "big-value"}, limit, 3)
	bigHeaders := &bus.Message{Topic: topic, Key: key, Value: []byte("small value"), Headers: bus.Headers{"kind": "big-headers", "big": ""}}
	bigHeaders.Headers["big"] = strings.Repeat("h", limit-bus.MessageSize(bigHeaders))
	after := &bus.Message{Topic: topic, Key: key, Value: []byte("after"), Headers: bus.Headers{"kind": "after"}}
	e.publish(bigValue, bigHeaders, after)

	var in, dead inbox
	e.subscribe(group, []string{topic}, func(_ context.Context, m *bus.Message) error {
		in.add(m)
		if m.Headers["kind"] != "after" {
			return bus.NewContentError(errors.New("bustest: cannot handle " + m.Headers["kind"]))
		}
		return nil
	}, bus.WithDeadLetterTopic(dlq), bus.WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond))
	e.subscribe(e.name("dlq-reader"), []string{dlq}, collect(&dead))
	e.eventually("the message after the dead-lettered ones at the size limit", func() bool {
		return slices.ContainsFunc(in.all(), func(m *bus.Message) bool { return m.Headers["kind"] == "after" })
	})
	var kinds []string
	for _, m := range in.all() {
		kinds = append(kinds, m.Headers["kind"])
	}
	if want := []string{"big-value", "big-headers", "after"}; !slices.Equal(kinds, want) {
		t.Errorf("delivered %q, want %q: a dead letter at the size limit was redelivered", kinds, want)
	}
	e.eventually("2 dead letters", func() bool { return dead.len() >= 2 })
	if n := dead.len(); n != 2 {
		t.Errorf("%d dead letters, want 2", n)
	}
	byOffset := make(map[string]*bus.Message)
	for _, d := range dead.all() {
		byOffset[d.Headers[bus.HeaderDLQOriginalOffset]] = d
		if n := bus.MessageSize(d); n > limit {
			t.Errorf("dead letter of offset %s has %d bytes, over MaxMessageBytes %d", d.Headers[bus.HeaderDLQOriginalOffset], n, limit)
		}
		for k, v := range map[string]string{bus.HeaderDLQOriginalTopic: topic, bus.HeaderDLQConsumerGroup: group} {
			if d.Headers[k] != v {
				t.Errorf("dead letter header %q = %q, want %q", k, d.Headers[k], v)
			}
		}
		if !strings.Contains(d.Headers[bus.HeaderDLQReason], "cannot handle") {
			t.Errorf("dead letter reason %q does not say why", d.Headers[bus.HeaderDLQReason])
		}
		if !bytes.Equal(d.Key, key) {
			t.Errorf("dead letter key %q, want %q", d.Key, key)
		}
	}

	cut := byOffset[strconv.FormatInt(bigValue.Offset, 10)]
	if cut == nil {
		t.Fatalf("no dead letter for offset %d", bigValue.Offset)
	}
	if cut.Headers[bus.HeaderDLQValueTruncated] != "true" || cut.Headers[bus.HeaderDLQOriginalSize] != strconv.Itoa(len(bigValue.Value)) {
		t.Errorf("dead letter of a message at the limit: headers %s = %q, %s = %q; want true, %d",
			bus.HeaderDLQValueTruncated, cut.Headers[bus.HeaderDLQValueTruncated],
			bus.HeaderDLQOriginalSize, cut.Headers[bus.HeaderDLQOriginalSize], len(bigValue.Value))
	}
	if !bytes.HasPrefix(bigValue.Value, cut.Value) || len(cut.Value) == 0 {
		t.Errorf("dead letter value (%d bytes) is not a non-empty prefix of the original (%d bytes)", len(cut.Value), len(bigValue.Value))
	}
	if cut.Headers["orig"] != "kept" {
		t.Errorf("dead letter lost the original header that fitted: %q", cut.Headers["orig"])
	}

	stripped := byOffset[strconv.FormatInt(bigHeaders.Offset, 10)]
	if stripped == nil {
		t.Fatalf("no dead letter for offset %d", bigHeaders.Offset)
	}
	if _, ok := stripped.Headers["big"]; ok || stripped.Headers[bus.HeaderDLQHeadersDropped] != "true" {
		t.Errorf("dead letter of a message with headers at the limit: big header kept %v, %s = %q; want dropped, true",
			ok, bus.HeaderDLQHeadersDropped, stripped.Headers[bus.HeaderDLQHeadersDropped])
	}
	if string(stripped.Value) != "small value" {
		t.Errorf("dead letter value %q, want the whole %q", stripped.Value, "small value")
	}
}
