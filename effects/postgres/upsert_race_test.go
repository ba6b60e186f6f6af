package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestUpsertRacingDeleteIsAConflict: an upsert that expects the state its
// decision read (a metadata refresh expecting active) starts while another
// transaction holds the row with an uncommitted DELETE; the delete commits
// while the upsert waits for the row. Under READ COMMITTED the upsert must
// then find no row and report a conflict that says so, and must not insert
// the row again (an INSERT ... ON CONFLICT would: its arbiter no longer
// finds the row). Single and batched, with both batch strategies; in the
// batch, an upsert of another row before it applies.
func TestUpsertRacingDeleteIsAConflict(t *testing.T) {
	for _, c := range []struct {
		name     string
		strategy BatchStrategy
		batch    bool
	}{
		{"Execute", BatchArrays, false},
		{"ExecuteBatch/" + BatchArrays.String(), BatchArrays, true},
		{"ExecuteBatch/" + BatchStatements.String(), BatchStatements, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := newTestDB(t)
			up, _ := db.effects(t, EffectConfig{Batch: c.strategy})
			store := db.store(t)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			base := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
			row := func(id uuid.UUID) registration.Projection {
				return registration.Projection{EntityID: id, Domain: registration.DefaultDomain, State: registration.StateActive,
					NodeType: "compute", NodeVersion: "1.0.0", RegisteredAt: base, UpdatedAt: base, Generation: 1}
			}
			upsert := func(p registration.Projection, cols registration.Columns, expected registration.State) intent.Intent {
				corr := uuid.New()
				return intent.Intent{Type: registration.IntentUpsert, Target: p.EntityID.String(), CorrelationID: corr,
					Payload: &registration.UpsertRegistration{Projection: p, Columns: cols, ExpectedState: expected, CorrelationID: corr}}
			}
			refresh := func(id uuid.UUID) intent.Intent {
				p := row(id)
				p.NodeVersion, p.UpdatedAt = "2.0.0", base.Add(time.Minute)
				return upsert(p, registration.ColNodeVersion|registration.ColUpdatedAt, registration.StateActive)
			}
			id, other := uuid.New(), uuid.New()
			for _, k := range []uuid.UUID{id, other} {
				if r, err := up.Execute(ctx, upsert(row(k), 0, registration.StateNone)); err != nil || r.Status != intent.Applied {
					t.Fatalf("insert %s: %v (%s), %v", k, r.Status, r.Reason, err)
				}
			}

			// The removal, uncommitted: it holds the row.
			tx, err := db.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
			table := pgx.Identifier{db.schema, "registration_projections"}.Sanitize()
			if tag, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE entity_id = $1 AND domain = $2",
				pgUUID(id), registration.DefaultDomain); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("delete: %v, %v", tag, err)
			}

			type outcome struct {
				rs  []intent.Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				if !c.batch {
					r, err := up.Execute(ctx, refresh(id))
					done <- outcome{[]intent.Result{r}, err}
					return
				}
				rs, err := up.ExecuteBatch(ctx, []intent.Intent{refresh(other), refresh(id)})
				done <- outcome{rs, err}
			}()
			waitForLockWait(ctx, t, db, done)
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var o outcome
			select {
			case o = <-done:
			case <-ctx.Done():
				t.Fatal("the upsert did not finish after the delete committed")
			}
			if o.err != nil {
				t.Fatal(o.err)
			}
			mine := o.rs[len(o.rs)-1]
			if mine.Status != intent.Conflict || !strings.Contains(mine.Reason, "no projection for "+id.String()) {
				t.Errorf("the upsert of the removed row: %v (%q), want a conflict saying there is no projection", mine.Status, mine.Reason)
			}
			if c.batch && o.rs[0].Status != intent.Applied {
				t.Errorf("the upsert of the other row: %v (%q), want applied", o.rs[0].Status, o.rs[0].Reason)
			}
			if p, err := store.Load(ctx, id); err != nil || p != nil {
				t.Errorf("the removed row after the upsert: %+v, %v; want none", p, err)
			}
			want := "1.0.0" // written only by the batch
			if c.batch {
				want = "2.0.0"
			}
			if p, err := store.Load(ctx, other); err != nil || p == nil || p.NodeVersion != want {
				t.Errorf("the other row after the upsert: %+v, %v; want node_version %s", p, err, want)
			}
		})
	}
}

// waitForLockWait waits until a statement on db's schema waits for a lock
// (the upsert, for the row the open delete holds), or fails the test if
// the upsert finished first or the wait takes too long.
func waitForLockWait[T any](ctx context.Context, t *testing.T, db *testDB, done <-chan T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND state = 'active'
			  AND position($1 in query) > 0`, db.schema).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-done:
			t.Fatal("the upsert finished without waiting for the row the open delete holds")
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the upsert did not wait for the row the open delete holds")
}
