package registration

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// Input event types this reducer decodes, as the envelope's event_type may
// name them (with or without the Python model's "Model" prefix). An envelope
// without event_type is decoded by its topic.
const (
	EventTypeIntrospection = "NodeIntrospectionEvent"
	EventTypeAck           = "NodeRegistrationAcked"
	EventTypeHeartbeat     = "NodeHeartbeatEvent"
	EventTypeTimeoutCheck  = "NodeRegistrationTimeoutCheck"
)

// Reducer is the registration state machine; see the package documentation
// for its table. It is immutable and safe for concurrent use.
type Reducer struct {
	cfg Config
}

var (
	_ reducer.Reducer[*Projection] = (*Reducer)(nil)
	_ reducer.Evolver[*Projection] = (*Reducer)(nil)
)

// New returns a Reducer with cfg's durations and topics (zero fields take
// their defaults).
func New(cfg Config) (*Reducer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reducer{cfg: cfg.withDefaults()}, nil
}

// Config returns the configuration with defaults filled in.
func (r *Reducer) Config() Config { return r.cfg }

func (r *Reducer) kindOf(topic, eventType string) (string, error) {
	if eventType != "" {
		switch strings.TrimPrefix(eventType, "Model") {
		case EventTypeIntrospection:
			return KindIntrospection, nil
		case EventTypeAck:
			return KindAck, nil
		case EventTypeHeartbeat:
			return KindHeartbeat, nil
		case EventTypeTimeoutCheck:
			return KindTimeoutCheck, nil
		case EventTypeShutdown, eventTypeShutdownModel:
			return KindShutdown, nil
		}
		// The Python services' headers name the topic as event type.
		if k := r.kindOfTopic(eventType); k != "" {
			return k, nil
		}
		return "", &bus.DecodeError{Field: "event_type", Reason: fmt.Sprintf("unknown event type %q", eventType)}
	}
	if k := r.kindOfTopic(topic); k != "" {
		return k, nil
	}
	return "", &bus.DecodeError{Field: "event_type", Reason: fmt.Sprintf("missing, and topic %q carries no known input", topic)}
}

func (r *Reducer) kindOfTopic(topic string) string {
	switch topic {
	case r.cfg.Topics.Introspection:
		return KindIntrospection
	case r.cfg.Topics.Ack:
		return KindAck
	case r.cfg.Topics.Heartbeat:
		return KindHeartbeat
	case r.cfg.Topics.TimeoutCheck:
		return KindTimeoutCheck
	case r.cfg.Topics.Shutdown:
		return KindShutdown
	}
	return ""
}

// Decode decodes an envelope read from topic into an [Introspection], [Ack],
// [Heartbeat], [TimeoutCheck] or [Shutdown], chosen by the envelope's event_type, else by
// the topic. An unknown event type or an invalid payload is an error naming
// the field.
func (r *Reducer) Decode(topic string, env *bus.Envelope) (reducer.Input, error) {
	kind, err := r.kindOf(topic, env.EventType)
	if err != nil {
		return reducer.Input{}, err
	}
	in := reducer.Input{Kind: kind, Envelope: env}
	switch kind {
	case KindIntrospection:
		ev, err := DecodeIntrospection(env.Payload)
		if err != nil {
			return in, err
		}
		in.EntityID, in.Event = ev.NodeID, ev
	case KindAck:
		ev, err := DecodeAck(env.Payload)
		if err != nil {
			return in, err
		}
		in.EntityID, in.Event = ev.NodeID, ev
	case KindHeartbeat:
		ev, err := DecodeHeartbeat(env.Payload)
		if err != nil {
			return in, err
		}
		in.EntityID, in.Event = ev.NodeID, ev
	case KindTimeoutCheck:
		ev, err := DecodeTimeoutCheck(env.Payload)
		if err != nil {
			return in, err
		}
		in.EntityID, in.Event = ev.EntityID, ev
	case KindShutdown:
		ev, err := DecodeShutdown(env.Payload)
		if err != nil {
			return in, err
		}
		in.EntityID, in.Event = ev.NodeID, ev
	}
	return in, nil
}

