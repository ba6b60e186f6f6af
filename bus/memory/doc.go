// Package memory is an in-process [bus.EventBus] with the semantics of a
// Kafka cluster: topics with real partitions, consumer groups that split the
// partitions among their members, committed offsets, redelivery after a
// failure, dead-lettering, retention and publish back-pressure.
//
// It is the bus registrar embeds by default and the one its tests run on. A
// test on it proves the same per-entity ordering that production on Kafka
// gets, because keyed messages land on [bus.KeyPartition], like the Java
// client's.
//
// # Topics and partitions
//
// A topic is created on first use (a Publish, or a Subscribe naming it) with
// [Config.Partitions] partitions, or the count given for it in
// [Config.Topics]. A keyed message lands on [bus.KeyPartition](key, n); an
// unkeyed one (nil key) goes to the topic's partitions in turn. Each partition
// is a log of offsets 0, 1, 2, ... with its own lock: publishers and consumers
// of different partitions never contend.
//
// # Consumer groups
//
// Every group sees every message. The members of one group (concurrent
// Subscribe or SubscribeBatch calls with the same group name) split each
// topic's partitions by range, in the order the members joined: with n
// partitions and m members, the first n%m members get n/m+1 consecutive
// partitions, the others n/m. When a member joins or leaves, the partitions
// are reassigned. A partition that changes hands is handed over cleanly: the
// old owner's handler call in progress sees its context canceled, and the new
// owner starts only after that call returned, at the group's committed offset.
// A member's [bus.WithOnAssign] function hears of a new assignment before the
// first message of a newly assigned partition reaches the member's handler.
//
// A member's [bus.WithOnRevoke] function hears of the partitions it lost
// after its handler calls on them returned, and before their new owner's
// handler gets their first message; only the partitions that change hands
// are revoked. [Bus.ConsumerLag] ([bus.LagReporter]) is exact: the
// committed offset against the partition's next offset.
//
// A group that is new to a topic starts at the oldest retained message. A
// group's committed offsets outlive its members: a member that subscribes
// again later goes on where the group left off.
//
// # Delivery
//
// Each owned partition is served by one goroutine of its owner: messages are
// handled one at a time, in offset order, and the offset is committed only
// after the handler returned nil. A handler error delays the partition by the
// subscription's backoff ([bus.SubscribeConfig.RetryDelay]) and delivers the
// same message again; nothing after it on that partition is delivered before
// it succeeds. A [*bus.ContentError] with a dead-letter topic configured
// publishes [bus.DeadLetter] to that topic, commits, and goes on.
//
// With [Config.MaxMessageBytes] set, the bus refuses messages larger than it
// as a Kafka producer would ([bus.SizeLimited]), and cuts a dead letter down
// to fit ([bus.FitDeadLetter]), so tests on this bus meet the same limit as
// production on Kafka, and a message at the limit can still be dead-lettered.
//
// Delivered messages share their buffers with the bus. A handler must not
// modify Key, Value or Headers, and must [bus.Message.Clone] a message (and
// copy a batch slice) that it keeps after it returned: the bus reuses the
// *Message values it hands out.
//
// # Retention and back-pressure
//
// A partition retains at most [Config.RetentionMessages] messages and
// [Config.RetentionBytes] bytes (key, value and header sizes). When a publish
// would exceed a limit, the oldest retained messages that every active group
// (a group with at least one member subscribed to the topic) has committed
// are dropped. If the oldest message is still uncommitted by an active group,
// the publish blocks until that group commits, the group goes away, ctx ends
// (the ctx error is returned) or the bus is closed ([bus.ErrClosed]). Memory
// therefore stays bounded: a slow group slows its publishers down, instead of
// letting the backlog grow. A group without members holds nothing back; when
// it comes back after its uncommitted messages were dropped, it resumes at the
// oldest retained message and the bus logs how many it skipped.
//
// # Partition readers
//
// The bus is a [bus.PartitionReader]: [Bus.ReadPartition] reads one
// partition from its newest or its oldest retained offset, on the caller's
// goroutine, with no group. A reader is no active group: it never holds back
// publishers or retention, and when retention dropped messages before it read
// them it goes on with the oldest retained one and logs how many it skipped.
// [Bus.PartitionCount] creates the topic, as a Publish would.
//
// # Testing hooks
//
// [Config.PublishFault] and [Config.HandlerFault] inject failures;
// [Bus.Partitions], [Bus.Messages], [Bus.Offsets], [Bus.Committed] and
// [Bus.Lag] let tests and operators look inside; [Bus.Readers] counts the
// partition readers in progress. [Config.Now] replaces the
// clock used for message timestamps.
//
// # Lifecycle
//
// [New] starts no goroutine. Subscribe runs one goroutine per owned
// partition, all of which have ended when Subscribe returns; ReadPartition
// one, which has ended when it returns. [Bus.Close] cancels every
// subscription and partition reader, waits for every goroutine the bus started, and
// is safe to call more than once; afterwards every other method returns
// [bus.ErrClosed]. Close must not be called from a handler, which it would
// wait for.
package memory
