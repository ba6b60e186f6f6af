package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"ariga.io/atlas/sql/migrate"
	atlaspg "ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/sqltool"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/registrar-go/registrar/internal/testenv"
)

// migrationNames are the files of the rendered migrations, atlas.sum aside.
func migrationNames() []string {
	var names []string
	for _, m := range migrations() {
		names = append(names, m.name)
	}
	return names
}

func TestMigrationsFS(t *testing.T) {
	fsys := Migrations()
	names := append(migrationNames(), atlasSumName)
	if err := fstest.TestFS(fsys, names...); err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, slices.Sorted(slices.Values(names))) {
		t.Fatalf("files %v, want %v", got, names)
	}
	// Every embedded migration has a down file, and no down file is left
	// without its migration.
	downs, err := fs.ReadDir(downFS, "migrations/down")
	if err != nil {
		t.Fatal(err)
	}
	var downNames []string
	for _, e := range downs {
		downNames = append(downNames, e.Name())
	}
	if !slices.Equal(downNames, migrationNames()) {
		t.Fatalf("down files %v, want one per migration %v", downNames, migrationNames())
	}

	first, err := fs.ReadFile(fsys, migrationNames()[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(first, []byte("-- +goose Up\nCREATE SCHEMA IF NOT EXISTS \"public\";\n")) {
		t.Errorf("the first migration does not start by creating the schema:\n%s", first)
	}
	for _, name := range migrationNames() {
		b, _ := fs.ReadFile(fsys, name)
		s := string(b)
		if strings.Contains(s, "{{schema}}") {
			t.Errorf("%s still has the placeholder", name)
		}
		up, down := strings.Index(s, "\n-- +goose Up\n"), strings.Index(s, "\n-- +goose Down\n")
		if up < 0 || down < up || strings.Count(s, "-- +goose Up") != 1 || strings.Count(s, "-- +goose Down") != 1 {
			t.Errorf("%s: not one Up section followed by one Down section:\n%s", name, s)
		}
	}

	other, err := MigrationsFor("tenant_7")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fs.ReadFile(other, migrationNames()[0])
	if !bytes.Contains(b, []byte(`CREATE TABLE "tenant_7".registration_projections`)) || bytes.Contains(b, []byte(`"public"`)) {
		t.Errorf("MigrationsFor(tenant_7) is not rendered for tenant_7:\n%s", b)
	}
	for _, bad := range []string{"a-b", `x"; DROP SCHEMA public; --`, "1abc", strings.Repeat("a", 64)} {
		if _, err := MigrationsFor(bad); err == nil {
			t.Errorf("MigrationsFor(%q) accepted an identifier Migrate rejects", bad)
		}
	}
}

// schemaDump describes what a schema holds, with the schema's name replaced
// by S: its relations, columns, constraints, indexes and enum labels, one
// sorted line each. Migrate's own table is left out.
func schemaDump(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	queries := []string{
		`SELECT 'relation ' || c.relname || ' kind ' || c.relkind::text
		   FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace`,
		`SELECT 'column ' || table_name || '.' || column_name || ' #' || ordinal_position || ' ' || data_type || ' ' ||
		        udt_schema || '.' || udt_name || ' nullable=' || is_nullable || ' default=' || coalesce(column_default, '-') ||
		        ' identity=' || is_identity || coalesce(' ' || identity_generation, '') || ' generated=' || is_generated
		   FROM information_schema.columns WHERE table_schema = $1`,
		`SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_catalog.pg_get_constraintdef(oid)
		   FROM pg_catalog.pg_constraint WHERE connamespace = $1::regnamespace`,
		`SELECT 'index ' || indexname || ' ' || indexdef FROM pg_catalog.pg_indexes WHERE schemaname = $1`,
		`SELECT 'type ' || t.typname || ' kind ' || t.typtype::text || coalesce(' labels ' ||
		        (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '')
		   FROM pg_catalog.pg_type t WHERE t.typnamespace = $1::regnamespace`,
	}
	var out []string
	for _, q := range queries {
		rows, err := pool.Query(ctx, q, schema)
		if err != nil {
			t.Fatalf("dump %s: %v", schema, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("dump %s: %v", schema, err)
		}
		for _, l := range lines {
			if strings.Contains(l, "schema_migrations") {
				continue
			}
			out = append(out, strings.ReplaceAll(l, schema, "S"))
		}
	}
	slices.Sort(out)
	return out
}

// compareDumps fails the test unless the two dumps are equal.
func compareDumps(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("missing: %s", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Errorf("extra:   %s", l)
		}
	}
}

// migrationSchemas connects to the test server and returns a pool, the name
// of a schema that Migrate migrated (the reference) and the name of a fresh
// schema that does not exist yet; both are dropped when the test ends.
func migrationSchemas(t *testing.T) (ctx context.Context, dsn string, pool *pgxpool.Pool, reference, fresh string) {
	t.Helper()
	dsn = testenv.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	pool, err := NewPool(ctx, Config{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	t.Cleanup(pool.Close)
	reference, fresh = newSchemaName(), newSchemaName()
	dropSchemas(t, pool, reference, fresh)
	if err := Migrate(ctx, pool, MigrateConfig{Schema: reference}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return ctx, dsn, pool, reference, fresh
}

// dropSchemas drops the schemas when the test ends.
func dropSchemas(t *testing.T, pool *pgxpool.Pool, schemas ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, s := range schemas {
			if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", s, err)
			}
		}
	})
}

// sqlDB opens a database/sql handle on the test server, through pgx's
// driver, whose search_path is the given schema.
func sqlDB(t *testing.T, dsn, searchPath string) *sql.DB {
	t.Helper()
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cc.RuntimeParams["search_path"] = searchPath
	db := stdlib.OpenDB(*cc)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestMigrationsGoose applies Migrations with goose to a schema that does not
// exist and finds the same tables, columns, constraints, indexes and types as
// Migrate creates; goose's down migrations then leave the schema empty, and
// up again restores it all.
func TestMigrationsGoose(t *testing.T) {
	ctx, dsn, pool, reference, schema := migrationSchemas(t)
	want := schemaDump(ctx, t, pool, reference)
	if len(want) < 20 {
		t.Fatalf("the reference dump is too short to mean anything: %v", want)
	}
	// goose keeps its version table, goose_db_version, in the first schema
	// of the search path: a schema of its own here.
	book := newSchemaName()
	dropSchemas(t, pool, book)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+book); err != nil {
		t.Fatal(err)
	}
	fsys, err := MigrationsFor(schema)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB(t, dsn, book), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.ListSources()); n != len(migrations()) {
		t.Fatalf("goose found %d migrations, want %d", n, len(migrations()))
	}

	res, err := p.Up(ctx)
	if err != nil {
		t.Fatalf("goose up: %v", err)
	}
	if len(res) != len(migrations()) {
		t.Fatalf("goose applied %d migrations, want %d", len(res), len(migrations()))
	}
	compareDumps(t, schemaDump(ctx, t, pool, schema), want)
	if v, err := p.GetDBVersion(ctx); err != nil || v != int64(migrations()[len(migrations())-1].version) {
		t.Fatalf("goose version %d, %v", v, err)
	}

	res, err = p.DownTo(ctx, 0)
	if err != nil {
		t.Fatalf("goose down: %v", err)
	}
	if len(res) != len(migrations()) {
		t.Fatalf("goose undid %d migrations, want %d", len(res), len(migrations()))
	}
	if left := schemaDump(ctx, t, pool, schema); len(left) != 0 {
		t.Fatalf("the schema still holds objects after goose down to 0: %v", left)
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("goose up again: %v", err)
	}
	compareDumps(t, schemaDump(ctx, t, pool, schema), want)
}

