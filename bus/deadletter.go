package bus

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ContentError says that a message can never be processed, whatever happens
// to the infrastructure: it is malformed, invalid, or of a type nobody
// handles. A handler returns one to have the message dead-lettered instead of
// redelivered.
type ContentError struct {
	// Reason says what is wrong with the message; it becomes the dead-letter
	// reason header, so it must not contain secrets.
	Reason error
}

// NewContentError marks reason as a content error.
func NewContentError(reason error) *ContentError { return &ContentError{Reason: reason} }

func (e *ContentError) Error() string {
	if e.Reason == nil {
		return "content error"
	}
	return contentErrorReasonPrefix + e.Reason.Error()
}

// Unwrap returns the reason.
func (e *ContentError) Unwrap() error { return e.Reason }

// IsContentError reports whether err is, or wraps, a [*ContentError].
func IsContentError(err error) bool {
	var ce *ContentError
	return errors.As(err, &ce)
}

// DeadLetter returns the message to publish on the dead-letter topic for msg,
// which group could not process because of reason. Key, value and headers are
// kept; headers gain the reason, the original topic, partition and offset, the
// consumer group and the time of dead-lettering (see the HeaderDLQ constants).
// The copy is larger than msg: a bus with a size limit passes it through
// [FitDeadLetter] before publishing it.
func DeadLetter(topic, group string, msg *Message, reason error, now time.Time) *Message {
	h := maps.Clone(msg.Headers)
	if h == nil {
		h = make(Headers, 6)
	}
	text := "unknown"
	var ce *ContentError
	switch {
	case errors.As(reason, &ce) && ce.Reason != nil:
		text = ce.Reason.Error()
	case reason != nil:
		text = reason.Error()
	}
	h[HeaderDLQReason] = text
	h[HeaderDLQOriginalTopic] = msg.Topic
	h[HeaderDLQOriginalPart] = strconv.FormatInt(int64(msg.Partition), 10)
	h[HeaderDLQOriginalOffset] = strconv.FormatInt(msg.Offset, 10)
	h[HeaderDLQConsumerGroup] = group
	h[HeaderDLQDeadLetteredAt] = now.UTC().Format(time.RFC3339Nano)
	return &Message{Topic: topic, Key: msg.Key, Value: msg.Value, Headers: h}
}

// FitDeadLetter returns dl, a message made by [DeadLetter], if
// [MessageSize](dl) is at most limit or limit is zero or less. Otherwise it
// returns a copy cut down to fit, so that a message that was itself within
// a bus's limit can always be dead-lettered and its partition move on:
//
//  1. The value is cut to its longest prefix that fits; headers
//     [HeaderDLQValueTruncated] ("true") and [HeaderDLQOriginalSize] (the
//     original value's length) say so.
//  2. If even an empty value does not fit (a large key or large headers),
//     the original message's headers are dropped, all but those whose name
//     starts with "dlq_", and [HeaderDLQHeadersDropped] is "true"; the value
//     then keeps the longest prefix that fits (all of it, and no
//     truncation headers, if it fits whole).
//  3. If that does not fit either, the [HeaderDLQReason] text is cut short
//     (at a UTF-8 boundary) and [HeaderDLQReasonTruncated] is "true".
//
// If the key and the dead-letter headers alone exceed limit, FitDeadLetter
// returns an error wrapping [ErrMessageTooLarge]. The copy shares dl's key
// and the bytes of its value; dl is not modified.
func FitDeadLetter(dl *Message, limit int) (*Message, error) {
	if limit <= 0 || MessageSize(dl) <= limit {
		return dl, nil
	}
	fit := &Message{Topic: dl.Topic, Key: dl.Key, Headers: maps.Clone(dl.Headers), Timestamp: dl.Timestamp}
	if fit.Headers == nil {
		fit.Headers = make(Headers, 2)
	}
	fit.Headers[HeaderDLQValueTruncated] = "true"
	fit.Headers[HeaderDLQOriginalSize] = strconv.Itoa(len(dl.Value))
	if room := limit - MessageSize(fit); room >= 0 {
		fit.Value = dl.Value[:min(room, len(dl.Value))]
		return fit, nil
	}
	for name := range fit.Headers {
		if !strings.HasPrefix(name, "dlq_") {
			delete(fit.Headers, name)
		}
	}
	fit.Headers[HeaderDLQHeadersDropped] = "true"
	if room := limit - MessageSize(fit); room >= 0 {
		whole := &Message{Topic: fit.Topic, Key: fit.Key, Value: dl.Value, Headers: maps.Clone(fit.Headers), Timestamp: fit.Timestamp}
		delete(whole.Headers, HeaderDLQValueTruncated)
		delete(whole.Headers, HeaderDLQOriginalSize)
		if MessageSize(whole) <= limit {
			return whole, nil // without the original headers, the value fits whole
		}
		fit.Value = dl.Value[:min(room, len(dl.Value))]
		return fit, nil
	}
	reason := fit.Headers[HeaderDLQReason]
	fit.Headers[HeaderDLQReason] = ""
	fit.Headers[HeaderDLQReasonTruncated] = "true"
	room := limit - MessageSize(fit)
	if room < 0 {
		return nil, fmt.Errorf("%w: the dead letter for %s offset %s of %s needs %d bytes for its key and dlq_ headers alone, the limit is %d",
			ErrMessageTooLarge, dl.Headers[HeaderDLQOriginalTopic], dl.Headers[HeaderDLQOriginalOffset], dl.Topic, MessageSize(fit), limit)
	}
	fit.Headers[HeaderDLQReason] = truncateUTF8(reason, room)
	return fit, nil
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that does
// not end inside a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
