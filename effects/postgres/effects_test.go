package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
	"github.com/registrar-go/registrar/reducer/registration/registrationtest"
)

// countingDB counts the statements sent through it.
type countingDB struct {
	DB
	n atomic.Int32
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.n.Add(1)
	return c.DB.Exec(ctx, sql, args...)
}

func (c *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n.Add(1)
	return c.DB.Query(ctx, sql, args...)
}

func (c *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n.Add(1)
	return c.DB.QueryRow(ctx, sql, args...)
}

func (c *countingDB) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	c.n.Add(int32(b.Len()))
	return c.DB.SendBatch(ctx, b)
}

// noSQL is a DB that fails the test if anything is sent through it.
type noSQL struct{ t *testing.T }

func (d noSQL) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	d.t.Error("SQL sent")
	return pgconn.CommandTag{}, errors.New("no SQL")
}

func (d noSQL) Query(context.Context, string, ...any) (pgx.Rows, error) {
	d.t.Error("SQL sent")
	return nil, errors.New("no SQL")
}

func (d noSQL) QueryRow(context.Context, string, ...any) pgx.Row {
	d.t.Error("SQL sent")
	return nil
}

func (d noSQL) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults {
	d.t.Error("SQL sent")
	return nil
}

// logBuffer is a concurrency-safe buffer for a slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func debugLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func activeRow(id uuid.UUID) registration.Projection {
	return registration.Projection{
		EntityID: id, Domain: registration.DefaultDomain, State: registration.StateActive, NodeType: "effect",
		NodeVersion: "1.0.0", LastHeartbeatAt: t0, LivenessDeadline: t0.Add(90 * time.Second), UpdatedAt: t0,
	}
}

func upsertIntent(p registration.Projection, expected registration.State) intent.Intent {
	c := uuid.New()
	return intent.Intent{Type: registration.IntentUpsert, Target: p.EntityID.String(), CorrelationID: c,
		Payload: &registration.UpsertRegistration{Projection: p, ExpectedState: expected, CorrelationID: c}}
}

func heartbeatIntent(id uuid.UUID, at time.Time) intent.Intent {
	c := uuid.New()
	return intent.Intent{Type: registration.IntentUpdate, Target: id.String(), CorrelationID: c,
		Payload: &registration.UpdateRegistration{EntityID: id, Domain: registration.DefaultDomain, ExpectedState: registration.StateActive,
			Set:    registration.ColLastHeartbeatAt | registration.ColLivenessDeadline | registration.ColUpdatedAt,
			Values: registration.Projection{LastHeartbeatAt: at, LivenessDeadline: at.Add(90 * time.Second), UpdatedAt: at}, CorrelationID: c}}
}

func mustApply(t *testing.T, eff intent.IntentEffect, in intent.Intent, want intent.Status) intent.Result {
	t.Helper()
	r, err := eff.Execute(t.Context(), in)
	if err != nil {
		t.Fatalf("execute %s: %v", in.Type, err)
	}
	if r.Status != want {
		t.Fatalf("execute %s: %v (%s), want %v", in.Type, r.Status, r.Reason, want)
	}
	return r
}

