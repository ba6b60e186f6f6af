package otelhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	registrar "github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/hooks/otelhooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

var t0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

// direct is a registration runtime on the memory bus and store, driven
// through Handle without Run.
type direct struct {
	rt     *registrar.RegistrationRuntime
	topics registration.Topics
	store  *memory.Store
}

// newDirect returns a direct runtime whose consul.register effect fails
// retryably the first failRegister times.
func newDirect(tb testing.TB, failRegister int, opts ...registrar.Option) *direct {
	tb.Helper()
	b, err := membus.New(membus.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	store := memory.NewStore(memory.StoreConfig{})
	var failures atomic.Int64
	failures.Store(int64(failRegister))
	registry := memory.NewRegistry(memory.RegistryConfig{Fault: func(in intent.Intent) error {
		if in.Type == registration.IntentConsulReg && failures.Add(-1) >= 0 {
			return intent.Retryable(errors.New("test: consul is unavailable"))
		}
		return nil
	}})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, registry); err != nil {
		tb.Fatal(err)
	}
	opts = append([]registrar.Option{
		registrar.WithClock(func() time.Time { return t0.Add(time.Hour) }),
		registrar.WithRetryBackoff(time.Millisecond, time.Millisecond),
	}, opts...)
	rt, err := registrar.NewRegistration(contract.Default(), b, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
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

func (d *direct) introspect(tb testing.TB, node uuid.UUID) {
	tb.Helper()
	d.handle(tb, d.message(tb, d.topics.Introspection, node, t0, &registration.Introspection{NodeID: node,
		NodeType: "compute", NodeVersion: bus.Version{Major: 2}, CorrelationID: uuid.New(), Timestamp: t0}))
}

func (d *direct) ack(node uuid.UUID, tb testing.TB) *bus.Message {
	tb.Helper()
	ack := &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: t0.Add(time.Second)}
	return d.message(tb, d.topics.Ack, node, ack.Timestamp, ack)
}

// activate registers node and acknowledges it.
func (d *direct) activate(tb testing.TB, node uuid.UUID) {
	tb.Helper()
	d.introspect(tb, node)
	d.handle(tb, d.ack(node, tb))
}

func (d *direct) heartbeats(tb testing.TB, node uuid.UUID, n int) []*bus.Message {
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		at := t0.Add(time.Minute + time.Duration(i)*time.Microsecond)
		msgs[i] = d.message(tb, d.topics.Heartbeat, node, at, &registration.Heartbeat{NodeID: node, Timestamp: at, UptimeSeconds: 1})
	}
	return msgs
}

// The known workload of the tests.
const (
	workNodes     = 5 // activated, then 2 heartbeats each
	workGarbage   = 3 // dead-lettered
	workRetries   = 2 // consul.register fails retryably this often
	workPending   = 1 // introspected, never acknowledged
	workHandled   = workNodes*4 + workPending + 2
	workNoops     = 2 // a stale ack, a heartbeat from an unknown node
	workNoopsWarn = 1 // the heartbeat
)

// runWorkload drives the known workload through a runtime with hook
// installed and returns the runtime.
func runWorkload(t *testing.T, hook hooks.Hook) *direct {
	t.Helper()
	d := newDirect(t, workRetries, registrar.WithHooks(hook))
	var nodes []uuid.UUID
	for range workNodes {
		node := uuid.New()
		nodes = append(nodes, node)
		d.activate(t, node)
		for _, m := range d.heartbeats(t, node, 2) {
			d.handle(t, m)
		}
	}
	for range workPending {
		d.introspect(t, uuid.New())
	}
	d.handle(t, d.ack(nodes[0], t))                // duplicate: no-op
	d.handle(t, d.heartbeats(t, uuid.New(), 1)[0]) // unknown node: warned no-op
	for i := range workGarbage {
		err := d.rt.Handle(context.Background(), &bus.Message{Topic: d.topics.Heartbeat, Offset: int64(i), Value: []byte("{not json")})
		var ce *bus.ContentError
		if !errors.As(err, &ce) {
			t.Fatalf("garbage %d: got %v, want a content error", i, err)
		}
	}
	st := d.rt.Stats()
	if st.Handled != workHandled || st.DeadLettered != workGarbage || st.Retries != workRetries ||
		st.NoOps != workNoops || st.NoOpsWarned != workNoopsWarn {
		t.Fatalf("workload stats %+v: want handled %d, dead-lettered %d, retries %d, noops %d (%d warned)",
			st, workHandled, workGarbage, workRetries, workNoops, workNoopsWarn)
	}
	return d
}

