// Package intent carries the side effects a reducer decides on and routes
// them to the code that performs them.
//
// A reducer never writes to a database or calls a service registry; it
// returns [Intent]s ("upsert this projection", "register this service").
// An [Executor] maps each intent type to the [IntentEffect] registered for it
// and executes a decision's intents in order, stopping at the first failure.
//
// Routing is checked when the service starts, not at the first message:
// [Executor.CheckRoutes] fails if the contract routes an intent type that has
// no effect. Executing an unregistered type returns an error wrapping
// [ErrNoEffect] that names the type.
//
// Effects are idempotent: the runtime delivers at least once, so an intent may
// be executed again after a crash or a retry. A guarded write that changes
// nothing is not an error; the effect says so in its [Result]: [Skipped] when
// an idempotence guard held (a heartbeat no newer than the stored one),
// [Conflict] when the entity is no longer in the state the intent expected.
//
// Effects that can do many intents in one round trip also implement
// [BatchEffect]; the runtime then hands them all intents of one type at once.
//
// Errors: an effect marks transient failures with [Retryable] and failures that
// no retry can fix with [Permanent]. The runtime retries everything that is
// not permanent, without committing the message, so nothing is lost.
package intent