// atlasDir writes fsys to a temporary directory and opens it as atlas opens
// file://dir?format=goose.
func atlasDir(t *testing.T, fsys fs.FS) (string, *sqltool.GooseDir) {
	t.Helper()
	path := t.TempDir()
	if err := os.CopyFS(path, fsys); err != nil {
		t.Fatal(err)
	}
	dir, err := sqltool.NewGooseDir(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// TestMigrationsAtlas opens Migrations as atlas opens a goose directory: the
// integrity file is the one atlas computes and passes its check, and atlas
// reads the Up statements of every file, and only those.
func TestMigrationsAtlas(t *testing.T) {
	path, dir := atlasDir(t, Migrations())
	if err := migrate.Validate(dir); err != nil {
		t.Fatalf("atlas rejects atlas.sum: %v", err)
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	want, err := sum.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(path, atlasSumName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("atlas.sum:\n%s\natlas computes:\n%s", got, want)
	}

	files, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	// The statements of each Up section: CREATE SCHEMA, then those of the
	// embedded file.
	wantStmts := map[string]int{
		"0001_registration_projections.sql": 5, // schema, type, table, two indexes
		"0002_registration_outbox.sql":      2, // table, index
		"0003_registration_active.sql":      1,
		"0004_registration_read.sql":        4,
	}
	if len(files) != len(wantStmts) {
		t.Fatalf("atlas found %d files, want %d", len(files), len(wantStmts))
	}
	for _, f := range files {
		stmts, err := f.Stmts()
		if err != nil {
			t.Fatalf("atlas cannot parse %s: %v", f.Name(), err)
		}
		if len(stmts) != wantStmts[f.Name()] {
			t.Errorf("%s: atlas reads %d statements, want %d: %q", f.Name(), len(stmts), wantStmts[f.Name()], stmts)
		}
		for _, s := range stmts {
			if !strings.HasPrefix(s, "CREATE ") || !strings.HasSuffix(s, ";") || strings.Count(s, ";") != 1 {
				t.Errorf("%s: atlas reads a statement that is not one CREATE: %q", f.Name(), s)
			}
		}
	}
}

// TestMigrationsAtlasTampered changes one byte of one migration after
// writing the directory, and atlas's check fails.
func TestMigrationsAtlasTampered(t *testing.T) {
	path, dir := atlasDir(t, Migrations())
	name := filepath.Join(path, "0003_registration_active.sql")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("WHERE current_state = 'active'"))
	if i < 0 {
		t.Fatalf("%s has no partial index predicate:\n%s", name, b)
	}
	b[i+len("WHERE current_state = 'a")] = 'A' // 'active' → 'Active'
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	err = migrate.Validate(dir)
	var cerr *migrate.ChecksumError
	if !errors.As(err, &cerr) {
		t.Fatalf("atlas accepts an edited file: Validate returned %v, want a *migrate.ChecksumError", err)
	}
	if cerr.File != "0003_registration_active.sql" {
		t.Errorf("atlas blames %q, want 0003_registration_active.sql", cerr.File)
	}
}

// memRevisions keeps atlas's revisions in memory, where the atlas command
// keeps them in its atlas_schema_revisions table.
type memRevisions struct{ revs []*migrate.Revision }

func (r *memRevisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: "atlas_schema_revisions"}
}

func (r *memRevisions) ReadRevisions(context.Context) ([]*migrate.Revision, error) {
	return slices.Clone(r.revs), nil
}

func (r *memRevisions) ReadRevision(_ context.Context, v string) (*migrate.Revision, error) {
	for _, rev := range r.revs {
		if rev.Version == v {
			return rev, nil
		}
	}
	return nil, migrate.ErrRevisionNotExist
}

func (r *memRevisions) WriteRevision(_ context.Context, rev *migrate.Revision) error {
	for i, old := range r.revs {
		if old.Version == rev.Version {
			r.revs[i] = rev
			return nil
		}
	}
	r.revs = append(r.revs, rev)
	return nil
}

func (r *memRevisions) DeleteRevision(_ context.Context, v string) error {
	r.revs = slices.DeleteFunc(r.revs, func(rev *migrate.Revision) bool { return rev.Version == v })
	return nil
}

// TestMigrationsAtlasApply applies Migrations with atlas's executor and its
// Postgres driver, as atlas migrate apply does, to a schema that does not
// exist, and finds the same tables, columns, constraints, indexes and types
// as Migrate creates. Atlas's revisions are kept in memory: its revision
// table belongs to its command, not to its library.
func TestMigrationsAtlasApply(t *testing.T) {
	ctx, dsn, pool, reference, schema := migrationSchemas(t)
	fsys, err := MigrationsFor(schema)
	if err != nil {
		t.Fatal(err)
	}
	_, dir := atlasDir(t, fsys)
	drv, err := atlaspg.Open(sqlDB(t, dsn, "public"))
	if err != nil {
		t.Fatal(err)
	}
	revs := &memRevisions{}
	// The test database holds other tests' schemas: atlas would call it
	// dirty. atlas migrate apply says the same of a database that is not
	// empty, unless given --allow-dirty or --baseline.
	ex, err := migrate.NewExecutor(drv, dir, revs, migrate.WithAllowDirty(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.ExecuteN(ctx, 0); err != nil {
		t.Fatalf("atlas apply: %v", err)
	}
	if len(revs.revs) != len(migrations()) {
		t.Fatalf("atlas recorded %d revisions, want %d", len(revs.revs), len(migrations()))
	}
	for _, rev := range revs.revs {
		if rev.Error != "" || rev.Applied != rev.Total {
			t.Errorf("atlas revision %s: applied %d of %d, error %q", rev.Version, rev.Applied, rev.Total, rev.Error)
		}
	}
	compareDumps(t, schemaDump(ctx, t, pool, schema), schemaDump(ctx, t, pool, reference))
	// Nothing is left to apply.
	if err := ex.ExecuteN(ctx, 0); !errors.Is(err, migrate.ErrNoPendingFiles) {
		t.Fatalf("atlas apply again: %v, want %v", err, migrate.ErrNoPendingFiles)
	}
}
