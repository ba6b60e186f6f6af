package otelhooks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/reducer/registration"
)

// ScopeName is the instrumentation scope of the meter [NewMetrics] takes
// from its MeterProvider.
const ScopeName = "github.com/registrar-go/registrar/hooks/otelhooks"

// Metrics records what the Runtime, the dispatch relay and the timeout
// sweeper report through their hooks as OpenTelemetry metrics. Install it
// with registrar.WithHooks (and registrar.SweeperConfig.Hooks); serve it in
// the Prometheus text format with [NewPrometheus]. It implements
// [hooks.MessageTracer] (returning the context unchanged),
// [hooks.StepTracer], [hooks.DecideHook], [hooks.RetryHook],
// [hooks.DeadLetterHook], [hooks.ConflictHook], [hooks.BatchHook],
// [hooks.PartitionHook] and [hooks.SweepHook]; it is safe for concurrent
// use, and a hook call allocates nothing once its label set was seen.
//
// # METRICS
//
// The names below are those the Prometheus handler serves (the
// OpenTelemetry instrument name, with dots, and its unit translate to
// them: "registrar.handle.duration" in "s" is
// registrar_handle_duration_seconds, a counter gains _total); they are
// stable. No label carries an entity id or any other unbounded value:
// every label value comes from a fixed set (outcomes, steps, reasons,
// states) or from the configuration (intent types, input kinds, topics),
// and an instrument keeps at most 256 label sets; beyond that, every label
// of a new set reads "other".
//
// Messages ([hooks.MessageTracer]):
//
//   - registrar_messages_total{kind,outcome}: messages handled. outcome is
//     applied, noop, coalesced, dead_lettered or aborted ([hooks.Outcome]); kind is
//     the reducer's input kind (introspection, ack, heartbeat,
//     timeout_check), "undecoded" when the message did not decode. The
//     sum over applied, noop and coalesced equals registrar.Stats.Handled.
//   - registrar_handle_duration_seconds{kind,outcome}: histogram of the
//     time from a message's decoding to its outcome.
//   - registrar_batch_size: histogram of the messages per micro-batch
//     ([hooks.BatchHook]; a message handled alone is a batch of one).
//
// Decisions ([hooks.DecideHook]):
//
//   - registrar_decisions_total{kind,result}: decisions; result is the
//     state the decision moved the entity to (e.g. active,
//     liveness_expired), "updated" when it changed the entity without
//     changing its state (a heartbeat, a metadata refresh), or "noop".
//     Decisions made again after a conflict count again.
//   - registrar_noops_total{kind,reason,warned}: no-op decisions; reason
//     is the reducer's reason up to its first colon (e.g. "duplicate ack",
//     "heartbeat from an unknown node"), at most 64 bytes; warned is "true"
//     for the no-ops the reducer marks as deserving an operator's
//     attention. The sum equals Stats.NoOps, that with warned="true"
//     Stats.NoOpsWarned.
//
// Steps and effects ([hooks.StepTracer]):
//
//   - registrar_step_duration_seconds{step,result}: histogram of each
//     step's time; step is load, decide, commit, intent or publish
//     ([hooks.StepKind]), result ok or error.
//   - registrar_effect_duration_seconds{intent_type,result}: histogram of
//     each execution of intents on an effect (Consul, or any
//     IntentEffect; one intent or a batch of one type), result ok or
//     error. The store's own writes (the projection upserts and updates)
//     run in the commit step.
//   - registrar_intents_total{intent_type,outcome}: intents executed on
//     effects: applied, skipped (the idempotence guard held), conflict,
//     or error (every intent of a failed execution).
//   - registrar_published_total: messages published: the events the relay
//     publishes (Stats.EventsPublished, when the Runtime is the only
//     component reporting here) and the timeout checks the sweeper
//     publishes.
//
// Failures:
//
//   - registrar_retries_total{op,class}: attempts repeated after an error
//     ([hooks.RetryHook]); op is decision, relay or relay_task, class is
//     retryable, permanent or unmarked ([hooks.Retry.Class]). The sum
//     equals Stats.Retries.
//   - registrar_dead_letters_total{reason}: messages and recorded intents
//     handed to the dead-letter topic ([hooks.DeadLetterHook]); reason is
//     decode, prepare, permanent, attempts or relay
//     ([hooks.DeadLetterReason]). The sum equals Stats.DeadLettered.
//   - registrar_conflicts_total: writes that met a conflict, whose input
//     is decided again ([hooks.ConflictHook]); equals Stats.Conflicts.
//
// Partitions ([hooks.PartitionHook]):
//
//   - registrar_partitions_assigned{group,topic}: gauge of the partitions
//     this member owns, as of the last assignment it was told of.
//   - registrar_partition_assignments_total{group}: assignments received
//     (rebalances this member took part in).
//
// Sweeps ([hooks.SweepHook]):
//
//   - registrar_sweeps_total{result}: sweeps, result ok or error.
//   - registrar_sweep_duration_seconds: histogram of their time.
//   - registrar_sweep_overdue_total: overdue deadlines the sweeps found.
//   - registrar_timeout_checks_published_total: timeout checks they
//     published.
//
// Gauges read when the metrics are collected (on each scrape), present
// only with their option:
//
//   - registrar_nodes{state}: projections per state, every state of
//     registration.States() (0 for a state without one)
//     ([WithNodeStates]). When the count fails, the scrape has no
//     registrar_nodes series and the error goes to otel.Handle.
//   - registrar_consumer_lag{topic,partition}: messages between a
//     partition's committed offset and its end ([WithConsumerLag]).
//
// The histograms of durations have the buckets 50µs, 100µs, 250µs, 500µs,
// 1ms, 2.5ms, 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s and
// 10s; that of batch sizes 1, 2, 4, ... 1024.
type Metrics struct {
	messages, decisions, noops, intents, published            metric.Int64Counter
	retries, deadLetters, conflicts, assignments              metric.Int64Counter
	sweeps, overdue, checks                                   metric.Int64Counter
	handleDuration, stepDuration, effectDuration, sweepLength metric.Float64Histogram
	batchSize                                                 metric.Int64Histogram

	messageLabels  *labelCache[[2]string] // kind, outcome
	decisionLabels *labelCache[[2]string] // kind, result
	noopLabels     *labelCache[[3]string] // kind, reason, warned
	stepLabels     *labelCache[[2]string] // step, result
	effectLabels   *labelCache[[2]string] // intent_type, result
	intentLabels   *labelCache[[2]string] // intent_type, outcome
	retryLabels    *labelCache[[2]string] // op, class
	deadLabels     *labelCache[string]    // reason
	groupLabels    *labelCache[string]    // group
	sweepLabels    *labelCache[string]    // result
	noLabels       *labelOpts

	partMu     sync.Mutex
	partitions map[string]map[string]map[int32]struct{} // group → topic → partitions

	regMu         sync.Mutex
	registrations []metric.Registration
}

