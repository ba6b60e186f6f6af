package postgres

import (
	"context"
	"crypto/md5"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// benchRows is how many active rows the heartbeat benchmarks update, in
// turn.
const benchRows = 10_000

// benchIDs returns the ids loadRows gives rows 1..n: md5(i::text)::uuid.
func benchIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.UUID(md5.Sum([]byte(strconv.Itoa(i + 1))))
	}
	return ids
}

// BenchmarkHeartbeat measures heartbeat updates per second on a table of
// active rows: one guarded UPDATE round trip per intent (the original
// design), ExecuteBatch with each strategy (256 intents per call), and a
// hand-written UPDATE ... FROM unnest(...) of the same 256 rows that
// returns nothing per intent: the ceiling the batch path is compared with.
// Every heartbeat is newer than the stored one, so every intent applies.
func BenchmarkHeartbeat(b *testing.B) {
	db := newTestDB(b)
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.pool.Exec(ctx, `INSERT INTO `+db.schema+`.registration_projections
		(entity_id, current_state, node_type, liveness_deadline, last_heartbeat_at, updated_at)
		SELECT md5(i::text)::uuid, 'active', 'effect', $1::timestamptz, $1::timestamptz, $1::timestamptz
		FROM generate_series(1, $2::int) AS i`, base, benchRows); err != nil {
		b.Fatal(err)
	}
	// Every sub-benchmark starts on a freshly vacuumed table, so that the
	// dead rows an earlier one left do not slow a later one.
	vacuum := func(b *testing.B) {
		if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE "+db.schema+".registration_projections"); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
	}
	ids := benchIDs(benchRows)
	var clock atomic.Int64 // microseconds after base: every heartbeat is newer
	next := func() time.Time { return base.Add(time.Duration(clock.Add(1)) * time.Microsecond) }
	const batchSize = 256

	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "intents/s")
	}
	b.Run("one-update-per-intent", func(b *testing.B) {
		_, upd := db.effects(b, EffectConfig{})
		vacuum(b)
		for i := 0; b.Loop(); i++ {
			r, err := upd.Execute(ctx, heartbeatIntent(ids[i%benchRows], next()))
			if err != nil || r.Status != intent.Applied {
				b.Fatalf("heartbeat: %v (%s) %v", r.Status, r.Reason, err)
			}
		}
		report(b)
	})
	for _, s := range []struct {
		name     string
		strategy BatchStrategy
	}{{"batch", BatchDefault}, {"batch-statements", BatchStatements}, {"batch-arrays", BatchArrays}} {
		b.Run(s.name, func(b *testing.B) {
			_, upd := db.effects(b, EffectConfig{Batch: s.strategy})
			ins := make([]intent.Intent, 0, batchSize)
			done := 0
			vacuum(b)
			for i := 0; i < b.N; i += batchSize {
				ins = ins[:0]
				for k := range min(batchSize, b.N-i) {
					ins = append(ins, heartbeatIntent(ids[(done+k)%benchRows], next()))
				}
				done += len(ins)
				rs, err := upd.ExecuteBatch(ctx, ins)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range rs {
					if r.Status != intent.Applied {
						b.Fatalf("heartbeat: %v (%s)", r.Status, r.Reason)
					}
				}
			}
			report(b)
		})
	}
	rawSQL := `UPDATE ` + db.schema + `.registration_projections AS t
		SET last_heartbeat_at = v.hb, liveness_deadline = v.dl, updated_at = v.ua
		FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[]) AS v(entity_id, hb, dl, ua)
		WHERE t.entity_id = v.entity_id AND t.domain = 'registration' AND t.current_state = 'active'
		  AND (t.last_heartbeat_at IS NULL OR t.last_heartbeat_at < v.hb)`
	// raw sends k heartbeats, starting at entity from, with the
	// hand-written statement: ids in binary, as the effects send them.
	raw := func(b *testing.B, from, k int) {
		batchIDs := make([][16]byte, k)
		hbs := make([]time.Time, k)
		dls := make([]time.Time, k)
		for j := range k {
			at := next()
			batchIDs[j], hbs[j], dls[j] = ids[(from+j)%benchRows], at, at.Add(90*time.Second)
		}
		tag, err := db.pool.Exec(ctx, rawSQL, batchIDs, hbs, dls, hbs)
		if err != nil {
			b.Fatal(err)
		}
		if int(tag.RowsAffected()) != k {
			b.Fatalf("%d rows updated, want %d", tag.RowsAffected(), k)
		}
	}
	b.Run("raw-unnest", func(b *testing.B) {
		vacuum(b)
		for i := 0; i < b.N; i += batchSize {
			raw(b, i, min(batchSize, b.N-i))
		}
		report(b)
	})
	// On a shared machine the load changes from one sub-benchmark to the
	// next; this one alternates a batch and a raw statement of 256 and
	// reports both rates and their ratio, measured under the same load.
	b.Run("batch-vs-raw-paired", func(b *testing.B) {
		_, upd := db.effects(b, EffectConfig{})
		var batchTime, rawTime time.Duration
		var batchN, rawN int
		ins := make([]intent.Intent, 0, batchSize)
		vacuum(b)
		for i := 0; i < b.N; {
			k := min(batchSize, b.N-i)
			ins = ins[:0]
			for j := range k {
				ins = append(ins, heartbeatIntent(ids[(i+j)%benchRows], next()))
			}
			start := time.Now()
			if rs, err := upd.ExecuteBatch(ctx, ins); err != nil || len(rs) != k {
				b.Fatal(err)
			}
			batchTime += time.Since(start)
			batchN += k
			i += k
			if k = min(batchSize, b.N-i); k > 0 {
				start = time.Now()
				raw(b, i, k)
				rawTime += time.Since(start)
				rawN += k
				i += k
			}
		}
		if batchN > 0 && rawN > 0 {
			batchRate, rawRate := float64(batchN)/batchTime.Seconds(), float64(rawN)/rawTime.Seconds()
			b.ReportMetric(batchRate, "batch-intents/s")
			b.ReportMetric(rawRate, "raw-intents/s")
			b.ReportMetric(batchRate/rawRate, "batch/raw")
		}
	})
	// The reducer's heartbeat updates guard liveness_deadline and
	// updated_at (the values its decision read). This one alternates a
	// batch of 256 guarded heartbeats with 256 unguarded ones and reports
	// both rates and their ratio, under the same load: what the guard
	// costs on the arrays path.
	b.Run("guarded-vs-unguarded-paired", func(b *testing.B) {
		_, upd := db.effects(b, EffectConfig{})
		// What each row holds now, for the guards to expect.
		stored := map[uuid.UUID]registration.Projection{}
		rows, err := db.pool.Query(ctx, "SELECT entity_id, liveness_deadline, updated_at FROM "+db.schema+".registration_projections")
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var p registration.Projection
			if err := rows.Scan(&id, &p.LivenessDeadline, &p.UpdatedAt); err != nil {
				b.Fatal(err)
			}
			stored[id] = p
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		var times [2]time.Duration
		var counts [2]int
		ins := make([]intent.Intent, 0, batchSize)
		vacuum(b)
		for i, k := 0, 0; i < b.N; k++ {
			n := min(batchSize, b.N-i)
			guarded := k%2 == 0
			ins = ins[:0]
			for j := range n {
				id := ids[(i+j)%benchRows]
				in := heartbeatIntent(id, next())
				u := in.Payload.(*registration.UpdateRegistration)
				if guarded {
					u.Guard, u.Expected = registration.ColLivenessDeadline|registration.ColUpdatedAt, stored[id]
				}
				stored[id] = registration.Projection{LivenessDeadline: u.Values.LivenessDeadline, UpdatedAt: u.Values.UpdatedAt}
				ins = append(ins, in)
			}
			start := time.Now()
			rs, err := upd.ExecuteBatch(ctx, ins)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rs {
				if r.Status != intent.Applied {
					b.Fatalf("heartbeat: %v (%s)", r.Status, r.Reason)
				}
			}
			g := 0
			if !guarded {
				g = 1
			}
			times[g] += time.Since(start)
			counts[g] += n
			i += n
		}
		if counts[0] > 0 && counts[1] > 0 {
			guardedRate, plainRate := float64(counts[0])/times[0].Seconds(), float64(counts[1])/times[1].Seconds()
			b.ReportMetric(guardedRate, "guarded-intents/s")
			b.ReportMetric(plainRate, "unguarded-intents/s")
			b.ReportMetric(guardedRate/plainRate, "guarded/unguarded")
		}
	})
}

