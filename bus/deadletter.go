package bus

import (
	"errors"
	"maps"
	"strconv"
	"time"
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
