package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/dispatch"
	consuleffects "github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/hooks/otelhooks"
	"github.com/registrar-go/registrar/httpapi"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "production:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is the command's exit status for run's error: 0 for none (and
// for -h), 2 for a configuration it refuses, 1 for anything else.
func exitCode(err error) int {
	var ce *configError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce):
		return 2
	}
	return 1
}

// app is the running orchestrator: what start opened, in the order
// shutdown closes it backwards.
type app struct {
	cfg      config
	log      *slog.Logger
	contract *contract.Contract

	pool    *pgxpool.Pool
	store   *postgres.Store
	bus     *kafka.Bus
	consul  *consuleffects.Effect
	exec    *intent.Executor
	prom    *otelhooks.Prometheus
	metrics *otelhooks.Metrics
	recent  *httpapi.Transitions // the runtime's committed transitions, for the status page
	rt      *registrar.RegistrationRuntime
	sweeper *registrar.Sweeper
	relay   *dispatch.Applier // the final flush of the outbox
	http    *http.Server

	rtDone      chan struct{} // closed when the runtime's Run returned
	stopSweeper func()
	sweeperDone chan struct{} // closed when the sweeper's Run returned

	// draining is set by the first step of the shutdown: /readyz then
	// reports the process not ready, whatever the runtime says.
	draining atomic.Bool
}

// run runs the orchestrator until ctx ends or the process receives SIGTERM
// or SIGINT, then shuts it down in order (see shutdown). It reads its
// configuration from args and env (parseConfig), writes flag usage to
// stderr and logs to stderr, and returns a *configError for a
// configuration it refuses. It writes nothing to stdout: the parameter is
// there for the operator HTTP API's and other additions' use.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	_ = stdout
	cfg, err := parseConfig(args, env, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	a := &app{cfg: cfg, log: log}
	runErr, err := a.start(ctx)
	if err != nil {
		a.log.Error("start-up failed", "error", err.Error())
		a.closeAll()
		return err
	}
	var failure error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx).Error(), "timeout", cfg.shutdownTimeout.String())
	case failure = <-runErr:
		log.Error("shutting down after a failure", "error", failure.Error(), "timeout", cfg.shutdownTimeout.String())
	}
	stop() // a second SIGTERM or SIGINT now kills the process at once
	if err := a.shutdown(); err != nil {
		return errors.Join(failure, err)
	}
	return failure
}

