package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

var _ dispatch.Outbox = (*Store)(nil)

// outboxSQL holds the outbox statements of a store.
type outboxSQL struct {
	insert, pendingOf, pendingEntities, done, lease string
}

func newOutboxSQL(n names) outboxSQL {
	cols := "seq, entity_id, created_at, record"
	return outboxSQL{
		insert: "INSERT INTO " + n.outbox + " (entity_id, domain, record)" +
			" SELECT e, $2, r FROM unnest($1::uuid[], $3::json[]) AS t(e, r)",
		pendingOf: "SELECT " + cols + " FROM " + n.outbox +
			" WHERE entity_id = ANY($1) AND domain = $2 ORDER BY seq LIMIT $3",
		pendingEntities: "SELECT entity_id FROM " + n.outbox + " WHERE domain = $2" +
			" GROUP BY entity_id HAVING min(created_at) <= clock_timestamp() - make_interval(secs => $1)" +
			" ORDER BY min(seq) LIMIT $3",
		done: "DELETE FROM " + n.outbox + " WHERE seq = ANY($1)",
		// Transaction-scoped advisory locks, one per entity, taken in key
		// order (the subquery orders them) so that two leases never wait
		// for each other in a cycle.
		lease: "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended($2 || '/outbox/' || e::text, 0) AS k" +
			" FROM unnest($1::uuid[]) AS e ORDER BY k) AS keys",
	}
}

// Owns reports whether the store executes intents of intentType inside
// Commit: postgres.upsert_registration, postgres.update_registration and
// postgres.delete_registration.
func (s *Store) Owns(intentType string) bool {
	switch intentType {
	case registration.IntentUpsert, registration.IntentUpdate, registration.IntentDelete:
		return true
	}
	return false
}

