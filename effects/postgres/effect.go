package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// BatchStrategy chooses how ExecuteBatch sends many intents in one round
// trip. Both give the same results; they differ in speed.
type BatchStrategy uint8

const (
	// BatchDefault is the strategy measured faster: [BatchArrays].
	BatchDefault BatchStrategy = iota
	// BatchStatements queues one guarded statement per intent in a
	// pgx.Batch: one round trip, one statement execution per intent.
	BatchStatements
	// BatchArrays splits the intents into runs of the same shape (columns
	// written, guards) that name each entity at most once, and sends each
	// run as one statement over unnest()ed arrays; runs of one intent
	// fall back to the single statement. All runs go in one pgx.Batch, in
	// order, so a later run sees an earlier run's writes.
	BatchArrays
)

// String returns "default", "statements" or "arrays".
func (s BatchStrategy) String() string {
	switch s {
	case BatchDefault:
		return "default"
	case BatchStatements:
		return "statements"
	case BatchArrays:
		return "arrays"
	}
	return fmt.Sprintf("BatchStrategy(%d)", uint8(s))
}

// EffectConfig configures the [Upsert] and [Update] effects. The zero value
// of a field means its default.
type EffectConfig struct {
	// Schema is the schema [Migrate] created the tables in; default
	// [DefaultSchema].
	Schema string
	// Logger receives a debug line for every intent that changed no row
	// (a conflict or a skip) and nothing else; nil is silent.
	Logger *slog.Logger
	// Batch is how ExecuteBatch sends a batch; default [BatchDefault].
	Batch BatchStrategy
}

// effect is what both effects share.
type effect struct {
	db    DB
	n     names
	log   *slog.Logger
	batch BatchStrategy
}

func newEffect(db DB, cfg EffectConfig) (effect, error) {
	if db == nil {
		return effect{}, fmt.Errorf("registrar/postgres: nil DB")
	}
	n, err := newNames(cfg.Schema)
	if err != nil {
		return effect{}, err
	}
	if cfg.Batch > BatchArrays {
		return effect{}, fmt.Errorf("registrar/postgres: unknown batch strategy %d", cfg.Batch)
	}
	strategy := cfg.Batch
	if strategy == BatchDefault {
		strategy = BatchArrays
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return effect{db: db, n: n, log: log, batch: strategy}, nil
}

// logNoChange logs an intent that changed no row, at debug.
func (e *effect) logNoChange(ctx context.Context, op string, id uuid.UUID, corr uuid.UUID, r intent.Result) {
	if !e.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	e.log.LogAttrs(ctx, slog.LevelDebug, "registrar/postgres: "+op+" changed no row",
		slog.String("entity_id", id.String()), slog.String("correlation_id", corr.String()),
		slog.String("status", r.Status.String()), slog.String("reason", r.Reason))
}

// correlation returns the intent's correlation id, or the payload's if the
// intent has none.
func correlation(in intent.Intent, payload uuid.UUID) uuid.UUID {
	if in.CorrelationID != uuid.Nil {
		return in.CorrelationID
	}
	return payload
}

// opError wraps a failure of one intent with what it was and marks it.
func opError(op string, id, corr uuid.UUID, err error) error {
	return fmt.Errorf("registrar/postgres: %s %s (correlation %s): %w", op, id, corr, classify(err))
}

// reasonState is the reason of an upsert whose state guard failed, as
// registration.ApplyUpsert words it. (An update's reasons are those of
// registration.UpdateRegistration.Check.)
func reasonState(got, want registration.State) string {
	if want == registration.StateNone {
		return "projection exists in state " + got.String() + "; the decision saw none"
	}
	return "projection is in state " + got.String() + ", not " + want.String()
}

// reasonMissing is the reason of an upsert that expected a row in a state
// and found none, as registration.ApplyUpsert (and an update's missing row,
// registration.UpdateRegistration.Check) words it.
func reasonMissing(id uuid.UUID) string { return "no projection for " + id.String() }

// reasonRaced is the reason of a write that changed no row although every
// guard holds on the row read after it: the row moved in between.
const reasonRaced = "the row changed while the statement ran"

// RegisterEffects registers an [Upsert] for postgres.upsert_registration,
// an [Update] for postgres.update_registration and a [Delete] for
// postgres.delete_registration with exec, all on db.
func RegisterEffects(exec *intent.Executor, db DB, cfg EffectConfig) error {
	up, err := NewUpsert(db, cfg)
	if err != nil {
		return err
	}
	upd, err := NewUpdate(db, cfg)
	if err != nil {
		return err
	}
	del, err := NewDelete(db, cfg)
	if err != nil {
		return err
	}
	if err := exec.Register(registration.IntentUpsert, up); err != nil {
		return err
	}
	if err := exec.Register(registration.IntentUpdate, upd); err != nil {
		return err
	}
	return exec.Register(registration.IntentDelete, del)
}

// payloadOf returns in's payload as a *T (a T or a non-nil *T), or an
// [intent.Permanent] error of op that names the type it got.
func payloadOf[T any](in intent.Intent, op string) (*T, error) {
	switch p := in.Payload.(type) {
	case *T:
		if p != nil {
			return p, nil
		}
	case T:
		return &p, nil
	}
	return nil, intent.Permanent(fmt.Errorf("registrar/postgres: %s: intent %q (correlation %s): payload type %T is not %T",
		op, in.Type, in.CorrelationID, in.Payload, (*T)(nil)))
}
