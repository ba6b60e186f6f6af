package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// ErrRunning is returned by [Node.Run] while another Run of the same Node is
// in progress.
var ErrRunning = errors.New("registrar/node: already running")

// State is what a node knows about its registration.
type State int

// The states of a [Node].
const (
	// StateStopped: Run is not in progress.
	StateStopped State = iota
	// StateRegistering: the introspection is sent; the node waits for the
	// orchestrator's NodeRegistrationAccepted (or, when a registration of
	// this node is already active, its NodeBecameActive).
	StateRegistering
	// StateAwaitingAck: the orchestrator accepted the registration and the
	// node sent its ack; it waits for NodeBecameActive.
	StateAwaitingAck
	// StateActive: the node is registered and heartbeats.
	StateActive
	// StateExpired: the registration ended (liveness expired) while the
	// node was paused; it registers again on [Node.Resume].
	StateExpired
	// StateShuttingDown: Run's context ended and the node announces its
	// shutdown (see [WithShutdownTimeout]); Run returns once it is
	// published or the timeout passed, in StateStopped.
	StateShuttingDown
)

// String returns the state's name: stopped, registering, awaiting_ack,
// active, expired or shutting_down.
func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateRegistering:
		return "registering"
	case StateAwaitingAck:
		return "awaiting_ack"
	case StateActive:
		return "active"
	case StateExpired:
		return "expired"
	case StateShuttingDown:
		return "shutting_down"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Info describes the node, as its introspection announces it.
type Info struct {
	// ID identifies the node; it is the registration's entity id and the
	// key of every message the node sends. Required.
	ID uuid.UUID
	// Type is one of registration.NodeTypes ("effect", "compute", ...).
	Type string
	// Version is the node's version, sent whole (prerelease and build
	// metadata included); the zero Version is sent as 1.0.0.
	Version bus.Version
	// Capabilities is the declared_capabilities JSON object; nil sends {}.
	Capabilities json.RawMessage
	// Endpoints maps names ("health", "api") to URLs with a scheme and a
	// host.
	Endpoints map[string]string
}

// Stats counts what a node did. MessagesRead against Events tells how much
// of the topics' traffic the node read to find its own events.
type Stats struct {
	// Introspections, Acks and Heartbeats count the messages the node
	// published; HeartbeatFailures the heartbeats that could not be.
	Introspections    int64 `json:"introspections"`
	Acks              int64 `json:"acks"`
	Heartbeats        int64 `json:"heartbeats"`
	HeartbeatFailures int64 `json:"heartbeat_failures"`
	// Activations counts the times the node became active; AckTimeouts and
	// Expirations the registrations that ended without an ack and by
	// liveness.
	Activations int64 `json:"activations"`
	AckTimeouts int64 `json:"ack_timeouts"`
	Expirations int64 `json:"expirations"`
	// RegistryRequests counts the registry requests addressed to the node.
	RegistryRequests int64 `json:"registry_requests"`
	// Shutdowns counts the shutdown announcements published when a Run
	// ended; ShutdownFailures those that could not be within the shutdown
	// timeout (the registration then expires by liveness).
	Shutdowns        int64 `json:"shutdowns"`
	ShutdownFailures int64 `json:"shutdown_failures"`
	// MessagesRead counts every message the node's readers were handed,
	// other nodes' included; Events those addressed to this node.
	MessagesRead int64 `json:"messages_read"`
	Events       int64 `json:"events"`
}

type counters struct {
	introspections, acks, heartbeats, heartbeatFailures    atomic.Int64
	activations, ackTimeouts, expirations, registryRequest atomic.Int64
	read, events                                           atomic.Int64
	shutdowns, shutdownFailures                            atomic.Int64
}

// Node is the node side of the registration workflow: a Go service that
// registers itself, stays alive and registers again. Create it with [New]
// and call [Node.Run]; its other methods are safe for concurrent use.
type Node struct {
	b    bus.EventBus
	info Info
	key  []byte // the node id as text: every message's key
	cfg  config
	// version is info.Version.String(), which every heartbeat carries.
	version string

	running atomic.Bool
	stats   counters

	mu       sync.Mutex
	state    State
	activeCh chan struct{} // closed while the state is active
	paused   bool
	ctl      chan struct{} // cap 1: Pause or Resume was called

	inbox inbox

	// last is the latest timestamp the previous Run sent or saw: the next
	// Run stamps after it. Only the Run goroutine touches it (Runs never
	// overlap).
	last time.Time
}

