package discovery_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestKafka: on Kafka's wire protocol (kfake, sarama): a client catches up
// with a workload and is Ready with the model's view; it follows new
// snapshots and tombstones; a client started mid-stream and one started at
// the end converge to the same view; canceling Run returns nil, closing the
// bus ends it with bus.ErrClosed.
func TestKafka(t *testing.T) {
	n := 150
	if testing.Short() {
		n = 40
	}
	c := kafkatest.Start(t)
	b := c.NewBus(t)
	msgs, want := workload(t, n, 3)
	half := len(msgs) / 2
	publish(t, b, msgs[:half]...)

	early := start(t, b)
	early.waitReady(t)
	wantHalf := model{}
	for _, m := range msgs[:half] {
		// Replay the first half into a model of its own.
		s, tomb, err := registration.DecodeSnapshot(m)
		if err != nil {
			t.Fatal(err)
		}
		if tomb {
			id, _ := registration.DecodeSnapshotKey(m.Key)
			delete(wantHalf, id)
			continue
		}
		wantHalf.put(spec{id: s.EntityID, typ: s.NodeType, state: s.State, version: s.Version})
	}
	if err := wantHalf.check(early.List()); err != nil {
		t.Fatalf("at Ready after the first half: %v", err)
	}

	mid := start(t, b) // reads while the second half is published
	// In a few calls: a publish waits behind the readers' fetches on the
	// bus's broker connections.
	step := (len(msgs) - half + 2) / 3
	for i := half; i < len(msgs); i += step {
		publish(t, b, msgs[i:min(i+step, len(msgs))]...)
	}
	mid.waitReady(t)
	late := start(t, b)
	late.waitReady(t)
	if err := want.check(late.List()); err != nil {
		t.Fatalf("late client at Ready: %v", err)
	}
	for name, cl := range map[string]*running{"early": early, "mid": mid} {
		eventually(t, name+" client converged", func() bool { return want.check(cl.List()) == nil })
		// Fewer readers, faster publishes: each partition read has a
		// consumer of its own, whose fetches the bus's produce requests
		// queue behind.
		if err := cl.stop(t); err != nil {
			t.Fatalf("%s client: Run = %v after its context ended, want nil", name, err)
		}
	}

	// Follow: one more node, then its tombstone.
	id := uuid.New()
	publish(t, b, snapMsg(t, spec{id: id, typ: "type-0", state: registration.StateActive, version: 1}))
	eventually(t, "the new node", func() bool { _, ok := late.Get(id); return ok })
	publish(t, b, tombMsg(id))
	eventually(t, "the new node removed", func() bool { _, ok := late.Get(id); return !ok })

	_ = b.Close()
	<-late.done
	if !errors.Is(late.err, bus.ErrClosed) {
		t.Fatalf("Run = %v after the bus closed, want bus.ErrClosed", late.err)
	}
}
