package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/registrar-go/registrar/dispatch"
)

// shutdownStep is one step of the shutdown.
type shutdownStep struct {
	name string
	// what the step does, for its log line.
	what string
	run  func(ctx context.Context) error
}

// Step names, in the order shutdown runs them (docs/production.md says
// why this order).
const (
	stepReadiness = "readiness"
	stepSweeper   = "sweeper"
	stepConsumer  = "consumer"
	stepOutbox    = "outbox"
	stepKafka     = "kafka"
	stepHTTP      = "http"
	stepTelemetry = "telemetry"
	stepConsul    = "consul"
	stepPostgres  = "postgres"
)

// steps returns the shutdown's steps in order.
func (a *app) steps() []shutdownStep {
	return []shutdownStep{
		{stepReadiness, "/readyz answers 503 draining; wait -drain-delay", func(ctx context.Context) error {
			a.draining.Store(true)
			return sleep(ctx, a.cfg.drainDelay)
		}},
		{stepSweeper, "stop the timeout sweeper", func(context.Context) error {
			a.stopSweeper()
			<-a.sweeperDone
			return nil
		}},
		{stepConsumer, "stop consuming: leave the group, commit the acknowledged offsets, stop the relay task and the reconciler", func(context.Context) error {
			err := a.rt.Close()
			<-a.rtDone
			return err
		}},
		{stepOutbox, "relay the outbox records still pending", a.flushOutbox},
		{stepKafka, "close the Kafka bus: flush the producer, close the connections", func(context.Context) error {
			return a.bus.Close()
		}},
		{stepHTTP, "stop serving /healthz, /readyz and /metrics", func(ctx context.Context) error {
			return a.http.Shutdown(ctx)
		}},
		{stepTelemetry, "stop the metrics", func(ctx context.Context) error {
			return errors.Join(a.metrics.Close(), a.prom.Shutdown(ctx))
		}},
		{stepConsul, "close the Consul client's connections", func(context.Context) error {
			return a.consul.Close()
		}},
		{stepPostgres, "close the Postgres pool", func(context.Context) error {
			a.pool.Close()
			return nil
		}},
	}
}

// shutdown runs the steps in order, all within -shutdown-timeout. A step
// that fails is logged and the next one runs; a step still running at the
// deadline is left behind (the process is about to exit), and so are the
// steps after it, which then run without waiting. It returns an error if
// any step failed or the deadline passed.
func (a *app) shutdown() error { return a.runSteps(a.steps()) }

// runSteps is shutdown with the steps given.
func (a *app) runSteps(steps []shutdownStep) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.shutdownTimeout)
	defer cancel()
	var errs []error
	for i, s := range steps {
		a.log.Info("shutdown step", "step", s.name, "n", fmt.Sprintf("%d/%d", i+1, len(steps)), "what", s.what)
		t := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				a.log.Error("shutdown step failed", "step", s.name, "error", err.Error())
				errs = append(errs, fmt.Errorf("shutdown step %s: %w", s.name, err))
			}
		case <-ctx.Done():
			a.log.Error("shutdown step did not finish within -shutdown-timeout", "step", s.name, "timeout", a.cfg.shutdownTimeout.String())
			errs = append(errs, fmt.Errorf("shutdown step %s: did not finish within -shutdown-timeout %v", s.name, a.cfg.shutdownTimeout))
			continue
		}
		a.log.Debug("shutdown step done", "step", s.name, "took", time.Since(t).String())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.log.Info("shutdown complete", "took", time.Since(start).String())
	return nil
}

// flushOutbox relays the records the stopped runtime left pending (a
// decision committed while the consumer stopped, a relay that failed), so
// that their events and Consul changes go out before the producer closes
// instead of waiting for the next member's relay task. Records another
// member is relaying are waited for (the relay lease) and then found done.
func (a *app) flushOutbox(ctx context.Context) error {
	var total dispatch.RelayResult
	for {
		ids, err := a.relay.PendingEntities(ctx, 0, flushPage)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		res, err := a.relay.Relay(ctx, ids)
		total.Records, total.Events, total.Intents = total.Records+res.Records, total.Events+res.Events, total.Intents+res.Intents
		total.DeadLettered += res.DeadLettered
		if err != nil {
			return err
		}
		if res.Records == 0 {
			break
		}
	}
	a.log.Info("outbox flushed", "records", total.Records, "events", total.Events, "intents", total.Intents,
		"dead_lettered", total.DeadLettered)
	return nil
}

// flushPage bounds the entities one round of flushOutbox relays.
const flushPage = 256

// closeAll closes what a failed start opened, in the shutdown's order.
// Nothing was started yet: start starts the runtime, the sweeper and the
// HTTP server only once everything opened.
func (a *app) closeAll() {
	if a.metrics != nil {
		_ = a.metrics.Close()
	}
	if a.prom != nil {
		_ = a.prom.Shutdown(context.Background())
	}
	if a.bus != nil {
		_ = a.bus.Close()
	}
	if a.consul != nil {
		_ = a.consul.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tlsConfig is the TLS configuration of -kafka-tls: the system's roots.
func tlsConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
