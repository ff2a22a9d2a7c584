package cli_test

import (
	"testing"
	"time"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/workflows"
)

// TestCompareRuns: what changed between two runs is marked (params, data,
// metrics, a rejected model, a step's status), times are shown but never
// count as a change, and a run that registered nothing still compares.
func TestCompareRuns(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	run := func(l2 float64, auc float64, rows int64, rejected bool, took time.Duration) workflows.RunStatus {
		return workflows.RunStatus{Pipeline: "churn", Status: workflows.StatusCompleted, Started: t0, Ended: t0.Add(took), SpecHash: "abc",
			Steps: []workflows.StepStatus{
				{Name: "ingest", Status: workflows.StatusCompleted, Started: t0, Ended: t0.Add(took / 2),
					Artifacts: activities.Artifacts{Dataset: &activities.DatasetRef{SHA256: "d1d1d1d1d1d1d1", Rows: rows}}},
				{Name: "train", Status: workflows.StatusCompleted, Started: t0, Ended: t0.Add(took),
					Artifacts: activities.Artifacts{Bundle: &activities.BundleRef{Params: map[string]any{"l2": l2, "max_iter": 100.0}}}},
				{Name: "evaluate", Status: workflows.StatusCompleted,
					Artifacts: activities.Artifacts{Evaluation: &activities.EvaluationRef{Metrics: map[string]float64{"auc": auc, "f1": 0.5}}}},
				{Name: "register", Status: workflows.StatusCompleted,
					Artifacts: activities.Artifacts{Model: &activities.ModelRef{Name: "churn", Version: 3, Rejected: rejected}}},
			}}
	}
	a := run(0.01, 0.81, 1000, false, time.Minute)
	b := run(0.1, 0.79, 1000, true, 2*time.Minute)
	b.Steps = b.Steps[:3] // registered nothing
	b.Steps[2].Status = workflows.StatusFailed
	b.Status = workflows.StatusFailed
	cmp := cli.CompareRuns([]string{"pipeline/churn/r1", "pipeline/churn/r2"}, []workflows.RunStatus{a, b})
	differs := map[string]bool{}
	values := map[string][]string{}
	for _, f := range cmp.Fields {
		differs[f.Name], values[f.Name] = f.Differs, f.Values
	}
	for _, name := range []string{"status", "param l2", "metric auc", "model", "step evaluate", "step register"} {
		if !differs[name] {
			t.Errorf("%s %v not marked as a change", name, values[name])
		}
	}
	for _, name := range []string{"param max_iter", "metric f1", "dataset sha256", "dataset rows", "started", "duration", "step train", "step ingest"} {
		if differs[name] {
			t.Errorf("%s %v marked as a change", name, values[name])
		}
	}
	if v := values["param l2"]; v[0] != "0.01" || v[1] != "0.1" {
		t.Errorf("param l2 %v", v)
	}
	if v := values["model"]; v[0] != "churn:3" || v[1] != "-" {
		t.Errorf("model %v", v)
	}
	if v := values["duration"]; v[0] == v[1] {
		t.Errorf("durations %v should show each run's", v)
	}
}
