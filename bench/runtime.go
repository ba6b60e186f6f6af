package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/dispatch"
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
	store   *storeCounters
	nodes   []uuid.UUID
	beats   []int // heartbeats sent so far, by node index
	topic   string
	pubs    int
	perCall int

	// Per measured round: HandleBatch calls and their messages, the
	// store's Commit calls, their writes and its LoadMany calls, and CPU
	// per heartbeat (µs) of this process and of the Postgres server.
	batches, msgs, commits, writes, loads []float64
	// commitShare is the time spent in Commit (summed over the
	// partitions' handlers) over the round's time: how many commits were
	// in flight on average.
	commitShare  []float64
	goCPU, pgCPU []float64
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
	newPipeline := func(name string, b bus.EventBus, nodeCount, pubs, perCall int, extra []registrar.Option) (*pipeline, error) {
		nodes, err := db.seed(ctx, name+"-", nodeCount)
		if err != nil {
			return nil, err
		}
		pgStore, err := postgres.NewStore(db.pool, postgres.StoreConfig{Schema: db.schema})
		if err != nil {
			return nil, err
		}
		store := &countingStore{Store: pgStore}
		pl := &pipeline{name: name, bus: newCountingBus(b), store: &store.storeCounters, nodes: nodes, beats: make([]int, len(nodes)),
			topic: hbTopic, pubs: pubs, perCall: perCall}
		exec, err := registrationEffects(ctx, db, pl)
		if err != nil {
			return nil, err
		}
		opts := append([]registrar.Option{registrar.WithGroup("bench-runtime-" + name)}, extra...)
		pl.rt, err = registrar.NewRegistration(c, pl.bus, store, exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
		return pl, err
	}
	// Each pipeline has a bus of its own: the memory buses default to 12
	// partitions, the Kafka bus creates its topics with 12.
	var pipelines []*pipeline
	for _, spec := range []struct {
		name       string
		kafka      bool
		heartbeats int
		pubs, per  int
		opts       []registrar.Option
	}{
		{"memory", false, rp.memHeartbeats, rp.publishers, 1, nil},
		{"memory-nocache", false, rp.memHeartbeats, rp.publishers, 1, []registrar.Option{registrar.WithStateCache(0)}},
		{"kafka", true, rp.kafkaHeartbeats, rp.kafkaPublishers, 256, nil},
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
		pl, err := newPipeline(spec.name, b, spec.heartbeats, spec.pubs, spec.per, spec.opts)
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
	mem, noCache, kfk := pipelines[0], pipelines[1], pipelines[2]
	raw, err := newRawUnnest(ctx, db, rp.memHeartbeats)
	if err != nil {
		return err
	}
	cs := []contender{
		{name: "raw UPDATE ... FROM unnest, same rows", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return raw.round(ctx, db)
		}},
		{name: "memory bus → Postgres", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return mem.round(ctx, db, rp.memHeartbeats, true)
		}},
		{name: "kfake → Postgres", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return kfk.round(ctx, db, rp.kafkaHeartbeats, true)
		}},
		{name: "memory bus → Postgres, no state cache", unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
			return noCache.round(ctx, db, rp.memHeartbeats, true)
		}},
	}
	res, err := interleave(ctx, o, p, "runtime", false, cs)
	if err != nil {
		return err
	}
	rawRes, memRes, kfkRes, noCacheRes := res[0], res[1], res[2], res[3]
	vsRaw, kfkVsMem := pairedRatio(memRes, rawRes), pairedRatio(kfkRes, memRes)
	t.add(row{Bench: "runtime", Contender: "Runtime, memory bus → Postgres", Figure: rate(median(memRes), "heartbeats/s"), Spread: spread(memRes),
		Ratio: ratioText(vsRaw, "raw-unnest"), Target: "≥ 0.9x", Result: t.check("runtime memory→Postgres ≥ 0.9x raw unnest", vsRaw >= 0.9),
		Note: joinNotes(fmt.Sprintf("default WithBatch (%d, no wait)", registrar.DefaultBatchSize), fmt.Sprintf("%d nodes, 1 heartbeat each per round", rp.memHeartbeats), mem.batchNote())})
	t.add(row{Contender: "raw UPDATE ... FROM unnest, same rows", Figure: rate(median(rawRes), "heartbeats/s"), Spread: spread(rawRes),
		Note: fmt.Sprintf("%d other rows of the same table, %d goroutines (one per partition) over the Runtime's pool, batches of %d; CPU/heartbeat: Go %.1f µs, Postgres %.1f µs",
			rp.memHeartbeats, rawPartitions, registrar.DefaultBatchSize, median(raw.goCPU), median(raw.pgCPU))})
	t.add(row{Contender: "Runtime, kfake → Postgres", Figure: rate(median(kfkRes), "heartbeats/s"), Spread: spread(kfkRes),
		Ratio: ratioText(kfkVsMem, "memory bus"), Target: "≥ 0.8x", Result: t.check("runtime kfake→Postgres ≥ 0.8x memory bus", kfkVsMem >= 0.8),
		Note: joinNotes("default WithBatch", fmt.Sprintf("%d nodes, 1 heartbeat each per round", rp.kafkaHeartbeats), kfk.batchNote())})
	t.add(row{Contender: "Runtime, memory bus → Postgres, WithStateCache(0)", Figure: rate(median(noCacheRes), "heartbeats/s"), Spread: spread(noCacheRes),
		Ratio: ratioText(pairedRatio(memRes, noCacheRes), "cache's gain"), Note: joinNotes("every micro-batch reads its states and the outbox", noCache.batchNote())})
	return nil
}

