package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Service is a node's registration in a [Registry], named as the Consul
// effects name it.
type Service struct {
	ID, Name   string
	Tags       []string
	Address    string
	Port       int
	NodeID     uuid.UUID
	Generation int64
	Meta       map[string]string
	// PassedAt is when the node's TTL check was last marked passing.
	PassedAt time.Time
}

// RegistryConfig configures a [Registry].
type RegistryConfig struct {
	// Fault, if set, is called before each intent is executed; a non-nil
	// error fails that intent without touching the registry.
	Fault func(in intent.Intent) error
	// Projections, if set, is read before a TTL pass heals a service that
	// is missing, of an older generation or of another version: the heal
	// registers only a node that is still active there with the pass's
	// generation and type, with the projection's version and endpoints.
	Projections registration.Store
}

// Registry is an in-memory service registry that executes the consul.*
// intents as the Consul effects do without a projection store to verify
// against: register (idempotent), deregister only the named generation,
// pass the TTL check of the named generation, registering the service
// first if the registry lost it or holds an older generation or another
// version of it (the hot-path heal). It does not reconcile.
type Registry struct {
	cfg      RegistryConfig
	mu       sync.RWMutex
	services map[string]Service
}

var _ intent.BatchEffect = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry(cfg RegistryConfig) *Registry {
	return &Registry{cfg: cfg, services: make(map[string]Service)}
}

// Execute executes a consul.register, consul.deregister or consul.pass_ttl
// intent.
func (r *Registry) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	if err := ctx.Err(); err != nil {
		return intent.Result{}, intent.Retryable(err)
	}
	if r.cfg.Fault != nil {
		if err := r.cfg.Fault(in); err != nil {
			return intent.Result{}, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applyLocked(ctx, in)
}

// ExecuteBatch executes the intents in order under one lock.
func (r *Registry) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, intent.Retryable(err)
	}
	if r.cfg.Fault != nil {
		for _, in := range ins {
			if err := r.cfg.Fault(in); err != nil {
				return nil, err
			}
		}
	}
	out := make([]intent.Result, len(ins))
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, in := range ins {
		res, err := r.applyLocked(ctx, in)
		if err != nil {
			return out[:i], fmt.Errorf("registrar/memory: batch intent %d: %w", i, err)
		}
		out[i] = res
	}
	return out, nil
}

func (r *Registry) applyLocked(ctx context.Context, in intent.Intent) (intent.Result, error) {
	switch pl := in.Payload.(type) {
	case *registration.ConsulRegister:
		s := r.service(pl)
		r.services[s.ID] = s
		return intent.Result{}, nil
	case *registration.ConsulDeregister:
		id := registration.ServiceID(pl.NodeType, pl.NodeID)
		s, ok := r.services[id]
		switch {
		case !ok:
			return intent.Result{}, nil
		case s.Generation != pl.Generation:
			return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
				"service %s is registered with generation %d, not %d", id, s.Generation, pl.Generation)}, nil
		}
		delete(r.services, id)
		return intent.Result{}, nil
	case *registration.ConsulPassTTL:
		id := registration.ServiceID(pl.NodeType, pl.NodeID)
		s, ok := r.services[id]
		switch {
		case ok && s.Generation > pl.Generation:
			return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
				"service %s is registered with the newer generation %d, not %d", id, s.Generation, pl.Generation)}, nil
		case !ok || s.Generation < pl.Generation || s.Meta["node_version"] != pl.NodeVersion:
			// Heal: the registry lost the service, or holds an older
			// registration of it; register it from the pass's projection,
			// unless the store says the node is no longer active in it.
			reg, reason, err := r.heal(ctx, pl)
			if err != nil || reason != "" {
				return intent.Result{Status: intent.Skipped, Reason: reason}, err
			}
			s = r.service(reg)
			s.PassedAt = pl.At
			r.services[id] = s
			return intent.Result{}, nil
		}
		if pl.At.After(s.PassedAt) {
			s.PassedAt = pl.At
			r.services[id] = s
		}
		return intent.Result{}, nil
	}
	return intent.Result{}, intent.Permanent(fmt.Errorf(
		"registrar/memory: intent %q: payload type %T is not a registration.Consul* payload", in.Type, in.Payload))
}

