package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/workflows"
)

// loadSpec is the small pipeline of the load test: ingest a 300-row CSV,
// preprocess it, and a no-op step.
const loadSpec = `apiVersion: kiln/v1
kind: Pipeline
name: load
steps:
  - {name: ingest, uses: ingest, with: {source: "SOURCE"}}
  - {name: prep, uses: preprocess, needs: [ingest], with: {target: churned, exclude: [customer_id, plan, contract, region]}}
  - {name: done, uses: noop, needs: [prep]}
`

// loadResult is one load run's figures.
type loadResult struct {
	runs          int
	wall          time.Duration
	p50, p99, max time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d runs in %.1f s: %.1f runs/s, completion p50 %.2f s, p99 %.2f s, max %.2f s",
		r.runs, r.wall.Seconds(), float64(r.runs)/r.wall.Seconds(), r.p50.Seconds(), r.p99.Seconds(), r.max.Seconds())
}

// runLoad starts n runs of the pipeline at once on c's queue kiln and
// waits for all; each run's completion time counts from its start.
func runLoad(t *testing.T, c client.Client, n int, spec, specDir string) loadResult {
	t.Helper()
	ctx := context.Background()
	in := workflows.PipelineInput{Spec: activities.ValidateInput{SpecText: spec, SpecFile: "load.yaml", SpecDir: specDir}, NoCache: false}
	times := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("pipeline/load/%s-%d", prefix, i), TaskQueue: "kiln"},
				activities.WorkflowPipeline, in)
			if err == nil {
				var rs workflows.RunStatus
				if err = run.Get(ctx, &rs); err == nil && rs.Status != workflows.StatusCompleted {
					err = fmt.Errorf("%s: %s", rs.Status, rs.Error)
				}
			}
			times[i], errs[i] = time.Since(t0), err
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	slices.Sort(times)
	q := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
	return loadResult{runs: n, wall: wall, p50: q(0.5), p99: q(0.99), max: times[len(times)-1]}
}

// TestClusterLoad starts KILN_CLUSTER_LOAD (e.g. 200) small pipeline runs
// at once against the cluster and then against the embedded dev server of
// `kiln dev` (SQLite, one in-process worker) in this process, and reports
// runs/s and completion time percentiles of both (make bench-cluster).
func TestClusterLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KILN_CLUSTER_LOAD"))
	if n <= 0 {
		t.Skip("KILN_CLUSTER_LOAD is not set: make bench-cluster runs this")
	}
	c := openCluster(t)
	csv := churnCSV(t, 300, 4)
	src := c.put(t, "inputs/load.csv", csv)
	// One run first on each, so both measure warm caches (the step cache
	// holds the ingest and preprocess results after it).
	clusterSpec := strings.Replace(loadSpec, "SOURCE", src, 1)
	runLoad(t, c.tc, 1, clusterSpec, t.TempDir())
	cl := runLoad(t, c.tc, n, clusterSpec, t.TempDir())
	t.Logf("cluster: %s", cl)

	dir := t.TempDir()
	local := filepath.Join(dir, "load.csv")
	if err := os.WriteFile(local, csv, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := devstack.Start(context.Background(), devstack.Options{Home: filepath.Join(dir, "home"), NoServer: true, NoReports: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	devSpec := strings.Replace(loadSpec, "SOURCE", local, 1)
	runLoad(t, st.Client, 1, devSpec, dir)
	dev := runLoad(t, st.Client, n, devSpec, dir)
	t.Logf("dev server: %s", dev)
	if out := os.Getenv("KILN_BENCH_OUT"); out != "" {
		line := fmt.Sprintf("cluster\t%s\ndev\t%s\n", cl, dev)
		if err := os.WriteFile(out, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