// MetricsOption configures [NewMetrics].
type MetricsOption interface {
	applyMetrics(*metricsConfig)
}

type metricsConfig struct {
	provider metric.MeterProvider
	states   StateCounter
	lag      func(context.Context) []PartitionLag
}

type metricsOption func(*metricsConfig)

func (f metricsOption) applyMetrics(c *metricsConfig) { f(c) }

// WithMeterProvider sets the MeterProvider the instruments are created
// with (e.g. [Prometheus.MeterProvider], or an SDK provider with an OTLP
// exporter). The default is otel.GetMeterProvider(), the global one.
func WithMeterProvider(p metric.MeterProvider) MetricsOption {
	return metricsOption(func(c *metricsConfig) { c.provider = p })
}

// StateCounter counts the registration projections by state.
// registration.Reader has this method, so both stores (effects/memory and
// effects/postgres) are StateCounters.
type StateCounter interface {
	// CountByState counts the projections by state; states without a
	// projection may be absent from the map.
	CountByState(ctx context.Context) (map[registration.State]int, error)
}

// StateCounterFunc is a function that is a [StateCounter].
type StateCounterFunc func(ctx context.Context) (map[registration.State]int, error)

// CountByState calls f.
func (f StateCounterFunc) CountByState(ctx context.Context) (map[registration.State]int, error) {
	return f(ctx)
}

// stateCountTimeout bounds each CountByState call of a collection.
const stateCountTimeout = 5 * time.Second

// WithNodeStates adds the gauge registrar_nodes{state}, read from c
// (e.g. the store the Runtime writes) each time the metrics are collected,
// with a deadline of 5 s. The default is no such gauge.
func WithNodeStates(c StateCounter) MetricsOption {
	return metricsOption(func(cfg *metricsConfig) { cfg.states = c })
}