// newLogger returns the logger cfg asks for, writing to out.
func newLogger(cfg config, out io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// start opens everything in dependency order (Postgres, Kafka, Consul,
// telemetry, the runtime and the sweeper, HTTP) and starts the runtime,
// the sweeper and the HTTP server. The channel receives the first error
// any of them stops with. On an error, what was opened is left in a for
// closeAll.
func (a *app) start(ctx context.Context) (<-chan error, error) {
	cfg := a.cfg
	a.contract = contract.Default()
	if cfg.contractPath != "" {
		c, err := contract.Load(cfg.contractPath)
		if err != nil {
			return nil, fmt.Errorf("-contract: %w", err)
		}
		a.contract = c
	}
	group := cfg.group
	if group == "" {
		group = a.contract.Group()
		a.log.Warn("consumer group is the contract's: every orchestrator of this contract, Python ONEX ones included, shares its partitions; set -group to keep to yourselves",
			"group", group)
	}

	// Postgres: the pool, the schema, the store. NewPool pings, so a wrong
	// DSN or an unreachable server fails here.
	a.log.Info("connecting to postgres", pgTarget(cfg.pgDSN)...)
	pool, err := postgres.NewPool(ctx, postgres.Config{DSN: cfg.pgDSN, MaxConns: int32(cfg.pgMaxConns)})
	if err != nil {
		return nil, err
	}
	a.pool = pool
	if err := postgres.Migrate(ctx, pool, postgres.MigrateConfig{Schema: cfg.pgSchema, Logger: a.log}); err != nil {
		return nil, err
	}
	if a.store, err = postgres.NewStore(pool, postgres.StoreConfig{Schema: cfg.pgSchema, Logger: a.log}); err != nil {
		return nil, err
	}
	a.log.Info("postgres ready", "schema", cfg.pgSchema, "max_conns", pool.Config().MaxConns)

	// Kafka: kafka.New connects to the brokers.
	kc := kafka.Config{Brokers: cfg.kafkaBrokers, ClientID: cfg.kafkaClientID, Version: cfg.kafkaVersion,
		CreateTopics: cfg.kafkaCreateTopics, Partitions: int32(cfg.partitions), ReplicationFactor: int16(cfg.replication),
		Linger: cfg.kafkaLinger,
		SASL:   kafka.SASL{Mechanism: cfg.saslMechanism, User: cfg.saslUser, Password: cfg.saslPassword},
		Logger: a.log}
	if cfg.kafkaTLS {
		kc.TLS = tlsConfig()
	}
	if t := registrar.SnapshotTopic(a.contract); t != "" {
		kc.CompactTopics = []string{t}
	}
	if a.bus, err = kafka.New(kc); err != nil {
		return nil, err
	}
	a.log.Info("kafka connected", "brokers", cfg.kafkaBrokers, "group", group)

	// Consul: the fenced effect (it reads the projections) and its
	// reconciler. consul.New makes no request: an unreachable agent shows
	// in the first intents' retries and the reconciler's warnings.
	a.exec = intent.NewExecutor()
	if a.consul, err = consuleffects.New(consuleffects.Config{Address: cfg.consulAddr, Token: cfg.consulToken,
		Projections: a.store, Logger: a.log}); err != nil {
		return nil, err
	}
	if err := a.consul.Register(a.exec); err != nil {
		return nil, err
	}
	rec, err := consuleffects.NewReconciler(consuleffects.ReconcilerConfig{Effect: a.consul, Store: a.store, Logger: a.log})
	if err != nil {
		return nil, err
	}
	// The Postgres store owns the postgres.* intents (it applies them in
	// its outbox transaction), so the executor needs only Consul's.

	// Telemetry: Prometheus metrics of the runtime and the sweeper.
	if a.prom, err = otelhooks.NewPrometheus(); err != nil {
		return nil, err
	}
	a.recent = httpapi.NewTransitions(0)
	if a.metrics, err = otelhooks.NewMetrics(otelhooks.WithMeterProvider(a.prom.MeterProvider()),
		otelhooks.WithNodeStates(a.store), otelhooks.WithConsumerLag(a.consumerLag)); err != nil {
		return nil, err
	}

	// The runtime, with its sweeper run apart so that shutdown stops it in
	// its own step.
	if a.rt, err = registrar.NewRegistration(a.contract, a.bus, a.store, a.exec,
		registrar.RegistrationConfig{NoSweeper: true, Reconciler: rec},
		registrar.WithGroup(group), registrar.WithLogger(a.log), registrar.WithHooks(a.metrics, a.recent),
		registrar.WithBatch(cfg.batchSize, cfg.batchWait), registrar.WithStateCache(cfg.stateCache)); err != nil {
		return nil, err
	}
	if a.sweeper, err = registrar.NewSweeper(a.store, a.bus, registrar.SweeperConfig{
		Topic:    registrar.ReducerConfig(a.contract).Topics.TimeoutCheck,
		Interval: a.contract.Timeouts.SweepInterval.Duration(),
		Logger:   a.log, Hooks: []hooks.Hook{a.metrics},
	}); err != nil {
		return nil, err
	}
	if a.relay, err = dispatch.New(dispatch.Config{Publisher: a.bus, Executor: a.exec, Outbox: a.store,
		Decode: registration.DecodeIntentPayload, DeadLetterTopic: a.contract.EventBus.DeadLetterTopic,
		SourceTool: a.contract.Name, Logger: a.log}); err != nil {
		return nil, err
	}

	mux, err := newMux(a)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", cfg.httpAddr, err)
	}
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	// The runtime and the sweeper outlive ctx: shutdown stops them, each
	// in its step, after /readyz went false.
	errc := make(chan error, 3)
	a.rtDone = make(chan struct{})
	go func() {
		defer close(a.rtDone)
		if err := a.rt.Run(context.WithoutCancel(ctx)); err != nil {
			errc <- fmt.Errorf("runtime: %w", err)
		}
	}()
	sweepCtx, stopSweeper := context.WithCancel(context.WithoutCancel(ctx))
	a.stopSweeper, a.sweeperDone = stopSweeper, make(chan struct{})
	go func() {
		defer close(a.sweeperDone)
		if err := a.sweeper.Run(sweepCtx); err != nil {
			errc <- fmt.Errorf("sweeper: %w", err)
		}
	}()
	go func() {
		if err := a.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	a.log.Info("serving", "addr", ln.Addr().String(), "paths", "/ (status page) /v1/ /healthz /readyz /metrics")
	return errc, nil
}

// consumerLag is the lag gauge's source: the runtime's partitions.
func (a *app) consumerLag(context.Context) []otelhooks.PartitionLag {
	if a.rt == nil {
		return nil
	}
	var out []otelhooks.PartitionLag
	for _, pl := range a.rt.ConsumerLag() {
		out = append(out, otelhooks.PartitionLag{Topic: pl.Topic, Partition: pl.Partition, Lag: pl.Lag})
	}
	return out
}