// BenchmarkOverdueScan measures the sweeper's overdue scans on 1M rows
// (loadRows: about 10k overdue acks and 475k overdue active nodes at the
// time scanned), one page of DefaultSweepLimit entities per call, as the
// sweeper reads them: the first page, and a page after a cursor in the
// middle of the overdue entities (the sweeper's next pages).
func BenchmarkOverdueScan(b *testing.B) {
	const rows, limit = 1_000_000, 1000
	db := newTestDB(b)
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := bulkLoad(ctx, db, rows, base); err != nil {
		b.Fatal(err)
	}
	store := db.store(b)
	now := base.Add(12 * time.Hour)
	for _, scan := range []struct {
		name string
		f    func(context.Context, time.Time, registration.Overdue, int) ([]registration.Overdue, error)
	}{{"acks", store.OverdueAcks}, {"liveness", store.OverdueLiveness}} {
		// The cursor: the last entity of a page read in the middle.
		mid, err := scan.f(ctx, now, registration.Overdue{Deadline: base.Add(6 * time.Hour)}, limit)
		if err != nil || len(mid) != limit {
			b.Fatalf("%d entities, %v", len(mid), err)
		}
		for _, c := range []struct {
			name  string
			after registration.Overdue
		}{{"first-page", registration.Overdue{}}, {"page-after-cursor", mid[len(mid)-1]}} {
			b.Run(scan.name+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					got, err := scan.f(ctx, now, c.after, limit)
					if err != nil || len(got) != limit {
						b.Fatalf("%d entities, %v", len(got), err)
					}
				}
			})
		}
	}
}