// PartitionLag is the consumer lag of one partition: how many messages lie
// between the consumer group's committed offset and the partition's end.
type PartitionLag struct {
	Topic     string
	Partition int32
	Lag       int64
}

// WithConsumerLag adds the gauge registrar_consumer_lag{topic,partition},
// with the lags f returns each time the metrics are collected (f must be
// safe for concurrent use and should return promptly; its context ends
// with the collection). The default is no such gauge.
func WithConsumerLag(f func(context.Context) []PartitionLag) MetricsOption {
	return metricsOption(func(cfg *metricsConfig) { cfg.lag = f })
}

// durationBuckets are the bucket boundaries, in seconds, of the duration
// histograms.
var durationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// batchBuckets are the bucket boundaries of registrar_batch_size.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// NewMetrics creates the instruments of [Metrics] on the meter of
// [ScopeName] and registers the callbacks of its gauges; it starts no
// goroutine. A nil option is an error. Call [Metrics.Close] to unregister
// the gauges' callbacks.
func NewMetrics(opts ...MetricsOption) (*Metrics, error) {
	cfg := metricsConfig{}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("registrar/otelhooks: metrics option %d is nil", i)
		}
		o.applyMetrics(&cfg)
	}
	if cfg.provider == nil {
		cfg.provider = otel.GetMeterProvider()
	}
	meter := cfg.provider.Meter(ScopeName)
	m := &Metrics{
		messageLabels:  newLabelCache(pair, "kind", "outcome"),
		decisionLabels: newLabelCache(pair, "kind", "result"),
		noopLabels:     newLabelCache(triple, "kind", "reason", "warned"),
		stepLabels:     newLabelCache(pair, "step", "result"),
		effectLabels:   newLabelCache(pair, "intent_type", "result"),
		intentLabels:   newLabelCache(pair, "intent_type", "outcome"),
		retryLabels:    newLabelCache(pair, "op", "class"),
		deadLabels:     newLabelCache(single, "reason"),
		groupLabels:    newLabelCache(single, "group"),
		sweepLabels:    newLabelCache(single, "result"),
		noLabels:       newLabelOpts(attribute.NewSet()),
		partitions:     map[string]map[string]map[int32]struct{}{},
	}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	m.messages = counter("registrar.messages", "{message}", "Messages handled, by input kind and outcome.")
	m.decisions = counter("registrar.decisions", "{decision}", "Decisions, by input kind and the state they moved the entity to (updated: no state change; noop: no change).")
	m.noops = counter("registrar.noops", "{decision}", "No-op decisions, by input kind, reason and whether the reducer warned.")
	m.intents = counter("registrar.intents", "{intent}", "Intents executed on effects, by intent type and outcome.")
	m.published = counter("registrar.published", "{message}", "Messages published: events and timeout checks.")
	m.retries = counter("registrar.retries", "{retry}", "Attempts repeated after an error, by operation and error class.")
	m.deadLetters = counter("registrar.dead_letters", "{message}", "Messages and recorded intents handed to the dead-letter topic, by reason.")
	m.conflicts = counter("registrar.conflicts", "{conflict}", "Writes that met a conflict; their inputs are decided again.")
	m.assignments = counter("registrar.partition_assignments", "{assignment}", "Partition assignments this member received, by consumer group.")
	m.sweeps = counter("registrar.sweeps", "{sweep}", "Sweeps of the timeout sweeper, by result.")
	m.overdue = counter("registrar.sweep.overdue", "{deadline}", "Overdue deadlines the sweeps found.")
	m.checks = counter("registrar.timeout_checks.published", "{message}", "Timeout checks the sweeps published.")
	m.handleDuration = seconds("registrar.handle.duration", "Time from a message's decoding to its outcome, by input kind and outcome.")
	m.stepDuration = seconds("registrar.step.duration", "Time of each step of handling (load, decide, commit, intent, publish), by result.")
	m.effectDuration = seconds("registrar.effect.duration", "Time of each execution of intents on an effect, by intent type and result.")
	m.sweepLength = seconds("registrar.sweep.duration", "Time of each sweep of the timeout sweeper.")
	var err error
	m.batchSize, err = meter.Int64Histogram("registrar.batch.size", metric.WithUnit("{message}"),
		metric.WithDescription("Messages per micro-batch."), metric.WithExplicitBucketBoundaries(batchBuckets...))
	errs = append(errs, err)

	parts, err := meter.Int64ObservableGauge("registrar.partitions.assigned", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions this member owns, by consumer group and topic."))
	errs = append(errs, err)
	if err == nil {
		m.register(meter, m.observePartitions(parts), parts, &errs)
	}
	if cfg.states != nil {
		g, err := meter.Int64ObservableGauge("registrar.nodes", metric.WithUnit("{node}"),
			metric.WithDescription("Registration projections, by state."))
		errs = append(errs, err)
		if err == nil {
			m.register(meter, observeStates(g, cfg.states), g, &errs)
		}
	}
	if cfg.lag != nil {
		g, err := meter.Int64ObservableGauge("registrar.consumer.lag", metric.WithUnit("{message}"),
			metric.WithDescription("Messages between the consumer group's committed offset and the partition's end, by topic and partition."))
		errs = append(errs, err)
		if err == nil {
			m.register(meter, observeLag(g, cfg.lag), g, &errs)
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("registrar/otelhooks: create instruments: %w", err)
	}
	// The counters without labels are served from the start, at 0.
	for _, c := range []metric.Int64Counter{m.published, m.conflicts, m.overdue, m.checks} {
		c.Add(context.Background(), 0, m.noLabels.add...)
	}
	return m, nil
}

func (m *Metrics) register(meter metric.Meter, f metric.Callback, g metric.Observable, errs *[]error) {
	reg, err := meter.RegisterCallback(f, g)
	*errs = append(*errs, err)
	if err == nil {
		m.regMu.Lock()
		m.registrations = append(m.registrations, reg)
		m.regMu.Unlock()
	}
}

// Close unregisters the callbacks of the gauges: later collections do not
// read them. The counters and histograms keep working. Close may be
// called more than once.
func (m *Metrics) Close() error {
	m.regMu.Lock()
	regs := m.registrations
	m.registrations = nil
	m.regMu.Unlock()
	var errs []error
	for _, r := range regs {
		errs = append(errs, r.Unregister())
	}
	return errors.Join(errs...)
}

func observeStates(g metric.Int64ObservableGauge, c StateCounter) metric.Callback {
	return func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, stateCountTimeout)
		defer cancel()
		counts, err := c.CountByState(ctx)
		if err != nil {
			return fmt.Errorf("registrar/otelhooks: count nodes by state: %w", err)
		}
		for _, st := range registration.States() {
			o.ObserveInt64(g, int64(counts[st]), metric.WithAttributes(attribute.String("state", string(st))))
		}
		for st, n := range counts {
			if !st.Valid() {
				o.ObserveInt64(g, int64(n), metric.WithAttributes(attribute.String("state", string(st))))
			}
		}
		return nil
	}
}

