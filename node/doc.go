// Package node is the node side of the registration workflow: a Go service
// registers itself with a registrar (or ONEX) orchestrator, stays alive,
// and registers again when its registration ends.
//
//	n, err := node.New(b, node.Info{
//		ID:        id, // stable per instance, or uuid.New() per process
//		Type:      "effect",
//		Version:   bus.Version{Major: 1, Minor: 4, Patch: 2},
//		Endpoints: map[string]string{"health": "http://10.0.0.7:8080/health"},
//	}, node.WithContract(c))
//	if err != nil {
//		return err
//	}
//	go func() { _ = n.Run(ctx) }()
//	if err := n.WaitActive(ctx); err != nil {
//		return err
//	}
//
// # The protocol
//
// [Node.Run] publishes the node's introspection keyed by its id, waits for
// the NodeRegistrationAccepted event that answers it (same correlation id),
// then sends the ack; on NodeBecameActive the node is active and heartbeats
// at the interval, with jitter, its uptime and its count of active
// operations. It introspects again on NodeRegistrationAckTimedOut, on
// NodeLivenessExpired and on a registry request that targets it (see
// registrar.RequestIntrospection), and after the contract's ack timeout when
// no answer came (doubling to eight times that; after its ack it waits
// twice as long, for the orchestrator's ack timeout to come first). An
// ack timeout is matched to the registration by its deadline, so one of an
// earlier attempt delivered again is ignored. When one of its reads failed
// and restarted (and may have lost an event), and when it is resumed, an
// active node introspects again to confirm its registration. An
// introspection while a
// registration of the node is active (a restart under the same id) is
// answered with NodeBecameActive, so the node becomes active without
// waiting for the old registration to expire.
//
// When Run's context ends, the node announces its shutdown
// (ModelNodeShutdownEvent, reason graceful, on the contract's shutdown
// topic, onex.node.shutdown.announced.v1 by default) before Run returns,
// and the orchestrator removes the registration: its projection is
// deleted, its Consul service deregistered, and the snapshot topic gets a
// tombstone, so discovery clients forget the node at once instead of
// after a liveness window. Run waits for the announcement at most
// [DefaultShutdownTimeout] of real time ([WithShutdownTimeout]); a node
// that restarts at once under the same id may prefer
// [WithoutShutdownAnnouncement], and its introspection then refreshes the
// registration that is still active. Stats.Shutdowns and
// Stats.ShutdownFailures count the outcomes; the state is
// [StateShuttingDown] meanwhile.
//
// The node waits for the Accepted event before it acks because messages of
// one node are ordered only within one topic: the introspection and the ack
// travel on different topics, so an ack sent right after the introspection
// can reach the orchestrator first, where it is a no-op for an unknown node.
//
// # Reading only its own events
//
// On a bus that implements bus.PartitionReader (the memory and the Kafka
// buses) the node reads, of each event topic, only the partition its key
// maps to (bus.KeyPartition), from the newest offset, without a consumer
// group: with P partitions, a node reads 1/P of the event traffic, and
// 10,000 nodes in one process on Kafka share one partition consumer per
// partition. Registry requests are read the same way:
// registrar.RequestIntrospection publishes a copy to every partition.
// [Stats].MessagesRead against
// Stats.Events shows what that costs. On any other bus the node falls back
// to a consumer group of its own (registrar-node-<id>), which reads every
// event and skips those the bus stamped before Run started. The partition
// is computed when Run starts: after a topic gained partitions, run the
// node again.
//
// Many nodes in one process (a simulation, a gateway for many devices) can
// share their reads: with [WithSharedReads], the nodes of one [SharedReads]
// read each topic partition once between them, and each message is handed
// only to the nodes it is keyed for, without a goroutine per node and
// topic. Without it, every node on a partition is handed every message of
// it, so n nodes in one process cost n²/P message hand-offs.
//
// # Time
//
// Timestamps, uptime, heartbeat intervals and retry waits follow the
// node's [Clock]; a [ManualClock] makes minutes of protocol run in
// milliseconds, in tests and in the registration example. Every message is
// stamped later than the last one the node sent (in this Run or an earlier
// one) and every event it read, so a clock that stands still for a moment
// or runs behind the orchestrator's does not make its messages stale: an
// introspection after a timeout is stamped after the timeout's decision.
// The clock must still follow real time: the orchestrator computes each
// liveness deadline from the heartbeat's timestamp, so a node whose clock
// stands still expires after a liveness window however often it beats
// (and then registers again).
package node
