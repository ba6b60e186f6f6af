package registrar_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	registrar "github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/reducer/registration"
)

type traceKey struct{}

// recorder implements every hook interface and records what it saw. The
// context a message's handling runs in carries the message's envelope id
// (traceKey), as a tracer's span would; Inject writes it into carriers and
// Extract reads it back.
type recorder struct {
	mu        sync.Mutex
	starts    map[string]int
	ends      map[hooks.Outcome]int
	states    []string
	steps     map[hooks.StepKind]int
	stepCtx   map[hooks.StepKind][]string // the traceKey of each step's context
	intents   map[string][]string         // intent type -> traceKey of its step
	decodes   int
	decodeErr int
	decides   int
	dead      map[hooks.DeadLetterReason]int
	batches   int
	injected  int
	extracted []string
	envTraces []string
	owned     map[string]int // partitions owned, by topic
	revoked   int
}

func newRecorder() *recorder {
	return &recorder{starts: map[string]int{}, ends: map[hooks.Outcome]int{}, steps: map[hooks.StepKind]int{},
		stepCtx: map[hooks.StepKind][]string{}, intents: map[string][]string{}, dead: map[hooks.DeadLetterReason]int{}}
}

func keyOf(ctx context.Context) string { s, _ := ctx.Value(traceKey{}).(string); return s }

func (r *recorder) MessageStart(ctx context.Context, _ *bus.Message, env *bus.Envelope) context.Context {
	key := "undecodable"
	if env != nil {
		key = env.EnvelopeID.String()
	}
	r.mu.Lock()
	r.starts[key]++
	r.mu.Unlock()
	return context.WithValue(ctx, traceKey{}, key)
}

func (r *recorder) MessageEnd(_ context.Context, _ *bus.Message, end hooks.MessageEnd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends[end.Outcome]++
	if end.State != "" {
		r.states = append(r.states, end.State)
	}
}

func (r *recorder) StepStart(ctx context.Context, s hooks.Step) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[s.Kind]++
	r.stepCtx[s.Kind] = append(r.stepCtx[s.Kind], keyOf(ctx))
	if s.Kind == hooks.StepIntent {
		r.intents[s.IntentType] = append(r.intents[s.IntentType], keyOf(ctx))
	}
	return ctx
}

func (r *recorder) StepEnd(context.Context, hooks.Step, hooks.StepEnd) {}

func (r *recorder) Inject(ctx context.Context, carrier map[string]string, env *bus.Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.injected++
	if carrier != nil {
		carrier["x-test-trace"] = keyOf(ctx)
	}
	if env != nil {
		env.TraceID = keyOf(ctx)
		r.envTraces = append(r.envTraces, keyOf(ctx))
	}
}

func (r *recorder) Extract(ctx context.Context, carrier map[string]string) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extracted = append(r.extracted, carrier["x-test-trace"])
	return context.WithValue(ctx, traceKey{}, carrier["x-test-trace"])
}

func (r *recorder) OnDecode(_ context.Context, _ *bus.Message, d hooks.Decoded) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decodes++
	if d.Err != nil {
		r.decodeErr++
	}
}

func (r *recorder) OnDecide(context.Context, hooks.Decided) { r.mu.Lock(); r.decides++; r.mu.Unlock() }
func (r *recorder) OnRetry(context.Context, hooks.Retry)    {}
func (r *recorder) OnDeadLetter(_ context.Context, d hooks.DeadLetter) {
	r.mu.Lock()
	r.dead[d.Reason] += d.Count
	r.mu.Unlock()
}
func (r *recorder) OnConflict(context.Context, uuid.UUID) {}
func (r *recorder) OnBatch(context.Context, hooks.Batch)  { r.mu.Lock(); r.batches++; r.mu.Unlock() }
func (r *recorder) OnAssigned(_ string, a map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owned = map[string]int{}
	for topic, ps := range a {
		r.owned[topic] = len(ps)
	}
}

func (r *recorder) OnRevoked(_ string, revoked map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ps := range revoked {
		r.revoked += len(ps)
	}
}
func (r *recorder) OnSweep(context.Context, hooks.Sweep) {}

