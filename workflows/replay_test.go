package workflows

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (go test ./internal/e2e -args -record) against the
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
			r.RegisterWorkflowWithOptions(ForeachWorkflow, workflow.RegisterOptions{Name: activities.WorkflowForeach})
			r.RegisterWorkflowWithOptions(ScoreWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScore})
			r.RegisterWorkflowWithOptions(ScoreShardsWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScoreShards})
			r.RegisterWorkflowWithOptions(PromoteWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPromote})
			r.RegisterWorkflowWithOptions(ScheduledRunWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScheduledRun})
			r.RegisterWorkflowWithOptions(DeadlineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowDeadline})
			h, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			history, err := client.HistoryFromJSON(h, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Replay under the recorded workflow ID: child IDs derive from it.
			var opts worker.ReplayWorkflowHistoryOptions
			if id, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".id"); err == nil {
				opts.OriginalExecution.ID = strings.TrimSpace(string(id))
			}
			if err := r.ReplayWorkflowHistoryWithOptions(nil, history, opts); err != nil {
				t.Errorf("replaying %s: %v", f, err)
			}
		})
	}
}
