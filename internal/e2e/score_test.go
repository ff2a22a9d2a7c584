package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
	"github.com/kiln-ml/kiln/worker"
)

// TestWorkerKilledDuringScoring SIGKILLs the only worker inside a shard of
// a multi-shard scoring run (ScoreWorkflow on the embedded Temporal
// server): the worker's ScoreShard stops after a shard's first part and
// waits to be killed (blockingScoreShard), so the kill always lands inside
// a shard. Another worker starts, and the run must finish with exactly the
// input's rows, no id twice, and that shard retried.
func TestWorkerKilledDuringScoring(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	// No in-process worker, and no Docker needed: scoring runs in the
	// worker subprocesses.
	st, err := devstack.Start(context.Background(), devstack.Options{Home: t.TempDir(), Ephemeral: true, NoWorker: true})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Stop)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	writeScoreBundle(t, bundle)
	in := filepath.Join(dir, "in")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	const files, perFile, group = 8, 250_000, 25_000
	for f := range files {
		writeScoreFile(t, filepath.Join(in, fmt.Sprintf("day-%02d.parquet", f)), int64(f*perFile), perFile, group)
	}
	out := filepath.Join(dir, "scored")

	marker := filepath.Join(dir, "blocked")
	w1 := startWorkerProcess(t, st.Temporal.Address(), st.Home, envBlockShard+"="+marker)
	step := pipelines.Step{Name: "score", Uses: pipelines.StepScore, Score: &pipelines.ScoreConfig{
		Input: in, Output: out, Passthrough: []string{"id"}, ShardRows: 100_000, Parallelism: 2,
	}}
	input := activities.StepInput{
		Run:    activities.RunInfo{Pipeline: "e2e", WorkflowID: "score/e2e-kill", SpecDir: dir},
		Step:   step,
		Inputs: activities.Artifacts{Model: &activities.ModelRef{Name: "churn", Version: 7, BundleURI: artifact.FileURI(bundle)}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	run, err := st.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "score/e2e-kill", TaskQueue: worker.DefaultTaskQueue},
		activities.WorkflowScore, input)
	if err != nil {
		t.Fatal(err)
	}
	staging := scorer.StagingDir(out)
	eventually(t, 2*time.Minute, "a shard stopped inside, after its first part", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	blocked, _ := os.ReadFile(marker)
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = w1.Process.Wait()
	parts, _ := filepath.Glob(filepath.Join(staging, "part-*.parquet"))
	plan, err := scorer.LoadPlan(staging)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the worker inside %s with %d of %d parts (%d shards) scored", strings.TrimSpace(string(blocked)), len(parts), plan.Parts, len(plan.Shards))
	if len(parts) >= plan.Parts {
		t.Fatal("every part was scored before the kill; the test needs a slower job")
	}
	startWorkerProcess(t, st.Temporal.Address(), st.Home)

	var res activities.StepOutput
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("scoring after the worker was killed: %v", err)
	}
	if res.Artifacts.Scored == nil || res.Artifacts.Scored.Rows != files*perFile {
		t.Fatalf("result %+v, want %d rows", res.Artifacts.Scored, files*perFile)
	}
	man, err := scorer.ReadSuccess(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, files*perFile)
	var rows int64
	for _, p := range man.Parts {
		r, err := dataset.OpenParquet(filepath.Join(out, p.File))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.ReadAll(ctx, []string{"id"})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range rec.Column(0).(*array.Int64).Int64Values() {
			if seen[id] {
				t.Fatalf("id %d scored twice", id)
			}
			seen[id] = true
			rows++
		}
		rec.Release()
	}
	if rows != files*perFile {
		t.Errorf("the output holds %d rows, the input %d", rows, files*perFile)
	}
	if got, _ := filepath.Glob(filepath.Join(out, "part-*.parquet")); len(got) != len(man.Parts) {
		t.Errorf("%d part files, manifest lists %d", len(got), len(man.Parts))
	}
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Errorf("staging directory left behind: %v", err)
	}
	recordHistory(t, st.Client, "score/e2e-kill", "", "score_worker_killed")
	recordHistory(t, st.Client, "score/e2e-kill/shards-0", "", "score_shards_worker_killed")
	// The kill landed inside a shard: that shard needed a second attempt,
	// which resumed after its completed part.
	if n := maxShardAttempt(t, st.Client, "score/e2e-kill/shards-0"); n < 2 {
		t.Errorf("no shard needed a second attempt (max attempt %d), though the worker was killed inside one", n)
	}
}

// maxShardAttempt returns the highest attempt of the ScoreShard activities
// in a workflow's history.
func maxShardAttempt(t *testing.T, c client.Client, wid string) int32 {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var attempt int32
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempt = max(attempt, a.GetAttempt())
		}
	}
	return attempt
}

// writeScoreBundle writes the scoring tests' logistic bundle over x0..x2.
func writeScoreBundle(t *testing.T, dir string) {
	t.Helper()
	writeLogisticBundle(t, dir, "churn", [3]float64{0.5, -1.25, 2}, 0.1)
}

// writeScoreFile writes rows rows (ids from firstID) of id, x0..x2 in row
// groups of group rows.
func writeScoreFile(t *testing.T, path string, firstID int64, rows, group int) {
	t.Helper()
	s := dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}, {Name: "x0", Type: dataset.Float64}, {Name: "x1", Type: dataset.Float64}, {Name: "x2", Type: dataset.Float64}}}
	w, err := dataset.CreateParquet(path, s, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < rows; lo += group {
		n := min(group, rows-lo)
		ids := make([]int64, n)
		xs := [3][]float64{make([]float64, n), make([]float64, n), make([]float64, n)}
		for i := range n {
			id := firstID + int64(lo+i)
			ids[i] = id
			for j := range xs {
				xs[j][i] = math.Cos(float64(id)*0.11 + float64(j))
			}
		}
		cols := []arrow.Array{dataset.Int64Array(ids, nil), dataset.Float64Array(xs[0]), dataset.Float64Array(xs[1]), dataset.Float64Array(xs[2])}
		rec, err := dataset.NewRecord(s, cols)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		for _, c := range cols {
			c.Release()
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// onePart returns the scored file at p: p itself, or the only part of a
// fanned-out score step's output directory (small inputs make one part).
func onePart(t *testing.T, p string) string {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil || !st.IsDir() {
		return p
	}
	man, err := scorer.ReadSuccess(p)
	if err != nil {
		t.Fatalf("scored output %s: %v", p, err)
	}
	if len(man.Parts) != 1 {
		t.Fatalf("scored output %s has %d parts, want 1", p, len(man.Parts))
	}
	return filepath.Join(p, man.Parts[0].File)
}
