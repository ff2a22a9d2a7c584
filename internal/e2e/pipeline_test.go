package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/workflows"
)

// Parameters that make the example pipeline's canary and monitor fast.
var fastParams = []string{
	"canary_interval=1s", "canary_min_requests=20",
	"monitor_interval=1s", "monitor_window=4s", "monitor_min_rows=300", "cooldown=1h",
}

// TestBreastCancerEndToEnd runs pipelines/breast_cancer.yaml against a real
// Temporal server, trains in Docker (or a local process without an engine),
// scores Parquet, deploys to a real model server, rolls a second version out
// as a canary under live traffic, then drifts the traffic and expects exactly
// one retrain.
func TestBreastCancerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	spec := filepath.Join(repoRoot, "pipelines", "breast_cancer.yaml")
	const model = "breast-cancer"
	ctx := context.Background()
	reg := st.Activities.Registry

	// Run 1: the first version is deployed directly.
	run1 := runPipeline(t, st, st.Home, spec, fastParams...)
	if run1.Status != workflows.StatusCompleted {
		t.Fatalf("run 1: %s: %s", run1.Status, run1.Error)
	}
	art := run1.Artifacts()
	if art.Model == nil || art.Model.Version != 1 {
		t.Fatalf("run 1 registered %+v, want version 1", art.Model)
	}
	v1, err := reg.Get(ctx, model, 1)
	if err != nil {
		t.Fatal(err)
	}
	if auc := v1.Metrics["auc"]; !(auc >= 0.95) {
		t.Errorf("holdout AUC %.4f < 0.95", auc)
	}
	if v1.RunID != run1.WorkflowID || v1.DatasetHash == "" || v1.SpecHash == "" || v1.CreatedBy == "" || v1.Image == "" {
		t.Errorf("lineage incomplete: %+v", v1)
	}
	if st.Activities.Docker != nil && v1.Runtime != "docker" {
		t.Errorf("trained with runtime %q while Docker is reachable", v1.Runtime)
	}
	checkScored(t, art, 569)
	if art.Deployment == nil || art.Deployment.Outcome != "first deployment" {
		t.Errorf("run 1 deployment %+v", art.Deployment)
	}
	checkStepsVisible(t, st, run1)
	recordHistory(t, st.Client, run1.WorkflowID, "", "pipeline_first_deployment")

	// Run 2 under live traffic: a canary that must be promoted.
	// Served traffic is a random sample of the data; the file's own order is
	// not (it starts with malignant cases), and the monitor would rightly
	// call that drift.
	rows := csvRows(t, filepath.Join(repoRoot, "data", "breast_cancer.csv"))
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	normal := startTraffic(st.ServerURL, model, rows, 150)
	run2 := runPipeline(t, st, st.Home, spec, append(fastParams, "seed=7", "l2=0.02")...)
	stats := normal.stop()
	if run2.Status != workflows.StatusCompleted {
		t.Fatalf("run 2: %s: %s", run2.Status, run2.Error)
	}
	dep := run2.Artifacts().Deployment
	if dep == nil || !dep.Promoted || dep.Outcome != "promoted" || dep.Version != 2 {
		t.Fatalf("run 2 deployment %+v", dep)
	}
	if stats.Errors != 0 || stats.ByVersion[2] == 0 {
		t.Errorf("traffic during the canary: %+v", stats)
	}
	recordHistory(t, st.Client, run2.WorkflowID, "", "pipeline_canary")
	recordHistory(t, st.Client, activities.CanaryID(model), "", "canary_promoted")
	if v, ok, err := reg.Alias(ctx, model, "production"); err != nil || !ok || v != 2 {
		t.Errorf("production alias = %d, %v, %v; want 2", v, ok, err)
	}
	// kiln runs list --metrics reads each run's evaluation metrics.
	listOut, err := kiln(t, st, st.Home, "runs", "list", "--pipeline", "breast-cancer", "--metrics", "--json")
	var listed []struct {
		WorkflowID string             `json:"workflow_id"`
		Metrics    map[string]float64 `json:"metrics"`
	}
	if err != nil || json.Unmarshal([]byte(listOut), &listed) != nil || len(listed) != 2 {
		t.Fatalf("kiln runs list --metrics: %v\n%s", err, listOut)
	}
	for _, r := range listed {
		if _, ok := r.Metrics["auc"]; !ok {
			t.Errorf("run %s listed without its AUC: %v", r.WorkflowID, r.Metrics)
		}
	}

	// Drift: shifted inputs make the monitor start exactly one retrain.
	drifted := startTraffic(st.ServerURL, model, shifted(rows, 1.8), 150)
	defer drifted.stop()
	driftQuery := fmt.Sprintf("WorkflowType = '%s' AND KilnTrigger = 'drift'", activities.WorkflowPipeline)
	var retrains []string
	eventually(t, 90*time.Second, "a retrain run started by drift", func() bool {
		retrains = listWorkflows(t, st.Client, driftQuery)
		return len(retrains) > 0
	})
	retrainID, _, _ := strings.Cut(retrains[0], "/retrain-")
	if !strings.HasPrefix(retrains[0], "pipeline/"+model+"/retrain-") {
		t.Errorf("retrain run %s is not named pipeline/%s/retrain-...", retrainID, model)
	}
	// Let the retrain finish (its canary runs on the drifted traffic), then
	// keep drifting for several more monitor intervals.
	var rs workflows.RetrainResult
	if err := st.Client.GetWorkflow(ctx, activities.RetrainID(model), "").Get(ctx, &rs); err != nil {
		t.Fatalf("retrain (%s): %v", retrainReason(t, st), err)
	}
	t.Logf("retrain reason: %s", rs.Reason)
	if rs.Run.Status != workflows.StatusCompleted || rs.Run.Artifacts().Model == nil || rs.Run.Artifacts().Model.Version != 3 {
		t.Errorf("retrain run %s: %s %s, model %+v", rs.Run.WorkflowID, rs.Run.Status, rs.Run.Error, rs.Run.Artifacts().Model)
	}
	time.Sleep(4 * time.Second)
	drifted.stop()
	recordHistory(t, st.Client, activities.RetrainID(model), "", "retrain")
	if got := listWorkflows(t, st.Client, driftQuery); len(got) != 1 {
		t.Errorf("%d pipeline runs triggered by drift, want exactly 1: %v", len(got), got)
	}
	if got := listWorkflows(t, st.Client, fmt.Sprintf("WorkflowId = '%s'", activities.RetrainID(model))); len(got) != 1 {
		t.Errorf("%d retrain workflows, want exactly 1: %v", len(got), got)
	}
	var mon activities.MonitorRequest
	v, err := st.Client.QueryWorkflow(ctx, activities.MonitorID(model), "", workflows.QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&mon); err != nil {
		t.Fatal(err)
	}
	if mon.State.Retrains != 1 || mon.State.LastWindow == nil || mon.State.LastDecision == nil {
		t.Errorf("monitor state: %d retrains, last window %v, last decision %v; want one retrain and a recorded window", mon.State.Retrains, mon.State.LastWindow != nil, mon.State.LastDecision)
	}
	// The decision that retrained is in the registry with its reason.
	ds, err := st.Activities.Registry.MonitorDecisions(ctx, model, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var retrainDecisions int
	for _, d := range ds {
		if d.Action == monitor.ActionRetrain {
			retrainDecisions++
			if d.Trigger != monitor.TriggerDriftShare || !strings.Contains(d.Reason, "features drifted") {
				t.Errorf("retrain decision %+v, want the drift share rule", d)
			}
		}
	}
	if retrainDecisions != 1 {
		t.Errorf("%d retrain decisions recorded, want 1 (of %d decisions)", retrainDecisions, len(ds))
	}
}