func observeLag(g metric.Int64ObservableGauge, f func(context.Context) []PartitionLag) metric.Callback {
	return func(ctx context.Context, o metric.Observer) error {
		for _, l := range f(ctx) {
			o.ObserveInt64(g, l.Lag, metric.WithAttributes(attribute.String("topic", l.Topic),
				attribute.String("partition", strconv.FormatInt(int64(l.Partition), 10))))
		}
		return nil
	}
}

func (m *Metrics) observePartitions(g metric.Int64ObservableGauge) metric.Callback {
	return func(_ context.Context, o metric.Observer) error {
		m.partMu.Lock()
		defer m.partMu.Unlock()
		for group, topics := range m.partitions {
			for topic, parts := range topics {
				o.ObserveInt64(g, int64(len(parts)), metric.WithAttributes(attribute.String("group", group),
					attribute.String("topic", topic)))
			}
		}
		return nil
	}
}

// MessageStart implements [hooks.MessageTracer]; it returns ctx.
func (m *Metrics) MessageStart(ctx context.Context, _ *bus.Message, _ *bus.Envelope) context.Context {
	return ctx
}

// MessageEnd implements [hooks.MessageTracer]: it counts the message in
// registrar_messages_total and records its duration.
func (m *Metrics) MessageEnd(ctx context.Context, _ *bus.Message, end hooks.MessageEnd) {
	kind := end.Kind
	if kind == "" {
		kind = "undecoded"
	}
	l := m.messageLabels.get([2]string{kind, string(end.Outcome)})
	m.messages.Add(ctx, 1, l.add...)
	m.handleDuration.Record(ctx, end.Duration.Seconds(), l.rec...)
}

