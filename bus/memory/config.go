package memory

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// Defaults applied by [New] to zero fields of a [Config].
const (
	// DefaultPartitions is the partition count of a topic created on first use.
	DefaultPartitions = 12
	// DefaultRetentionMessages is how many messages a partition retains.
	DefaultRetentionMessages = 10_000
	// DefaultRetentionBytes is how many bytes a partition retains: 16 MiB.
	DefaultRetentionBytes = 16 << 20
	// MaxPartitions is the largest partition count a topic may have.
	MaxPartitions = 10_000
)

// NoLimit turns a retention limit off when given as
// [Config.RetentionMessages] or [Config.RetentionBytes]. At least one of the
// two must stay on.
const NoLimit = -1

// Config configures a [Bus]. The zero value is valid: every zero field takes
// its documented default.
type Config struct {
	// Partitions is the number of partitions of a topic created on first
	// use, unless Topics names the topic. The default is [DefaultPartitions].
	Partitions int32

	// Topics overrides Partitions and the retention limits per topic name.
	Topics map[string]TopicConfig

	// RetentionMessages bounds the messages a partition retains; the
	// default is [DefaultRetentionMessages], [NoLimit] turns the bound off.
	// When a publish would exceed it, messages every active group has
	// committed are dropped, oldest first; if the oldest is not committed
	// yet, the publish blocks (see the package documentation).
	RetentionMessages int

	// RetentionBytes bounds the bytes (key, value, header names and values)
	// a partition retains, like RetentionMessages bounds the messages. The
	// default is [DefaultRetentionBytes]; [NoLimit] turns it off. A single
	// message larger than the bound is accepted once it would be the only
	// message in its partition.
	RetentionBytes int64

	// MaxMessageBytes is the largest message, as bus.MessageSize counts it,
	// that Publish accepts, as a Kafka producer's limit would: Publish
	// refuses a call with a larger message, storing none of its messages,
	// with an error wrapping [bus.ErrMessageTooLarge], and dead letters are
	// cut to fit it ([bus.FitDeadLetter]). It is what [Bus.MaxMessageBytes]
	// reports. The default, zero, is no limit.
	MaxMessageBytes int

	// Logger receives the bus's diagnostics: members joining and leaving,
	// messages skipped after retention dropped them and dead letters cut to
	// fit MaxMessageBytes at Info, rebalances and redeliveries at Debug,
	// dead-lettering and content errors without a dead-letter topic at
	// Warn. Nil means silent. Message keys and values are never logged.
	Logger *slog.Logger

	// Now is the clock for message timestamps and dead-letter times; nil
	// means time.Now. Backoff delays always use real time.
	Now func() time.Time

	// PublishFault, if set, is called for every message Publish is about to
	// store (dead letters included). A non-nil result makes Publish return
	// it, wrapped, without storing that message or any after it. Tests use
	// it to simulate a broker outage.
	PublishFault func(msg *bus.Message) error

	// HandlerFault, if set, is called for every delivery before the handler
	// sees the message. A non-nil result counts as that delivery failing
	// with that error, exactly as if the handler had returned it (a
	// [*bus.ContentError] dead-letters the message): the handler does not
	// see the message this time. In a batch, the handler sees the messages
	// before the faulty one, and the faulty one fails on its own. Tests use
	// it to simulate crashes between delivery and commit.
	HandlerFault func(group string, msg *bus.Message) error
}

// TopicConfig overrides the bus-wide settings for one topic. Zero fields
// keep the bus-wide value.
type TopicConfig struct {
	// Partitions is the topic's partition count.
	Partitions int32
	// RetentionMessages is the topic's message limit; see
	// [Config.RetentionMessages].
	RetentionMessages int
	// RetentionBytes is the topic's byte limit; see [Config.RetentionBytes].
	RetentionBytes int64
}

// Validate reports every problem of c at once (errors.Join), or nil.
func (c Config) Validate() error {
	var errs []error
	if c.Partitions < 0 || c.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("registrar/memory: Partitions %d is outside 0..%d", c.Partitions, MaxPartitions))
	}
	if c.RetentionMessages < NoLimit {
		errs = append(errs, fmt.Errorf("registrar/memory: RetentionMessages %d is negative (NoLimit is %d)", c.RetentionMessages, NoLimit))
	}
	if c.RetentionBytes < NoLimit {
		errs = append(errs, fmt.Errorf("registrar/memory: RetentionBytes %d is negative (NoLimit is %d)", c.RetentionBytes, NoLimit))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("registrar/memory: MaxMessageBytes %d is negative (0 is no limit)", c.MaxMessageBytes))
	}
	if c.RetentionMessages == NoLimit && c.RetentionBytes == NoLimit {
		errs = append(errs, errors.New("registrar/memory: RetentionMessages and RetentionBytes are both NoLimit: a partition would grow without bound"))
	}
	names := make([]string, 0, len(c.Topics))
	for name := range c.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tc := c.Topics[name]
		if name == "" {
			errs = append(errs, errors.New("registrar/memory: Topics has an empty topic name"))
		}
		if tc.Partitions < 0 || tc.Partitions > MaxPartitions {
			errs = append(errs, fmt.Errorf("registrar/memory: topic %q: Partitions %d is outside 0..%d", name, tc.Partitions, MaxPartitions))
		}
		if tc.RetentionMessages < NoLimit {
			errs = append(errs, fmt.Errorf("registrar/memory: topic %q: RetentionMessages %d is negative (NoLimit is %d)", name, tc.RetentionMessages, NoLimit))
		}
		if tc.RetentionBytes < NoLimit {
			errs = append(errs, fmt.Errorf("registrar/memory: topic %q: RetentionBytes %d is negative (NoLimit is %d)", name, tc.RetentionBytes, NoLimit))
		}
		msgs := pick(tc.RetentionMessages, c.RetentionMessages)
		bytes := pick(tc.RetentionBytes, c.RetentionBytes)
		if msgs == NoLimit && bytes == NoLimit && (tc.RetentionMessages != 0 || tc.RetentionBytes != 0) {
			errs = append(errs, fmt.Errorf("registrar/memory: topic %q: both retention limits are NoLimit: a partition would grow without bound", name))
		}
	}
	return errors.Join(errs...)
}

// pick returns v, or def when v is zero.
func pick[T int | int32 | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// topicSettings are the effective settings of one topic.
type topicSettings struct {
	partitions int32
	maxMsgs    int   // 0: no limit
	maxBytes   int64 // 0: no limit
}

// settings returns the effective settings of topic; c has its defaults.
func (c *Config) settings(topic string) topicSettings {
	tc := c.Topics[topic]
	s := topicSettings{
		partitions: pick(tc.Partitions, c.Partitions),
		maxMsgs:    pick(tc.RetentionMessages, c.RetentionMessages),
		maxBytes:   pick(tc.RetentionBytes, c.RetentionBytes),
	}
	if s.maxMsgs == NoLimit {
		s.maxMsgs = 0
	}
	if s.maxBytes == NoLimit {
		s.maxBytes = 0
	}
	return s
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Partitions = pick(c.Partitions, DefaultPartitions)
	c.RetentionMessages = pick(c.RetentionMessages, DefaultRetentionMessages)
	c.RetentionBytes = pick(c.RetentionBytes, DefaultRetentionBytes)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
