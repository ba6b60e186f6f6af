package chaos_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/bus/memory"
	effmemory "github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/chaos"
	"github.com/registrar-go/registrar/internal/tcpproxy"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/reducer/registration"
)

// The flags of a soak; each has an environment variable that sets its
// default (REGISTRAR_CHAOS_SEED, ..._SEEDS, ..._ENTITIES).
var (
	seedFlag     = flag.Uint64("chaos.seed", envUint("REGISTRAR_CHAOS_SEED", 1), "first seed of the chaos runs")
	seedsFlag    = flag.Int("chaos.seeds", int(envUint("REGISTRAR_CHAOS_SEEDS", 1)), "number of seeds to run, from -chaos.seed on")
	entitiesFlag = flag.Int("chaos.entities", int(envUint("REGISTRAR_CHAOS_ENTITIES", 150)), "entities per run")
	faultsFlag   = flag.String("chaos.faults", "", "comma-separated fault kinds to inject (default all: "+strings.Join(chaos.ActKinds, ",")+")")
	logFlag      = flag.Bool("chaos.log", false, "print the members' warnings")
)

func envUint(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Process-global, or the fake broker's: see bus/kafka's leak test.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read.func1"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write"),
	)
}

// topology builds one topology for a run of seed.
type topology struct {
	name string
	// window is how long its faults last: Kafka's rebalances take longer.
	window time.Duration
	build  func(t *testing.T, seed uint64) *chaos.Topology
}

var topologies = []topology{
	{"memory", 3 * time.Second, memoryTopology},
	{"postgres", 4 * time.Second, postgresTopology},
	{"kafka", 6 * time.Second, kafkaTopology},
}

// TestChaosControl is the harness's control: every fault on the memory
// topology, but only poison messages that no decoder reads (which the
// engine on main dead-letters too). The guarantees that the engine on
// main keeps there must hold: a violation here is the harness's own fault
// or a new bug, never the known gaps TestChaos finds.
func TestChaosControl(t *testing.T) {
	for seed := *seedFlag; seed < *seedFlag+uint64(*seedsFlag); seed++ {
		for _, batch := range []bool{true, false} {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, mode(batch)), func(t *testing.T) {
				res, err := chaos.Run(t.Context(), memoryTopology(t, seed), chaos.Config{
					Seed: seed, Entities: 60, PoisonsPerKind: 2, Batch: batch, Window: 1500 * time.Millisecond,
					Poisons: []string{chaos.PoisonInvalidJSON, chaos.PoisonUnknownEventType, chaos.PoisonMissingNodeID},
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Log(res.Summary())
				if len(res.Violations) > 0 {
					t.Errorf("seed %d: %d violations\n%s", seed, len(res.Violations), res.Report(8))
				}
			})
		}
	}
}

