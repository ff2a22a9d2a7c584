// Package registry is Kiln's model registry: immutable, numbered model
// versions with their bundle location, metrics and lineage, plus named aliases
// (such as "production") whose every move is recorded.
//
// The registry lives in a SQL database. Today that is a SQLite file
// (modernc.org/sqlite, pure Go) shared by several processes — a worker, the
// model server, the CLI — so it runs in WAL mode with a busy timeout and every
// write transaction starts with BEGIN IMMEDIATE. The schema is kept in
// embedded migration files and the queries stick to SQL that PostgreSQL also
// accepts ($n placeholders, ON CONFLICT, RETURNING, text timestamps).
package registry

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Errors returned by the registry, to be matched with errors.Is.
var (
	// ErrNotFound reports a model, version or alias that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a compare-and-swap alias move whose expectation
	// did not match the alias's current version.
	ErrConflict = errors.New("conflict")
	// ErrInvalid reports an invalid argument: a bad model or alias name, a
	// malformed reference, a missing field.
	ErrInvalid = errors.New("invalid argument")
	// ErrRejected reports an attempt to alias a rejected version (one that
	// failed a gate); such versions are kept for the record only.
	ErrRejected = errors.New("version is rejected")
)

// BusyTimeout is how long a connection waits for another connection (in this
// or another process) to release the database's write lock.
const BusyTimeout = 10 * time.Second

// timeFormat is RFC 3339 with a fixed nine-digit fraction: it parses with
// time.RFC3339Nano and, always in UTC, sorts as text in time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Registry is a handle on a registry database. It is safe for concurrent use,
// and several Registry values (in one or several processes) may share a file.
type Registry struct {
	db *sql.DB
	// now returns the current time; tests replace it.
	now func() time.Time
}

// Open opens the SQLite registry at path, creating the file and its directory
// if missing, and applies pending schema migrations.
func Open(ctx context.Context, path string) (*Registry, error) {
	if path == "" {
		return nil, fmt.Errorf("open registry: %w: empty path", ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("open registry %s: create directory: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	if err := migrate(ctx, db, migrationFS, "migrations", time.Now); err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	return &Registry{db: db, now: time.Now}, nil
}

// dsn builds the modernc.org/sqlite data source name for the file at the
// absolute path abs. The file: URI form lets paths contain '?' or '%'; the
// driver applies the pragmas to every new connection (busy_timeout first) and
// starts non-read-only transactions with BEGIN IMMEDIATE, so that a writer
// takes the write lock up front and waits for it under busy_timeout instead of
// failing with SQLITE_BUSY when upgrading a read lock.
func dsn(abs string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	u := url.URL{Path: filepath.ToSlash(abs)}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// Close closes the database.
func (r *Registry) Close() error {
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("close registry: %w", err)
	}
	return nil
}

// migration is one schema migration file.
type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the files NNNN_name.sql in dir of fsys, ordered by
// their number.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.ParseInt(prefix, 10, 64)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		if prev, dup := seen[n]; dup {
			return nil, fmt.Errorf("migrations %s and %s share number %d", prev, e.Name(), n)
		}
		seen[n] = e.Name()
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: n, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies the migrations of dir in fsys that schema_migrations does
// not list yet, in order, in one write transaction: processes opening a new
// file at the same time wait for each other and apply each migration once.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, dir string, now func() time.Time) error {
	migs, err := loadMigrations(fsys, dir)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int64]bool{}
	var maxApplied int64
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: list applied: %w", err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: list applied: %w", err)
		}
		applied[v] = true
		maxApplied = max(maxApplied, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: list applied: %w", err)
	}
	var known int64
	if len(migs) > 0 {
		known = migs[len(migs)-1].version
	}
	if maxApplied > known {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary's %d; upgrade kiln", maxApplied, known)
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, formatTime(now())); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// formatTime renders t in UTC in the stored text format.
func formatTime(t time.Time) string {
	return t.UTC().Format(timeFormat)
}

// parseTime parses a stored time.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// validName checks a model or alias name.
func validName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q must match %s", ErrInvalid, kind, name, nameRE)
	}
	return nil
}

// modelExists reports whether the model has at least one version.
func modelExists(ctx context.Context, q querier, model string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM models WHERE name = $1`, model).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up model %s: %w", model, err)
	}
	return true, nil
}

// requireModel returns an ErrNotFound error when the model does not exist.
func requireModel(ctx context.Context, q querier, model string) error {
	ok, err := modelExists(ctx, q, model)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("model %s: %w", model, ErrNotFound)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readTx starts a read-only (deferred) transaction: a consistent snapshot
// that does not take the write lock.
func (r *Registry) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read transaction: %w", err)
	}
	return tx, nil
}

// writeTx starts a write transaction (BEGIN IMMEDIATE on SQLite).
func (r *Registry) writeTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin write transaction: %w", err)
	}
	return tx, nil
}