func load(t *testing.T, s *Store, id uuid.UUID) *registration.Projection {
	t.Helper()
	p, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUpdateMapNormalizes(t *testing.T) {
	db := newTestDB(t)
	up, upd := db.effects(t, EffectConfig{})
	store := db.store(t)
	id := uuid.New()
	mustApply(t, up, upsertIntent(activeRow(id), registration.StateNone), intent.Applied)

	event, corr := uuid.New(), uuid.New()
	var caps any
	if err := json.Unmarshal([]byte(`{"feature": {"on": true, "n": 2}}`), &caps); err != nil {
		t.Fatal(err)
	}
	m := UpdateMap{EntityID: id, ExpectedState: registration.StateActive, Updates: map[string]any{
		"last_applied_event_id": event.String(),                      // UUID string
		"correlation_id":        strings.ToUpper(corr.String()),      // upper-case UUID string
		"last_heartbeat_at":     "2025-06-01T14:00:01.5+02:00",       // RFC 3339 with a zone
		"liveness_deadline":     "2025-06-01T12:01:30.25",            // no zone: UTC
		"updated_at":            "2025-06-01 12:00:02",               // space-separated, no zone
		"ack_deadline":          nil,                                 // NULL
		"generation":            json.Number("7"),                    // JSON number
		"endpoints":             map[string]any{"api": "http://x:1"}, // JSON object
		"capabilities":          caps,                                // decoded JSON
	}}
	for _, payload := range []any{m, &m} {
		in := intent.Intent{Type: registration.IntentUpdate, Target: id.String(), Payload: payload}
		r, err := upd.Execute(t.Context(), in)
		if err != nil {
			t.Fatalf("%T: %v", payload, err)
		}
		if _, isPtr := payload.(*UpdateMap); !isPtr && r.Status != intent.Applied {
			t.Fatalf("first update: %v (%s)", r.Status, r.Reason)
		}
		if _, isPtr := payload.(*UpdateMap); isPtr && r.Status != intent.Skipped {
			t.Fatalf("same update again: %v (%s), want skipped by the heartbeat guard", r.Status, r.Reason)
		}
	}
	want := activeRow(id)
	want.LastAppliedEventID, want.CorrelationID, want.Generation = event, corr, 7
	want.LastHeartbeatAt = time.Date(2025, 6, 1, 12, 0, 1, 500_000_000, time.UTC)
	want.LivenessDeadline = time.Date(2025, 6, 1, 12, 1, 30, 250_000_000, time.UTC)
	want.UpdatedAt = time.Date(2025, 6, 1, 12, 0, 2, 0, time.UTC)
	want.Endpoints = map[string]string{"api": "http://x:1"}
	want.Capabilities = json.RawMessage(`{"feature":{"n":2,"on":true}}`)
	if d := registrationtest.Diff(&want, load(t, store, id)); d != "" {
		t.Error(d)
	}

	// An empty Domain is the default domain; a missing row is a conflict.
	r, err := upd.Execute(t.Context(), intent.Intent{Type: registration.IntentUpdate, Payload: &UpdateMap{
		EntityID: uuid.New(), Updates: map[string]any{"node_version": "2"}}})
	if err != nil || r.Status != intent.Conflict {
		t.Errorf("update map of a missing row: %v (%s), %v; want conflict", r.Status, r.Reason, err)
	}
}

// TestUpdateMapGuards: the map form carries column guards, normalized as
// its updates; a guard that fails is a conflict naming the column.
func TestUpdateMapGuards(t *testing.T) {
	db := newTestDB(t)
	up, upd := db.effects(t, EffectConfig{})
	id := uuid.New()
	mustApply(t, up, upsertIntent(activeRow(id), registration.StateNone), intent.Applied)
	m := &UpdateMap{EntityID: id, ExpectedState: registration.StateActive,
		Updates: map[string]any{"current_state": "liveness_expired", "liveness_timeout_emitted_at": t0.Add(time.Hour)},
		Guard: map[string]any{
			"liveness_deadline":           t0.Add(90 * time.Second).In(time.FixedZone("", 3600)).Format(time.RFC3339Nano),
			"last_heartbeat_at":           t0,
			"liveness_timeout_emitted_at": nil,
			"generation":                  json.Number("1"),
		}}
	r := mustApply(t, upd, intent.Intent{Type: registration.IntentUpdate, Payload: m}, intent.Conflict)
	if !strings.Contains(r.Reason, "generation is 0") {
		t.Errorf("reason %q does not name generation and its value", r.Reason)
	}
	m.Guard["generation"] = 0
	mustApply(t, upd, intent.Intent{Type: registration.IntentUpdate, Payload: m}, intent.Applied)
	if got := load(t, db.store(t), id); got.State != registration.StateLivenessExpired {
		t.Errorf("state %s, want liveness_expired", got.State)
	}
}

func TestInvalidIntentsSendNoSQL(t *testing.T) {
	up, err := NewUpsert(noSQL{t}, EffectConfig{})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := NewUpdate(noSQL{t}, EffectConfig{})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	corr := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	for _, c := range []struct {
		name  string
		eff   intent.BatchEffect
		in    intent.Intent
		names []string // what the error must name
	}{
		{"unknown column", upd, intent.Intent{Type: registration.IntentUpdate, CorrelationID: corr,
			Payload: UpdateMap{EntityID: id, Updates: map[string]any{"node_type": "x", "password": "hunter2"}}}, []string{`"password"`, corr.String()}},
		{"key column", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &UpdateMap{EntityID: id, Updates: map[string]any{"entity_id": uuid.NewString()}}}, []string{`"entity_id"`}},
		{"empty update map", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &UpdateMap{EntityID: id, Updates: map[string]any{}}}, []string{"empty update set"}},
		{"guard on an unknown column", upd, intent.Intent{Type: registration.IntentUpdate, Payload: &UpdateMap{EntityID: id,
			Updates: map[string]any{"node_type": "x"}, Guard: map[string]any{"password": "hunter2"}}}, []string{"guard", `"password"`}},
		{"guard on a JSON column", upd, intent.Intent{Type: registration.IntentUpdate, Payload: &UpdateMap{EntityID: id,
			Updates: map[string]any{"node_type": "x"}, Guard: map[string]any{"endpoints": map[string]any{}}}}, []string{"guard", "endpoints"}},
		{"guard with a bad value", upd, intent.Intent{Type: registration.IntentUpdate, Payload: &UpdateMap{EntityID: id,
			Updates: map[string]any{"node_type": "x"}, Guard: map[string]any{"ack_deadline": "soon"}}}, []string{"guard", `"ack_deadline"`}},
		{"empty column set", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &registration.UpdateRegistration{EntityID: id, Domain: "registration"}}, []string{"empty update set"}},
		{"bad UUID string", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &UpdateMap{EntityID: id, Updates: map[string]any{"correlation_id": "not-a-uuid"}}}, []string{`"correlation_id"`}},
		{"bad time string", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &UpdateMap{EntityID: id, Updates: map[string]any{"updated_at": "yesterday"}}}, []string{`"updated_at"`}},
		{"bad state", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &UpdateMap{EntityID: id, Updates: map[string]any{"current_state": "ACTIVE"}}}, []string{`"current_state"`}},
		{"invalid capabilities JSON", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &registration.UpdateRegistration{EntityID: id, Domain: "registration", Set: registration.ColCapabilities,
				Values: registration.Projection{Capabilities: json.RawMessage(`{"a":`)}}}, []string{"capabilities"}},
		{"update payload of another type", upd, intent.Intent{Type: registration.IntentUpdate, Payload: map[string]any{"node_type": "x"}},
			[]string{"map[string]interface {}"}},
		{"update payload of the upsert type", upd, intent.Intent{Type: registration.IntentUpdate,
			Payload: &registration.UpsertRegistration{}}, []string{"*registration.UpsertRegistration"}},
		{"nil update map", upd, intent.Intent{Type: registration.IntentUpdate, Payload: (*UpdateMap)(nil)}, []string{"*postgres.UpdateMap"}},
		{"upsert payload of another type", up, intent.Intent{Type: registration.IntentUpsert, Payload: &registration.UpdateRegistration{}},
			[]string{"*registration.UpdateRegistration"}},
		{"upsert without node type", up, intent.Intent{Type: registration.IntentUpsert, CorrelationID: corr,
			Payload: &registration.UpsertRegistration{Projection: registration.Projection{EntityID: id, Domain: "registration", State: registration.StateActive}}},
			[]string{"node_type", corr.String(), id.String()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, batch := range []bool{false, true} {
				var err error
				if batch {
					_, err = c.eff.ExecuteBatch(t.Context(), []intent.Intent{c.in})
				} else {
					_, err = c.eff.Execute(t.Context(), c.in)
				}
				if !intent.IsPermanent(err) {
					t.Fatalf("batch=%v: error %v, want a permanent one", batch, err)
				}
				for _, s := range c.names {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("batch=%v: error %q does not name %s", batch, err, s)
					}
				}
			}
		})
	}
}

