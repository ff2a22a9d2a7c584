package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

// docker returns a Docker runtime with the trainer image present, or nil
// when no engine is reachable. A reachable engine without the image fails the
// test: `make test` builds it first.
func docker(t *testing.T) *containers.Docker {
	t.Helper()
	ctx := context.Background()
	d, err := containers.NewDocker(ctx, containers.DockerOptions{})
	if err != nil {
		t.Logf("no Docker engine (%v): training runs as a local process", err)
		return nil
	}
	t.Cleanup(func() { d.Close() })
	if _, err := containers.ImageID(ctx, d.Client(), trainerImage()); err != nil {
		t.Fatalf("%v (make test builds it)", err)
	}
	return d
}

// trainerImage is the trainer image the tests' workers run for
// kiln/trainer:dev: the content-addressed tag make images built
// (KILN_TRAINER_IMAGE, set by make test), so that another checkout
// rebuilding kiln/trainer:dev on the same Docker engine cannot change it;
// kiln/trainer:dev itself when the variable is unset.
func trainerImage() string {
	if img := os.Getenv("KILN_TRAINER_IMAGE"); img != "" {
		return img
	}
	return worker.TrainerImage
}

// buildTrainer builds the reference trainer binary for the process runtime.
func buildTrainer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kiln-trainer")
	cmd := exec.Command("go", "build", "-o", bin, "./containers/trainer")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the trainer: %v\n%s", err, out)
	}
	return bin
}

// startStack starts Temporal, a model server and (unless noWorker) a worker in this process.
func startStack(t *testing.T, noWorker bool) *devstack.Stack {
	t.Helper()
	d := docker(t)
	wcfg := worker.Config{TrainerImage: trainerImage()}
	if d == nil && !noWorker {
		wcfg.TrainerBinary = buildTrainer(t)
		wcfg.NoDocker = true
	}
	st, err := devstack.Start(context.Background(), devstack.Options{
		Home: t.TempDir(), Ephemeral: true, NoWorker: noWorker,
		ServeFlushInterval: 200 * time.Millisecond, Worker: wcfg,
	})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Stop)
	return st
}

// kiln runs the kiln CLI in this process against the stack.
func kiln(t *testing.T, st *devstack.Stack, home string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--address", st.Temporal.Address(), "--home", home}, args...)
	err := cli.Run(context.Background(), full, &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("kiln %s stderr:\n%s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), err
}

// runPipeline runs a spec through `kiln run --wait --json` and returns its status.
func runPipeline(t *testing.T, st *devstack.Stack, home, spec string, params ...string) workflows.RunStatus {
	t.Helper()
	args := []string{"run", spec, "--wait", "--json"}
	for _, p := range params {
		args = append(args, "-p", p)
	}
	out, err := kiln(t, st, home, args...)
	var rs workflows.RunStatus
	if jerr := json.Unmarshal([]byte(out), &rs); jerr != nil {
		t.Fatalf("kiln run: %v (output %q)", jerr, out)
	}
	if err != nil {
		t.Fatalf("kiln run %s: %v\n%s", spec, err, out)
	}
	return rs
}

// listWorkflows runs a visibility query.
func listWorkflows(t *testing.T, c client.Client, query string) []string {
	t.Helper()
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: query})
	if err != nil {
		t.Fatalf("list %q: %v", query, err)
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId()+"/"+e.GetExecution().GetRunId())
	}
	return ids
}

// eventually polls cond every 200ms until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// containersLabelled counts containers (running or not) with a label.
func containersLabelled(t *testing.T, d *containers.Docker, key, value string) int {
	t.Helper()
	list, err := d.Client().ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", key+"="+value))})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	return len(list)
}

// csvRows reads a CSV file into request rows.
func csvRows(t *testing.T, path string) []map[string]any {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "rows.parquet")
	if _, err := dataset.CSVToParquet(context.Background(), path, tmp, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	rows, err := serving.RowsFromRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// shifted returns rows with every numeric feature multiplied by factor.
func shifted(rows []map[string]any, factor float64) []map[string]any {
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		m := make(map[string]any, len(r))
		for k, v := range r {
			if f, ok := v.(float64); ok && !math.IsNaN(f) {
				v = f * factor
			}
			m[k] = v
		}
		out[i] = m
	}
	return out
}

// traffic replays rows against a model until stopped.
type traffic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	stats  serving.ReplayStats
}

func startTraffic(serverURL, model string, rows []map[string]any, rate float64) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		st, _ := serving.Replay(ctx, &serving.Client{BaseURL: serverURL}, model, rows, serving.ReplayOptions{Rate: rate, Duration: time.Hour, Workers: 4})
		tr.mu.Lock()
		tr.stats = st
		tr.mu.Unlock()
	}()
	return tr
}

func (tr *traffic) stop() serving.ReplayStats {
	tr.cancel()
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.stats
}