// New returns a node that announces info on b. It validates info as the
// orchestrator's reducer does (the introspection it would send must decode:
// a known type, a valid version, endpoints that are URLs, an object of
// capabilities), and checks that the introspection fits the bus's message
// size limit when the bus has one. It starts nothing; see [Node.Run].
func New(b bus.EventBus, info Info, opts ...Option) (*Node, error) {
	if b == nil {
		return nil, errors.New("registrar/node: nil bus")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if info.ID == uuid.Nil {
		return nil, errors.New("registrar/node: invalid info: ID is the nil UUID")
	}
	info = info.clone() // validated below: the caller's maps must not change it
	if info.Version.IsZero() {
		info.Version = bus.DefaultVersion
	}
	if err := info.Version.Validate(); err != nil {
		return nil, fmt.Errorf("registrar/node: invalid info: Version: %w", err)
	}
	n := &Node{b: b, info: info, key: []byte(info.ID.String()), cfg: cfg, version: info.Version.String(), ctl: make(chan struct{}, 1)}
	n.inbox.wake = make(chan struct{}, 1)
	// The introspection, as it will be sent, must decode as the reducer
	// decodes it.
	in := n.introspection(uuid.New(), time.Now().UTC())
	payload, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("registrar/node: invalid info: %w", err)
	}
	if _, err := registration.DecodeIntrospection(payload); err != nil {
		return nil, fmt.Errorf("registrar/node: invalid info: %w", err)
	}
	if sl, ok := b.(bus.SizeLimited); ok && sl.MaxMessageBytes() > 0 {
		msg, err := n.envelopeMessage(cfg.topics.Introspection, registration.EventTypeIntrospection, in.CorrelationID, in.Timestamp, payload)
		if err != nil {
			return nil, fmt.Errorf("registrar/node: %w", err)
		}
		if err := bus.CheckSize(msg, sl.MaxMessageBytes()); err != nil {
			return nil, fmt.Errorf("registrar/node: invalid info: the introspection is too large for the bus: %w", err)
		}
	}
	return n, nil
}

// Info returns a copy of the node's info, with the defaults New applied.
func (n *Node) Info() Info { return n.info.clone() }

// clone returns a copy of i that shares no map or slice with it.
func (i Info) clone() Info {
	if i.Capabilities != nil {
		i.Capabilities = append(json.RawMessage(nil), i.Capabilities...)
	}
	if i.Endpoints != nil {
		e := make(map[string]string, len(i.Endpoints))
		for k, v := range i.Endpoints {
			e[k] = v
		}
		i.Endpoints = e
	}
	return i
}

// State returns what the node knows about its registration.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	c := &n.stats
	return Stats{
		Introspections: c.introspections.Load(), Acks: c.acks.Load(), Heartbeats: c.heartbeats.Load(),
		HeartbeatFailures: c.heartbeatFailures.Load(), Activations: c.activations.Load(),
		AckTimeouts: c.ackTimeouts.Load(), Expirations: c.expirations.Load(),
		RegistryRequests: c.registryRequest.Load(), MessagesRead: c.read.Load(), Events: c.events.Load(),
		Shutdowns: c.shutdowns.Load(), ShutdownFailures: c.shutdownFailures.Load(),
	}
}