// heal returns what a heal of pl registers: the pass's own metadata, or,
// with cfg.Projections, the node's projection's. It returns why nothing is
// registered instead when the projection is not active with pl's
// generation and type. The registry's lock is held, so a deregister that
// follows the store's change waits for this heal and removes what it
// wrote.
func (r *Registry) heal(ctx context.Context, pl *registration.ConsulPassTTL) (*registration.ConsulRegister, string, error) {
	reg := pl.Register()
	if r.cfg.Projections == nil {
		return reg, "", nil
	}
	p, err := r.cfg.Projections.Load(ctx, pl.NodeID)
	switch {
	case err != nil:
		return nil, "", intent.Retryable(fmt.Errorf("registrar/memory: heal %s: %w", pl.NodeID, err))
	case p == nil || p.State != registration.StateActive || p.Generation != pl.Generation || p.NodeType != pl.NodeType:
		return nil, "the node is no longer active with generation " + strconv.FormatInt(pl.Generation, 10) + " and type " + pl.NodeType, nil
	}
	reg.NodeVersion, reg.Endpoints = p.NodeVersion, p.Endpoints
	return reg, "", nil
}

// service returns the service a register of pl writes.
func (r *Registry) service(pl *registration.ConsulRegister) Service {
	host, port := registration.ServiceAddress(pl.Endpoints)
	return Service{
		ID: registration.ServiceID(pl.NodeType, pl.NodeID), Name: registration.ServiceName(pl.NodeType),
		Tags: registration.ServiceTags(pl.NodeType), Address: host, Port: port, NodeID: pl.NodeID, Generation: pl.Generation,
		Meta: map[string]string{
			"node_id": pl.NodeID.String(), "node_version": pl.NodeVersion,
			"generation": strconv.FormatInt(pl.Generation, 10),
		},
	}
}

// Get returns the service with the given id.
func (r *Registry) Get(id string) (Service, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.services[id]
	s.Tags, s.Meta = slices.Clone(s.Tags), maps.Clone(s.Meta)
	return s, ok
}

// Services returns every registered service, ordered by id.
func (r *Registry) Services() []Service {
	r.mu.RLock()
	out := make([]Service, 0, len(r.services))
	for _, s := range r.services {
		s.Tags, s.Meta = slices.Clone(s.Tags), maps.Clone(s.Meta)
		out = append(out, s)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Len returns the number of registered services.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.services)
}

// RegisterEffects registers store for the postgres.* intent types and
// registry for the consul.* intent types of the registration workflow
// (consul.pass_ttl as [intent.Volatile]).
//
// Either may be nil, and a nil one registers nothing: a nil store no
// postgres.* effect, a nil registry no consul.* effect. A nil store is how
// the in-memory registry is paired with another projection store, such as
// the Postgres one of effects/postgres, in one call after that store's own
// registration:
//
//	err := postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: schema})
//	...
//	err = memory.RegisterEffects(exec, nil, registry) // consul.* only
//
// A Runtime applies the postgres.* intents through its store's Commit,
// atomically with its outbox; the registered effects serve callers that
// execute intents directly. Registering a type that already has an effect
// is an error, as [intent.Executor.Register] says.
func RegisterEffects(exec *intent.Executor, store *Store, registry *Registry) error {
	if store != nil {
		for _, t := range []string{registration.IntentUpsert, registration.IntentUpdate, registration.IntentDelete} {
			if err := exec.Register(t, store); err != nil {
				return err
			}
		}
	}
	if registry == nil {
		return nil
	}
	for _, t := range []string{registration.IntentConsulReg, registration.IntentConsulDereg} {
		if err := exec.Register(t, registry); err != nil {
			return err
		}
	}
	// A TTL pass refreshes soft state the next heartbeat refreshes again.
	if err := exec.Register(registration.IntentConsulPassTTL, registry, intent.Volatile()); err != nil {
		return err
	}
	return nil
}
