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

var _ dispatch.Outbox = (*Store)(nil)

// Owns reports whether the store executes intents of intentType inside
// Commit: the postgres.upsert_registration, postgres.update_registration
// and postgres.delete_registration projection writes.
func (s *Store) Owns(intentType string) bool {
	switch intentType {
	case registration.IntentUpsert, registration.IntentUpdate, registration.IntentDelete:
		return true
	}
	return false
}

// Commit applies writes and appends their records under the store's lock,
// as dispatch.Outbox says. The Fault hook is consulted for every intent
// first: a fault fails the whole call with nothing written.
func (s *Store) Commit(ctx context.Context, writes []dispatch.Write) ([]dispatch.WriteResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, intent.Retryable(err)
	}
	if s.cfg.Fault != nil {
		for i := range writes {
			for _, in := range writes[i].Intents {
				if err := s.cfg.Fault(in); err != nil {
					return nil, err
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Validate every intent before touching a row, so that an invalid one
	// fails the call with nothing written.
	for i := range writes {
		for _, in := range writes[i].Intents {
			if err := s.checkLocked(in); err != nil {
				return nil, err
			}
		}
	}
	out := make([]dispatch.WriteResult, len(writes))
	conflicted := map[uuid.UUID]bool{}
	now := time.Now().UTC()
	for i := range writes {
		w := &writes[i]
		if conflicted[w.EntityID] {
			out[i].Status = dispatch.WriteNotAttempted
			continue
		}
		for _, in := range w.Intents {
			r, err := s.applyLocked(in)
			if err != nil {
				// checkLocked passed, so this is a broken invariant.
				panic(fmt.Sprintf("registrar/memory: intent failed after validation: %v", err))
			}
			out[i].Results = append(out[i].Results, r)
			if r.Status == intent.Conflict {
				out[i].Status = dispatch.WriteConflict
				conflicted[w.EntityID] = true
				break
			}
		}
		if out[i].Status == dispatch.WriteCommitted && w.Record != nil {
			s.seq++
			rec := *w.Record
			rec.Seq, rec.CreatedAt = s.seq, now
			s.outbox = append(s.outbox, rec)
		}
	}
	return out, nil
}

// checkLocked reports an intent that applyLocked would refuse.
func (s *Store) checkLocked(in intent.Intent) error {
	switch pl := in.Payload.(type) {
	case *registration.UpsertRegistration:
		if err := pl.Validate(); err != nil {
			return intent.Permanent(fmt.Errorf("registrar/memory: upsert %s (correlation %s): %w", pl.Projection.EntityID, in.CorrelationID, err))
		}
		return nil
	case *registration.UpdateRegistration:
		if err := pl.Validate(); err != nil {
			return intent.Permanent(fmt.Errorf("registrar/memory: update %s (correlation %s): %w", pl.EntityID, in.CorrelationID, err))
		}
		return nil
	case *registration.DeleteRegistration:
		if err := pl.Validate(); err != nil {
			return intent.Permanent(fmt.Errorf("registrar/memory: delete %s (correlation %s): %w", pl.EntityID, in.CorrelationID, err))
		}
		return nil
	}
	return intent.Permanent(fmt.Errorf(
		"registrar/memory: intent %q: payload type %T is not a *registration.UpsertRegistration, *registration.UpdateRegistration or *registration.DeleteRegistration",
		in.Type, in.Payload))
}

// Pending implements dispatch.Outbox.
func (s *Store) Pending(ctx context.Context, entities []uuid.UUID, limit int) ([]dispatch.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, intent.Retryable(err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/memory: pending records: limit %d is not positive", limit)
	}
	want := make(map[uuid.UUID]bool, len(entities))
	for _, id := range entities {
		want[id] = true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []dispatch.Record
	for _, r := range s.outbox {
		if len(out) == limit {
			break
		}
		if want[r.EntityID] {
			out = append(out, r)
		}
	}
	return out, nil
}

// PendingEntities implements dispatch.Outbox.
func (s *Store) PendingEntities(ctx context.Context, minAge time.Duration, limit int) ([]uuid.UUID, error) {
	if err := ctx.Err(); err != nil {
		return nil, intent.Retryable(err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/memory: pending entities: limit %d is not positive", limit)
	}
	cutoff := time.Now().Add(-minAge)
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.outbox { // in Seq order: the first of an entity is its oldest
		if len(out) == limit {
			break
		}
		if seen[r.EntityID] {
			continue
		}
		seen[r.EntityID] = true
		if !r.CreatedAt.After(cutoff) {
			out = append(out, r.EntityID)
		}
	}
	return out, nil
}

// Done implements dispatch.Outbox.
func (s *Store) Done(ctx context.Context, seqs []int64) error {
	if err := ctx.Err(); err != nil {
		return intent.Retryable(err)
	}
	done := make(map[int64]bool, len(seqs))
	for _, q := range seqs {
		done[q] = true
	}
	s.mu.Lock()
	s.outbox = slices.DeleteFunc(s.outbox, func(r dispatch.Record) bool { return done[r.Seq] })
	s.mu.Unlock()
	return nil
}

// PendingRecords returns how many records wait in the outbox.
func (s *Store) PendingRecords() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.outbox)
}

// Lease implements dispatch.Outbox: leases of overlapping entities are
// granted one at a time, whatever Runtime asks.
func (s *Store) Lease(ctx context.Context, entities []uuid.UUID, limit int) (dispatch.Lease, error) {
	ids := slices.Clone(entities)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	for {
		s.leaseMu.Lock()
		var busy chan struct{}
		for _, id := range ids {
			if ch, ok := s.leases[id]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			if s.leases == nil {
				s.leases = map[uuid.UUID]chan struct{}{}
			}
			ch := make(chan struct{})
			for _, id := range ids {
				s.leases[id] = ch
			}
			s.leaseMu.Unlock()
			l := &memoryLease{s: s, ids: ids, ch: ch}
			recs, err := s.Pending(ctx, ids, limit)
			if err != nil {
				_ = l.Release(ctx)
				return nil, err
			}
			l.recs = recs
			return l, nil
		}
		s.leaseMu.Unlock()
		select {
		case <-ctx.Done():
			return nil, intent.Retryable(ctx.Err())
		case <-busy:
		}
	}
}

type memoryLease struct {
	s    *Store
	ids  []uuid.UUID
	ch   chan struct{}
	recs []dispatch.Record
	once sync.Once
}

// Records implements dispatch.Lease.
func (l *memoryLease) Records() []dispatch.Record { return l.recs }

// Done implements dispatch.Lease.
func (l *memoryLease) Done(ctx context.Context, seqs []int64) error { return l.s.Done(ctx, seqs) }

// Release implements dispatch.Lease.
func (l *memoryLease) Release(context.Context) error {
	l.once.Do(func() {
		l.s.leaseMu.Lock()
		for _, id := range l.ids {
			if l.s.leases[id] == l.ch {
				delete(l.s.leases, id)
			}
		}
		l.s.leaseMu.Unlock()
		close(l.ch)
	})
	return nil
}
