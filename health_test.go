package registrar_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/health"
	"github.com/registrar-go/registrar/intent"
)

// failedChecks returns the names of the checks of rep that failed.
func failedChecks(rep health.Report) []string { return rep.Failed() }

// check returns the check name of rep, failing the test if it has none.
func check(t *testing.T, rep health.Report, name string) health.Check {
	t.Helper()
	c, ok := rep.Check(name)
	if !ok {
		t.Fatalf("no check %q in %+v", name, rep)
	}
	return c
}

// probe serves GET path from h and returns the status code and the body.
func probe(t *testing.T, h http.Handler) (int, string, []health.Check) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	var b struct {
		Status string         `json:"status"`
		Checks []health.Check `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, b.Status, b.Checks
}

func newMemoryRuntime(t *testing.T, b *membus.Bus, opts ...registrar.Option) *registrar.RegistrationRuntime {
	t.Helper()
	store := memory.NewStore(memory.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memory.RegisterEffects(exec, store, memory.NewRegistry(memory.RegistryConfig{})); err != nil {
		t.Fatal(err)
	}
	rt, err := registrar.NewRegistration(contract.Default(), b, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestNotRunningIsNotReadyNorLive: before Run and after Close, the Runtime
// is neither ready nor live, and says so; the store check passes on its
// own (the memory store is a Pinger).
func TestNotRunningIsNotReadyNorLive(t *testing.T) {
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rt := newMemoryRuntime(t, b)
	ready := rt.Ready(t.Context())
	if ready.OK() {
		t.Fatalf("ready before Run: %+v", ready)
	}
	if got, want := failedChecks(ready), []string{"running", "subscribed", "partitions"}; !slices.Equal(got, want) {
		t.Errorf("failed checks %v, want %v", got, want)
	}
	if c := check(t, ready, "store"); !c.OK || c.Detail != "" {
		t.Errorf("store check %+v: the memory store is a Pinger that answers", c)
	}
	if live := rt.Live(t.Context()); live.OK() || !slices.Equal(failedChecks(live), []string{"running"}) {
		t.Errorf("live before Run: %+v", live)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if c := check(t, rt.Ready(t.Context()), "running"); c.OK || !strings.Contains(c.Error, "closed") {
		t.Errorf("running check after Close: %+v", c)
	}
	code, status, checks := probe(t, health.Readyz(rt))
	if code != http.StatusServiceUnavailable || status != "not_ready" || len(checks) != 5 {
		t.Errorf("/readyz: %d %s %+v", code, status, checks)
	}
	if code, status, _ := probe(t, health.Healthz(rt)); code != http.StatusServiceUnavailable || status != "not_live" {
		t.Errorf("/healthz: %d %s", code, status)
	}
}

// TestNoPartitionsYetIsNotReady: a Runtime whose subscription is in
// progress but whose bus has not assigned it partitions (a Recorder never
// does) is live but not ready, and the partitions check says it waits.
func TestNoPartitionsYetIsNotReady(t *testing.T) {
	g := newRecorderRig(t)
	rep := g.rt.Ready(t.Context())
	if got := failedChecks(rep); !slices.Equal(got, []string{"partitions"}) {
		t.Fatalf("failed checks %v, want [partitions]: %+v", got, rep)
	}
	if c := check(t, rep, "partitions"); !strings.Contains(c.Error, "waiting") {
		t.Errorf("partitions check %+v", c)
	}
	code, status, checks := probe(t, health.Readyz(g.rt))
	if code != http.StatusServiceUnavailable || status != "not_ready" {
		t.Errorf("/readyz: %d %s", code, status)
	}
	if got := failedChecks(health.Report{Checks: checks}); !slices.Equal(got, []string{"partitions"}) {
		t.Errorf("/readyz failed checks %v", got)
	}
	if code, _, _ := probe(t, health.Healthz(g.rt)); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

// TestReadyOnTheMemoryBusAfterRun: on the memory bus and the memory store,
// the Runtime becomes ready once Run has joined its group and been given
// its partitions, and is neither ready nor live once Run returned.
func TestReadyOnTheMemoryBusAfterRun(t *testing.T) {
	l := startLive(t, memory.StoreConfig{}, registrar.RegistrationConfig{NoSweeper: true})
	eventually(t, "ready", func() bool { return l.rt.Ready(t.Context()).OK() })
	rep := l.rt.Ready(t.Context())
	if c := check(t, rep, "partitions"); !strings.HasPrefix(c.Detail, "owns ") {
		t.Errorf("partitions check %+v: want the partitions owned", c)
	}
	if code, status, _ := probe(t, health.Readyz(l.rt)); code != http.StatusOK || status != "ready" {
		t.Errorf("/readyz: %d %s", code, status)
	}
	if code, status, _ := probe(t, health.Healthz(l.rt)); code != http.StatusOK || status != "live" {
		t.Errorf("/healthz: %d %s", code, status)
	}
	err := l.stop()
	l.stop = func() error { return nil } // the cleanup must not stop it again
	if err != nil {
		t.Fatal(err)
	}
	if rep := l.rt.Ready(t.Context()); rep.OK() || !slices.Contains(failedChecks(rep), "subscribed") {
		t.Errorf("ready after Run returned: %+v", rep)
	}
	if rep := l.rt.Live(t.Context()); rep.OK() {
		t.Errorf("live after Run returned: %+v", rep)
	}
}

// TestIdleMemberIsReady: of two members of a group on topics of one
// partition each, one owns everything and the other nothing; both are
// ready, and the idle one says it is idle.
func TestIdleMemberIsReady(t *testing.T) {
	b, err := membus.New(membus.Config{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var runs []chan error
	var rts []*registrar.RegistrationRuntime
	for range 2 {
		rt := newMemoryRuntime(t, b)
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		rts, runs = append(rts, rt), append(runs, done)
	}
	defer func() {
		cancel()
		for _, d := range runs {
			if err := <-d; err != nil {
				t.Error(err)
			}
		}
	}()
	idle := 0
	eventually(t, "both ready, one idle", func() bool {
		idle = 0
		for _, rt := range rts {
			rep := rt.Ready(t.Context())
			if !rep.OK() {
				return false
			}
			if strings.HasPrefix(check(t, rep, "partitions").Detail, "idle") {
				idle++
			}
		}
		return idle == 1
	})
}

// TestRetriesCheckFailsWhileADecisionIsStuck: a decision that fails with a
// retryable error and is retried past the threshold fails the retries
// check, with what is retried, while the Runtime stays live; once the
// decision succeeds, the check passes again.
func TestRetriesCheckFailsWhileADecisionIsStuck(t *testing.T) {
	g := newRecorderRig(t, registrar.WithStuckAfter(time.Millisecond))
	var down atomic.Bool
	down.Store(true)
	g.setStoreFault(func(intent.Intent) error {
		if down.Load() {
			return intent.Retryable(errors.New("database unavailable"))
		}
		return nil
	})
	if c := check(t, g.rt.Ready(t.Context()), "retries"); !c.OK {
		t.Fatalf("retries check before any failure: %+v", c)
	}
	node := uuid.New()
	delivered := make(chan error, 1)
	go func() { delivered <- g.rec.Deliver(context.Background(), g.introspection(t, node, t0, 1)) }()
	eventually(t, "the retries check fails", func() bool { return !check(t, g.rt.Ready(t.Context()), "retries").OK })
	c := check(t, g.rt.Ready(t.Context()), "retries")
	if !strings.Contains(c.Error, "decision of 1 message") || !strings.Contains(c.Error, "longer than 1ms") {
		t.Errorf("retries check %+v: want what is retried and the threshold", c)
	}
	if strings.Contains(c.Error, "database unavailable") {
		t.Errorf("retries check %+v carries the effect's error", c)
	}
	if live := g.rt.Live(t.Context()); !live.OK() {
		t.Errorf("not live while retrying: %+v", live)
	}
	down.Store(false)
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	if c := check(t, g.rt.Ready(t.Context()), "retries"); !c.OK || c.Detail != "" {
		t.Errorf("retries check after the decision succeeded: %+v", c)
	}
}

// TestLiveFailsWhileAHandlerHangs: a handler whose effect never returns
// makes no progress, and past the threshold the Runtime is not live; once
// the effect returns, it is live again.
func TestLiveFailsWhileAHandlerHangs(t *testing.T) {
	g := newRecorderRig(t, registrar.WithHangAfter(time.Millisecond))
	release := make(chan struct{})
	var hung atomic.Bool
	hung.Store(true)
	g.setStoreFault(func(intent.Intent) error {
		if hung.Load() {
			<-release
		}
		return nil
	})
	if live := g.rt.Live(t.Context()); !live.OK() || check(t, live, "progress").Detail != "idle" {
		t.Fatalf("live before any message: %+v", live)
	}
	delivered := make(chan error, 1)
	go func() { delivered <- g.rec.Deliver(context.Background(), g.introspection(t, uuid.New(), t0, 1)) }()
	eventually(t, "not live", func() bool { return !g.rt.Live(t.Context()).OK() })
	if c := check(t, g.rt.Live(t.Context()), "progress"); !strings.Contains(c.Error, "no progress") {
		t.Errorf("progress check %+v", c)
	}
	code, status, _ := probe(t, health.Healthz(g.rt))
	if code != http.StatusServiceUnavailable || status != "not_live" {
		t.Errorf("/healthz: %d %s", code, status)
	}
	hung.Store(false)
	close(release)
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	if live := g.rt.Live(t.Context()); !live.OK() {
		t.Errorf("not live after the handler returned: %+v", live)
	}
}
