// Package local_test runs Kiln's pipelines across the local cluster of
// deploy/local/up.sh (a multi-process Temporal server on PostgreSQL, an S3
// server, two workers with separate homes on separate queues, two model
// servers) and breaks it while they run: make test-cluster.
//
// The tests skip unless KILN_CLUSTER_ENV names the cluster.env file up.sh
// wrote.
package local_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/workflows"
)

// cluster is a running deploy/local cluster.
type cluster struct {
	dir   string
	env   map[string]string
	kiln  string
	tc    client.Client
	reg   *registry.Registry
	store *artifact.Store
}

// openCluster reads KILN_CLUSTER_ENV and connects to the cluster.
func openCluster(t *testing.T) *cluster {
	t.Helper()
	path := os.Getenv("KILN_CLUSTER_ENV")
	if path == "" {
		t.Skip("no cluster: make test-cluster starts one (KILN_CLUSTER_ENV names its cluster.env)")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &cluster{dir: filepath.Dir(path), env: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		c.env[k] = strings.Trim(v, "'")
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, c.env[k])
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	c.kiln = os.Getenv("KILN_BIN")
	if c.kiln == "" {
		c.kiln = filepath.Join("..", "..", "bin", "kiln")
	}
	if c.kiln, err = filepath.Abs(c.kiln); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if c.tc, err = client.Dial(client.Options{HostPort: c.env["TEMPORAL_ADDRESS"], Namespace: c.env["TEMPORAL_NAMESPACE"]}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.tc.Close)
	if c.reg, err = registry.Open(ctx, c.env["KILN_REGISTRY"]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.reg.Close() })
	if c.store, err = artifact.Open(ctx, artifact.Options{Dir: t.TempDir(), Remote: c.env["KILN_ARTIFACTS"]}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	return c
}

// put uploads data as the object key of the cluster's bucket and returns
// its s3:// URL.
func (c *cluster) put(t *testing.T, key string, data []byte) string {
	t.Helper()
	tmp := filepath.Join(c.store.Root(), "tmp", filepath.Base(key))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Object URLs outside the artifact prefix: the store's bucket and
	// options with another key.
	u := strings.Replace(c.env["KILN_ARTIFACTS"], "s3://kiln/artifacts", "s3://kiln/"+key, 1)
	if err := artifact.PutFile(context.Background(), u, tmp); err != nil {
		t.Fatal(err)
	}
	return u
}

// kilnCmd runs the kiln binary against the cluster.
func (c *cluster) kilnCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(c.kiln, append([]string{"--address", c.env["TEMPORAL_ADDRESS"], "--home", t.TempDir(), "--registry", c.env["KILN_REGISTRY"], "--artifacts", c.env["KILN_ARTIFACTS"]}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		t.Logf("kiln %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), err
}

// start starts a pipeline run and returns its workflow ID.
func (c *cluster) start(t *testing.T, spec string, params ...string) string {
	t.Helper()
	args := []string{"run", spec, "--json"}
	for _, p := range params {
		args = append(args, "-p", p)
	}
	out, err := c.kilnCmd(t, args...)
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err != nil || json.Unmarshal([]byte(out), &started) != nil || started.WorkflowID == "" {
		t.Fatalf("kiln run %s: %v\n%s", spec, err, out)
	}
	return started.WorkflowID
}

// wait waits for a run and returns its status.
func (c *cluster) wait(t *testing.T, wid string, timeout time.Duration) workflows.RunStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rs workflows.RunStatus
	if err := c.tc.GetWorkflow(ctx, wid, "").Get(ctx, &rs); err != nil {
		t.Fatalf("run %s: %v", wid, err)
	}
	if rs.Status != workflows.StatusCompleted {
		t.Fatalf("run %s: %s: %s", wid, rs.Status, rs.Error)
	}
	return rs
}

// pid is the process ID of a cluster process (pids/<name>.pid).
func (c *cluster) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "pids", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatalf("pids/%s.pid: %v", name, err)
	}
	return pid
}

// kill9 kills a cluster process with SIGKILL, like a crashed machine.
func (c *cluster) kill9(t *testing.T, name string) {
	t.Helper()
	pid := c.pid(t, name)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (%d): %v", name, pid, err)
	}
	t.Logf("kill -9 %s (pid %d)", name, pid)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		// A zombie until its parent reaps it: gone for our purpose.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(b, []byte(") Z ")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart starts a cluster process again with its cmd/<name>.sh.
