package chaos_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
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
	{"consul", 4 * time.Second, consulTopology},
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

// TestChaosConsulDrift checks the registry's check and the reconciler on
// the consul topology: no fault, but every Consul intent of the entities
// whose id starts with an even byte is dropped (reported applied, never
// sent), so none of their active projections has a service. The check must
// report exactly those entities, the reconcile pass after it must register
// exactly their services, and the registry must then match.
func TestChaosConsulDrift(t *testing.T) {
	dropped := func(id uuid.UUID) bool { return id[0]%2 == 0 }
	topo := newConsulTopology(t, func(eff intent.IntentEffect) intent.IntentEffect {
		return &droppingEffect{IntentEffect: eff, drop: dropped}
	})
	res, err := chaos.Run(t.Context(), topo, chaos.Config{
		Seed: 1, Entities: 40, Faults: []string{}, Window: time.Second, QuietFor: 500 * time.Millisecond, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	projections, err := topo.Projections(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[uuid.UUID]bool{} // the active projections without a service
	for _, p := range projections {
		if _, ok := chaos.WantService(p); ok && dropped(p.EntityID) {
			want[p.EntityID] = true
		}
	}
	if len(want) == 0 || len(want) == res.Registry.Active {
		t.Fatalf("%d of %d active projections had their intents dropped; want some, not all", len(want), res.Registry.Active)
	}
	got := map[uuid.UUID]bool{}
	for _, v := range res.Violations {
		if v.Invariant != chaos.Registered || strings.HasPrefix(v.Detail, "after a reconcile pass") || !want[v.Entity] ||
			!strings.Contains(v.Detail, "has no service") {
			t.Errorf("unexpected violation of invariant %d: entity %s: %s", v.Invariant, v.Entity, v.Detail)
			continue
		}
		got[v.Entity] = true
	}
	if len(got) != len(want) {
		t.Errorf("the check reports %d entities without their service, want %d:\n%s", len(got), len(want), res.Report(0))
	}
	if g := res.Registry; !g.Reconciles || g.Reconciled != len(want) || g.Services != g.Active-len(want) {
		t.Errorf("registry: %+v; want %d services missing of %d, and a reconcile pass that registers them", g, len(want), g.Active)
	}
}

// TestChaosReconcilePass checks what the harness makes of a topology's
// reconcile pass, on the memory topology without faults, whose registry
// matches the active projections: a pass that changes nothing passes, one
// that changes a service or fails is a violation of Registered.
func TestChaosReconcilePass(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes int
		err     error
		want    string // in the one violation; "" for none
	}{
		{"changes nothing", 0, nil, ""},
		{"changes a matching registry", 1, nil, "the registry matched the active projections, yet a reconcile pass changed 1 services"},
		{"fails", 0, errors.New("agent gone"), "a reconcile pass after the run failed (0 changes): agent gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := memoryTopology(t, 1)
			passes := 0
			topo.Reconcile = func(context.Context) (int, error) { passes++; return tc.changes, tc.err }
			res, err := chaos.Run(t.Context(), topo, chaos.Config{
				Seed: 1, Entities: 30, Faults: []string{}, Window: 500 * time.Millisecond, QuietFor: 300 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.Summary())
			if g := res.Registry; passes != 1 || !g.Checked || !g.Reconciles || g.Active == 0 || g.Services != g.Active || g.Reconciled != tc.changes {
				t.Errorf("%d passes; registry %+v; want one pass over a registry of every active projection", passes, g)
			}
			switch {
			case tc.want == "" && len(res.Violations) > 0:
				t.Errorf("%d violations, want none:\n%s", len(res.Violations), res.Report(0))
			case tc.want != "" && (len(res.Violations) != 1 || res.Violations[0].Invariant != chaos.Registered || res.Violations[0].Detail != tc.want):
				t.Errorf("violations %+v; want one of Registered: %q", res.Violations, tc.want)
			}
		})
	}
}

// droppingEffect drops the intents of the entities drop picks: it reports
// them applied without executing them.
type droppingEffect struct {
	intent.IntentEffect
	drop func(uuid.UUID) bool
}

func (e *droppingEffect) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	var node uuid.UUID
	switch p := in.Payload.(type) {
	case *registration.ConsulRegister:
		node = p.NodeID
	case *registration.ConsulDeregister:
		node = p.NodeID
	case *registration.ConsulPassTTL:
		node = p.NodeID
	}
	if e.drop(node) {
		return intent.Result{}, nil
	}
	return e.IntentEffect.Execute(ctx, in)
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
		Log: chaos.MemoryLog{Bus: b},
		Projections: func(ctx context.Context) ([]*registration.Projection, error) {
			return registration.ListAll(ctx, store, registration.Query{Limit: registration.MaxListLimit})
		},
		Services: registryServices(registry),
	}
}