// Commit applies writes and appends their records in one transaction, as
// dispatch.Outbox says. Writes run in rounds, each round holding at most one
// write per entity, each round one round trip per intent type (through the
// effects' batch paths); then the records are inserted with one statement
// and the transaction commits. Writes that append no record and touch each
// entity once with one intent (a batch of heartbeats) skip the explicit
// transaction: each type's batch is then one implicit transaction, so a
// failure can leave some of them applied, which a retry decides again as
// no-ops.
//
// Commit needs a handle that can begin a transaction (a pool, a connection
// or a transaction: a [Beginner]) unless it takes the fast path.
func (s *Store) Commit(ctx context.Context, writes []dispatch.Write) ([]dispatch.WriteResult, error) {
	out := make([]dispatch.WriteResult, len(writes))
	if s.plainWrites(writes) {
		if err := s.runRounds(ctx, s.db, writes, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	beg, ok := s.db.(Beginner)
	if !ok {
		return nil, intent.Permanent(fmt.Errorf("registrar/postgres: commit: the store's handle %T cannot begin a transaction", s.db))
	}
	tx, err := beg.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: commit: begin: %w", classify(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := s.runRounds(ctx, tx, writes, out); err != nil {
		return nil, err
	}
	var ids []pgtype.UUID
	var recs [][]byte
	for i := range writes {
		if out[i].Status != dispatch.WriteCommitted || writes[i].Record == nil {
			continue
		}
		raw, err := json.Marshal(writes[i].Record)
		if err != nil {
			return nil, intent.Permanent(fmt.Errorf("registrar/postgres: commit: encode the record of %s: %w", writes[i].EntityID, err))
		}
		ids = append(ids, pgUUID(writes[i].EntityID))
		recs = append(recs, raw)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, s.outbox.insert, ids, s.domain, recs); err != nil {
			return nil, fmt.Errorf("registrar/postgres: commit: append %d records: %w", len(ids), classify(err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("registrar/postgres: commit: %w", classify(err))
	}
	return out, nil
}

// plainWrites reports whether writes can skip the explicit transaction: no
// record, at most one intent each, each entity once.
func (s *Store) plainWrites(writes []dispatch.Write) bool {
	seen := make(map[uuid.UUID]struct{}, len(writes))
	for i := range writes {
		w := &writes[i]
		if w.Record != nil || len(w.Intents) > 1 {
			return false
		}
		if _, dup := seen[w.EntityID]; dup {
			return false
		}
		seen[w.EntityID] = struct{}{}
	}
	return true
}

// runRounds executes the writes' intents on db in rounds of distinct
// entities, filling out.
func (s *Store) runRounds(ctx context.Context, db DB, writes []dispatch.Write, out []dispatch.WriteResult) error {
	conflicted := map[uuid.UUID]bool{}
	next := make([]int, len(writes)) // each write's next intent
	remaining := make([]int, 0, len(writes))
	for i := range writes {
		if len(writes[i].Intents) > 0 {
			remaining = append(remaining, i)
		}
	}
	for len(remaining) > 0 {
		// A round: the first remaining write of each entity.
		inRound := map[uuid.UUID]bool{}
		var round, later []int
		for _, i := range remaining {
			id := writes[i].EntityID
			switch {
			case conflicted[id]:
				out[i].Status = dispatch.WriteNotAttempted
			case inRound[id]:
				later = append(later, i)
			default:
				inRound[id] = true
				round = append(round, i)
			}
		}
		// Step through the round's intents, one type at a time.
		for len(round) > 0 {
			byType := map[string][]int{}
			var types []string
			for _, i := range round {
				t := writes[i].Intents[next[i]].Type
				if _, ok := byType[t]; !ok {
					types = append(types, t)
				}
				byType[t] = append(byType[t], i)
			}
			for _, t := range types {
				idx := byType[t]
				ins := make([]intent.Intent, len(idx))
				for j, i := range idx {
					ins[j] = writes[i].Intents[next[i]]
				}
				res, err := s.executeOn(ctx, db, t, ins)
				if err != nil {
					return err
				}
				for j, i := range idx {
					out[i].Results = append(out[i].Results, res[j])
					next[i]++
					if res[j].Status == intent.Conflict {
						out[i].Status = dispatch.WriteConflict
						conflicted[writes[i].EntityID] = true
					}
				}
			}
			still := round[:0]
			for _, i := range round {
				if out[i].Status == dispatch.WriteCommitted && next[i] < len(writes[i].Intents) {
					still = append(still, i)
				}
			}
			round = still
		}
		remaining = later
	}
	return nil
}

// executeOn executes intents of one owned type on db.
func (s *Store) executeOn(ctx context.Context, db DB, typ string, ins []intent.Intent) ([]intent.Result, error) {
	var res []intent.Result
	var err error
	switch typ {
	case registration.IntentUpsert:
		res, err = s.upsert.executeBatch(ctx, db, ins)
	case registration.IntentUpdate:
		res, err = s.update.executeBatch(ctx, db, ins)
	case registration.IntentDelete:
		res, err = s.delete.executeBatch(ctx, db, ins)
	default:
		return nil, intent.Permanent(fmt.Errorf("registrar/postgres: commit: intent type %q is not the store's", typ))
	}
	if err != nil {
		return nil, err
	}
	if len(res) != len(ins) {
		return nil, fmt.Errorf("registrar/postgres: commit: %d results for %d %s intents", len(res), len(ins), typ)
	}
	return res, nil
}

// Pending implements dispatch.Outbox. A row whose record does not decode
// comes back with Invalid and Raw set.
func (s *Store) Pending(ctx context.Context, entities []uuid.UUID, limit int) ([]dispatch.Record, error) {
	return s.pendingOn(ctx, s.db, entities, limit)
}

func (s *Store) pendingOn(ctx context.Context, db DB, entities []uuid.UUID, limit int) ([]dispatch.Record, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/postgres: pending records: limit %d is not positive", limit)
	}
	ids := make([]pgtype.UUID, len(entities))
	for i, id := range entities {
		ids[i] = pgUUID(id)
	}
	rows, err := db.Query(ctx, s.outbox.pendingOf, ids, s.domain, limit)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: pending records: %w", classify(err))
	}
	defer rows.Close()
	var out []dispatch.Record
	for rows.Next() {
		var seq int64
		var id pgtype.UUID
		var at time.Time
		var raw []byte
		if err := rows.Scan(&seq, &id, &at, &raw); err != nil {
			return nil, fmt.Errorf("registrar/postgres: pending records: %w", classify(err))
		}
		var r dispatch.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			r = dispatch.Record{Invalid: fmt.Errorf("registrar/postgres: outbox row %d does not decode: %w", seq, err), Raw: raw}
		}
		r.Seq, r.EntityID, r.CreatedAt = seq, uuid.UUID(id.Bytes), at.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrar/postgres: pending records: %w", classify(err))
	}
	return out, nil
}

