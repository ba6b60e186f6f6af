package consul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/reducer/registration"
)

// Defaults of the [ReconcilerConfig] fields.
const (
	// DefaultReconcileInterval is the time between two passes of
	// [Reconciler.Run].
	DefaultReconcileInterval = 30 * time.Second
	// DefaultReconcilePageSize is how many active projections one read of
	// a pass returns.
	DefaultReconcilePageSize = 500
	// DefaultReconcileMaxChanges bounds the services one pass adds,
	// rewrites or removes.
	DefaultReconcileMaxChanges = 2000
)

// ReconcileStore is what a [Reconciler] reads of the projection store: the
// pages of active projections, and one node's projection. The Stores of
// effects/memory and effects/postgres implement it.
type ReconcileStore interface {
	registration.ActiveLister
	Projections
}

// ReconcilerConfig configures a [Reconciler].
type ReconcilerConfig struct {
	// Effect is the effect whose agent, naming and check settings the
	// reconciler uses. Required.
	Effect *Effect
	// Store is the projection store. Required.
	Store ReconcileStore
	// Interval is the time between the passes of [Reconciler.Run]. Default
	// [DefaultReconcileInterval]. (A Runtime of registrar.NewRegistration
	// runs passes at its own ReconcileInterval instead.)
	Interval time.Duration
	// PageSize is how many active projections one read returns. Default
	// [DefaultReconcilePageSize].
	PageSize int
	// MaxChanges bounds the services one pass adds, rewrites or removes;
	// a pass that reaches it stops, reports Truncated, and the next pass
	// goes on from the node where it stopped, wrapping around the id
	// order. Default [DefaultReconcileMaxChanges].
	MaxChanges int
	// Logger receives a record per pass that changed something (info),
	// per node it failed to repair (warn), and per pass (debug). Nil
	// means silent.
	Logger *slog.Logger
}

// Reconciler is the anti-entropy of the Consul registry: each pass
// compares the services registrar owns on the agent (tag "onex" and meta
// [MetaRegisteredBy]) with the active projections, and makes each node that
// differs converge to its projection as the fenced effect does: it
// registers what is missing (an agent that lost its state, a service Consul
// reaped while registrar lagged), rewrites what differs (another
// generation, version or address) and removes what should not be there
// (a node that is not active, or is registered under another type's id).
//
// Every change is conditional on what the pass read: a node is repaired
// by reading its projection and its services again after each write, until
// they agree. Passes of several reconcilers (every orchestrator instance may
// run one) and the intents of the runtimes therefore do not fight: they
// converge to the same projection. A pass is bounded by MaxChanges, reads
// the projections page by page, and lists the agent's owned services once.
//
// A Reconciler is safe for concurrent use; it implements
// registration.Reconciler, which registrar.NewRegistration runs at its
// ReconcileInterval.
type Reconciler struct {
	eff   *Effect
	store ReconcileStore
	cfg   ReconcilerConfig
	log   *slog.Logger

	mu     sync.Mutex
	resume uuid.UUID // where the next pass's listing starts (after it)
}

var _ registration.Reconciler = (*Reconciler)(nil)

