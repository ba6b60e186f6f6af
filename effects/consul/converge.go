package consul

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Projections is what the effect and the [Reconciler] read of the
// projection store: the node's current projection. The Stores of
// effects/memory and effects/postgres implement it.
type Projections interface {
	// Load returns the projection of entityID, or nil if there is none.
	Load(ctx context.Context, entityID uuid.UUID) (*registration.Projection, error)
}

// maxConvergeRounds bounds the rounds of one convergence: a round reads
// the projection and the agent, and writes what differs. Two rounds settle
// any single race; more mean the projection keeps changing under it, and
// the intent is retried later.
const maxConvergeRounds = 4

// nodeState is what one convergence round read of a node: its projection
// (nil: none) and the agent's services of it that registrar owns, by id.
type nodeState struct {
	proj *registration.Projection
	svcs map[string]*api.AgentService
}

// converged counts what a convergence changed, and says what the
// projection wanted at the end: the registration, or nil for none.
type converged struct {
	registered, updated, deregistered int
	want                              *api.AgentServiceRegistration
	proj                              *registration.Projection
}

// converge makes the agent's services of node equal what the node's
// projection says: the one service of an active projection, with its
// generation, type, version and address; nothing for any other state. Each
// round writes only after reading both sides, and is followed by another
// round that reads them again, so a writer that lost a race to a concurrent
// one (a stale register landing after an expiry's deregister, a stale
// deregister landing after a re-registration) sees the projection's state
// after its write and repairs what it wrote. It ends when a round finds
// nothing to change. first, if not nil, is a state read just before (by
// the reconciler's listing) and serves as the first round's read.
func (e *Effect) converge(ctx context.Context, proj Projections, node uuid.UUID, first *nodeState) (converged, error) {
	var res converged
	for round := 0; ; round++ {
		st := first
		first = nil
		if st == nil {
			var err error
			if st, err = e.readNode(ctx, proj, node); err != nil {
				return res, err
			}
		}
		res.proj = st.proj
		res.want = e.desired(st.proj)
		var stale []string
		for id := range st.svcs {
			if res.want == nil || id != res.want.ID {
				stale = append(stale, id)
			}
		}
		slices.Sort(stale)
		write := false
		if res.want != nil {
			cur := st.svcs[res.want.ID]
			write = cur == nil || !matches(cur, res.want)
		}
		if !write && len(stale) == 0 {
			return res, nil
		}
		if round == maxConvergeRounds {
			return res, intent.Retryable(fmt.Errorf(
				"registrar/consul: node %s: the services did not settle after %d rounds: its projection keeps changing", node, round))
		}
		// Make before break: a node whose type changed is registered under
		// its new id before the old one goes.
		if write {
			if err := e.put(ctx, res.want); err != nil {
				return res, e.fail("register", res.want.ID, err)
			}
			if st.svcs[res.want.ID] == nil {
				res.registered++
			} else {
				res.updated++
			}
		}
		for _, id := range stale {
			if err := e.remove(ctx, id); err != nil {
				return res, e.fail("deregister", id, err)
			}
			res.deregistered++
		}
	}
}

// readNode reads node's projection, then the agent's services of it. The
// projection is read first: a service the agent shows is then at least as
// new as the projection's reason for it. The read is bounded by Timeout
// like a request to the agent: a relay calls the effect while it holds a
// connection of the store's pool for its lease, so a read from that pool
// can wait for connections that other relays, waiting in turn, hold (see
// [Config].Projections); it fails retryable instead of waiting for good.
func (e *Effect) readNode(ctx context.Context, proj Projections, node uuid.UUID) (*nodeState, error) {
	lctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	p, err := proj.Load(lctx, node)
	cancel()
	if err != nil {
		if intent.IsRetryable(err) || intent.IsPermanent(err) {
			return nil, fmt.Errorf("registrar/consul: load the projection of %s: %w", node, err)
		}
		// A store's unmarked error is a failed read, not a fault of the
		// intent: retried.
		return nil, intent.Retryable(fmt.Errorf("registrar/consul: load the projection of %s: %w", node, err))
	}
	svcs, err := e.list(ctx, nodeFilter(node))
	if err != nil {
		return nil, e.fail("list the services of node", node.String(), err)
	}
	return &nodeState{proj: p, svcs: svcs}, nil
}

// ownedFilter selects the services registrar registered (Consul's filter
// expression language over the agent's services).
const ownedFilter = `Meta.` + MetaRegisteredBy + ` == "` + RegisteredBy + `" and "onex" in Tags`

// nodeFilter selects the services registrar registered for node.
func nodeFilter(node uuid.UUID) string {
	return ownedFilter + ` and Meta.` + MetaNodeID + ` == "` + node.String() + `"`
}

// list returns the agent's services that filter selects, by id.
func (e *Effect) list(ctx context.Context, filter string) (map[string]*api.AgentService, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	return e.agent.ServicesWithFilterOpts(filter, (&api.QueryOptions{}).WithContext(ctx))
}

// put registers reg with the agent, replacing a service of the same id and
// its check.
func (e *Effect) put(ctx context.Context, reg *api.AgentServiceRegistration) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	return e.agent.ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
}

// remove deregisters the service id; a service that is not there is no
// error.
func (e *Effect) remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := e.agent.ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx)); err != nil && !notFound(err) {
		return err
	}
	return nil
}

// desired returns the registration an active projection p wants, or nil
// for a projection in any other state (or none).
func (e *Effect) desired(p *registration.Projection) *api.AgentServiceRegistration {
	if p == nil || p.State != registration.StateActive || p.NodeType == "" {
		return nil
	}
	return e.registration(&registration.ConsulRegister{NodeID: p.EntityID, NodeType: p.NodeType,
		NodeVersion: p.NodeVersion, Endpoints: p.Endpoints, Generation: p.Generation})
}

// registration returns the agent registration of p: name, id, tags,
// address, meta and the TTL check, passing.
func (e *Effect) registration(p *registration.ConsulRegister) *api.AgentServiceRegistration {
	id := registration.ServiceID(p.NodeType, p.NodeID)
	host, port := registration.ServiceAddress(p.Endpoints)
	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    registration.ServiceName(p.NodeType),
		Tags:    registration.ServiceTags(p.NodeType),
		Address: host,
		Port:    port,
		Meta: map[string]string{
			MetaNodeID:       p.NodeID.String(),
			MetaNodeVersion:  p.NodeVersion,
			MetaGeneration:   strconv.FormatInt(p.Generation, 10),
			MetaRegisteredBy: RegisteredBy,
		},
		Check: &api.AgentServiceCheck{
			CheckID:                        CheckID(id),
			Name:                           "registrar liveness",
			Notes:                          "passed by registrar on the node's heartbeats",
			TTL:                            e.cfg.CheckTTL.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: e.cfg.DeregisterCriticalServiceAfter.String(),
		},
	}
}

// matches reports whether the registered service cur is what want
// registers: name, tags, address, port and meta. (The check is not
// compared: the agent's service carries none, and its status is the
// heartbeats' business.)
func matches(cur *api.AgentService, want *api.AgentServiceRegistration) bool {
	return cur.ID == want.ID && cur.Service == want.Name && slices.Equal(cur.Tags, want.Tags) &&
		cur.Address == want.Address && cur.Port == want.Port && maps.Equal(cur.Meta, want.Meta)
}
