package kafka

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// Defaults applied by [New] to zero fields of a [Config].
const (
	// DefaultClientID is the client id the bus names itself with.
	DefaultClientID = "registrar"
	// DefaultVersion is the Kafka protocol version the bus speaks: the
	// version sarama defaults to, which every broker since 2.8 accepts.
	DefaultVersion = "2.8.0"
	// DefaultPartitions is the partition count of a topic that the bus
	// creates (see [Config.CreateTopics]).
	DefaultPartitions = 12
	// DefaultReplicationFactor is the replication factor of a topic that the
	// bus creates.
	DefaultReplicationFactor = 1
	// DefaultBrokerMaxMessageBytes is Kafka's default message.max.bytes:
	// the largest record batch a broker accepts, 1 MiB and the 12 bytes of
	// a batch's log overhead.
	DefaultBrokerMaxMessageBytes = 1048588
)

// LingerBytes is the size at which a lingering batch goes out before its
// [Config.Linger] is up: once the messages bound for one broker add up to
// 64 KiB (sarama's Producer.Flush.Bytes; four times the Java client's
// batch.size, since it counts a broker's messages rather than a
// partition's).
const LingerBytes = 64 << 10

// MaxLinger is the longest [Config.Linger] that [Config.Validate] accepts.
const MaxLinger = time.Second

// RecordBatchOverhead is the size of the header of a Kafka v2 record batch
// (its log overhead included): what a batch adds to the records in it, and
// so what a broker's message.max.bytes must hold besides a record.
const RecordBatchOverhead = 61

// minVersion is the oldest Kafka version the bus works with: idempotent
// producing needs 0.11.
var minVersion = sarama.V0_11_0_0

// SASL mechanisms that [SASL.Mechanism] accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Config configures a [Bus]. Brokers is required; every other zero field
// takes its documented default.
type Config struct {
	// Brokers are the bootstrap brokers, as host:port.
	Brokers []string

	// ClientID names the bus's connections to the brokers; the default is
	// [DefaultClientID].
	ClientID string

	// Version is the Kafka version the brokers run, such as "3.7.0"; it
	// selects the protocol versions the bus speaks. The default is
	// [DefaultVersion]; the oldest accepted is 0.11.0.
	Version string

	// TLS, if not nil, makes every connection use TLS with this
	// configuration.
	TLS *tls.Config

	// SASL, if its Mechanism is set, authenticates every connection.
	SASL SASL

	// CreateTopics makes the bus create every topic it is about to publish
	// to or subscribe to (dead-letter topics included) when the topic does
	// not exist yet, with Partitions partitions and ReplicationFactor
	// replicas, through the cluster admin API. It suits tests and demos;
	// production topics are usually created by their operators. When it is
	// false, publishing to a missing topic fails and subscribing to one
	// waits until it exists: the bus never asks a broker to auto-create a
	// topic through metadata requests.
	CreateTopics bool

	// Partitions is the partition count of the topics the bus creates; the
	// default is [DefaultPartitions].
	Partitions int32

	// ReplicationFactor is the replica count of the topics the bus creates;
	// the default is [DefaultReplicationFactor].
	ReplicationFactor int16

	// CompactTopics are the topics the bus creates (with CreateTopics) as
	// compacted topics, cleanup.policy=compact, so that the brokers keep
	// the last message of every key: a snapshot topic such as the
	// registration reducer's (registration.TopicSnapshot, or the contract's
	// event_bus.snapshot_topic). The bus does not change the configuration
	// of a topic that exists already.
	CompactTopics []string

	// BrokerMaxMessageBytes is the largest record batch the brokers accept
	// on every topic the bus publishes to, dead-letter topics included: the
	// brokers' message.max.bytes, or the max.message.bytes of a topic that
	// sets a smaller one. The bus caps sarama's Producer.MaxMessageBytes (its
	// limit on one message, and on the records of one batch before
	// compression) at BrokerMaxMessageBytes - [RecordBatchOverhead], so that
	// every batch it sends fits; [Bus.MaxMessageBytes] reports the result.
	// The default is [DefaultBrokerMaxMessageBytes], Kafka's default.
	BrokerMaxMessageBytes int

	// Linger is how long the producer holds the first message of a batch
	// for a broker, waiting for more to join it, before it sends the batch
	// as one produce request: Kafka's linger.ms, sarama's
	// Producer.Flush.Frequency. A lingering batch goes out early once it
	// holds [LingerBytes] of messages. The default, zero, sends a batch as
	// soon as its partitions have no produce request in flight; a negative
	// Linger, or one longer than [MaxLinger], is refused. [Config.Sarama]
	// may still change sarama's Flush settings.
	//
	// Lingering costs latency and rarely buys throughput here. Publish
	// returns only once the brokers acknowledged its messages, so a call
	// that starts a batch waits up to Linger longer: a lone publisher pays
	// it on every call. Under load, batches form without it: the
	// idempotent producer keeps one request in flight per partition, and
	// whatever is published meanwhile goes out together in the next one
	// (Kafka's Java client defaults to 5 ms for callers that do not wait
	// for each message). The bench module's kafka benchmark measures
	// throughput and p50/p99 Publish latency with and without lingering:
	// on its in-process brokers, 8 publishers' p50 rose from 0.35 ms
	// without linger to 1.6 ms at 1 ms and 5.9 ms at 5 ms, while 4096
	// publishers were no faster at 5 ms than without (0.66x to 1.13x, over
	// five runs).
	Linger time.Duration

	// Logger receives the bus's diagnostics: group membership changes and
	// dead letters cut to fit the size limit at Info, redeliveries at
	// Debug, dead letters, failed commits and consumer errors at Warn. Nil
	// means silent. Messages' keys and values and the SASL password are
	// never logged.
	Logger *slog.Logger

	// Sarama, if set, is called with the *sarama.Config that the bus built
	// from the fields above, and may change anything in it: timeouts, fetch
	// sizes, compression, the rebalance strategy. Afterwards the bus restores
	// the settings its guarantees rest on: producer Return.Successes and
	// Return.Errors, consumer offsets not auto-committed, consumer
	// Return.Errors, and an eager rebalance protocol; and it caps
	// Producer.MaxMessageBytes as BrokerMaxMessageBytes says (a lower value
	// set here is kept).
	Sarama func(*sarama.Config)
}

