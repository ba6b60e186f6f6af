// Package registrationtest is the conformance suite every registration
// projection store must pass, with the reference model it is checked
// against.
//
// A store is a registration.Store (Load and the overdue scans) plus the two
// effects that write it: postgres.upsert_registration and
// postgres.update_registration. effects/memory and effects/postgres both
// pass this suite, which is what lets the runtime swap one for the other:
// registration.ApplyUpsert and registration.ApplyUpdate define the guards,
// and the suite holds each store to them.
//
// # Use
//
//	func TestStore(t *testing.T) {
//		registrationtest.RunStore(t, func(t *testing.T) registrationtest.Subject {
//			s := memory.NewStore(memory.StoreConfig{})
//			return registrationtest.Subject{Store: s, Upsert: s, Update: s}
//		})
//	}
//
// newStore is called once per group of checks and must return an empty
// store reading registration.DefaultDomain; a database-backed store gives
// each call its own schema and drops it in a t.Cleanup.
//
// # What it checks
//
// Upserts: inserts, a conflict when the row exists but the decision saw
// none or another state, re-registration from a terminal state (all
// columns, so the timeout markers are cleared), metadata refreshes that
// write only their columns, domains kept apart. Updates: the expected-state
// guard (conflict), the column guards of every guardable column (conflict
// naming the column; a zero value matches only NULL; checked after the
// state guard and before the heartbeat guard), the heartbeat guard (skip
// for an older, equal or NULL heartbeat), a missing row (conflict), NULL
// and JSON values. The registration reducer's decisions are replayed on
// the store with another writer's change between a decision and its write
// (a heartbeat before a liveness timeout, a re-registration before an
// ack): the write conflicts, and the decision made again sees the change.
// Invalid payloads are [intent.Permanent] errors that change nothing. Load
// returns every column; the overdue scans filter, order by deadline then
// entity id, honour their limit, and page after a cursor. If both effects
// implement intent.BatchEffect, batches must give the results and rows of
// executing the same intents one by one, on a random [Workload] in which
// entities repeat and guards hold or fail. Last, a property test
// (pgregory.net/rapid) executes random intents on a store and on [Model]
// and compares every result and row, and the scans read whole and in
// pages.
//
// # The read API
//
// [RunReader] holds a registration.Reader to its documented semantics:
// Get, List with each filter and their combinations against expectations
// computed from the rows written, ordering, page sizes and cursors, bad
// input, pagination while a writer goroutine changes and inserts rows,
// CountByState against List, cancelled contexts. Both stores run it.
//
// # Precision
//
// The generated times have microsecond precision, as PostgreSQL's
// timestamptz, and some are in a zone other than UTC; [Diff] compares
// instants, JSON by value, and treats nil and empty endpoints and
// capabilities as the same. A store that keeps nanoseconds passes too.
package registrationtest
