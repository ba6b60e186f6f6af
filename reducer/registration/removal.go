package registration

import (
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// removalGuard: what a removal read that another writer can change. The
// generation and updated_at tell this registration, as the decision saw
// it, from a later one or one a newer node message changed (a heartbeat, a
// refresh); the node type is what the consul.deregister names.
const removalGuard = ColGeneration | ColUpdatedAt | ColNodeType

// shutdown decides a node's shutdown announcement (already known to be
// newer than the projection's updated_at): a known node, in any state, is
// removed. The decision deletes the projection (guarded by what it read),
// deregisters the node from Consul when it may be registered there (it
// was registered on activation: active, ack_received), and, unless
// snapshots are disabled, ends with a tombstone of the node on the
// snapshot topic. ONEX's orchestrator handles no shutdown and emits no
// event for one; neither does this reducer: the tombstone is what readers
// of the registry see.
//
// A shutdown of an unknown node is a no-op, and not a warning: a node
// announces its shutdown once per stop, the announcement may be delivered
// twice, and a node that never registered may stop too.
func (r *Reducer) shutdown(p *Projection, env *bus.Envelope, ev *Shutdown) reducer.Decision {
	if p == nil {
		return reducer.Decision{Reason: "shutdown of an unknown node: nothing to remove"}
	}
	corr := ev.CorrelationID
	if corr == [16]byte{} {
		corr = env.CorrelationID
	}
	d := reducer.Decision{
		Reason: "node shut down (" + shutdownReason(ev) + "): registration removed",
		Intents: []intent.Intent{{
			Type: IntentDelete, Target: postgresTarget(p.EntityID), CorrelationID: corr,
			Payload: &DeleteRegistration{
				EntityID: p.EntityID, Domain: p.Domain, ExpectedState: p.State, CorrelationID: corr,
				Guard:    removalGuard,
				Expected: Projection{Generation: p.Generation, UpdatedAt: p.UpdatedAt, NodeType: p.NodeType},
			},
		}},
	}
	if !r.cfg.DisableConsul && (p.State == StateActive || p.State == StateAckReceived) {
		d.Intents = append(d.Intents, r.consulDeregister(p, corr))
	}
	if !r.cfg.DisableSnapshots {
		d.Events = append(d.Events, reducer.Event{Topic: r.cfg.Topics.Snapshot, Type: EventSnapshot, EntityID: p.EntityID, Tombstone: true})
	}
	return d
}

func shutdownReason(ev *Shutdown) string {
	if ev.Reason == "" {
		return "no reason given"
	}
	return ev.Reason
}
