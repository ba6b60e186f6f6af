package bus

import (
	"maps"
	"time"
)

// Message is one record on a topic partition, as published or as delivered.
type Message struct {
	// Topic is the topic the message is published to or was read from.
	Topic string
	// Partition and Offset locate a delivered message; Publish sets them.
	Partition int32
	Offset    int64
	// Key selects the partition; nil means no key.
	Key []byte
	// Value is the payload, usually an encoded [Envelope].
	Value []byte
	// Headers carry metadata as UTF-8 strings.
	Headers Headers
	// Timestamp is when the message was published.
	Timestamp time.Time
}

// Clone returns a deep copy of m: a handler that keeps a message after it
// returned must keep a clone, because buses may reuse buffers.
func (m *Message) Clone() *Message {
	c := *m
	if m.Key != nil {
		c.Key = append([]byte{}, m.Key...)
	}
	if m.Value != nil {
		c.Value = append([]byte{}, m.Value...)
	}
	c.Headers = maps.Clone(m.Headers)
	return &c
}

// Headers are message headers. Names are case-sensitive; values are UTF-8.
type Headers map[string]string

// Header names that registrar writes and reads, as the ONEX services use them.
const (
	HeaderContentType   = "content_type"
	HeaderCorrelationID = "correlation_id"
	HeaderMessageID     = "message_id"
	HeaderTimestamp     = "timestamp"
	HeaderEventType     = "event_type"
	HeaderSchemaVersion = "schema_version"
)

// Header names of a dead-lettered message; see [DeadLetter].
const (
	HeaderDLQReason          = "dlq_reason"
	HeaderDLQOriginalTopic   = "dlq_original_topic"
	HeaderDLQOriginalPart    = "dlq_original_partition"
	HeaderDLQOriginalOffset  = "dlq_original_offset"
	HeaderDLQConsumerGroup   = "dlq_consumer_group"
	HeaderDLQDeadLetteredAt  = "dlq_dead_lettered_at"
	ContentTypeJSON          = "application/json"
	contentErrorReasonPrefix = "content error: "
)

// Header names that [FitDeadLetter] adds to a dead letter it cut down to fit
// a size limit.
const (
	// HeaderDLQValueTruncated is "true" on a dead letter whose value was
	// cut to a prefix.
	HeaderDLQValueTruncated = "dlq_value_truncated"
	// HeaderDLQOriginalSize is the length in bytes (decimal) of the value
	// of the original message, on a dead letter whose value was cut.
	HeaderDLQOriginalSize = "dlq_original_size"
	// HeaderDLQHeadersDropped is "true" on a dead letter that lost the
	// original message's headers: only the dlq_ ones are left.
	HeaderDLQHeadersDropped = "dlq_headers_dropped"
	// HeaderDLQReasonTruncated is "true" on a dead letter whose
	// [HeaderDLQReason] was cut short.
	HeaderDLQReasonTruncated = "dlq_reason_truncated"
)
