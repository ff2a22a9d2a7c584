package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

// canarySpec is the breast-cancer pipeline deployed to the worker's model
// servers with a sequential canary. {{IMPUTE}} is an impute transform or
// nothing: a version without it fails on served rows with a missing value.
const canarySpec = `apiVersion: kiln/v1
kind: Pipeline
name: canary-e2e
params:
  seed: 42
  l2: 0.01
steps:
  - name: ingest
    uses: ingest
    with: {source: %q}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: malignant
      split: {test: 0.25, seed: "${params.seed}"}
      transforms:
%s        - standardize: {columns: ["*"]}
  - name: train
    uses: train
    needs: [prep]
    container: {image: kiln/trainer:dev, cpus: 1, memory: 256MiB, timeout: 10m}
    with: {algorithm: logistic, params: {l2: "${params.l2}"}}
  - name: register
    uses: register
    needs: [train]
    with: {model: bc-canary}
  - name: deploy
    uses: deploy
    needs: [register]
    with:
      steps: [10, 50, 100]
      interval: 1s
      min_requests: 20
      analysis:
        error_rate: {min_effect: 0.05}
        latency: {min_effect: 0.25, margin: 0.1}
        predictions: {min_effect: 0.15, margin: 0.05}
`

// replica is one `kiln serve` process's command, run in this process.
type replica struct {
	addr   string
	home   string
	reg    string
	token  string
	cancel context.CancelFunc
	done   chan error
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() {
		var out, errOut bytes.Buffer
		r.done <- cli.Run(ctx, []string{"--home", r.home, "--registry", r.reg, "serve", "--addr", r.addr, "--admin-token", r.token}, &out, &errOut)
	}()
	eventually(t, 20*time.Second, "kiln serve on "+r.addr, func() bool {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
}

func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Logf("kiln serve %s: %v", r.addr, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("kiln serve %s did not stop", r.addr)
	}
}

func (r *replica) status(t *testing.T, model string) serving.ModelStatus {
	t.Helper()
	var st serving.ModelStatus
	resp, err := http.Get("http://" + r.addr + "/v1/models/" + model)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCanaryTwoReplicas deploys to two real kiln serve replicas under live
// traffic: a worse candidate (errors on rows with a missing value, and
// shifted predictions) is rolled back at the first analysis whose evidence
// suffices, a good one is promoted while one replica restarts mid-rollout
// and picks the split up from the registry, and the alias moves once.
func TestCanaryTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := docker(t)
	wcfg := worker.Config{TrainerImage: trainerImage()}
	if d == nil {
		wcfg.TrainerBinary = buildTrainer(t)
		wcfg.NoDocker = true
	}
	home := t.TempDir()
	const token = "e2e-token"
	reps := []*replica{
		{addr: freeAddr(t), home: t.TempDir(), reg: filepath.Join(home, "registry.db"), token: token},
		{addr: freeAddr(t), home: t.TempDir(), reg: filepath.Join(home, "registry.db"), token: token},
	}
	wcfg.ModelServer = "http://" + reps[0].addr + ",http://" + reps[1].addr
	st, err := devstack.Start(context.Background(), devstack.Options{
		Home: home, Ephemeral: true, NoServer: true, NoReports: true, AdminToken: token, Worker: wcfg,
	})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Stop)
	for _, r := range reps {
		r.start(t)
		t.Cleanup(func() { r.cancel() })
	}

	data := filepath.Join(repoRoot, "data", "breast_cancer.csv")
	write := func(name, impute string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, fmt.Appendf(nil, canarySpec, data, impute), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "        - impute: {columns: [\"*\"], strategy: mean}\n")
	bad := write("bad.yaml", "")
	const model = "bc-canary"

	// v1: the first deployment goes to both replicas.
	run1 := runPipeline(t, st, home, good)
	if run1.Status != workflows.StatusCompleted {
		t.Fatalf("run 1: %s: %s", run1.Status, run1.Error)
	}
	for _, r := range reps {
		if s := r.status(t, model); s.Deployment.Stable.Version != 1 {
			t.Fatalf("replica %s serves %+v after the first deployment", r.addr, s.Deployment)
		}
	}

	// Live traffic on both replicas; one row in ten lacks a value.
	rows := csvRows(t, data)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for i := range rows {
		delete(rows[i], "malignant")
		if i%10 == 0 {
			rows[i]["mean_radius"] = nil
		}
	}
	var traffic []*traffic
	for _, r := range reps {
		traffic = append(traffic, startTraffic("http://"+r.addr, model, rows, 150))
	}
	defer func() {
		for _, tr := range traffic {
			tr.stop()
		}
	}()

	// v2 is worse: no imputation (errors on the rows with a missing value)
	// and a heavy L2 penalty (predictions pulled towards the base rate).
	// Watch the replicas to see when the rollback reaches them.
	type seen struct {
		at     time.Time
		canary bool
	}
	watch := make(chan []seen, 1)
	stopWatch := make(chan struct{})
	go func() {
		var log []seen
		for {
			select {
			case <-stopWatch:
				watch <- log
				return
			case <-time.After(50 * time.Millisecond):
			}
			s0, s1 := reps[0].status(t, model), reps[1].status(t, model)
			log = append(log, seen{time.Now(), s0.Deployment.Canary != nil || s1.Deployment.Canary != nil})
		}
	}()
	out2, _ := kiln(t, st, home, "run", bad, "--wait", "--json", "-p", "l2=30", "-p", "seed=7")
	var run2 workflows.RunStatus
	if err := json.Unmarshal([]byte(out2), &run2); err != nil {
		t.Fatalf("kiln run: %v (output %q)", err, out2)
	}
	// The run may end a moment before the watcher's next look: keep
	// watching until the replicas serve stable only (or 2 s pass), so the
	// rollback's arrival is observed, not raced.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if reps[0].status(t, model).Deployment.Canary == nil && reps[1].status(t, model).Deployment.Canary == nil {
			break
		}
	}
	time.Sleep(120 * time.Millisecond) // at least two more looks of the watcher
	close(stopWatch)
	watched := <-watch
	if run2.Status != workflows.StatusFailed || !strings.Contains(run2.Error, "rolled back") {
		t.Fatalf("run 2: %s: %s", run2.Status, run2.Error)
	}
	cs := canaryResult(t, st, model)
	if cs.Deployment.Promoted || cs.Analysis == nil || cs.Analysis.Decision != "fail" {
		t.Fatalf("run 2 canary %+v", cs.Deployment)
	}
	t.Logf("run 2 rolled back after %d analyses: %s", len(cs.Steps), cs.Deployment.Reason)
	for _, m := range cs.Analysis.Metrics {
		t.Logf("  %s: %s effect %.4f [%.4f, %.4f] canary %d/%d stable %d %s", m.Metric, m.Verdict, m.Effect, m.Lower, m.Upper, m.Canary, m.Need, m.Stable, m.Detail)
	}
	if !strings.Contains(cs.Deployment.Reason, "error_rate worse") && !strings.Contains(cs.Deployment.Reason, "predictions worse") {
		t.Errorf("rollback reason %q names neither the error rate nor the predictions", cs.Deployment.Reason)
	}
	// The look before the last had no sufficient evidence; the last look
	// rolled back, and both replicas served stable only within 1 s of it.
	last := cs.Steps[len(cs.Steps)-1]
	if n := len(cs.Steps); n >= 2 && cs.Steps[n-2].Verdict == workflows.VerdictFail {
		t.Errorf("an earlier look already failed: %+v", cs.Steps[n-2])
	}
	var cleared time.Time
	for i, s := range watched {
		if i > 0 && watched[i-1].canary && !s.canary {
			cleared = s.at
		}
	}
	if cleared.IsZero() {
		t.Errorf("never saw the replicas drop the canary (%d observations)", len(watched))
	} else if lag := cleared.Sub(last.At); lag > time.Second {
		t.Errorf("replicas served the canary %s after the rollback decision (want ≤ 1s)", lag)
	} else {
		t.Logf("replicas back on stable %s after the deciding analysis", lag.Round(time.Millisecond))
	}

	// v3 is good (imputes, same penalty): it is promoted, while replica 1
	// restarts mid-rollout and restores the split from the registry.
	done := make(chan workflows.RunStatus, 1)
	go func() { done <- runPipeline(t, st, home, good, "seed=11") }()
	eventually(t, 120*time.Second, "the v3 canary on the replicas", func() bool {
		s := reps[1].status(t, model)
		return s.Deployment.Canary != nil && s.Deployment.Canary.Version == 3
	})
	reps[1].stop(t)
	traffic[1].stop()
	reps[1].start(t)
	restored := reps[1].status(t, model)
	if restored.Deployment.Canary == nil || restored.Deployment.Canary.Version != 3 || restored.Deployment.Stable.Version != 1 {
		t.Errorf("restarted replica serves %+v, want stable v1 with canary v3", restored.Deployment)
	}
	traffic[1] = startTraffic("http://"+reps[1].addr, model, rows, 150)
	var run3 workflows.RunStatus
	select {
	case run3 = <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("run 3 did not finish")
	}
	if run3.Status != workflows.StatusCompleted {
		t.Fatalf("run 3: %s: %s", run3.Status, run3.Error)
	}
	dep := run3.Artifacts().Deployment
	if dep == nil || !dep.Promoted || dep.Version != 3 || dep.Evidence == nil || dep.Evidence.Decision != "pass" {
		t.Fatalf("run 3 deployment %+v", dep)
	}
	for _, r := range reps {
		if s := r.status(t, model); s.Deployment.Stable.Version != 3 || s.Deployment.Canary != nil {
			t.Errorf("replica %s serves %+v after promotion", r.addr, s.Deployment)
		}
	}
	moves, err := st.Activities.Registry.AliasHistory(context.Background(), model, "production")
	if err != nil {
		t.Fatal(err)
	}
	var tos []int64
	for _, m := range moves {
		tos = append(tos, m.To)
	}
	if len(moves) != 2 || tos[0] != 1 && tos[1] != 1 || tos[0] != 3 && tos[1] != 3 {
		t.Errorf("production moved %v, want once to v1 (first deployment) and once to v3", tos)
	}
	// The evidence is in the history: the canary's result carries it, and
	// kiln runs show prints it.
	out, err := kiln(t, st, home, "runs", "show", run3.WorkflowID)
	if err != nil || !strings.Contains(out, "Canary   v3 against v1") || !strings.Contains(out, "error_rate") {
		t.Errorf("kiln runs show: %v\n%s", err, out)
	}
}

// canaryResult reads the latest rollout of model from Temporal (its result).
func canaryResult(t *testing.T, st *devstack.Stack, model string) workflows.CanaryStatus {
	t.Helper()
	var cs workflows.CanaryStatus
	if err := st.Client.GetWorkflow(context.Background(), activities.CanaryID(model), "").Get(context.Background(), &cs); err != nil {
		t.Fatalf("canary result: %v", err)
	}
	return cs
}