// Decide decides in against the entity's projection p (nil: none). Node
// messages (introspection, ack, heartbeat, shutdown) are decided at their envelope
// timestamp, the node's clock, which also orders them: one not newer than
// the projection's updated_at is stale and a no-op. Timeout checks are
// decided at now, the deciding runtime's clock, so a sweeper whose clock
// is wrong cannot expire a healthy node: a check's CheckedAt and DeadlineAt
// are informational, and it is judged against the projection's deadlines
// as of now.
//
// A redelivered message that was applied before is a no-op (stale, or its
// transition already made): the runtime's outbox, not a replay of the
// decision, carries the work the first delivery left undone.
//
// Unless snapshots are disabled, every decision that changes the state, and
// the metadata refresh of an active node, ends with a snapshot event
// ([EventSnapshot] on Topics.Snapshot, keyed by the node): [SnapshotOf] the
// projection as the decision leaves it, with the decision's time as
// snapshot_created_at and, in Unix microseconds, as snapshot_version.
// Heartbeats publish none. The version increases strictly per entity
// because every such decision of one entity happens later than the one
// before it: a node message must be newer than updated_at, which every
// earlier node decision set or passed; a timeout is stamped at now, but
// never earlier than a microsecond after updated_at (a node whose clock
// runs ahead of the sweeper's would otherwise see its expiry ordered
// before its last refresh); and a new registration after a timeout must be
// newer than the timeout's marker. (Envelope timestamps are in
// microseconds as [bus.DecodeEnvelope] returns them.)
func (r *Reducer) Decide(p *Projection, in reducer.Input, now time.Time) reducer.Decision {
	if in.Envelope == nil {
		return reducer.Decision{Reason: "input has no envelope"}
	}
	_, check := in.Event.(*TimeoutCheck)
	if !check {
		now = in.Envelope.EnvelopeTimestamp
	}
	now = now.UTC()
	if !check && p != nil && !now.After(p.UpdatedAt) {
		// Introspections, acks and heartbeats come from the node and are
		// ordered by its clock; updated_at is the time of the node's last
		// message that changed the projection (timeouts do not touch it).
		return reducer.Decision{Reason: "stale " + in.Kind + ": not newer than the node's last change (updated_at)"}
	}
	switch ev := in.Event.(type) {
	case *Introspection:
		return r.introspection(p, in.Envelope, ev, now)
	case *Ack:
		return r.ack(p, in.Envelope, ev, now)
	case *Heartbeat:
		return r.heartbeat(p, in.Envelope, ev, now)
	case *TimeoutCheck:
		return r.timeout(p, in.Envelope, ev, now)
	case *Shutdown:
		return r.shutdown(p, in.Envelope, ev)
	}
	return reducer.Decision{Reason: fmt.Sprintf("unknown input %T", in.Event)}
}

// withSnapshot appends to d, decided at now about p, the snapshot event of
// the projection d leaves, unless snapshots are disabled.
func (r *Reducer) withSnapshot(p *Projection, d reducer.Decision, now time.Time) reducer.Decision {
	if r.cfg.DisableSnapshots {
		return d
	}
	next := r.Evolve(p, reducer.Input{}, d)
	if next == nil {
		return d
	}
	at := micro(now)
	s := SnapshotOf(next, max(at.UnixMicro(), 1), at)
	ev := reducer.Event{Topic: r.cfg.Topics.Snapshot, Type: EventSnapshot, EntityID: next.EntityID, Payload: s}
	if meta, err := s.Metadata(); err == nil { // it marshals strings and an int: it cannot fail
		ev.Metadata = meta
	}
	d.Events = append(d.Events, ev)
	return d
}

// timeoutStamp returns the time a timeout decided at now is stamped with
// (its marker, its event's emitted_at, its snapshot): now, or a microsecond
// after the node's last change if now is not later, so that the timeout
// orders after every earlier decision of the entity even when the node's
// clock runs ahead of the deciding runtime's. The deadline is judged at now.
func timeoutStamp(now, updatedAt time.Time) time.Time {
	if floor := updatedAt.Add(time.Microsecond); now.Before(floor) {
		return floor
	}
	return now
}

func (r *Reducer) header(nodeID uuid.UUID, env *bus.Envelope, corr uuid.UUID, now time.Time) EventHeader {
	if corr == uuid.Nil {
		corr = env.CorrelationID
	}
	if corr == uuid.Nil {
		corr = env.EnvelopeID
	}
	return EventHeader{EntityID: nodeID, NodeID: nodeID, CorrelationID: corr, CausationID: env.EnvelopeID, EmittedAt: now}
}

