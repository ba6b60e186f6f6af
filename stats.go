package registrar

import "sync/atomic"

// Stats counts what a Runtime did. Counts include work that was later
// retried: an intent executed twice is counted twice.
type Stats struct {
	// Handled counts messages processed to completion and acknowledged.
	Handled int64 `json:"handled"`
	// NoOps counts decisions that changed nothing.
	NoOps int64 `json:"noops"`
	// NoOpsWarned counts the no-ops the reducer marked as deserving an
	// operator's attention (reducer.Decision.Warn: an ack or heartbeat
	// for a node the orchestrator does not know, or knows in a state that
	// does not take it); they are counted in NoOps too. Every one is
	// counted, though the WARN records are rate-limited.
	NoOpsWarned int64 `json:"noops_warned"`
	// Coalesced counts messages that were not decided on their own, as
	// another message of the same entity in their micro-batch stood for
	// them (a node's heartbeats coalesce into the newest; see
	// reducer.Coalescer and [WithCoalescing]); they are counted in Handled.
	Coalesced int64 `json:"coalesced"`
	// IntentsExecuted counts intents executed without error, and
	// IntentsSkipped those of them whose guard held.
	IntentsExecuted int64 `json:"intents_executed"`
	IntentsSkipped  int64 `json:"intents_skipped"`
	// EventsPublished counts events published by the relay.
	EventsPublished int64 `json:"events_published"`
	// DeadLettered counts messages handed to the dead-letter topic, and
	// recorded intents the relay gave up on.
	DeadLettered int64 `json:"dead_lettered"`
	// Retries counts attempts repeated after an error (of a decision, a
	// relay, or a pass of the relay task).
	Retries int64 `json:"retries"`
	// Conflicts counts decisions made again because the state moved between
	// reading it and writing the decision.
	Conflicts int64 `json:"conflicts"`
	// Relayed counts outbox records relayed (their intents executed, their
	// events published) and removed.
	Relayed int64 `json:"relayed"`
	// ReconcilePasses counts the passes of the reconciler ([WithReconciler]),
	// and ReconcileFailures those that failed or left nodes unrepaired.
	ReconcilePasses   int64 `json:"reconcile_passes"`
	ReconcileFailures int64 `json:"reconcile_failures"`
	// ReconcileRegistered, ReconcileUpdated and ReconcileDeregistered count
	// the registry entries the reconciler added, rewrote and removed.
	ReconcileRegistered   int64 `json:"reconcile_registered"`
	ReconcileUpdated      int64 `json:"reconcile_updated"`
	ReconcileDeregistered int64 `json:"reconcile_deregistered"`
}

type counters struct {
	handled, noops, noopsWarned, coalesced, intents, skipped, events, deadLettered, retries, conflicts, relayed atomic.Int64

	reconcilePasses, reconcileFailures, reconcileRegistered, reconcileUpdated, reconcileDeregistered atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Handled:         c.handled.Load(),
		NoOps:           c.noops.Load(),
		NoOpsWarned:     c.noopsWarned.Load(),
		Coalesced:       c.coalesced.Load(),
		IntentsExecuted: c.intents.Load(),
		IntentsSkipped:  c.skipped.Load(),
		EventsPublished: c.events.Load(),
		DeadLettered:    c.deadLettered.Load(),
		Retries:         c.retries.Load(),
		Conflicts:       c.conflicts.Load(),
		Relayed:         c.relayed.Load(),

		ReconcilePasses:       c.reconcilePasses.Load(),
		ReconcileFailures:     c.reconcileFailures.Load(),
		ReconcileRegistered:   c.reconcileRegistered.Load(),
		ReconcileUpdated:      c.reconcileUpdated.Load(),
		ReconcileDeregistered: c.reconcileDeregistered.Load(),
	}
}
