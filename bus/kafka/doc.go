// Package kafka is a [bus.EventBus] (and [bus.BatchSubscriber] and
// [bus.PartitionReader]) on Apache
// Kafka, through the IBM/sarama client. It is registrar's production bus:
// the Runtime, the registration workflow and the example run on it
// unchanged, with the same guarantees as on the in-process bus of package
// bus/memory, which the conformance suite in package bus/bustest checks.
//
// # Configuration
//
// [New] takes a [Config]: the brokers, a client id, the Kafka version,
// optional TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), whether to
// create missing topics (for tests and demos), the producer's linger, a
// logger, and an escape hatch, [Config.Sarama], to edit the *sarama.Config
// the bus builds.
// [Config.Validate] reports every problem at once. Passwords never appear in
// errors, logs, or a printed Config.
//
// # Publishing
//
// Publish hands messages to one sarama AsyncProducer shared by all callers,
// so that concurrent publishers share produce requests, and returns once the
// brokers acknowledged every message (or failed some), with Partition,
// Offset and Timestamp set. The producer is idempotent: acks from all
// in-sync replicas, one request in flight per broker, retries with backoff;
// a retried request is never stored twice and never overtakes a later one,
// so the messages of a key stay in publish order. Keys are hashed with
// sarama's murmur2 partitioner: a keyed message lands on
// [bus.KeyPartition](key, partitions), where the Java client, aiokafka and
// franz-go put it too. A nil key spreads messages at random. Headers travel
// as UTF-8 bytes.
//
// A batch for a broker goes out as soon as its partitions have no produce
// request in flight: under load, whatever concurrent publishers hand over
// while a request is out travels in the next one. [Config.Linger] (Kafka's
// linger.ms) makes the producer hold a batch up to that long for more
// messages, or until it holds [LingerBytes]. The default is no linger:
// every Publish waits for its acknowledgement, so a linger is added to the
// latency of every call that starts a batch (all of a lone publisher's),
// while the batches it would form under load form anyway. On the bench
// module's in-process brokers, 8 publishers saw a p50 (p99) of 0.35 ms
// (1.9 ms) without linger, 1.6 ms (4.1 ms) at 1 ms and 5.9 ms (9.3 ms) at
// 5 ms; 4096 publishers got three times larger produce requests at 5 ms
// but published no faster (0.66x to 1.13x the rate without linger, over five
// runs).
//
// If Publish's context ends while it waits, it returns the context's error;
// the messages may still be stored.
//
// # Size limits
//
// The bus is a [bus.SizeLimited]: [Bus.MaxMessageBytes] is sarama's
// Producer.MaxMessageBytes, capped so that every record batch fits the
// brokers' limit ([Config.BrokerMaxMessageBytes] less the batch header,
// [RecordBatchOverhead]), and [bus.MessageSize] counts a message as sarama
// does. Publish refuses a call with a larger message before sending any of
// it; that error, and the brokers' MESSAGE_TOO_LARGE, wrap
// [bus.ErrMessageTooLarge]: sarama does not retry them and neither should a
// caller. A dead letter is cut to fit the limit ([bus.FitDeadLetter]), so a
// message that was within the limit can always be dead-lettered and its
// partition moves on. If a topic sets a max.message.bytes below the
// brokers', set BrokerMaxMessageBytes to the smallest.
//
// # Consuming
//
// Subscribe and SubscribeBatch join a sarama consumer group and block until
// their context ends or the bus closes. Each call is one group member with
// its own connections; a new group starts at the oldest retained message.
// Each assigned partition is served by one goroutine: its messages are
// handled one at a time (or one batch at a time), in offset order, while
// different partitions run concurrently.
//
// An offset is marked only after the handler returned nil for its message
// (or dead-lettered it), and marked offsets are committed synchronously
// whenever the partition's goroutine has caught up with the messages
// fetched so far or is about to wait out a retry backoff, at least every
// 500 ms or 1000 messages under load, and always before the partition is
// given up. A handler error delays the partition by the
// subscription's backoff ([bus.SubscribeConfig.RetryDelay]) and delivers the
// same message again, without committing; nothing after it is delivered
// before it succeeds. A [*bus.ContentError] with a dead-letter topic
// ([bus.WithDeadLetterTopic]) publishes [bus.DeadLetter] (reason, original
// topic, partition, offset and group in headers) and then commits.
//
// Rebalances use the eager protocol: when members join or leave, every
// member's handlers see their contexts canceled, each partition goroutine
// finishes or abandons its message (a handler that returns nil is committed;
// one that returns an error is not) and commits before the member rejoins, so
// the next owner of a partition starts right after the last acknowledged
// message: a clean handover delivers nothing twice. Delivery is at least
// once: a member that dies without leaving, or a commit lost with a broken
// connection, makes the next owner handle again the messages after the
// last committed offset. [bus.WithOnAssign] sees the assigned partitions
// after every rebalance, and an empty assignment when they are released;
// [bus.WithOnRevoke] then hears that every partition of the session was
// revoked, after all its handler calls returned and before the member
// rejoins. [Bus.ConsumerLag] ([bus.LagReporter]) compares the offset the
// subscription last marked with the claim's high-water mark as of the last
// fetch response.
//
// Delivered messages share their Key and Value with the consumer's buffers:
// a handler must not modify them, and must [bus.Message.Clone] a message it
// keeps after it returned.
//
// # Partition readers
//
// [Bus.ReadPartition] reads one partition without a consumer group and
// commits nothing. The readers of one partition from its newest offset, in
// one Bus, share one sarama partition consumer (on one sarama consumer of the
// bus's client): the first reader starts it, later ones join, and the last
// to leave closes it; so a process may run as many readers of a partition as
// it likes. A reader joins first and then asks the brokers for the newest
// offset, which is where it starts: it misses nothing published after
// [bus.WithReadStarted]'s function was called. Each reader has its own buffer
// of 256 messages; when it is full, the shared partition consumer waits, so
// one slow reader slows the other readers of its partition. A reader
// [bus.ReadFromOldest] has a sarama consumer and partition consumer of its
// own. A partition consumer whose offset is out of range starts again at the
// oldest retained offset (messages deleted meanwhile are skipped) or, if the
// log was truncated, at its end. [Bus.PartitionCount] creates the topic when
// [Config.CreateTopics] is set.
//
// # Lifecycle
//
// [New] connects and starts the goroutines of a sarama client, an async
// producer, and three that feed the producer and hand its answers back to
// the publishers. Its errors are marked as postgres.NewPool's are: an
// invalid Config is not retryable, while brokers that cannot be reached or
// refuse the bus (a dial, the metadata request or the SASL handshake fails
// or times out) make an [intent.Retryable] error, which names the brokers
// and never the password, so that a caller may retry New with backoff.
// Subscribe runs sarama's consumer group goroutines until it returns;
// partition readers run one goroutine per partition consumer, which ends
// with the last reader of the partition. [Bus.Close] ends every
// subscription (members leave their groups after committing) and every
// partition reader (their ReadPartition calls return [bus.ErrClosed]), flushes the producer so that publish calls in progress get
// their answers, and closes every connection; it waits for every goroutine
// the bus started, is safe to call twice, and afterwards every other method
// returns [bus.ErrClosed].
//
// # Testing
//
// Package bus/kafka/kafkatest starts an in-process Kafka cluster (the real
// wire protocol, served by franz-go's kfake) and builds buses for it with
// test timings.
package kafka
