package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	registrar "github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/reducer/registration"
)

// discovered is what a discovery client reading the snapshot topic sees,
// checked against the store.
type discovered struct {
	nodes  int // this run's nodes in the client's view
	active int // of them active
	others int // nodes of earlier runs on a shared (Kafka) topic
}

// discover starts a discovery client on the snapshot topic, waits until it
// caught up, and checks that its view of every node in the store is the
// store's: same state, generation, type and version, and no node of the
// store missing. Nodes the store does not hold are counted as others: on
// Kafka the topic keeps earlier runs' snapshots.
func (s *simulation) discover(ctx context.Context) (discovered, error) {
	if s.live != nil {
		return s.live.discover(ctx, s)
	}
	topic := registrar.SnapshotTopic(s.w.contract)
	if topic == "" {
		return discovered{}, errors.New("the contract publishes no snapshots")
	}
	c, err := discovery.New(s.w.bus, discovery.WithTopic(topic))
	if err != nil {
		return discovered{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		return discovered{}, fmt.Errorf("discovery client: %w", err)
	case <-ctx.Done():
		err := ctx.Err()
		if rerr := <-done; rerr != nil {
			err = errors.Join(err, rerr)
		}
		return discovered{}, fmt.Errorf("discovery client not caught up: %w", err)
	}
	d, err := s.compare(ctx, c)
	cancel()
	if rerr := <-done; rerr != nil && err == nil {
		err = fmt.Errorf("discovery client: %w", rerr)
	}
	return d, err
}

// compare checks c's view against the store; see discover.
func (s *simulation) compare(ctx context.Context, c *discovery.Client) (discovered, error) {
	all, err := registration.ListAll(ctx, s.w.store, registration.Query{Limit: registration.MaxListLimit})
	if err != nil {
		return discovered{}, err
	}
	var d discovered
	var diffs []string
	for _, p := range all {
		n, ok := c.Get(p.EntityID)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing from the view", p.EntityID))
			continue
		case n.State != p.State || n.Generation != p.Generation || n.Type != p.NodeType || n.Version != p.NodeVersion:
			diffs = append(diffs, fmt.Sprintf("%s: view %s gen %d %s %s, store %s gen %d %s %s", p.EntityID,
				n.State, n.Generation, n.Type, n.Version, p.State, p.Generation, p.NodeType, p.NodeVersion))
		}
		d.nodes++
		if n.State == registration.StateActive {
			d.active++
		}
	}
	d.others = c.Len() - d.nodes
	if n := len(diffs); n > 0 {
		if n > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("... and %d more", n-10))
		}
		return d, fmt.Errorf("the discovery view differs from the store for %d of %d nodes:\n%s", n, len(all), strings.Join(diffs, "\n"))
	}
	return d, nil
}

// discoveryGroup is the consumer group of the live discovery client.
const discoveryGroup = "registrar-example-discovery"

// liveDiscovery is a discovery client that reads the snapshot topic
// through a consumer group from before the first node starts. The memory
// bus has no compacted topics: its retention drops old snapshots, so a
// client that read the topic from the oldest message after the run would
// miss nodes; a group holds back retention until it handled every
// snapshot, so the client sees them all while the bus keeps only a
// bounded window.
type liveDiscovery struct {
	c      *discovery.Client
	mb     *membus.Bus
	cancel context.CancelFunc
	done   chan error
}

// groupOnly hides the bus's partition reads, so that the discovery client
// reads through a consumer group.
type groupOnly struct{ bus.EventBus }

// startDiscovery starts the live discovery client on the memory bus and
// waits until its group was assigned the topic; on other buses it does
// nothing. The world's closers stop it.
func (s *simulation) startDiscovery() error {
	mb, ok := s.w.bus.(*membus.Bus)
	topic := registrar.SnapshotTopic(s.w.contract)
	if !ok || topic == "" {
		return nil
	}
	c, err := discovery.New(groupOnly{mb}, discovery.WithTopic(topic), discovery.WithGroup(discoveryGroup))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &liveDiscovery{c: c, mb: mb, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-l.done:
		cancel()
		return fmt.Errorf("discovery client: %w", err)
	}
	s.live = l
	s.w.closers = append(s.w.closers, func() error {
		l.cancel()
		return <-l.done
	})
	return nil
}

// discover waits until the client's group handled every snapshot
// published so far, and compares its view with the store.
func (l *liveDiscovery) discover(ctx context.Context, s *simulation) (discovered, error) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		behind := int64(0)
		for _, p := range l.mb.ConsumerLag(discoveryGroup) {
			behind += p.Lag
		}
		if behind == 0 {
			break
		}
		select {
		case err := <-l.done:
			l.done <- err
			return discovered{}, fmt.Errorf("discovery client: %w", err)
		case <-ctx.Done():
			return discovered{}, fmt.Errorf("discovery client not caught up (%d snapshots behind): %w", behind, ctx.Err())
		case <-t.C:
		}
	}
	return s.compare(ctx, l.c)
}