// SASL holds the credentials the bus authenticates with. Its String and
// GoString methods leave the password out.
type SASL struct {
	// Mechanism is [SASLPlain], [SASLScramSHA256] or [SASLScramSHA512];
	// empty means no SASL.
	Mechanism string
	// User and Password are the credentials; both are required with a
	// mechanism. PLAIN sends the password as it is: use it with TLS.
	User     string
	Password string
}

// String describes s without its password.
func (s SASL) String() string {
	if s.Mechanism == "" {
		return "SASL{}"
	}
	pw := ""
	if s.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("SASL{Mechanism:%s User:%s Password:%s}", s.Mechanism, s.User, pw)
}

// GoString is String, so that %#v does not print the password either.
func (s SASL) GoString() string { return s.String() }

// Validate reports every problem of c at once, joined with [errors.Join];
// nil means [New] can use it.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("registrar/kafka: config: "+format, args...))
	}
	if len(c.Brokers) == 0 {
		bad("no brokers")
	}
	for i, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			bad("broker %d (%q) is not host:port", i, b)
			continue
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			bad("broker %d (%q) has an invalid port", i, b)
		}
	}
	if c.Version != "" {
		v, err := sarama.ParseKafkaVersion(c.Version)
		switch {
		case err != nil:
			bad("version %q is not a Kafka version like 3.7.0", c.Version)
		case !v.IsAtLeast(minVersion):
			bad("version %s is older than %s, the first with idempotent producers", c.Version, minVersion)
		}
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.User != "" || c.SASL.Password != "" {
			bad("SASL credentials without a SASL mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.User == "" {
			bad("SASL %s without a user", c.SASL.Mechanism)
		}
		if c.SASL.Password == "" {
			bad("SASL %s without a password", c.SASL.Mechanism)
		}
	default:
		bad("SASL mechanism %q is not %s, %s or %s", c.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if c.Partitions < 0 {
		bad("negative partition count %d", c.Partitions)
	}
	if c.ReplicationFactor < 0 {
		bad("negative replication factor %d", c.ReplicationFactor)
	}
	for i, t := range c.CompactTopics {
		if t == "" {
			bad("compact topic %d is empty", i)
		}
	}
	if c.BrokerMaxMessageBytes < 0 || c.BrokerMaxMessageBytes > 0 && c.BrokerMaxMessageBytes <= RecordBatchOverhead+bus.MessageOverhead {
		bad("BrokerMaxMessageBytes %d leaves no room for a record (a batch needs %d bytes and its records at least %d)",
			c.BrokerMaxMessageBytes, RecordBatchOverhead, bus.MessageOverhead)
	}
	if c.Linger < 0 || c.Linger > MaxLinger {
		bad("Linger %v is not between 0 and MaxLinger (%v)", c.Linger, MaxLinger)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.BrokerMaxMessageBytes == 0 {
		c.BrokerMaxMessageBytes = DefaultBrokerMaxMessageBytes
	}
	return c
}

// saramaConfig builds the sarama configuration for c, which has been
// validated and has its defaults.
func (c Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("registrar/kafka: config: version %q: %w", c.Version, err)
	}
	sc.Version = v

	if c.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.TLS
	}
	if c.SASL.Mechanism != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = c.SASL.User
		sc.Net.SASL.Password = c.SASL.Password
		switch c.SASL.Mechanism {
		case SASLPlain:
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLScramSHA256:
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAM(sha256.New) }
		case SASLScramSHA512:
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAM(sha512.New) }
		}
	}

	// Topics are created on purpose (CreateTopics), never as a side effect
	// of a metadata request.
	sc.Metadata.AllowAutoTopicCreation = false

	// The idempotent producer: every message acknowledged by all in-sync
	// replicas, written once and in order despite retries.
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return backoff(100*time.Millisecond, 2*time.Second, retries)
	}
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	if c.Linger > 0 {
		sc.Producer.Flush.Frequency = c.Linger
		sc.Producer.Flush.Bytes = LingerBytes
	}

	// Consumer groups: start at the oldest message, and hand rebalances to
	// the eager protocol, under which every partition is released (its
	// handler returned, its offsets committed) before anyone else gets it.
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}

	if c.Sarama != nil {
		c.Sarama(sc)
	}
	enforce(sc)
	// A batch the brokers refuse as too large fails every message in it: no
	// batch the producer builds may exceed their limit.
	sc.Producer.MaxMessageBytes = min(sc.Producer.MaxMessageBytes, c.BrokerMaxMessageBytes-RecordBatchOverhead)
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("registrar/kafka: sarama config: %w", err)
	}
	return sc, nil
}