// collected reads a ManualReader's metrics by name.
type collected map[string]metricdata.Aggregation

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelhooks.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, otelhooks.ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// match reports whether attrs has every key=value of want ("key", "value",
// ...).
func match(attrs attribute.Set, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		v, ok := attrs.Value(attribute.Key(want[i]))
		if !ok || v.String() != want[i+1] {
			return false
		}
	}
	return true
}

// sum returns the sum of the points of counter or gauge name whose
// attributes match want.
func (c collected) sum(t *testing.T, name string, want ...string) int64 {
	t.Helper()
	var points []metricdata.DataPoint[int64]
	switch d := c[name].(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	case nil:
		t.Errorf("no metric %s", name)
		return -1
	default:
		t.Fatalf("metric %s is a %T", name, d)
	}
	var n int64
	for _, p := range points {
		if match(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// count returns the number of observations of histogram name whose
// attributes match want.
func (c collected) count(t *testing.T, name string, want ...string) uint64 {
	t.Helper()
	var n uint64
	switch d := c[name].(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes, want) {
				n += p.Count
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes, want) {
				n += p.Count
			}
		}
	default:
		t.Errorf("metric %s is a %T, want a histogram", name, d)
	}
	return n
}

func newManual(t *testing.T, opts ...otelhooks.MetricsOption) (*otelhooks.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	m, err := otelhooks.NewMetrics(append([]otelhooks.MetricsOption{otelhooks.WithMeterProvider(provider)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, reader
}

// TestMetricsEqualStats: after a known workload (handled, dead-lettered,
// retried, no-ops), the metrics equal the Runtime's Stats counters.
func TestMetricsEqualStats(t *testing.T) {
	m, reader := newManual(t)
	d := runWorkload(t, m)
	st := d.rt.Stats()
	c := collect(t, reader)

	checks := []struct {
		name      string
		got, want int64
	}{
		{"handled (applied+noop)", c.sum(t, "registrar.messages", "outcome", "applied") + c.sum(t, "registrar.messages", "outcome", "noop"), st.Handled},
		{"noop outcomes", c.sum(t, "registrar.messages", "outcome", "noop"), st.NoOps},
		{"dead-lettered outcomes", c.sum(t, "registrar.messages", "outcome", "dead_lettered", "kind", "undecoded"), st.DeadLettered},
		{"aborted outcomes", c.sum(t, "registrar.messages", "outcome", "aborted"), 0},
		{"heartbeat messages", c.sum(t, "registrar.messages", "kind", "heartbeat"), workNodes*2 + 1},
		{"retries", c.sum(t, "registrar.retries"), st.Retries},
		{"relay retries, retryable", c.sum(t, "registrar.retries", "op", "relay", "class", "retryable"), workRetries},
		{"dead letters", c.sum(t, "registrar.dead_letters"), st.DeadLettered},
		{"decode dead letters", c.sum(t, "registrar.dead_letters", "reason", "decode"), workGarbage},
		{"conflicts", c.sum(t, "registrar.conflicts"), st.Conflicts},
		{"no-ops", c.sum(t, "registrar.noops"), st.NoOps},
		{"warned no-ops", c.sum(t, "registrar.noops", "warned", "true"), st.NoOpsWarned},
		{"stale acks", c.sum(t, "registrar.noops", "kind", "ack", "reason", "stale ack", "warned", "false"), 1},
		{"decisions", c.sum(t, "registrar.decisions"), st.Handled},
		{"decisions to active", c.sum(t, "registrar.decisions", "kind", "ack", "result", "active"), workNodes},
		{"heartbeat updates", c.sum(t, "registrar.decisions", "kind", "heartbeat", "result", "updated"), workNodes * 2},
		{"published", c.sum(t, "registrar.published"), st.EventsPublished},
		{"consul registrations applied", c.sum(t, "registrar.intents", "intent_type", registration.IntentConsulReg, "outcome", "applied"), workNodes},
		{"consul registrations failed", c.sum(t, "registrar.intents", "intent_type", registration.IntentConsulReg, "outcome", "error"), workRetries},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: metric %d, want %d", ck.name, ck.got, ck.want)
		}
	}
	if st.EventsPublished == 0 {
		t.Error("the workload published no events")
	}
	messages := uint64(workHandled + workGarbage)
	if n := c.count(t, "registrar.handle.duration"); n != messages {
		t.Errorf("handle durations: %d, want %d", n, messages)
	}
	if n := c.count(t, "registrar.batch.size"); n != messages {
		t.Errorf("batch sizes: %d, want %d", n, messages)
	}
	if n := c.count(t, "registrar.effect.duration", "intent_type", registration.IntentConsulReg, "result", "error"); n != workRetries {
		t.Errorf("failed consul.register executions: %d, want %d", n, workRetries)
	}
	if n := c.count(t, "registrar.step.duration", "step", "decide"); n != uint64(workHandled) {
		t.Errorf("decide steps: %d, want %d", n, workHandled)
	}
	if n := c.count(t, "registrar.step.duration", "step", "publish", "result", "ok"); n == 0 {
		t.Error("no publish step recorded")
	}
}

// TestNodeStatesGauge: registrar_nodes{state} equals the store's
// CountByState, with 0 for the states without a projection; after more
// nodes register, the next collection follows.
func TestNodeStatesGauge(t *testing.T) {
	var store *memory.Store
	counter := otelhooks.StateCounterFunc(func(ctx context.Context) (map[registration.State]int, error) {
		return store.CountByState(ctx)
	})
	m, reader := newManual(t, otelhooks.WithNodeStates(counter))
	d := newDirect(t, 0, registrar.WithHooks(m))
	store = d.store
	check := func() {
		t.Helper()
		want, err := store.CountByState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := collect(t, reader)
		for _, s := range registration.States() {
			if got := c.sum(t, "registrar.nodes", "state", string(s)); got != int64(want[s]) {
				t.Errorf("registrar.nodes{state=%s} = %d, CountByState says %d", s, got, want[s])
			}
		}
	}
	d.activate(t, uuid.New())
	d.activate(t, uuid.New())
	d.introspect(t, uuid.New())
	check()
	d.activate(t, uuid.New())
	check()
	c := collect(t, reader)
	if a, w := c.sum(t, "registrar.nodes", "state", "active"), c.sum(t, "registrar.nodes", "state", "awaiting_ack"); a != 3 || w != 1 {
		t.Errorf("active %d, awaiting_ack %d; want 3 and 1", a, w)
	}
}

// TestNodeStatesGaugeError: when the count fails, the collection reports
// the error and no registrar.nodes point; the other metrics are still
// collected.
func TestNodeStatesGaugeError(t *testing.T) {
	failing := otelhooks.StateCounterFunc(func(context.Context) (map[registration.State]int, error) {
		return nil, errors.New("test: store down")
	})
	m, reader := newManual(t, otelhooks.WithNodeStates(failing))
	m.OnConflict(context.Background(), uuid.New())
	var rm metricdata.ResourceMetrics
	err := reader.Collect(context.Background(), &rm)
	if err == nil {
		t.Error("Collect: no error from the failing count")
	}
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if g, ok := mt.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) == 0 {
				continue
			}
			names[mt.Name] = true
		}
	}
	if names["registrar.nodes"] || !names["registrar.conflicts"] {
		t.Errorf("collected %v: want registrar.conflicts and no registrar.nodes", names)
	}
}

