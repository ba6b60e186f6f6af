package bus_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/registrar-go/registrar/bus"
)

func TestMessageSize(t *testing.T) {
	for _, c := range []struct {
		name string
		m    *bus.Message
		want int
	}{
		{"empty", &bus.Message{}, bus.MessageOverhead},
		{"topic and offsets are not counted", &bus.Message{Topic: "a-long-topic-name", Partition: 3, Offset: 99, Timestamp: time.Now()}, bus.MessageOverhead},
		{"key and value", &bus.Message{Key: []byte("key"), Value: []byte("value")}, bus.MessageOverhead + 3 + 5},
		{"empty key counts as no key", &bus.Message{Key: []byte{}}, bus.MessageOverhead},
		{"headers", &bus.Message{Value: []byte("v"), Headers: bus.Headers{"ab": "cde", "": ""}},
			bus.MessageOverhead + 1 + (2 + 3 + bus.HeaderOverhead) + bus.HeaderOverhead},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := bus.MessageSize(c.m); got != c.want {
				t.Errorf("MessageSize = %d, want %d", got, c.want)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	m := &bus.Message{Topic: "t", Key: []byte("secret-key"), Value: []byte("secret-value")}
	n := bus.MessageSize(m)
	for _, limit := range []int{0, -1, n, n + 1} {
		if err := bus.CheckSize(m, limit); err != nil {
			t.Errorf("CheckSize(limit %d) of a %d-byte message = %v, want nil", limit, n, err)
		}
	}
	err := bus.CheckSize(m, n-1)
	if !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("CheckSize(limit %d) of a %d-byte message = %v, want ErrMessageTooLarge", n-1, n, err)
	}
	for _, want := range []string{strconv.Itoa(n), strconv.Itoa(n - 1), `"t"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the message's key or value", err)
	}
}

// deadLetter returns the dead letter of a message with key, value and
// headers.
func deadLetter(key, value []byte, headers bus.Headers, reason string) (orig, dl *bus.Message) {
	orig = &bus.Message{Topic: "in", Partition: 2, Offset: 41, Key: key, Value: value, Headers: headers}
	return orig, bus.DeadLetter("in.dlq", "group", orig, bus.NewContentError(errors.New(reason)), time.Unix(1, 0))
}

func TestFitDeadLetterKeepsWhatFits(t *testing.T) {
	_, dl := deadLetter([]byte("k"), []byte("value"), bus.Headers{"h": "v"}, "bad")
	for _, limit := range []int{0, -5, bus.MessageSize(dl), bus.MessageSize(dl) + 1} {
		got, err := bus.FitDeadLetter(dl, limit)
		if err != nil || got != dl {
			t.Errorf("FitDeadLetter(limit %d) of a %d-byte dead letter = %v, %v; want it unchanged", limit, bus.MessageSize(dl), got, err)
		}
	}
}

func TestFitDeadLetterTruncatesTheValue(t *testing.T) {
	value := bytes.Repeat([]byte("0123456789"), 100)
	orig, dl := deadLetter([]byte("key"), value, bus.Headers{"orig": "kept"}, "bad payload")
	before := bus.Headers{}
	for k, v := range dl.Headers {
		before[k] = v
	}
	limit := bus.MessageSize(orig) // the original fitted exactly
	got, err := bus.FitDeadLetter(dl, limit)
	if err != nil {
		t.Fatal(err)
	}
	if n := bus.MessageSize(got); n != limit {
		t.Errorf("fitted dead letter has %d bytes, want the limit %d (the longest prefix)", n, limit)
	}
	if !bytes.HasPrefix(value, got.Value) || len(got.Value) >= len(value) || len(got.Value) == 0 {
		t.Errorf("value is %d bytes, want a proper non-empty prefix of the %d-byte original", len(got.Value), len(value))
	}
	if got.Headers[bus.HeaderDLQValueTruncated] != "true" || got.Headers[bus.HeaderDLQOriginalSize] != strconv.Itoa(len(value)) {
		t.Errorf("truncation headers %q, %q; want true, %d", got.Headers[bus.HeaderDLQValueTruncated], got.Headers[bus.HeaderDLQOriginalSize], len(value))
	}
	for k, v := range before {
		if got.Headers[k] != v {
			t.Errorf("header %q = %q, want %q kept", k, got.Headers[k], v)
		}
	}
	if _, ok := got.Headers[bus.HeaderDLQHeadersDropped]; ok {
		t.Error("headers marked dropped though they fitted")
	}
	if got.Topic != dl.Topic || !bytes.Equal(got.Key, dl.Key) {
		t.Errorf("topic %q key %q, want %q %q", got.Topic, got.Key, dl.Topic, dl.Key)
	}
	if len(dl.Value) != len(value) || len(dl.Headers) != len(before) {
		t.Error("FitDeadLetter modified its argument")
	}
}

func TestFitDeadLetterDropsOriginalHeaders(t *testing.T) {
	huge := strings.Repeat("h", 2000)
	t.Run("value cut too", func(t *testing.T) {
		value := bytes.Repeat([]byte("v"), 500)
		orig, dl := deadLetter([]byte("key"), value, bus.Headers{"big": huge, "dlq_from_upstream": "x"}, "bad")
		limit := bus.MessageSize(orig) - 2000
		got, err := bus.FitDeadLetter(dl, limit)
		if err != nil {
			t.Fatal(err)
		}
		if n := bus.MessageSize(got); n > limit {
			t.Errorf("%d bytes, over the limit %d", n, limit)
		}
		if _, ok := got.Headers["big"]; ok {
			t.Error("the original header that did not fit was kept")
		}
		if got.Headers[bus.HeaderDLQHeadersDropped] != "true" || got.Headers["dlq_from_upstream"] != "x" {
			t.Errorf("headers %v: want dlq_headers_dropped and the dlq_ headers kept", got.Headers)
		}
		for _, k := range []string{bus.HeaderDLQReason, bus.HeaderDLQOriginalTopic, bus.HeaderDLQOriginalPart,
			bus.HeaderDLQOriginalOffset, bus.HeaderDLQConsumerGroup, bus.HeaderDLQDeadLetteredAt} {
			if got.Headers[k] != dl.Headers[k] {
				t.Errorf("header %q = %q, want %q", k, got.Headers[k], dl.Headers[k])
			}
		}
		if !bytes.HasPrefix(value, got.Value) {
			t.Error("value is not a prefix of the original")
		}
		if len(got.Value) < len(value) && got.Headers[bus.HeaderDLQValueTruncated] != "true" {
			t.Error("value cut without saying so")
		}
	})
	t.Run("value whole", func(t *testing.T) {
		orig, dl := deadLetter([]byte("key"), []byte("small"), bus.Headers{"big": huge}, "bad")
		got, err := bus.FitDeadLetter(dl, bus.MessageSize(orig))
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Value) != "small" || got.Headers[bus.HeaderDLQValueTruncated] != "" || got.Headers[bus.HeaderDLQOriginalSize] != "" {
			t.Errorf("value %q, headers %v: want the whole value and no truncation headers", got.Value, got.Headers)
		}
		if got.Headers[bus.HeaderDLQHeadersDropped] != "true" {
			t.Errorf("headers %v: want dlq_headers_dropped", got.Headers)
		}
	})
}

func TestFitDeadLetterCutsTheReason(t *testing.T) {
	reason := strings.Repeat("é", 1000) // two bytes each: cuts must not split one
	orig, dl := deadLetter([]byte("key"), []byte("value"), nil, reason)
	limit := bus.MessageSize(orig) + 700
	got, err := bus.FitDeadLetter(dl, limit)
	if err != nil {
		t.Fatal(err)
	}
	if n := bus.MessageSize(got); n > limit || n < limit-1 {
		t.Errorf("%d bytes, want the limit %d (or one less, at a rune boundary)", n, limit)
	}
	r := got.Headers[bus.HeaderDLQReason]
	if !utf8.ValidString(r) || !strings.HasPrefix(reason, r) || len(r) == 0 {
		t.Errorf("reason %q is not a valid, non-empty prefix", r)
	}
	if got.Headers[bus.HeaderDLQReasonTruncated] != "true" || len(got.Value) != 0 {
		t.Errorf("headers %v, value %q: want dlq_reason_truncated and an empty value", got.Headers, got.Value)
	}
}

func TestFitDeadLetterTooSmall(t *testing.T) {
	_, dl := deadLetter(bytes.Repeat([]byte("k"), 1000), []byte("value"), nil, "bad")
	_, err := bus.FitDeadLetter(dl, 1000)
	if !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("FitDeadLetter with a key larger than the limit = %v, want ErrMessageTooLarge", err)
	}
	if strings.Contains(err.Error(), "kkkk") {
		t.Errorf("error shows the key: %v", err)
	}
}

// FuzzFitDeadLetter checks the promise of FitDeadLetter for any message
// and limit: the result fits, or the error says why.
func FuzzFitDeadLetter(f *testing.F) {
	f.Add([]byte("key"), []byte("value"), "h", "v", "reason", 100)
	f.Add([]byte{}, bytes.Repeat([]byte("x"), 900), "name", strings.Repeat("y", 400), "bad", 600)
	f.Fuzz(func(t *testing.T, key, value []byte, hname, hvalue, reason string, limit int) {
		_, dl := deadLetter(key, value, bus.Headers{hname: hvalue}, reason)
		got, err := bus.FitDeadLetter(dl, limit)
		if err != nil {
			if !errors.Is(err, bus.ErrMessageTooLarge) {
				t.Fatalf("error %v does not wrap ErrMessageTooLarge", err)
			}
			return
		}
		if limit > 0 && bus.MessageSize(got) > limit {
			t.Fatalf("%d bytes over the limit %d", bus.MessageSize(got), limit)
		}
		if !bytes.HasPrefix(value, got.Value) || !bytes.Equal(got.Key, key) {
			t.Fatal("value not a prefix, or key changed")
		}
		if len(got.Value) < len(value) && got.Headers[bus.HeaderDLQValueTruncated] != "true" {
			t.Fatal("value cut without saying so")
		}
		if got.Headers[bus.HeaderDLQOriginalTopic] != "in" || got.Headers[bus.HeaderDLQOriginalOffset] != "41" {
			t.Fatalf("origin headers lost: %v", got.Headers)
		}
	})
}
