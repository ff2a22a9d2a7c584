package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/workflows"
)

// TestGBDTPipelineEndToEnd runs pipelines/breast_cancer_gbdt.yaml on the
// real embedded Temporal server with the trainer in Docker: the model is
// XGBoost JSON, XGBoost itself (when Debian's python3-xgboost is installed)
// gives the batch scores Kiln wrote, the version's lineage names the
// trainer image, and after a promotion a weaker challenger is kept as a
// rejected version with a report that says by how much it fell short.
func TestGBDTPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	spec := filepath.Join(repoRoot, "pipelines", "breast_cancer_gbdt.yaml")
	ctx := context.Background()

	first := runPipeline(t, st, st.Home, spec)
	if first.Status != workflows.StatusCompleted {
		t.Fatalf("first run: %s: %s", first.Status, first.Error)
	}
	ev := first.Step("evaluate").Artifacts.Evaluation
	if ev == nil || ev.Metrics["auc"] < 0.95 {
		t.Fatalf("first run: evaluation %+v, want holdout AUC >= 0.95", ev)
	}
	recordHistory(t, st.Client, first.WorkflowID, "", "pipeline_gbdt")
	bundle := first.Step("train").Artifacts.Bundle
	dir, err := artifact.Path(bundle.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatalf("loading the trained bundle: %v", err)
	}
	if m.Manifest.Estimator.Type != model.EstimatorXGBoost {
		t.Fatalf("estimator %q, want %q", m.Manifest.Estimator.Type, model.EstimatorXGBoost)
	}
	if bundle.Runtime == "docker" && !strings.HasPrefix(bundle.Image, "sha256:") {
		t.Errorf("bundle image %q: want the trainer image ID", bundle.Image)
	}
	kilnScores := scoredPredictions(t, first)
	if len(kilnScores) != 569 {
		t.Fatalf("scored %d rows, want 569", len(kilnScores))
	}
	checkXGBoostAgrees(t, filepath.Join(dir, m.Manifest.Estimator.File), kilnScores)

	out, err := kiln(t, st, st.Home, "models", "lineage", "breast-cancer-gbdt:1", "--json")
	if err != nil || !strings.Contains(out, bundle.Image) || !strings.Contains(out, first.WorkflowID) {
		t.Errorf("kiln models lineage does not name the image %s and run %s (%v):\n%s", bundle.Image, first.WorkflowID, err, out)
	}
	if out, err := kiln(t, st, st.Home, "models", "promote", "breast-cancer-gbdt", "1", "--to", "production", "--reason", "first model"); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	recordHistory(t, st.Client, workflows.PromoteID("breast-cancer-gbdt", "production"), "", "promote")

	// A much weaker challenger: two shallow trees with a small step.
	out, _ = kiln(t, st, st.Home, "run", spec, "--wait", "--json", "-p", "trees=2", "-p", "eta=0.05", "-p", "depth=1")
	var weak workflows.RunStatus
	if err := json.Unmarshal([]byte(out), &weak); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if weak.Status != workflows.StatusFailed || weak.Step("evaluate").Status != workflows.StatusRejected {
		t.Fatalf("weak run: %s, evaluate %s; want a rejected model", weak.Status, weak.Step("evaluate").Status)
	}
	recordHistory(t, st.Client, weak.WorkflowID, "", "pipeline_rejected")
	report := weak.Step("evaluate").Artifacts.Evaluation.Report
	if !strings.Contains(report, "champion.auc") || !strings.Contains(report, "short by") {
		t.Errorf("gate report does not say by how much the challenger fell short:\n%s", report)
	}
	v, err := st.Activities.Registry.Get(ctx, "breast-cancer-gbdt", 2)
	if err != nil {
		t.Fatalf("the rejected challenger was not kept: %v", err)
	}
	if v.Status != "rejected" || len(v.Aliases) != 0 {
		t.Errorf("challenger: status %q aliases %v, want rejected with no alias", v.Status, v.Aliases)
	}
	if prod, _, err := st.Activities.Registry.Alias(ctx, "breast-cancer-gbdt", "production"); err != nil || prod != 1 {
		t.Errorf("production is %d (%v), want 1", prod, err)
	}
}

// checkXGBoostAgrees loads modelFile with XGBoost and checks it predicts
// want (Kiln's batch scores of data/breast_cancer.csv, in file order) to
// 1e-6. It skips the check without Debian's python3-xgboost.
func checkXGBoostAgrees(t *testing.T, modelFile string, want []float64) {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import xgboost, numpy").Run(); err != nil {
		t.Logf("skipping the XGBoost cross-check: %s has no xgboost (apt-get install python3-xgboost)", py)
		return
	}
	script := `
import csv, json, sys
import numpy as np, xgboost as xgb
b = xgb.Booster(model_file=sys.argv[1])
with open(sys.argv[2]) as f:
    rows = list(csv.DictReader(f))
names = b.feature_names
x = np.array([[float(r[n]) if r[n] != "" else np.nan for n in names] for r in rows], dtype=np.float32)
print(json.dumps(b.predict(xgb.DMatrix(x, feature_names=names)).astype(float).tolist()))
`
	cmd := exec.Command(py, "-c", script, modelFile, filepath.Join(repoRoot, "data", "breast_cancer.csv"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("XGBoost predicting with Kiln's model: %v", err)
	}
	var got []float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding XGBoost's predictions: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("XGBoost gave %d predictions, Kiln %d", len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(got[i]-want[i]))
	}
	if worst > 1e-6 {
		t.Errorf("XGBoost and Kiln disagree by up to %g (want <= 1e-6)", worst)
	}
	t.Logf("XGBoost agrees with Kiln's batch scores on %d rows to %.1e", len(got), worst)
}
