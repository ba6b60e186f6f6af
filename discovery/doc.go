// Package discovery finds registered nodes without touching the database:
// a [Client] reads the orchestrator's compacted registration snapshot topic
// (registration.TopicSnapshot by default), keyed by node id, from the
// oldest message into a local view, then follows it.
//
// The view holds the latest snapshot of every node. A snapshot whose
// version is not above the one held for its node is ignored (at-least-once
// redelivery, a compaction race), a tombstone (a message without value)
// removes the node, and a message that cannot be decoded is logged, counted
// in [Stats] and skipped: nothing stops the Client but its context or the
// bus closing.
//
// [Client.Get], [Client.Lookup] and [Client.List] answer from memory;
// [Client.Watch] streams the changes; [Client.Ready] tells when the view
// caught up with what the topic held when reading started. A service
// embeds a Client, runs it for its lifetime, waits for Ready once, and
// asks Lookup for its peers whenever it needs them.
//
// # Buses
//
// On a bus with bus.PartitionReader (bus/memory and bus/kafka both have
// it), the Client reads every partition from its oldest message without a
// consumer group, and knows exactly when it caught up: when it handled the
// message before each partition's high-water mark as of the start of the
// read. The partitions are counted once, when [Client.Run] starts.
//
// That message must exist to be handled. Compaction keeps the last
// message of a log, except a tombstone older than the topic's
// delete.retention.ms in a segment the cleaner already compacted; and a
// transactional producer's commit marker takes an offset that is never
// delivered. A partition whose last offset is such a record is caught up
// only once the next message arrives. Registrar's orchestrator publishes
// without transactions.
//
// On another bus (a wrapper that hides the optional interface, say) it
// subscribes with a consumer group of its own, new for every run so that
// it starts at the oldest message. Such a bus does not tell its high-water
// marks, so Ready is an estimate there: the group was assigned the topic
// and then handled no message for [WithQuietPeriod]. That is still better
// than refusing to run: the view converges all the same, only Ready may be
// early on a stalled broker. Each run leaves a group behind on a Kafka
// cluster, until the cluster expires it.
//
// # Memory
//
// The view holds one [Node] per node; the benchmark BenchmarkCatchUp100k
// reports its heap bytes per node and the catch-up time of 100,000 nodes.
package discovery
