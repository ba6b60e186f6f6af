package hooks

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
)

// Hook is a value that implements one or more of this package's
// interfaces. A value that implements none is refused by [New].
type Hook = any

// MessageTracer observes the handling of each message by the Runtime, from
// the moment its envelope was decoded to its outcome.
type MessageTracer interface {
	// MessageStart is called when the runtime starts handling m. env is
	// m's decoded envelope, or nil if the envelope did not decode (the
	// message is then dead-lettered). The returned context is the one the
	// message's steps and hooks are called with, and the one its outputs'
	// trace context is taken from ([Propagator]).
	MessageStart(ctx context.Context, m *bus.Message, env *bus.Envelope) context.Context
	// MessageEnd is called once per MessageStart, with the context it
	// returned, when the runtime is done with m.
	MessageEnd(ctx context.Context, m *bus.Message, end MessageEnd)
}

// Outcome is what became of one message.
type Outcome string

// The outcomes of a message ([MessageEnd.Outcome]); they are the values of
// the registrar_messages_total{outcome} label.
const (
	// OutcomeApplied: its decision changed state and was committed.
	OutcomeApplied Outcome = "applied"
	// OutcomeNoop: its decision changed nothing.
	OutcomeNoop Outcome = "noop"
	// OutcomeCoalesced: it was not decided on its own: another message of
	// its entity in the same batch stands for it (see
	// reducer.Coalescer), and that one's outcome is its outcome.
	OutcomeCoalesced Outcome = "coalesced"
	// OutcomeDeadLettered: it was handed to the dead-letter topic.
	OutcomeDeadLettered Outcome = "dead_lettered"
	// OutcomeAborted: handling stopped before it was done (the context
	// ended, or a batch failed before it): the bus delivers it again.
	OutcomeAborted Outcome = "aborted"
)

// MessageEnd is the outcome of one message's handling.
type MessageEnd struct {
	// Outcome says what became of the message.
	Outcome Outcome
	// Kind is the reducer's input kind (e.g. "heartbeat"), empty if the
	// message did not decode.
	Kind string
	// EntityID is the entity the message is about, zero if it did not
	// decode.
	EntityID uuid.UUID
	// State is the entity's state after the decision, empty if unchanged.
	State string
	// Duration is the time from MessageStart to MessageEnd.
	Duration time.Duration
	// Err is why the message was dead-lettered or aborted.
	Err error
}

// StepKind names a step of handling.
type StepKind string

// The steps a [StepTracer] sees.
const (
	// StepLoad reads the states of a micro-batch's entities.
	StepLoad StepKind = "load"
	// StepDecide runs the reducer for one message.
	StepDecide StepKind = "decide"
	// StepCommit is the store's atomic write of a micro-batch's decisions
	// (its own intents, e.g. the projection upserts, and the records).
	StepCommit StepKind = "commit"
	// StepIntent executes intents of one type on an effect (Consul, or any
	// IntentEffect), one or a batch of them.
	StepIntent StepKind = "intent"
	// StepPublish publishes events (or, from the sweeper, timeout checks).
	StepPublish StepKind = "publish"
)

// Step describes a step when it starts.
type Step struct {
	// Kind is the step.
	Kind StepKind
	// IntentType is the intent type of a StepIntent.
	IntentType string
	// Topic is the topic of a StepPublish whose messages share one (else
	// empty), or of the message being handled.
	Topic string
	// Count is how many messages, entities, decisions, intents or events
	// the step covers.
	Count int
}

// StepEnd is the outcome of a step.
type StepEnd struct {
	// Duration is the step's wall-clock time.
	Duration time.Duration
	// Err is the step's error, nil on success.
	Err error
	// Skipped counts, for a StepIntent, the intents whose idempotence
	// guard held (intent.Skipped) and Conflicts those that reported a
	// conflict; for a StepCommit, Conflicts counts the writes that met
	// one.
	Skipped, Conflicts int
}

// StepTracer observes the steps of handling. Steps of one message run in
// the context its MessageStart returned; steps of a micro-batch (load,
// commit) run in the context of the batch's first message; steps of the
// relay run in the context carried by the record they relay (see
// [Propagator]).
type StepTracer interface {
	// StepStart is called before the step; the returned context is
	// passed to StepEnd.
	StepStart(ctx context.Context, s Step) context.Context
	// StepEnd is called after the step.
	StepEnd(ctx context.Context, s Step, end StepEnd)
}

// Propagator carries trace context across the bus and the outbox.
type Propagator interface {
	// Inject writes the trace context of ctx into carrier (message headers,
	// or the outbox record's carrier), and, when env is not nil, into the
	// envelope's trace_id and span_id. Either may be nil.
	Inject(ctx context.Context, carrier map[string]string, env *bus.Envelope)
	// Extract returns ctx with the trace context carrier holds (as
	// Inject wrote it), or ctx if it holds none.
	Extract(ctx context.Context, carrier map[string]string) context.Context
}

// DecodeHook observes the decoding of each message's payload by the
// reducer.
type DecodeHook interface {
	OnDecode(ctx context.Context, m *bus.Message, d Decoded)
}

