package postgres

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// DefaultSchema is the schema of the tables unless a config names another.
const DefaultSchema = "public"

// schemaPattern is what a schema name may be: an SQL identifier of ASCII
// letters, digits and underscores that fits PostgreSQL's 63-byte limit.
var schemaPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// names are the quoted, schema-qualified names of the objects the package
// uses, derived once from a validated schema name.
type names struct {
	schema     string // as configured, unquoted
	qschema    string // quoted
	table      string // "schema"."registration_projections"
	stateType  string // "schema"."registration_state"
	migrations string // "schema"."schema_migrations"
	outbox     string // "schema"."registration_outbox"
}

func newNames(schema string) (names, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if !schemaPattern.MatchString(schema) {
		return names{}, fmt.Errorf("registrar/postgres: schema %q is not a plain identifier (letters, digits, underscores; at most 63 bytes; not starting with a digit)", schema)
	}
	return names{
		schema:     schema,
		qschema:    pgx.Identifier{schema}.Sanitize(),
		table:      pgx.Identifier{schema, "registration_projections"}.Sanitize(),
		stateType:  pgx.Identifier{schema, "registration_state"}.Sanitize(),
		migrations: pgx.Identifier{schema, "schema_migrations"}.Sanitize(),
		outbox:     pgx.Identifier{schema, "registration_outbox"}.Sanitize(),
	}, nil
}

// quoteColumn returns the quoted SQL name of a single column of the
// allowlist.
func quoteColumn(name string) string { return pgx.Identifier{name}.Sanitize() }

// cachedSQL returns the statement cached under key in m, building it with
// build on first use. Statements depend only on the shape of an intent, so
// each shape is written once per effect.
func cachedSQL[K comparable](m *sync.Map, key K, build func(b *strings.Builder)) string {
	if v, ok := m.Load(key); ok {
		return v.(string)
	}
	var b strings.Builder
	build(&b)
	sql := b.String()
	m.Store(key, sql)
	return sql
}
