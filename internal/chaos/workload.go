package chaos

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Epoch is the node clock's origin: every entity's first message is stamped
// within ten minutes after it, and its whole script within a few hours.
var Epoch = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// Clock is the fixed time the members' clock shows (registrar.WithClock),
// at which timeouts are decided: a day after [Epoch], so after every node
// timestamp of a workload but those of a registration after a timeout
// (stamped at most two minutes after Clock, inside the five minutes of
// skew the Runtime allows; only the far-future poison is further ahead).
var Clock = Epoch.Add(24 * time.Hour)

// The kinds of poison message: input that can never be processed and must
// be dead-lettered. Each is published keyed by a real entity, on its topic,
// among its other inputs.
const (
	// PoisonInvalidJSON is a value that is not JSON (a truncated envelope).
	PoisonInvalidJSON = "invalid_json"
	// PoisonUnknownEventType is a valid envelope of an event type nobody
	// handles.
	PoisonUnknownEventType = "unknown_event_type"
	// PoisonMissingNodeID is an introspection whose payload has no node_id.
	PoisonMissingNodeID = "missing_node_id"
	// PoisonZeroTimestamp is an introspection whose envelope_timestamp is
	// 0001-01-01T00:00:00Z (Go's zero time, which no sender means).
	PoisonZeroTimestamp = "zero_envelope_timestamp"
	// PoisonFarFuture is an introspection whose envelope_timestamp is
	// 9999-12-31T23:59:59Z, far ahead of the members' clock.
	PoisonFarFuture = "far_future_envelope_timestamp"
	// PoisonZeroHeartbeat is a heartbeat whose payload timestamp is
	// 0001-01-01T00:00:00Z.
	PoisonZeroHeartbeat = "zero_heartbeat_timestamp"
)

// PoisonKinds lists every kind of poison message.
var PoisonKinds = []string{
	PoisonInvalidJSON, PoisonUnknownEventType, PoisonMissingNodeID,
	PoisonZeroTimestamp, PoisonFarFuture, PoisonZeroHeartbeat,
}

// Identity identifies a message by what a dead letter keeps of it: the
// topic it was read from, its key and the SHA-256 of its value.
type Identity struct {
	Topic string
	Key   string
	Value [32]byte
}

// IdentityOf returns the identity of a message on topic with key and value.
func IdentityOf(topic string, key, value []byte) Identity {
	return Identity{Topic: topic, Key: string(key), Value: sha256.Sum256(value)}
}

func (id Identity) String() string {
	return fmt.Sprintf("topic %s key %s value sha256 %x", id.Topic, id.Key, id.Value[:6])
}

// Input is one message the generator publishes.
type Input struct {
	// Entity is the node the message is about; it is the message's key.
	Entity uuid.UUID
	// Kind is the reducer's input kind (registration.KindIntrospection,
	// ...), or "poison".
	Kind string
	// Poison is the poison kind, empty for a real input.
	Poison string
	// Time is the node's clock when it sent the message: strictly
	// increasing over an entity's script.
	Time time.Time
	// At is when the generator publishes it, from the start of the run.
	At time.Duration
	// Msg is the message; the generator publishes a clone.
	Msg *bus.Message
}

// Describe names the input for reports.
func (in *Input) Describe() string {
	if in.Poison != "" {
		return "poison " + in.Poison
	}
	return in.Kind + " at " + in.Time.Format(time.RFC3339Nano)
}

// WorkloadConfig configures [Generate].
type WorkloadConfig struct {
	// Entities is the number of nodes.
	Entities int
	// PoisonsPerKind is how many poison messages of each kind are mixed in.
	PoisonsPerKind int
	// PoisonKinds names the kinds mixed in; none means [PoisonKinds].
	PoisonKinds []string
	// Topic receives every input: all of an entity's messages on one topic,
	// keyed by its id, so that its partition's order is its order.
	Topic string
	// Window is the time over which the inputs are published.
	Window time.Duration
}

// Workload is every input of a run, as scripts of the entities.
type Workload struct {
	Topic    string
	Entities []uuid.UUID
	// Scripts holds each entity's inputs in publish order, poisons
	// included.
	Scripts map[uuid.UUID][]*Input
	// Poisons maps each poison message's identity to it.
	Poisons map[Identity]*Input
	// Inputs counts the real (non-poison) inputs.
	Inputs int
}

