package main

import (
	"context"
	"net/http"

	"github.com/registrar-go/registrar/health"
)

// checkDraining is the readiness check the shutdown's first step fails.
const checkDraining = "draining"

// newMux returns the process's HTTP routes: liveness (/healthz), readiness
// (/readyz: the runtime's checks and whether the process is draining) and
// the Prometheus metrics (/metrics). Further handlers (an operator API)
// are mounted here; everything they need is in a.
func newMux(a *app) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", health.Healthz(a.rt))
	mux.Handle("GET /readyz", health.Readyz(health.Func(a.ready)))
	mux.Handle("GET /metrics", a.prom.Handler())
	return mux
}

// ready is the runtime's readiness with the draining check first: once the
// shutdown began, the process is not ready, whatever the runtime says.
func (a *app) ready(ctx context.Context) health.Report {
	drain := health.Check{Name: checkDraining, OK: true}
	if a.draining.Load() {
		drain = health.Check{Name: checkDraining, Error: "shutting down"}
	}
	r := a.rt.Ready(ctx)
	r.Checks = append([]health.Check{drain}, r.Checks...)
	return r
}
