package activities_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact/s3test"
)

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
