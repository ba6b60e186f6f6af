package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	memeffects "github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// runtimeParams shape the end-to-end benchmark: per round memHeartbeats
// heartbeats through the memory bus (published one per call by publishers
// goroutines) and kafkaHeartbeats through kfake (published in calls of up
// to 256 by kafkaPublishers goroutines). Each bus has as many active nodes
// as it gets heartbeats per round: every node heartbeats once per round, as
// in production, where a node heartbeats every few seconds and a
// micro-batch spans milliseconds.
type runtimeParams struct {
	memHeartbeats, kafkaHeartbeats, publishers, kafkaPublishers int
}

// runtimeTimeout bounds one round.
const runtimeTimeout = 3 * time.Minute

// heartbeatEvery is the simulated time between two heartbeats of one node:
// every third heartbeat enters a new third of the 90 s Consul TTL and so
// also carries a consul.pass_ttl intent (executed by the in-memory
// registry), as in production.
const heartbeatEvery = 10 * time.Second

// minWarmUp is the least number of heartbeats a warm-up round sends.
const minWarmUp = 2_000

// pipeline is one Runtime on one bus, writing to the Postgres store.
type pipeline struct {
	name    string
	bus     *countingBus
	rt      *registrar.RegistrationRuntime
	upd     *countingEffect
	nodes   []uuid.UUID
	beats   []int // heartbeats sent so far, by node index
	topic   string
	pubs    int
	perCall int

	// Per measured round: HandleBatch calls and their messages, update
	// effect calls and their intents, and CPU per heartbeat (µs) of this
	// process and of the Postgres server.
	batches, msgs, dbCalls, dbIntents []float64
	goCPU, pgCPU                      []float64
}

