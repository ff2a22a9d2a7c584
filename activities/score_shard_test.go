package activities_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// scoreFeatures are the inputs of the synthetic test model.
var scoreFeatures = []string{"x0", "x1", "x2"}

// testScoreModel returns a logistic model over scoreFeatures with an
// impute-free, transform-free manifest, written as a bundle under dir.
func testScoreModel(t testing.TB, dir string) *model.Model {
	t.Helper()
	var inputs []dataset.Field
	for _, f := range scoreFeatures {
		inputs = append(inputs, dataset.Field{Name: f, Type: dataset.Float64})
	}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Task: model.TaskBinary, Target: "y", Output: model.OutputProbability,
		Inputs:     inputs,
		Transforms: &transform.Fitted{Inputs: inputs, Features: scoreFeatures},
		Estimator:  model.Estimator{Type: model.EstimatorLogistic, File: model.DefaultEstimatorFile},
	}
	est := []byte(`{"type":"logistic","features":["x0","x1","x2"],"weights":[0.5,-1.25,2],"intercept":0.1}`)
	bdir := filepath.Join(dir, "bundle")
	if err := model.WriteBundle(bdir, man, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(bdir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeScoreInput writes a Parquet file of rows rows (ids from firstID) in
// row groups of groupRows rows: id int64 and the float features; bad, when
// set, edits the x1 values of the rows.
func writeScoreInput(t testing.TB, path string, firstID int64, rows, groupRows int, bad func(id int64, x1 *float64)) {
	t.Helper()
	s := dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}}}
	for _, f := range scoreFeatures {
		s.Fields = append(s.Fields, dataset.Field{Name: f, Type: dataset.Float64})
	}
	w, err := dataset.CreateParquet(path, s, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < rows; lo += groupRows {
		n := min(groupRows, rows-lo)
		ids := make([]int64, n)
		cols := make([][]float64, len(scoreFeatures))
		for j := range cols {
			cols[j] = make([]float64, n)
		}
		for i := range n {
			id := firstID + int64(lo+i)
			ids[i] = id
			for j := range cols {
				cols[j][i] = math.Sin(float64(id)*0.37+float64(j)) * float64(j+1)
			}
			if bad != nil {
				bad(id, &cols[1][i])
			}
		}
		arrs := []arrow.Array{dataset.Int64Array(ids, nil)}
		for j := range cols {
			arrs = append(arrs, dataset.Float64Array(cols[j]))
		}
		rec, err := dataset.NewRecord(s, arrs)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		for _, a := range arrs {
			a.Release()
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// scoredIDs reads every part of a committed output directory (or one file)
// and returns the id → prediction map, failing on a duplicated id.
func scoredIDs(t *testing.T, out string) map[int64]float64 {
	t.Helper()
	files := []string{out}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		man, err := scorer.ReadSuccess(out)
		if err != nil {
			t.Fatalf("reading the manifest of %s: %v", out, err)
		}
		files = nil
		var rows int64
		for _, p := range man.Parts {
			files = append(files, filepath.Join(out, p.File))
			rows += p.Rows
		}
		if rows != man.Rows {
			t.Errorf("manifest: parts hold %d rows, total says %d", rows, man.Rows)
		}
		got, _ := filepath.Glob(filepath.Join(out, "part-*.parquet"))
		if len(got) != len(man.Parts) {
			t.Errorf("%d part files in %s, manifest lists %d", len(got), out, len(man.Parts))
		}
	}
	preds := map[int64]float64{}
	for _, f := range files {
		r, err := dataset.OpenParquet(f)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.ReadAll(context.Background(), []string{"id", "prediction", "model", "model_version"})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids := rec.Column(0).(*array.Int64).Int64Values()
		ps := rec.Column(1).(*array.Float64).Float64Values()
		names := rec.Column(2).(*array.String)
		versions := rec.Column(3).(*array.Int64)
		for i, id := range ids {
			if _, dup := preds[id]; dup {
				t.Fatalf("id %d scored twice", id)
			}
			if names.Value(i) != "churn" || versions.Value(i) != 7 {
				t.Fatalf("row %d of %s: model %s:%d, want churn:7", i, f, names.Value(i), versions.Value(i))
			}
			preds[id] = ps[i]
		}
		rec.Release()
	}
	return preds
}

func scoreOpts(shardRows int64) scorer.PlanOptions {
	return scorer.PlanOptions{Model: "churn", Version: 7, Passthrough: []string{"id"}, ShardRows: shardRows, PartRows: 1000}
}

// TestResolveScoreInputs lists a file, a directory, a glob and a prefix.
func TestResolveScoreInputs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"day-1.parquet", "day-2.parquet", "other.parquet", ".hidden.parquet", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	for _, tc := range []struct {
		input string
		want  []string
	}{
		{"day-1.parquet", abs("day-1.parquet")},
		{".", abs("day-1.parquet", "day-2.parquet", "other.parquet")},
		{"day-*.parquet", abs("day-1.parquet", "day-2.parquet")},
		{"day-", abs("day-1.parquet", "day-2.parquet")},
	} {
		got, err := scorer.ResolveInputs(tc.input, dir)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.input, got, err, tc.want)
		}
	}
	for _, bad := range []string{"nothing-*.parquet", "missing", filepath.Join(dir, "notes.txt", "x")} {
		if _, err := scorer.ResolveInputs(bad, dir); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestScoreShardsResume plans a job over three files (one cut into several
// shards), interrupts a shard after its first part, reruns it — the done
// part is skipped, not rewritten — and commits: the output has every input
// row exactly once, with the predictions of the single-file scorer.
func TestScoreShardsResume(t *testing.T) {
	dir := t.TempDir()
	m := testScoreModel(t, dir)
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	writeScoreInput(t, filepath.Join(in, "a.parquet"), 0, 10000, 1000, nil)
	writeScoreInput(t, filepath.Join(in, "b.parquet"), 10000, 1500, 700, nil)
	writeScoreInput(t, filepath.Join(in, "c.parquet"), 11500, 1, 1, nil)
	files, err := scorer.ResolveInputs(in, "")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	p, err := scorer.NewPlan(m, files, out, scoreOpts(3000))
	if err != nil {
		t.Fatal(err)
	}
	// a: 10 groups of 1000 → shards of 3000 rows: 4; b: 1; c: 1.
	if len(p.Shards) != 6 || p.Rows != 11501 {
		t.Fatalf("plan: %d shards, %d rows; want 6 shards, 11501 rows", len(p.Shards), p.Rows)
	}
	if len(p.Shards[0].Parts) != 3 {
		t.Fatalf("shard 0 has %d parts, want 3 (one per 1000-row group)", len(p.Shards[0].Parts))
	}

	// Interrupt shard 0 after its first part.
	ctx, cancel := context.WithCancel(context.Background())
	_, err = p.RunShard(ctx, m, 0, func(sp scorer.ShardProgress) {
		if sp.PartsDone == 1 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted shard: %v, want context.Canceled", err)
	}
	part0 := filepath.Join(p.Staging, scorer.PartFile(0))
	st0, err := os.Stat(part0)
	if err != nil {
		t.Fatalf("the first part is not there after the interruption: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.Staging, scorer.PartFile(1))); err == nil {
		t.Fatal("the second part exists although the shard was interrupted before it")
	}
	if _, err := p.Commit(); err == nil {
		t.Fatal("commit with missing parts succeeded")
	}

	// A new plan of the same job resumes the staging directory.
	p2, err := scorer.NewPlan(m, files, out, scoreOpts(3000))
	if err != nil {
		t.Fatal(err)
	}
	for i := range p2.Shards {
		res, err := p2.RunShard(context.Background(), m, i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && res.Skipped != 1 {
			t.Errorf("shard 0 rerun skipped %d parts, want 1", res.Skipped)
		}
	}
	if st, err := os.Stat(part0); err != nil || !st.ModTime().Equal(st0.ModTime()) {
		t.Errorf("part 0 was rewritten on the rerun")
	}
	man, err := p2.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if man.Rows != 11501 || len(man.Parts) != p2.Parts {
		t.Errorf("manifest: %d rows in %d parts; want 11501 in %d", man.Rows, len(man.Parts), p2.Parts)
	}
	if _, err := os.Stat(p2.Staging); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory left after the commit: %v", err)
	}
	again, err := p2.Commit() // a retried commit is harmless
	if err != nil || again.Key != man.Key {
		t.Errorf("second commit: %v", err)
	}
	got := scoredIDs(t, out)
	if len(got) != 11501 {
		t.Fatalf("%d distinct ids scored, want 11501", len(got))
	}
	// Same predictions as the single-file scorer.
	single := filepath.Join(dir, "single.parquet")
	if _, err := scorer.Local(context.Background(), m, files, single, scorer.LocalOptions{PlanOptions: scoreOpts(0)}); err != nil {
		t.Fatal(err)
	}
	want := scoredIDs(t, single)
	for id, p := range want {
		if got[id] != p {
			t.Fatalf("id %d: %v in parts, %v in the single file", id, got[id], p)
		}
	}
	// An identical job rerun over the committed output replaces it whole.
	if _, err := scorer.Local(context.Background(), m, files[:1], out, scorer.LocalOptions{PlanOptions: scoreOpts(0)}); err != nil {
		t.Fatal(err)
	}
	if n := len(scoredIDs(t, out)); n != 10000 {
		t.Errorf("after rescoring one file: %d rows, want 10000", n)
	}
}

// TestScoreBadInput checks that bad input — a missing column, a wrong type,
// a corrupt file, NaN or Inf in a feature — fails with an error naming the
// file, the column and the row group, and leaves no output, partial or
// temporary, for both output kinds.
func TestScoreBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want []string
	}{
		{"missing column", func(t *testing.T, path string) {
			writeTable(t, path, dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}, {Name: "x0", Type: dataset.Float64}, {Name: "x2", Type: dataset.Float64}}})
		}, []string{`"x1"`, "lacks"}},
		{"wrong type", func(t *testing.T, path string) {
			writeTable(t, path, dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}, {Name: "x0", Type: dataset.Float64}, {Name: "x1", Type: dataset.String}, {Name: "x2", Type: dataset.Float64}}})
		}, []string{`column "x1" is string`, "float64"}},
		{"corrupt parquet", func(t *testing.T, path string) {
			writeScoreInput(t, path, 0, 5000, 1000, nil)
			corruptPages(t, path)
		}, []string{"row group 1", `column "`}},
		{"NaN", func(t *testing.T, path string) {
			writeScoreInput(t, path, 0, 5000, 1000, func(id int64, x *float64) {
				if id == 3456 {
					*x = math.NaN()
				}
			})
		}, []string{"row group 3", `column "x1"`, "row 3456", "NaN"}},
		{"Inf", func(t *testing.T, path string) {
			writeScoreInput(t, path, 0, 5000, 1000, func(id int64, x *float64) {
				if id == 4999 {
					*x = math.Inf(-1)
				}
			})
		}, []string{"row group 4", `column "x1"`, "row 4999", "-Inf"}},
	} {
		for _, output := range []string{"out", "out.parquet"} {
			t.Run(tc.name+"/"+output, func(t *testing.T) {
				dir := t.TempDir()
				m := testScoreModel(t, dir)
				in := filepath.Join(dir, "input.parquet")
				tc.make(t, in)
				out := filepath.Join(dir, output)
				_, err := scorer.Local(context.Background(), m, []string{in}, out, scorer.LocalOptions{PlanOptions: scoreOpts(1000)})
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				for _, w := range append([]string{in}, tc.want...) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %s", err, w)
					}
				}
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if e.Name() != "bundle" && e.Name() != "input.parquet" {
						t.Errorf("left behind: %s", e.Name())
					}
				}
			})
		}
	}
}

