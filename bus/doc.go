// Package bus defines what registrar needs from an event bus, and the wire
// format it speaks.
//
// # The wire format
//
// [Envelope] is the ONEX event envelope: snake_case JSON with RFC 3339
// timestamps, exactly as the Python ONEX services write it. Unknown fields are
// ignored on input. onex_version and envelope_version are semantic versions
// ([Version]), prerelease and build metadata included: accepted either as a
// "1.2.3-rc.1+build.5" string or as a {"major","minor","patch","prerelease",
// "build"} object, and written as the object. [DecodeEnvelope] reports a
// malformed envelope as a [*DecodeError] that names the field.
//
// Timestamps are strict RFC 3339 with a zone, as [ParseTimeField] reads them
// for the envelope and for the payload decoders built on this package, and
// must lie between [MinTime] (2000-01-01) and [MaxTime] (9000-01-01): a zero
// or epoch default is an error at decoding, and no deadline computed from
// an accepted time can overflow what encoding/json writes.
//
// # The bus
//
// [EventBus] publishes raw messages ([EventBus.Publish]) or envelopes
// ([EventBus.PublishEnvelope], with an optional [WithKey]), and runs a handler
// for a consumer group ([EventBus.Subscribe]). Every implementation keeps the
// same promises, checked by the conformance suite in package bustest:
//
//   - A keyed message lands on partition [KeyPartition](key, n), the partition
//     that the Java client, aiokafka, franz-go and sarama's murmur2 partitioner
//     pick, so all messages of one entity stay in order on one partition. A nil
//     key means "no key": such messages are spread over the partitions.
//   - Messages of one partition are handled one at a time, in offset order;
//     different partitions are handled concurrently.
//   - An offset is committed only after the handler returned nil. A handler
//     error means redelivery of the same message, after a backoff, never loss.
//   - A handler that returns a [*ContentError] says the message can never be
//     processed: the bus publishes it to the dead-letter topic given by
//     [WithDeadLetterTopic], with the reason and the message's origin in
//     headers (see [DeadLetter]), commits it, and goes on with the partition.
//
// # Reading a partition
//
// A bus that implements the optional [PartitionReader] also reads one
// partition of a topic outside any consumer group: [PartitionReader.ReadPartition]
// hands a handler every message of the partition from its newest offset (or,
// with [ReadFromOldest], its oldest retained one) on, commits nothing, and
// holds back neither publishers nor retention. A caller that will publish a
// request and read its answer from a partition waits for [WithReadStarted]'s
// function before it publishes: every message published after that is
// delivered. Many readers, each of the partition [KeyPartition] maps its key
// to, together read a topic once.
//
// # Size limits
//
// A bus whose Publish refuses large messages says so by implementing the
// optional [SizeLimited]: MaxMessageBytes is the largest message, as
// [MessageSize] counts it (the bound that sarama counts for a Kafka v2
// record), that Publish accepts. Such a bus checks every message of a call
// with [CheckSize] before it publishes any, and a message too large fails
// with an error wrapping [ErrMessageTooLarge], which no retry fixes. A
// caller that must know in advance whether an event can be published (the
// runtime checks a decision's events before any effect runs) asks the same
// question with the same two functions.
//
// A dead letter is larger than the message it copies: its headers say why
// and where from. So that a message within the limit can always be
// dead-lettered, buses pass the copy through [FitDeadLetter] with their
// limit: the value is cut to a prefix (headers dlq_value_truncated and
// dlq_original_size say so), and if even that does not fit, the original
// headers are dropped. The partition then moves on.
//
// # Assignment, revocation and lag
//
// [WithOnAssign] hears each new assignment of a member as soon as it is
// decided; [WithOnRevoke] hears the partitions taken away from it, after
// the handler's last call on each returned, and at the end of the
// subscription, before Subscribe returns. A bus that implements the
// optional [LagReporter] reports, for the partitions this process's
// subscriptions of a group own, how many messages are at or after the first
// one not yet finished ([PartitionLag]): exact on package bus/memory, from
// the last fetched high-water mark on package bus/kafka.
//
// # Implementations
//
// Package bus/memory is an in-process bus with real partitions, consumer
// groups and offsets; package bus/kafka speaks Kafka through IBM/sarama.
// Package bus/bustest holds the conformance suite and a recording fake for
// unit tests.
package bus
