package registrar_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	registrar "github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// direct is a registration runtime driven through Handle, without Run.
type direct struct {
	rt     *registrar.RegistrationRuntime
	topics registration.Topics
	store  *memory.Store
}

func newDirect(tb testing.TB, opts ...registrar.Option) *direct {
	tb.Helper()
	b, err := membus.New(membus.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		tb.Fatal(err)
	}
	c := contract.Default()
	opts = append([]registrar.Option{registrar.WithClock(func() time.Time { return t0.Add(time.Hour) })}, opts...)
	rt, err := registrar.NewRegistration(c, b, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := registration.New(registration.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return &direct{rt: rt, topics: r.Config().Topics, store: store}
}

// message returns the message a node publishes on topic at at.
func (d *direct) message(tb testing.TB, topic string, node uuid.UUID, at time.Time, payload any) *bus.Message {
	tb.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		tb.Fatal(err)
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, CorrelationID: uuid.New(), Payload: raw}
	m, err := bus.EnvelopeMessage(topic, env, bus.WithKey([]byte(node.String())))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func (d *direct) handle(tb testing.TB, m *bus.Message) {
	tb.Helper()
	if err := d.rt.Handle(context.Background(), m); err != nil {
		tb.Fatal(err)
	}
}

// activate registers node and acknowledges it, at t0 and t0+1s.
func (d *direct) activate(tb testing.TB, node uuid.UUID) {
	tb.Helper()
	d.handle(tb, d.message(tb, d.topics.Introspection, node, t0, introspectionOf(node, t0)))
	ack := &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: t0.Add(time.Second)}
	d.handle(tb, d.message(tb, d.topics.Ack, node, ack.Timestamp, ack))
}

func heartbeats(tb testing.TB, d *direct, node uuid.UUID, n int) []*bus.Message {
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		at := t0.Add(time.Minute + time.Duration(i)*time.Microsecond)
		msgs[i] = d.message(tb, d.topics.Heartbeat, node, at, &registration.Heartbeat{NodeID: node, Timestamp: at, UptimeSeconds: 1})
	}
	return msgs
}

// BenchmarkHandleHeartbeat is the runtime's hot path: Handle of one
// heartbeat of an active node, on the memory store.
func BenchmarkHandleHeartbeat(b *testing.B) {
	d := newDirect(b)
	node := uuid.New()
	d.activate(b, node)
	msgs := heartbeats(b, d, node, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.handle(b, msgs[i])
	}
}

// BenchmarkHandleHeartbeatUnknown is Handle of a heartbeat from a node the
// runtime does not know: a warned no-op (mostly rate-limited).
func BenchmarkHandleHeartbeatUnknown(b *testing.B) {
	d := newDirect(b)
	msgs := heartbeats(b, d, uuid.New(), b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.handle(b, msgs[i])
	}
}

// records is a slog handler that keeps every record.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// warnings returns the attributes of every WARN record about a no-op.
func (h *records) warnings() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r.Level != slog.LevelWarn || !strings.HasPrefix(r.Message, "no-op") {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// TestWarnedNoOps: an ack and a heartbeat for a node the orchestrator does
// not know are no-ops counted in NoOpsWarned and logged at WARN with the
// reason, the node and the message's place; a duplicate ack is not.
func TestWarnedNoOps(t *testing.T) {
	h := &records{}
	d := newDirect(t, registrar.WithLogger(slog.New(h)))
	node := uuid.New()
	ack := &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: t0}
	am := d.message(t, d.topics.Ack, node, t0, ack)
	am.Partition, am.Offset = 3, 41
	d.handle(t, am)
	hb := &registration.Heartbeat{NodeID: node, Timestamp: t0.Add(time.Second), UptimeSeconds: 1}
	hm := d.message(t, d.topics.Heartbeat, node, hb.Timestamp, hb)
	hm.Partition, hm.Offset = 5, 7
	d.handle(t, hm)
	st := d.rt.Stats()
	if st.NoOpsWarned != 2 || st.NoOps != 2 {
		t.Fatalf("noops %d, warned %d; want 2 and 2", st.NoOps, st.NoOpsWarned)
	}
	w := h.warnings()
	if len(w) != 2 {
		t.Fatalf("%d WARN records, want 2: %v", len(w), w)
	}
	for i, want := range []map[string]string{
		{"reason": "ack for an unknown node", "kind": "ack", "topic": d.topics.Ack, "partition": "3", "offset": "41"},
		{"reason": "heartbeat from an unknown node", "kind": "heartbeat", "topic": d.topics.Heartbeat, "partition": "5", "offset": "7"},
	} {
		want["node_id"] = node.String()
		for k, v := range want {
			if w[i][k] != v {
				t.Errorf("record %d: %s = %q, want %q (%v)", i, k, w[i][k], v, w[i])
			}
		}
	}

	// A duplicate ack of an active node is at-least-once noise.
	other := uuid.New()
	d.activate(t, other)
	dup := &registration.Ack{NodeID: other, CorrelationID: uuid.New(), Timestamp: t0.Add(2 * time.Second)}
	d.handle(t, d.message(t, d.topics.Ack, other, dup.Timestamp, dup))
	if got := stateOf(t, d.store, other); got != registration.StateActive {
		t.Fatalf("state %s", got)
	}
	st = d.rt.Stats()
	if st.NoOps != 3 || st.NoOpsWarned != 2 {
		t.Fatalf("after the duplicate ack: noops %d, warned %d; want 3 and 2", st.NoOps, st.NoOpsWarned)
	}
	if n := len(h.warnings()); n != 2 {
		t.Fatalf("%d WARN records after the duplicate ack, want 2", n)
	}
}

// TestWarnedNoOpsAreRateLimited: a node heartbeating while unknown gets
// a bounded number of WARN records; every heartbeat is counted.
func TestWarnedNoOpsAreRateLimited(t *testing.T) {
	h := &records{}
	d := newDirect(t, registrar.WithLogger(slog.New(h)))
	const n = 50
	for _, m := range heartbeats(t, d, uuid.New(), n) {
		d.handle(t, m)
	}
	if got := d.rt.Stats().NoOpsWarned; got != n {
		t.Fatalf("warned %d, want %d", got, n)
	}
	if got := len(h.warnings()); got < 1 || got > 10 {
		t.Fatalf("%d WARN records for %d heartbeats at one clock reading, want 1 to 10", got, n)
	}
}
