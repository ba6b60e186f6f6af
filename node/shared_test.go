package node_test

import (
	"testing"

	"github.com/registrar-go/registrar/node"
)

// TestSharedReads: nodes on shared reads register and become active as
// nodes with reads of their own do, with one bus read per topic partition
// in all rather than one per node and topic, and each node is handed only
// the messages keyed for it.
func TestSharedReads(t *testing.T) {
	const partitions = 4
	b := newMemBus(t, partitions)
	sr := node.NewSharedReads(b, nil)
	t.Cleanup(func() { _ = sr.Close() })
	w := newWorld(t, b, false)
	nodes := w.start(100, node.WithSharedReads(sr))
	w.waitFor("every node active", all(nodes, node.StateActive))
	w.settle()
	// Four event topics and the registry request topic, of four
	// partitions each: at most 20 reads, however many nodes.
	if got := b.Readers(); got == 0 || got > 5*partitions {
		t.Fatalf("%d partition reads for %d nodes, want 1 to %d", got, len(nodes), 5*partitions)
	}
	for _, nd := range nodes {
		st := nd.Stats()
		if st.Activations != 1 || st.Events == 0 {
			t.Fatalf("node %s: %+v, want 1 activation and its events", nd.Info().ID, st)
		}
		if st.MessagesRead != st.Events {
			t.Fatalf("node %s was handed %d messages for %d of its own events: others' messages reached it", nd.Info().ID, st.MessagesRead, st.Events)
		}
	}
	// Stopped nodes leave the shared reads; the reads go on until Close.
	w.stopNodes()
	if got := b.Readers(); got == 0 {
		t.Fatal("the shared reads ended with the nodes, want them to go on until Close")
	}
	if err := sr.Close(); err != nil {
		t.Fatal(err)
	}
	if got := b.Readers(); got != 0 {
		t.Fatalf("%d partition reads after Close, want 0", got)
	}
}