func benchRuntime(ctx context.Context, o options, p *progress, t *table) (err error) {
	rp := o.runtime
	db, err := openDB(ctx, o.dsn, 0)
	if err != nil {
		return err
	}
	defer func() {
		if derr := db.drop(); err == nil {
			err = derr
		}
	}()
	c := contract.Default()
	hbTopic := registrar.ReducerConfig(c).Topics.Heartbeat

	cluster, err := startKfake()
	if err != nil {
		return err
	}
	defer cluster.Close()

	// newPipeline seeds the nodes of a pipeline and builds its Runtime;
	// batch is its WithBatch size, 0 for the default.
	newPipeline := func(name string, b bus.EventBus, nodeCount, pubs, perCall, batch int) (*pipeline, error) {
		nodes, err := db.seed(ctx, name+"-", nodeCount)
		if err != nil {
			return nil, err
		}
		store, err := postgres.NewStore(db.pool, postgres.StoreConfig{Schema: db.schema})
		if err != nil {
			return nil, err
		}
		pl := &pipeline{name: name, bus: newCountingBus(b), nodes: nodes, beats: make([]int, len(nodes)),
			topic: hbTopic, pubs: pubs, perCall: perCall}
		exec, err := registrationEffects(ctx, db, pl)
		if err != nil {
			return nil, err
		}
		opts := []registrar.Option{registrar.WithGroup("bench-runtime-" + name)}
		if batch > 0 {
			opts = append(opts, registrar.WithBatch(batch, 0))
		}
		pl.rt, err = registrar.NewRegistration(c, pl.bus, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
		return pl, err
	}
	// Each pipeline has a bus of its own: the memory buses default to 12
	// partitions, the Kafka bus creates its topics with 12.
	var pipelines []*pipeline
	for _, spec := range []struct {
		name           string
		kafka          bool
		heartbeats     int
		pubs, per, max int
	}{
		{"memory", false, rp.memHeartbeats, rp.publishers, 1, 0},
		{"memory-256", false, rp.memHeartbeats, rp.publishers, 1, 256},
		{"kafka", true, rp.kafkaHeartbeats, rp.kafkaPublishers, 256, 0},
	} {
		var b bus.EventBus
		if spec.kafka {
			kb, err := kafka.New(kafka.Config{Brokers: cluster.ListenAddrs(), ClientID: "bench-runtime", CreateTopics: true, Sarama: kafkatest.Tune})
			if err != nil {
				return err
			}
			defer func() { _ = kb.Close() }()
			b = kb
		} else {
			mb, err := membus.New(membus.Config{})
			if err != nil {
				return err
			}
			defer mb.Close()
			b = mb
		}
		pl, err := newPipeline(spec.name, b, spec.heartbeats, spec.pubs, spec.per, spec.max)
		if err != nil {
			return err
		}
		pipelines = append(pipelines, pl)
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, len(pipelines))
	for _, pl := range pipelines {
		go func() { runErr <- pl.rt.Run(rctx) }()
	}
	defer func() {
		stop()
		for range pipelines {
			if rerr := <-runErr; rerr != nil && err == nil {
				err = fmt.Errorf("runtime: %w", rerr)
			}
		}
	}()

	// Warm up: the Runtimes join their groups (kfake's group join takes a
	// moment), connections open, statements are prepared.
	for _, pl := range pipelines {
		if _, err := pl.round(ctx, db, max(minWarmUp, len(pl.nodes)/10), false); err != nil {
			return fmt.Errorf("%s warm-up: %w", pl.name, err)
		}
		p.printf("runtime: %s pipeline warmed up", pl.name)
	}
	mem, mem256, kfk := pipelines[0], pipelines[1], pipelines[2]
	cs := []contender{
		{name: "memory bus → Postgres", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return mem.round(ctx, db, rp.memHeartbeats, true)
		}},
		{name: "kfake → Postgres", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return kfk.round(ctx, db, rp.kafkaHeartbeats, true)
		}},
		{name: "memory bus → Postgres, batch 256", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return mem256.round(ctx, db, rp.memHeartbeats, true)
		}},
	}
	res, err := interleave(ctx, o, p, "runtime", false, cs)
	if err != nil {
		return err
	}
	m := median(res[0])
	t.add(row{Bench: "runtime", Contender: "Runtime, memory bus → Postgres", Figure: rate(m, "heartbeats/s"), Spread: spread(res[0]),
		Target: "≥ 50k/s", Result: t.check("runtime memory→Postgres ≥ 50k heartbeats/s", m >= 50_000),
		Note: joinNotes(fmt.Sprintf("default WithBatch (%d, no wait)", registrar.DefaultBatchSize), fmt.Sprintf("%d nodes, 1 heartbeat each per round", rp.memHeartbeats), mem.batchNote())})
	t.add(row{Contender: "Runtime, memory bus → Postgres, WithBatch(256)", Figure: rate(median(res[2]), "heartbeats/s"), Spread: spread(res[2]),
		Ratio: ratioText(pairedRatio(res[2], res[0]), "default batch"), Note: mem256.batchNote()})
	t.add(row{Contender: "Runtime, kfake → Postgres", Figure: rate(median(res[1]), "heartbeats/s"), Spread: spread(res[1]),
		Note: joinNotes("default WithBatch", fmt.Sprintf("%d nodes, 1 heartbeat each per round", rp.kafkaHeartbeats), kfk.batchNote())})
	return nil
}

