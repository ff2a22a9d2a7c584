package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/gate"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// rejectedSpec registers into staging; score and deploy depend on register,
// report on evaluate only.
const rejectedSpec = `apiVersion: kiln/v1
kind: Pipeline
name: demo
steps:
  - name: ingest
    uses: ingest
    with: {source: data.csv}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with: {target: y}
  - name: train
    uses: train
    needs: [prep]
    with: {algorithm: logistic}
  - name: evaluate
    uses: evaluate
    needs: [train]
    with: {gate: "auc >= champion.auc + 0.002"}
  - name: register
    uses: register
    needs: [evaluate]
    with: {model: demo, alias: staging}
  - name: after-eval
    uses: noop
    needs: [evaluate]
  - name: score
    uses: score
    needs: [register]
  - name: unrelated
    uses: noop
    needs: [ingest]
`

// TestRejectedModelWorkflow runs a pipeline whose evaluate step rejects the
// model (mocked: a challenger 0.019 short of the champion) against the real
// register activity and a SQLite registry: register keeps the model as a
// rejected version without alias, the run fails with the report, steps that
// depend on the rejected model do not run, and independent steps do.
func TestRejectedModelWorkflow(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	champ, _, err := reg.Register(ctx, registry.Version{Model: "demo", BundleURI: "file:///champion"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: "demo", Alias: "production", To: champ.Version}); err != nil {
		t.Fatal(err)
	}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(PipelineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPipeline})
	env.RegisterActivityWithOptions(&activities.Activities{Registry: reg}, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	parsed, err := pipelines.Parse("test.yaml", []byte(rejectedSpec), nil)
	if err != nil {
		t.Fatal(err)
	}
	env.OnActivity(a.Validate, mock.Anything, mock.Anything).Return(activities.ValidateOutput{Spec: *parsed}, nil)
	r := &recorder{}
	env.OnActivity(a.Ingest, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Dataset: &activities.DatasetRef{URI: "file:///d", SHA256: "abc"}}))
	env.OnActivity(a.Preprocess, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Prepared: &activities.PreparedRef{TrainURI: "file:///t", DatasetSHA256: "abc"}}))
	env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Bundle: &activities.BundleRef{URI: "file:///challenger", SHA256: "b1"}}))
	check := gate.Check{Expr: "auc >= champion.auc + 0.002", LeftExpr: "auc", RightExpr: "champion.auc + 0.002", Op: ">=", Left: 0.912, Right: 0.931}
	ev := &activities.EvaluationRef{
		Metrics: map[string]float64{"auc": 0.912}, ChampionMetrics: map[string]float64{"auc": 0.929},
		Gate: check.Expr, Passed: false, Checks: []gate.Check{check}, Champion: champ.Version, ChampionRef: "demo:1",
		Report: `gate "auc >= champion.auc + 0.002" failed (champion demo:1):` + "\n  " + check.Report(),
	}
	env.OnActivity(a.Evaluate, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Evaluation: ev}))
	env.OnActivity(a.Noop, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{}))
	env.OnActivity(a.Score, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{}))

	env.ExecuteWorkflow(PipelineWorkflow, PipelineInput{Spec: activities.ValidateInput{SpecText: rejectedSpec}, CreatedBy: "test"})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err = env.GetWorkflowError()
	const short = "auc 0.912 < champion.auc + 0.002 = 0.931: short by 0.019"
	gateFailed := false
	for e := err; e != nil; e = errors.Unwrap(e) {
		if ae, ok := e.(*temporal.ApplicationError); ok && ae.Type() == ErrTypeGateFailed {
			gateFailed = true
		}
	}
	if !gateFailed || !strings.Contains(err.Error(), short) || !strings.Contains(err.Error(), "demo:2") {
		t.Fatalf("workflow error %v, want a GateFailed error naming demo:2 with the report line %q", err, short)
	}
	var run RunStatus
	if err := env.GetWorkflowResult(&run); err != nil && !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("result: %v", err)
	}
	var status RunStatus
	val, qerr := env.QueryWorkflow(QueryStatus)
	if qerr != nil || val.Get(&status) != nil {
		t.Fatalf("status query: %v", qerr)
	}
	want := map[string]string{
		"evaluate": StatusRejected, "register": StatusFailed, "after-eval": StatusSkipped,
		"score": StatusSkipped, "unrelated": StatusCompleted,
	}
	for name, w := range want {
		if got := status.Step(name).Status; got != w {
			t.Errorf("step %s: %s, want %s", name, got, w)
		}
	}
	if status.Status != StatusFailed || !strings.Contains(status.Error, short) {
		t.Errorf("run %s, error %q; want failed with the report", status.Status, status.Error)
	}
	if m := status.Step("register").Artifacts.Model; m == nil || m.Version != 2 || !m.Rejected {
		t.Errorf("register step's model %+v, want demo:2 rejected", m)
	}
	if reason := status.Step("after-eval").SkipReason; !strings.Contains(reason, `rejected by step "evaluate"`) {
		t.Errorf("after-eval skip reason %q", reason)
	}

	v, err := reg.Get(ctx, "demo", 2)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Report string `json:"report"`
	}
	if v.Status != registry.StatusRejected || len(v.Aliases) != 0 || json.Unmarshal([]byte(v.Report), &rep) != nil || !strings.Contains(rep.Report, short) {
		t.Errorf("demo:2 status %q, aliases %v, report %s; want rejected, no alias, the report", v.Status, v.Aliases, v.Report)
	}
	if _, set, _ := reg.Alias(ctx, "demo", "staging"); set {
		t.Error("demo@staging was set for a rejected version")
	}
	if p, _, _ := reg.Alias(ctx, "demo", "production"); p != champ.Version {
		t.Errorf("demo@production = %d, want the champion %d", p, champ.Version)
	}
}