// Decoded is the result of decoding one message.
type Decoded struct {
	// Kind and EntityID are the decoded input's, when Err is nil.
	Kind     string
	EntityID uuid.UUID
	// Err says why the message did not decode (it is dead-lettered).
	Err error
}

// DecideHook observes each decision.
type DecideHook interface {
	OnDecide(ctx context.Context, d Decided)
}

// Decided describes one decision.
type Decided struct {
	// Kind and EntityID are the input's.
	Kind     string
	EntityID uuid.UUID
	// NoOp says the decision changed nothing; Reason says why (for a
	// no-op, or to qualify a partial decision), Warn whether it deserves
	// an operator's attention (reducer.Decision.Warn).
	NoOp   bool
	Reason string
	Warn   bool
	// State is the entity's state after the decision, empty if unchanged.
	State string
	// Events and Intents count the decision's outputs.
	Events, Intents int
	// Redecided says the input is decided again after a conflict.
	Redecided bool
}

// RetryHook observes every attempt that is repeated after an error.
type RetryHook interface {
	OnRetry(ctx context.Context, r Retry)
}

// RetryOp names what is retried.
type RetryOp string

// The operations retried.
const (
	// RetryDecision: the decision of a message or a micro-batch (load,
	// decide, apply).
	RetryDecision RetryOp = "decision"
	// RetryRelay: the relay of an entity's outbox records.
	RetryRelay RetryOp = "relay"
	// RetryRelayTask: a pass of the background relay task.
	RetryRelayTask RetryOp = "relay_task"
)

// Retry describes one retry.
type Retry struct {
	// Op is what is retried.
	Op RetryOp
	// Attempt is the number of the attempt that failed (1 for the first).
	Attempt int
	// Retryable and Permanent are the error's marks (intent.IsRetryable,
	// intent.IsPermanent): the error class. Neither set means unmarked.
	Retryable, Permanent bool
	// Backoff is the wait before the next attempt.
	Backoff time.Duration
	// Err is the error.
	Err error
}

// Class returns the error class of r as a metric label: "retryable",
// "permanent" or "unmarked".
func (r Retry) Class() string {
	switch {
	case r.Retryable:
		return "retryable"
	case r.Permanent:
		return "permanent"
	}
	return "unmarked"
}

// DeadLetterHook observes every message or recorded intent handed to the
// dead-letter topic.
type DeadLetterHook interface {
	OnDeadLetter(ctx context.Context, d DeadLetter)
}

// DeadLetterReason classifies why something was dead-lettered; the values
// are those of the registrar_dead_letters_total{reason} label.
type DeadLetterReason string

// The dead-letter reasons.
const (
	// ReasonDecode: the envelope or payload did not decode, or the message
	// is stamped too far ahead of the clock.
	ReasonDecode DeadLetterReason = "decode"
	// ReasonPrepare: the decision could not be prepared (an event that
	// does not encode or fit the bus).
	ReasonPrepare DeadLetterReason = "prepare"
	// ReasonPermanent: the decision failed with a permanent error.
	ReasonPermanent DeadLetterReason = "permanent"
	// ReasonAttempts: the decision failed with an unmarked error as often
	// as the runtime tries one.
	ReasonAttempts DeadLetterReason = "attempts"
	// ReasonRelay: the relay gave up on a recorded intent, events the bus
	// refuses, or a record that does not decode.
	ReasonRelay DeadLetterReason = "relay"
)

// DeadLetter describes one dead letter.
type DeadLetter struct {
	// Reason classifies it.
	Reason DeadLetterReason
	// Topic, Partition and Offset locate the message (for ReasonRelay:
	// the outbox, partition -1, the record's sequence number).
	Topic     string
	Partition int32
	Offset    int64
	// Count is how many messages or intents were dead-lettered (1 but for
	// a record's events).
	Count int
	// Err is the reason in full.
	Err error
}

// ConflictHook observes each write that met a conflict (a concurrent
// writer moved the entity's state); its input is decided again.
type ConflictHook interface {
	OnConflict(ctx context.Context, entityID uuid.UUID)
}

// BatchHook observes each micro-batch the runtime is handed.
type BatchHook interface {
	OnBatch(ctx context.Context, b Batch)
}

// Batch describes one micro-batch: messages of one partition.
type Batch struct {
	Topic     string
	Partition int32
	Size      int
}

// PartitionHook observes the partitions a Runtime's subscription is
// assigned and loses.
type PartitionHook interface {
	// OnAssigned is called with the partitions, by topic, this member owns
	// after a rebalance.
	OnAssigned(group string, assigned map[string][]int32)
	// OnRevoked is called with the partitions taken away from this member.
	OnRevoked(group string, revoked map[string][]int32)
}

// SweepHook observes each sweep of the timeout sweeper.
type SweepHook interface {
	OnSweep(ctx context.Context, s Sweep)
}

// Sweep describes one sweep.
type Sweep struct {
	// Overdue counts the overdue deadlines the sweep read; Published the
	// timeout checks it published (fewer: checks sent recently are not
	// sent again).
	Overdue, Published int
	// Duration is the sweep's wall-clock time.
	Duration time.Duration
	// Err is why the sweep failed, nil on success.
	Err error
}
