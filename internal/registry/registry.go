// Package registry is Kiln's model registry: immutable, numbered model
// versions with their bundle location, metrics and lineage, plus named aliases
// (such as "production") whose every move is recorded.
//
// The registry lives in a SQL database: a SQLite file (modernc.org/sqlite,
// pure Go) by default, or PostgreSQL (github.com/jackc/pgx/v5/stdlib, pure
// Go) when Open is given a postgres:// or postgresql:// DSN. One schema serves
// both: it is kept in embedded migration files and the queries stick to SQL
// both accept ($n placeholders, ON CONFLICT, RETURNING, text timestamps).
//
// Concurrency is handled per dialect. A SQLite file shared by several
// processes — a worker, the model server, the CLI — runs in WAL mode with a
// busy timeout and every write transaction starts with BEGIN IMMEDIATE, so
// writers are serialised. On PostgreSQL, writes run at READ COMMITTED and
// lock the model's row first (UPDATE ... RETURNING when registering,
// SELECT ... FOR UPDATE when moving an alias), so that moves of one model are
// serialised and a compare-and-swap reads the alias under the lock; reads run
// in REPEATABLE READ read-only transactions (one snapshot); migrations take a
// transaction-scoped advisory lock.
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

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Dialects of SQL database the registry runs on.
const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// migrationLockID is the PostgreSQL advisory lock key that serialises
// migrations of one database ("kilnreg" in ASCII).
const migrationLockID = 0x6b696c6e726567

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
	// dialect is dialectSQLite or dialectPostgres.
	dialect string
	// now returns the current time; tests replace it.
	now func() time.Time
}

// IsPostgres reports whether target is a PostgreSQL DSN (postgres:// or
// postgresql://) rather than a SQLite path.
func IsPostgres(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Redact returns target fit for messages and logs: a DSN's password (in
// its user information or a password= parameter) is replaced by "xxxxx";
// a path is returned as is.
func Redact(target string) string {
	if !IsPostgres(target) {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable DSN)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// scrub returns err, or, when its text holds the DSN's password (a driver
// may quote the DSN), an error with the same text and the password
// replaced by "xxxxx".
func scrub(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil {
		return errors.New("(error hidden: it may quote an unparsable DSN)")
	}
	pw, _ := u.User.Password()
	if qpw := u.Query().Get("password"); qpw != "" {
		pw = qpw
	}
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// Open opens the registry at target and applies pending schema migrations.
// target is a PostgreSQL DSN (postgres://user:pass@host:5432/db?sslmode=...,
// see IsPostgres) or else the path of a SQLite file, created with its
// directory if missing.
func Open(ctx context.Context, target string) (*Registry, error) {
	if IsPostgres(target) {
		return openPostgres(ctx, target)
	}
	return openSQLite(ctx, target)
}

// openPostgres opens the PostgreSQL registry at the DSN target.
func openPostgres(ctx context.Context, target string) (*Registry, error) {
	name := Redact(target)
	db, err := sql.Open("pgx", target)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", name, scrub(err, target))
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: connect: %w", name, scrub(err, target))
	}
	if err := migrate(ctx, db, dialectPostgres, migrationFS, "migrations", time.Now); err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: %w", name, scrub(err, target))
	}
	return &Registry{db: db, dialect: dialectPostgres, now: time.Now}, nil
}

// openSQLite opens the SQLite registry at path.
func openSQLite(ctx context.Context, path string) (*Registry, error) {
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
	// A connection that opens a new database while another one switches it
	// to WAL can get SQLITE_BUSY without SQLite's busy handler waiting
	// (TestOpenSQLiteConcurrently saw it in one round of 20): so the
	// migration is tried again, for up to BusyTimeout.
	deadline := time.Now().Add(BusyTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err = migrate(ctx, db, dialectSQLite, migrationFS, "migrations", time.Now)
		if err == nil || !sqliteBusy(err) || time.Now().Add(wait).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("open registry %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	return &Registry{db: db, dialect: dialectSQLite, now: time.Now}, nil
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func sqliteBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
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
// database at the same time wait for each other (SQLite's write lock, or a
// PostgreSQL advisory lock) and apply each migration once.
func migrate(ctx context.Context, db *sql.DB, dialect string, fsys fs.FS, dir string, now func() time.Time) error {
	migs, err := loadMigrations(fsys, dir)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	if dialect == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
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

// queryAll runs a query and scans every row with scan; errors say what was
// being listed.
func queryAll[T any](ctx context.Context, q querier, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// readTx starts a read-only transaction that sees one consistent snapshot:
// a deferred transaction on SQLite (it does not take the write lock),
// REPEATABLE READ on PostgreSQL.
func (r *Registry) readTx(ctx context.Context) (*sql.Tx, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if r.dialect == dialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := r.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("begin read transaction: %w", err)
	}
	return tx, nil
}

// writeTx starts a write transaction: BEGIN IMMEDIATE on SQLite, READ
// COMMITTED on PostgreSQL (writers lock the rows they depend on; see
// lockModel).
func (r *Registry) writeTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin write transaction: %w", err)
	}
	return tx, nil
}

// lockModel checks that the model exists and, on PostgreSQL, locks its row
// until tx ends, so that alias moves of one model run one after the other
// and each reads the alias's current version under the lock. On SQLite the
// write transaction already holds the database's write lock.
func (r *Registry) lockModel(ctx context.Context, tx *sql.Tx, model string) error {
	if r.dialect != dialectPostgres {
		return requireModel(ctx, tx, model)
	}
	var name string
	err := tx.QueryRowContext(ctx, `SELECT name FROM models WHERE name = $1 FOR UPDATE`, model).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("model %s: %w", model, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock model %s: %w", model, err)
	}
	return nil
}
