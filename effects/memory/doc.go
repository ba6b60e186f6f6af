// Package memory is registrar's embedded default for the registration
// workflow's side effects: an in-memory projection store ([Store]) and an
// in-memory service registry ([Registry]).
//
// [Store] serves the runtime's state reads and the sweeper's overdue scans
// (it implements registration.Store), and executes the postgres.* intents
// with exactly the guards of the Postgres effects: both follow
// registration.ApplyUpsert and registration.ApplyUpdate, and both pass the
// same conformance suite (reducer/registration/registrationtest). It is
// also a registration.Reader (Get, List, CountByState), with the Postgres
// store's semantics, held to them by the suite's RunReader: List pages
// through an ordered index of the entity ids (a binary search to the
// cursor, then the rows after it, filtered until the page is full; ids
// inserted since the last List are merged in by the next one). [Registry]
// executes the consul.* intents with the Consul effects' generation guard.
//
// [RegisterEffects] registers either or both: a nil store registers no
// postgres.* effect and a nil registry no consul.* effect, so the registry
// pairs with the Postgres store of effects/postgres in one call made after
// postgres.RegisterEffects (give the registry that store as
// RegistryConfig.Projections, so that its heals read the projections).
//
// Use them for examples, tests, and single-process deployments that need no
// durability. Both are safe for concurrent use. A fault hook lets tests make
// intents fail as an unavailable database or agent would.
package memory
