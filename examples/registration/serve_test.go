package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHTTPServesAfterTheSimulation: with -http, the example serves
// /metrics (with the registry's counts), /healthz and /readyz after the
// simulation, until its context ends.
func TestHTTPServesAfterTheSimulation(t *testing.T) {
	o := options{nodes: 50, expire: 0.2, malformed: 2, jsonOut: true, seed: 3, timeout: time.Minute, httpAddr: "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := serveSimulation(t, ctx, o, time.Minute)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	code, metrics := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`registrar_nodes{state="active"} 40`, `registrar_nodes{state="liveness_expired"} 10`,
		`registrar_dead_letters_total{reason="decode"} 2`, "registrar_messages_total{", "registrar_handle_duration_seconds_bucket{",
		"registrar_effect_duration_seconds_bucket{", "registrar_consumer_lag{", "registrar_conflicts_total 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// serveSimulation runs the example with o (o.httpAddr set) until the
// simulation is done and it serves, and returns the address it serves on
// and the channel of runSimulation's result; cancel ctx to end the run.
func serveSimulation(t *testing.T, ctx context.Context, o options, wait time.Duration) (string, <-chan error) {
	t.Helper()
	var out bytes.Buffer
	errOut := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- runSimulation(ctx, o, &out, errOut) }()
	deadline := time.Now().Add(wait)
	for !strings.Contains(errOut.String(), "simulation is done") {
		select {
		case err := <-done:
			t.Fatalf("run ended before serving: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no end of the simulation:\n%s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := regexp.MustCompile(`serving http://([^/ ]+)/ `).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no address in %q", errOut.String())
	}
	return m[1], done
}
