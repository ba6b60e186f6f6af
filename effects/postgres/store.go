package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar/reducer/registration"
)

// StoreConfig configures a [Store]. The zero value of a field means its
// default.
type StoreConfig struct {
	// Schema is the schema [Migrate] created the tables in; default
	// [DefaultSchema].
	Schema string
	// Domain is the domain Load and the scans read; default
	// registration.DefaultDomain.
	Domain string
	// Logger receives a debug line per overdue scan; nil is silent.
	Logger *slog.Logger
	// MaxLeases bounds the relay leases (Lease) held at once. A lease
	// holds a connection, in a transaction, for as long as the relay
	// executes the records' intents; an effect that reads this store
	// meanwhile (the fenced Consul effect's Config.Projections) needs
	// another, so leases must not take the whole pool. Zero means half of
	// the pool's MaxConns (at least one) when the handle is a
	// *pgxpool.Pool, and no bound otherwise; negative means no bound.
	MaxLeases int
}

// Store reads the registration projection: it implements
// registration.Store for the runtime (Load) and the sweeper (the overdue
// scans). It is safe for concurrent use.
type Store struct {
	db       DB
	leases   chan struct{} // nil: leases are not bounded
	upsert   *Upsert
	update   *Update
	delete   *Delete
	outbox   outboxSQL
	domain   string
	log      *slog.Logger
	load     string
	loadMany string
	names    names
	lists    sync.Map // listShape -> the SQL of List for that shape
	active   string
	count    string
	// The overdue scans: the first page, and the pages after a cursor.
	acks, acksAfter string
	live, liveAfter string
}

var (
	_ registration.Store        = (*Store)(nil)
	_ registration.ActiveLister = (*Store)(nil)
	_ registration.Reader       = (*Store)(nil)
)

// loadColumns are the columns Load reads, in scan order.
const loadColumns = "domain, current_state::text, node_type, node_version, capabilities, endpoints, " +
	"ack_deadline, liveness_deadline, last_heartbeat_at, ack_timeout_emitted_at, liveness_timeout_emitted_at, " +
	"last_applied_event_id, registered_at, updated_at, correlation_id, generation"

