package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
)

// Bus is a [bus.EventBus], [bus.BatchSubscriber] and [bus.PartitionReader]
// on Kafka. Create it with
// [New]; its methods are safe for concurrent use.
type Bus struct {
	cfg Config
	sc  *sarama.Config
	log *slog.Logger

	client   sarama.Client
	producer sarama.AsyncProducer
	admin    sarama.ClusterAdmin // nil unless cfg.CreateTopics
	demuxed  chan struct{}       // closed when the demux goroutine returned

	// Publish queues its messages for the feed goroutine, the only sender
	// to the producer's input: publishers never wait for the producer's
	// pipeline, only for their acknowledgements.
	qmu     sync.Mutex
	queue   []*sarama.ProducerMessage // to send, in order
	spare   []*sarama.ProducerMessage // the feeder's last batch, for reuse
	qclosed bool                      // set by Close: nothing more is queued
	wake    chan struct{}             // cap 1: the queue became non-empty, or closed
	fed     chan struct{}             // closed when the feed goroutine returned

	// ctx ends when Close starts; every subscription derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed and subs.Add
	closed atomic.Bool
	subs   sync.WaitGroup // Subscribe calls in progress

	closeOnce sync.Once

	// Partition readers: newest readers share one feed per partition, on
	// one consumer made the first time a reader needs it.
	reads    sync.WaitGroup // ReadPartition calls in progress (Add under mu)
	feedsWG  sync.WaitGroup // feed goroutines
	readMu   sync.Mutex     // guards the fields below, and every feed's readers and refs
	consumer sarama.Consumer
	// readClient is the partition consumers' own client: its long-polling
	// fetches must not share broker connections with the producer, whose
	// requests a broker would answer only after them.
	readClient sarama.Client
	feeds      map[feedKey]*feed // the shared feed of each partition read
	retired    map[feedKey]*feed // a stopped shared feed that may still run

	// groups holds the Subscribe calls in progress by group, for
	// ConsumerLag.
	groupsMu sync.Mutex
	groups   map[string][]*subscription

	topicMu sync.Mutex // serializes topic creation
	known   sync.Map   // topic name → struct{}: exists (only with CreateTopics)
}

var (
	_ bus.EventBus        = (*Bus)(nil)
	_ bus.BatchSubscriber = (*Bus)(nil)
	_ bus.SizeLimited     = (*Bus)(nil)
	_ bus.PartitionReader = (*Bus)(nil)
	_ bus.LagReporter     = (*Bus)(nil)
)

// New validates cfg, connects to the brokers and returns a bus ready to
// publish and subscribe. It starts the goroutines of a sarama client and an
// async producer, and three of its own that feed the producer and hand its
// answers back to the publishers; [Bus.Close] ends them all.
//
// An invalid cfg is an error that is not marked: trying again cannot help.
// A failure to reach or use the brokers (none answers, a dial or the
// metadata request times out, the SASL handshake fails, the producer cannot
// get its id, the cluster admin finds no controller) is marked
// [intent.Retryable], as postgres.NewPool marks a failure to connect: the
// caller may try New again later. Its message names the brokers, never the
// SASL password.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.SASL.Mechanism == SASLPlain && cfg.TLS == nil {
		log.Warn("registrar/kafka: SASL PLAIN without TLS sends the password in the clear")
	}
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("registrar/kafka: connect to %v: %w", cfg.Brokers, brokerError(err))
	}
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("registrar/kafka: start producer (brokers %v): %w", cfg.Brokers, brokerError(err))
	}
	b := &Bus{cfg: cfg, sc: sc, log: log, client: client, producer: producer,
		demuxed: make(chan struct{}), wake: make(chan struct{}, 1), fed: make(chan struct{}),
		feeds: make(map[feedKey]*feed), retired: make(map[feedKey]*feed), groups: make(map[string][]*subscription)}
	if cfg.CreateTopics {
		// The admin shares the client; closing the client releases it.
		if b.admin, err = sarama.NewClusterAdminFromClient(client); err != nil {
			_ = producer.Close()
			_ = client.Close()
			return nil, fmt.Errorf("registrar/kafka: start cluster admin (brokers %v): %w", cfg.Brokers, brokerError(err))
		}
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.feed()
	go b.demux()
	log.Debug("registrar/kafka: connected", "brokers", cfg.Brokers, "client_id", cfg.ClientID, "version", sc.Version.String())
	return b, nil
}

// brokerError marks err, returned by sarama while New talks to the brokers,
// [intent.Retryable], unless sarama found fault with its configuration,
// which no retry fixes.
func brokerError(err error) error {
	var cerr sarama.ConfigurationError
	if errors.As(err, &cerr) {
		return err
	}
	return intent.Retryable(err)
}

// Close stops every subscription (their handlers see their contexts
// canceled; a handler that returns nil still has its offset committed, and
// each member leaves its group) and every partition reader (they return
// [bus.ErrClosed]), waits for them to return, flushes the
// producer (publish calls in progress get their results) and closes the
// connections. It waits for every goroutine the bus started. Close is safe
// to call more than once; afterwards every other method returns
// [bus.ErrClosed]. It must not be called from a handler, which it would wait
// for.
func (b *Bus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed.Store(true)
		b.mu.Unlock()
		b.cancel()
		b.subs.Wait()
		b.reads.Wait()
		b.feedsWG.Wait()
		if b.consumer != nil {
			_ = b.consumer.Close() // shares readClient: releases only its metrics
		}
		if b.readClient != nil {
			_ = b.readClient.Close()
		}

		b.qmu.Lock()
		b.qclosed = true
		b.qmu.Unlock()
		b.signal()
		<-b.fed
		b.producer.AsyncClose()
		<-b.demuxed
		if e := b.client.Close(); e != nil && !errors.Is(e, sarama.ErrClosedClient) {
			err = fmt.Errorf("registrar/kafka: close: %w", e)
		}
		b.log.Debug("registrar/kafka: closed")
	})
	return err
}

// ensureTopics creates the topics that do not exist yet, if the bus creates
// topics.
func (b *Bus) ensureTopics(topics ...string) error {
	if b.admin == nil {
		return nil
	}
	var missing []string
	for _, t := range topics {
		if _, ok := b.known.Load(t); !ok && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	b.topicMu.Lock()
	defer b.topicMu.Unlock()
	for _, t := range missing {
		if _, ok := b.known.Load(t); ok {
			continue
		}
		detail := &sarama.TopicDetail{NumPartitions: b.cfg.Partitions, ReplicationFactor: b.cfg.ReplicationFactor}
		compact := slices.Contains(b.cfg.CompactTopics, t)
		if compact {
			policy := "compact"
			detail.ConfigEntries = map[string]*string{"cleanup.policy": &policy}
		}
		err := b.admin.CreateTopic(t, detail, false)
		switch {
		case err == nil:
			b.log.Info("registrar/kafka: topic created", "topic", t, "partitions", b.cfg.Partitions,
				"replication_factor", b.cfg.ReplicationFactor, "compact", compact)
		case errors.Is(err, sarama.ErrTopicAlreadyExists):
		default:
			return fmt.Errorf("registrar/kafka: create topic %q: %w", t, err)
		}
		b.known.Store(t, struct{}{})
	}
	return nil
}
