package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/registrar-go/registrar/health"
	"github.com/registrar-go/registrar/hooks/otelhooks"
	"github.com/registrar-go/registrar/httpapi"
)

// telemetry is what -http serves: the status page and the read API
// (package httpapi), the runtime's metrics in the Prometheus text format,
// and its liveness and readiness.
type telemetry struct {
	prom        *otelhooks.Prometheus
	metrics     *otelhooks.Metrics
	transitions *httpapi.Transitions // a hook on the runtime, for the status page
}

// newTelemetry returns the metrics hook of w's runtime and sweeper: nodes
// per state from the store, consumer lag from the runtime (set later:
// the gauges read it at scrape time).
func newTelemetry(w *world) (*telemetry, error) {
	prom, err := otelhooks.NewPrometheus()
	if err != nil {
		return nil, err
	}
	m, err := otelhooks.NewMetrics(otelhooks.WithMeterProvider(prom.MeterProvider()),
		otelhooks.WithNodeStates(w.store),
		otelhooks.WithConsumerLag(func(context.Context) []otelhooks.PartitionLag {
			if w.rt == nil {
				return nil
			}
			var out []otelhooks.PartitionLag
			for _, pl := range w.rt.ConsumerLag() {
				out = append(out, otelhooks.PartitionLag{Topic: pl.Topic, Partition: pl.Partition, Lag: pl.Lag})
			}
			return out
		}))
	if err != nil {
		_ = prom.Shutdown(context.Background())
		return nil, err
	}
	return &telemetry{prom: prom, metrics: m, transitions: httpapi.NewTransitions(0)}, nil
}

func (t *telemetry) close() error {
	return errors.Join(t.metrics.Close(), t.prom.Shutdown(context.Background()))
}

// serve listens on addr and serves the status page at /, the read API at
// /v1/, and /metrics, /healthz and /readyz of w's runtime until ctx ends.
// It reports the address it listens on to out.
func (t *telemetry) serve(ctx context.Context, addr string, w *world, out io.Writer) (stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", addr, err)
	}
	api, err := httpapi.New(w.store, httpapi.WithTransitions(t.transitions), httpapi.WithStats(w.rt.Stats),
		httpapi.WithTitle("registrar example"))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /metrics", t.prom.Handler())
	mux.Handle("/healthz", health.Healthz(w.rt))
	mux.Handle("/readyz", health.Readyz(w.rt))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(out, "serving http://%s/ (the status page; the read API under /v1/), /metrics, /healthz and /readyz\n", ln.Addr())
	return func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}, nil
}
