package bus

// SizeLimited is an optional interface of an [EventBus] whose messages have
// a size limit.
type SizeLimited interface {
	// MaxMessageBytes returns the largest message, as counted by
	// [MessageSize], that Publish accepts.
	MaxMessageBytes() int
}

// MessageSize returns the size of m as a bus counts it against its limit:
// key, value, and header names and values, plus a record's fixed overhead.
func MessageSize(m *Message) int {
	n := 34 + len(m.Key) + len(m.Value)
	for k, v := range m.Headers {
		n += 10 + len(k) + len(v)
	}
	return n
}
