package activities_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
)

// TestStageScoreInputs fetches a prefix's Parquet objects into the cache
// once: a second staging reads nothing, a changed object is fetched again
// into a new place, and an empty prefix is ErrNotFound.
func TestStageScoreInputs(t *testing.T) {
	srv := s3test.Start(t, "lake")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	writeScoreInput(t, a, 0, 3000, 1000, nil)
	writeScoreInput(t, b, 3000, 2000, 1000, nil)
	put := func(key, file string) []byte {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		srv.Put(t, "lake", key, data)
		return data
	}
	put("in/a.parquet", a)
	dataB := put("in/b.parquet", b)
	srv.Put(t, "lake", "in/_SUCCESS", []byte("{}"))
	srv.Put(t, "lake", "in/notes.txt", []byte("not data"))
	put("in/deeper/c.parquet", a)

	ctx := context.Background()
	cache := filepath.Join(t.TempDir(), "cache")
	var last, total int64
	opts := activities.StageOptions{CacheDir: cache, Progress: func(d, n int64) { last, total = d, n }}
	files, err := activities.StageScoreInputs(ctx, srv.URL("lake", "in/"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "a.parquet" || filepath.Base(files[1]) != "b.parquet" {
		t.Fatalf("staged %v, want a.parquet and b.parquet", files)
	}
	if got, _ := os.ReadFile(files[1]); string(got) != string(dataB) {
		t.Fatal("staged b.parquet differs from the object")
	}
	if last != total || total == 0 {
		t.Fatalf("progress ended at %d of %d", last, total)
	}
	gets := srv.ObjectGets()
	if gets != 2 {
		t.Fatalf("%d object reads, want 2", gets)
	}

	again, err := activities.StageScoreInputs(ctx, srv.URL("lake", "in/"), opts)
	if err != nil || again[0] != files[0] || again[1] != files[1] {
		t.Fatalf("second staging %v, %v; want %v", again, err, files)
	}
	if n := srv.ObjectGets(); n != gets {
		t.Fatalf("second staging read %d objects, want none (cached)", n-gets)
	}

	put("in/b.parquet", a) // a new version of b
	changed, err := activities.StageScoreInputs(ctx, srv.URL("lake", "in/b.parquet"), opts)
	if err != nil || len(changed) != 1 || changed[0] == files[1] {
		t.Fatalf("changed object staged as %v, %v; want a new cache entry", changed, err)
	}

	_, err = activities.StageScoreInputs(ctx, srv.URL("lake", "empty/"), opts)
	if !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("empty prefix: %v, want ErrNotFound", err)
	}
}

// TestScoreStepS3Input runs a fanned-out score step over an S3 prefix:
// the same rows are scored as from the local files.
func TestScoreStepS3Input(t *testing.T) {
	e := newEnv(t)
	srv := s3test.Start(t, "lake")
	dir := t.TempDir()
	testScoreModel(t, dir)
	for _, f := range []struct {
		name         string
		first, count int64
	}{{"a.parquet", 0, 5000}, {"b.parquet", 5000, 3000}} {
		p := filepath.Join(dir, f.name)
		writeScoreInput(t, p, f.first, int(f.count), 1000, nil)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srv.Put(t, "lake", "landing/"+f.name, data)
	}
	si := scoreStepInput(dir, "pipeline/p/s3", srv.URL("lake", "landing/"))
	plan, err := e.acts.ScorePlan(e.ctx, si)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Files != 2 || plan.Rows != 8000 {
		t.Fatalf("plan %+v; want 2 files, 8000 rows", plan)
	}
	out := scoreShardsAndCommit(t, e, si, plan)
	ids := scoredIDs(t, mustPath(t, out.Artifacts.Scored.URI))
	if len(ids) != 8000 {
		t.Fatalf("%d distinct ids scored, want 8000", len(ids))
	}

	si.Step.Score.Input = srv.URL("lake", "missing/")
	_, err = e.acts.ScorePlan(e.ctx, si)
	checkAppError(t, err, "InvalidInput", "no .parquet object", "s3://lake/missing/")
}
