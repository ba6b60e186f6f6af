package bus

// LagReporter is an optional interface of an [EventBus] that can tell how far
// this process's consumers of a group are behind. Callers detect it by type
// assertion; a metrics callback reads it on every scrape.
type LagReporter interface {
	// ConsumerLag returns one entry per partition that a subscription of
	// group in this process (a Subscribe or SubscribeBatch call on this bus)
	// owns at the moment, sorted by topic and then partition. It returns
	// nil when no subscription of group owns a partition: partitions owned
	// by other processes, or by nobody, are not reported.
	//
	// It is safe for concurrent use, does not block on the network, and
	// allocates nothing but the returned slice, which belongs to the
	// caller.
	ConsumerLag(group string) []PartitionLag
}

// PartitionLag is how far one member of a consumer group is behind on one
// partition it owns; see [LagReporter].
type PartitionLag struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int32
	// Next is the offset of the first message of the partition that the
	// member has not finished: the message its handler is busy with, or
	// the next one it will get. Every message before Next was handled and
	// acknowledged (its handler returned nil, or it was dead-lettered).
	// Its commit may still be in flight; see the bus's documentation.
	Next int64
	// HighWaterMark is the offset the partition's next published message
	// gets, as the bus knows it (see the bus's documentation for how fresh
	// that is).
	HighWaterMark int64
	// Lag is HighWaterMark - Next, and never below 0: the number of
	// messages at or after the first one the member has not finished. It is
	// 0 when the member has caught up, and counts a message whose handler
	// call is in progress.
	Lag int64
}