func TestRowsAffected(t *testing.T) {
	db := newTestDB(t)
	counted := &countingDB{DB: db.pool}
	var logs logBuffer
	cfg := EffectConfig{Schema: db.schema, Logger: debugLogger(&logs)}
	up, err := NewUpsert(counted, cfg)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := NewUpdate(counted, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	step := func(name string, eff intent.IntentEffect, in intent.Intent, want intent.Status, statements int32) {
		t.Helper()
		counted.n.Store(0)
		mustApply(t, eff, in, want)
		if got := counted.n.Load(); got != statements {
			t.Errorf("%s: %d statements, want %d", name, got, statements)
		}
	}
	step("insert", up, upsertIntent(activeRow(id), registration.StateNone), intent.Applied, 1)
	step("heartbeat", upd, heartbeatIntent(id, t0.Add(time.Second)), intent.Applied, 1)
	if logs.String() != "" {
		t.Errorf("applied intents logged: %s", logs.String())
	}
	stale := heartbeatIntent(id, t0)
	step("stale heartbeat", upd, stale, intent.Skipped, 2)
	step("existing row", up, upsertIntent(activeRow(id), registration.StateNone), intent.Conflict, 2)
	step("missing row", upd, heartbeatIntent(uuid.New(), t0), intent.Conflict, 2)
	out := logs.String()
	for _, s := range []string{"level=DEBUG", "status=skipped", "status=conflict", id.String(), stale.CorrelationID.String(),
		`reason="stored heartbeat is not older"`, `reason="projection exists in state active; the decision saw none"`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %q:\n%s", s, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d log lines, want one per zero-row intent (3):\n%s", n, out)
	}
}