// postgresTopology is the memory bus over the Postgres store and effects,
// reached through a TCP proxy that the store outages cut.
func postgresTopology(t *testing.T, seed uint64) *chaos.Topology {
	b := newMemoryBus(t)
	pg := newPostgres(t, memoryRegistry(t, seed))
	return &chaos.Topology{
		Name: "postgres", MemberBus: func(int) bus.EventBus { return b }, Inputs: b,
		Store: pg.store, Exec: pg.exec, StoreOutage: pg.outage, RegistryOutage: pg.registryOutage,
		Log: chaos.MemoryLog{Bus: b}, Projections: pg.projections, Services: pg.services, Pending: pg.pending,
	}
}

// consulTopology is the postgres topology with the real Consul effect
// (effects/consul in its fenced mode: Projections is the Postgres store,
// the runtime's own, through the store's proxy) against a Consul agent
// in -dev mode, reached through a TCP proxy that the registry outages cut:
// the effect sees the transport errors of an agent that went away. The
// harness reads the agent's services around the proxy, checks them against
// the active projections (invariant Registered), and then runs one pass of
// a consul.Reconciler, which must change nothing.
func consulTopology(t *testing.T, _ uint64) *chaos.Topology { return newConsulTopology(t, nil) }

// newConsulTopology builds the consul topology; wrap, if not nil, wraps
// the Consul effect for the consul.* intents.
func newConsulTopology(t *testing.T, wrap func(intent.IntentEffect) intent.IntentEffect) *chaos.Topology {
	agent := consultest.Start(t)
	proxy, err := tcpproxy.New(agent.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	var rec *consul.Reconciler
	b := newMemoryBus(t)
	pg := newPostgres(t, func(exec *intent.Executor, store *postgres.Store) (chaos.Outage, servicesFunc) {
		eff, err := consul.New(consul.Config{Address: proxy.Addr(), Projections: store, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eff.Close() })
		if wrap == nil {
			if err := eff.Register(exec); err != nil {
				t.Fatal(err)
			}
		} else {
			wrapped := wrap(eff)
			for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg} {
				if err := exec.Register(typ, wrapped); err != nil {
					t.Fatal(err)
				}
			}
			if err := exec.Register(registration.IntentConsulPassTTL, wrapped, intent.Volatile()); err != nil {
				t.Fatal(err)
			}
		}
		if rec, err = consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store}); err != nil {
			t.Fatal(err)
		}
		return chaos.ProxyOutage{Proxy: proxy}, func(ctx context.Context) ([]chaos.Service, error) { return consulServices(ctx, agent) }
	})
	return &chaos.Topology{
		Name: "consul", MemberBus: func(int) bus.EventBus { return b }, Inputs: b,
		Store: pg.store, Exec: pg.exec, StoreOutage: pg.outage, RegistryOutage: pg.registryOutage,
		Log: chaos.MemoryLog{Bus: b}, Projections: pg.projections, Services: pg.services, Pending: pg.pending,
		Reconcile: func(ctx context.Context) (int, error) {
			st, err := rec.Reconcile(ctx)
			return st.Changes(), err
		},
	}
}

