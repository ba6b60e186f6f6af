// Package postgres keeps the registration projection in PostgreSQL (pgx v5):
// the postgres.upsert_registration and postgres.update_registration effects,
// the store the runtime and the sweeper read, the schema and its migrations.
//
// # Where it fits
//
// The reducer decides; its intents say what to write. The runtime executes
// them through an intent.Executor, in which [RegisterEffects] routes the two
// postgres.* intent types to an [Upsert] and an [Update]. Before deciding
// the next message of an entity, the runtime reads its projection back with
// [Store.Load]; the sweeper finds overdue entities with
// [Store.OverdueAcks] and [Store.OverdueLiveness], a page at a time after a
// keyset cursor (deadline, entity id) that the sweeper holds, so that the
// scans keep reading their partial indexes and need no state in the
// table. [Store] implements
// registration.Store, and the effects and the store together pass the
// shared suite in reducer/registration/registrationtest, as effects/memory
// does: the two are interchangeable.
//
// # Reading the registry
//
// [Store] is also a registration.Reader, the read API services use to
// find their peers: [Store.Get] one projection, [Store.List] a page of the
// projections that match a registration.Query (states, node type, a
// capability, updated since), in entity id order after an opaque keyset
// cursor, and [Store.CountByState]. Every filter has an index (migration
// 0004): the state and node type indexes (domain, column, entity_id) give
// a page in entity id order for one state or one type; a GIN index
// (jsonb_path_ops) serves capabilities @> {"name": true}; (domain,
// updated_at) serves the bound; the primary key (entity_id, domain) serves
// the unfiltered walk and, when the planner expects a filter to match
// often, the walk that filters as it goes. TestListUsesIndexes checks on
// 1M rows that no shape reads the table sequentially. A caveat: with ORDER
// BY entity_id LIMIT, a filter the planner overestimates (correlated
// filters, a capability it has no statistics for) is read through the
// primary key, which then passes many rows before it fills a page.
//
//	page, err := store.List(ctx, registration.Query{
//		States: []registration.State{registration.StateActive}, NodeType: "effect"})
//	// page.Items; then Cursor: page.Next for the next page, until it is ""
//
// # Setting up
//
//	pool, err := postgres.NewPool(ctx, postgres.Config{DSN: dsn})
//	// or: any *pgxpool.Pool the caller built; the caller closes it
//	err = postgres.Migrate(ctx, pool, postgres.MigrateConfig{Schema: "registrar"})
//	err = postgres.RegisterEffects(exec, pool, postgres.EffectConfig{Schema: "registrar"})
//	store, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: "registrar"})
//
// Everything takes a [DB]: the methods that *pgxpool.Pool and pgx.Tx share.
// Given a transaction, the effects write inside it, and their writes are
// durable only when the caller commits.
//
// # Schema and migrations
//
// Table registration_projections, primary key (entity_id, domain), with the
// registration_state enum (the eight states, lowercase), two partial
// indexes, one per overdue scan, a partial index of the active rows for
// the reconciler's listing, and the indexes of the read API. [Migrate] applies the embedded, versioned
// SQL files it has not applied yet, recorded in schema_migrations, under a
// transaction-scoped advisory lock: several instances may start at once,
// and running it twice changes nothing. The schema is configurable (a
// plain identifier, always quoted), so tests and tenants can each have
// their own.
//
// # Migrating with goose or atlas
//
// Where migrations are run by goose or atlas rather than by the
// application, [Migrations] (for [DefaultSchema]) and [MigrationsFor] (for
// another schema) give the same migrations as a file system in goose's SQL
// format: NNNN_name.sql files with "-- +goose Up" and "-- +goose Down"
// sections (the first file creates the schema), and the atlas.sum
// integrity file that atlas checks. Write it to a directory with os.CopyFS,
// which creates the directory and fails rather than overwrite a file, and
// run either tool on it:
//
//	fsys, err := postgres.MigrationsFor("registrar") // or postgres.Migrations()
//	err = os.CopyFS("migrations/registrar", fsys)
//
//	goose -dir migrations/registrar postgres "$DSN" up
//	atlas migrate apply --dir "file://migrations/registrar?format=goose" --url "$DSN"
//
// goose down (or down-to 0) undoes them: the Down sections drop the tables,
// indexes and type, and leave the schema, which may have existed before.
// atlas migrate apply refuses a database that holds anything already (such
// as other schemas) unless given --allow-dirty or --baseline, and refuses a
// directory whose files no longer match atlas.sum: regenerate the directory
// from the package rather than editing it.
//
// [Migrate] and the tools are alternatives: choose one per schema. Each
// records what it applied in its own table, which the others do not read:
// Migrate in schema_migrations in the schema itself; goose in
// goose_db_version in the first schema of the connection's search_path
// (public by default; goose's -table flag names another); atlas in
// atlas_schema_revisions, in the schema the --url is bound to
// (search_path=...) or otherwise in a schema of that name, and
// --revisions-schema names another. A schema migrated by one looks
// unmigrated to the others, which would try to create its objects again and
// fail.
//
// # Guards and results
//
// Every write is guarded exactly as registration.ApplyUpsert and
// registration.ApplyUpdate define. An upsert whose decision saw no row
// inserts (INSERT ... ON CONFLICT DO NOTHING: an existing row is a
// conflict); one whose decision saw a row overwrites the listed columns of
// that row if it is still in the state the decision saw (UPDATE ... AND
// current_state = $expected), so a row another writer removed, even while
// the statement waited for it, is a conflict and is never inserted again.
// An update carries AND current_state = $expected when the intent names a
// state, AND "<column>" IS NOT DISTINCT FROM $value for each column it
// guards (the values its decision read; NULL matches only NULL), and the
// monotonic heartbeat guard (last_heartbeat_at IS NULL OR
// last_heartbeat_at < $hb) when it writes last_heartbeat_at. A write that
// changes no row is not an error: the row is read back and judged as
// registration.ApplyUpsert or registration.UpdateRegistration.Check judge
// it, and the result says intent.Conflict (no row, another state, an
// unexpected row, or a guarded column that changed, named in the reason)
// or intent.Skipped (only the heartbeat guard failed). Such results are
// logged at debug and not retried. Column names come from the allowlist
// (registration.Columns) and are quoted; every value is a bind parameter.
// An [UpdateMap] payload takes the columns and the guards as maps, as the
// Python services send them, normalized by registration.UpdatesFromMap.
//
// # Batches
//
// Both effects implement intent.BatchEffect. A batch is one round trip (a
// pgx.Batch) and, outside a caller's transaction, one implicit
// transaction. [BatchArrays], the default, sends each run of same-shaped
// intents (the columns they write and the columns they guard) on distinct
// rows as one statement over unnest()ed arrays
// (heartbeats from many nodes become one UPDATE); an entity that appears
// again starts a new run, so it sees its earlier write. [BatchStatements]
// queues one statement per intent. BenchmarkHeartbeat compares them with
// one UPDATE per intent and with a hand-written UPDATE ... FROM unnest, and
// heartbeats that carry the reducer's column guards with heartbeats that
// do not; BenchmarkOverdueScan reads pages of the overdue scans on 1M rows.
//
// # Errors
//
// Errors say what failed, with the entity and the intent's correlation id:
// "registrar/postgres: update <entity> (correlation <id>): ...". Each is
// marked for the runtime by one rule: an intent is [intent.Permanent] only
// when it is at fault itself, when the server rejects the row's data and
// would reject it again whatever is done to the server; every fault of the
// environment is [intent.Retryable], so that the runtime retries the input
// without committing it and never dead-letters it for something an
// operator or the passing of time fixes:
//
//	failure                                      SQLSTATE            marked
//	connection refused, reset, lost; EOF         (none), class 08    Retryable
//	context deadline exceeded or canceled        (none)              Retryable
//	authentication: no such role, bad password   class 28            Retryable
//	insufficient resources (disk, memory, conns) class 53            Retryable
//	operator intervention: statement_timeout,    class 57            Retryable
//	  admin or crash shutdown, starting up
//	system error (I/O), internal error           classes 58, XX      Retryable
//	serialization failure, deadlock, unknown     40001, 40P01, 40003 Retryable
//	  completion
//	lock not available, object in use            55P03, 55006        Retryable
//	read-only transaction (a standby), session   25006, 25P03, 25P04 Retryable
//	  or transaction timeout
//	insufficient privilege: a GRANT missing      42501               Retryable
//	schema not migrated: undefined table,        42P01, 42703,       Retryable
//	  column, type or function; no such schema   42704, 42883,
//	  or database                                3F000, 3D000
//	data exception: value too long, invalid      class 22            Permanent
//	  text, out of range, bad encoding
//	integrity constraint violation               class 23            Permanent
//	invalid payload (checked before any SQL)     (none)              Permanent
//	anything else (a syntax error: a bug)        other               unmarked
//
// The runtime retries an unmarked error a bounded number of times
// (registrar.WithMaxAttempts) and then dead-letters the input with the
// count: what is neither the row's fault nor known to be the environment's
// (class 54, a program limit, say) neither blocks a partition for good nor
// loses the input at the first try. No error or log line carries the DSN or
// its password.
package postgres
