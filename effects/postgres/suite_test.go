package postgres

import (
	"testing"

	"github.com/registrar-go/registrar/reducer/registration/registrationtest"
)

// TestStoreSuite runs the shared store suite on PostgreSQL, once per batch
// strategy.
func TestStoreSuite(t *testing.T) {
	for _, strategy := range []BatchStrategy{BatchStatements, BatchArrays} {
		t.Run(strategy.String(), func(t *testing.T) {
			registrationtest.RunStore(t, func(t *testing.T) registrationtest.Subject {
				db := newTestDB(t)
				up, upd := db.effects(t, EffectConfig{Batch: strategy})
				return registrationtest.Subject{Store: db.store(t), Upsert: up, Update: upd}
			})
		})
	}
}

// TestOutboxSuite runs the shared outbox suite on PostgreSQL.
func TestOutboxSuite(t *testing.T) {
	registrationtest.RunOutbox(t, func(t *testing.T) registrationtest.OutboxSubject {
		s := newTestDB(t).store(t)
		return registrationtest.OutboxSubject{Store: s, Outbox: s}
	})
}

// TestRemovalSuite runs the shared removal suite on PostgreSQL: the
// guarded delete inside Commit.
func TestRemovalSuite(t *testing.T) {
	registrationtest.RunRemoval(t, func(t *testing.T) registrationtest.OutboxSubject {
		s := newTestDB(t).store(t)
		return registrationtest.OutboxSubject{Store: s, Outbox: s}
	})
}

// TestReaderSuite runs the shared read API suite on PostgreSQL.
func TestReaderSuite(t *testing.T) {
	registrationtest.RunReader(t, func(t *testing.T) registrationtest.ReaderSubject {
		db := newTestDB(t)
		up, upd := db.effects(t, EffectConfig{})
		return registrationtest.ReaderSubject{Reader: db.store(t), Upsert: up, Update: upd}
	})
}
