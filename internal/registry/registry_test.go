package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// openTemp opens a registry in a fresh, not yet existing directory.
func openTemp(t *testing.T) (*Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "registry.db")
	r, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// openRaw opens an empty database with the registry's connection settings
// but without its migrations.
func openRaw(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "raw.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fakeClock returns a clock that starts at start and advances by step on
// every call.
func fakeClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := next
		next = next.Add(step)
		return t
	}
}

func mustRegister(t *testing.T, r *Registry, v Version) Version {
	t.Helper()
	got, created, err := r.Register(context.Background(), v)
	if err != nil {
		t.Fatalf("Register(%s): %v", v.Model, err)
	}
	if !created {
		t.Fatalf("Register(%s): not created", v.Model)
	}
	return got
}

func TestOpenSettings(t *testing.T) {
	r, path := openTemp(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	ctx := context.Background()
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for _, tt := range tests {
		var got string
		if err := r.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c%d#e")
	path := filepath.Join(dir, "reg.db")
	r, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	mustRegister(t, r, Version{Model: "m", BundleURI: "file:///b"})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at %q: %v", path, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("expected only %q in the parent directory, got %d entries", filepath.Base(dir), len(entries))
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open(context.Background(), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open(\"\") error = %v, want ErrInvalid", err)
	}
}

func TestReopenKeepsDataAndMigrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, path := b.open(t)
		v := mustRegister(t, r, Version{Model: "churn", BundleURI: "s3://b/1"})
		type applied struct {
			version int64
			at      string
		}
		readApplied := func(r *Registry) []applied {
			rows, err := r.db.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
			if err != nil {
				t.Fatalf("read schema_migrations: %v", err)
			}
			defer rows.Close()
			var out []applied
			for rows.Next() {
				var a applied
				if err := rows.Scan(&a.version, &a.at); err != nil {
					t.Fatal(err)
				}
				out = append(out, a)
			}
			return out
		}
		before := readApplied(r)
		migs, err := loadMigrations(migrationFS, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != len(migs) || len(migs) == 0 {
			t.Fatalf("schema_migrations has %d rows, want %d", len(before), len(migs))
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}

		r2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer r2.Close()
		if after := readApplied(r2); !reflect.DeepEqual(after, before) {
			t.Errorf("schema_migrations changed on reopen: %v -> %v", before, after)
		}
		got, err := r2.Get(ctx, "churn", 1)
		if err != nil {
			t.Fatalf("Get after reopen: %v", err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("after reopen got %+v, want %+v", got, v)
		}
		if v2 := mustRegister(t, r2, Version{Model: "churn", BundleURI: "s3://b/2"}); v2.Version != 2 {
			t.Errorf("version after reopen = %d, want 2", v2.Version)
		}
	})
}

func TestMigrateAppliesPendingInOrder(t *testing.T) {
	ctx := context.Background()
	db := openRaw(t)
	clock := fakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Second)
	fsys := fstest.MapFS{
		// Deliberately not idempotent: re-applying either file fails.
		"m/0002_fill.sql": {Data: []byte("INSERT INTO t (id, note) VALUES (1, 'two');")},
		"m/0001_t.sql":    {Data: []byte("CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT NOT NULL);\nCREATE TABLE u (id BIGINT);")},
		"m/README.md":     {Data: []byte("not a migration")},
	}
	if err := migrate(ctx, db, dialectSQLite, fsys, "m", clock); err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	fsys["m/0010_more.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO t (id, note) VALUES (10, 'ten');")}
	if err := migrate(ctx, db, dialectSQLite, fsys, "m", clock); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if err := migrate(ctx, db, dialectSQLite, fsys, "m", clock); err != nil {
		t.Fatalf("third migrate: %v", err)
	}
	var notes []string
	rows, err := db.QueryContext(ctx, `SELECT note FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		notes = append(notes, s)
	}
	rows.Close()
	if want := []string{"two", "ten"}; !reflect.DeepEqual(notes, want) {
		t.Errorf("t notes = %v, want %v", notes, want)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version IN (1, 2, 10)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("recorded migrations = %d, want 3", n)
	}

	// A binary that knows fewer migrations than the database refuses it.
	delete(fsys, "m/0010_more.sql")
	if err := migrate(ctx, db, dialectSQLite, fsys, "m", clock); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("migrate with an older set: error = %v, want 'newer' error", err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	db := openRaw(t)
	fsys := fstest.MapFS{
		"m/0001_ok.sql":  {Data: []byte("CREATE TABLE ok1 (id BIGINT);")},
		"m/0002_bad.sql": {Data: []byte("CREATE TABLE bad (id BIGINT); INSERT INTO missing VALUES (1);")},
	}
	if err := migrate(ctx, db, dialectSQLite, fsys, "m", time.Now); err == nil || !strings.Contains(err.Error(), "0002_bad.sql") {
		t.Fatalf("migrate error = %v, want failure naming 0002_bad.sql", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name IN ('ok1', 'bad')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d tables of the failed migration run remain, want 0", n)
	}
}

func TestLoadMigrationsErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"no number", []string{"init.sql"}, "NNNN_description"},
		{"zero", []string{"0000_init.sql"}, "NNNN_description"},
		{"duplicate", []string{"0001_a.sql", "001_b.sql"}, "share number 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["m/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			_, err := loadMigrations(fsys, "m")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRegisterRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		r.now = fakeClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), time.Second)
		created := time.Date(2025, 2, 1, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))
		in := Version{
			Model:       "churn",
			Version:     99, // ignored
			BundleURI:   "file:///bundles/churn/abc",
			Metrics:     map[string]float64{"auc": 0.91, "logloss": 0.3, "undefined": math.NaN(), "big": math.Inf(1), "small": math.Inf(-1)},
			Params:      map[string]any{"max_depth": 6.0, "features": []any{"a", "b"}, "nested": map[string]any{"x": true}},
			DatasetHash: "sha256:data", SpecHash: "sha256:spec",
			Pipeline: "train-churn", RunID: "run-1", Step: "train",
			Runtime: "docker", Image: "sha256:img",
			CreatedBy:      "alice",
			CreatedAt:      created,
			TrainerVersion: "kiln-trainer 0.3", SpecText: "name: churn\n", GitCommit: "0123abcd", GitDirty: true,
			Datasets: []DatasetRef{
				{Role: DatasetSource, URI: "file:///data/churn.csv"},
				{Role: DatasetIngested, URI: "file:///.kiln/datasets/ab.parquet", SHA256: "ab", Rows: 1000},
			},
			WorkflowRunID: "0199-run", RequireApproval: []string{"production"},
			Report:  `{"passed":true}`,
			Aliases: []string{"ignored"},
		}
		got, isNew, err := r.Register(ctx, in)
		if err != nil || !isNew {
			t.Fatalf("Register = %v, %v", isNew, err)
		}
		if got.Version != 1 || got.Status != StatusReady || !got.CreatedAt.Equal(created) ||
			got.CreatedAt.Location() != time.UTC || got.Aliases != nil {
			t.Errorf("Register returned %+v", got)
		}
		read, err := r.Get(ctx, "churn", 1)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !math.IsNaN(read.Metrics["undefined"]) {
			t.Errorf("NaN metric read back as %v", read.Metrics["undefined"])
		}
		// NaN != NaN: compare the rest with reflect.DeepEqual.
		delete(read.Metrics, "undefined")
		delete(got.Metrics, "undefined")
		if !reflect.DeepEqual(read, got) {
			t.Errorf("Get = %+v\nwant %+v", read, got)
		}

		// CreatedAt defaults to the clock.
		v2 := mustRegister(t, r, Version{Model: "churn", BundleURI: "file:///b2"})
		if v2.Version != 2 || v2.CreatedAt.IsZero() || v2.CreatedAt.Year() != 2025 || v2.CreatedAt.Month() != 3 {
			t.Errorf("second version = %d created %v", v2.Version, v2.CreatedAt)
		}
		read2, err := r.Get(ctx, "churn", 2)
		if err != nil {
			t.Fatal(err)
		}
		if read2.Metrics != nil || read2.Params != nil || !read2.CreatedAt.Equal(v2.CreatedAt) {
			t.Errorf("empty metrics/params or time not preserved: %+v", read2)
		}
	})
}

func TestRegisterIdempotency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		steps := []struct {
			name    string
			model   string
			runID   string
			step    string
			bundle  string
			wantVer int64
			wantNew bool
		}{
			{"first", "m", "run-1", "train", "b1", 1, true},
			{"retry returns existing", "m", "run-1", "train", "b1-retry", 1, false},
			{"other step", "m", "run-1", "train-2", "b2", 2, true},
			{"other run", "m", "run-2", "train", "b3", 3, true},
			{"same run other model", "n", "run-1", "train", "b4", 1, true},
			{"no run id is never deduplicated", "m", "", "", "b5", 4, true},
			{"no run id again", "m", "", "", "b6", 5, true},
			{"retry after others", "m", "run-1", "train-2", "b2-retry", 2, false},
		}
		for _, s := range steps {
			got, isNew, err := r.Register(ctx, Version{Model: s.model, RunID: s.runID, Step: s.step, BundleURI: s.bundle})
			if err != nil {
				t.Fatalf("%s: Register: %v", s.name, err)
			}
			if got.Version != s.wantVer || isNew != s.wantNew {
				t.Errorf("%s: got version %d new %v, want %d %v", s.name, got.Version, isNew, s.wantVer, s.wantNew)
			}
			if !s.wantNew && got.BundleURI == s.bundle {
				t.Errorf("%s: retry returned the retried bundle %q, not the stored one", s.name, got.BundleURI)
			}
		}
		vs, err := r.Versions(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		var nums []int64
		for _, v := range vs {
			nums = append(nums, v.Version)
		}
		if want := []int64{5, 4, 3, 2, 1}; !reflect.DeepEqual(nums, want) {
			t.Errorf("Versions = %v, want %v (newest first, no gaps)", nums, want)
		}
	})
}

func TestRegisterInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r, _ := b.open(t)
		tests := []struct {
			name string
			v    Version
			is   error
		}{
			{"empty model", Version{BundleURI: "b"}, ErrInvalid},
			{"uppercase model", Version{Model: "Churn", BundleURI: "b"}, ErrInvalid},
			{"leading digit", Version{Model: "1churn", BundleURI: "b"}, ErrInvalid},
			{"colon in model", Version{Model: "churn:1", BundleURI: "b"}, ErrInvalid},
			{"no bundle", Version{Model: "churn"}, ErrInvalid},
			{"bad status", Version{Model: "churn", BundleURI: "b", Status: "deployed"}, ErrInvalid},
			{"unencodable params", Version{Model: "churn", BundleURI: "b", Params: map[string]any{"f": func() {}}}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := r.Register(context.Background(), tt.v)
				if err == nil {
					t.Fatal("Register succeeded")
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v is not %v", err, tt.is)
				}
			})
		}
		if ms, err := r.Models(context.Background()); err != nil || len(ms) != 0 {
			t.Errorf("failed registrations left models %v (err %v)", ms, err)
		}
	})
}

func TestConcurrentRegisterTwoHandles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r1, path := b.open(t)
		r2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer r2.Close()

		const perHandle = 20
		var wg sync.WaitGroup
		errs := make(chan error, 4*perHandle)
		type result struct {
			version int64
			isNew   bool
		}
		results := make(chan result, 4*perHandle)
		for h, r := range []*Registry{r1, r2} {
			for i := range perHandle {
				wg.Add(2)
				go func() {
					defer wg.Done()
					v, isNew, err := r.Register(ctx, Version{Model: "m", BundleURI: fmt.Sprintf("b-%d-%d", h, i)})
					if err != nil {
						errs <- err
						return
					}
					results <- result{v.Version, isNew}
				}()
				// Concurrent retries of one run step across both handles.
				go func() {
					defer wg.Done()
					v, _, err := r.Register(ctx, Version{Model: "m", BundleURI: "retried", RunID: "run", Step: "s"})
					if err != nil {
						errs <- err
						return
					}
					results <- result{-v.Version, false}
				}()
			}
		}
		wg.Wait()
		close(errs)
		close(results)
		for err := range errs {
			t.Errorf("Register: %v", err)
		}
		seen := map[int64]int{}
		retried := map[int64]bool{}
		for res := range results {
			if res.version < 0 {
				retried[-res.version] = true
				continue
			}
			if !res.isNew {
				t.Errorf("plain registration %d reported not new", res.version)
			}
			seen[res.version]++
		}
		if len(retried) != 1 {
			t.Fatalf("concurrent registrations of one run step got versions %v, want one", retried)
		}
		for v := range retried {
			seen[v]++
		}
		const total = 2*perHandle + 1
		for v := int64(1); v <= total; v++ {
			if seen[v] != 1 {
				t.Errorf("version %d assigned %d times", v, seen[v])
			}
		}
		if len(seen) != total {
			t.Errorf("got %d distinct versions, want %d", len(seen), total)
		}
		ms, err := r2.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Versions != total || ms[0].Latest != total {
			t.Errorf("Models = %+v, want %d versions", ms, total)
		}
	})
}

func TestGetNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		mustRegister(t, r, Version{Model: "m", BundleURI: "b"})
		tests := []struct {
			model   string
			version int64
			is      error
		}{
			{"m", 2, ErrNotFound},
			{"m", 0, ErrNotFound},
			{"other", 1, ErrNotFound},
			{"Bad", 1, ErrInvalid},
		}
		for _, tt := range tests {
			if _, err := r.Get(ctx, tt.model, tt.version); !errors.Is(err, tt.is) {
				t.Errorf("Get(%s, %d) error = %v, want %v", tt.model, tt.version, err, tt.is)
			}
		}
		if _, err := r.Versions(ctx, "other"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Versions(other) error = %v, want ErrNotFound", err)
		}
	})
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		ref     string
		want    Ref
		wantErr string
	}{
		{"churn", Ref{Model: "churn"}, ""},
		{"churn:3", Ref{Model: "churn", Version: 3}, ""},
		{"churn@production", Ref{Model: "churn", Alias: "production"}, ""},
		{"my_model-2@canary-1", Ref{Model: "my_model-2", Alias: "canary-1"}, ""},
		{"", Ref{}, "empty"},
		{"Churn", Ref{}, "model name"},
		{"churn:", Ref{}, "positive integer"},
		{"churn:0", Ref{}, "positive integer"},
		{"churn:-1", Ref{}, "positive integer"},
		{"churn:+1", Ref{}, "positive integer"},
		{"churn:01", Ref{}, "positive integer"},
		{"churn:x", Ref{}, "positive integer"},
		{"churn:1@prod", Ref{}, "positive integer"},
		{"churn@", Ref{}, "alias name"},
		{"churn@Prod", Ref{}, "alias name"},
		{"churn@prod:1", Ref{}, "alias name"},
		{":1", Ref{}, "model name"},
		{"@prod", Ref{}, "model name"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := ParseRef(tt.ref)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%q) error = %v, want ErrInvalid mentioning %q", tt.ref, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.ref, err)
			}
			if got != tt.want {
				t.Errorf("ParseRef(%q) = %+v, want %+v", tt.ref, got, tt.want)
			}
			if got.String() != tt.ref {
				t.Errorf("String() = %q, want %q", got.String(), tt.ref)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		for i := range 3 {
			mustRegister(t, r, Version{Model: "churn", BundleURI: fmt.Sprintf("b%d", i+1)})
		}
		mustRegister(t, r, Version{Model: "fraud", BundleURI: "f1"})
		if _, err := r.SetAlias(ctx, AliasMove{Model: "churn", Alias: "production", To: 2}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			ref         string
			wantVersion int64
			is          error
		}{
			{"churn", 3, nil},
			{"churn:1", 1, nil},
			{"churn@production", 2, nil},
			{"fraud", 1, nil},
			{"churn:4", 0, ErrNotFound},
			{"churn@staging", 0, ErrNotFound},
			{"nope", 0, ErrNotFound},
			{"nope:1", 0, ErrNotFound},
			{"nope@production", 0, ErrNotFound},
			{"churn:zero", 0, ErrInvalid},
			{"churn@", 0, ErrInvalid},
			{"", 0, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.ref, func(t *testing.T) {
				v, err := r.Resolve(ctx, tt.ref)
				if tt.is != nil {
					if !errors.Is(err, tt.is) {
						t.Fatalf("Resolve(%q) error = %v, want %v", tt.ref, err, tt.is)
					}
					return
				}
				if err != nil {
					t.Fatalf("Resolve(%q): %v", tt.ref, err)
				}
				if v.Version != tt.wantVersion || v.BundleURI == "" {
					t.Errorf("Resolve(%q) = version %d, want %d", tt.ref, v.Version, tt.wantVersion)
				}
			})
		}
		v, err := r.Resolve(ctx, "churn:2")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.Aliases, []string{"production"}) {
			t.Errorf("Resolve(churn:2).Aliases = %v", v.Aliases)
		}
	})
}

func TestModels(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		t0 := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
		r.now = fakeClock(t0, time.Minute)
		if ms, err := r.Models(ctx); err != nil || len(ms) != 0 {
			t.Fatalf("empty registry Models = %v, %v", ms, err)
		}
		mustRegister(t, r, Version{Model: "zeta", BundleURI: "z1"})  // t0
		mustRegister(t, r, Version{Model: "alpha", BundleURI: "a1"}) // t0+1m
		mustRegister(t, r, Version{Model: "alpha", BundleURI: "a2"}) // t0+2m
		mustRegister(t, r, Version{Model: "alpha", BundleURI: "a3"}) // t0+3m
		for _, m := range []AliasMove{
			{Model: "alpha", Alias: "production", To: 2}, // t0+4m
			{Model: "alpha", Alias: "canary", To: 3},     // t0+5m
		} {
			if _, err := r.SetAlias(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []ModelSummary{
			{Name: "alpha", Versions: 3, Latest: 3, Aliases: map[string]int64{"production": 2, "canary": 3}, UpdatedAt: t0.Add(5 * time.Minute)},
			{Name: "zeta", Versions: 1, Latest: 1, UpdatedAt: t0},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Models =\n%+v\nwant\n%+v", got, want)
		}
	})
}

func TestVersionsCarryAliases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		for range 3 {
			mustRegister(t, r, Version{Model: "m", BundleURI: "b"})
		}
		for _, m := range []AliasMove{
			{Model: "m", Alias: "staging", To: 3},
			{Model: "m", Alias: "production", To: 3},
			{Model: "m", Alias: "canary", To: 3},
			{Model: "m", Alias: "old", To: 1},
		} {
			if _, err := r.SetAlias(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		vs, err := r.Versions(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64][]string{}
		for _, v := range vs {
			got[v.Version] = v.Aliases
		}
		want := map[int64][]string{3: {"canary", "production", "staging"}, 2: nil, 1: {"old"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("aliases by version = %v, want %v", got, want)
		}
		if !sort.SliceIsSorted(vs, func(i, j int) bool { return vs[i].Version > vs[j].Version }) {
			t.Errorf("Versions not newest first")
		}
	})
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.target(t)
		const n = 6
		regs := make([]*Registry, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				regs[i], errs[i] = Open(ctx, path)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
			defer regs[i].Close()
		}
		var count int
		if err := regs[0].db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&count); err != nil {
			t.Fatal(err)
		}
		migs, err := loadMigrations(migrationFS, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		if count != len(migs) {
			t.Errorf("schema_migrations has %d rows, want %d (each migration applied once)", count, len(migs))
		}
		v := mustRegister(t, regs[n-1], Version{Model: "m", BundleURI: "b"})
		if got, err := regs[0].Get(ctx, "m", v.Version); err != nil || got.BundleURI != "b" {
			t.Errorf("Get through another handle = %+v, %v", got, err)
		}
	})
}

// childEnv names the environment variable that turns the test binary into a
// registering child process for TestMultiProcessRegister.
const childEnv = "KILN_REGISTRY_TEST_CHILD_DB"

func TestMultiProcessRegister(t *testing.T) {
	const perProcess = 15
	register := func(path string) error {
		ctx := context.Background()
		r, err := Open(ctx, path)
		if err != nil {
			return err
		}
		defer r.Close()
		var wg sync.WaitGroup
		errs := make(chan error, perProcess)
		for range perProcess {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := r.Register(ctx, Version{Model: "m", BundleURI: fmt.Sprintf("pid-%d", os.Getpid())}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	if path := os.Getenv(childEnv); path != "" {
		if err := register(path); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		path := b.target(t)
		const children = 2
		cmds := make([]*exec.Cmd, children)
		outs := make([]*strings.Builder, children)
		for i := range cmds {
			cmds[i] = exec.Command(os.Args[0], "-test.run=^TestMultiProcessRegister$", "-test.count=1")
			cmds[i].Env = append(os.Environ(), childEnv+"="+path)
			outs[i] = &strings.Builder{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
			if err := cmds[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		if err := register(path); err != nil {
			t.Errorf("parent: %v", err)
		}
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, outs[i])
			}
		}
		r, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		vs, err := r.Versions(context.Background(), "m")
		if err != nil {
			t.Fatal(err)
		}
		const total = (children + 1) * perProcess
		pids := map[string]int{}
		for i, v := range vs {
			if want := int64(total - i); v.Version != want {
				t.Fatalf("version at %d = %d, want %d (gap or duplicate)", i, v.Version, want)
			}
			pids[v.BundleURI]++
		}
		if len(vs) != total || len(pids) != children+1 {
			t.Errorf("%d versions from %d processes, want %d from %d", len(vs), len(pids), total, children+1)
		}
	})
}

// TestOpenSQLiteConcurrently: processes that open a new SQLite registry at
// the same moment (two workers starting on one home) all get it, each
// migration applied once, none failing with SQLITE_BUSY.
func TestOpenSQLiteConcurrently(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "registry.db")
		const n = 6
		errs := make(chan error, n)
		var start sync.WaitGroup
		start.Add(1)
		for range n {
			go func() {
				start.Wait()
				r, err := Open(context.Background(), path)
				if err == nil {
					err = r.Close()
				}
				errs <- err
			}()
		}
		start.Done()
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
