package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/registrar-go/registrar/reducer/registration"
)

// The go test benchmarks here are the cheap ones of the command, one
// contender at a time; the command (go run .) is what interleaves
// contenders and computes ratios.

func BenchmarkDecideHeartbeat(b *testing.B) {
	f, err := newDecideFixture()
	if err != nil {
		b.Fatal(err)
	}
	f.benchmark(b)
}

func BenchmarkDecodeHeartbeat(b *testing.B) {
	f, err := newDecodeFixture()
	if err != nil {
		b.Fatal(err)
	}
	f.benchmark(b)
}

// BenchmarkMemoryBus publishes b.N messages through each in-memory bus and
// reports the end-to-end rate as msgs/s.
func BenchmarkMemoryBus(b *testing.B) {
	for _, c := range []struct {
		name string
		run  func(w *memoryWorkload, ctx context.Context) (float64, error)
	}{
		{"registrar", func(w *memoryWorkload, ctx context.Context) (float64, error) { return w.registrar(ctx, false) }},
		{"registrar-batch", func(w *memoryWorkload, ctx context.Context) (float64, error) { return w.registrar(ctx, true) }},
		{"gochannel", (*memoryWorkload).gochannel},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := newMemoryWorkload(memoryParams{msgs: b.N, publishers: 4, keys: 1024, payload: 256})
			b.ResetTimer()
			r, err := c.run(w, b.Context())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r, "msgs/s")
		})
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-quick", "-only", "memory, decide", "-pg", "postgres://x@127.0.0.1/db"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !o.quick || o.rounds != 3 || strings.Join(o.only, ",") != "memory,decide" || o.dsn != "postgres://x@127.0.0.1/db" {
		t.Errorf("parsed %+v", o)
	}
	if o, err = parseFlags(nil, &stderr); err != nil || o.rounds != 5 || len(o.only) != len(benchmarks) {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-only", "nosuch"}, {"-only", ","}, {"-rounds", "-1"}, {"-filter", "("}, {"extra"}} {
		if _, err := parseFlags(bad, &stderr); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestQuickTable runs the benchmarks that need no server, one round, and
// checks that the table names every contender and judges every target.
func TestQuickTable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs benchmarks")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-quick", "-rounds", "1", "-only", "memory,decide"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"registrar bus/memory", "watermill gochannel", "Reducer.Decide", "allocs/op", "≥ 5x", "≤ 1.5 µs", "≤ 6 allocs", "goccy/go-json", "x jsonobj"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "memory: round 1/1") {
		t.Errorf("no progress lines on stderr:\n%s", stderr.String())
	}
}

// TestDecoderSemantics: registrar's decoder and encoding/json agree on every
// semantics case (so the check can pass), and segmentio's decoder, which
// folds keys in ASCII only, is caught (so it can fail).
func TestDecoderSemantics(t *testing.T) {
	for _, d := range decoders() {
		diff := semantics(d)
		switch {
		case strings.HasPrefix(d.name, "jsonobj"), d.name == "encoding/json":
			if diff != "" {
				t.Errorf("%s: %s", d.name, diff)
			}
		case strings.HasPrefix(d.name, "segmentio"):
			if diff == "" {
				t.Errorf("%s: no difference found on the folding cases", d.name)
			}
		}
		f, err := newDecodeFixture()
		if err != nil {
			t.Fatal(err)
		}
		env, hb, err := d.decode(f.value)
		if err != nil || env.EventType != registration.EventTypeHeartbeat || hb.UptimeSeconds != 12.5 {
			t.Errorf("%s: decoding the fixture: %+v %+v %v", d.name, env, hb, err)
		}
	}
}
