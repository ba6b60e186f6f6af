package consul

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

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
// the reconciler's listing) and serves as the first round's read. rewrite,
// if not empty, is a service id the first round registers again even if
// the agent's service matches: the service of a TTL pass whose check the
// agent no longer has (the agent's service carries no check to compare).
func (e *Effect) converge(ctx context.Context, proj Projections, node uuid.UUID, first *nodeState, rewrite string) (converged, error) {
	var (
		res     converged
		refused error // a permanent refusal of the wanted registration
	)
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
		if res.want != nil && refused == nil {
			cur := st.svcs[res.want.ID]
			write = cur == nil || !matches(cur, res.want) || (round == 0 && res.want.ID == rewrite)
		}
		if !write && len(stale) == 0 {
			return res, refused
		}
		if round == maxConvergeRounds {
			if refused != nil {
				return res, refused
			}
			return res, intent.Retryable(fmt.Errorf(
				"registrar/consul: node %s: the services did not settle after %d rounds: its projection keeps changing", node, round))
		}
		// Make before break: a node whose type changed is registered under
		// its new id before the old one goes.
		if write {
			if err := e.put(ctx, res.want); err != nil {
				err = e.fail("register", res.want.ID, err)
				if !intent.IsPermanent(err) {
					return res, err
				}
				// The agent refuses the registration for good (an
				// address it rejects, say): what should not be there
				// still goes, and the rounds go on removing only, each
				// after a fresh read; the refusal is returned at the end.
				refused = err
			} else if st.svcs[res.want.ID] == nil {
				res.registered++
			} else {
				res.updated++
			}
		}
		for _, id := range stale {
			removed, err := e.remove(ctx, id)
			if err != nil {
				return res, e.fail("deregister", id, err)
			}
			if removed {
				res.deregistered++
			}
		}
	}
}

// readNode reads node's projection, then the agent's services of it. The
// projection is read first: a service the agent shows is then at least as
// new as the projection's reason for it. The read of the projection is
// bounded by the Timeout too: a store that cannot serve it (a pool whose
// connections the runtime's relays all hold) fails the intent, retryable,
// instead of holding the relay forever.
func (e *Effect) readNode(ctx context.Context, proj Projections, node uuid.UUID) (*nodeState, error) {
	lctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	p, err := proj.Load(lctx, node)
	cancel()
	switch {
	case err == nil:
	case intent.IsPermanent(err):
		// A read that fails is no fault of the intent, whatever the store
		// marked: retried. The text is kept, the mark is not (an error
		// that wraps a permanent one is permanent to the runtime).
		return nil, intent.Retryable(fmt.Errorf("registrar/consul: load the projection of %s: %s", node, err.Error()))
	case intent.IsRetryable(err):
		return nil, fmt.Errorf("registrar/consul: load the projection of %s: %w", node, err)
	default:
		// A store's unmarked error is a failed read, not a fault of the
		// intent: retried.
		return nil, intent.Retryable(fmt.Errorf("registrar/consul: load the projection of %s: %w", node, err))
	}
	// The node's services are read by id, one per node type, not by a
	// filtered listing: a listing costs the agent a walk over all its
	// services (2.5 ms at 1,000, against 0.13 ms for a read by id), and
	// the reconciler's and a mass heal's reads would grow with the square
	// of the registry. Only the ids registrar writes are read; a lookalike
	// registrar never wrote (an id the agent's HTTP paths cannot address,
	// say) cannot keep the rounds from settling. The reconciler's listing
	// removes the other owned services as strays.
	types := registration.NodeTypes
	if p != nil && p.NodeType != "" && !slices.Contains(types, p.NodeType) {
		types = append(slices.Clip(types), p.NodeType)
	}
	svcs := make(map[string]*api.AgentService, 1)
	for _, t := range types {
		id := registration.ServiceID(t, node)
		svc, err := e.service(ctx, id)
		if err != nil {
			return nil, e.fail("read the services of node", node.String(), err)
		}
		if n, ok := nodeOf(svc); ok && n == node {
			svcs[id] = svc
		}
	}
	return &nodeState{proj: p, svcs: svcs}, nil
}

// nodeOf returns the node of an agent service that registrar owns and
// writes: tag "onex" and meta [MetaRegisteredBy], a [MetaNodeID] in the
// canonical spelling of a uuid, and the name and id that
// registration.ServiceName and ServiceID give for a node type of letters,
// digits, '_' and '-'. Convergence manages only these services; the
// [Reconciler] removes other owned services as strays.
func nodeOf(svc *api.AgentService) (uuid.UUID, bool) {
	if svc == nil || svc.Meta[MetaRegisteredBy] != RegisteredBy || !slices.Contains(svc.Tags, "onex") {
		return uuid.Nil, false
	}
	node, err := uuid.Parse(svc.Meta[MetaNodeID])
	if err != nil || node.String() != svc.Meta[MetaNodeID] {
		return uuid.Nil, false
	}
	t, ok := strings.CutPrefix(svc.Service, "onex-")
	if !ok || t == "" || strings.ContainsFunc(t, notTypeRune) || svc.ID != registration.ServiceID(t, node) {
		return uuid.Nil, false
	}
	return node, true
}

// notTypeRune reports whether r may not appear in a node type as nodeOf
// accepts it: letters, digits, '_' and '-'.
func notTypeRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		return false
	}
	return true
}

// ownedFilter selects the services registrar registered (Consul's filter
// expression language over the agent's services).
const ownedFilter = `Meta.` + MetaRegisteredBy + ` == "` + RegisteredBy + `" and "onex" in Tags`

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

// remove deregisters the service id and reports whether it removed it; a
// service that is not there is no error, and not removed.
func (e *Effect) remove(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	switch err := e.agent.ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx)); {
	case notFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
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
