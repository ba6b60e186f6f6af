package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	consuleffects "github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// projectionStore is what the example needs of a projection store: the
// workflow's reads, and the read API it lists and counts with. Both
// effects/memory's and effects/postgres's Store are one, as they are.
type projectionStore interface {
	registration.Store
	registration.Reader
}

// world is the workflow the example runs: bus, store, effects, runtime.
type world struct {
	contract *contract.Contract
	bus      bus.EventBus
	store    projectionStore
	registry *memory.Registry // nil with -consul
	rt       *registrar.RegistrationRuntime
	sweeper  *registrar.Sweeper
	tel      *telemetry // nil without -http
	closers  []func() error
}

type worldConfig struct {
	clock      func() time.Time
	logOut     io.Writer
	store      string // "memory" or "postgres"
	pgDSN      string
	pgSchema   string
	consulAddr string
	bus        string // "memory" or "kafka"
	brokers    []string
	group      string
	telemetry  bool // -http: metrics hooks on the runtime and the sweeper
}

// dialTimeout bounds one connection attempt to Postgres or a Kafka broker,
// so that an unreachable one fails the run soon.
const dialTimeout = 5 * time.Second

// newWorld opens the world cfg describes. If anything fails, it closes what
// it opened so far and returns the error.
func newWorld(ctx context.Context, cfg worldConfig) (*world, error) {
	w := &world{contract: contract.Default()}
	if err := w.open(ctx, cfg); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// open opens the bus, the store, the effects, the runtime and the sweeper,
// appending a closer for each resource it opened to w.closers.
func (w *world) open(ctx context.Context, cfg worldConfig) (err error) {
	var log *slog.Logger
	if cfg.logOut != nil {
		log = slog.New(slog.NewTextHandler(cfg.logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	group := cfg.group
	if group == "" {
		group = w.contract.Group()
	}
	switch cfg.bus {
	case "", "memory":
		// The bus's default retention bounds what it keeps: the runtime's
		// and the discovery client's groups hold back only what they have
		// not handled yet (see simulation.startDiscovery).
		b, err := membus.New(membus.Config{Now: cfg.clock, Logger: log})
		if err != nil {
			return err
		}
		w.bus = b
		w.closers = append(w.closers, b.Close)
	case "kafka":
		if len(cfg.brokers) == 0 {
			return errors.New("-bus kafka needs -brokers host:port[,host:port...]")
		}
		kc := kafka.Config{Brokers: cfg.brokers, ClientID: "registrar-example", CreateTopics: true, Logger: log,
			Sarama: func(sc *sarama.Config) { sc.Net.DialTimeout = dialTimeout }}
		if t := registrar.SnapshotTopic(w.contract); t != "" {
			kc.CompactTopics = []string{t}
		}
		b, err := kafka.New(kc)
		if err != nil {
			return err
		}
		w.bus = b
		w.closers = append(w.closers, b.Close)
		if err := startAtEnd(cfg.brokers, group, w.contract.InputTopics()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-bus %q: want memory or kafka", cfg.bus)
	}

	exec := intent.NewExecutor()
	switch cfg.store {
	case "", "memory":
		s := memory.NewStore(memory.StoreConfig{})
		w.store = s
		for _, t := range []string{registration.IntentUpsert, registration.IntentUpdate} {
			if err := exec.Register(t, s); err != nil {
				return err
			}
		}
	case "postgres":
		if err := w.openPostgres(ctx, cfg, exec, log); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-store %q: want memory or postgres", cfg.store)
	}

	if cfg.consulAddr != "" {
		eff, err := consuleffects.New(consuleffects.Config{Address: cfg.consulAddr, Logger: log})
		if err != nil {
			return err
		}
		w.closers = append(w.closers, eff.Close)
		if err := eff.Register(exec); err != nil {
			return err
		}
	} else {
		w.registry = memory.NewRegistry(memory.RegistryConfig{})
		for _, t := range []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL} {
			if err := exec.Register(t, w.registry); err != nil {
				return err
			}
		}
	}

	opts := []registrar.Option{registrar.WithGroup(group), registrar.WithClock(cfg.clock), registrar.WithLogger(log),
		registrar.WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond)}
	var sweepHooks []hooks.Hook
	if cfg.telemetry {
		if w.tel, err = newTelemetry(w); err != nil {
			return err
		}
		w.closers = append(w.closers, w.tel.close)
		opts = append(opts, registrar.WithHooks(w.tel.metrics, w.tel.transitions))
		sweepHooks = append(sweepHooks, w.tel.metrics)
	}
	// The example sweeps itself, on simulated time: see simulation.sweep.
	w.rt, err = registrar.NewRegistration(w.contract, w.bus, w.store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
	if err != nil {
		return err
	}
	w.sweeper, err = registrar.NewSweeper(w.store, w.bus, registrar.SweeperConfig{
		Topic: registrar.ReducerConfig(w.contract).Topics.TimeoutCheck, Clock: cfg.clock, Logger: log, Hooks: sweepHooks,
	})
	if err != nil {
		return err
	}
	return nil
}

// startAtEnd commits group's offsets at the end of every partition of the
// topics that exist, before the run publishes anything. The topics are
// shared with every earlier run against the same brokers, and a group
// without committed offsets starts at the oldest message: without this, the
// run's runtime would first consume the earlier runs' messages, which move
// the nodes of the run's store (the same node ids, with the same seed) and
// count towards the messages the simulation waits for. Topics that do not
// exist yet hold no earlier messages and are left alone.
func startAtEnd(brokers []string, group string, topics []string) (err error) {
	sc := sarama.NewConfig()
	sc.ClientID = "registrar-example"
	sc.Net.DialTimeout = dialTimeout
	if sc.Version, err = sarama.ParseKafkaVersion(kafka.DefaultVersion); err != nil {
		return err
	}
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return fmt.Errorf("kafka: connect to %v: %w", brokers, err)
	}
	defer func() { _ = client.Close() }()
	existing, err := client.Topics()
	if err != nil {
		return fmt.Errorf("kafka: list topics: %w", err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1, RetentionTime: -1}
	blocks := 0
	for _, topic := range topics {
		if !slices.Contains(existing, topic) {
			continue
		}
		partitions, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("kafka: partitions of %s: %w", topic, err)
		}
		for _, p := range partitions {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("kafka: end offset of %s/%d: %w", topic, p, err)
			}
			req.AddBlock(topic, p, end, 0, "")
			blocks++
		}
	}
	if blocks == 0 {
		return nil
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return fmt.Errorf("kafka: coordinator of group %s: %w", group, err)
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		return fmt.Errorf("kafka: commit start offsets of group %s: %w", group, err)
	}
	for topic, partitions := range resp.Errors {
		for p, kerr := range partitions {
			if !errors.Is(kerr, sarama.ErrNoError) {
				return fmt.Errorf("kafka: commit start offset of %s/%d for group %s: %w", topic, p, group, kerr)
			}
		}
	}
	return nil
}

// openPostgres migrates a schema of the example's own, emptied first, and
// registers the Postgres effects and store.
func (w *world) openPostgres(ctx context.Context, cfg worldConfig, exec *intent.Executor, log *slog.Logger) error {
	if cfg.pgDSN == "" {
		return errors.New("-store postgres needs -pg DSN")
	}
	pool, err := postgres.NewPool(ctx, postgres.Config{DSN: cfg.pgDSN, ConnectTimeout: dialTimeout})
	if err != nil {
		return err
	}
	w.closers = append(w.closers, func() error { pool.Close(); return nil })
	schema := cfg.pgSchema
	if schema == "" {
		schema = "registrar_example"
	}
	if !validSchema(schema) {
		return fmt.Errorf("-pg-schema %q: not a schema of the example's own (registrar...), which it may drop", schema)
	}
	if err := resetSchema(ctx, pool, schema); err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, pool, postgres.MigrateConfig{Schema: schema, Logger: log}); err != nil {
		return err
	}
	store, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: schema, Logger: log})
	if err != nil {
		return err
	}
	w.store = store
	return postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: schema, Logger: log})
}

// resetSchema drops the example's schema so that every run starts empty.
func resetSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("reset schema %s: %w", schema, err)
	}
	return nil
}

// start runs the runtime in the background; stop waits for it.
func (w *world) start(ctx context.Context) (stop func() error) {
	done := make(chan error, 1)
	go func() { done <- w.rt.Run(ctx) }()
	return func() error {
		cerr := w.rt.Close()
		if err := <-done; err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
		return cerr
	}
}

func (w *world) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		_ = w.closers[i]()
	}
}
