package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// StoreConfig configures a [Store].
type StoreConfig struct {
	// Domain is the domain Load and the scans read; default
	// registration.DefaultDomain.
	Domain string
	// Fault, if set, is called before each intent is executed; a non-nil
	// error fails that intent (and, in a batch, the whole batch) without
	// touching the store. Tests use it to simulate a database outage.
	Fault func(in intent.Intent) error
}

type key struct {
	id     uuid.UUID
	domain string
}

// Store is an in-memory registration projection store. It implements
// registration.Store, and intent.IntentEffect and intent.BatchEffect for the
// postgres.upsert_registration, postgres.update_registration and
// postgres.delete_registration intents.
type Store struct {
	cfg  StoreConfig
	mu   sync.RWMutex
	rows map[key]*registration.Projection
	// ids are the entity ids of the store's domain in byte order, the
	// index List pages through; pending are the ids inserted since List
	// last merged them into ids, in no order.
	ids     []uuid.UUID
	pending []uuid.UUID
	outbox  []dispatch.Record // ordered by Seq
	seq     int64

	leaseMu sync.Mutex
	leases  map[uuid.UUID]chan struct{} // relay leases, by entity
}

var (
	_ registration.Store        = (*Store)(nil)
	_ registration.ActiveLister = (*Store)(nil)
	_ registration.Reader       = (*Store)(nil)
	_ intent.BatchEffect        = (*Store)(nil)
	_ intent.IntentEffect       = (*Store)(nil)
)

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) *Store {
	if cfg.Domain == "" {
		cfg.Domain = registration.DefaultDomain
	}
	return &Store{cfg: cfg, rows: make(map[key]*registration.Projection)}
}

// Load returns a copy of the projection of entityID, or nil.
func (s *Store) Load(ctx context.Context, entityID uuid.UUID) (*registration.Projection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	p := s.rows[key{entityID, s.cfg.Domain}]
	s.mu.RUnlock()
	return p.Clone(), nil
}

// LoadMany returns copies of the projections of the entities that have one.
func (s *Store) LoadMany(ctx context.Context, entityIDs []uuid.UUID) (map[uuid.UUID]*registration.Projection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]*registration.Projection, len(entityIDs))
	s.mu.RLock()
	for _, id := range entityIDs {
		if p := s.rows[key{id, s.cfg.Domain}]; p != nil {
			out[id] = p.Clone()
		}
	}
	s.mu.RUnlock()
	return out, nil
}

// OverdueAcks implements registration.Store: a scan of every row, for the
// entities after after, in the order of registration.Overdue.Compare.
func (s *Store) OverdueAcks(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	return s.overdue(ctx, after, limit, func(p *registration.Projection) (time.Time, bool) {
		ok := (p.State == registration.StateAwaitingAck || p.State == registration.StateAccepted) &&
			p.AckTimeoutEmittedAt.IsZero() && !p.AckDeadline.IsZero() && p.AckDeadline.Before(now)
		return p.AckDeadline, ok
	})
}

// OverdueLiveness implements registration.Store, as OverdueAcks does.
func (s *Store) OverdueLiveness(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	return s.overdue(ctx, after, limit, func(p *registration.Projection) (time.Time, bool) {
		ok := p.State == registration.StateActive && p.LivenessTimeoutEmittedAt.IsZero() &&
			!p.LivenessDeadline.IsZero() && p.LivenessDeadline.Before(now)
		return p.LivenessDeadline, ok
	})
}