// enforce restores the settings the bus's guarantees depend on.
func enforce(sc *sarama.Config) {
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Return.Errors = true
	strategies := sc.Consumer.Group.Rebalance.GroupStrategies
	if s := sc.Consumer.Group.Rebalance.Strategy; s != nil { //nolint:staticcheck // honour the deprecated field, which overrides GroupStrategies
		strategies = []sarama.BalanceStrategy{s}
		sc.Consumer.Group.Rebalance.Strategy = nil //nolint:staticcheck // moved to GroupStrategies
	}
	var eager []sarama.BalanceStrategy
	for _, s := range strategies {
		if s != nil && !cooperative(s) {
			eager = append(eager, s)
		}
	}
	if len(eager) == 0 {
		eager = append(eager, sarama.NewBalanceStrategyRoundRobin())
	}
	sc.Consumer.Group.Rebalance.GroupStrategies = eager
}

// cooperative reports whether s can take part in the cooperative rebalance
// protocol, which sarama would prefer over the eager one.
func cooperative(s sarama.BalanceStrategy) bool {
	ps, ok := s.(sarama.RebalanceProtocolBalanceStrategy)
	return ok && slices.Contains(ps.SupportedProtocols(), sarama.RebalanceProtocolCooperative)
}

// backoff returns lo doubled n times, capped at hi.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
