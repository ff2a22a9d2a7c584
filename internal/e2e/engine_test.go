package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/workflows"
)

// TestResumeAfterAFix fails a run at its gate, resumes it with the gate
// fixed, and checks that the steps before the failure were reused, not run
// again, and that the result equals a clean run's.
func TestResumeAfterAFix(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	spec := filepath.Join(repoRoot, "internal", "e2e", "testdata", "resume.yaml")

	out, _ := kiln(t, st, st.Home, "run", spec, "--wait", "--json", "-p", "min_auc=0.99999")
	var failed workflows.RunStatus
	if err := json.Unmarshal([]byte(out), &failed); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	// A failed gate: evaluate rejects the model, register keeps it as a
	// rejected version and fails the run.
	if failed.Status != workflows.StatusFailed || failed.Step("evaluate").Status != workflows.StatusRejected ||
		failed.Step("register").Status != workflows.StatusFailed {
		t.Fatalf("first run: %s, evaluate %s, register %s; want a rejected model", failed.Status, failed.Step("evaluate").Status, failed.Step("register").Status)
	}
	if m := failed.Step("register").Artifacts.Model; m == nil || !m.Rejected {
		t.Errorf("first run: register kept %+v, want a rejected version", m)
	}

	resumed := runFlags(t, st, spec, "--resume", failed.WorkflowID)
	if resumed.Status != workflows.StatusCompleted {
		t.Fatalf("resumed run: %s: %s", resumed.Status, resumed.Error)
	}
	recordHistory(t, st.Client, resumed.WorkflowID, "", "pipeline_resumed")
	for _, name := range []string{"ingest", "prep", "train"} {
		if s := resumed.Step(name); !s.Reused {
			t.Errorf("resumed run: step %s was not reused (status %s, cached %v)", name, s.Status, s.Cached)
		}
	}
	for _, name := range []string{"evaluate", "register", "score"} {
		if s := resumed.Step(name); s.Reused || s.Cached || s.Status != workflows.StatusCompleted {
			t.Errorf("resumed run: step %s: %s reused=%v cached=%v, want it run", name, s.Status, s.Reused, s.Cached)
		}
	}
	// The training container did not run again: one Train activity ran in the
	// resumed run, and it returned the earlier bundle.
	if got, want := resumed.Step("train").Artifacts.Bundle.URI, failed.Step("train").Artifacts.Bundle.URI; got != want {
		t.Errorf("resumed train bundle %s, want the failed run's %s", got, want)
	}

	clean := runFlags(t, st, spec, "--no-cache")
	if clean.Status != workflows.StatusCompleted {
		t.Fatalf("clean run: %s: %s", clean.Status, clean.Error)
	}
	for _, s := range clean.Steps {
		if s.Cached || s.Reused {
			t.Errorf("clean run with --no-cache: step %s was cached/reused", s.Name)
		}
	}
	rm, cm := resumed.Step("evaluate").Artifacts.Evaluation.Metrics, clean.Step("evaluate").Artifacts.Evaluation.Metrics
	for _, k := range []string{"auc", "accuracy", "f1", "logloss"} {
		if rm[k] != cm[k] {
			t.Errorf("metric %s: resumed %v, clean %v", k, rm[k], cm[k])
		}
	}
	if a, b := scoredPredictions(t, resumed), scoredPredictions(t, clean); !equalFloats(a, b) {
		t.Error("the resumed and the clean run scored differently")
	}

	// A third run with the cache on serves the steps before register from
	// it. Register adds a new version, so score runs again: its rows carry
	// the model version.
	cached := runPipeline(t, st, st.Home, spec)
	for _, name := range []string{"ingest", "prep", "train", "evaluate"} {
		if s := cached.Step(name); !s.Cached {
			t.Errorf("cached run: step %s not served from the cache", name)
		}
	}
	if s := cached.Step("score"); s.Cached || s.Reused {
		t.Error("cached run: score was served from the cache although the model version changed")
	}
	if out, err := kiln(t, st, st.Home, "runs", "show", cached.WorkflowID); err != nil || !strings.Contains(out, "cached") {
		t.Errorf("kiln runs show does not mark cached steps (%v):\n%s", err, out)
	}
}

// runFlags runs `kiln run SPEC --wait --json` with extra flags.
func runFlags(t *testing.T, st *devstack.Stack, spec string, flags ...string) workflows.RunStatus {
	t.Helper()
	out, err := kiln(t, st, st.Home, append([]string{"run", spec, "--wait", "--json"}, flags...)...)
	var rs workflows.RunStatus
	if jerr := json.Unmarshal([]byte(out), &rs); jerr != nil {
		t.Fatalf("kiln run %v: %v (output %q)", flags, jerr, out)
	}
	if err != nil {
		t.Fatalf("kiln run %v: %v", flags, err)
	}
	return rs
}