func (r *Reducer) event(topic, typ string, h EventHeader, payload any) reducer.Event {
	return reducer.Event{Topic: topic, Type: typ, EntityID: h.EntityID, NodeID: h.NodeID, CorrelationID: h.CorrelationID, Payload: payload}
}

// AttemptID returns the id of the registration attempt started by
// the introspection envelope env: UUIDv5 of env in the namespace "attempt".
func AttemptID(env uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(env, []byte("registration-attempt"))
}

func (r *Reducer) introspection(p *Projection, env *bus.Envelope, ev *Introspection, now time.Time) reducer.Decision {
	state := StateNone
	if p != nil {
		state = p.State
	}
	switch {
	case state.Terminal() && !now.After(later(p.AckTimeoutEmittedAt, p.LivenessTimeoutEmittedAt)):
		// Sent before the timeout that ended the registration: it belongs
		// to that registration and must not start a new one. (The only
		// comparison of the node's clock with another's: the marker is the
		// clock of the process that decided the timeout; skew delays a
		// re-registration by at most the skew.)
		return reducer.Decision{Reason: "stale introspection: not newer than the timeout that ended the registration"}
	case state.Retriable():
		gen := int64(1)
		if p != nil {
			gen = p.Generation + 1
		}
		proj := Projection{
			EntityID: ev.NodeID, Domain: r.cfg.Domain, State: StateAwaitingAck,
			NodeType: ev.NodeType, NodeVersion: ev.NodeVersion.String(),
			Capabilities: ev.Capabilities, Endpoints: ev.Endpoints,
			AckDeadline:        deadlineAfter(now, r.cfg.AckTimeout),
			LastAppliedEventID: env.EnvelopeID,
			RegisteredAt:       now, UpdatedAt: now,
			CorrelationID: ev.CorrelationID, Generation: gen,
		}
		return r.withSnapshot(p, reducer.Decision{
			State:  string(StateAwaitingAck),
			Events: r.registrationEvents(env, ev, proj.AckDeadline, now),
			Intents: []intent.Intent{{
				Type: IntentUpsert, Target: postgresTarget(ev.NodeID), CorrelationID: ev.CorrelationID,
				Payload: &UpsertRegistration{Projection: proj, Columns: registrationColumns, ExpectedState: state, CorrelationID: ev.CorrelationID},
			}},
		}, now)
	case state == StateActive:
		proj := *p
		proj.NodeType, proj.NodeVersion = ev.NodeType, ev.NodeVersion.String()
		proj.Capabilities, proj.Endpoints, proj.UpdatedAt = ev.Capabilities, ev.Endpoints, now
		// The refresh answers the node with NodeBecameActive, carrying the
		// capabilities it declared now: a node that introspects while its
		// registration is active (restarted with the same id, or asked by
		// the registry) learns it is active, and consumers learn what
		// changed. A repeated NodeBecameActive is an update, not a second
		// activation; consumers already deduplicate at-least-once events.
		h := r.header(ev.NodeID, env, ev.CorrelationID, now)
		caps := proj.Capabilities
		if len(caps) == 0 {
			caps = []byte("{}")
		}
		d := reducer.Decision{
			Reason: "metadata refresh of an active node",
			Events: []reducer.Event{r.event(r.cfg.Topics.BecameActive, EventBecameActive, h, &BecameActive{EventHeader: h, Capabilities: caps})},
			Intents: []intent.Intent{{
				Type: IntentUpsert, Target: postgresTarget(ev.NodeID), CorrelationID: ev.CorrelationID,
				Payload: &UpsertRegistration{Projection: proj, Columns: metadataColumns, ExpectedState: StateActive, CorrelationID: ev.CorrelationID},
			}},
		}
		if !r.cfg.DisableConsul {
			if p.NodeType != proj.NodeType {
				// The service id names the type: the old id goes in the
				// same decision, before the new one is registered.
				d.Intents = append(d.Intents, r.consulDeregister(p, ev.CorrelationID))
			}
			d.Intents = append(d.Intents, r.consulRegister(&proj, ev.CorrelationID))
		}
		return r.withSnapshot(p, d, now)
	}
	return reducer.Decision{Reason: "registration in progress: state " + state.String() + " blocks a new registration"}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (r *Reducer) registrationEvents(env *bus.Envelope, ev *Introspection, ackDeadline, now time.Time) []reducer.Event {
	h := r.header(ev.NodeID, env, ev.CorrelationID, now)
	return []reducer.Event{
		r.event(r.cfg.Topics.Initiated, EventInitiated, h, &Initiated{EventHeader: h, AttemptID: AttemptID(env.EnvelopeID)}),
		r.event(r.cfg.Topics.Accepted, EventAccepted, h, &Accepted{EventHeader: h, AckDeadline: ackDeadline.UTC()}),
	}
}

func (r *Reducer) consulRegister(p *Projection, corr uuid.UUID) intent.Intent {
	return intent.Intent{
		Type: IntentConsulReg, Target: consulTarget(p.NodeType, p.EntityID), CorrelationID: corr,
		Payload: &ConsulRegister{NodeID: p.EntityID, NodeType: p.NodeType, NodeVersion: p.NodeVersion,
			Endpoints: p.Endpoints, Generation: p.Generation, CorrelationID: corr},
	}
}

func (r *Reducer) ack(p *Projection, env *bus.Envelope, ev *Ack, now time.Time) reducer.Decision {
	if p == nil {
		return reducer.Decision{Reason: "ack for an unknown node", Warn: true}
	}
	switch {
	case p.State.awaitingAck():
		deadline := deadlineAfter(now, r.cfg.LivenessInterval)
		d := reducer.Decision{
			State:  string(StateActive),
			Events: r.activationEvents(p, env, ev, deadline, now),
			Intents: []intent.Intent{{
				Type: IntentUpdate, Target: postgresTarget(p.EntityID), CorrelationID: ev.CorrelationID,
				Payload: &UpdateRegistration{
					EntityID: p.EntityID, Domain: p.Domain, ExpectedState: p.State, CorrelationID: ev.CorrelationID,
					Set:    ColCurrentState | ColLivenessDeadline | ColLastAppliedEventID | ColUpdatedAt,
					Values: Projection{State: StateActive, LivenessDeadline: deadline, LastAppliedEventID: env.EnvelopeID, UpdatedAt: now},
					// The state alone does not tell this registration from
					// a later one: a timeout and a new introspection leave
					// the row awaiting an ack again, one generation on.
					Guard:    ackGuard,
					Expected: Projection{Generation: p.Generation, UpdatedAt: p.UpdatedAt},
				},
			}},
		}
		if !r.cfg.DisableConsul {
			d.Intents = append(d.Intents, r.consulRegister(p, ev.CorrelationID))
		}
		return r.withSnapshot(p, d, now)
	case p.State == StateActive || p.State == StateAckReceived:
		return reducer.Decision{Reason: "duplicate ack: node is " + p.State.String()}
	case p.State == StatePendingRegistration:
		return reducer.Decision{Reason: "ack too early: registration is pending", Warn: true}
	case p.State == StateAckTimedOut:
		return reducer.Decision{Reason: "ack too late: the ack deadline passed", Warn: true}
	}
	return reducer.Decision{Reason: "ack for a node in terminal state " + p.State.String(), Warn: true}
}

func (r *Reducer) activationEvents(p *Projection, env *bus.Envelope, ev *Ack, deadline, now time.Time) []reducer.Event {
	h := r.header(p.EntityID, env, ev.CorrelationID, now)
	caps := p.Capabilities
	if len(caps) == 0 {
		caps = []byte("{}")
	}
	return []reducer.Event{
		r.event(r.cfg.Topics.AckReceived, EventAckReceived, h, &AckReceived{EventHeader: h, LivenessDeadline: deadline.UTC()}),
		r.event(r.cfg.Topics.BecameActive, EventBecameActive, h, &BecameActive{EventHeader: h, Capabilities: caps}),
	}
}

// heartbeatDecision holds everything a heartbeat decision allocates, so that
// the hot path allocates once.
type heartbeatDecision struct {
	intents [2]intent.Intent
	update  UpdateRegistration
	pass    ConsulPassTTL
}

func (r *Reducer) heartbeat(p *Projection, env *bus.Envelope, ev *Heartbeat, now time.Time) reducer.Decision {
	switch {
	case p == nil:
		return reducer.Decision{Reason: "heartbeat from an unknown node", Warn: true}
	case p.State != StateActive:
		return reducer.Decision{Reason: "heartbeat in state " + p.State.String() + ": a heartbeat never revives a node; it must introspect again", Warn: true}
	case !p.LastHeartbeatAt.IsZero() && !p.LastHeartbeatAt.Before(ev.Timestamp):
		return reducer.Decision{Reason: "stale heartbeat: not newer than last_heartbeat_at"}
	}
	hb := ev.Timestamp.UTC()
	corr := ev.CorrelationID
	if corr == uuid.Nil {
		corr = env.CorrelationID
	}
	deadline := deadlineAfter(hb, r.cfg.LivenessWindow)
	if deadline.Before(p.LivenessDeadline) {
		deadline = p.LivenessDeadline
	}
	a := &heartbeatDecision{}
	a.update = UpdateRegistration{
		EntityID: p.EntityID, Domain: p.Domain, ExpectedState: StateActive, CorrelationID: corr,
		Set:      ColLastHeartbeatAt | ColLivenessDeadline | ColUpdatedAt,
		Values:   Projection{LastHeartbeatAt: hb, LivenessDeadline: deadline, UpdatedAt: now},
		Guard:    heartbeatGuard,
		Expected: Projection{LivenessDeadline: p.LivenessDeadline, UpdatedAt: p.UpdatedAt},
	}
	// One target string for both intents keeps the hot path at two
	// allocations: this struct and the string.
	target := p.EntityID.String()
	a.intents[0] = intent.Intent{Type: IntentUpdate, Target: target, Payload: &a.update, CorrelationID: corr}
	n := 1
	if ttl := r.cfg.ConsulTTL; !r.cfg.DisableConsul && ttl > 0 {
		third := ttl / 3
		if p.LastHeartbeatAt.IsZero() || hb.Truncate(third) != p.LastHeartbeatAt.Truncate(third) {
			a.pass = ConsulPassTTL{NodeID: p.EntityID, NodeType: p.NodeType, NodeVersion: p.NodeVersion, Endpoints: p.Endpoints,
				Generation: p.Generation, At: hb, CorrelationID: corr}
			a.intents[1] = intent.Intent{Type: IntentConsulPassTTL, Target: target, Payload: &a.pass, CorrelationID: corr}
			n = 2
		}
	}
	return reducer.Decision{Intents: a.intents[:n:n]}
}

// Coalesce implements [reducer.Coalescer]: two heartbeats of one node
// coalesce into the newer by timestamp (the earlier on a tie). A heartbeat
// only ever moves last_heartbeat_at and the liveness deadline forward, so
// the newer one decided alone writes what both would: the older one after
// it is stale, and before it is overwritten; its TTL pass is covered by the
// newer one's, which is due whenever either was. Other inputs do not
// coalesce.
func (r *Reducer) Coalesce(earlier, later reducer.Input) (keepLater, ok bool) {
	a, okA := earlier.Event.(*Heartbeat)
	b, okB := later.Event.(*Heartbeat)
	if !okA || !okB {
		return false, false
	}
	return b.Timestamp.After(a.Timestamp), true
}

func (r *Reducer) timeout(p *Projection, env *bus.Envelope, ev *TimeoutCheck, now time.Time) reducer.Decision {
	if p == nil {
		return reducer.Decision{Reason: "timeout check for an unknown entity"}
	}
	corr := ev.CorrelationID
	switch ev.Kind {
	case TimeoutAck:
		switch {
		case !p.State.awaitingAck():
			return reducer.Decision{Reason: "no ack timeout: state is " + p.State.String()}
		case !p.AckTimeoutEmittedAt.IsZero():
			return reducer.Decision{Reason: "ack timeout already emitted"}
		case p.AckDeadline.IsZero() || !p.AckDeadline.Before(now):
			return reducer.Decision{Reason: "ack deadline not passed"}
		}
		now = timeoutStamp(now, p.UpdatedAt)
		return r.withSnapshot(p, reducer.Decision{
			State:  string(StateAckTimedOut),
			Events: r.ackTimeoutEvents(p, env, corr, now),
			Intents: []intent.Intent{{
				Type: IntentUpdate, Target: postgresTarget(p.EntityID), CorrelationID: corr,
				Payload: &UpdateRegistration{
					EntityID: p.EntityID, Domain: p.Domain, ExpectedState: p.State, CorrelationID: corr,
					Set:      ColCurrentState | ColAckTimeoutEmittedAt | ColLastAppliedEventID,
					Values:   Projection{State: StateAckTimedOut, AckTimeoutEmittedAt: now, LastAppliedEventID: env.EnvelopeID},
					Guard:    ackTimeoutGuard,
					Expected: Projection{AckDeadline: p.AckDeadline},
				},
			}},
		}, now)
	case TimeoutLiveness:
		switch {
		case p.State != StateActive:
			return reducer.Decision{Reason: "no liveness timeout: state is " + p.State.String()}
		case !p.LivenessTimeoutEmittedAt.IsZero():
			return reducer.Decision{Reason: "liveness timeout already emitted"}
		case p.LivenessDeadline.IsZero() || !p.LivenessDeadline.Before(now):
			return reducer.Decision{Reason: "liveness deadline not passed"}
		}
		now = timeoutStamp(now, p.UpdatedAt)
		d := reducer.Decision{
			State:  string(StateLivenessExpired),
			Events: r.livenessEvents(p, env, corr, now),
			Intents: []intent.Intent{{
				Type: IntentUpdate, Target: postgresTarget(p.EntityID), CorrelationID: corr,
				Payload: &UpdateRegistration{
					EntityID: p.EntityID, Domain: p.Domain, ExpectedState: StateActive, CorrelationID: corr,
					Set:    ColCurrentState | ColLivenessTimeoutEmittedAt | ColLastAppliedEventID,
					Values: Projection{State: StateLivenessExpired, LivenessTimeoutEmittedAt: now, LastAppliedEventID: env.EnvelopeID},
					Guard:  livenessTimeoutGuard,
					Expected: Projection{LivenessDeadline: p.LivenessDeadline, LastHeartbeatAt: p.LastHeartbeatAt,
						NodeType: p.NodeType, Generation: p.Generation},
				},
			}},
		}
		if !r.cfg.DisableConsul {
			d.Intents = append(d.Intents, r.consulDeregister(p, corr))
		}
		return r.withSnapshot(p, d, now)
	}
	return reducer.Decision{Reason: "unknown timeout kind " + string(ev.Kind)}
}

func (r *Reducer) ackTimeoutEvents(p *Projection, env *bus.Envelope, corr uuid.UUID, now time.Time) []reducer.Event {
	h := r.header(p.EntityID, env, corr, now)
	return []reducer.Event{r.event(r.cfg.Topics.AckTimedOut, EventAckTimedOut, h, &AckTimedOut{EventHeader: h, DeadlineAt: p.AckDeadline.UTC()})}
}

func (r *Reducer) livenessEvents(p *Projection, env *bus.Envelope, corr uuid.UUID, now time.Time) []reducer.Event {
	h := r.header(p.EntityID, env, corr, now)
	var last *time.Time
	if !p.LastHeartbeatAt.IsZero() {
		t := p.LastHeartbeatAt.UTC()
		last = &t
	}
	return []reducer.Event{r.event(r.cfg.Topics.LivenessExpired, EventLivenessExpired, h, &LivenessExpired{EventHeader: h, LastHeartbeatAt: last})}
}

func (r *Reducer) consulDeregister(p *Projection, corr uuid.UUID) intent.Intent {
	return intent.Intent{
		Type: IntentConsulDereg, Target: consulTarget(p.NodeType, p.EntityID), CorrelationID: corr,
		Payload: &ConsulDeregister{NodeID: p.EntityID, NodeType: p.NodeType, Generation: p.Generation, CorrelationID: corr},
	}
}

// Evolve returns the projection after d's postgres intents are applied to p
// with the stores' guard semantics ([ApplyUpsert], [ApplyUpdate],
// [ApplyDelete]: nil, [StateNone], after a removal); p is not modified. The runtime uses it to decide a batch of messages against an
// in-memory overlay.
func (r *Reducer) Evolve(p *Projection, _ reducer.Input, d reducer.Decision) *Projection {
	for _, in := range d.Intents {
		switch pl := in.Payload.(type) {
		case *UpsertRegistration:
			p, _, _ = ApplyUpsert(p, pl)
		case *UpdateRegistration:
			p, _, _ = ApplyUpdate(p, pl)
		case *DeleteRegistration:
			p, _, _ = ApplyDelete(p, pl)
		}
	}
	return p
}
