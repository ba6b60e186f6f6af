package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// decideT0 is the time the Decide fixtures are built around.
var decideT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// decideFixture is an active node's projection and a heartbeat input for
// it, as the Runtime hands them to Decide.
type decideFixture struct {
	red *registration.Reducer
	p   *registration.Projection
	hb  *registration.Heartbeat
	in  reducer.Input
}

func newDecideFixture() (*decideFixture, error) {
	red, err := registration.New(registration.Config{})
	if err != nil {
		return nil, err
	}
	id := uuid.MustParse("7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10")
	reg := decideT0.Add(-time.Minute)
	p := &registration.Projection{
		EntityID: id, Domain: registration.DefaultDomain, State: registration.StateActive,
		NodeType: "effect", NodeVersion: "1.2.3",
		Capabilities: json.RawMessage(`{"postgres":true}`), Endpoints: map[string]string{"health": "http://10.0.0.5:8080/health"},
		LivenessDeadline: decideT0.Add(-10 * time.Second), LastHeartbeatAt: decideT0,
		RegisteredAt: reg, UpdatedAt: reg, CorrelationID: uuid.New(), Generation: 3,
	}
	hb := &registration.Heartbeat{NodeID: id, UptimeSeconds: 1}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: decideT0, CorrelationID: uuid.New(), Payload: json.RawMessage(`{}`)}
	return &decideFixture{red: red, p: p, hb: hb, in: reducer.Input{Kind: registration.KindHeartbeat, EntityID: id, Event: hb, Envelope: env}}, nil
}

// benchmark is testing.Benchmark's function for one heartbeat decision:
// heartbeats 10 s apart, so every third one also passes the Consul TTL
// check (two intents), as in production.
func (f *decideFixture) benchmark(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.hb.Timestamp = decideT0.Add(time.Duration(i+1) * 10 * time.Second)
		d := f.red.Decide(f.p, f.in, f.hb.Timestamp)
		if len(d.Intents) == 0 {
			b.Fatal(d.Reason)
		}
	}
}

// decodeFixture is an encoded heartbeat message as the Runtime receives it.
type decodeFixture struct {
	red   *registration.Reducer
	topic string
	value []byte
}

func newDecodeFixture() (*decodeFixture, error) {
	red, err := registration.New(registration.Config{})
	if err != nil {
		return nil, err
	}
	id := uuid.New()
	payload, err := json.Marshal(&registration.Heartbeat{NodeID: id, NodeType: "effect", NodeVersion: "1.0.0",
		UptimeSeconds: 12.5, Timestamp: decideT0})
	if err != nil {
		return nil, err
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: decideT0, CorrelationID: uuid.New(),
		EventType: registration.EventTypeHeartbeat, SourceTool: "bench-node", Payload: payload}
	topic := red.Config().Topics.Heartbeat
	m, err := bus.EnvelopeMessage(topic, env, bus.WithKey([]byte(id.String())))
	if err != nil {
		return nil, err
	}
	return &decodeFixture{red: red, topic: topic, value: m.Value}, nil
}

// benchmark decodes the envelope and its heartbeat payload, as the Runtime
// does for every message before it decides.
func (f *decodeFixture) benchmark(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		env, err := bus.DecodeEnvelope(f.value)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.red.Decode(f.topic, env); err != nil {
			b.Fatal(err)
		}
	}
}

// initTesting registers the testing package's flags once, so that
// setBenchTime can shorten testing.Benchmark's runs outside a test binary.
var initTesting sync.Once

// setBenchTime sets how long testing.Benchmark runs each measurement.
func setBenchTime(d time.Duration) error {
	initTesting.Do(testing.Init)
	return flag.CommandLine.Set("test.benchtime", d.String())
}

func benchDecide(ctx context.Context, o options, p *progress, t *table) error {
	benchTime := time.Second
	if o.quick {
		benchTime = 300 * time.Millisecond
	}
	if err := setBenchTime(benchTime); err != nil {
		return err
	}
	df, err := newDecideFixture()
	if err != nil {
		return err
	}
	cf, err := newDecodeFixture()
	if err != nil {
		return err
	}
	decs := decoders()
	allocs := make([][]float64, 2+len(decs))
	run := func(f func(*testing.B), allocs *[]float64) func(context.Context) (float64, error) {
		return func(context.Context) (float64, error) {
			r := testing.Benchmark(f)
			if r.N == 0 {
				return 0, errors.New("benchmark failed")
			}
			*allocs = append(*allocs, float64(r.AllocsPerOp()))
			return float64(r.T.Nanoseconds()) / float64(r.N), nil
		}
	}
	cs := []contender{
		{name: "Decide (heartbeat)", unit: "ns/op", run: run(df.benchmark, &allocs[0])},
		{name: "DecodeEnvelope + Decode", unit: "ns/op", run: run(cf.benchmark, &allocs[1])},
	}
	for i, d := range decs {
		cs = append(cs, contender{name: "decode: " + d.name, unit: "ns/op", run: run(cf.decoderBenchmark(d), &allocs[2+i])})
	}
	res, err := interleave(ctx, o, p, "decide", false, cs)
	if err != nil {
		return err
	}
	// The target: DecodeEnvelope plus Reducer.Decode of a heartbeat.
	ns, na := median(res[1]), median(allocs[1])
	t.add(row{Bench: "decide", Contender: "DecodeEnvelope + Decode, heartbeat", Figure: fmt.Sprintf("%.0f ns/op", ns), Spread: spread(res[1]),
		Target: "≤ 1.5 µs", Result: t.check("DecodeEnvelope + Decode ≤ 1.5 µs", ns <= 1500),
		Note: "testing.Benchmark; bus.DecodeEnvelope then registration Reducer.Decode, what the Runtime does per message before Decide"})
	t.add(row{Figure: fmt.Sprintf("%.0f allocs/op", na), Target: "≤ 6 allocs", Result: t.check("DecodeEnvelope + Decode ≤ 6 allocs", na <= 6)})
	// Decide's figures are informational: no target of this issue.
	t.add(row{Contender: "registration Reducer.Decide, heartbeat", Figure: fmt.Sprintf("%.0f ns/op", median(res[0])), Spread: spread(res[0]),
		Note: fmt.Sprintf("%.0f allocs/op; informational; every 3rd also passes the TTL", median(allocs[0]))})
	// The decoder comparison, informational: the same envelope and
	// heartbeat payload through each decoder, ratios to jsonobj's time.
	base := res[2]
	for i, d := range decs {
		r := res[2+i]
		note := fmt.Sprintf("%.0f allocs/op", median(allocs[2+i]))
		if i == 0 {
			note += "; the baseline: bus.DecodeEnvelope + registration.DecodeHeartbeat"
		} else {
			note += "; reflection into wire structs, then the same validation"
		}
		diff := semantics(d)
		if diff != "" {
			note += "; " + diff
		} else {
			note += "; key matching as encoding/json on the folding, case and duplicate cases"
		}
		ratio := pairedRatio(r, base)
		if i > 0 && diff == "" && ratio <= 1.2 {
			// The issue would prefer a maintained decoder this close, but
			// the core module may import only the standard library, uuid
			// and YAML, and the allocations alone miss the target.
			note += fmt.Sprintf("; within 1.2x of jsonobj, not adopted: bus/ may not import it, and %.0f allocs/op miss the ≤ 6 target", median(allocs[2+i]))
		}
		t.add(row{Contender: "decode: " + d.name, Figure: fmt.Sprintf("%.0f ns/op", median(r)), Spread: spread(r),
			Ratio: ratioText(ratio, "jsonobj"), Note: note})
	}
	return nil
}