// TestChaosFindsLoss checks that the harness catches lost events: the
// members' bus silently drops every 50th message they publish, no other
// fault is injected, so each dropped event is lost for good, and the
// checker must report each one, and nothing else.
func TestChaosFindsLoss(t *testing.T) {
	topo := memoryTopology(t, 1)
	b := topo.MemberBus(0)
	lossy := &lossyBus{EventBus: b, every: 50}
	topo.MemberBus = func(int) bus.EventBus { return lossy }
	res, err := chaos.Run(t.Context(), topo, chaos.Config{
		Seed: 1, Entities: 60, Faults: []string{}, Window: time.Second, QuietFor: 500 * time.Millisecond, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	lost := 0
	for _, v := range res.Violations {
		if v.Invariant == chaos.Delivered && strings.Contains(v.Detail, "was never published") {
			lost++
		}
		if v.Invariant != chaos.Delivered && v.Invariant != chaos.Sequenced {
			t.Errorf("violation of invariant %d: %s", v.Invariant, v.Detail)
		}
	}
	if dropped := int(lossy.dropped.Load()); dropped == 0 || lost != dropped {
		t.Errorf("the bus dropped %d events; the checker reports %d lost:\n%s", dropped, lost, res.Report(0))
	}
}

// lossyBus drops every nth message published through it and reports
// success: the loss the harness exists to find.
type lossyBus struct {
	bus.EventBus
	every         int64
	seen, dropped atomic.Int64
}

func (b *lossyBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	var kept []*bus.Message
	for _, m := range msgs {
		if b.seen.Add(1)%b.every == 0 {
			b.dropped.Add(1)
			continue
		}
		kept = append(kept, m)
	}
	if len(kept) == 0 {
		return nil
	}
	return b.EventBus.Publish(ctx, kept...)
}

// TestChaos runs the chaos harness on every topology, with micro-batches
// and one message at a time, for each seed: faults while the inputs flow,
// then the invariants of internal/chaos against a serial run of the
// reducer. A failure names the seed; rerun it with -chaos.seed.
func TestChaos(t *testing.T) {
	for seed := *seedFlag; seed < *seedFlag+uint64(*seedsFlag); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			for _, topo := range topologies {
				t.Run(topo.name, func(t *testing.T) {
					for _, batch := range []bool{true, false} {
						t.Run(mode(batch), func(t *testing.T) { runChaos(t, topo, seed, batch) })
					}
				})
			}
		})
	}
}

func mode(batch bool) string {
	if batch {
		return "batch"
	}
	return "single"
}

