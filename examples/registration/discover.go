package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	registrar "github.com/registrar-go/registrar"
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