func TestHooksFollowEveryMessage(t *testing.T) {
	rec := newRecorder()
	d := newDirect(t, registrar.WithHooks(rec))
	node := uuid.New()
	intro := d.message(t, d.topics.Introspection, node, t0, introspectionOf(node, t0))
	introID := envelopeID(t, intro)
	d.handle(t, intro)
	ack := &registration.Ack{NodeID: node, CorrelationID: uuid.New(), Timestamp: t0.Add(time.Second)}
	ackMsg := d.message(t, d.topics.Ack, node, ack.Timestamp, ack)
	ackID := envelopeID(t, ackMsg)
	d.handle(t, ackMsg)
	for _, m := range heartbeats(t, d, node, 3) {
		d.handle(t, m)
	}
	// A duplicate of the ack is a no-op; garbage is dead-lettered.
	d.handle(t, ackMsg)
	err := d.rt.Handle(context.Background(), &bus.Message{Topic: d.topics.Heartbeat, Value: []byte("{not json")})
	var ce *bus.ContentError
	if !errors.As(err, &ce) {
		t.Fatalf("garbage: got %v, want a content error", err)
	}

	st := d.rt.Stats()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got, want := rec.ends[hooks.OutcomeApplied]+rec.ends[hooks.OutcomeNoop]+rec.ends[hooks.OutcomeCoalesced], int(st.Handled); got != want {
		t.Errorf("applied+noop+coalesced outcomes = %d, Stats.Handled = %d", got, want)
	}
	if got := rec.ends[hooks.OutcomeNoop]; got != int(st.NoOps) || got != 1 {
		t.Errorf("noop outcomes = %d, Stats.NoOps = %d, want 1", got, st.NoOps)
	}
	if got := rec.ends[hooks.OutcomeDeadLettered]; got != int(st.DeadLettered) || got != 1 || rec.dead[hooks.ReasonDecode] != 1 {
		t.Errorf("dead-lettered outcomes = %d, dead letters %v, Stats.DeadLettered = %d, want 1", got, rec.dead, st.DeadLettered)
	}
	if rec.starts["undecodable"] != 1 || rec.starts[introID] != 1 || rec.starts[ackID] != 2 {
		t.Errorf("message starts %v", rec.starts)
	}
	if rec.decodes != 7 || rec.decodeErr != 1 || rec.decides != 6 || rec.batches != 7 {
		t.Errorf("decodes %d (errors %d), decides %d, batches %d; want 7 (1), 6, 7", rec.decodes, rec.decodeErr, rec.decides, rec.batches)
	}
	// The state cache: only the first message reads the store.
	if rec.steps[hooks.StepDecide] != 6 || rec.steps[hooks.StepLoad] != 1 {
		t.Errorf("steps %v: want 6 decide and 1 load", rec.steps)
	}
	for kind, keys := range rec.stepCtx {
		for _, k := range keys {
			if k == "" || k == "undecodable" {
				t.Errorf("a %s step ran outside a decoded message's context (%q)", kind, k)
			}
		}
	}
	// The ack's decision records a Consul registration and events: the
	// relay runs them in the trace the record carries, the ack's, and the
	// events carry it on.
	if reg := rec.intents[registration.IntentConsulReg]; len(reg) != 1 || reg[0] != ackID {
		t.Errorf("consul.register steps ran in %v, want once in the ack's context %s", reg, ackID)
	}
	if !contains(rec.extracted, ackID) || !contains(rec.extracted, introID) {
		t.Errorf("extracted %v, want the introspection's and the ack's trace", rec.extracted)
	}
	if !contains(rec.envTraces, introID) || !contains(rec.envTraces, ackID) {
		t.Errorf("event envelopes carry %v, want the introspection's and the ack's trace", rec.envTraces)
	}
	if !contains(rec.states, string(registration.StateActive)) {
		t.Errorf("states %v: no message made the node active", rec.states)
	}
}

func envelopeID(t *testing.T, m *bus.Message) string {
	t.Helper()
	env, err := bus.DecodeEnvelope(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	return env.EnvelopeID.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestWithHooksRefusesAValueWithoutHooks(t *testing.T) {
	_, err := registrar.NewRegistration(nil, nil, nil, nil, registrar.RegistrationConfig{}, registrar.WithHooks(struct{}{}))
	if err == nil {
		t.Fatal("New accepted a hook that implements nothing")
	}
}

// BenchmarkHandleHeartbeatHooks is BenchmarkHandleHeartbeat with a hook
// that implements every interface and does nothing: the cost of the
// reporting itself.
func BenchmarkHandleHeartbeatHooks(b *testing.B) {
	d := newDirect(b, registrar.WithHooks(nopHook{}))
	node := uuid.New()
	d.activate(b, node)
	msgs := heartbeats(b, d, node, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.handle(b, msgs[i])
	}
}

type nopHook struct{}

func (nopHook) MessageStart(ctx context.Context, _ *bus.Message, _ *bus.Envelope) context.Context {
	return ctx
}
func (nopHook) MessageEnd(context.Context, *bus.Message, hooks.MessageEnd)  {}
func (nopHook) StepStart(ctx context.Context, _ hooks.Step) context.Context { return ctx }
func (nopHook) StepEnd(context.Context, hooks.Step, hooks.StepEnd)          {}
func (nopHook) OnDecide(context.Context, hooks.Decided)                     {}

func TestHooksSeePartitionsAndLagDrains(t *testing.T) {
	rec := newRecorder()
	l := startLive(t, memory.StoreConfig{}, registrar.RegistrationConfig{NoSweeper: true}, registrar.WithHooks(rec))
	owned := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		n := 0
		for _, c := range rec.owned {
			n += c
		}
		return n
	}
	eventually(t, "partitions assigned", func() bool { return owned() > 0 })
	total := owned()
	for range 20 {
		node := uuid.New()
		l.publish(t, l.topics.Introspection, node, t0, introspectionOf(node, t0))
	}
	eventually(t, "the introspections handled", func() bool { return l.rt.Stats().Handled == 20 })
	eventually(t, "no lag", func() bool {
		lags := l.rt.ConsumerLag()
		sum := int64(0)
		for _, pl := range lags {
			sum += pl.Lag
		}
		return len(lags) == total && sum == 0
	})
	if err := l.rt.Close(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.revoked != total {
		t.Errorf("revoked %d partitions at the end, owned %d", rec.revoked, total)
	}
	for topic, n := range rec.owned {
		if n != 0 {
			t.Errorf("%s: the last assignment after stop holds %d partitions", topic, n)
		}
	}
}
