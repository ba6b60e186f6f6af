package postgres

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// The Down sections of the goose rendering, one file per migration under the
// same name. Migrate never reads them.
//
//go:embed migrations/down/*.sql
var downFS embed.FS

// atlasSumName is the name of atlas's integrity file, which its migrate
// commands check the directory's .sql files against.
const atlasSumName = "atlas.sum"

// Migrations returns the migrations [Migrate] applies, rendered for
// [DefaultSchema], as a file system for the goose and atlas command-line
// tools: it is [MigrationsFor] of DefaultSchema. See MigrationsFor for the
// layout and the package documentation for the commands.
func Migrations() fs.FS {
	fsys, err := MigrationsFor(DefaultSchema)
	if err != nil {
		panic("registrar/postgres: render migrations: " + err.Error()) // DefaultSchema is valid: a broken build
	}
	return fsys
}

// MigrationsFor returns the migrations [Migrate] applies, rendered for
// schema, as a read-only file system for the goose and atlas command-line
// tools, so that an operator who runs migrations with one of those tools can
// apply the registrar's tables with it instead of calling Migrate. The schema
// must be a plain identifier, as for [MigrateConfig.Schema]; empty means
// [DefaultSchema].
//
// The root directory holds one file per migration, NNNN_name.sql, in goose's
// SQL format: a "-- +goose Up" section with the statements Migrate executes
// for that schema (the embedded file with the quoted schema name in place of
// {{schema}}; the first one starts with CREATE SCHEMA IF NOT EXISTS, since
// neither tool creates it), and a "-- +goose Down" section that drops what
// the Up section created. The Down of the first migration drops its table
// and type but not the schema, which may have existed before. Beside them
// is atlas.sum, the integrity sum atlas computes over the .sql files,
// so that atlas accepts the directory with ?format=goose. Goose ignores it.
//
// Write the file system to a directory with os.CopyFS. A directory migrated
// with these files is not one that Migrate knows about, and the reverse:
// choose one of Migrate, goose or atlas for each schema.
func MigrationsFor(schema string) (fs.FS, error) {
	n, err := newNames(schema)
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte)
	var names []string
	for i, m := range migrations() {
		down, err := downFS.ReadFile(path.Join("migrations", "down", m.name))
		if err != nil {
			return nil, fmt.Errorf("registrar/postgres: migration %s has no down file: %w", m.name, err)
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "-- Rendered by registrar/postgres.MigrationsFor(%q) from migrations/%s.\n", n.schema, m.name)
		b.WriteString("-- Do not edit: the statements are those postgres.Migrate applies.\n\n")
		b.WriteString("-- +goose Up\n")
		if i == 0 {
			b.WriteString("CREATE SCHEMA IF NOT EXISTS " + n.qschema + ";\n\n")
		}
		b.WriteString(strings.TrimRight(renderSchema(m.sql, n), "\n"))
		b.WriteString("\n\n-- +goose Down\n")
		b.WriteString(strings.TrimRight(renderSchema(string(down), n), "\n"))
		b.WriteString("\n")
		files[m.name] = b.Bytes()
		names = append(names, m.name)
	}
	files[atlasSumName] = atlasSum(names, files)
	return migrationFiles(files), nil
}

// renderSchema puts the quoted schema name in place of {{schema}}, as
// Migrate does; only the files' comment about the placeholder, which would
// read wrong once it is replaced, is reworded.
func renderSchema(sql string, n names) string {
	sql = strings.ReplaceAll(sql, "{{schema}} is replaced by the quoted schema name.", "The schema is "+n.qschema+".")
	return strings.ReplaceAll(sql, "{{schema}}", n.qschema)
}

// atlasSum returns the contents of atlas's integrity file for the named
// files: a chained SHA-256 that takes in, for each file in name order, its
// name and then its contents, with the running digest recorded after each
// file; and a first line that sums the names and recorded digests. Every
// digest is base64 (standard, padded) after "h1:". It ignores atlas's
// "atlas:sum ignore" directive, which these files do not use.
func atlasSum(names []string, files map[string][]byte) []byte {
	names = slices.Sorted(slices.Values(names))
	chain := sha256.New()
	total := sha256.New()
	var lines bytes.Buffer
	for _, name := range names {
		chain.Write([]byte(name))
		chain.Write(files[name])
		h := base64.StdEncoding.EncodeToString(chain.Sum(nil))
		total.Write([]byte(name))
		total.Write([]byte(h))
		fmt.Fprintf(&lines, "%s h1:%s\n", name, h)
	}
	return fmt.Appendf(nil, "h1:%s\n%s", base64.StdEncoding.EncodeToString(total.Sum(nil)), lines.Bytes())
}

// migrationFiles is a read-only file system of one directory, the root,
// holding regular files by name.
type migrationFiles map[string][]byte

var (
	_ fs.ReadDirFS  = migrationFiles(nil)
	_ fs.ReadFileFS = migrationFiles(nil)
)

// Open opens the root directory (".") or one of its files.
func (m migrationFiles) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		entries, _ := m.ReadDir(".")
		return &migrationDir{entries: entries}, nil
	}
	b, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &migrationFile{info: fileInfo{name: name, size: int64(len(b))}, r: bytes.NewReader(b)}, nil
}

// ReadFile returns a copy of the named file's contents.
func (m migrationFiles) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	b, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	}
	return bytes.Clone(b), nil
}

// ReadDir lists the root directory in name order; there is no other.
func (m migrationFiles) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	entries := make([]fs.DirEntry, 0, len(m))
	for _, n := range slices.Sorted(maps.Keys(m)) {
		entries = append(entries, fs.FileInfoToDirEntry(fileInfo{name: n, size: int64(len(m[n]))}))
	}
	return entries, nil
}

// fileInfo describes a file of migrationFiles, or its root (dir).
type fileInfo struct {
	name string
	size int64
	dir  bool
}

// Name returns the file's name, "." for the root.
func (i fileInfo) Name() string { return i.name }

// Size returns the file's length in bytes.
func (i fileInfo) Size() int64 { return i.size }

// Mode returns read-only permissions, and fs.ModeDir for the root.
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// ModTime returns the zero time: the files are rendered, not stored.
func (i fileInfo) ModTime() time.Time { return time.Time{} }

// IsDir reports whether this is the root.
func (i fileInfo) IsDir() bool { return i.dir }

// Sys returns nil.
func (i fileInfo) Sys() any { return nil }

// migrationFile is an open file of migrationFiles.
type migrationFile struct {
	info fileInfo
	r    *bytes.Reader
}

// Stat describes the file.
func (f *migrationFile) Stat() (fs.FileInfo, error) { return f.info, nil }

// Read reads the file's contents.
func (f *migrationFile) Read(p []byte) (int, error) { return f.r.Read(p) }

// Close does nothing: the contents are in memory.
func (f *migrationFile) Close() error { return nil }

// migrationDir is the open root directory of migrationFiles.
type migrationDir struct {
	entries []fs.DirEntry
	off     int
}

// Stat describes the root directory.
func (d *migrationDir) Stat() (fs.FileInfo, error) { return fileInfo{name: ".", dir: true}, nil }

// Read fails: a directory has no contents to read.
func (d *migrationDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: errors.New("is a directory")}
}

// Close does nothing.
func (d *migrationDir) Close() error { return nil }

// ReadDir reads the next n entries, or all that are left if n <= 0.
func (d *migrationDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
