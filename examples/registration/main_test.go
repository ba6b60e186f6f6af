package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestSimulationEndToEnd runs the example's flow on the memory bus: every
// node ends in the expected state, every malformed message is dead-lettered,
// and no message is lost: the runtime's group has consumed everything.
func TestSimulationEndToEnd(t *testing.T) {
	var out, errOut bytes.Buffer
	o := options{nodes: 300, expire: 0.2, malformed: 5, jsonOut: true, seed: 7, timeout: time.Minute}
	if err := runSimulation(context.Background(), o, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if s.Nodes != 300 || s.States["active"] != 240 || s.States["liveness_expired"] != 60 || s.Discovered != 300 {
		t.Fatalf("summary %+v", s)
	}
	for state, n := range s.States {
		if state != "active" && state != "liveness_expired" && n != 0 {
			t.Errorf("%d nodes in %s", n, state)
		}
	}
	if s.DeadLettered != 5 {
		t.Errorf("dead-lettered %d, want the 5 malformed messages", s.DeadLettered)
	}
	// Per node: Initiated, Accepted, AckReceived, BecameActive and a
	// snapshot after each of the two transitions; plus LivenessExpired and
	// its snapshot per expired node.
	if want := int64(300*6 + 60*2); s.EventsPublished != want {
		t.Errorf("events %d, want %d", s.EventsPublished, want)
	}
	if len(registration.States()) != len(s.States) {
		t.Errorf("summary lists %d states", len(s.States))
	}
}

func TestSimulationTable(t *testing.T) {
	var out, errOut bytes.Buffer
	o := options{nodes: 20, expire: 0.5, seed: 3, timeout: time.Minute}
	if err := runSimulation(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"active", "liveness_expired", "total", "events published"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	node := "7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10"
	intro := `{"envelope_id":"00000000-0000-4000-8000-000000000001","envelope_timestamp":"2026-01-01T00:00:00Z","payload":{"node_id":"` + node + `","node_type":"effect","correlation_id":"00000000-0000-4000-8000-0000000000c1","timestamp":"2026-01-01T00:00:00Z"}}`
	ack := `{"envelope_id":"00000000-0000-4000-8000-000000000002","envelope_timestamp":"2026-01-01T00:00:05Z","payload":{"node_id":"` + node + `","correlation_id":"00000000-0000-4000-8000-0000000000c1","timestamp":"2026-01-01T00:00:05Z"}}`
	lines := strings.Join([]string{
		// kcat -J: the value as a string under "payload".
		`{"topic":"onex.evt.platform.node-introspection.v1","partition":3,"offset":10,"key":"` + node + `","payload":` + mustQuote(intro) + `}`,
		// The envelope object under "value".
		`{"topic":"onex.cmd.platform.node-registration-acked.v1","key":"` + node + `","value":` + ack + `}`,
		`{"topic":"onex.evt.platform.node-became-active.v1","key":"` + node + `","payload":"{}"}`,
		`{"topic":"onex.evt.platform.node-heartbeat.v1","key":null,"payload":"{\"not\":\"an envelope\"}"}`,
	}, "\n")
	path := filepath.Join(dir, "replay.jsonl")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runReplay(context.Background(), options{replay: path, timeout: time.Minute}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var projections []map[string]any
	if err := json.Unmarshal(out.Bytes(), &projections); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if len(projections) != 1 || projections[0]["entity_id"] != node || projections[0]["current_state"] != "active" {
		t.Fatalf("projections %v", projections)
	}
	if !strings.Contains(errOut.String(), "skipped 1 records") || !strings.Contains(errOut.String(), "1 dead-lettered") {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestReplayRejectsBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(path, []byte("{\"topic\":\"x\",\"payload\":\"{}\"}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runReplay(context.Background(), options{replay: path, timeout: time.Minute}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %v does not name line 2", err)
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-nodes", "0", "-expire", "2"}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "-nodes") || !strings.Contains(err.Error(), "-expire") {
		t.Fatalf("bad flags: %v", err)
	}
	o, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil || o.nodes != 100 || o.expire != 0.1 {
		t.Fatalf("defaults %+v, %v", o, err)
	}
}

// TestFlagsPGSchema: -pg-schema, whose schema every run drops, accepts only
// names of the example's own: identifiers starting with registrar.
func TestFlagsPGSchema(t *testing.T) {
	for _, schema := range []string{"registrar", "registrar_example", "registrar_example_test", "registrar2", "registrar_" + strings.Repeat("x", 53)} {
		o, err := parseFlags([]string{"-store", "postgres", "-pg", "postgres://x", "-pg-schema", schema}, &bytes.Buffer{})
		if err != nil || o.pgSchema != schema {
			t.Errorf("-pg-schema %q: %v (parsed %q)", schema, err, o.pgSchema)
		}
	}
	for _, schema := range []string{"public", "", "app", "Registrar", "xregistrar", "registrar-example", "registrar example",
		`registrar"; DROP SCHEMA public; --`, "registrar.public", "registrar_" + strings.Repeat("x", 54)} {
		_, err := parseFlags([]string{"-store", "postgres", "-pg", "postgres://x", "-pg-schema", schema}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "-pg-schema") {
			t.Errorf("-pg-schema %q: error %v, want one naming -pg-schema", schema, err)
		}
	}
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestPostgresStoreMatchesMemory runs the example's flow on the memory bus
// twice, once with the memory store and once with the Postgres store: the
// final projections are identical.
func TestPostgresStoreMatchesMemory(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	project := func(o options) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, err := newSimulation(ctx, o, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		defer s.w.close()
		if err := s.execute(ctx, true); err != nil {
			t.Fatal(err)
		}
		all, err := registration.ListAll(ctx, s.w.store, registration.Query{Limit: registration.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.MarshalIndent(all, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Without jitter every node heartbeats at the same simulated times in
	// both runs; the ids the nodes draw (correlation and envelope ids)
	// differ, and are left out of the comparison.
	base := options{nodes: 120, expire: 0.25, jitter: 0, malformed: 2, jsonOut: true, seed: 11, timeout: 2 * time.Minute}
	mem := project(base)
	pg := base
	pg.store, pg.pgDSN, pg.pgSchema = "postgres", dsn, "registrar_example_test"
	fromPG := project(pg)
	// Compare as JSON values: jsonb orders object keys its own way.
	var a, b any
	if err := json.Unmarshal(mem, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fromPG, &b); err != nil {
		t.Fatal(err)
	}
	if len(a.([]any)) != 120 {
		t.Fatalf("%d projections, want 120", len(a.([]any)))
	}
	for _, v := range []any{a, b} {
		for _, p := range v.([]any) {
			delete(p.(map[string]any), "correlation_id")
			delete(p.(map[string]any), "last_applied_event_id")
		}
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("projections differ between the memory and the Postgres store:\nmemory:   %.2000s\npostgres: %.2000s", mem, fromPG)
	}
}

// TestSimulationOnKafka runs the example's flow on the Kafka bus (kfake,
// spoken by sarama).
func TestSimulationOnKafka(t *testing.T) {
	cluster := kafkatest.Start(t)
	var out, errOut bytes.Buffer
	o := options{nodes: 60, expire: 0.25, malformed: 2, jsonOut: true, seed: 5, timeout: 2 * time.Minute,
		bus: "kafka", brokers: strings.Join(cluster.Addrs(), ",")}
	if err := runSimulation(context.Background(), o, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.States["active"] != 45 || s.States["liveness_expired"] != 15 || s.DeadLettered != 2 || s.Discovered != 60 {
		t.Fatalf("summary %+v", s)
	}
}

// TestSimulationUnreachable runs the simulation against a Postgres and a
// Kafka broker nobody listens on (port 1): each run returns an error naming
// what failed instead of panicking, and does so within the dial bounds. With
// a reachable Kafka and an unreachable Postgres, the bus opened first is
// closed again on the way out.
func TestSimulationUnreachable(t *testing.T) {
	cluster := kafkatest.Start(t)
	for _, tc := range []struct {
		name string
		o    options
		want string
	}{
		{"postgres", options{store: "postgres", pgDSN: "postgres://postgres@127.0.0.1:1/test?sslmode=disable"}, "127.0.0.1"},
		{"kafka", options{bus: "kafka", brokers: "127.0.0.1:1"}, "registrar/kafka: connect"},
		{"kafka then postgres", options{bus: "kafka", brokers: strings.Join(cluster.Addrs(), ","),
			store: "postgres", pgDSN: "postgres://postgres@127.0.0.1:1/test?sslmode=disable"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.nodes, o.seed, o.timeout, o.jsonOut = 10, 1, 30*time.Second, true
			if o.pgSchema == "" {
				o.pgSchema = "registrar_example_unreachable"
			}
			start := time.Now()
			var out bytes.Buffer
			err := runSimulation(context.Background(), o, &out, io.Discard)
			if err == nil {
				t.Fatalf("no error; output %q", out.String())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v to fail", d)
			}
			if out.Len() != 0 {
				t.Errorf("output %q", out.String())
			}
		})
	}
}

// TestSimulationTwiceOnKafka runs the simulation twice against one Kafka
// cluster: the second run shares the first run's topics, and must count and
// project only its own messages.
func TestSimulationTwiceOnKafka(t *testing.T) {
	cluster := kafkatest.Start(t)
	for run := 1; run <= 2; run++ {
		var out, errOut bytes.Buffer
		o := options{nodes: 40, expire: 0.25, malformed: 3, jsonOut: true, seed: 5, timeout: 2 * time.Minute,
			bus: "kafka", brokers: strings.Join(cluster.Addrs(), ",")}
		if err := runSimulation(context.Background(), o, &out, &errOut); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, errOut.String())
		}
		var s summary
		if err := json.Unmarshal(out.Bytes(), &s); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if s.Nodes != 40 || s.States["active"] != 30 || s.States["liveness_expired"] != 10 || s.DeadLettered != 3 || s.Discovered != 40 {
			t.Fatalf("run %d: summary %+v", run, s)
		}
		if want := int64(40*6 + 10*2); s.EventsPublished != want { // with the snapshots
			t.Fatalf("run %d: events %d, want %d", run, s.EventsPublished, want)
		}
	}
}