// PendingEntities implements dispatch.Outbox; the age is measured by the
// database's clock, so hosts with different clocks agree on it.
func (s *Store) PendingEntities(ctx context.Context, minAge time.Duration, limit int) ([]uuid.UUID, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/postgres: pending entities: limit %d is not positive", limit)
	}
	rows, err := s.db.Query(ctx, s.outbox.pendingEntities, minAge.Seconds(), s.domain, limit)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: pending entities: %w", classify(err))
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id pgtype.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("registrar/postgres: pending entities: %w", classify(err))
		}
		out = append(out, uuid.UUID(id.Bytes))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrar/postgres: pending entities: %w", classify(err))
	}
	return out, nil
}

// Done implements dispatch.Outbox.
func (s *Store) Done(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := s.db.Exec(ctx, s.outbox.done, seqs); err != nil {
		return fmt.Errorf("registrar/postgres: remove %d records: %w", len(seqs), classify(err))
	}
	return nil
}

// Lease implements dispatch.Outbox with a transaction that holds an
// advisory lock per entity (pg_advisory_xact_lock): a Lease of the same
// entity by any other process sharing the database waits until this one is
// released. Done removes records inside that transaction; Release commits
// it. The transaction holds one connection of the pool while the relay
// works; at most StoreConfig.MaxLeases leases are held at once (a Lease
// beyond them waits for a Release, or for ctx), so that the rest of the
// pool serves the reads the relayed effects make.
func (s *Store) Lease(ctx context.Context, entities []uuid.UUID, limit int) (dispatch.Lease, error) {
	beg, ok := s.db.(Beginner)
	if !ok {
		return nil, intent.Permanent(fmt.Errorf("registrar/postgres: lease: the store's handle %T cannot begin a transaction", s.db))
	}
	if s.leases != nil {
		select {
		case s.leases <- struct{}{}:
		case <-ctx.Done():
			return nil, intent.Retryable(fmt.Errorf("registrar/postgres: lease: waiting for a lease slot: %w", ctx.Err()))
		}
	}
	l, err := s.lease(ctx, beg, entities, limit)
	if err != nil && s.leases != nil {
		<-s.leases
	}
	return l, err
}

func (s *Store) lease(ctx context.Context, beg Beginner, entities []uuid.UUID, limit int) (dispatch.Lease, error) {
	tx, err := beg.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: lease: begin: %w", classify(err))
	}
	ids := make([]pgtype.UUID, len(entities))
	for i, id := range entities {
		ids[i] = pgUUID(id)
	}
	if _, err := tx.Exec(ctx, s.outbox.lease, ids, s.domain); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("registrar/postgres: lease %d entities: %w", len(entities), classify(err))
	}
	recs, err := s.pendingOn(ctx, tx, entities, limit)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return &pgLease{s: s, tx: tx, recs: recs}, nil
}

type pgLease struct {
	s    *Store
	tx   pgx.Tx
	recs []dispatch.Record
	done bool
}

// Records implements dispatch.Lease.
func (l *pgLease) Records() []dispatch.Record { return l.recs }

// Done implements dispatch.Lease.
func (l *pgLease) Done(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := l.tx.Exec(ctx, l.s.outbox.done, seqs); err != nil {
		return fmt.Errorf("registrar/postgres: remove %d records: %w", len(seqs), classify(err))
	}
	return nil
}

// Release implements dispatch.Lease.
func (l *pgLease) Release(ctx context.Context) error {
	if l.done {
		return nil
	}
	l.done = true
	if l.s.leases != nil {
		defer func() { <-l.s.leases }()
	}
	if err := l.tx.Commit(ctx); err != nil {
		return fmt.Errorf("registrar/postgres: release lease: %w", classify(err))
	}
	return nil
}