// consulServices lists the agent's services that registrar owns (meta
// registered_by = registrar), directly, not through the proxy.
func consulServices(ctx context.Context, agent *consultest.Agent) ([]chaos.Service, error) {
	filter := "Meta." + consul.MetaRegisteredBy + " == " + strconv.Quote(consul.RegisteredBy)
	svcs, err := agent.Client.Agent().ServicesWithFilterOpts(filter, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]chaos.Service, 0, len(svcs))
	for _, id := range slices.Sorted(maps.Keys(svcs)) {
		s := svcs[id]
		out = append(out, chaos.Service{ID: s.ID, Name: s.Service, Tags: s.Tags, Address: s.Address, Port: s.Port, Meta: s.Meta})
	}
	return out, nil
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
	pg := newPostgres(t, memoryRegistry(t, seed))
	return &chaos.Topology{
		Name: "kafka", MemberBus: func(slot int) bus.EventBus { return buses[slot%len(buses)] }, Inputs: cluster.NewBus(t),
		Store: pg.store, Exec: pg.exec, StoreOutage: pg.outage, RegistryOutage: pg.registryOutage,
		Log: log, Projections: pg.projections, Services: pg.services, Pending: pg.pending,
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
	registryOutage chaos.Outage
	projections    func(context.Context) ([]*registration.Projection, error)
	services       servicesFunc
	pending        func(context.Context) ([]uuid.UUID, error)
}

// servicesFunc reads a registry's services back (chaos.Topology.Services).
type servicesFunc = func(context.Context) ([]chaos.Service, error)

// registryFunc registers the effects of the consul.* intents with exec,
// given the runtime's store (through the proxy), and returns the
// registry's outage and how to read its services.
type registryFunc func(exec *intent.Executor, store *postgres.Store) (chaos.Outage, servicesFunc)

// memoryRegistry routes the consul.* intents to a memory registry with
// injected errors.
func memoryRegistry(t *testing.T, seed uint64) registryFunc {
	return func(exec *intent.Executor, _ *postgres.Store) (chaos.Outage, servicesFunc) {
		registry, faults := newRegistry(seed)
		for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL} {
			if err := exec.Register(typ, registry); err != nil {
				t.Fatal(err)
			}
		}
		return faults, registryServices(registry)
	}
}

// registryServices reads a memory registry's services.
func registryServices(registry *effmemory.Registry) servicesFunc {
	return func(context.Context) ([]chaos.Service, error) {
		var out []chaos.Service
		for _, s := range registry.Services() {
			out = append(out, chaos.Service{ID: s.ID, Name: s.Name, Tags: s.Tags, Address: s.Address, Port: s.Port, Meta: s.Meta})
		}
		return out, nil
	}
}

// newPostgres makes a schema of its own on the test server, and the store
// and effects on it through a TCP proxy; registry routes the Consul
// intents. The checker reads the projections and the outbox around the
// proxy.
func newPostgres(t *testing.T, registry registryFunc) *pgParts {
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
	proxiedPool := func(maxConns int32) *pgxpool.Pool {
		pool, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn, MaxConns: maxConns, ConnectTimeout: 2 * time.Second,
			ConfigurePool: func(c *pgxpool.Config) error {
				p, err := strconv.Atoi(port)
				c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
				return err
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}
	proxied := proxiedPool(6)

	exec := intent.NewExecutor()
	if err := postgres.RegisterEffects(exec, proxied, postgres.EffectConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	store, err := postgres.NewStore(proxied, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	// The registry reads the projections from the runtime's own store and
	// pool, as a service wires it: the store keeps half its pool free of
	// relay leases (StoreConfig.MaxLeases), so the fenced effect's reads
	// find a connection while the leases that run it are held.
	projections := store
	registryOutage, services := registry(exec, projections)
	reader, err := postgres.NewStore(direct, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return &pgParts{
		store: store, exec: exec, outage: chaos.ProxyOutage{Proxy: proxy}, registryOutage: registryOutage,
		projections: func(ctx context.Context) ([]*registration.Projection, error) {
			return registration.ListAll(ctx, reader, registration.Query{Limit: registration.MaxListLimit})
		},
		services: services,
		pending:  func(ctx context.Context) ([]uuid.UUID, error) { return reader.PendingEntities(ctx, 0, 1<<20) },
	}
}