func TestEffectsInCallerTransaction(t *testing.T) {
	db := newTestDB(t)
	store := db.store(t)
	for _, commit := range []bool{false, true} {
		tx, err := db.pool.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		up, err := NewUpsert(tx, EffectConfig{Schema: db.schema})
		if err != nil {
			t.Fatal(err)
		}
		upd, err := NewUpdate(tx, EffectConfig{Schema: db.schema})
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.New()
		mustApply(t, up, upsertIntent(activeRow(id), registration.StateNone), intent.Applied)
		rs, err := upd.ExecuteBatch(t.Context(), []intent.Intent{heartbeatIntent(id, t0.Add(time.Second)), heartbeatIntent(id, t0)})
		if err != nil || rs[0].Status != intent.Applied || rs[1].Status != intent.Skipped {
			t.Fatalf("batch in a transaction: %v, %v", rs, err)
		}
		if got, err := NewStore(tx, StoreConfig{Schema: db.schema}); err != nil || load(t, got, id) == nil {
			t.Fatalf("the transaction does not see its own row (%v)", err)
		}
		if commit {
			err = tx.Commit(t.Context())
		} else {
			err = tx.Rollback(t.Context())
		}
		if err != nil {
			t.Fatal(err)
		}
		if p := load(t, store, id); (p != nil) != commit {
			t.Errorf("commit=%v: row after the transaction: %v", commit, p)
		} else if commit && !p.LastHeartbeatAt.Equal(t0.Add(time.Second)) {
			t.Errorf("committed heartbeat %v", p.LastHeartbeatAt)
		}
	}
}

func TestBatchIsOneRoundTripAndAtomic(t *testing.T) {
	db := newTestDB(t)
	for _, strategy := range []BatchStrategy{BatchStatements, BatchArrays} {
		t.Run(strategy.String(), func(t *testing.T) {
			up, upd := db.effects(t, EffectConfig{Batch: strategy})
			store := db.store(t)
			ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
			var ins []intent.Intent
			for _, id := range ids {
				ins = append(ins, upsertIntent(activeRow(id), registration.StateNone))
			}
			if _, err := up.ExecuteBatch(t.Context(), ins); err != nil {
				t.Fatal(err)
			}
			// A data error in the last intent rolls back the whole batch.
			bad := activeRow(uuid.New())
			bad.NodeType = "nul\x00byte"
			_, err := up.ExecuteBatch(t.Context(), []intent.Intent{
				upsertIntent(activeRow(uuid.New()), registration.StateNone), upsertIntent(bad, registration.StateNone)})
			if !intent.IsPermanent(err) {
				t.Fatalf("batch with a NUL byte: %v, want a permanent data error", err)
			}
			ins = ins[:0]
			for _, id := range ids {
				ins = append(ins, heartbeatIntent(id, t0.Add(time.Minute)))
			}
			nul := heartbeatIntent(ids[0], t0.Add(2*time.Minute))
			nul.Payload.(*registration.UpdateRegistration).Set |= registration.ColNodeVersion
			nul.Payload.(*registration.UpdateRegistration).Values.NodeVersion = "\x00"
			_, err = upd.ExecuteBatch(t.Context(), append(ins, nul))
			if !intent.IsPermanent(err) || !strings.Contains(err.Error(), "intent 3") || !strings.Contains(err.Error(), nul.CorrelationID.String()) {
				t.Fatalf("batch with a NUL byte: %v, want a permanent error naming intent 3 and its correlation id", err)
			}
			for _, id := range ids {
				if p := load(t, store, id); !p.LastHeartbeatAt.Equal(t0) {
					t.Errorf("a failed batch left heartbeat %v on %s", p.LastHeartbeatAt, id)
				}
			}
		})
	}
}

