package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// MigrateConfig configures [Migrate].
type MigrateConfig struct {
	// Schema is the schema that holds the tables; default [DefaultSchema].
	// It is created if it does not exist. It must be a plain identifier
	// (letters, digits, underscores).
	Schema string
	// Logger receives one info line per migration applied; nil is silent.
	Logger *slog.Logger
}

// migration is one embedded SQL file.
type migration struct {
	version  int
	name     string
	sql      string // {{schema}} still in it
	checksum string
}

// migrations returns the embedded migrations in version order. A file name
// that does not start with a version number is a broken build, hence the
// panic.
func migrations() []migration {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic("registrar/postgres: embedded migrations: " + err.Error())
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			panic("registrar/postgres: embedded migration " + e.Name() + " is not named NNNN_name.sql")
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic("registrar/postgres: embedded migration " + e.Name() + ": " + err.Error())
		}
		sum := sha256.Sum256(b)
		out = append(out, migration{version: v, name: e.Name(), sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out
}

// migrateLockKey is the advisory lock that serializes migrations of one
// schema: different schemas migrate in parallel.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("registrar/postgres/migrate:" + schema))
	return int64(h.Sum64())
}

// Migrate brings the schema up to date: it creates the schema if needed and
// applies every embedded migration not yet recorded in its
// schema_migrations table, in version order, in one transaction.
//
// It holds a transaction-scoped advisory lock for the schema while it works,
// so several instances may call it at once: one applies the migrations, the
// others wait and then find nothing to do. Calling it again is a no-op. A
// migration recorded with a checksum other than the embedded file's is an
// error: an applied migration was edited.
//
// Given a pgx.Tx, Migrate works in a savepoint of it, and the lock is held
// until the caller's transaction ends.
func Migrate(ctx context.Context, db Beginner, cfg MigrateConfig) (err error) {
	n, err := newNames(cfg.Schema)
	if err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wrap := func(step string, err error) error {
		return fmt.Errorf("registrar/postgres: migrate schema %s: %s: %w", n.schema, step, classify(err))
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return wrap("begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey(n.schema)); err != nil {
		return wrap("advisory lock", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", n.schema).Scan(&exists); err != nil {
		return wrap("look up schema", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+n.qschema); err != nil {
			return wrap("create schema", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+n.migrations+` (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	checksum   text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return wrap("create schema_migrations", err)
	}
	applied := map[int]string{}
	rows, err := tx.Query(ctx, "SELECT version, checksum FROM "+n.migrations)
	if err != nil {
		return wrap("read schema_migrations", err)
	}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return wrap("read schema_migrations", err)
		}
		applied[v] = sum
	}
	if err := rows.Err(); err != nil {
		return wrap("read schema_migrations", err)
	}
	for _, m := range migrations() {
		if sum, ok := applied[m.version]; ok {
			if sum != m.checksum {
				return fmt.Errorf("registrar/postgres: migrate schema %s: migration %s was applied with checksum %s, but the embedded file has %s: an applied migration must never change",
					n.schema, m.name, sum, m.checksum)
			}
			continue
		}
		sql := strings.ReplaceAll(m.sql, "{{schema}}", n.qschema)
		if _, err := tx.Exec(ctx, sql); err != nil {
			return wrap("apply "+m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+n.migrations+" (version, name, checksum) VALUES ($1, $2, $3)",
			m.version, m.name, m.checksum); err != nil {
			return wrap("record "+m.name, err)
		}
		log.LogAttrs(ctx, slog.LevelInfo, "registrar/postgres: migration applied",
			slog.String("schema", n.schema), slog.Int("version", m.version), slog.String("name", m.name))
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap("commit", err)
	}
	return nil
}