// NewStore returns a store that reads through db.
func NewStore(db DB, cfg StoreConfig) (*Store, error) {
	if db == nil {
		return nil, errors.New("registrar/postgres: nil DB")
	}
	n, err := newNames(cfg.Schema)
	if err != nil {
		return nil, err
	}
	dom := cfg.Domain
	if dom == "" {
		dom = registration.DefaultDomain
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ecfg := EffectConfig{Schema: cfg.Schema, Logger: cfg.Logger}
	up, err := NewUpsert(db, ecfg)
	if err != nil {
		return nil, err
	}
	upd, err := NewUpdate(db, ecfg)
	if err != nil {
		return nil, err
	}
	del, err := NewDelete(db, ecfg)
	if err != nil {
		return nil, err
	}
	maxLeases := cfg.MaxLeases
	if pool, ok := db.(*pgxpool.Pool); ok && maxLeases == 0 {
		maxLeases = max(1, int(pool.Config().MaxConns)/2)
	}
	var leases chan struct{}
	if maxLeases > 0 {
		leases = make(chan struct{}, maxLeases)
	}
	return &Store{
		leases: leases,
		db:     db, domain: dom, log: log, upsert: up, update: upd, delete: del, outbox: newOutboxSQL(n),
		load:     "SELECT entity_id, " + loadColumns + " FROM " + n.table + " WHERE entity_id = $1 AND domain = $2",
		loadMany: "SELECT entity_id, " + loadColumns + " FROM " + n.table + " WHERE entity_id = ANY($1) AND domain = $2",
		names:    n,
		active: "SELECT entity_id, " + loadColumns + " FROM " + n.table +
			" WHERE domain = $1 AND current_state = 'active' AND entity_id > $2 ORDER BY domain, entity_id LIMIT $3",
		count:     countSQL(n),
		acks:      overdueAcksSQL(n, false),
		acksAfter: overdueAcksSQL(n, true),
		live:      overdueLivenessSQL(n, false),
		liveAfter: overdueLivenessSQL(n, true),
	}, nil
}

// countSQL counts the projections of the domain $1 per state. It is a
// count of each state's range of the index (domain, current_state,
// entity_id), not a GROUP BY over the table: PostgreSQL would read a
// large table sequentially for the GROUP BY, and the ranges are read from
// the index alone on a vacuumed table (TestListUsesIndexes checks the
// plan). States without a projection are left out.
func countSQL(n names) string {
	return "SELECT s::text, c FROM unnest(enum_range(NULL::" + n.stateType + ")) AS s, " +
		"LATERAL (SELECT count(*) AS c FROM " + n.table + " WHERE domain = $1 AND current_state = s) AS n WHERE c > 0"
}

// overdueAcksSQL is the overdue-ack scan. Its state and marker predicates
// repeat the partial index's literally, so that the planner can prove the
// index applies; the deadline, domain and limit are parameters ($1, $2,
// $3). A scan after a cursor ($4 deadline, $5 entity id) adds the keyset
// predicate (ack_deadline, entity_id) > ($4, $5); the planner turns its
// leading column into an index condition (ack_deadline >= $4), so the
// index scan starts at the cursor instead of filtering everything before
// it (TestOverdueScansUsePartialIndexes checks the plans).
func overdueAcksSQL(n names, after bool) string {
	return overdueSQL(n, "ack_deadline", "ack_timeout_emitted_at IS NULL AND current_state IN ('awaiting_ack', 'accepted')", after)
}

// overdueLivenessSQL is the overdue-liveness scan; see overdueAcksSQL.
func overdueLivenessSQL(n names, after bool) string {
	return overdueSQL(n, "liveness_deadline", "liveness_timeout_emitted_at IS NULL AND current_state = 'active'", after)
}

func overdueSQL(n names, deadline, index string, after bool) string {
	sql := "SELECT entity_id, " + deadline + " FROM " + n.table + " WHERE " + index +
		" AND " + deadline + " < $1 AND domain = $2"
	if after {
		sql += " AND (" + deadline + ", entity_id) > ($4, $5)"
	}
	return sql + " ORDER BY " + deadline + ", entity_id LIMIT $3"
}

// Load returns the projection of entityID in the store's domain, or nil if
// there is none. Times are in UTC, NULL times are zero; stored times have
// microsecond precision.
func (s *Store) Load(ctx context.Context, entityID uuid.UUID) (*registration.Projection, error) {
	p, err := scanProjection(s.db.QueryRow(ctx, s.load, pgUUID(entityID), s.domain))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: load %s: %w", entityID, classify(err))
	}
	return p, nil
}

// LoadMany returns the projections of the entities that have one, in one
// round trip.
func (s *Store) LoadMany(ctx context.Context, entityIDs []uuid.UUID) (map[uuid.UUID]*registration.Projection, error) {
	ids := make([]pgtype.UUID, len(entityIDs))
	for i, id := range entityIDs {
		ids[i] = pgUUID(id)
	}
	rows, err := s.db.Query(ctx, s.loadMany, ids, s.domain)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: load %d projections: %w", len(entityIDs), classify(err))
	}
	defer rows.Close()
	out := make(map[uuid.UUID]*registration.Projection, len(entityIDs))
	for rows.Next() {
		p, err := scanProjection(rows)
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: load %d projections: %w", len(entityIDs), classify(err))
		}
		out[p.EntityID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrar/postgres: load %d projections: %w", len(entityIDs), classify(err))
	}
	return out, nil
}

// ListActive implements registration.ActiveLister: a page of the active
// projections after the entity id after, in entity id order, read from the
// partial index registration_projections_active. A limit below 1 is an
// error.
func (s *Store) ListActive(ctx context.Context, after uuid.UUID, limit int) ([]*registration.Projection, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/postgres: list active projections: limit %d is not positive", limit)
	}
	rows, err := s.db.Query(ctx, s.active, s.domain, pgtype.UUID{Bytes: after, Valid: true}, limit)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: list active projections: %w", classify(err))
	}
	defer rows.Close()
	var out []*registration.Projection
	for rows.Next() {
		p, err := scanProjection(rows)
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: list active projections: %w", classify(err))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrar/postgres: list active projections: %w", classify(err))
	}
	return out, nil
}