// writeTable writes 10 rows of schema (zeros, "a" strings).
func writeTable(t *testing.T, path string, s dataset.Schema) {
	t.Helper()
	w, err := dataset.CreateParquet(path, s, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cols []arrow.Array
	for _, f := range s.Fields {
		switch f.Type {
		case dataset.Int64:
			cols = append(cols, dataset.Int64Array(make([]int64, 10), nil))
		case dataset.Float64:
			cols = append(cols, dataset.Float64Array(make([]float64, 10)))
		case dataset.String:
			cols = append(cols, dataset.StringArray(slices.Repeat([]string{"a"}, 10), nil))
		}
	}
	rec, err := dataset.NewRecord(s, cols)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// corruptPages overwrites bytes in the middle of the file's data (not the
// footer), so it opens but a page cannot be decoded.
func corruptPages(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 3; i < len(b)/3+64; i++ {
		b[i] = byte(i * 31)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.OpenParquet(path); err != nil {
		t.Fatalf("the damaged file no longer opens: %v", err)
	}
}

// TestScoreStepActivities runs the fanned-out score step's activities in
// order — plan, every shard, commit — then plans the same step again: the
// step cache answers, and a changed output (its _SUCCESS) is not reused.
func TestScoreStepActivities(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	testScoreModel(t, dir)
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	writeScoreInput(t, filepath.Join(in, "a.parquet"), 0, 5000, 1000, nil)
	writeScoreInput(t, filepath.Join(in, "b.parquet"), 5000, 3000, 1000, nil)
	si := scoreStepInput(dir, "pipeline/p/1", "in")
	plan, err := e.acts.ScorePlan(e.ctx, si)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Cached != nil || plan.Shards != 5 || plan.Rows != 8000 || plan.Files != 2 {
		t.Fatalf("plan %+v; want 5 shards (3 + 2), 8000 rows, 2 files", plan)
	}
	out := scoreShardsAndCommit(t, e, si, plan)
	outDir := mustPath(t, out.Artifacts.Scored.URI)
	if out.Artifacts.Scored.Rows != 8000 || len(scoredIDs(t, outDir)) != 8000 {
		t.Fatalf("committed %+v", out.Artifacts.Scored)
	}
	// A retried commit returns the same output.
	again, err := e.acts.ScoreCommit(e.ctx, activities.ScoreCommitInput{Step: si, Staging: plan.Staging, Key: plan.Key})
	if err != nil || again.Artifacts.Scored.SHA256 != out.Artifacts.Scored.SHA256 {
		t.Fatalf("retried commit: %+v, %v", again.Artifacts.Scored, err)
	}
	si.Run.WorkflowID = "pipeline/p/2"
	cached, err := e.acts.ScorePlan(e.ctx, si)
	if err != nil || cached.Cached == nil || cached.Cached.Artifacts.Scored.URI != out.Artifacts.Scored.URI {
		t.Fatalf("second plan: %+v, %v; want the cached output", cached, err)
	}
	if err := os.WriteFile(filepath.Join(outDir, scorer.SuccessFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := e.acts.ScorePlan(e.ctx, si); err != nil || p.Cached != nil {
		t.Fatalf("plan after the output changed: cached %v, %v; want a new plan", p.Cached != nil, err)
	}
}

// scoreShardsAndCommit runs every shard of a planned score step, as the
// workflow would, and commits the output.
func scoreShardsAndCommit(t *testing.T, e *env, si activities.StepInput, plan activities.ScorePlanOutput) activities.StepOutput {
	t.Helper()
	for i := range plan.Shards {
		if _, err := e.acts.ScoreShard(e.ctx, activities.ScoreShardInput{Step: si.Step.Name, Staging: plan.Staging, Shard: i}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.acts.ScoreCommit(e.ctx, activities.ScoreCommitInput{Step: si, Staging: plan.Staging, Key: plan.Key})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scoreStepInput is the input of a score step of run workflowID over
// input, with 2000-row shards, passing id through, scoring with the bundle
// testScoreModel wrote into dir (registered as churn:7).
func scoreStepInput(dir, workflowID, input string) activities.StepInput {
	return activities.StepInput{
		Run:    activities.RunInfo{Pipeline: "p", WorkflowID: workflowID, SpecDir: dir},
		Step:   pipelines.Step{Name: "score", Uses: pipelines.StepScore, Score: &pipelines.ScoreConfig{Input: input, Passthrough: []string{"id"}, ShardRows: 2000}},
		Inputs: activities.Artifacts{Model: &activities.ModelRef{Name: "churn", Version: 7, BundleURI: artifact.FileURI(filepath.Join(dir, "bundle"))}},
	}
}

// TestScoreSecondJobRefused: while a score job's staging directory is
// alive, a second job with another plan for the same output is refused and
// the first job's parts stay; once the first job has shown no life for
// ScoreLeaseTTL the second takes the output over and commits every row
// once. A rerun of the same job resumes.
func TestScoreSecondJobRefused(t *testing.T) {
	dir := t.TempDir()
	m := testScoreModel(t, dir)
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	writeScoreInput(t, filepath.Join(in, "a.parquet"), 0, 5000, 1000, nil)
	files, err := scorer.ResolveInputs(in, "")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "scored")
	p1, err := scorer.NewPlan(m, files, out, scoreOpts(3000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.RunShard(context.Background(), m, 0, nil); err != nil {
		t.Fatal(err)
	}
	part0 := filepath.Join(p1.Staging, scorer.PartFile(0))
	// Another job: the same files cut into other shards, another plan.
	other := scoreOpts(2000)
	if _, err := scorer.NewPlan(m, files, out, other); err == nil || !strings.Contains(err.Error(), "being written by another score job") {
		t.Fatalf("second job planned over a live one: %v", err)
	}
	if _, err := os.Stat(part0); err != nil {
		t.Fatalf("the first job's part is gone: %v", err)
	}
	// The same job again (a retried plan) resumes.
	if _, err := scorer.NewPlan(m, files, out, scoreOpts(3000)); err != nil {
		t.Fatalf("the same job's plan was refused: %v", err)
	}
	// The first job goes quiet for longer than the lease: taken over.
	old := time.Now().Add(-scorer.LeaseTTL - time.Minute)
	if err := os.Chtimes(filepath.Join(p1.Staging, "lease"), old, old); err != nil {
		t.Fatal(err)
	}
	p2, err := scorer.NewPlan(m, files, out, other)
	if err != nil {
		t.Fatalf("a stale staging was not taken over: %v", err)
	}
	if _, err := os.Stat(part0); err == nil {
		t.Error("the stale job's part survived the takeover")
	}
	for i := range p2.Shards {
		if _, err := p2.RunShard(context.Background(), m, i, nil); err != nil {
			t.Fatal(err)
		}
	}
	man, err := p2.Commit()
	if err != nil || man.Rows != p2.Rows {
		t.Fatalf("commit: %+v, %v", man, err)
	}
	if got := scoredIDs(t, out); len(got) != int(p2.Rows) {
		t.Errorf("%d rows committed, want %d", len(got), p2.Rows)
	}
}
