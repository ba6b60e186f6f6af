package chaos

import (
	"context"
	"fmt"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

// Log reads what a bus holds: the messages of a topic, and how far a
// consumer group got.
type Log interface {
	// Read returns the messages of topic by partition, each partition in
	// offset order. A topic that does not exist has no messages.
	Read(ctx context.Context, topic string) ([][]*bus.Message, error)
	// Progress returns, for every partition of topics, the offset the next
	// message will get and group's committed offset (-1 for none, and
	// for an empty group name).
	Progress(ctx context.Context, group string, topics []string) ([]PartitionProgress, error)
}

// PartitionProgress is how far a group got on one partition.
type PartitionProgress struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset: the next message it will
	// handle; -1 if it committed none.
	Committed int64
	// End is the offset the next message published will get.
	End int64
}

// Lag returns how many messages of the partition the group has not
// committed.
func (p PartitionProgress) Lag() int64 { return p.End - max(p.Committed, 0) }

func (p PartitionProgress) String() string {
	return fmt.Sprintf("%s/%d committed %d of %d", p.Topic, p.Partition, p.Committed, p.End)
}

// MemoryLog is the [Log] of a memory bus, which lets tests look inside.
type MemoryLog struct {
	Bus *memory.Bus
}

// Read implements [Log].
func (l MemoryLog) Read(_ context.Context, topic string) ([][]*bus.Message, error) {
	parts := make([][]*bus.Message, l.Bus.Partitions(topic))
	for p := range parts {
		parts[p] = l.Bus.Messages(topic, int32(p))
	}
	return parts, nil
}

// Progress implements [Log].
func (l MemoryLog) Progress(_ context.Context, group string, topics []string) ([]PartitionProgress, error) {
	var out []PartitionProgress
	for _, t := range topics {
		for p := range l.Bus.Partitions(t) {
			_, end := l.Bus.Offsets(t, p)
			committed := int64(-1)
			if group != "" {
				committed = l.Bus.Committed(group, t, p)
			}
			out = append(out, PartitionProgress{Topic: t, Partition: p, Committed: committed, End: end})
		}
	}
	return out, nil
}
