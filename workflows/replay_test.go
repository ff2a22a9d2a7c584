package workflows

import (
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (go test ./internal/e2e -run TestBreastCancerEndToEnd -record) against the
// current workflow code. A change that would break running workflows — a
// different order of commands for the same history — fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(PipelineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPipeline})
			r.RegisterWorkflowWithOptions(CanaryWorkflow, workflow.RegisterOptions{Name: activities.WorkflowCanary})
			r.RegisterWorkflowWithOptions(MonitorWorkflow, workflow.RegisterOptions{Name: activities.WorkflowMonitor})
			r.RegisterWorkflowWithOptions(RetrainWorkflow, workflow.RegisterOptions{Name: activities.WorkflowRetrain})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Errorf("replaying %s: %v", f, err)
			}
		})
	}
}
