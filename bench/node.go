package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	memeffects "github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// nodeParams are the sizes of the node benchmark.
type nodeParams struct {
	nodes    int           // SDK nodes, each a node.Node running node.Run
	interval time.Duration // their heartbeat interval
	window   time.Duration // one round's measurement
}

// offered is the heartbeat rate the nodes offer, per second.
func (np nodeParams) offered() float64 { return float64(np.nodes) / np.interval.Seconds() }

// nodeTarget is the target: 10,000 SDK nodes' heartbeats per
// second, at 10,000 nodes.
const (
	nodeTarget      = 10_000.0
	nodeTargetNodes = 10_000
)

// benchNode runs np.nodes SDK nodes (package node, real clock, default
// jitter) against a registration Runtime on the memory bus (memory store
// and registry), waits until every node is active, then measures in each
// round the heartbeats the Runtime handled per second of the window.
func benchNode(ctx context.Context, o options, p *progress, t *table) error {
	np := o.node
	b, err := membus.New(membus.Config{})
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	cb := &heartbeatCounter{EventBus: b, PartitionReader: b}
	store := memeffects.NewStore(memeffects.StoreConfig{})
	exec := intent.NewExecutor()
	if err := memeffects.RegisterEffects(exec, store, memeffects.NewRegistry(memeffects.RegistryConfig{})); err != nil {
		return err
	}
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{}, registrar.WithGroup("bench-node"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	rtDone := make(chan error, 1)
	go func() { rtDone <- rt.Run(ctx) }()
	stop := func() error {
		cancel()
		wg.Wait()
		if err := <-rtDone; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	nodes := make([]*node.Node, np.nodes)
	for i := range nodes {
		nd, err := node.New(cb, node.Info{ID: uuid.New(), Type: registration.NodeTypes[i%len(registration.NodeTypes)],
			Version: bus.Version{Major: 1, Minor: 2, Patch: 3}, Endpoints: map[string]string{"health": fmt.Sprintf("http://10.1.%d.%d:8080/health", i/250, i%250+1)}},
			node.WithHeartbeat(np.interval, node.DefaultJitter), node.WithoutShutdownAnnouncement())
		if err != nil {
			_ = stop()
			return err
		}
		nodes[i] = nd
		wg.Go(func() { _ = nd.Run(ctx) })
	}
	start := time.Now()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	for _, nd := range nodes {
		if err := nd.WaitActive(wctx); err != nil {
			wcancel()
			_ = stop()
			return fmt.Errorf("waiting for %d nodes to be active: %w", np.nodes, err)
		}
	}
	wcancel()
	p.printf("node: %d nodes active after %s", np.nodes, time.Since(start).Round(time.Millisecond))
	// One interval for the heartbeats to spread over it.
	time.Sleep(np.interval)
	var sent []float64
	cs := []contender{{name: fmt.Sprintf("%d SDK nodes", np.nodes), unit: "heartbeats/s", run: func(ctx context.Context) (float64, error) {
		h0, s0, t0 := rt.Stats().Handled, cb.heartbeats(), time.Now()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(np.window):
		}
		h1, s1, el := rt.Stats().Handled, cb.heartbeats(), time.Since(t0).Seconds()
		sent = append(sent, float64(s1-s0)/el)
		return float64(h1-h0) / el, nil
	}}}
	res, err := interleave(ctx, o, p, "node", false, cs)
	var failures int64
	for _, nd := range nodes {
		failures += nd.Stats().HeartbeatFailures
	}
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	handled := median(res[0])
	r := row{Bench: "node", Contender: fmt.Sprintf("package node, %d SDK nodes, memory bus, Runtime (memory store)", np.nodes),
		Figure: rate(handled, "heartbeats/s"), Spread: spread(res[0]), Target: "≥ 10k heartbeats/s at 10k nodes"}
	note := fmt.Sprintf("handled by the Runtime per second of a %s window; the nodes published %s (offered %s: interval %s, jitter %.0f%%); %d heartbeat failures",
		np.window, rate(median(sent), "/s"), rate(np.offered(), "/s"), np.interval, 100*node.DefaultJitter, failures)
	if np.nodes >= nodeTargetNodes {
		r.Result = t.check("node ≥ 10k heartbeats/s", handled >= nodeTarget)
	} else {
		note += fmt.Sprintf("; quick mode: %d nodes offering the target's rate, the target is judged in full mode only (10,000 nodes)", np.nodes)
	}
	r.Note = note
	t.add(r)
	return nil
}

// heartbeatCounter is the nodes' bus: it counts the heartbeats they
// publish, and reads partitions as the memory bus does, so that each node
// reads only its own events.
type heartbeatCounter struct {
	bus.EventBus
	bus.PartitionReader
	n atomic.Int64
}

// Publish counts heartbeats and publishes msgs.
func (c *heartbeatCounter) Publish(ctx context.Context, msgs ...*bus.Message) error {
	for _, m := range msgs {
		if m.Topic == registration.TopicHeartbeat {
			c.n.Add(1)
		}
	}
	return c.EventBus.Publish(ctx, msgs...)
}

func (c *heartbeatCounter) heartbeats() int64 { return c.n.Load() }
