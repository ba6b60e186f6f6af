package memory_test

import (
	"testing"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/reducer/registration/registrationtest"
)

// TestStoreConformance runs the store suite that the Postgres store passes
// too: the same guards, the same scans, batches equal to one-by-one.
func TestStoreConformance(t *testing.T) {
	registrationtest.RunStore(t, func(t *testing.T) registrationtest.Subject {
		s := memory.NewStore(memory.StoreConfig{})
		return registrationtest.Subject{Store: s, Upsert: s, Update: s}
	})
}

// TestOutboxConformance runs the outbox suite that the Postgres store
// passes too.
func TestOutboxConformance(t *testing.T) {
	registrationtest.RunOutbox(t, func(t *testing.T) registrationtest.OutboxSubject {
		s := memory.NewStore(memory.StoreConfig{})
		return registrationtest.OutboxSubject{Store: s, Outbox: s}
	})
}

// TestReaderConformance runs the read API suite that the Postgres store
// passes too.
func TestReaderConformance(t *testing.T) {
	registrationtest.RunReader(t, func(t *testing.T) registrationtest.ReaderSubject {
		s := memory.NewStore(memory.StoreConfig{})
		return registrationtest.ReaderSubject{Reader: s, Upsert: s, Update: s}
	})
}

// TestRemovalConformance runs the removal suite that the Postgres store
// passes too.
func TestRemovalConformance(t *testing.T) {
	registrationtest.RunRemoval(t, func(t *testing.T) registrationtest.OutboxSubject {
		s := memory.NewStore(memory.StoreConfig{})
		return registrationtest.OutboxSubject{Store: s, Outbox: s}
	})
}