// registrationEffects returns the executor of pl's Runtime: the Postgres
// upsert, the Postgres update wrapped to count its calls, and an in-memory
// registry for the consul.* intents in which pl's nodes are registered, as
// the Runtime would have registered them when they became active.
func registrationEffects(ctx context.Context, db *benchDB, pl *pipeline) (*intent.Executor, error) {
	cfg := postgres.EffectConfig{Schema: db.schema}
	up, err := postgres.NewUpsert(db.pool, cfg)
	if err != nil {
		return nil, err
	}
	upd, err := postgres.NewUpdate(db.pool, cfg)
	if err != nil {
		return nil, err
	}
	pl.upd = &countingEffect{BatchEffect: upd}
	exec := intent.NewExecutor()
	reg := memeffects.NewRegistry(memeffects.RegistryConfig{})
	for _, id := range pl.nodes {
		in := intent.Intent{Type: registration.IntentConsulReg, Target: id.String(),
			Payload: &registration.ConsulRegister{NodeID: id, NodeType: "effect", NodeVersion: "1.0.0", Generation: 1}}
		if _, err := reg.Execute(ctx, in); err != nil {
			return nil, err
		}
	}
	for typ, eff := range map[string]intent.IntentEffect{
		registration.IntentUpsert: up, registration.IntentUpdate: pl.upd,
		registration.IntentConsulReg: reg, registration.IntentConsulDereg: reg, registration.IntentConsulPassTTL: reg,
	} {
		if err := exec.Register(typ, eff); err != nil {
			return nil, err
		}
	}
	return exec, nil
}

// round sends n heartbeats through the pipeline and returns heartbeats per
// second from the first publish until the Runtime handled the last one. The
// messages are encoded before the clock starts; each node's heartbeats are
// published by one goroutine, in order, ten simulated seconds apart, so
// every one of them applies. With record, the round's batch sizes are kept
// for the table.
func (pl *pipeline) round(ctx context.Context, db *benchDB, n int, record bool) (float64, error) {
	byPub := make([][]*bus.Message, pl.pubs)
	for k := range n {
		i := k % len(pl.nodes)
		m, err := pl.heartbeat(i)
		if err != nil {
			return 0, err
		}
		byPub[i%pl.pubs] = append(byPub[i%pl.pubs], m)
	}
	if err := db.vacuum(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, runtimeTimeout)
	defer cancel()
	before := pl.rt.Stats()
	b0, m0 := pl.bus.batches.Load(), pl.bus.msgs.Load()
	c0, i0 := pl.upd.calls.Load(), pl.upd.intents.Load()
	want := before.Handled + int64(n)

	cpu0, pg0 := cpuTime(), postgresCPU()
	start := time.Now()
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- fanOut(pl.pubs, pl.pubs, func(from, to int) error {
			for g := from; g < to; g++ {
				msgs := byPub[g]
				for len(msgs) > 0 {
					k := min(pl.perCall, len(msgs))
					if err := pl.bus.Publish(ctx, msgs[:k]...); err != nil {
						return err
					}
					msgs = msgs[k:]
				}
			}
			return nil
		})
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	published := false
	for !published || pl.rt.Stats().Handled < want {
		select {
		case err := <-pubErr:
			if err != nil {
				return 0, fmt.Errorf("publish: %w", err)
			}
			published = true
		case <-tick.C:
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d heartbeats handled: %w", pl.rt.Stats().Handled-before.Handled, n, ctx.Err())
		}
	}
	elapsed := time.Since(start)
	goCPU, pgCPU := cpuTime()-cpu0, postgresCPU()-pg0

	after := pl.rt.Stats()
	if err := checkStats(before, after); err != nil {
		return 0, err
	}
	if record {
		pl.batches = append(pl.batches, float64(pl.bus.batches.Load()-b0))
		pl.msgs = append(pl.msgs, float64(pl.bus.msgs.Load()-m0))
		pl.dbCalls = append(pl.dbCalls, float64(pl.upd.calls.Load()-c0))
		pl.dbIntents = append(pl.dbIntents, float64(pl.upd.intents.Load()-i0))
		pl.goCPU = append(pl.goCPU, float64(goCPU)/float64(time.Microsecond)/float64(n))
		pl.pgCPU = append(pl.pgCPU, float64(pgCPU)/float64(time.Microsecond)/float64(n))
	}
	return float64(n) / elapsed.Seconds(), nil
}