func scoredPredictions(t *testing.T, rs workflows.RunStatus) []float64 {
	t.Helper()
	p, err := artifact.Path(rs.Artifacts().Scored.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(onePart(t, p))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), []string{"prediction"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	v, _ := dataset.Float64s(rec, "prediction")
	return v
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// TestApprovalThroughTheCLI waits at an approval step until `kiln approve`
// decides it, and shows who approved and why.
func TestApprovalThroughTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	spec := filepath.Join(repoRoot, "internal", "e2e", "testdata", "approval.yaml")
	out, err := kiln(t, st, st.Home, "run", spec, "--json")
	if err != nil {
		t.Fatal(err)
	}
	wid := jsonField(t, out, "workflow_id")
	eventually(t, 30*time.Second, "the approval step to wait", func() bool {
		out, _ := kiln(t, st, st.Home, "runs", "show", wid, "--json")
		var rs workflows.RunStatus
		return json.Unmarshal([]byte(out), &rs) == nil && rs.Step("sign-off") != nil && rs.Step("sign-off").Status == workflows.StatusWaiting
	})
	if _, err := kiln(t, st, st.Home, "approve", wid, "sign-off", "--reason", "metrics look fine", "--as", "mallory"); err == nil {
		t.Error("an approval by someone not in approvers was accepted")
	}
	// The bare run ID (20261203-074909-bee2) names the run too.
	bare := wid[strings.LastIndex(wid, "/")+1:]
	if _, err := kiln(t, st, st.Home, "approve", bare, "sign-off", "--reason", "metrics look fine", "--as", "ana"); err != nil {
		t.Fatalf("kiln approve: %v", err)
	}
	var rs workflows.RunStatus
	if err := st.Client.GetWorkflow(context.Background(), wid, "").Get(context.Background(), &rs); err != nil {
		t.Fatalf("run after approval: %v", err)
	}
	recordHistory(t, st.Client, wid, "", "pipeline_approval")
	ap := rs.Step("sign-off").Artifacts.Approval
	if ap == nil || !ap.Approved || ap.By != "ana" || ap.Reason != "metrics look fine" || rs.Step("ship").Status != workflows.StatusCompleted {
		t.Fatalf("approval %+v, ship %s", ap, rs.Step("ship").Status)
	}
	out, err = kiln(t, st, st.Home, "runs", "show", wid)
	if err != nil || !strings.Contains(out, "ana") || !strings.Contains(out, "metrics look fine") {
		t.Errorf("kiln runs show does not show the approval (%v):\n%s", err, out)
	}
	// A bare run ID and a child workflow's ID (as the UI lists foreach
	// chunks and scoring shards) show the run.
	for _, arg := range []string{bare, wid + "/each/0"} {
		out, err = kiln(t, st, st.Home, "runs", "show", arg, "--json")
		if err != nil || jsonField(t, out, "workflow_id") != wid {
			t.Errorf("kiln runs show %s: %v\n%s", arg, err, out)
		}
	}
	if _, err := kiln(t, st, st.Home, "runs", "show", "20200101-000000-zzzz"); err == nil || !strings.Contains(err.Error(), "no pipeline run has the ID") {
		t.Errorf("unknown bare run ID: %v", err)
	}
}

// TestForeachTenThousandItems fans a step out over 10,000 items against the
// real server and checks that every item ran and no history grew large.
func TestForeachTenThousandItems(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	if *record {
		small, _ := runForeach(t, st, 12, 4)
		recordHistory(t, st.Client, small.WorkflowID, "", "pipeline_foreach")
		recordHistory(t, st.Client, small.WorkflowID+"/each/0", "", "foreach_chunk")
	}
	const n = 10000
	rs, elapsed := runForeach(t, st, n, 64)
	ref := rs.Step("each").Artifacts.Foreach
	if rs.Status != workflows.StatusCompleted || ref == nil || ref.Items != n || ref.Succeeded != n || ref.Failed != 0 {
		t.Fatalf("foreach of %d items: %s, %+v", n, rs.Status, ref)
	}
	t.Logf("%d items in %s", n, elapsed.Round(time.Millisecond))
	// Every item's result is in the results files, once.
	seen := map[int]bool{}
	for _, uri := range ref.ResultsURIs {
		p, err := artifact.Path(uri, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r activities.ItemResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			if seen[r.Item.Index] || r.Error != "" {
				t.Fatalf("item %d: duplicate or failed (%s)", r.Item.Index, r.Error)
			}
			seen[r.Item.Index] = true
		}
	}
	if len(seen) != n {
		t.Errorf("%d items in the results files, want %d", len(seen), n)
	}
	// No history approaches Temporal's limits (50,000 events).
	for _, id := range append([]string{rs.WorkflowID}, chunkIDs(rs.WorkflowID, "each", len(ref.ResultsURIs))...) {
		d, err := st.Client.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		if events := d.GetWorkflowExecutionInfo().GetHistoryLength(); events > 10000 {
			t.Errorf("%s has %d history events", id, events)
		}
	}
}

func chunkIDs(wid, step string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s/%s/%d", wid, step, i)
	}
	return ids
}

// runForeach runs a one-step pipeline: noop over n items.
func runForeach(tb testing.TB, st *devstack.Stack, n, parallelism int) (workflows.RunStatus, time.Duration) {
	tb.Helper()
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("item-%d", i)
	}
	spec := fmt.Sprintf("apiVersion: kiln/v1\nkind: Pipeline\nname: fan\nsteps:\n  - name: each\n    uses: noop\n    foreach: {parallelism: %d, items: [%s]}\n", parallelism, strings.Join(items, ", "))
	in := workflows.PipelineInput{Spec: activities.ValidateInput{SpecText: spec, SpecFile: "fan.yaml", SpecDir: tb.TempDir()}}
	start := time.Now()
	rs := execPipeline(tb, st, in)
	return rs, time.Since(start)
}
