package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

var _ dispatch.Outbox = (*Store)(nil)

// Owns reports whether the store executes intents of intentType inside
// Commit: the postgres.upsert_registration and postgres.update_registration
// projection writes.
func (s *Store) Owns(intentType string) bool {
	return intentType == registration.IntentUpsert || intentType == registration.IntentUpdate
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
	}
	return intent.Permanent(fmt.Errorf(
		"registrar/memory: intent %q: payload type %T is not *registration.UpsertRegistration or *registration.UpdateRegistration",
		in.Type, in.Payload))
}

// Pending implements dispatch.Outbox.
func (s *Store) Pending(ctx context.Context, entities []uuid.UUID, minAge time.Duration, limit int) ([]dispatch.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, intent.Retryable(err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/memory: pending records: limit %d is not positive", limit)
	}
	cutoff := time.Now().Add(-minAge)
	var want map[uuid.UUID]bool
	if entities != nil {
		want = make(map[uuid.UUID]bool, len(entities))
		for _, id := range entities {
			want[id] = true
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []dispatch.Record
	for _, r := range s.outbox {
		if len(out) == limit {
			break
		}
		if want != nil && !want[r.EntityID] {
			continue
		}
		if entities == nil && r.CreatedAt.After(cutoff) {
			continue
		}
		out = append(out, r)
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