// Generate returns the workload of seed: cfg.Entities nodes, each with a
// scripted life (an introspection, then mostly an ack, heartbeats, metadata
// refreshes, timeout checks and re-registrations after a timeout), with
// cfg.PoisonsPerKind poison messages of each kind mixed into the scripts.
// The same seed and config give the same workload, byte for byte.
func Generate(seed uint64, cfg WorkloadConfig) *Workload {
	rng := rand.New(rand.NewPCG(seed, 0x6368616f73)) // "chaos"
	w := &Workload{Topic: cfg.Topic, Scripts: map[uuid.UUID][]*Input{}, Poisons: map[Identity]*Input{}}
	for range cfg.Entities {
		s := &scripter{rng: rng, topic: cfg.Topic, id: randomUUID(rng)}
		s.nodeType = registration.NodeTypes[rng.IntN(len(registration.NodeTypes))]
		s.now = Epoch.Add(time.Duration(rng.Int64N(int64(10*time.Minute/time.Microsecond))) * time.Microsecond)
		s.life()
		w.Entities = append(w.Entities, s.id)
		w.Scripts[s.id] = s.ins
		w.Inputs += len(s.ins)
	}
	kinds := cfg.PoisonKinds
	if len(kinds) == 0 {
		kinds = PoisonKinds
	}
	for _, kind := range kinds {
		for range cfg.PoisonsPerKind {
			id := w.Entities[rng.IntN(len(w.Entities))]
			script := w.Scripts[id]
			at := 1 + rng.IntN(len(script)) // after the entity's first input
			p := poison(rng, cfg.Topic, id, kind, script[at-1].Time.Add(time.Microsecond))
			w.Scripts[id] = slices.Insert(script, at, p)
			w.Poisons[IdentityOf(p.Msg.Topic, p.Msg.Key, p.Msg.Value)] = p
		}
	}
	for _, id := range w.Entities {
		script := w.Scripts[id]
		start := time.Duration(rng.Int64N(int64(cfg.Window/4) + 1))
		for i, in := range script {
			in.At = start + (cfg.Window-start)*time.Duration(i)/time.Duration(len(script))
		}
	}
	return w
}

// scripter writes one entity's script.
type scripter struct {
	rng      *rand.Rand
	topic    string
	id       uuid.UUID
	nodeType string
	now      time.Time // the node's clock: the last timestamp used
	corr     uuid.UUID // the current registration attempt's correlation id
	minor    int       // node_version 1.<minor>.0, bumped by a metadata refresh
	ins      []*Input

	ackDeadline, livenessDeadline time.Time // as the node expects them
}

func (s *scripter) chance(percent int) bool { return s.rng.IntN(100) < percent }

// tick advances the node's clock by a random duration in [lo, hi), whole
// microseconds (the precision every store keeps), and returns it.
func (s *scripter) tick(lo, hi time.Duration) time.Time {
	span := int64((hi - lo) / time.Microsecond)
	s.now = s.now.Add(lo + time.Duration(s.rng.Int64N(span))*time.Microsecond)
	return s.now
}

// until advances the node's clock to at least t plus [lo, hi).
func (s *scripter) until(t time.Time, lo, hi time.Duration) time.Time {
	if s.now.Before(t) {
		s.now = t
	}
	return s.tick(lo, hi)
}