// checkStats fails a round in which a heartbeat did not apply: the
// benchmark would then measure something else than the heartbeat path.
func checkStats(before, after registrar.Stats) error {
	var errs []error
	if d := after.NoOps - before.NoOps; d > 0 {
		errs = append(errs, fmt.Errorf("%d heartbeats were no-ops", d))
	}
	if d := after.IntentsSkipped - before.IntentsSkipped; d > 0 {
		errs = append(errs, fmt.Errorf("%d intents changed nothing", d))
	}
	if d := after.DeadLettered - before.DeadLettered; d > 0 {
		errs = append(errs, fmt.Errorf("%d heartbeats were dead-lettered", d))
	}
	if d := after.Retries - before.Retries; d > 0 {
		errs = append(errs, fmt.Errorf("%d retries", d))
	}
	return errors.Join(errs...)
}

// heartbeat encodes the next heartbeat of node i, keyed by the node's id.
func (pl *pipeline) heartbeat(i int) (*bus.Message, error) {
	pl.beats[i]++
	// Nodes are spread over three phases, so that in every round a third
	// of them enter a new third of the TTL.
	at := pgBase.Add(time.Duration(pl.beats[i]+i%3)*heartbeatEvery + time.Duration(i)*time.Microsecond)
	id := pl.nodes[i]
	payload, err := json.Marshal(&registration.Heartbeat{NodeID: id, NodeType: "effect", NodeVersion: "1.0.0",
		UptimeSeconds: at.Sub(pgBase).Seconds(), Timestamp: at})
	if err != nil {
		return nil, err
	}
	env := &bus.Envelope{EnvelopeID: uuid.New(), EnvelopeTimestamp: at, CorrelationID: uuid.New(),
		EventType: registration.EventTypeHeartbeat, SourceTool: "bench-node", Payload: payload}
	return bus.EnvelopeMessage(pl.topic, env, bus.WithKey([]byte(id.String())))
}

// batchNote says how large the micro-batches were: messages per HandleBatch
// call, and update intents per ExecuteBatch round trip.
func (pl *pipeline) batchNote() string {
	var perBatch, perCall []float64
	for i := range pl.batches {
		if pl.batches[i] > 0 {
			perBatch = append(perBatch, pl.msgs[i]/pl.batches[i])
		}
		if pl.dbCalls[i] > 0 {
			perCall = append(perCall, pl.dbIntents[i]/pl.dbCalls[i])
		}
	}
	return fmt.Sprintf("micro-batch %.0f msgs, %.0f updates per DB call; CPU/heartbeat: Go %.1f µs, Postgres %.1f µs",
		median(perBatch), median(perCall), median(pl.goCPU), median(pl.pgCPU))
}

// countingBus is an event bus that counts the batches its batch
// subscriptions hand out.
type countingBus struct {
	bus.EventBus
	batches, msgs atomic.Int64
}

var _ bus.BatchSubscriber = (*countingBus)(nil)

func newCountingBus(b bus.EventBus) *countingBus { return &countingBus{EventBus: b} }

// SubscribeBatch subscribes h through the wrapped bus, counting every
// batch and its messages. It fails if the wrapped bus cannot batch.
func (c *countingBus) SubscribeBatch(ctx context.Context, group string, topics []string, h bus.BatchHandler, opts ...bus.SubscribeOption) error {
	bs, ok := c.EventBus.(bus.BatchSubscriber)
	if !ok {
		return errors.New("bench: bus cannot batch")
	}
	return bs.SubscribeBatch(ctx, group, topics, func(ctx context.Context, msgs []*bus.Message) error {
		c.batches.Add(1)
		c.msgs.Add(int64(len(msgs)))
		return h(ctx, msgs)
	}, opts...)
}

// countingEffect is a batch effect that counts its calls and intents.
type countingEffect struct {
	intent.BatchEffect
	calls, intents atomic.Int64
}

// Execute counts one call of one intent.
func (c *countingEffect) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	c.calls.Add(1)
	c.intents.Add(1)
	return c.BatchEffect.Execute(ctx, in)
}

// ExecuteBatch counts one call of len(ins) intents.
func (c *countingEffect) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	c.calls.Add(1)
	c.intents.Add(int64(len(ins)))
	return c.BatchEffect.ExecuteBatch(ctx, ins)
}