// rawPartitions is how many goroutines the raw statement runs on: as many
// as the memory bus has partitions, each a Runtime handler.
const rawPartitions = 12

// rawUnnest is the database's own ceiling for the end-to-end benchmark: the
// hand-written heartbeat UPDATE ... FROM unnest on as many rows as the
// memory pipeline has, split as the Runtime splits them (by partition, in
// batches of the default micro-batch), with nothing of registrar around it.
type rawUnnest struct {
	ids          []uuid.UUID
	beats        int
	sql          string
	goCPU, pgCPU []float64 // per round, µs per heartbeat
}

func newRawUnnest(ctx context.Context, db *benchDB, n int) (*rawUnnest, error) {
	ids, err := db.seed(ctx, "raw-", n)
	if err != nil {
		return nil, err
	}
	return &rawUnnest{ids: ids, sql: db.rawHeartbeatSQL()}, nil
}

// round heartbeats every row once and returns rows per second.
func (r *rawUnnest) round(ctx context.Context, db *benchDB) (float64, error) {
	r.beats++
	type arrays struct {
		ids           [][16]byte
		hbs, dls, uas []time.Time
	}
	parts := make([][]int, rawPartitions)
	for i, id := range r.ids {
		k := bus.KeyPartition([]byte(id.String()), rawPartitions)
		parts[k] = append(parts[k], i)
	}
	batches := make([][]arrays, rawPartitions)
	for k, idx := range parts {
		for len(idx) > 0 {
			n := min(registrar.DefaultBatchSize, len(idx))
			a := arrays{ids: make([][16]byte, n), hbs: make([]time.Time, n), dls: make([]time.Time, n)}
			for j, i := range idx[:n] {
				at := pgBase.Add(time.Duration(r.beats)*heartbeatEvery + time.Duration(i)*time.Microsecond)
				a.ids[j], a.hbs[j], a.dls[j] = r.ids[i], at, at.Add(90*time.Second)
			}
			a.uas = a.hbs
			batches[k] = append(batches[k], a)
			idx = idx[n:]
		}
	}
	if err := db.vacuum(ctx); err != nil {
		return 0, err
	}
	// The round's messages were built just now: collect that garbage
	// before the clock starts, so that the round pays only for its own.
	runtime.GC()
	cpu0, pg0 := cpuTime(), postgresCPU()
	start := time.Now()
	err := fanOut(rawPartitions, rawPartitions, func(from, to int) error {
		for k := from; k < to; k++ {
			for _, a := range batches[k] {
				tag, err := db.pool.Exec(ctx, r.sql, a.ids, a.hbs, a.dls, a.uas)
				if err != nil {
					return err
				}
				if int(tag.RowsAffected()) != len(a.ids) {
					return fmt.Errorf("raw unnest updated %d rows, want %d", tag.RowsAffected(), len(a.ids))
				}
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	n := float64(len(r.ids))
	r.goCPU = append(r.goCPU, float64(cpuTime()-cpu0)/float64(time.Microsecond)/n)
	r.pgCPU = append(r.pgCPU, float64(postgresCPU()-pg0)/float64(time.Microsecond)/n)
	return n / elapsed.Seconds(), nil
}

// registrationEffects returns the executor of pl's Runtime: the Postgres
// upsert and update, and an in-memory registry for the consul.* intents in
// which pl's nodes are registered, as the Runtime would have registered them
// when they became active. The registry is registered as effects/consul
// registers the agent (memory.RegisterEffects does the same): the TTL pass
// is volatile, so a heartbeat's decision has no outbox record.
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
	return newExecutor(ctx, pl, up, upd)
}

// newExecutor returns the executor of pl's Runtime: up for the upserts,
// upd for the updates, and an in-memory registry for the consul.* intents
// in which pl's nodes are registered, as registrationEffects describes.
func newExecutor(ctx context.Context, pl *pipeline, up, upd intent.IntentEffect) (*intent.Executor, error) {
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
		registration.IntentUpsert: up, registration.IntentUpdate: upd,
	} {
		if err := exec.Register(typ, eff); err != nil {
			return nil, err
		}
	}
	if err := memeffects.RegisterEffects(exec, nil, reg); err != nil {
		return nil, err
	}
	return exec, nil
}

// round sends n heartbeats through the pipeline and returns heartbeats per
// second from the first publish until the Runtime handled the last one. The
// messages are encoded before the clock starts; each node's heartbeats are
// published by one goroutine, in order, ten simulated seconds apart, so
// every one of them applies. With record, the round's batch sizes are kept
// for the table. A nil db is a pipeline into the memory store: nothing to
// vacuum.
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
	if db != nil {
		if err := db.vacuum(ctx); err != nil {
			return 0, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, runtimeTimeout)
	defer cancel()
	before := pl.rt.Stats()
	b0, m0 := pl.bus.batches.Load(), pl.bus.msgs.Load()
	c0, w0, l0 := pl.store.commits.Load(), pl.store.writes.Load(), pl.store.loads.Load()
	cn0 := pl.store.commitNanos.Load()
	want := before.Handled + int64(n)

	// The round's messages were built just now: collect that garbage
	// before the clock starts, so that the round pays only for its own.
	runtime.GC()
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
		pl.commits = append(pl.commits, float64(pl.store.commits.Load()-c0))
		pl.writes = append(pl.writes, float64(pl.store.writes.Load()-w0))
		pl.loads = append(pl.loads, float64(pl.store.loads.Load()-l0))
		pl.commitShare = append(pl.commitShare, float64(pl.store.commitNanos.Load()-cn0)/float64(elapsed))
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
	var perBatch, perCommit []float64
	for i := range pl.batches {
		if pl.batches[i] > 0 {
			perBatch = append(perBatch, pl.msgs[i]/pl.batches[i])
		}
		if pl.commits[i] > 0 {
			perCommit = append(perCommit, pl.writes[i]/pl.commits[i])
		}
	}
	return fmt.Sprintf("micro-batch %.0f msgs, %.0f writes per Commit, %.1f commits in flight, %.0f LoadMany calls per round; CPU/heartbeat: Go %.1f µs, Postgres %.1f µs",
		median(perBatch), median(perCommit), median(pl.commitShare), median(pl.loads), median(pl.goCPU), median(pl.pgCPU))
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

// countingStore is the Postgres store, counting its Commit calls, the
// writes they carry and its LoadMany calls.
type countingStore struct {
	*postgres.Store
	storeCounters
}

// storeCounters are a counting store's counts.
type storeCounters struct {
	commits, writes, loads atomic.Int64
	commitNanos            atomic.Int64
}

// count counts one Commit of n writes that started at start.
func (c *storeCounters) count(n int, start time.Time) {
	c.commits.Add(1)
	c.writes.Add(int64(n))
	c.commitNanos.Add(int64(time.Since(start)))
}

// Commit counts one call of len(ws) writes.
func (c *countingStore) Commit(ctx context.Context, ws []dispatch.Write) ([]dispatch.WriteResult, error) {
	defer c.count(len(ws), time.Now())
	return c.Store.Commit(ctx, ws)
}

// LoadMany counts one call.
func (c *countingStore) LoadMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*registration.Projection, error) {
	c.loads.Add(1)
	return c.Store.LoadMany(ctx, ids)
}

// countingMemoryStore is countingStore for the memory store (-scale).
type countingMemoryStore struct {
	*memeffects.Store
	storeCounters
}

// Commit counts one call of len(ws) writes.
func (c *countingMemoryStore) Commit(ctx context.Context, ws []dispatch.Write) ([]dispatch.WriteResult, error) {
	defer c.count(len(ws), time.Now())
	return c.Store.Commit(ctx, ws)
}

// LoadMany counts one call.
func (c *countingMemoryStore) LoadMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*registration.Projection, error) {
	c.loads.Add(1)
	return c.Store.LoadMany(ctx, ids)
}
