package discovery

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/registrar-go/registrar/reducer/registration"
)

// Defaults of the options.
const (
	// DefaultWatchBuffer is how many changes a watcher may have pending
	// before it is reset; see [WithWatchBuffer].
	DefaultWatchBuffer = 1024
	// DefaultQuietPeriod is how long a Client on a bus without
	// bus.PartitionReader waits without a message before it declares itself
	// ready; see [WithQuietPeriod].
	DefaultQuietPeriod = time.Second
)

// Option configures a [Client]; see [New].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	topic  string
	domain string
	log    *slog.Logger
	buffer int
	quiet  time.Duration
	group  string
	errs   []error
}

// WithTopic names the snapshot topic to read; the default is
// registration.TopicSnapshot.
func WithTopic(topic string) Option {
	return optionFunc(func(c *config) {
		if topic == "" {
			c.errs = append(c.errs, errors.New("WithTopic(\"\")"))
			return
		}
		c.topic = topic
	})
}

// WithDomain keeps only the snapshots of one registration domain: the
// others are counted in [Stats].Filtered and otherwise ignored. The
// default, "", keeps every domain.
func WithDomain(domain string) Option {
	return optionFunc(func(c *config) { c.domain = domain })
}

// WithLogger sets the logger of undecodable messages (Warn) and of the
// Client's start and catch-up (Debug). The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil)"))
			return
		}
		c.log = l
	})
}

// WithWatchBuffer sets how many changes a watcher may have pending (read
// from the Client but not yet received from the channel) before it is
// reset: the pending changes are dropped and the watcher receives a
// [Reset] followed by the whole view; see [Client.Watch]. The default is
// [DefaultWatchBuffer].
func WithWatchBuffer(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithWatchBuffer(%d): want at least 1", n))
			return
		}
		c.buffer = n
	})
}

// WithQuietPeriod sets, for a bus without bus.PartitionReader only, how
// long the Client's consumer group must have been assigned the topic and
// handled no message before [Client.Ready] is closed. The default is
// [DefaultQuietPeriod]. It has no effect on a bus with
// bus.PartitionReader, where catch-up is known exactly.
func WithQuietPeriod(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithQuietPeriod(%v): want a positive duration", d))
			return
		}
		c.quiet = d
	})
}

// WithGroup names the consumer group of a Client on a bus without
// bus.PartitionReader. The default is a new group per [Client.Run]
// ("registrar-discovery-" and a random UUID), so that every run reads the
// topic from the oldest message; a fixed name must not be shared with
// another reader, and is only right when nothing was ever committed under
// it. It has no effect on a bus with bus.PartitionReader.
func WithGroup(group string) Option {
	return optionFunc(func(c *config) { c.group = group })
}

func newConfig(opts []Option) (config, error) {
	c := config{
		topic:  registration.TopicSnapshot,
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		buffer: DefaultWatchBuffer,
		quiet:  DefaultQuietPeriod,
	}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, errors.New("nil Option"))
			continue
		}
		o.apply(&c)
	}
	if len(c.errs) > 0 {
		return c, fmt.Errorf("registrar/discovery: %w", errors.Join(c.errs...))
	}
	return c, nil
}
