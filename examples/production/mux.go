package main

import (
	"context"
	"net/http"

	"github.com/registrar-go/registrar/health"
	"github.com/registrar-go/registrar/httpapi"
)

// checkDraining is the readiness check the shutdown's first step fails.
const checkDraining = "draining"

// newMux returns the process's HTTP routes: the status page (/) and the
// read-only JSON API (/v1/, package httpapi) over the Postgres store,
// liveness (/healthz), readiness (/readyz: the runtime's checks and
// whether the process is draining) and the Prometheus metrics (/metrics).
func newMux(a *app) (*http.ServeMux, error) {
	api, err := httpapi.New(a.store, httpapi.WithTransitions(a.recent), httpapi.WithStats(a.rt.Stats),
		httpapi.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /healthz", health.Healthz(a.rt))
	mux.Handle("GET /readyz", health.Readyz(health.Func(a.ready)))
	mux.Handle("GET /metrics", a.prom.Handler())
	return mux, nil
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