// NewReconciler returns a reconciler configured by cfg.
func NewReconciler(cfg ReconcilerConfig) (*Reconciler, error) {
	var errs []error
	if cfg.Effect == nil {
		errs = append(errs, errors.New("nil Effect"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("nil Store"))
	}
	if cfg.Interval < 0 || cfg.PageSize < 0 || cfg.MaxChanges < 0 {
		errs = append(errs, fmt.Errorf("negative Interval (%v), PageSize (%d) or MaxChanges (%d)", cfg.Interval, cfg.PageSize, cfg.MaxChanges))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registrar/consul: invalid reconciler config: %w", err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultReconcileInterval
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultReconcilePageSize
	}
	if cfg.MaxChanges == 0 {
		cfg.MaxChanges = DefaultReconcileMaxChanges
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{eff: cfg.Effect, store: cfg.Store, cfg: cfg, log: log}, nil
}

// Run runs a pass at once and then every Interval until ctx ends; it
// returns nil then. A pass that fails is logged and the next one tries
// again.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "consul reconcile pass failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Reconcile runs one pass: it lists the owned services, pages through the
// active projections, repairs each node whose services differ from its
// projection, then repairs the nodes whose services have no active
// projection, then removes the owned services registrar does not write
// (no canonical node id, or not the name and id of one; one attempt per
// pass, counted only if the agent had it). A node that fails to repair is
// counted in Failed and logged;
// the pass goes on. The error reports a listing that failed (the pass
// stops there) or, joined, the repairs that failed.
func (r *Reconciler) Reconcile(ctx context.Context) (registration.ReconcileStats, error) {
	start := time.Now()
	var st registration.ReconcileStats
	owned, err := r.eff.list(ctx, ownedFilter)
	if err != nil {
		return st, r.eff.fail("list the services of", "the agent", err)
	}
	st.Services = len(owned)
	byNode := make(map[uuid.UUID]map[string]*api.AgentService, len(owned))
	// Owned services registrar does not write (no node id, or not the
	// name and id of one): removed, one attempt per pass.
	var strays []string
	for id, svc := range owned {
		node, ok := nodeOf(svc)
		if !ok {
			strays = append(strays, id)
			continue
		}
		if byNode[node] == nil {
			byNode[node] = make(map[string]*api.AgentService, 1)
		}
		byNode[node][id] = svc
	}
	var failures []error
	repair := func(node uuid.UUID, first *nodeState) bool {
		c, err := r.eff.converge(ctx, r.store, node, first, "")
		st.Registered += c.registered
		st.Updated += c.updated
		st.Deregistered += c.deregistered
		if err != nil {
			st.Failed++
			if len(failures) < 8 {
				failures = append(failures, err)
			}
			r.log.WarnContext(ctx, "consul reconcile: repair failed", slog.String("node_id", node.String()), slog.String("error", err.Error()))
		}
		if st.Changes() >= r.cfg.MaxChanges {
			st.Truncated = true
			return false
		}
		return ctx.Err() == nil
	}
	// The listing starts where the last truncated pass stopped and wraps
	// around, so that nodes early in the id order that need changes on
	// every pass cannot starve the later ones.
	r.mu.Lock()
	resume := r.resume
	r.mu.Unlock()
	stopped := uuid.Nil
	scan := func(after uuid.UUID, through *uuid.UUID) (bool, error) {
		for {
			page, err := r.store.ListActive(ctx, after, r.cfg.PageSize)
			if err != nil {
				return false, fmt.Errorf("registrar/consul: reconcile: list active projections: %w", err)
			}
			for _, p := range page {
				if through != nil && bytes.Compare(p.EntityID[:], through[:]) > 0 {
					return true, nil
				}
				st.Projections++
				svcs := byNode[p.EntityID]
				delete(byNode, p.EntityID)
				if want := r.eff.desired(p); want != nil && len(svcs) == 1 && svcs[want.ID] != nil && matches(svcs[want.ID], want) {
					continue
				}
				if !repair(p.EntityID, &nodeState{proj: p, svcs: svcs}) {
					stopped = p.EntityID
					return false, nil
				}
			}
			if len(page) < r.cfg.PageSize {
				return true, nil
			}
			after = page[len(page)-1].EntityID
		}
	}
	more, err := scan(resume, nil)
	if err == nil && more && resume != uuid.Nil {
		_, err = scan(uuid.Nil, &resume)
	}
	if err != nil {
		return st, err
	}
	r.mu.Lock()
	r.resume = stopped // the nil UUID after a pass that saw every node
	r.mu.Unlock()
	// Owned services of nodes the listing did not show active: repaired
	// from a fresh read of the projection, which may have become active
	// since the listing passed it.
	if !st.Truncated && ctx.Err() == nil {
		for node := range byNode {
			if !repair(node, nil) {
				break
			}
		}
	}
	for _, id := range strays {
		if st.Truncated || ctx.Err() != nil {
			break
		}
		removed, err := r.eff.remove(ctx, id)
		if err != nil {
			st.Failed++
			failures = append(failures, r.eff.fail("deregister", id, err))
			continue
		}
		if removed {
			st.Deregistered++
		}
	}
	level := slog.LevelDebug
	if st.Changes() > 0 {
		level = slog.LevelInfo
	}
	r.log.LogAttrs(ctx, level, "consul reconcile pass",
		slog.Int("projections", st.Projections), slog.Int("services", st.Services),
		slog.Int("registered", st.Registered), slog.Int("updated", st.Updated), slog.Int("deregistered", st.Deregistered),
		slog.Int("failed", st.Failed), slog.Bool("truncated", st.Truncated), slog.Duration("took", time.Since(start)))
	if err := ctx.Err(); err != nil {
		return st, err
	}
	return st, errors.Join(failures...)
}
