package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Publish retries wait in real time, from publishRetryMin doubling to
// publishRetryMax: they wait for the bus.
const (
	publishRetryMin = 100 * time.Millisecond
	publishRetryMax = 5 * time.Second
)

// maxRetryShift caps the retry backoff at 2^3 = 8 ack timeouts.
const maxRetryShift = 3

// maxStamp is the latest time the node stamps a message with: a wrong
// clock elsewhere can drag its timestamps on, but not past what the
// orchestrator accepts (bus.MaxTime).
var maxStamp = bus.MaxTime.Add(-24 * time.Hour)

// protocol is one Run's state; only the Run goroutine touches it.
type protocol struct {
	n     *Node
	start time.Time // by the node's clock: uptime counts from it
	rng   *rand.Rand

	last        time.Time          // the latest timestamp sent or seen
	attempt     uuid.UUID          // correlation id of the registration in progress
	pending     map[uuid.UUID]bool // introspections whose answer counts
	acked       uuid.UUID          // the attempt the ack was sent for
	activatedAt time.Time          // emitted_at of the NodeBecameActive
	retries     int

	timer  Timer
	timerC <-chan time.Time

	requests []uuid.UUID // correlation ids of the latest registry requests

	// ackDeadline is the ack deadline of the registration the node acked
	// (its Accepted's), and superseded those of earlier attempts: an ack
	// timeout names the deadline it is about, which tells a redelivered
	// old one from the current one.
	ackDeadline time.Time
	superseded  []time.Time
}

// supersede retires the current ack deadline, remembering the last 8.
func (p *protocol) supersede() {
	if p.ackDeadline.IsZero() {
		return
	}
	if len(p.superseded) == 8 {
		p.superseded = p.superseded[1:]
	}
	p.superseded = append(p.superseded, p.ackDeadline)
	p.ackDeadline = time.Time{}
}

// seenRequest reports whether a registry request with this correlation id
// was answered already, and remembers it among the last 16.
func (p *protocol) seenRequest(id uuid.UUID) bool {
	if id == uuid.Nil {
		return false
	}
	if slices.Contains(p.requests, id) {
		return true
	}
	if len(p.requests) == 16 {
		p.requests = p.requests[1:]
	}
	p.requests = append(p.requests, id)
	return false
}

func (p *protocol) run(ctx context.Context, failed <-chan struct{}) error {
	if err := p.introspect(ctx, true); err != nil {
		return err
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-failed:
			return nil // Run reports the reader's error
		case <-p.timerC:
			p.timer, p.timerC = nil, nil
			err = p.onTimer(ctx)
		case <-p.n.ctl:
			err = p.onControl(ctx)
		case <-p.n.inbox.wake:
			for _, v := range p.n.inbox.take() {
				if err = p.onEvent(ctx, v); err != nil {
					break
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, bus.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

func (p *protocol) state() State { return p.n.State() }

func (p *protocol) paused() bool { return p.n.Paused() }

// stamp returns the timestamp of the next message: the clock's time, in
// UTC at microsecond precision (what the envelope keeps), but later than
// every timestamp sent or seen before.
func (p *protocol) stamp() time.Time {
	t := p.n.cfg.clock.Now().UTC().Truncate(time.Microsecond)
	if !t.After(p.last) {
		t = p.last.Add(time.Microsecond)
	}
	p.last = t
	return t
}

// saw moves the timestamps past an event's emitted_at: the node's next
// message must be later than the orchestrator's decision, or it is stale
// (an introspection must be later than the timeout that ended the last
// registration), whatever the node's clock says.
func (p *protocol) saw(t time.Time) {
	t = t.UTC().Truncate(time.Microsecond)
	if t.After(maxStamp) {
		t = maxStamp
	}
	if t.After(p.last) {
		p.last = t
	}
}

func (p *protocol) arm(d time.Duration) {
	p.stopTimer()
	p.timer = p.n.cfg.clock.NewTimer(d)
	p.timerC = p.timer.C()
}

func (p *protocol) stopTimer() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer, p.timerC = nil, nil
	}
}

// jittered returns d varied uniformly by ±jitter.
func (p *protocol) jittered(d time.Duration) time.Duration {
	j := p.n.cfg.jitter
	if j == 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*p.rng.Float64()-1)))
}

// armRetry arms the wait for an answer: the ack timeout, doubled per retry
// up to 2^maxRetryShift times.
func (p *protocol) armRetry() {
	p.arm(p.jittered(p.n.cfg.ackTimeout << min(p.retries, maxRetryShift)))
}

func (p *protocol) armHeartbeat() { p.arm(p.jittered(p.n.cfg.interval)) }

