package registry

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The registry suite runs against every backend: SQLite always, PostgreSQL
// from KILN_TEST_POSTGRES_DSN (a database the tests may create schemas in)
// or else from a throwaway server the suite starts with the PostgreSQL
// binaries installed on the machine (Debian: apt-get install postgresql). The
// PostgreSQL cases skip, saying why, only when neither is available.

// postgresDSNEnv names a PostgreSQL database for the tests.
const postgresDSNEnv = "KILN_TEST_POSTGRES_DSN"

// backend is a database the registry suite runs against.
type backend struct {
	name string
	// target returns a fresh, empty registry target: a SQLite path or a
	// PostgreSQL DSN (a new schema of the test database).
	target func(t *testing.T) string
}

// open opens a registry on a fresh target of the backend.
func (b backend) open(t *testing.T) (*Registry, string) {
	t.Helper()
	target := b.target(t)
	r, err := Open(context.Background(), target)
	if err != nil {
		t.Fatalf("Open(%s): %v", Redact(target), err)
	}
	t.Cleanup(func() { r.Close() })
	return r, target
}

var backends = []backend{
	{name: "sqlite", target: func(t *testing.T) string {
		return filepath.Join(t.TempDir(), "nested", "dir", "registry.db")
	}},
	{name: "postgres", target: postgresTarget},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// TestMain stops the throwaway PostgreSQL server, if a test started one.
func TestMain(m *testing.M) {
	code := m.Run()
	pg.stop()
	os.Exit(code)
}

// pg is the suite's PostgreSQL database, set up on first use.
var pg pgServer

type pgServer struct {
	once sync.Once
	// dsn is the database's DSN; skip, if set, says why there is none;
	// err reports a server that should have started and did not.
	dsn  string
	skip string
	err  error
	// dir, bin and runAs describe a server this process started.
	dir, bin string
	runAs    []string
	// schemas counts the schemas handed out.
	mu      sync.Mutex
	schemas int
}

// postgresTarget returns the DSN of a new, empty schema of the suite's
// PostgreSQL database, which is dropped when the test ends.
func postgresTarget(t *testing.T) string {
	t.Helper()
	pg.once.Do(pg.start)
	if pg.skip != "" {
		t.Skip(pg.skip)
	}
	if pg.err != nil {
		t.Fatalf("PostgreSQL for the registry tests: %v", pg.err)
	}
	pg.mu.Lock()
	pg.schemas++
	n := pg.schemas
	pg.mu.Unlock()
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := fmt.Sprintf("kiln_test_%d_%d_%s", os.Getpid(), n, hex.EncodeToString(rnd[:]))
	admin, err := sql.Open("pgx", pg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", pg.dsn)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(pg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// start finds or starts the suite's PostgreSQL.
func (s *pgServer) start() {
	if dsn := os.Getenv(postgresDSNEnv); dsn != "" {
		s.dsn = dsn
		return
	}
	bin := postgresBin()
	if bin == "" {
		s.skip = fmt.Sprintf("no PostgreSQL: set %s to a database DSN, or install the server binaries (Debian: apt-get install postgresql) so the tests can start a throwaway one", postgresDSNEnv)
		return
	}
	s.bin = bin
	s.err = s.startServer()
}

// postgresBin returns the directory of initdb and pg_ctl, or "".
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	return ""
}

// startServer initialises a cluster in a temporary directory and starts it
// on a free port of 127.0.0.1. initdb refuses to run as root, so as root the
// server runs as the postgres user (runuser) in a directory it owns.
func (s *pgServer) startServer() error {
	dir, err := os.MkdirTemp("", "kiln-registry-pg-")
	if err != nil {
		return err
	}
	s.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, and there is no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return fmt.Errorf("running as root, and no runuser to run the server as postgres: %w", err)
		}
		s.runAs = []string{runuser, "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "kiln", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
	if out, err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "120", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	s.dsn = fmt.Sprintf("postgres://kiln@127.0.0.1:%d/postgres?sslmode=disable", port)
	return nil
}

// run runs a PostgreSQL program, as the postgres user when root.
func (s *pgServer) run(prog string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, s.runAs...), filepath.Join(s.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = os.TempDir()
	return cmd.CombinedOutput()
}

// stop stops a server this process started and removes its files.
func (s *pgServer) stop() {
	if s.dir == "" {
		return
	}
	if s.dsn != "" {
		s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(s.dir)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// TestPostgresBackendIsReal makes sure the PostgreSQL cases really talk to
// PostgreSQL, with the isolation the registry relies on.
func TestPostgresBackendIsReal(t *testing.T) {
	r, target := backends[1].open(t)
	if r.dialect != dialectPostgres || !IsPostgres(target) {
		t.Fatalf("dialect %q for %s", r.dialect, Redact(target))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var version string
	if err := r.db.QueryRowContext(ctx, `SELECT version()`).Scan(&version); err != nil || !strings.HasPrefix(version, "PostgreSQL") {
		t.Fatalf("version() = %q, %v", version, err)
	}
	t.Logf("%s", version)
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"/var/lib/kiln/registry.db":                     "/var/lib/kiln/registry.db",
		"postgres://kiln:s3cret@db:5432/kiln":           "postgres://kiln:xxxxx@db:5432/kiln",
		"postgresql://kiln@db/kiln?sslmode=verify-full": "postgresql://kiln@db/kiln?sslmode=verify-full",
		"postgres://kiln@db/kiln?password=s3cret&x=1":   "postgres://kiln@db/kiln?password=xxxxx&x=1",
	}
	for in, want := range tests {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenErrorHidesPassword: a registry that cannot be reached is an error
// naming the DSN without its password (from the URL or its query), which
// then reaches logs and the CLI's output.
func TestOpenErrorHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://kiln:s3cret-pw@127.0.0.1:1/kiln?connect_timeout=2",
		"postgres://kiln@127.0.0.1:1/kiln?password=s3cret-pw&connect_timeout=2",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Open(ctx, dsn)
		cancel()
		if err == nil {
			t.Fatalf("Open(%s) succeeded", Redact(dsn))
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
