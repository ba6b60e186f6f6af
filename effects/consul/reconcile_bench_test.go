package consul_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// countingTransport counts the HTTP requests sent to the agent and the
// bytes of the responses' bodies.
type countingTransport struct {
	base            *http.Transport
	requests, bytes atomic.Int64
}

func newCountingTransport() *countingTransport {
	return &countingTransport{base: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	resp, err := c.base.RoundTrip(r)
	if resp != nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.bytes}
	}
	return resp, err
}

// CloseIdleConnections lets the effect's Close reach the transport.
func (c *countingTransport) CloseIdleConnections() { c.base.CloseIdleConnections() }

func (c *countingTransport) reset() { c.requests.Store(0); c.bytes.Store(0) }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// seedActive writes n active projections, of every node type in turn, to
// store.
func seedActive(tb testing.TB, store *memory.Store, n int) {
	tb.Helper()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := uuid.New()
		p := registration.Projection{
			EntityID: id, Domain: registration.DefaultDomain, State: registration.StateActive,
			NodeType: registration.NodeTypes[i%len(registration.NodeTypes)], NodeVersion: fmt.Sprintf("1.%d.%d", i%7, i),
			Capabilities: []byte(`{"read":true}`),
			Endpoints:    map[string]string{"health": fmt.Sprintf("http://10.8.%d.%d:%d/health", i/250, i%250+1, 8000+i%1000)},
			RegisteredAt: now, UpdatedAt: now, LivenessDeadline: now.Add(time.Hour), CorrelationID: uuid.New(), Generation: int64(1 + i%3),
		}
		res, err := store.Execute(context.Background(), intent.Intent{Type: registration.IntentUpsert, Target: id.String(),
			Payload: &registration.UpsertRegistration{Projection: p, Columns: registration.AllColumns}})
		if err != nil || res.Status != intent.Applied {
			tb.Fatalf("seed %s: %v, %v", id, res, err)
		}
	}
}

// BenchmarkReconcile measures the reconciler against a real agent, with
// 1,000 active projections in the memory store (so that what is measured
// is the agent's side):
//
//   - heal: one pass right after the agent came back without its state
//     (consultest's RestartEmpty; the restart itself is not timed), which
//     registers every node again; ns/op is the time from a restarted
//     agent to a healed one.
//   - steady: a pass with nothing to change.
//
// Each reports the HTTP requests a pass sends to the agent and the bytes
// of their responses, counted by a wrapping http.RoundTripper.
func BenchmarkReconcile(b *testing.B) {
	const nodes = 1000
	a := consultest.Start(b)
	store := memory.NewStore(memory.StoreConfig{})
	seedActive(b, store, nodes)
	ct := newCountingTransport()
	eff, err := consul.New(consul.Config{Address: a.Addr, Projections: store, EditAPIConfig: func(c *api.Config) {
		c.HttpClient = &http.Client{Transport: ct}
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eff.Close() })
	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	owned := func(b *testing.B) int {
		b.Helper()
		svcs, err := a.Client.Agent().ServicesWithFilter(`Meta.registered_by == "registrar"`)
		if err != nil {
			b.Fatal(err)
		}
		return len(svcs)
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(ct.requests.Load())/float64(b.N), "requests/op")
		b.ReportMetric(float64(ct.bytes.Load())/float64(b.N), "resp-B/op")
	}

	b.Run("heal", func(b *testing.B) {
		var restart time.Duration
		ct.reset()
		for range b.N {
			b.StopTimer()
			start := time.Now()
			a.RestartEmpty()
			restart += time.Since(start)
			if n := owned(b); n != 0 {
				b.Fatalf("the restarted agent has %d services, want none", n)
			}
			ct.reset()
			b.StartTimer()
			st, err := rec.Reconcile(ctx)
			b.StopTimer()
			if err != nil || st.Registered != nodes || st.Projections != nodes || st.Updated+st.Deregistered+st.Failed != 0 {
				b.Fatalf("Reconcile: %+v, %v; want %d registered", st, err, nodes)
			}
			if n := owned(b); n != nodes {
				b.Fatalf("%d services after the pass, want %d", n, nodes)
			}
			b.StartTimer()
		}
		// Only the last pass's requests: the others were reset with it.
		b.ReportMetric(float64(ct.requests.Load()), "requests/op")
		b.ReportMetric(float64(ct.bytes.Load()), "resp-B/op")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N)/nodes, "ms/node")
		b.ReportMetric(restart.Seconds()/float64(b.N), "agent-restart-s")
	})

	b.Run("steady", func(b *testing.B) {
		if st, err := rec.Reconcile(ctx); err != nil || st.Failed != 0 {
			b.Fatalf("Reconcile: %+v, %v", st, err)
		}
		ct.reset()
		for b.Loop() {
			st, err := rec.Reconcile(ctx)
			if err != nil || st.Changes() != 0 || st.Projections != nodes || st.Services != nodes {
				b.Fatalf("steady Reconcile: %+v, %v; want no change", st, err)
			}
		}
		report(b)
	})
}