// CountByState implements registration.Reader: the projections of the
// store's domain by state, in one statement (countSQL). It counts every
// projection of the domain in the index (domain, current_state,
// entity_id), one range per state: the cost is linear in the number of
// projections, an index-only scan where the visibility map allows, which
// is acceptable for a count.
func (s *Store) CountByState(ctx context.Context) (map[registration.State]int, error) {
	rows, err := s.db.Query(ctx, s.count, s.domain)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: count projections: %w", classify(err))
	}
	defer rows.Close()
	out := map[registration.State]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("registrar/postgres: count projections: %w", classify(err))
		}
		out[registration.State(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrar/postgres: count projections: %w", classify(err))
	}
	return out, nil
}

// scanProjection reads entity_id and then loadColumns.
func scanProjection(row pgx.Row) (*registration.Projection, error) {
	var (
		p           registration.Projection
		id          pgtype.UUID
		state       string
		caps, eps   []byte
		times       [7]pgtype.Timestamptz
		event, corr pgtype.UUID
	)
	err := row.Scan(&id, &p.Domain, &state, &p.NodeType, &p.NodeVersion, &caps, &eps,
		&times[0], &times[1], &times[2], &times[3], &times[4],
		&event, &times[5], &times[6], &corr, &p.Generation)
	if err != nil {
		return nil, err
	}
	p.EntityID = id.Bytes
	p.State = registration.State(state)
	p.Capabilities = json.RawMessage(caps)
	if err := json.Unmarshal(eps, &p.Endpoints); err != nil {
		return nil, fmt.Errorf("endpoints of %s: %w", p.EntityID, err)
	}
	utc := func(t pgtype.Timestamptz) time.Time {
		if !t.Valid {
			return time.Time{}
		}
		return t.Time.UTC()
	}
	p.AckDeadline, p.LivenessDeadline, p.LastHeartbeatAt = utc(times[0]), utc(times[1]), utc(times[2])
	p.AckTimeoutEmittedAt, p.LivenessTimeoutEmittedAt = utc(times[3]), utc(times[4])
	p.RegisteredAt, p.UpdatedAt = utc(times[5]), utc(times[6])
	if event.Valid {
		p.LastAppliedEventID = event.Bytes
	}
	if corr.Valid {
		p.CorrelationID = corr.Bytes
	}
	return &p, nil
}

// OverdueAcks implements registration.Store. It reads the partial index
// of the overdue-ack scan from the cursor after on; ties are ordered by
// entity id. A limit below 1 is an error.
func (s *Store) OverdueAcks(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	return s.overdue(ctx, "overdue acks", s.acks, s.acksAfter, now, after, limit)
}

// OverdueLiveness implements registration.Store. It reads the partial
// index of the overdue-liveness scan from the cursor after on; ties are
// ordered by entity id. A limit below 1 is an error.
func (s *Store) OverdueLiveness(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	return s.overdue(ctx, "overdue liveness", s.live, s.liveAfter, now, after, limit)
}

func (s *Store) overdue(ctx context.Context, what, first, next string, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("registrar/postgres: %s: limit %d is not positive", what, limit)
	}
	sql, args := first, []any{now, s.domain, limit}
	if after.EntityID != uuid.Nil || !after.Deadline.IsZero() {
		// The nil UUID is a position too (before every other id), not NULL.
		sql, args = next, append(args, after.Deadline, pgtype.UUID{Bytes: after.EntityID, Valid: true})
	}
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("registrar/postgres: %s: %w", what, classify(err))
	}
	defer rows.Close()
	var out []registration.Overdue
	for rows.Next() {
		var o registration.Overdue
		if err := rows.Scan(&o.EntityID, &o.Deadline); err != nil {
			return nil, fmt.Errorf("registrar/postgres: %s: %w", what, classify(err))
		}
		o.Deadline = o.Deadline.UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrar/postgres: %s: %w", what, classify(err))
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "registrar/postgres: "+what+" scanned",
			slog.Time("now", now), slog.Time("after_deadline", after.Deadline), slog.String("after_entity", after.EntityID.String()),
			slog.Int("limit", limit), slog.Int("found", len(out)))
	}
	return out, nil
}