func TestSpans(t *testing.T) {
	a, b, c := rowKey{id: uuid.New()}, rowKey{id: uuid.New()}, rowKey{id: uuid.New()}
	for _, tc := range []struct {
		name   string
		shapes []int
		keys   []rowKey
		want   []span
	}{
		{"one run", []int{1, 1, 1}, []rowKey{a, b, c}, []span{{0, 3}}},
		{"shape change", []int{1, 1, 2, 2}, []rowKey{a, b, a, b}, []span{{0, 2}, {2, 4}}},
		{"repeated entity", []int{1, 1, 1, 1}, []rowKey{a, b, a, c}, []span{{0, 2}, {2, 4}}},
		{"same entity twice in a row", []int{1, 1}, []rowKey{a, a}, []span{{0, 1}, {1, 2}}},
		{"same id, other domain", []int{1, 1}, []rowKey{a, {id: a.id, domain: "x"}}, []span{{0, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := spans(BatchArrays, len(tc.keys), func(i int) int { return tc.shapes[i] }, func(i int) rowKey { return tc.keys[i] })
			if len(got) != len(tc.want) {
				t.Fatalf("spans %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("spans %v, want %v", got, tc.want)
				}
			}
			if st := spans(BatchStatements, len(tc.keys), func(i int) int { return tc.shapes[i] }, func(i int) rowKey { return tc.keys[i] }); len(st) != len(tc.keys) {
				t.Errorf("statements: %v, want one span per intent", st)
			}
		})
	}
}

func TestConstructorsRejectBadConfig(t *testing.T) {
	for _, schema := range []string{"bad;name", `"quoted"`, "1starts_with_digit", "has space", "ümlaut", strings.Repeat("x", 64)} {
		if _, err := NewUpdate(noSQL{t}, EffectConfig{Schema: schema}); err == nil {
			t.Errorf("NewUpdate accepted schema %q", schema)
		}
		if _, err := NewStore(noSQL{t}, StoreConfig{Schema: schema}); err == nil {
			t.Errorf("NewStore accepted schema %q", schema)
		}
		if err := Migrate(t.Context(), nil, MigrateConfig{Schema: schema}); err == nil {
			t.Errorf("Migrate accepted schema %q", schema)
		}
	}
	if _, err := NewUpsert(nil, EffectConfig{}); err == nil {
		t.Error("NewUpsert accepted a nil DB")
	}
	if _, err := NewUpsert(noSQL{t}, EffectConfig{Batch: 9}); err == nil {
		t.Error("NewUpsert accepted an unknown batch strategy")
	}
	s, err := NewStore(noSQL{t}, StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OverdueAcks(t.Context(), t0, registration.Overdue{}, 0); err == nil {
		t.Error("OverdueAcks accepted limit 0")
	}
}

func TestMixedCaseSchema(t *testing.T) {
	db := newTestDB(t)
	schema := "Reg_Mixed_" + db.schema
	t.Cleanup(func() {
		_, _ = db.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	if err := Migrate(t.Context(), db.pool, MigrateConfig{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	up, err := NewUpsert(db.pool, EffectConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(db.pool, StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	mustApply(t, up, upsertIntent(activeRow(id), registration.StateNone), intent.Applied)
	if load(t, store, id) == nil {
		t.Fatal("row not found in the mixed-case schema")
	}
	if load(t, db.store(t), id) != nil {
		t.Fatal("row found in the other schema")
	}
}
