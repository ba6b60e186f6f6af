// Package chaos is a fault-injection harness for the registration workflow:
// it runs a consumer group of registration Runtimes while faults hit them,
// then checks that the delivery guarantees held, against one serial run of
// the reducer over the same inputs.
//
// # A run
//
// [Run] takes a [Topology] (a bus, a store, effects, and how to read them
// back: the tests build one on the memory bus and store, one on the memory
// bus over Postgres, one on Kafka's protocol over Postgres, each with a
// memory registry, and one on the memory bus over Postgres with the real
// Consul effect against a Consul agent) and a seed:
//
//  1. The generator ([Generate]) scripts the lives of N entities:
//     introspection, mostly an ack, heartbeats, sometimes a timeout check,
//     a re-registration after a timeout, a metadata refresh. Every input of
//     an entity goes to one topic, keyed by the entity, with its
//     event_type set, from one goroutine in order, so the entity's order is
//     its partition's order. Node timestamps increase strictly per entity
//     and lie before [Clock], the fixed time the members' clock shows.
//     Timeout checks are published by the generator (the members run no
//     sweeper). Poison messages (see [PoisonKinds]) are mixed in on the
//     same topic, keyed by real entities.
//  2. The schedule ([NewSchedule]) switches faults on and off over a window:
//     publish faults (every member's bus is wrapped by [WithPublishFaults],
//     which fails a fraction of Publish calls before or after publishing),
//     store outages (injected retryable errors in the memory store,
//     [Flaky]; cuts of a TCP proxy in front of Postgres, [ProxyOutage]),
//     registry outages (injected errors of the memory registry; cuts of a
//     TCP proxy in front of the Consul agent), and members stopped and
//     restarted (a fresh Runtime in the same group, built by newMember, the
//     one place that constructs Runtimes).
//  3. When the window ends, every fault ends and every member runs again.
//     The harness waits until the group committed every input partition to
//     its end and the outputs, the store and the registry (if the topology
//     reads it back) stayed unchanged for a while; a partition that makes
//     no progress for long is reported as stuck.
//  4. The members stop, the harness reads back the input, output and
//     dead-letter topics and the store, runs the reducer serially over the
//     committed inputs of each partition ([RunModel]), and [Check] tests the
//     invariants (see [Invariant]): every committed input's events were
//     published, duplicates only as identical copies; per entity and topic
//     the published events are the model's; every projection is the
//     model's; no partition stays blocked; the dead letters are exactly the
//     poison messages; and, on a topology that reads its registry back
//     ([Topology].Services), the registry's services are exactly those of
//     the active projections ([CheckRegistry]), before and after one pass
//     of the topology's reconciler, which must change nothing in a registry
//     that matched.
//
// A [Result] counts the inputs, faults, events, duplicates and dead letters,
// and lists the violations: which invariant, which entity, expected against
// found. The workload and the schedule depend only on the seed; the
// interleaving of goroutines does not, so a seed reproduces the faults'
// kinds and timing, not a failure's exact history.
package chaos
