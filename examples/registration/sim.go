package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// simEpoch is where simulated time starts.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// heartbeatEvery is the simulated nodes' heartbeat interval (ONEX nodes
// heartbeat about every 30 s).
const heartbeatEvery = 30 * time.Second

type simNode struct {
	id       uuid.UUID
	typ      string
	expires  bool
	started  time.Time
	endpoint string
}

// summary is the -json output.
type summary struct {
	Nodes           int            `json:"nodes"`
	States          map[string]int `json:"states"`
	EventsPublished int64          `json:"events_published"`
	IntentsExecuted int64          `json:"intents_executed"`
	DeadLettered    int64          `json:"dead_lettered"`
	ElapsedMS       int64          `json:"elapsed_ms"`
}

type simulation struct {
	o      options
	w      *world
	clock  *simClock
	rng    *rand.Rand
	nodes  []simNode
	topics registration.Topics
	stderr io.Writer
	tty    bool
	phase  atomic.Value // string
	// sent counts the messages the runtime must handle: inputs the
	// simulation published, and timeout checks the sweeper published.
	sent int64
}

func runSimulation(ctx context.Context, o options, stdout, stderr io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s, err := newSimulation(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.w.close()
	if err := s.execute(ctx); err != nil {
		return err
	}
	return s.report(ctx, stdout, time.Since(start))
}

// execute runs the runtime and the simulation, and stops the runtime.
func (s *simulation) execute(ctx context.Context) error {
	stopRuntime := s.w.start(ctx)
	runErr := s.run(ctx)
	if err := stopRuntime(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func newSimulation(ctx context.Context, o options, stderr io.Writer) (*simulation, error) {
	clock := newSimClock(simEpoch)
	var logOut io.Writer
	if o.verbose {
		logOut = stderr
	}
	w, err := newWorld(ctx, o.worldConfig(clock.Now, logOut))
	if err != nil {
		return nil, err
	}
	s := &simulation{
		o: o, w: w, clock: clock, stderr: stderr,
		rng:    rand.New(rand.NewPCG(uint64(o.seed), 0x5eed)),
		topics: registrarTopics(w),
	}
	if f, ok := stderr.(*os.File); ok && !o.jsonOut {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.tty = true
		}
	}
	nExpire := int(math.Round(o.expire * float64(o.nodes)))
	types := registration.NodeTypes[:4]
	for i := range o.nodes {
		id := s.newID()
		s.nodes = append(s.nodes, simNode{
			id: id, typ: types[i%len(types)], expires: i < nExpire,
			endpoint: fmt.Sprintf("http://10.0.%d.%d:8080/health", i/250, i%250+1),
		})
	}
	return s, nil
}

// registrarTopics returns the topics the runtime's reducer uses.
func registrarTopics(w *world) registration.Topics {
	r, err := registration.New(registrar.ReducerConfig(w.contract))
	if err != nil {
		return registration.DefaultTopics()
	}
	return r.Config().Topics
}

func (s *simulation) run(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	s.phase.Store("start")
	if !s.o.jsonOut {
		go s.progress(ctx, done)
	}
	n := len(s.nodes)
	nExpire := 0
	for _, nd := range s.nodes {
		if nd.expires {
			nExpire++
		}
	}

	s.phase.Store("introspection")
	if err := s.publishMalformed(ctx); err != nil {
		return err
	}
	for i := range s.nodes {
		if err := s.introspect(ctx, &s.nodes[i]); err != nil {
			return err
		}
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	if err := s.expect(ctx, map[registration.State]int{registration.StateAwaitingAck: n}); err != nil {
		return err
	}

	s.phase.Store("ack")
	s.clock.Advance(time.Second)
	for i := range s.nodes {
		if err := s.ack(ctx, &s.nodes[i]); err != nil {
			return err
		}
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	if err := s.expect(ctx, map[registration.State]int{registration.StateActive: n}); err != nil {
		return err
	}

	// Heartbeat rounds: the expiring nodes heartbeat once and fall silent;
	// the others keep going until the silent ones' liveness window passed.
	// After each round the sweeper runs, as of the simulated time.
	window := registration.DefaultLivenessWindow
	rounds := 2 + int((window+heartbeatEvery-1)/heartbeatEvery)
	for round := 1; round <= rounds; round++ {
		s.phase.Store(fmt.Sprintf("heartbeat round %d/%d", round, rounds))
		s.clock.Advance(heartbeatEvery)
		for i := range s.nodes {
			nd := &s.nodes[i]
			if nd.expires && round > 1 {
				continue
			}
			if err := s.heartbeat(ctx, nd); err != nil {
				return err
			}
		}
		if err := s.settle(ctx); err != nil {
			return err
		}
	}
	s.phase.Store("done")
	return s.expect(ctx, map[registration.State]int{registration.StateActive: n - nExpire, registration.StateLivenessExpired: nExpire})
}

// settle waits until the runtime handled every message sent so far, sweeps
// as of the simulated time, and repeats until a sweep finds nothing.
func (s *simulation) settle(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		for {
			st := s.w.rt.Stats()
			if st.Handled+st.DeadLettered >= s.sent {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for the runtime to handle %d messages (%d so far): %w", s.sent, st.Handled+st.DeadLettered, ctx.Err())
			case <-t.C:
			}
		}
		n, err := s.w.sweeper.Sweep(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		s.sent += int64(n)
	}
}

// expect checks the counts by state once everything settled.
func (s *simulation) expect(ctx context.Context, want map[registration.State]int) error {
	got, err := s.w.store.CountByState(ctx)
	if err != nil {
		return err
	}
	for state, n := range want {
		if got[state] != n {
			return fmt.Errorf("after %s: %d nodes %s, want %d (all states: %v)", s.phase.Load(), got[state], state, n, got)
		}
	}
	return nil
}

func (s *simulation) newID() uuid.UUID {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b)
}

func (s *simulation) publish(ctx context.Context, topic string, key uuid.UUID, payload any) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	env := &bus.Envelope{EnvelopeID: s.newID(), EnvelopeTimestamp: now, CorrelationID: s.newID(), SourceTool: "simulated-node", Payload: raw}
	if err := s.w.bus.PublishEnvelope(ctx, topic, env, bus.WithKey([]byte(key.String()))); err != nil {
		return err
	}
	s.sent++
	return nil
}

func (s *simulation) introspect(ctx context.Context, nd *simNode) error {
	nd.started = s.clock.Now()
	return s.publish(ctx, s.topics.Introspection, nd.id, &registration.Introspection{
		NodeID: nd.id, NodeType: nd.typ, NodeVersion: bus.Version{Major: 1, Minor: 4, Patch: 2},
		Capabilities:  json.RawMessage(`{"postgres":false,"read":true,"write":true}`),
		Endpoints:     map[string]string{"health": nd.endpoint},
		CorrelationID: s.newID(), Timestamp: s.clock.Now(),
	})
}

func (s *simulation) ack(ctx context.Context, nd *simNode) error {
	return s.publish(ctx, s.topics.Ack, nd.id, &registration.Ack{
		CommandID: s.newID(), NodeID: nd.id, CorrelationID: s.newID(), Timestamp: s.clock.Now(),
	})
}

func (s *simulation) heartbeat(ctx context.Context, nd *simNode) error {
	now := s.clock.Now()
	return s.publish(ctx, s.topics.Heartbeat, nd.id, &registration.Heartbeat{
		NodeID: nd.id, NodeType: nd.typ, NodeVersion: "1.4.2", UptimeSeconds: now.Sub(nd.started).Seconds(),
		ActiveOperationsCount: s.rng.IntN(8), Timestamp: now,
	})
}

// publishMalformed publishes o.malformed messages that are each wrong in a
// different way; every one is dead-lettered with a reason naming the field.
func (s *simulation) publishMalformed(ctx context.Context) error {
	now := s.clock.Now().Format(time.RFC3339)
	id := func() string { return s.newID().String() }
	bad := []struct{ topic, value string }{
		{s.topics.Introspection, `{"envelope_id": "` + id() + `", "payload": {`},
		{s.topics.Heartbeat, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","event_type":"NodeRebooted","payload":{}}`},
		{s.topics.Ack, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","payload":{"node_id":"not-a-uuid","correlation_id":"` + id() + `","timestamp":"` + now + `"}}`},
		{s.topics.Heartbeat, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","payload":{"node_id":"` + id() + `","uptime_seconds":3,"timestamp":"2026-01-01T00:00:00"}}`},
		{s.topics.Heartbeat, `{"envelope_id":"` + id() + `","envelope_timestamp":"` + now + `","payload":{"node_id":"` + id() + `","uptime_seconds":-1,"timestamp":"` + now + `"}}`},
	}
	for i := range s.o.malformed {
		b := bad[i%len(bad)]
		if err := s.w.bus.Publish(ctx, &bus.Message{Topic: b.topic, Value: []byte(b.value)}); err != nil {
			return err
		}
		s.sent++
	}
	return nil
}

func (s *simulation) progress(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-done:
			if s.tty {
				fmt.Fprintf(s.stderr, "\r%s\n", s.progressLine(ctx))
			}
			return
		case <-t.C:
		}
		phase, _ := s.phase.Load().(string)
		if s.tty {
			fmt.Fprintf(s.stderr, "\r%s", s.progressLine(ctx))
		} else if phase != last {
			last = phase
			fmt.Fprintln(s.stderr, s.progressLine(ctx))
		}
	}
}

func (s *simulation) progressLine(ctx context.Context) string {
	c, _ := s.w.store.CountByState(ctx)
	st := s.w.rt.Stats()
	phase, _ := s.phase.Load().(string)
	return fmt.Sprintf("[t+%-6s] %-22s awaiting_ack %-5d active %-5d liveness_expired %-5d events %-6d intents %-6d dead-lettered %d",
		s.clock.Since(simEpoch), phase, c[registration.StateAwaitingAck], c[registration.StateActive],
		c[registration.StateLivenessExpired], st.EventsPublished, st.IntentsExecuted, st.DeadLettered)
}

func (s *simulation) report(ctx context.Context, stdout io.Writer, elapsed time.Duration) error {
	counts, err := s.w.store.CountByState(ctx)
	if err != nil {
		return err
	}
	st := s.w.rt.Stats()
	if s.o.jsonOut {
		states := map[string]int{}
		for _, state := range registration.States() {
			states[string(state)] = counts[state]
		}
		enc := json.NewEncoder(stdout)
		return enc.Encode(summary{
			Nodes: len(s.nodes), States: states, EventsPublished: st.EventsPublished,
			IntentsExecuted: st.IntentsExecuted, DeadLettered: st.DeadLettered, ElapsedMS: elapsed.Milliseconds(),
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-20s %8s\n", "state", "nodes")
	for _, state := range registration.States() {
		fmt.Fprintf(&b, "%-20s %8d\n", state, counts[state])
	}
	fmt.Fprintf(&b, "%-20s %8d\n\n", "total", len(s.nodes))
	fmt.Fprintf(&b, "simulated %s in %s: %d events published, %d intents executed (%d changed nothing), %d dead-lettered\n",
		s.clock.Since(simEpoch), elapsed.Truncate(time.Millisecond), st.EventsPublished, st.IntentsExecuted,
		st.IntentsSkipped, st.DeadLettered)
	if s.w.registry != nil {
		fmt.Fprintf(&b, "%d services in the in-memory registry\n", s.w.registry.Len())
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}