// TestConsumerLagGauge: registrar_consumer_lag reports what the callback
// returns, by topic and partition, each collection anew.
func TestConsumerLagGauge(t *testing.T) {
	var lags atomic.Pointer[[]otelhooks.PartitionLag]
	lags.Store(&[]otelhooks.PartitionLag{{Topic: "a", Partition: 0, Lag: 7}, {Topic: "a", Partition: 3, Lag: 0}, {Topic: "b", Partition: 1, Lag: 42}})
	_, reader := newManual(t, otelhooks.WithConsumerLag(func(context.Context) []otelhooks.PartitionLag { return *lags.Load() }))
	c := collect(t, reader)
	for _, w := range []struct {
		topic, partition string
		lag              int64
	}{{"a", "0", 7}, {"a", "3", 0}, {"b", "1", 42}} {
		if got := c.sum(t, "registrar.consumer.lag", "topic", w.topic, "partition", w.partition); got != w.lag {
			t.Errorf("lag of %s/%s = %d, want %d", w.topic, w.partition, got, w.lag)
		}
	}
	lags.Store(&[]otelhooks.PartitionLag{{Topic: "a", Partition: 0, Lag: 1}})
	c = collect(t, reader)
	g := c["registrar.consumer.lag"].(metricdata.Gauge[int64])
	if len(g.DataPoints) != 1 || g.DataPoints[0].Value != 1 {
		t.Errorf("after the lag changed: %+v, want one point of 1", g.DataPoints)
	}
}

