package node_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/discovery"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// lastOnKey reads the partition of key of topic from the oldest offset up
// to the high-water mark and returns the last message keyed key (nil if
// there is none).
func lastOnKey(t *testing.T, pr bus.PartitionReader, topic string, key []byte) *bus.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := pr.PartitionCount(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		last   *bus.Message
		next   int64 = -1
		caught       = make(chan struct{})
		once   sync.Once
	)
	done := func() { once.Do(func() { close(caught) }) }
	errc := make(chan error, 1)
	go func() {
		errc <- pr.ReadPartition(ctx, topic, bus.KeyPartition(key, n), func(_ context.Context, m *bus.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if string(m.Key) == string(key) {
				last = m
			}
			if m.Offset >= next-1 {
				done()
			}
			return nil
		}, bus.ReadFromOldest(), bus.WithReadStarted(func(start, hw int64) {
			mu.Lock()
			next = hw
			mu.Unlock()
			if start == hw {
				done()
			}
		}))
	}()
	select {
	case <-caught:
	case err := <-errc:
		t.Fatalf("read %s: %v", topic, err)
	case <-ctx.Done():
		t.Fatalf("read %s: timed out", topic)
	}
	cancel()
	if err := <-errc; err != nil && ctx.Err() == nil {
		t.Errorf("read %s: %v", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return last
}

// TestGracefulStopRemovesRegistration: a node registers, becomes active,
// and stops (its Run's context ends): it announces its shutdown, and the
// orchestrator removes the registration. The store's read API no longer
// has the node, the Consul deregistration ran (the memory registry lost
// the service), the snapshot topic's last message for the node is a
// tombstone, and a discovery client following the topic reports Removed
// and forgets the node. The node passed through shutting_down, counts one
// shutdown, and introspects from scratch when it runs again.
func TestGracefulStopRemovesRegistration(t *testing.T) {
	gracefulStop(t, newWorld(t, newMemBus(t, 0), false))
}

// TestGracefulStopRemovesRegistrationKafka is
// TestGracefulStopRemovesRegistration on Kafka's wire protocol (kfake),
// spoken by sarama.
func TestGracefulStopRemovesRegistrationKafka(t *testing.T) {
	c := kafkatest.Start(t)
	gracefulStop(t, newWorld(t, c.NewBus(t), false))
}

func gracefulStop(t *testing.T, w *world) {
	pr := w.bus.(bus.PartitionReader)

	dc, err := discovery.New(w.bus)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan error, 1)
	go func() { ddone <- dc.Run(dctx) }()
	defer func() {
		dcancel()
		if err := <-ddone; err != nil {
			t.Errorf("discovery: %v", err)
		}
	}()
	<-dc.Ready()
	changes := dc.Watch(dctx)

	inf := info(1)
	var mu sync.Mutex
	var states []node.State
	nd, err := node.New(w.bus, inf, node.WithClock(w.clock), node.WithStateChange(func(_, to node.State) {
		mu.Lock()
		states = append(states, to)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	if err := nd.WaitActive(ctx); err != nil {
		t.Fatal(err)
	}
	serviceID := registration.ServiceID(inf.Type, inf.ID)
	w.waitFor("the node active in the store, Consul and discovery", func() bool {
		p, err := w.store.Get(context.Background(), inf.ID)
		_, inConsul := w.registry.Get(serviceID)
		dn, seen := dc.Get(inf.ID)
		return err == nil && p.State == registration.StateActive && inConsul && seen && dn.State == registration.StateActive
	})

	w.clock.Advance(time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	if s := nd.State(); s != node.StateStopped {
		t.Errorf("state after Run returned: %v", s)
	}
	if st := nd.Stats(); st.Shutdowns != 1 || st.ShutdownFailures != 0 {
		t.Errorf("stats %+v: want one shutdown announced", st)
	}
	mu.Lock()
	tail := slices.Clone(states[max(len(states)-2, 0):])
	mu.Unlock()
	if !slices.Equal(tail, []node.State{node.StateShuttingDown, node.StateStopped}) {
		t.Errorf("last states %v, want shutting_down then stopped", tail)
	}

	w.waitFor("the registration removed", func() bool {
		_, err := w.store.Get(context.Background(), inf.ID)
		return errors.Is(err, registration.ErrNotFound)
	})
	if p, err := w.store.Load(context.Background(), inf.ID); p != nil || err != nil {
		t.Errorf("Load after removal: %+v, %v", p, err)
	}
	counts, err := w.store.CountByState(context.Background())
	if err != nil || len(counts) != 0 {
		t.Errorf("CountByState after removal: %v, %v", counts, err)
	}
	w.waitFor("the Consul deregistration", func() bool {
		_, ok := w.registry.Get(serviceID)
		return !ok
	})

	deadline := time.After(time.Minute)
	for removed := false; !removed; {
		select {
		case ch := <-changes:
			removed = ch.Kind == discovery.Removed && ch.Node.ID == inf.ID
		case <-deadline:
			t.Fatal("the discovery client reported no Removed for the node")
		}
	}
	if n, ok := dc.Get(inf.ID); ok {
		t.Errorf("the discovery client still has the node: %+v", n)
	}
	last := lastOnKey(t, pr, registration.TopicSnapshot, []byte(inf.ID.String()))
	if last == nil || last.Value != nil {
		t.Errorf("last snapshot message for the node: %+v, want a tombstone", last)
	}

	// Run again: the node registers from scratch (generation 1, acked).
	again, err := node.New(w.bus, inf, node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.run(again)
	w.waitFor("the node active again", func() bool { return again.State() == node.StateActive })
	if st := again.Stats(); st.Acks != 1 {
		t.Errorf("re-registration after removal: %+v, want an ack (a new registration)", st)
	}
	p, err := w.store.Get(context.Background(), inf.ID)
	if err != nil || p.Generation != 1 {
		t.Errorf("store after re-registration: %+v, %v; want generation 1", p, err)
	}
}

// failShutdownBus fails every publish to the shutdown topic.
type failShutdownBus struct {
	readerBus
	tries sync.Map // topic → struct{}
}

func (b *failShutdownBus) Publish(ctx context.Context, msgs ...*bus.Message) error {
	for _, m := range msgs {
		if m.Topic == registration.TopicShutdown {
			b.tries.Store(m.Topic, struct{}{})
			return errors.New("broker unavailable")
		}
	}
	return b.readerBus.Publish(ctx, msgs...)
}

// TestShutdownAnnouncementBoundedAndOptional: an announcement the bus
// refuses is retried only for the shutdown timeout, then counted as a
// failure (the registration stays, to expire by liveness);
// WithoutShutdownAnnouncement sends none; and a Run whose context ends
// before it introspected announces nothing. A non-positive timeout is an
// error of New.
func TestShutdownAnnouncementBoundedAndOptional(t *testing.T) {
	w := newWorld(t, newMemBus(t, 0), false)
	rb := w.bus.(readerBus)
	fb := &failShutdownBus{readerBus: rb}

	runAndStop := func(b bus.EventBus, inf node.Info, opts ...node.Option) (*node.Node, time.Duration) {
		t.Helper()
		nd, err := node.New(b, inf, append([]node.Option{node.WithClock(w.clock)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- nd.Run(ctx) }()
		if err := nd.WaitActive(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		return nd, time.Since(start)
	}

	failing := info(2)
	nd, took := runAndStop(fb, failing, node.WithShutdownTimeout(150*time.Millisecond))
	if st := nd.Stats(); st.Shutdowns != 0 || st.ShutdownFailures != 1 {
		t.Errorf("refused announcement: stats %+v, want one failure", st)
	}
	if _, tried := fb.tries.Load(registration.TopicShutdown); !tried {
		t.Error("the node did not try to announce its shutdown")
	}
	if took < 150*time.Millisecond || took > 10*time.Second {
		t.Errorf("Run returned %v after its context ended, want about the 150ms timeout", took)
	}

	quiet := info(3)
	nd, _ = runAndStop(w.bus, quiet, node.WithoutShutdownAnnouncement())
	if st := nd.Stats(); st.Shutdowns != 0 || st.ShutdownFailures != 0 {
		t.Errorf("WithoutShutdownAnnouncement: stats %+v", st)
	}
	w.settle()
	for _, id := range []uuid.UUID{failing.ID, quiet.ID} {
		if p, err := w.store.Get(context.Background(), id); err != nil || p.State != registration.StateActive {
			t.Errorf("registration of %s without an announcement: %+v, %v; want it active", id, p, err)
		}
	}

	early, err := node.New(w.bus, info(4), node.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := early.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if st := early.Stats(); st.Shutdowns != 0 || st.Introspections != 0 {
		t.Errorf("a Run that never introspected: %+v", st)
	}

	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := node.New(w.bus, info(5), node.WithShutdownTimeout(d)); err == nil {
			t.Errorf("WithShutdownTimeout(%v) accepted", d)
		}
	}
}