// WaitActive blocks until the node is active, or ctx ends (its error is
// returned).
func (n *Node) WaitActive(ctx context.Context) error {
	for {
		n.mu.Lock()
		if n.state == StateActive {
			n.mu.Unlock()
			return nil
		}
		ch := n.activeCh
		if ch == nil {
			ch = make(chan struct{})
			n.activeCh = ch
		}
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Pause stops the node's heartbeats, for example while the service drains
// or its dependencies are down: the orchestrator lets the registration
// expire after its liveness window. A paused node keeps reading its events
// and finishes a registration in progress, but answers no registry request.
// Pausing a paused node does nothing.
func (n *Node) Pause() { n.setPaused(true) }

// Resume undoes [Node.Pause]: an active node heartbeats at once (unless
// its heartbeat timer still runs) and introspects again, which the
// orchestrator answers with NodeBecameActive while the registration lives
// and with a new registration if it ended unseen; one whose registration
// expired meanwhile registers again.
func (n *Node) Resume() { n.setPaused(false) }

// Paused reports whether the node is paused.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

func (n *Node) setPaused(p bool) {
	n.mu.Lock()
	changed := n.paused != p
	n.paused = p
	n.mu.Unlock()
	if changed {
		select {
		case n.ctl <- struct{}{}:
		default:
		}
	}
}

func (n *Node) setState(to State) {
	n.mu.Lock()
	from := n.state
	n.state = to
	if to == StateActive && n.activeCh != nil {
		close(n.activeCh)
		n.activeCh = nil
	}
	n.mu.Unlock()
	if from == to {
		return
	}
	n.cfg.log.Info("registrar/node: "+to.String(), "node_id", n.info.ID, "from", from.String())
	if n.cfg.onState != nil {
		n.cfg.onState(from, to)
	}
}

// Run runs the registration protocol until ctx ends, then announces the
// node's shutdown and returns nil; it returns [bus.ErrClosed] when the bus
// is closed, and [ErrRunning] if the node is already running.
//
// The announcement (ModelNodeShutdownEvent, reason graceful, keyed by the
// node id, on the contract's shutdown topic) asks the orchestrator to
// remove the registration at once instead of letting it expire. Run sends
// it only if it introspected, and only when ctx ended (not when the bus
// closed); it waits for it at most the shutdown timeout, of real time
// ([DefaultShutdownTimeout]; see [WithShutdownTimeout] and
// [WithoutShutdownAnnouncement]), in [StateShuttingDown]. Stats.Shutdowns
// and Stats.ShutdownFailures count the outcomes.
//
// It first starts reading the events addressed to the node (see the package
// documentation for how little of the topics that is; while the bus cannot
// tell the topics' partitions, Run tries again, doubling its pause up to 5
// s of real time), and only once the reads are positioned publishes the
// introspection, keyed by the node id. A failed publish of an
// introspection or an ack is retried the same way; a failed heartbeat is
// counted, and the next is sent a quarter of an interval later.
// On the orchestrator's NodeRegistrationAccepted for that introspection it
// sends the ack; on NodeBecameActive it is active and heartbeats at the
// interval, with jitter and its uptime. On NodeRegistrationAckTimedOut, on
// NodeLivenessExpired, and on a registry request that targets it, it
// introspects again. Without an answer it introspects again after the
// contract's ack timeout, then after twice that, up to eight times; after
// its ack it waits twice as long.
//
// Every message is stamped later than the last one the node sent and than
// every event it received, so the orchestrator, which orders a node's
// messages by their timestamps, never finds one stale because of a clock
// that stood still for a moment or ran behind (see the package
// documentation for what a clock must still do).
//
// While it waits, a running node has exactly one timer armed on its clock
// (the next heartbeat, or the next retry), unless it is paused while
// active or expired (it then waits for nothing): simulations on a [ManualClock] use this to tell that every node
// is idle.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer n.running.Store(false)
	if err := ctx.Err(); err != nil {
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.inbox.reset()
	rd, err := n.startReadersRetrying(ctx)
	if err != nil {
		if parent.Err() != nil && !errors.Is(err, bus.ErrClosed) {
			return nil
		}
		return err
	}
	p := &protocol{n: n, start: n.cfg.clock.Now(), rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), last: n.last} //nolint:gosec // jitter, not a secret
	err = p.run(ctx, rd.failed)
	rd.stop()
	p.stopTimer()
	if parent.Err() != nil && !errors.Is(err, bus.ErrClosed) {
		p.announceShutdown(parent)
	}
	n.last = p.last
	n.setState(StateStopped)
	if err == nil {
		err = rd.err()
	}
	if parent.Err() != nil && !errors.Is(err, bus.ErrClosed) {
		err = nil
	}
	return err
}

// startReadersRetrying starts the reads, and when that fails (the bus
// cannot tell the partitions of a topic: a broker down, a topic not yet
// created) tries again after a pause, in real time, until ctx ends or the
// bus is closed.
func (n *Node) startReadersRetrying(ctx context.Context) (*readers, error) {
	delay := publishRetryMin
	for {
		rd, err := n.startReaders(ctx)
		if err == nil {
			return rd, nil
		}
		if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
			return nil, err
		}
		n.cfg.log.Warn("registrar/node: cannot start reading its events; trying again", "node_id", n.info.ID, "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, publishRetryMax)
	}
}

// inbox queues the events the readers decoded for the protocol goroutine.
// It is unbounded: a node's own events are few, and a reader must never
// wait for the protocol (on Kafka, readers of one partition share one
// consumer).
type inbox struct {
	mu   sync.Mutex
	q    []any
	wake chan struct{} // cap 1
}

func (b *inbox) push(v any) {
	b.mu.Lock()
	b.q = append(b.q, v)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *inbox) take() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.q
	b.q = nil
	return q
}

func (b *inbox) reset() { b.take() }

// introspection returns the node's introspection with this correlation id
// and timestamp.
func (n *Node) introspection(corr uuid.UUID, ts time.Time) *registration.Introspection {
	return &registration.Introspection{
		NodeID: n.info.ID, NodeType: n.info.Type, NodeVersion: n.info.Version,
		Capabilities: n.info.Capabilities, Endpoints: n.info.Endpoints,
		CorrelationID: corr, Timestamp: ts,
	}
}

func (n *Node) envelopeMessage(topic, eventType string, corr uuid.UUID, ts time.Time, payload []byte) (*bus.Message, error) {
	return n.tracedMessage(context.Background(), topic, eventType, corr, ts, payload)
}

// tracedMessage is envelopeMessage carrying the trace context of ctx when
// the node has a propagator (WithPropagator).
func (n *Node) tracedMessage(ctx context.Context, topic, eventType string, corr uuid.UUID, ts time.Time, payload []byte) (*bus.Message, error) {
	env := &bus.Envelope{
		EnvelopeID: uuid.New(), EnvelopeTimestamp: ts, CorrelationID: corr,
		EventType: eventType, SourceTool: n.cfg.sourceTool, Payload: payload,
	}
	opts := []bus.PublishOption{bus.WithKey(n.key)}
	if p := n.cfg.propagator; p != nil {
		h := bus.Headers{}
		p.Inject(ctx, h, env)
		opts = append(opts, bus.WithHeaders(h))
	}
	return bus.EnvelopeMessage(topic, env, opts...)
}