// introspect publishes an introspection. A new registration (fresh) makes
// it the only introspection whose answer counts and waits for that answer;
// otherwise (an active node asked by the registry) its answer counts too,
// and the node stays as it is.
func (p *protocol) introspect(ctx context.Context, fresh bool) error {
	corr := uuid.New()
	ts := p.stamp()
	payload, err := json.Marshal(p.n.introspection(corr, ts))
	if err != nil {
		return fmt.Errorf("registrar/node: encode introspection: %w", err)
	}
	if fresh || p.pending == nil {
		p.pending = map[uuid.UUID]bool{}
	}
	p.pending[corr] = true
	if fresh {
		p.stopTimer()
		p.supersede()
		p.attempt = corr
		p.setState(StateRegistering)
	}
	if err := p.publish(ctx, p.n.cfg.topics.Introspection, registration.EventTypeIntrospection, corr, ts, payload); err != nil {
		return err
	}
	p.n.stats.introspections.Add(1)
	if fresh {
		// Armed once the message is out: a node with a timer armed is
		// idle (see Run).
		p.armRetry()
	}
	return nil
}

func (p *protocol) setState(s State) {
	if s != StateActive {
		p.activatedAt = time.Time{}
	}
	p.n.setState(s)
}

// publish publishes one message, retrying in real time until it succeeds,
// ctx ends or the bus is closed.
func (p *protocol) publish(ctx context.Context, topic, eventType string, corr uuid.UUID, ts time.Time, payload []byte) error {
	delay := publishRetryMin
	for {
		msg, err := p.n.tracedMessage(ctx, topic, eventType, corr, ts, payload)
		if err != nil {
			return fmt.Errorf("registrar/node: %w", err)
		}
		err = p.n.b.Publish(ctx, msg)
		if err == nil {
			return nil
		}
		if errors.Is(err, bus.ErrClosed) || ctx.Err() != nil {
			return err
		}
		p.n.cfg.log.Warn("registrar/node: publish failed; retrying", "node_id", p.n.info.ID, "topic", topic,
			"event_type", eventType, "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, publishRetryMax)
	}
}

func (p *protocol) heartbeat(ctx context.Context) error {
	ts := p.stamp()
	ops := 0
	if f := p.n.cfg.activeOps; f != nil {
		ops = max(f(), 0)
	}
	up := max(p.n.cfg.clock.Now().Sub(p.start).Seconds(), 0)
	hb := registration.Heartbeat{
		NodeID: p.n.info.ID, NodeType: p.n.info.Type, NodeVersion: p.n.version,
		UptimeSeconds: up, ActiveOperationsCount: ops, CorrelationID: p.attempt, Timestamp: ts,
	}
	// MarshalJSON's output is what json.Marshal would write, without
	// json.Marshal's second pass over it.
	payload, err := hb.MarshalJSON()
	if err != nil {
		return fmt.Errorf("registrar/node: encode heartbeat: %w", err)
	}
	msg, err := p.n.tracedMessage(ctx, p.n.cfg.topics.Heartbeat, registration.EventTypeHeartbeat, p.attempt, ts, payload)
	if err != nil {
		return fmt.Errorf("registrar/node: %w", err)
	}
	if err := p.n.b.Publish(ctx, msg); err != nil {
		if errors.Is(err, bus.ErrClosed) || ctx.Err() != nil {
			return err
		}
		// One try: the next heartbeat comes soon, and the liveness window
		// spans several.
		p.n.stats.heartbeatFailures.Add(1)
		p.n.cfg.log.Warn("registrar/node: heartbeat failed", "node_id", p.n.info.ID, "err", err)
		p.arm(p.n.cfg.interval / 4)
		return nil
	}
	p.n.stats.heartbeats.Add(1)
	p.armHeartbeat()
	return nil
}

func (p *protocol) onTimer(ctx context.Context) error {
	switch p.state() {
	case StateRegistering, StateAwaitingAck:
		p.retries++
		p.n.cfg.log.Debug("registrar/node: no answer; introspecting again", "node_id", p.n.info.ID, "retry", p.retries)
		return p.introspect(ctx, true)
	case StateActive:
		if !p.paused() {
			return p.heartbeat(ctx)
		}
	}
	return nil
}

func (p *protocol) onControl(ctx context.Context) error {
	switch paused, s := p.paused(), p.state(); {
	case paused && s == StateActive:
		p.stopTimer()
	case !paused && s == StateActive:
		// The registration may have ended while the node was silent, and
		// its NodeLivenessExpired been missed: introspect again, which the
		// orchestrator answers with NodeBecameActive while the
		// registration lives and with NodeRegistrationAccepted once it
		// ended.
		if p.timer == nil {
			if err := p.heartbeat(ctx); err != nil {
				return err
			}
		}
		return p.introspect(ctx, false)
	case !paused && s == StateExpired:
		return p.introspect(ctx, true)
	}
	return nil
}

func (p *protocol) ignore(what string, args ...any) {
	p.n.cfg.log.Debug("registrar/node: ignored "+what, append([]any{"node_id", p.n.info.ID, "state", p.state().String()}, args...)...)
}

func (p *protocol) onEvent(ctx context.Context, v any) error {
	switch ev := v.(type) {
	case resync:
		// A read restarted from the newest offset: an event addressed to
		// the node may be lost. An active node asks again (as on Resume);
		// one registering has its retry timer.
		if p.state() == StateActive && !p.paused() {
			return p.introspect(ctx, false)
		}
	case *registration.Accepted:
		p.saw(ev.EmittedAt)
		if !p.pending[ev.CorrelationID] || ev.CorrelationID == p.acked {
			p.ignore("NodeRegistrationAccepted", "correlation_id", ev.CorrelationID)
			return nil
		}
		// This registration is now the one: acknowledge it, in order after
		// the introspection it answers.
		p.attempt, p.acked = ev.CorrelationID, ev.CorrelationID
		p.pending = map[uuid.UUID]bool{ev.CorrelationID: true}
		p.supersede()
		p.ackDeadline = ev.AckDeadline
		p.setState(StateAwaitingAck)
		p.stopTimer()
		ts := p.stamp()
		payload, err := json.Marshal(&registration.Ack{CommandID: uuid.New(), NodeID: p.n.info.ID, CorrelationID: ev.CorrelationID, Timestamp: ts})
		if err != nil {
			return fmt.Errorf("registrar/node: encode ack: %w", err)
		}
		if err := p.publish(ctx, p.n.cfg.topics.Ack, registration.EventTypeAck, ev.CorrelationID, ts, payload); err != nil {
			return err
		}
		p.n.stats.acks.Add(1)
		// The orchestrator answers a lost ack with an ack timeout once its
		// deadline passed; wait for that, and a little more.
		p.arm(p.jittered(2 * p.n.cfg.ackTimeout << min(p.retries, maxRetryShift)))
	case *registration.BecameActive:
		p.saw(ev.EmittedAt)
		if !p.pending[ev.CorrelationID] {
			p.ignore("NodeBecameActive", "correlation_id", ev.CorrelationID)
			return nil
		}
		if p.state() == StateActive {
			return nil // the answer to a refresh
		}
		p.retries = 0
		p.setState(StateActive)
		p.activatedAt = ev.EmittedAt
		p.n.stats.activations.Add(1)
		if p.paused() {
			p.stopTimer()
		} else {
			p.armHeartbeat()
		}
	case *registration.AckTimedOut:
		p.saw(ev.EmittedAt)
		if s := p.state(); s != StateRegistering && s != StateAwaitingAck ||
			slices.ContainsFunc(p.superseded, ev.DeadlineAt.Equal) ||
			s == StateAwaitingAck && !ev.DeadlineAt.Equal(p.ackDeadline) {
			// Not about the registration in progress: an earlier
			// attempt's, delivered again.
			p.ignore("NodeRegistrationAckTimedOut", "deadline_at", ev.DeadlineAt)
			return nil
		}
		p.n.stats.ackTimeouts.Add(1)
		return p.introspect(ctx, true)
	case *registration.LivenessExpired:
		p.saw(ev.EmittedAt)
		if p.state() != StateActive || ev.EmittedAt.Before(p.activatedAt) {
			// Not this registration's: it ended before the node became
			// active again.
			p.ignore("NodeLivenessExpired", "emitted_at", ev.EmittedAt)
			return nil
		}
		p.n.stats.expirations.Add(1)
		if p.paused() {
			p.stopTimer()
			// No answer of the ended registration counts any more: a
			// redelivered NodeBecameActive must not revive it.
			p.pending = nil
			p.setState(StateExpired)
			return nil
		}
		return p.introspect(ctx, true)
	case *registration.RegistryRequest:
		if p.seenRequest(ev.CorrelationID) {
			return nil // another copy: a group reads every partition's
		}
		p.n.stats.registryRequest.Add(1)
		if p.paused() {
			p.ignore("registry request: paused")
			return nil
		}
		switch p.state() {
		case StateActive, StateRegistering, StateAwaitingAck:
			// Without starting over: the answers pending (the
			// NodeBecameActive an ack sent earns) still count, and the
			// orchestrator answers whichever introspection it can.
			return p.introspect(ctx, false)
		}
	}
	return nil
}

// announceShutdown publishes the node's shutdown announcement
// (ModelNodeShutdownEvent, reason graceful) when a Run that introspected
// ends because its context did: once, within the shutdown timeout of real
// time, retrying a failed publish until then. parent is the Run's context,
// already ended; the publish runs on a context that keeps its values
// without its end.
func (p *protocol) announceShutdown(parent context.Context) {
	cfg := &p.n.cfg
	if cfg.shutdownTimeout <= 0 || p.attempt == uuid.Nil {
		return // turned off, or never introspected: nothing to remove
	}
	p.n.setState(StateShuttingDown)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.shutdownTimeout)
	defer cancel()
	ts := p.stamp()
	payload, err := json.Marshal(&registration.Shutdown{
		NodeID: p.n.info.ID, NodeName: cfg.sourceTool, Reason: registration.ShutdownGraceful, FinalStatus: "stopping",
		EventID: uuid.New(), CorrelationID: p.attempt, Timestamp: ts,
	})
	if err == nil {
		err = p.publish(ctx, cfg.topics.Shutdown, registration.EventTypeShutdown, p.attempt, ts, payload)
	}
	if err != nil {
		p.n.stats.shutdownFailures.Add(1)
		cfg.log.Warn("registrar/node: shutdown announcement failed; the registration expires instead", "node_id", p.n.info.ID, "err", err)
		return
	}
	p.n.stats.shutdowns.Add(1)
}