func runChaos(t *testing.T, topo topology, seed uint64, batch bool) {
	cfg := chaos.Config{
		Seed: seed, Entities: *entitiesFlag, PoisonsPerKind: max(2, *entitiesFlag/75),
		Batch: batch, Window: topo.window, Logf: t.Logf,
	}
	if *faultsFlag != "" {
		cfg.Faults = strings.Split(*faultsFlag, ",")
	}
	cfg.Stall = 10 * time.Second // a partition of an in-process group that makes no progress for 10 s is stuck
	if topo.name == "kafka" {
		// Every stop and start of a member is a rebalance of the group,
		// for which the whole group pauses, for seconds on a loaded machine.
		cfg.MemberStops, cfg.Poll, cfg.QuietFor, cfg.Stall = 3, 200*time.Millisecond, 2*time.Second, 30*time.Second
	}
	if *logFlag {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	begin := time.Now()
	t.Cleanup(func() { t.Logf("cleaned up %v after the start", time.Since(begin).Round(time.Millisecond)) })
	built := topo.build(t, seed)
	t.Logf("%s: built in %v", topo.name, time.Since(begin).Round(time.Millisecond))
	res, err := chaos.Run(t.Context(), built, cfg)
	if err != nil {
		t.Fatalf("seed %d: the harness failed: %v", seed, err)
	}
	t.Log(res.Summary())
	if each, batched := res.Subscriptions, res.BatchSubscriptions; batch && (batched == 0 || each > 0) || !batch && (each == 0 || batched > 0) {
		t.Fatalf("harness: the members subscribed %d times one by one and %d times in batches; want only %s", each, batched, mode(batch))
	}
	if len(res.Violations) > 0 {
		t.Errorf("seed %d: %d violations (rerun: go test -race -run 'TestChaos/seed=%d/%s' ./internal/chaos -chaos.seed=%d)\n%s",
			seed, len(res.Violations), seed, topo.name, seed, res.Report(8))
	}
}

// memoryTopology is the embedded default: the memory bus, store and
// registry, with injected store and registry errors.
func memoryTopology(t *testing.T, seed uint64) *chaos.Topology {
	b := newMemoryBus(t)
	storeFaults := chaos.NewFlaky("store", chaos.EffectFaultRate, seed)
	store := effmemory.NewStore(effmemory.StoreConfig{Fault: storeFaults.Hook})
	registry, registryFaults := newRegistry(seed)
	exec := intent.NewExecutor()
	if err := effmemory.RegisterEffects(exec, store, registry); err != nil {
		t.Fatal(err)
	}
	return &chaos.Topology{
		Name: "memory", MemberBus: func(int) bus.EventBus { return b }, Inputs: b,
		Store: store, Exec: exec, StoreOutage: storeFaults, RegistryOutage: registryFaults,
		Log:         chaos.MemoryLog{Bus: b},
		Projections: func(context.Context) ([]*registration.Projection, error) { return store.All(), nil },
	}
}

// postgresTopology is the memory bus over the Postgres store and effects,
// reached through a TCP proxy that the store outages cut.
func postgresTopology(t *testing.T, seed uint64) *chaos.Topology {
	b := newMemoryBus(t)
	pg := newPostgres(t, seed)
	return &chaos.Topology{
		Name: "postgres", MemberBus: func(int) bus.EventBus { return b }, Inputs: b,
		Store: pg.store, Exec: pg.exec, StoreOutage: pg.outage, RegistryOutage: pg.registryFaults,
		Log: chaos.MemoryLog{Bus: b}, Projections: pg.projections,
	}
}

// kafkaTopology is Kafka's wire protocol (kfake, in process) spoken by
// sarama (bus/kafka), one bus per member, over the Postgres store through
// the proxy.
func kafkaTopology(t *testing.T, seed uint64) *chaos.Topology {
	cluster := kafkatest.Start(t)
	buses := make([]*kafka.Bus, 3)
	for i := range buses {
		buses[i] = cluster.NewBus(t)
	}
	log, err := chaos.NewKafkaLog(cluster.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	pg := newPostgres(t, seed)
	return &chaos.Topology{
		Name: "kafka", MemberBus: func(slot int) bus.EventBus { return buses[slot%len(buses)] }, Inputs: cluster.NewBus(t),
		Store: pg.store, Exec: pg.exec, StoreOutage: pg.outage, RegistryOutage: pg.registryFaults,
		Log: log, Projections: pg.projections,
	}
}

func newMemoryBus(t *testing.T) *memory.Bus {
	b, err := memory.New(memory.Config{RetentionMessages: memory.NoLimit, RetentionBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newRegistry(seed uint64) (*effmemory.Registry, *chaos.Flaky) {
	faults := chaos.NewFlaky("registry", chaos.EffectFaultRate, seed+1)
	return effmemory.NewRegistry(effmemory.RegistryConfig{Fault: faults.Hook}), faults
}

// pgParts are the Postgres parts of a topology.
type pgParts struct {
	store          *postgres.Store // through the proxy
	exec           *intent.Executor
	outage         chaos.Outage
	registryFaults *chaos.Flaky
	projections    func(context.Context) ([]*registration.Projection, error)
}

// newPostgres makes a schema of its own on the test server, and the store
// and effects on it through a TCP proxy; the Consul intents go to a memory
// registry. The checker reads the projections around the proxy.
func newPostgres(t *testing.T, seed uint64) *pgParts {
	dsn := testenv.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	direct, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	schema := "chaos_" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := direct.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := postgres.Migrate(ctx, direct, postgres.MigrateConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}

	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.New(net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	host, port, _ := net.SplitHostPort(proxy.Addr())
	proxied, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: 6, ConnectTimeout: 2 * time.Second,
		ConfigurePool: func(c *pgxpool.Config) error {
			p, err := strconv.Atoi(port)
			c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxied.Close)

	exec := intent.NewExecutor()
	if err := postgres.RegisterEffects(exec, proxied, postgres.EffectConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	registry, registryFaults := newRegistry(seed)
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL} {
		if err := exec.Register(typ, registry); err != nil {
			t.Fatal(err)
		}
	}
	store, err := postgres.NewStore(proxied, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := postgres.NewStore(direct, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return &pgParts{
		store: store, exec: exec, outage: chaos.ProxyOutage{Proxy: proxy}, registryFaults: registryFaults,
		projections: reader.All,
	}
}