func (c *cluster) restart(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(c.dir, "cmd", name+".sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("restarting %s: %v\n%s", name, err, out)
	}
	t.Logf("restarted %s", name)
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// queues maps the activity IDs of a workflow's history to the task queue
// each was scheduled on.
func (c *cluster) queues(t *testing.T, wid string) map[string]string {
	t.Helper()
	out := map[string]string{}
	it := c.tc.GetWorkflowHistory(context.Background(), wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			out[a.ActivityId] = a.TaskQueue.GetName()
		}
	}
	return out
}

// onlyVersion checks that the run registered exactly one version of model
// and returns it.
func (c *cluster) onlyVersion(t *testing.T, model, wid string) registry.Version {
	t.Helper()
	vs, err := c.reg.Versions(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	var mine []registry.Version
	for _, v := range vs {
		if v.RunID == wid {
			mine = append(mine, v)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("run %s registered %d versions of %s, want 1", wid, len(mine), model)
	}
	if !strings.HasPrefix(mine[0].BundleURI, "s3://") {
		t.Errorf("%s:%d's bundle %s is not in the object store", model, mine[0].Version, mine[0].BundleURI)
	}
	return mine[0]
}

// scoredOnce reads a run's scored output from the object store and checks
// it holds want rows with distinct IDs.
func (c *cluster) scoredOnce(t *testing.T, rs workflows.RunStatus, idColumn string, want int64) {
	t.Helper()
	ctx := context.Background()
	sc := rs.Artifacts().Scored
	if sc == nil || !strings.HasPrefix(sc.URI, "s3://") {
		t.Fatalf("scored output %+v is not in the object store", sc)
	}
	dir, err := c.store.Local(ctx, sc.URI)
	if err != nil {
		t.Fatal(err)
	}
	man, err := scorer.ReadSuccess(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]struct{}, want)
	var rows int64
	for _, p := range man.Parts {
		r, err := dataset.OpenParquet(filepath.Join(dir, p.File))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.ReadAll(ctx, []string{idColumn})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		col := rec.Column(0).(*array.String)
		for i := range col.Len() {
			if _, dup := ids[col.Value(i)]; dup {
				t.Fatalf("%s %s scored twice", idColumn, col.Value(i))
			}
			ids[col.Value(i)] = struct{}{}
		}
		rows += rec.NumRows()
		rec.Release()
	}
	if rows != want || man.Rows != want {
		t.Errorf("%d rows scored (manifest %d) in %d parts, want %d exactly once", rows, man.Rows, len(man.Parts), want)
	}
	t.Logf("%d rows scored exactly once in %d parts", rows, len(man.Parts))
}

// leftoverContainers counts the Docker containers of a run's training.
func leftoverContainers(t *testing.T, wid string) int {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=kiln.workflow="+wid).Output()
	if err != nil {
		t.Logf("docker ps: %v", err)
		return 0
	}
	return len(strings.Fields(string(out)))
}

func churnCSV(t *testing.T, rows, seed int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := demodata.WriteChurnCSV(&b, demodata.ChurnOptions{Rows: rows, Seed: uint64(seed)}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const churnClusterSpec = `apiVersion: kiln/v1
kind: Pipeline
name: churn-cluster
params:
  seed: 42
  l2: 0.001
steps:
  - name: ingest
    uses: ingest
    with: {source: "SOURCE", expect: {min_rows: 1000, columns: [churned]}}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: churned
      exclude: [customer_id]
      split: {test: 0.2, valid: 0.1, seed: "${params.seed}"}
      transforms:
        - impute: {columns: [tenure, total_charges], strategy: median}
        - impute: {columns: [region], strategy: most_frequent}
        - standardize: {columns: ["*"]}
        - onehot: {columns: [plan, contract, region]}
  - name: train
    uses: train
    queue: train
    needs: [prep]
    container: {image: kiln/trainer:dev, cpus: 1, memory: 512MiB, timeout: 10m}
    with: {algorithm: logistic, params: {l2: "${params.l2}"}}
  - name: evaluate
    uses: evaluate
    needs: [train]
    with: {gate: "auc >= 0.7"}
  - name: register
    uses: register
    needs: [evaluate]
    with: {model: churn-cluster, alias: staging}
  - name: score
    uses: score
    queue: score
    needs: [register]
    with: {passthrough: [customer_id]}
  - name: deploy
    uses: deploy
    needs: [score]
    with:
      steps: [20, 50, 100]
      interval: 4s
      min_requests: 20
      analysis:
        error_rate: {min_effect: 0.1}
        latency: {min_effect: 0.5, margin: 0.25}
  - name: monitor
    uses: monitor
    needs: [deploy]
    with: {interval: 2s, window: 30s, min_rows: 20, retrain: false}
`

// TestClusterChurn runs the churn pipeline across the cluster twice. Run 1
// loses the Temporal history service to kill -9 mid-run; run 2's canary
// loses a model server replica, which restarts and restores the split
// from the registry. Each run registers one version, scores every row
// once from the object store, and the production alias moves once per
// run.
func TestClusterChurn(t *testing.T) {
	c := openCluster(t)
	const rows = 5000
	src := c.put(t, "inputs/churn.csv", churnCSV(t, rows, 1))
	spec := filepath.Join(t.TempDir(), "churn.yaml")
	if err := os.WriteFile(spec, []byte(strings.Replace(churnClusterSpec, "SOURCE", src, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	const model = "churn-cluster"
	before, _ := c.reg.AliasHistory(context.Background(), model, "production")
	t.Cleanup(func() { // the runs' monitor keeps windowing until stopped
		_ = c.tc.TerminateWorkflow(context.Background(), activities.MonitorID(model), "", "test over")
	})

	// Run 1, with the history service killed and restarted mid-run.
	wid1 := c.start(t, spec)
	time.Sleep(500 * time.Millisecond)
	c.kill9(t, "history")
	time.Sleep(2 * time.Second)
	c.restart(t, "history")
	rs1 := c.wait(t, wid1, 5*time.Minute)
	v1 := c.onlyVersion(t, model, wid1)
	c.scoredOnce(t, rs1, "customer_id", rows)
	q := c.queues(t, wid1)
	if q["train"] != "train" || q["prep"] != "kiln" {
		t.Errorf("run 1's activities ran on %v; want train on train, prep on kiln", q)
	}
	hostA, _ := os.ReadFile(filepath.Join(c.dir, "worker-a", "worker-id"))
	for id, queue := range c.queues(t, wid1+"/score/shards-0") {
		if queue != "kiln-host-"+strings.TrimSpace(string(hostA)) {
			t.Errorf("%s ran on %s, want worker a's own queue", id, queue)
		}
	}

	// Run 2: a canary of v2 against v1 under traffic on both replicas;
	// replica b is killed and restarted during it.
	urls := strings.Split(c.env["KILN_SERVE_URLS"], ",")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	body, _ := json.Marshal(map[string]any{"instances": []any{map[string]any{"customer_id": "C1", "tenure": 12, "monthly_charges": 70.5,
		"total_charges": 846.0, "plan": "basic", "contract": "one-year", "region": "east", "support_calls": 2, "paperless": false}}})
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				resp, err := http.Post(u+"/v1/models/"+model+":predict", "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				served.Add(1)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	wid2 := c.start(t, spec, "seed=7", "l2=0.01")
	status := func(u string) serving.ModelStatus {
		var st serving.ModelStatus
		resp, err := http.Get(u + "/v1/models/" + model)
		if err != nil {
			return st
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st
	}
	eventually(t, 3*time.Minute, "the v2 canary on replica b", func() bool {
		s := status(urls[1])
		return s.Deployment.Canary != nil && s.Deployment.Canary.Version == v1.Version+1
	})
	c.kill9(t, "serve-b")
	c.restart(t, "serve-b")
	if s := status(urls[1]); s.Deployment.Canary == nil || s.Deployment.Stable.Version != v1.Version {
		t.Errorf("restarted replica b serves %+v, want stable v%d with the canary", s.Deployment, v1.Version)
	}
	rs2 := c.wait(t, wid2, 5*time.Minute)
	v2 := c.onlyVersion(t, model, wid2)
	c.scoredOnce(t, rs2, "customer_id", rows)
	dep := rs2.Artifacts().Deployment
	if dep == nil || !dep.Promoted || dep.Version != v2.Version {
		t.Fatalf("run 2 deployment %+v", dep)
	}
	for _, u := range urls {
		if s := status(u); s.Deployment.Stable.Version != v2.Version || s.Deployment.Canary != nil {
			t.Errorf("replica %s serves %+v after the promotion", u, s.Deployment)
		}
	}
	after, err := c.reg.AliasHistory(context.Background(), model, "production")
	if err != nil {
		t.Fatal(err)
	}
	moves := after[len(before):]
	var tos []int64
	for _, m := range moves {
		tos = append(tos, m.To)
	}
	if len(moves) != 2 || tos[0] != v1.Version && tos[1] != v1.Version || tos[0] != v2.Version && tos[1] != v2.Version {
		t.Errorf("production moved to %v during the two runs, want once to v%d and once to v%d", tos, v1.Version, v2.Version)
	}
	t.Logf("%d requests answered during the canary, %d failed (replica b down)", served.Load(), failed.Load())
	// The monitor, on worker a, measures the traffic the replicas served:
	// it read their logs from the object store.
	trafficFrom := time.Now()
	eventually(t, time.Minute, "a monitor window over the served traffic", func() bool {
		ws, err := c.reg.MonitorWindows(context.Background(), model, trafficFrom.Add(-time.Minute), 20)
		if err != nil {
			return false
		}
		for _, w := range ws {
			if w.Rows > 0 {
				t.Logf("monitor window %s-%s: %d rows of v%d", w.Start.Format(time.TimeOnly), w.End.Format(time.TimeOnly), w.Rows, w.Version)
				return true
			}
		}
		return false
	})
	// Both replicas' request logs reach the object store, where the
	// workers' monitors read them.
	eventually(t, time.Minute, "request logs of both replicas in the object store", func() bool {
		objs, err := c.store.List(context.Background(), "requests/"+model+"/", "")
		if err != nil {
			return false
		}
		replicas := map[string]bool{}
		for _, o := range objs {
			name := strings.TrimSuffix(filepath.Base(o.Key), ".parquet")
			if parts := strings.SplitN(name, "-", 4); len(parts) == 4 {
				replicas[parts[3]] = true
			}
		}
		return len(replicas) == 2
	})
}

const gbdtClusterSpec = `apiVersion: kiln/v1
kind: Pipeline
name: gbdt-cluster
steps:
  - name: ingest
    uses: ingest
    with: {source: "SOURCE"}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: churned
      exclude: [customer_id]
      split: {test: 0.2, valid: 0.1, seed: 3}
      transforms:
        - impute: {columns: [region], strategy: most_frequent}
        - onehot: {columns: [plan, contract, region]}
  - name: train
    uses: train
    queue: train
    needs: [prep]
    container: {image: kiln/trainer:dev, cpus: 1, memory: 1GiB, timeout: 10m}
    retry: {max_attempts: 3, backoff: 1s}
    with: {algorithm: gbdt, params: {n_estimators: 300, max_depth: 6, eta: 0.05}}
  - name: register
    uses: register
    needs: [train]
    with: {model: gbdt-cluster}
  - name: score
    uses: score
    queue: score
    needs: [register]
    with: {input: "SCORE", passthrough: [customer_id], shard_rows: 50000, parallelism: 2}
`

// TestClusterGBDTShardedScoring trains a GBDT on the train worker and
// scores 400,000 rows in shards on the score worker; each worker is killed
// with kill -9 in the middle of its step and started again. The run still
// registers one version, scores every row exactly once and leaves no
// training container behind.
func TestClusterGBDTShardedScoring(t *testing.T) {
	c := openCluster(t)
	ctx := context.Background()
	src := c.put(t, "inputs/gbdt-train.csv", churnCSV(t, 20000, 2))
	const scoreRows = 400_000
	csvPath := filepath.Join(t.TempDir(), "score.csv")
	if err := os.WriteFile(csvPath, churnCSV(t, scoreRows, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(t.TempDir(), "day-01.parquet")
	if _, err := dataset.CSVToParquet(ctx, csvPath, pq, dataset.CSVOptions{BatchRows: 25_000}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	in := c.put(t, "inputs/score/day-01.parquet", data)
	prefix := strings.Replace(in, "/day-01.parquet", "/", 1)
	spec := filepath.Join(t.TempDir(), "gbdt.yaml")
	text := strings.Replace(strings.Replace(gbdtClusterSpec, "SOURCE", src, 1), "SCORE", prefix, 1)
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	wid := c.start(t, spec)
	// Kill the train worker once its training container runs.
	eventually(t, 3*time.Minute, "the training container", func() bool { return leftoverContainers(t, wid) > 0 })
	c.kill9(t, "worker-b")
	time.Sleep(time.Second)
	c.restart(t, "worker-b")

	// Kill the score worker once a shard has written a part of its output.
	staging := filepath.Join(c.dir, "worker-a", "artifacts", "scores", strings.ReplaceAll(wid, "/", "_"), ".score.staging")
	eventually(t, 5*time.Minute, "a scored part in "+staging, func() bool {
		parts, _ := filepath.Glob(filepath.Join(staging, "part-*.parquet"))
		return len(parts) > 0
	})
	parts, _ := filepath.Glob(filepath.Join(staging, "part-*.parquet"))
	c.kill9(t, "worker-a")
	t.Logf("worker a killed with %d parts scored", len(parts))
	time.Sleep(time.Second)
	c.restart(t, "worker-a")

	rs := c.wait(t, wid, 8*time.Minute)
	c.onlyVersion(t, "gbdt-cluster", wid)
	c.scoredOnce(t, rs, "customer_id", scoreRows)
	if n := leftoverContainers(t, wid); n != 0 {
		t.Errorf("%d training containers of the run are left", n)
	}
	if q := c.queues(t, wid); q["train"] != "train" {
		t.Errorf("train ran on %q", q["train"])
	}
}
