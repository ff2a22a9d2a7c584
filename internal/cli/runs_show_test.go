package cli_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/pipelines"
	"github.com/kiln-ml/kiln/workflows"
)

// TestStepCells checks the STATUS and OUTPUT columns of kiln runs show and
// the progress lines of kiln run --wait.
func TestStepCells(t *testing.T) {
	const wid = "pipeline/churn/r2"
	at := time.Date(2026, 11, 25, 10, 45, 12, 0, time.UTC)
	local := at.Local().Format("2006-01-02 15:04:05")
	done := func(s workflows.StepStatus) workflows.StepStatus {
		s.Started, s.Ended = at, at.Add(1500*time.Millisecond)
		return s
	}
	tests := []struct {
		name           string
		step           workflows.StepStatus
		status, output string
		// progress is kiln run --wait's line.
		progress string
	}{
		{
			name:   "ran",
			step:   done(workflows.StepStatus{Name: "train", Uses: pipelines.StepTrain, Status: workflows.StatusCompleted, Summary: "logistic, valid AUC 0.81", CacheKey: "k"}),
			status: "completed", output: "logistic, valid AUC 0.81", progress: "  ✓ train        1.5s    logistic, valid AUC 0.81",
		},
		{
			name:   "cached",
			step:   done(workflows.StepStatus{Name: "prep", Uses: pipelines.StepPreprocess, Status: workflows.StatusCompleted, Summary: "391 train rows", Cached: true}),
			status: "cached", output: "391 train rows", progress: "  ✓ prep         cached  391 train rows",
		},
		{
			name:   "reused",
			step:   done(workflows.StepStatus{Name: "ingest", Uses: pipelines.StepIngest, Status: workflows.StatusCompleted, Summary: "569 rows", Reused: true}),
			status: "reused", output: "569 rows", progress: "  ✓ ingest       reused  569 rows",
		},
		{
			name:   "skipped by a condition",
			step:   workflows.StepStatus{Name: "deploy", Uses: pipelines.StepDeploy, Status: workflows.StatusSkipped, SkipReason: "condition is false: params.deploy"},
			status: "skipped", output: "condition is false: params.deploy", progress: "  - deploy       skipped: condition is false: params.deploy",
		},
		{
			name:   "waiting for approval",
			step:   workflows.StepStatus{Name: "gate", Uses: pipelines.StepApproval, Status: workflows.StatusWaiting, Started: at},
			status: "waiting", output: "waiting for a decision: kiln approve pipeline/churn/r2 gate --reason ... [--reject]",
			progress: "  ? gate         waiting for a decision: kiln approve pipeline/churn/r2 gate --reason ... [--reject]",
		},
		{
			name: "approved",
			step: done(workflows.StepStatus{Name: "gate", Uses: pipelines.StepApproval, Status: workflows.StatusCompleted, Summary: "approved by ana: fine",
				Artifacts: activities.Artifacts{Approval: &activities.ApprovalRef{Decision: "approved", Approved: true, By: "ana", Reason: "metrics reviewed", At: at}}}),
			status: "completed", output: "approved by ana at " + local + ": metrics reviewed",
			progress: "  ✓ gate         1.5s    approved by ana at " + local + ": metrics reviewed",
		},
		{
			name:   "rejected",
			step:   done(workflows.StepStatus{Name: "gate", Uses: pipelines.StepApproval, Status: workflows.StatusFailed, Error: "rejected by bob: holdout too small"}),
			status: "failed", output: "rejected by bob: holdout too small (at " + at.Add(1500*time.Millisecond).Local().Format("2006-01-02 15:04:05") + ")",
			progress: "  ✗ gate         failed: rejected by bob: holdout too small (at " + at.Add(1500*time.Millisecond).Local().Format("2006-01-02 15:04:05") + ")",
		},
		{
			name: "foreach",
			step: done(workflows.StepStatus{Name: "score", Uses: pipelines.StepScore, Status: workflows.StatusCompleted, Summary: "12 items",
				Artifacts: activities.Artifacts{Foreach: &activities.ForeachRef{Items: 12, Succeeded: 12, Cached: 4}}}),
			status: "completed", output: "12 items: 12 succeeded, 0 failed, 4 cached", progress: "  ✓ score        1.5s    12 items: 12 succeeded, 0 failed, 4 cached",
		},
		{
			name:   "failed",
			step:   done(workflows.StepStatus{Name: "evaluate", Uses: pipelines.StepEvaluate, Status: workflows.StatusFailed, Error: `gate "auc >= 0.9" failed`}),
			status: "failed", output: `gate "auc >= 0.9" failed`, progress: `  ✗ evaluate     failed: gate "auc >= 0.9" failed`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, output := cli.StepCells(wid, tt.step)
			if status != tt.status || output != tt.output {
				t.Errorf("cells %q, %q; want %q, %q", status, output, tt.status, tt.output)
			}
			if got := cli.ProgressLine(wid, tt.step); got != tt.progress {
				t.Errorf("progress line\n%q\nwant\n%q", got, tt.progress)
			}
		})
	}

	// kiln runs show puts them in its table.
	var steps []workflows.StepStatus
	for _, tt := range tests {
		steps = append(steps, tt.step)
	}
	var out bytes.Buffer
	cli.PrintRun(&out, workflows.RunStatus{WorkflowID: wid, Status: workflows.StatusFailed, Started: at, Ended: at.Add(time.Minute), Steps: steps})
	for _, tt := range tests {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tt.step.Name) + ` +` + string(tt.step.Uses) + ` +` + tt.status + ` +\S+ +` + regexp.QuoteMeta(tt.output) + ` *$`)
		if !line.MatchString(out.String()) {
			t.Errorf("kiln runs show has no line for %s with status %q and output %q:\n%s", tt.name, tt.status, tt.output, out.String())
		}
	}
}
