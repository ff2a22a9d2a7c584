package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/workflows"
)

// TestWorkerKilledDuringTraining SIGKILLs the only worker while the training
// container runs, starts another, and expects the run to finish with exactly
// one registered version and no container left behind.
func TestWorkerKilledDuringTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := docker(t)
	if d == nil {
		t.Skip("needs a Docker engine: the test kills a worker while its training container runs")
	}
	buildSlowTrainer(t, d)
	st := startStack(t, true)

	spec := filepath.Join(repoRoot, "internal", "e2e", "testdata", "durable.yaml")
	w1 := startWorkerProcess(t, st.Temporal.Address(), st.Home)
	out, err := kiln(t, st, st.Home, "run", spec, "--json")
	if err != nil {
		t.Fatalf("kiln run: %v", err)
	}
	wid := jsonField(t, out, "workflow_id")

	eventually(t, 2*time.Minute, "the training container to run", func() bool {
		return containersLabelled(t, d, "kiln.workflow", wid) > 0
	})
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = w1.Process.Wait()
	t.Log("killed the worker while its training container ran")
	startWorkerProcess(t, st.Temporal.Address(), st.Home)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var rs workflows.RunStatus
	if err := st.Client.GetWorkflow(ctx, wid, "").Get(ctx, &rs); err != nil {
		t.Fatalf("run %s after the worker was killed: %v", wid, err)
	}
	if rs.Status != workflows.StatusCompleted {
		t.Fatalf("run %s: %s", wid, rs.Status)
	}

	// The kill really interrupted training: train needed a second attempt.
	if n := trainAttempts(t, st.Client, wid); n < 2 {
		t.Errorf("train ran %d attempt(s); the kill should have forced a retry", n)
	}
	reg, err := registry.Open(ctx, filepath.Join(st.Home, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	versions, err := reg.Versions(ctx, "durable")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Errorf("%d registered versions, want exactly 1", len(versions))
	}
	eventually(t, 30*time.Second, "no container of the run left", func() bool {
		return containersLabelled(t, d, "kiln.workflow", wid) == 0
	})
}

// buildSlowTrainer builds kiln/trainer:slow-e2e on top of kiln/trainer:dev.
func buildSlowTrainer(t *testing.T, d *containers.Docker) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "slowtrainer"), "./internal/e2e/testdata/slowtrainer")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building slowtrainer: %v\n%s", err, out)
	}
	df, err := os.ReadFile(filepath.Join(repoRoot, "internal", "e2e", "testdata", "slowtrainer", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := containers.BuildImage(context.Background(), d.Client(), containers.BuildOptions{ContextDir: dir, Tag: "kiln/trainer:slow-e2e"}); err != nil {
		t.Fatalf("building kiln/trainer:slow-e2e: %v", err)
	}
}

// trainAttempts returns the attempt number of the train activity's last
// start. Temporal records only the final attempt's start event, with its
// attempt number.
func trainAttempts(t *testing.T, c client.Client, wid string) int32 {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	var attempt int32
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityId()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == "train" {
			attempt = max(attempt, a.GetAttempt())
		}
	}
	return attempt
}

// jsonField reads one string field of a JSON object.
func jsonField(t *testing.T, out, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	s, _ := m[field].(string)
	if s == "" {
		t.Fatalf("no %s in %s", field, out)
	}
	return s
}

// TestCancelStopsTrainingContainer cancels a run while its training container
// runs: the container must be stopped and removed, and the run end canceled.
func TestCancelStopsTrainingContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := docker(t)
	if d == nil {
		t.Skip("needs a Docker engine")
	}
	buildSlowTrainer(t, d)
	st := startStack(t, false)
	out, err := kiln(t, st, st.Home, "run", filepath.Join(repoRoot, "internal", "e2e", "testdata", "durable.yaml"), "--json")
	if err != nil {
		t.Fatalf("kiln run: %v", err)
	}
	wid := jsonField(t, out, "workflow_id")
	eventually(t, 2*time.Minute, "the training container to run", func() bool {
		return containersLabelled(t, d, "kiln.workflow", wid) > 0
	})
	if _, err := kiln(t, st, st.Home, "runs", "cancel", wid); err != nil {
		t.Fatalf("kiln runs cancel: %v", err)
	}
	// The slow trainer runs for 8 s; the container must go well before that.
	start := time.Now()
	eventually(t, 6*time.Second, "the training container to be removed", func() bool {
		return containersLabelled(t, d, "kiln.workflow", wid) == 0
	})
	t.Logf("container removed %s after the cancel", time.Since(start).Round(10*time.Millisecond))
	var rs workflows.RunStatus
	err = st.Client.GetWorkflow(context.Background(), wid, "").Get(context.Background(), &rs)
	if !temporal.IsCanceledError(err) {
		t.Fatalf("run ended with %v, want canceled", err)
	}
}
