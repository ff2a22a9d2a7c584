package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

// TestStepQueues: a step that names a task queue (queue: side) runs its
// activity on the worker polling that queue, and not before one does; the
// other steps and the run stay on the run's queue.
func TestStepQueues(t *testing.T) {
	st := startStack(t, false)
	home := t.TempDir()
	spec := filepath.Join(t.TempDir(), "queues.yaml")
	if err := os.WriteFile(spec, []byte(`apiVersion: kiln/v1
kind: Pipeline
name: queues
steps:
  - {name: first, uses: noop}
  - {name: routed, uses: noop, queue: side, needs: [first]}
  - {name: last, uses: noop, needs: [routed]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kiln(t, st, home, "run", spec, "--json")
	if err != nil {
		t.Fatalf("kiln run: %v\n%s", err, out)
	}
	ctx := context.Background()
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || started.WorkflowID == "" {
		t.Fatalf("kiln run --json: %q: %v", out, err)
	}
	wid := started.WorkflowID
	// Nothing polls "side" yet: the routed step is scheduled and waits.
	eventually(t, 30*time.Second, "the routed step to be scheduled on queue side", func() bool {
		return len(scheduledQueues(t, st, wid)["routed"]) > 0
	})
	if q := scheduledQueues(t, st, wid); q["routed"] != "side" || q["first"] != "kiln" {
		t.Fatalf("activities scheduled on %v; want routed on side, first on kiln", q)
	}
	time.Sleep(2 * time.Second)
	if desc, err := st.Client.DescribeWorkflowExecution(ctx, wid, ""); err != nil || desc.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the run finished with no worker on queue side: %v", err)
	}
	side := worker.New(st.Client, st.Activities, worker.Options{TaskQueue: "side", ActivitiesOnly: true})
	if err := side.Start(); err != nil {
		t.Fatal(err)
	}
	defer side.Stop()
	if err := st.Client.GetWorkflow(ctx, wid, "").Get(ctx, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	if q := scheduledQueues(t, st, wid); q["last"] != "kiln" || q["routed"] != "side" {
		t.Errorf("activities scheduled on %v", q)
	}
}

// scheduledQueues maps the activity IDs of a run's history to the task
// queue each was scheduled on.
func scheduledQueues(t *testing.T, st *devstack.Stack, wid string) map[string]string {
	t.Helper()
	out := map[string]string{}
	it := st.Client.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			out[a.GetActivityId()] = a.GetTaskQueue().GetName()
		}
	}
	return out
}

// TestRunsShowWithoutWorker: a failed run's status is read from its
// history (the final status in its memo), so kiln runs show answers with
// no worker running.
func TestRunsShowWithoutWorker(t *testing.T) {
	st := startStack(t, false)
	home := t.TempDir()
	spec := filepath.Join(t.TempDir(), "fails.yaml")
	if err := os.WriteFile(spec, []byte(`apiVersion: kiln/v1
kind: Pipeline
name: fails
steps:
  - {name: ingest, uses: ingest, with: {source: missing.csv}}
  - {name: after, uses: noop, needs: [ingest]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := kiln(t, st, home, "run", spec, "--wait", "--json")
	var rs struct {
		WorkflowID string `json:"workflow_id"`
		Status     string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil || rs.Status != "failed" {
		t.Fatalf("kiln run: %q, %v; want a failed run", out, err)
	}
	recordHistory(t, st.Client, rs.WorkflowID, "", "pipeline_failed_memo")
	st.Worker.Stop()
	out, err := kiln(t, st, home, "runs", "show", rs.WorkflowID, "--json")
	if err != nil {
		t.Fatalf("kiln runs show without a worker: %v\n%s", err, out)
	}
	var shown workflows.RunStatus
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Status != workflows.StatusFailed || shown.Step("ingest").Status != workflows.StatusFailed || !strings.Contains(shown.Step("ingest").Error, "missing.csv") {
		t.Errorf("runs show: %+v", shown)
	}
}