// TestPartitionsGauge: registrar_partitions_assigned follows the last
// assignment and the revocations.
func TestPartitionsGauge(t *testing.T) {
	m, reader := newManual(t)
	m.OnAssigned("g", map[string][]int32{"a": {0, 1, 2}, "b": {4}})
	c := collect(t, reader)
	if a, b := c.sum(t, "registrar.partitions.assigned", "group", "g", "topic", "a"), c.sum(t, "registrar.partitions.assigned", "topic", "b"); a != 3 || b != 1 {
		t.Errorf("assigned a=%d b=%d, want 3 and 1", a, b)
	}
	m.OnRevoked("g", map[string][]int32{"a": {1}})
	m.OnAssigned("h", map[string][]int32{"a": {5}})
	c = collect(t, reader)
	if a, h := c.sum(t, "registrar.partitions.assigned", "group", "g", "topic", "a"), c.sum(t, "registrar.partitions.assigned", "group", "h"); a != 2 || h != 1 {
		t.Errorf("after revoking: g/a=%d h=%d, want 2 and 1", a, h)
	}
	if n := c.sum(t, "registrar.partition_assignments", "group", "g"); n != 1 {
		t.Errorf("assignments of g: %d, want 1", n)
	}
}

// TestSweepMetrics: each sweep counts, with its overdue deadlines and the
// checks it published.
func TestSweepMetrics(t *testing.T) {
	m, reader := newManual(t)
	ctx := context.Background()
	m.OnSweep(ctx, hooks.Sweep{Overdue: 5, Published: 3, Duration: time.Millisecond})
	m.OnSweep(ctx, hooks.Sweep{Overdue: 2, Err: errors.New("test: scan failed")})
	c := collect(t, reader)
	if ok, bad := c.sum(t, "registrar.sweeps", "result", "ok"), c.sum(t, "registrar.sweeps", "result", "error"); ok != 1 || bad != 1 {
		t.Errorf("sweeps ok %d, error %d; want 1 and 1", ok, bad)
	}
	if o, p := c.sum(t, "registrar.sweep.overdue"), c.sum(t, "registrar.timeout_checks.published"); o != 7 || p != 3 {
		t.Errorf("overdue %d, published %d; want 7 and 3", o, p)
	}
	if n := c.count(t, "registrar.sweep.duration"); n != 2 {
		t.Errorf("sweep durations %d, want 2", n)
	}
}

