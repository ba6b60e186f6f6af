package bus

import (
	"errors"
	"fmt"
)

// ErrMessageTooLarge is wrapped by the error of a Publish call that a bus
// (or its broker) refused because a message is larger than it accepts. No
// retry can fix that: the same message is refused again however often it is
// sent, so callers branch on it with errors.Is instead of retrying.
var ErrMessageTooLarge = errors.New("registrar/bus: message too large")

// SizeLimited is an optional capability of an [EventBus] whose Publish
// refuses messages above a size. Callers detect it by type assertion:
//
//	if sl, ok := b.(bus.SizeLimited); ok {
//		err = bus.CheckSize(msg, sl.MaxMessageBytes())
//	}
//
// A bus that implements it checks every message of a Publish call with
// [CheckSize] against MaxMessageBytes before it publishes any of them: a
// call with one message too large publishes nothing and returns an error
// wrapping [ErrMessageTooLarge].
type SizeLimited interface {
	// MaxMessageBytes returns the largest message, as counted by
	// [MessageSize], that Publish accepts; zero or less means no limit. It
	// does not change while the bus is open.
	MaxMessageBytes() int
}

// Sizes that [MessageSize] counts besides a message's key, value and header
// names and values. They are the bounds that IBM/sarama counts for a record
// of the Kafka v2 record format (ProducerMessage.ByteSize): the varints of a
// record's length, offset delta, key and value lengths and header count at
// their widest, a 64-bit timestamp delta at its widest and the attributes
// byte; and for each header its two length varints at their widest.
const (
	MessageOverhead = 5*5 + 10 + 1
	HeaderOverhead  = 2 * 5
)

// MessageSize returns the size of m that buses count against
// [SizeLimited.MaxMessageBytes]: [MessageOverhead], plus the lengths of its
// key and value, plus for each header the lengths of its name and value and
// [HeaderOverhead]. Topic, partition, offset and timestamp are not counted.
//
// It equals what IBM/sarama counts for a record of the v2 record format
// (Kafka 0.11 and later) before comparing it with Producer.MaxMessageBytes,
// and is an upper bound of the record's encoded size: a record batch that
// holds only m is at most MessageSize(m) plus the batch header (61 bytes).
func MessageSize(m *Message) int {
	n := MessageOverhead + len(m.Key) + len(m.Value)
	for k, v := range m.Headers {
		n += len(k) + len(v) + HeaderOverhead
	}
	return n
}

// CheckSize returns nil if [MessageSize](m) is at most limit, or if limit
// is zero or less (no limit). Otherwise it returns an error wrapping
// [ErrMessageTooLarge] that names m's topic, its size and the limit, never
// its key, value or headers.
func CheckSize(m *Message, limit int) error {
	if limit <= 0 {
		return nil
	}
	if n := MessageSize(m); n > limit {
		return fmt.Errorf("%w: a message to %q of %d bytes (as MessageSize counts) exceeds the limit of %d", ErrMessageTooLarge, m.Topic, n, limit)
	}
	return nil
}