// life writes the script: introspect, wait for the ack (or time out and
// maybe register again), heartbeat, refresh metadata, and maybe expire and
// register again.
func (s *scripter) life() {
	s.introspection()
	if s.chance(10) { // the node repeats itself while it waits: a no-op
		s.tick(time.Second, 5*time.Second)
		s.emitIntrospection()
	}
	switch r := s.rng.IntN(100); {
	case r < 72:
		s.ack(s.tick(time.Second, 20*time.Second))
	case r < 80: // late, but no check came first: still accepted
		s.ack(s.until(s.ackDeadline, time.Second, 20*time.Second))
	default:
		s.timeoutCheck(registration.TimeoutAck, s.ackDeadline, s.until(s.ackDeadline, time.Second, 20*time.Second))
		if s.chance(20) { // too late now
			s.ack(s.tick(time.Second, 5*time.Second))
		}
		if !s.chance(60) {
			return
		}
		s.registerAgain()
		return
	}
	for range s.rng.IntN(5) {
		if s.chance(15) {
			s.tick(time.Second, 10*time.Second)
			s.minor++
			s.emitIntrospection()
		}
		if s.chance(5) { // a duplicate ack: a no-op
			s.ack(s.tick(time.Second, 5*time.Second))
		}
		s.heartbeat(s.tick(5*time.Second, 40*time.Second))
		if s.chance(10) && s.now.Add(2*time.Second).Before(s.livenessDeadline) { // too early: a no-op
			s.timeoutCheck(registration.TimeoutLiveness, s.livenessDeadline, s.tick(time.Millisecond, time.Second))
		}
	}
	if s.chance(10) { // an ack check of an active node: a no-op
		s.timeoutCheck(registration.TimeoutAck, s.ackDeadline, s.tick(time.Second, 5*time.Second))
	}
	if !s.chance(35) {
		return
	}
	s.timeoutCheck(registration.TimeoutLiveness, s.livenessDeadline, s.until(s.livenessDeadline, time.Second, 30*time.Second))
	if s.chance(20) { // a heartbeat never revives a node: a no-op
		s.heartbeat(s.tick(time.Second, 5*time.Second))
	}
	if !s.chance(55) {
		return
	}
	s.registerAgain()
}

// registerAgain writes a registration after a timeout ended the last one.
// Timeouts are decided at the members' fixed [Clock], and an introspection
// not newer than the timeout belongs to the registration it ended, so the
// node's clock jumps past Clock first: the new registration is stamped
// within two minutes after it, inside the skew an engine allows.
func (s *scripter) registerAgain() {
	if s.now.Before(Clock) {
		s.now = Clock
	}
	s.tick(time.Second, 60*time.Second)
	s.introspection()
	s.ack(s.tick(time.Second, 20*time.Second))
	if s.chance(50) {
		s.heartbeat(s.tick(5*time.Second, 40*time.Second))
	}
}

// introspection starts a registration attempt.
func (s *scripter) introspection() {
	s.corr = randomUUID(s.rng)
	s.emitIntrospection()
	s.ackDeadline = s.now.Add(registration.DefaultAckTimeout)
}

func (s *scripter) introspectionPayload(withNodeID bool, ts time.Time) map[string]any {
	p := map[string]any{
		"node_type":    s.nodeType,
		"node_version": fmt.Sprintf("1.%d.0", s.minor),
		"declared_capabilities": map[string]any{
			"minor": s.minor, "features": []string{"read", fmt.Sprintf("feature-%d", s.minor)},
		},
		"endpoints": map[string]string{
			"health": fmt.Sprintf("http://10.0.%d.%d:8080/health", s.id[0], s.id[1]),
			"api":    fmt.Sprintf("http://10.0.%d.%d:9000/v%d", s.id[0], s.id[1], s.minor+1),
		},
		"correlation_id": s.corr,
		"timestamp":      ts.Format(time.RFC3339Nano),
	}
	if withNodeID {
		p["node_id"] = s.id
	}
	return p
}

func (s *scripter) emitIntrospection() {
	s.emit(registration.KindIntrospection, registration.EventTypeIntrospection, s.introspectionPayload(true, s.now))
}

func (s *scripter) ack(ts time.Time) {
	s.emit(registration.KindAck, registration.EventTypeAck, map[string]any{
		"command_id": randomUUID(s.rng), "node_id": s.id, "correlation_id": s.corr,
		"timestamp": ts.Format(time.RFC3339Nano),
	})
	s.livenessDeadline = ts.Add(registration.DefaultLivenessInterval)
}

func (s *scripter) heartbeatPayload(ts string) map[string]any {
	return map[string]any{
		"node_id": s.id, "node_type": s.nodeType, "node_version": fmt.Sprintf("1.%d.0", s.minor),
		"uptime_seconds": float64(s.now.Sub(Epoch)/time.Millisecond) / 1000, "active_operations_count": s.rng.IntN(8),
		"correlation_id": s.corr, "timestamp": ts,
	}
}