// TestLabelsAreBounded: no-op reasons are cut at their first colon, and
// an instrument keeps at most 256 label sets; the rest read "other".
func TestLabelsAreBounded(t *testing.T) {
	m, reader := newManual(t)
	ctx := context.Background()
	const distinct = 300
	for i := range distinct {
		m.OnDecide(ctx, hooks.Decided{Kind: "heartbeat", NoOp: true, Reason: fmt.Sprintf("reason %d: detail", i)})
	}
	m.OnDecide(ctx, hooks.Decided{Kind: "ack", NoOp: true, Reason: "duplicate ack: node is active"})
	c := collect(t, reader)
	points := c["registrar.noops"].(metricdata.Sum[int64]).DataPoints
	if len(points) != 257 {
		t.Errorf("%d label sets, want 256 and the overflow", len(points))
	}
	if n := c.sum(t, "registrar.noops", "kind", "heartbeat", "reason", "reason 7"); n != 1 {
		t.Errorf("reason 7: %d, want 1 (the detail after the colon dropped)", n)
	}
	if n := c.sum(t, "registrar.noops", "kind", "other", "reason", "other", "warned", "other"); n != distinct+1-256 {
		t.Errorf("overflow: %d, want %d", n, distinct+1-256)
	}
	if n := c.sum(t, "registrar.noops"); n != distinct+1 {
		t.Errorf("total %d, want %d: the overflow must still count", n, distinct+1)
	}
}

// TestNewMetricsRefusesNilOption: a nil option is an error, not a panic.
func TestNewMetricsRefusesNilOption(t *testing.T) {
	if _, err := otelhooks.NewMetrics(nil); err == nil {
		t.Error("NewMetrics(nil) returned no error")
	}
}

// BenchmarkHeartbeatTelemetry is the heartbeat path of an active node
// (BenchmarkHandleHeartbeat in the root package) without hooks, and with
// a hook that does nothing at the points Metrics observes (the cost of the
// reporting itself), and with Metrics installed on an SDK MeterProvider
// (the Prometheus one), and with the Tracer sampling every message.
func BenchmarkHeartbeatTelemetry(b *testing.B) {
	run := func(b *testing.B, opts ...registrar.Option) {
		d := newDirect(b, 0, opts...)
		node := uuid.New()
		d.activate(b, node)
		msgs := d.heartbeats(b, node, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			d.handle(b, msgs[i])
		}
	}
	b.Run("none", func(b *testing.B) { run(b) })
	b.Run("nop", func(b *testing.B) { run(b, registrar.WithHooks(nopHook{})) })
	b.Run("metrics", func(b *testing.B) {
		p, err := otelhooks.NewPrometheus()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		m, err := otelhooks.NewMetrics(otelhooks.WithMeterProvider(p.MeterProvider()))
		if err != nil {
			b.Fatal(err)
		}
		run(b, registrar.WithHooks(m))
	})
	// The tracer samples every message and exports to a discarding
	// exporter through the SDK's batch span processor, as in production.
	b.Run("tracer", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(discardExporter{}))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		run(b, registrar.WithHooks(otelhooks.NewTracer(otelhooks.WithTracerProvider(tp))))
	})
}

// discardExporter drops the spans it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// nopHook does nothing at the hook points of the heartbeat path.
type nopHook struct{}

func (nopHook) MessageStart(ctx context.Context, _ *bus.Message, _ *bus.Envelope) context.Context {
	return ctx
}
func (nopHook) MessageEnd(context.Context, *bus.Message, hooks.MessageEnd)  {}
func (nopHook) StepStart(ctx context.Context, _ hooks.Step) context.Context { return ctx }
func (nopHook) StepEnd(context.Context, hooks.Step, hooks.StepEnd)          {}
func (nopHook) OnDecide(context.Context, hooks.Decided)                     {}
func (nopHook) OnBatch(context.Context, hooks.Batch)                        {}