// checkScored opens the scored Parquet file: one prediction per input row.
func checkScored(t *testing.T, art activities.Artifacts, rows int64) {
	t.Helper()
	if art.Scored == nil {
		t.Fatal("no scored file")
	}
	p, err := artifact.Path(art.Scored.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(onePart(t, p))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != rows || art.Scored.Rows != rows {
		t.Errorf("scored file has %d rows (step says %d), input has %d", r.NumRows(), art.Scored.Rows, rows)
	}
	rec, err := r.ReadAll(context.Background(), []string{"prediction", "model", "model_version"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	preds, _ := dataset.Float64s(rec, "prediction")
	for i, p := range preds {
		if math.IsNaN(p) || p < 0 || p > 1 {
			t.Fatalf("row %d: prediction %v", i, p)
		}
	}
	names, _, _ := dataset.Strings(rec, "model")
	if names[0] != art.Model.Name {
		t.Errorf("model column %q, want %q", names[0], art.Model.Name)
	}
}

// checkStepsVisible checks what a person sees: `kiln runs show` lists every
// step, and the history names each step's activity by the step's name.
func checkStepsVisible(t *testing.T, st *devstack.Stack, run workflows.RunStatus) {
	t.Helper()
	out, err := kiln(t, st, st.Home, "runs", "show", run.WorkflowID)
	if err != nil {
		t.Fatalf("kiln runs show: %v", err)
	}
	for _, s := range run.Steps {
		if !strings.Contains(out, s.Name) || s.Status != workflows.StatusCompleted {
			t.Errorf("kiln runs show: step %s (%s) missing:\n%s", s.Name, s.Status, out)
		}
	}
	iter := st.Client.GetWorkflowHistory(context.Background(), run.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	named := map[string]bool{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			if ev.GetUserMetadata().GetSummary() == nil {
				t.Errorf("activity %s has no summary for the UI", a.GetActivityId())
			}
			named[a.GetActivityId()] = true
		}
		// Score steps run as a child workflow <run>/<step>.
		if c := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes(); c != nil {
			if ev.GetUserMetadata().GetSummary() == nil {
				t.Errorf("child workflow %s has no summary for the UI", c.GetWorkflowId())
			}
			if step, ok := strings.CutPrefix(c.GetWorkflowId(), run.WorkflowID+"/"); ok {
				named[step] = true
			}
		}
	}
	for _, s := range run.Steps {
		if s.Uses != "deploy" && !named[s.Name] {
			t.Errorf("no activity named %q in the history", s.Name)
		}
	}
}

// retrainReason reads the reason the monitor gave for the retrain.
func retrainReason(t *testing.T, st *devstack.Stack) string {
	var mon activities.MonitorRequest
	v, err := st.Client.QueryWorkflow(context.Background(), activities.MonitorID("breast-cancer"), "", workflows.QueryStatus)
	if err != nil {
		return err.Error()
	}
	if err := v.Get(&mon); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%+v", mon.State.LastReport)
}