// StepStart implements [hooks.StepTracer]; it returns ctx.
func (m *Metrics) StepStart(ctx context.Context, _ hooks.Step) context.Context { return ctx }

// StepEnd implements [hooks.StepTracer]: it records the step's duration,
// and for an intent step the effect's duration and its intents, for a
// publish step that succeeded the messages published.
func (m *Metrics) StepEnd(ctx context.Context, s hooks.Step, end hooks.StepEnd) {
	result := "ok"
	if end.Err != nil {
		result = "error"
	}
	m.stepDuration.Record(ctx, end.Duration.Seconds(), m.stepLabels.get([2]string{string(s.Kind), result}).rec...)
	switch s.Kind {
	case hooks.StepIntent:
		m.effectDuration.Record(ctx, end.Duration.Seconds(), m.effectLabels.get([2]string{s.IntentType, result}).rec...)
		if end.Err != nil {
			m.addIntents(ctx, s.IntentType, "error", s.Count)
			return
		}
		m.addIntents(ctx, s.IntentType, "applied", s.Count-end.Skipped-end.Conflicts)
		m.addIntents(ctx, s.IntentType, "skipped", end.Skipped)
		m.addIntents(ctx, s.IntentType, "conflict", end.Conflicts)
	case hooks.StepPublish:
		if end.Err == nil {
			m.published.Add(ctx, int64(s.Count), m.noLabels.add...)
		}
	}
}

func (m *Metrics) addIntents(ctx context.Context, typ, outcome string, n int) {
	if n > 0 {
		m.intents.Add(ctx, int64(n), m.intentLabels.get([2]string{typ, outcome}).add...)
	}
}

// OnDecide implements [hooks.DecideHook]: it counts the decision, and a
// no-op by its reason.
func (m *Metrics) OnDecide(ctx context.Context, d hooks.Decided) {
	result := d.State
	switch {
	case d.NoOp:
		result = "noop"
	case result == "":
		result = "updated"
	}
	m.decisions.Add(ctx, 1, m.decisionLabels.get([2]string{d.Kind, result}).add...)
	if d.NoOp {
		warned := "false"
		if d.Warn {
			warned = "true"
		}
		m.noops.Add(ctx, 1, m.noopLabels.get([3]string{d.Kind, reasonLabel(d.Reason), warned}).add...)
	}
}

// OnRetry implements [hooks.RetryHook].
func (m *Metrics) OnRetry(ctx context.Context, r hooks.Retry) {
	m.retries.Add(ctx, 1, m.retryLabels.get([2]string{string(r.Op), r.Class()}).add...)
}

// OnDeadLetter implements [hooks.DeadLetterHook]: it adds d.Count.
func (m *Metrics) OnDeadLetter(ctx context.Context, d hooks.DeadLetter) {
	m.deadLetters.Add(ctx, int64(d.Count), m.deadLabels.get(string(d.Reason)).add...)
}

// OnConflict implements [hooks.ConflictHook]; the entity id is not
// recorded.
func (m *Metrics) OnConflict(ctx context.Context, _ uuid.UUID) {
	m.conflicts.Add(ctx, 1, m.noLabels.add...)
}

// OnBatch implements [hooks.BatchHook]: it records the batch's size.
func (m *Metrics) OnBatch(ctx context.Context, b hooks.Batch) {
	m.batchSize.Record(ctx, int64(b.Size), m.noLabels.rec...)
}

// OnAssigned implements [hooks.PartitionHook]: assigned replaces what
// group owns.
func (m *Metrics) OnAssigned(group string, assigned map[string][]int32) {
	m.assignments.Add(context.Background(), 1, m.groupLabels.get(group).add...)
	topics := make(map[string]map[int32]struct{}, len(assigned))
	for topic, parts := range assigned {
		set := make(map[int32]struct{}, len(parts))
		for _, p := range parts {
			set[p] = struct{}{}
		}
		topics[topic] = set
	}
	m.partMu.Lock()
	m.partitions[group] = topics
	m.partMu.Unlock()
}

// OnRevoked implements [hooks.PartitionHook]: revoked are taken from what
// group owns.
func (m *Metrics) OnRevoked(group string, revoked map[string][]int32) {
	m.partMu.Lock()
	defer m.partMu.Unlock()
	topics := m.partitions[group]
	for topic, parts := range revoked {
		for _, p := range parts {
			delete(topics[topic], p)
		}
	}
}