func (s *Store) overdue(ctx context.Context, after registration.Overdue, limit int, due func(*registration.Projection) (time.Time, bool)) ([]registration.Overdue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/memory: overdue scan: limit %d is not positive", limit)
	}
	var out []registration.Overdue
	s.mu.RLock()
	for k, p := range s.rows {
		if k.domain != s.cfg.Domain {
			continue
		}
		if d, ok := due(p); ok {
			if o := (registration.Overdue{EntityID: k.id, Deadline: d}); o.Compare(after) > 0 {
				out = append(out, o)
			}
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, registration.Overdue.Compare)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ListActive implements registration.ActiveLister: copies of the active
// projections after the entity id after, in entity id order (byte by
// byte), at most limit. A limit below 1 is an error.
func (s *Store) ListActive(ctx context.Context, after uuid.UUID, limit int) ([]*registration.Projection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/memory: list active projections: limit %d is not positive", limit)
	}
	var out []*registration.Projection
	s.mu.RLock()
	for k, p := range s.rows {
		if k.domain == s.cfg.Domain && p.State == registration.StateActive && bytes.Compare(k.id[:], after[:]) > 0 {
			out = append(out, p.Clone())
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *registration.Projection) int { return bytes.Compare(a.EntityID[:], b.EntityID[:]) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Execute executes a postgres.upsert_registration,
// postgres.update_registration or postgres.delete_registration intent.
func (s *Store) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	if err := ctx.Err(); err != nil {
		return intent.Result{}, intent.Retryable(err)
	}
	if s.cfg.Fault != nil {
		if err := s.cfg.Fault(in); err != nil {
			return intent.Result{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(in)
}

// ExecuteBatch executes the intents in order under one lock.
func (s *Store) ExecuteBatch(ctx context.Context, ins []intent.Intent) ([]intent.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, intent.Retryable(err)
	}
	if s.cfg.Fault != nil {
		for _, in := range ins {
			if err := s.cfg.Fault(in); err != nil {
				return nil, err
			}
		}
	}
	out := make([]intent.Result, len(ins))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, in := range ins {
		r, err := s.applyLocked(in)
		if err != nil {
			return out[:i], fmt.Errorf("registrar/memory: batch intent %d: %w", i, err)
		}
		out[i] = r
	}
	return out, nil
}

func (s *Store) applyLocked(in intent.Intent) (intent.Result, error) {
	switch pl := in.Payload.(type) {
	case *registration.UpsertRegistration:
		k := key{pl.Projection.EntityID, pl.Projection.Domain}
		next, res, err := registration.ApplyUpsert(s.rows[k], pl)
		if err != nil {
			return res, fmt.Errorf("registrar/memory: upsert %s (correlation %s): %w", k.id, in.CorrelationID, err)
		}
		if res.Status == intent.Applied {
			if s.rows[k] == nil && k.domain == s.cfg.Domain {
				s.pending = append(s.pending, k.id)
			}
			s.rows[k] = next
		}
		return res, nil
	case *registration.UpdateRegistration:
		k := key{pl.EntityID, pl.Domain}
		next, res, err := registration.ApplyUpdate(s.rows[k], pl)
		if err != nil {
			return res, fmt.Errorf("registrar/memory: update %s (correlation %s): %w", k.id, in.CorrelationID, err)
		}
		if res.Status == intent.Applied {
			s.rows[k] = next
		}
		return res, nil
	case *registration.DeleteRegistration:
		k := key{pl.EntityID, pl.Domain}
		_, res, err := registration.ApplyDelete(s.rows[k], pl)
		if err != nil {
			return res, fmt.Errorf("registrar/memory: delete %s (correlation %s): %w", k.id, in.CorrelationID, err)
		}
		if res.Status == intent.Applied {
			delete(s.rows, k)
			if k.domain == s.cfg.Domain {
				s.unindexLocked(k.id)
			}
		}
		return res, nil
	}
	return intent.Result{}, intent.Permanent(fmt.Errorf(
		"registrar/memory: intent %q: payload type %T is not a *registration.UpsertRegistration, *registration.UpdateRegistration or *registration.DeleteRegistration",
		in.Type, in.Payload))
}

// unindexLocked removes a deleted row's id from List's index: from the
// ordered ids (a binary search, and one copy of the ids after it) or from
// the pending ones, so that a later insert of the same id indexes it once.
func (s *Store) unindexLocked(id uuid.UUID) {
	if i, found := slices.BinarySearchFunc(s.ids, id, compareIDs); found {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
	s.pending = slices.DeleteFunc(s.pending, func(p uuid.UUID) bool { return p == id })
}

// Len returns the number of projections in all domains.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.rows)
}

// Get implements registration.Reader: a copy of the projection of id, or
// an error wrapping registration.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*registration.Projection, error) {
	p, err := s.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("registrar/memory: get %s: %w", id, registration.ErrNotFound)
	}
	return p, nil
}

// checkEvery is how many rows List examines between two looks at its
// context.
const checkEvery = 1024

// List implements registration.Reader: copies of the matching projections
// after the cursor, in entity id order. It reads an ordered index of the
// store's entity ids: a binary search finds the cursor, and the rows after
// it are filtered until the page is full, so a page costs O(log n) plus
// the rows it skips for not matching. Ids inserted since the last List are
// merged into the index by the next List (a sort of the new ids and one
// O(n) merge), so a List after a burst of inserts pays for them once.
func (s *Store) List(ctx context.Context, q registration.Query) (registration.Page, error) {
	if err := ctx.Err(); err != nil {
		return registration.Page{}, err
	}
	r, err := q.Request()
	if err != nil {
		return registration.Page{}, fmt.Errorf("registrar/memory: list projections: %w", err)
	}
	s.mu.RLock()
	for len(s.pending) > 0 {
		s.mu.RUnlock()
		s.mu.Lock()
		s.mergeLocked()
		s.mu.Unlock()
		s.mu.RLock()
	}
	i := 0
	if r.HasAfter {
		var found bool
		i, found = slices.BinarySearchFunc(s.ids, r.After, compareIDs)
		if found {
			i++
		}
	}
	var items []*registration.Projection
	for n := 0; i < len(s.ids) && len(items) <= r.Limit; i, n = i+1, n+1 {
		if n%checkEvery == checkEvery-1 && ctx.Err() != nil {
			s.mu.RUnlock()
			return registration.Page{}, ctx.Err()
		}
		if p := s.rows[key{s.ids[i], s.cfg.Domain}]; r.Match(p) {
			items = append(items, p.Clone())
		}
	}
	s.mu.RUnlock()
	return r.Page(items), nil
}

// mergeLocked merges the pending ids into the ordered index, in place
// from the back: O(n + k log k) for k new ids, and no new array while the
// index has room.
func (s *Store) mergeLocked() {
	if len(s.pending) == 0 {
		return
	}
	slices.SortFunc(s.pending, compareIDs)
	i, j := len(s.ids)-1, len(s.pending)-1
	s.ids = append(s.ids, s.pending...) // the length of the merge
	for k := len(s.ids) - 1; j >= 0; k-- {
		if i >= 0 && compareIDs(s.ids[i], s.pending[j]) > 0 {
			s.ids[k] = s.ids[i]
			i--
		} else {
			s.ids[k] = s.pending[j]
			j--
		}
	}
	s.pending = s.pending[:0]
}

func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// CountByState implements registration.Reader: the projections of the
// store's domain by state.
func (s *Store) CountByState(ctx context.Context) (map[registration.State]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[registration.State]int{}
	s.mu.RLock()
	for k, p := range s.rows {
		if k.domain == s.cfg.Domain {
			out[p.State]++
		}
	}
	s.mu.RUnlock()
	return out, nil
}

// Ping returns nil: an in-memory store is always reachable. It implements
// the registrar.Pinger of the Runtime's readiness check.
func (s *Store) Ping(ctx context.Context) error { return nil }