// TestRejectedWithoutRegister: with no register step to keep the model, the
// run still fails, at the end, with the evaluation's report.
func TestRejectedWithoutRegister(t *testing.T) {
	spec := strings.Replace(rejectedSpec, `  - name: register
    uses: register
    needs: [evaluate]
    with: {model: demo, alias: staging}
`, "", 1)
	spec = strings.Replace(spec, "    uses: score\n    needs: [register]\n", "    uses: noop\n    needs: [after-eval]\n", 1)
	env := newEnv(t, spec)
	r := &recorder{}
	env.OnActivity(a.Ingest, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Dataset: &activities.DatasetRef{URI: "file:///d", SHA256: "abc"}}))
	env.OnActivity(a.Preprocess, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Prepared: &activities.PreparedRef{TrainURI: "file:///t"}}))
	env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Bundle: &activities.BundleRef{URI: "file:///b"}}))
	env.OnActivity(a.Noop, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{}))
	ev := &activities.EvaluationRef{Metrics: map[string]float64{"auc": 0.7}, Passed: false, Report: "gate \"auc >= 0.8\" failed (no champion yet):\n  auc 0.7 < 0.8: short by 0.1"}
	env.OnActivity(a.Evaluate, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Evaluation: ev}))
	env.ExecuteWorkflow(PipelineWorkflow, PipelineInput{Spec: activities.ValidateInput{SpecText: spec}, CreatedBy: "test"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "auc 0.7 < 0.8: short by 0.1") || !strings.Contains(err.Error(), "GateFailed") {
		t.Fatalf("workflow error %v, want GateFailed with the report", err)
	}
	var status RunStatus
	val, qerr := env.QueryWorkflow(QueryStatus)
	if qerr != nil || val.Get(&status) != nil {
		t.Fatalf("status query: %v", qerr)
	}
	for name, w := range map[string]string{"evaluate": StatusRejected, "after-eval": StatusSkipped, "score": StatusSkipped, "unrelated": StatusCompleted} {
		if got := status.Step(name).Status; got != w {
			t.Errorf("step %s: %s, want %s", name, got, w)
		}
	}
}