func (s *scripter) heartbeat(ts time.Time) {
	s.emit(registration.KindHeartbeat, registration.EventTypeHeartbeat, s.heartbeatPayload(ts.Format(time.RFC3339Nano)))
	if d := ts.Add(registration.DefaultLivenessWindow); d.After(s.livenessDeadline) {
		s.livenessDeadline = d
	}
}

// timeoutCheck publishes the check a sweeper would, as of at, onto the
// entity's topic (registrar.TimeoutCheckMessage keys it by the entity and
// sets its event_type).
func (s *scripter) timeoutCheck(kind registration.TimeoutKind, deadline, at time.Time) {
	m, err := registrar.TimeoutCheckMessage(s.topic, s.id, kind, deadline, at)
	if err != nil {
		panic(fmt.Sprintf("chaos: timeout check message: %v", err)) // a fixed, valid payload
	}
	s.ins = append(s.ins, &Input{Entity: s.id, Kind: registration.KindTimeoutCheck, Time: at, Msg: m})
}

// emit appends a node message stamped s.now.
func (s *scripter) emit(kind, eventType string, payload map[string]any) {
	raw, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("chaos: encode %s payload: %v", kind, err)) // maps of strings and numbers
	}
	env := &bus.Envelope{
		EnvelopeID: randomUUID(s.rng), EnvelopeTimestamp: s.now, CorrelationID: s.corr,
		EventType: eventType, SourceTool: "chaos-node", Payload: raw,
	}
	m, err := bus.EnvelopeMessage(s.topic, env, bus.WithKey([]byte(s.id.String())))
	if err != nil {
		panic(fmt.Sprintf("chaos: encode %s envelope: %v", kind, err)) // a complete envelope
	}
	s.ins = append(s.ins, &Input{Entity: s.id, Kind: kind, Time: s.now, Msg: m})
}

// poison returns a poison message of kind for entity id, stamped ts (but
// for the kinds that are about the timestamp).
func poison(rng *rand.Rand, topic string, id uuid.UUID, kind string, ts time.Time) *Input {
	s := &scripter{rng: rng, topic: topic, id: id, nodeType: registration.NodeTypes[0], now: ts, corr: randomUUID(rng)}
	envID := randomUUID(rng)
	stamp := ts.Format(time.RFC3339Nano)
	eventType := registration.EventTypeIntrospection
	var payload any = s.introspectionPayload(true, ts)
	var value []byte
	switch kind {
	case PoisonInvalidJSON:
		value = fmt.Appendf(nil, `{"envelope_id":%q,"envelope_timestamp":%q,"event_type":%q,"payload":{"node_id":%q`,
			envID, stamp, eventType, id)
	case PoisonUnknownEventType:
		eventType = "NodeTeleportedEvent"
		payload = map[string]any{"node_id": id, "timestamp": stamp}
	case PoisonMissingNodeID:
		payload = s.introspectionPayload(false, ts)
	case PoisonZeroTimestamp:
		stamp = "0001-01-01T00:00:00Z"
	case PoisonFarFuture:
		stamp = "9999-12-31T23:59:59Z"
	case PoisonZeroHeartbeat:
		eventType = registration.EventTypeHeartbeat
		payload = s.heartbeatPayload("0001-01-01T00:00:00Z")
	default:
		panic("chaos: unknown poison kind " + kind)
	}
	if value == nil {
		// Written by hand: bus.EncodeEnvelope refuses a zero timestamp.
		var err error
		value, err = json.Marshal(map[string]any{
			"envelope_id": envID, "envelope_timestamp": stamp, "correlation_id": s.corr,
			"event_type": eventType, "source_tool": "chaos-poison", "priority": bus.DefaultPriority,
			"payload": payload,
		})
		if err != nil {
			panic(fmt.Sprintf("chaos: encode poison %s: %v", kind, err))
		}
	}
	m := &bus.Message{Topic: topic, Key: []byte(id.String()), Value: value, Headers: bus.Headers{
		bus.HeaderContentType: bus.ContentTypeJSON, bus.HeaderMessageID: envID.String(), bus.HeaderEventType: eventType,
	}}
	return &Input{Entity: id, Kind: "poison", Poison: kind, Time: ts, Msg: m}
}

// randomUUID returns a version 4 UUID drawn from rng.
func randomUUID(rng *rand.Rand) uuid.UUID {
	var id uuid.UUID
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}
