package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/worker"
)

// TestWorkerVersioning upgrades workers the way deploy/README.md says: runs
// land on the Worker Deployment's current version (b1), a new build (b2)
// starts beside it, becomes current, and the old one stops; the next run
// lands on b2.
func TestWorkerVersioning(t *testing.T) {
	st := startStack(t, true)
	ctx := context.Background()
	acts, closeActs, err := worker.OpenActivities(ctx, st.Client, worker.Config{Home: t.TempDir(), TrainerImage: trainerImage()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeActs()
	const deployment = "kiln-e2e"
	start := func(build string) func() {
		w := worker.New(st.Client, acts, worker.Options{Deployment: deployment, BuildID: build})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w.Stop
	}
	makeCurrent := func(build string) {
		h := st.Client.WorkerDeploymentClient().GetHandle(deployment)
		var last error
		eventually(t, 30*time.Second, "version "+build+" to become current", func() bool {
			_, last = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: build})
			return last == nil
		})
	}
	spec := filepath.Join(t.TempDir(), "noop.yaml")
	if err := os.WriteFile(spec, []byte("apiVersion: kiln/v1\nkind: Pipeline\nname: noop\nsteps:\n  - {name: a, uses: noop}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	runOn := func(build string) {
		t.Helper()
		out, err := kiln(t, st, home, "run", spec, "--wait", "--json")
		var rs struct {
			WorkflowID string `json:"workflow_id"`
			Status     string `json:"status"`
		}
		if jerr := json.Unmarshal([]byte(out), &rs); jerr != nil || err != nil || rs.Status != "completed" {
			t.Fatalf("run: %q, %v, %v", out, err, jerr)
		}
		d, err := st.Client.DescribeWorkflowExecution(ctx, rs.WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := d.GetWorkflowExecutionInfo().GetVersioningInfo().GetDeploymentVersion().GetBuildId(); got != build {
			t.Errorf("run %s ran on build %q, want %q", rs.WorkflowID, got, build)
		}
	}

	stop1 := start("b1")
	makeCurrent("b1")
	runOn("b1")

	stop2 := start("b2")
	defer stop2()
	makeCurrent("b2")
	stop1()
	runOn("b2")
}
