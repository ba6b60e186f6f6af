// Package bustest helps test event buses and the code that uses them.
//
// It ships two things, the way testing/fstest ships TestFS and MapFS:
//
//   - [Run], the conformance suite every [bus.EventBus] implementation must
//     pass. One call runs every case against fresh buses from a constructor:
//     round trips of key, value and headers, the partition of a keyed message,
//     per-key order under concurrent publishers, one handler call at a time
//     per partition, redelivery after a handler error and none after a
//     commit (also across a restart of the subscriber), dead-lettering of
//     content errors, independent consumer groups, members of one group
//     splitting the partitions, taking over from a member that left, and
//     taking a partition away from a member busy on it (its handler's
//     context is canceled, and the new owner waits for it), [bus.WithOnRevoke]
//     agreeing with [bus.WithOnAssign] and the handler calls (a revoke after
//     the partition's last call, before the new owner's first, and of every
//     partition before Subscribe returns), closing while
//     handlers are busy (with a goroutine-leak check), context cancellation,
//     a 1 MiB message; for a [bus.SizeLimited] bus, a message of exactly
//     its limit delivered, one byte more refused with [bus.ErrMessageTooLarge]
//     (and nothing of that Publish call stored), and messages at the limit
//     dead-lettered, cut to fit ([bus.FitDeadLetter]), with the partition
//     moving on; and, for a [bus.BatchSubscriber], batch bounds and
//     [bus.BatchError] partial acknowledgement; and, for a
//     [bus.PartitionReader], reads from the newest offset (nothing from
//     before Started, everything after it, also when published right after
//     Started on a busy partition), from the oldest with catch-up detection,
//     of one partition only, by 50 readers of one partition at once, and
//     their ends: a handler error, a context ending, Close (with a
//     goroutine-leak check). [Features] tells
//     the suite what the bus supports and how slow it is, so the same suite
//     runs against the in-process bus in milliseconds and against a real
//     broker in seconds.
//
//     For a [bus.LagReporter], ConsumerLag counts the messages not yet
//     finished on each owned partition and drains to 0.
//
//   - [Recorder], a fake bus for unit tests of code that publishes and
//     subscribes: it records every published message, can be told to fail
//     publishing, and hands messages to the subscribed handlers
//     synchronously with [Recorder.Deliver], dead-lettering content errors
//     like a real bus.
//
// The suite never sleeps to assert: it waits for conditions with deadlines
// scaled by [Features.TimeScale], and every topic and group name it uses is
// unique, so buses that share one broker do not see each other's messages.
package bustest