// OnSweep implements [hooks.SweepHook].
func (m *Metrics) OnSweep(ctx context.Context, s hooks.Sweep) {
	result := "ok"
	if s.Err != nil {
		result = "error"
	}
	m.sweeps.Add(ctx, 1, m.sweepLabels.get(result).add...)
	m.sweepLength.Record(ctx, s.Duration.Seconds(), m.noLabels.rec...)
	m.overdue.Add(ctx, int64(s.Overdue), m.noLabels.add...)
	m.checks.Add(ctx, int64(s.Published), m.noLabels.add...)
}

// The hook interfaces Metrics implements.
var (
	_ hooks.MessageTracer  = (*Metrics)(nil)
	_ hooks.StepTracer     = (*Metrics)(nil)
	_ hooks.DecideHook     = (*Metrics)(nil)
	_ hooks.RetryHook      = (*Metrics)(nil)
	_ hooks.DeadLetterHook = (*Metrics)(nil)
	_ hooks.ConflictHook   = (*Metrics)(nil)
	_ hooks.BatchHook      = (*Metrics)(nil)
	_ hooks.PartitionHook  = (*Metrics)(nil)
	_ hooks.SweepHook      = (*Metrics)(nil)
)

// maxLabelSets bounds the distinct label sets of one instrument; the label
// sets after it are recorded as overflowLabel in every label.
const maxLabelSets = 256

// overflowLabel is the value of every label of a label set beyond
// maxLabelSets.
const overflowLabel = "other"

// maxLabelLen bounds the bytes of a label value taken from text (a no-op
// reason).
const maxLabelLen = 64

// labelOpts are the precomputed measurement options of one label set: a
// counter's Add and a histogram's Record with them allocate nothing for
// the options.
type labelOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newLabelOpts(set attribute.Set) *labelOpts {
	o := metric.WithAttributeSet(set)
	return &labelOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

// labelCache maps the label values K of one instrument to their options.
// Reads load an immutable map (no lock, no allocation); a new label set
// copies it under mu. It holds at most maxLabelSets sets.
type labelCache[K comparable] struct {
	keys     []string
	values   func(K) []string
	m        atomic.Pointer[map[K]*labelOpts]
	mu       sync.Mutex
	overflow *labelOpts
}

func newLabelCache[K comparable](values func(K) []string, keys ...string) *labelCache[K] {
	c := &labelCache[K]{keys: keys, values: values}
	other := make([]string, len(keys))
	for i := range other {
		other[i] = overflowLabel
	}
	c.overflow = newLabelOpts(c.set(other))
	return c
}

func (c *labelCache[K]) set(values []string) attribute.Set {
	kvs := make([]attribute.KeyValue, len(c.keys))
	for i, k := range c.keys {
		kvs[i] = attribute.String(k, values[i])
	}
	return attribute.NewSet(kvs...)
}

// get returns the options of the label set k.
func (c *labelCache[K]) get(k K) *labelOpts {
	if m := c.m.Load(); m != nil {
		if o, ok := (*m)[k]; ok {
			return o
		}
	}
	return c.slow(k)
}

func (c *labelCache[K]) slow(k K) *labelOpts {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]*labelOpts
	if m := c.m.Load(); m != nil {
		old = *m
		if o, ok := old[k]; ok {
			return o
		}
	}
	if len(old) >= maxLabelSets {
		return c.overflow
	}
	next := make(map[K]*labelOpts, len(old)+1)
	for key, o := range old {
		next[key] = o
	}
	o := newLabelOpts(c.set(c.values(k)))
	next[k] = o
	c.m.Store(&next)
	return o
}

func pair(k [2]string) []string   { return k[:] }
func triple(k [3]string) []string { return k[:] }
func single(k string) []string    { return []string{k} }

// reasonLabel returns the label value of a no-op reason: its text up to
// the first colon (the registration reducer puts the detail, which may
// name a state or a value, after it), trimmed, at most maxLabelLen bytes,
// "unspecified" if empty.
func reasonLabel(reason string) string {
	if i := strings.IndexByte(reason, ':'); i >= 0 {
		reason = reason[:i]
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > maxLabelLen {
		cut := maxLabelLen
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	if reason == "" {
		return "unspecified"
	}
	return reason
}
