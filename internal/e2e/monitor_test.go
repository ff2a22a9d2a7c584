package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

// liveSpec trains churn, deploys it, and monitors its live AUC over late
// labels that arrive in labels/.
const liveSpec = `apiVersion: kiln/v1
kind: Pipeline
name: churn-live
steps:
  - {name: ingest, uses: ingest, with: {source: churn.csv}}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: churned
      exclude: [customer_id]
      split: {test: 0.25, valid: 0.1, seed: 3}
      transforms:
        - impute: {columns: [tenure, total_charges], strategy: median}
        - impute: {columns: [region], strategy: most_frequent}
        - standardize: {columns: ["*"]}
        - onehot: {columns: [plan, contract, region]}
  - {name: train, uses: train, needs: [prep], container: {memory: 512MiB}, with: {algorithm: logistic}}
  - {name: evaluate, uses: evaluate, needs: [train], with: {gate: "auc >= champion.auc", holdout: recent}}
  - {name: register, uses: register, needs: [evaluate], with: {model: churn}}
  - {name: deploy, uses: deploy, needs: [register], with: {steps: [50, 100], interval: 2s, min_requests: 20}}
  - name: monitor
    uses: monitor
    needs: [deploy]
    with:
      interval: 3s
      window: 3s
      min_rows: 100
      min_labels: 150
      metric: {name: auc, threshold: 0.7, windows: 3}
      cooldown: 1h
      labels: {source: labels/}
`

// liveTraffic sends one row per request with its own prediction ID, and
// keeps the IDs served so that their labels can be pushed later.
type liveTraffic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	served []int // row indices served, in order
	errs   int
	server string
}

func startLiveTraffic(server string, rows []map[string]any, rate float64) *liveTraffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &liveTraffic{cancel: cancel, server: server}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for i := 0; ; i = (i + 1) % len(rows) {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tr.mu.Lock()
			server := tr.server
			tr.mu.Unlock()
			body, _ := json.Marshal(map[string]any{"instances": []map[string]any{rows[i]}, "ids": []string{fmt.Sprintf("r-%06d", i)}})
			resp, err := http.Post(server+"/v1/models/churn:predict", "application/json", bytes.NewReader(body))
			tr.mu.Lock()
			if err != nil || resp.StatusCode != 200 {
				tr.errs++
			} else {
				tr.served = append(tr.served, i)
			}
			tr.mu.Unlock()
			if resp != nil {
				resp.Body.Close()
			}
		}
	}()
	return tr
}

func (tr *liveTraffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// pushLabels writes, every period, the labels of the rows served since the
// last push into a new file of dir, late (after delay), shuffled, with a few
// IDs no prediction has.
func pushLabels(ctx context.Context, t *testing.T, tr *liveTraffic, labels []string, dir string, period time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(9, 9))
		done := 0
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(period):
			}
			tr.mu.Lock()
			batch := append([]int(nil), tr.served[done:]...)
			done = len(tr.served)
			tr.mu.Unlock()
			if len(batch) == 0 {
				continue
			}
			rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			var b bytes.Buffer
			w := csv.NewWriter(&b)
			w.Write([]string{"id", "label"})
			for _, i := range batch {
				w.Write([]string{fmt.Sprintf("r-%06d", i), labels[i]})
			}
			for k := 0; k < 3; k++ {
				w.Write([]string{fmt.Sprintf("never-served-%d-%d", n, k), "1"})
			}
			w.Flush()
			tmp := filepath.Join(dir, fmt.Sprintf(".batch-%04d.csv", n))
			if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
				t.Error(err)
				return
			}
			os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("batch-%04d.csv", n)))
		}
	}()
	return &wg
}

// TestMonitorRetrainsOnLateLabels is the monitoring must-show on a real
// Temporal server and a real model server: traffic whose inputs keep their
// distribution but whose labels — pushed late, out of order, with unknown
// IDs — show that the model got worse (the concept changed) starts exactly
// one retrain after K windows; the retrain trains on the new labelled rows,
// beats the old version on the recent holdout, is canaried and promoted; the
// monitor's record names the metric, its values and times; the new
// version's lineage names the decision; and the record survives a restart of
// the whole stack, whose monitor goes on recording.
func TestMonitorRetrainsOnLateLabels(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	home := t.TempDir()
	d := docker(t)
	wcfg := worker.Config{TrainerImage: trainerImage()}
	if d == nil {
		wcfg.TrainerBinary, wcfg.NoDocker = buildTrainer(t), true
	}
	start := func() *devstack.Stack {
		st, err := devstack.Start(context.Background(), devstack.Options{Home: home, ServeFlushInterval: 200 * time.Millisecond, Worker: wcfg})
		if err != nil {
			t.Fatalf("starting the stack: %v", err)
		}
		return st
	}
	st := start()
	stopped := false
	defer func() {
		if !stopped {
			st.Stop()
		}
	}()
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "labels"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "churn.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := demodata.WriteChurnCSV(f, demodata.ChurnOptions{Rows: 1200, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	spec := filepath.Join(dir, "live.yaml")
	writeFile(t, spec, liveSpec)
	if rs := runPipeline(t, st, home, spec); rs.Status != workflows.StatusCompleted {
		t.Fatalf("run 1: %s %s", rs.Status, rs.Error)
	}
	checkServeHelpExample(t, st, home)

	// Served traffic: the training population (no input drift), whose
	// churn now depends on the features the other way round.
	served := filepath.Join(dir, "served.csv")
	sf, _ := os.Create(served)
	if err := demodata.WriteChurnCSV(sf, demodata.ChurnOptions{Rows: 20000, Seed: 2, Concept: 1}); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	rows := csvRows(t, served)
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = fmt.Sprint(r["churned"])
		delete(r, "churned")
	}
	tr := startLiveTraffic(st.ServerURL, rows, 150)
	defer tr.stop()
	pctx, stopPush := context.WithCancel(ctx)
	defer stopPush()
	pushWG := pushLabels(pctx, t, tr, labels, filepath.Join(dir, "labels"), 700*time.Millisecond)

	retrainQuery := fmt.Sprintf("WorkflowType = '%s' AND KilnPipeline = 'churn-live' AND KilnTrigger = 'performance'", activities.WorkflowPipeline)
	var retrains []string
	eventually(t, 3*time.Minute, "a retrain started by the live AUC", func() bool {
		retrains = listWorkflows(t, st.Client, retrainQuery)
		return len(retrains) > 0
	})
	var rs workflows.RetrainResult
	if err := st.Client.GetWorkflow(ctx, activities.RetrainID("churn"), "").Get(ctx, &rs); err != nil {
		t.Fatalf("retrain: %v", err)
	}
	if rs.Run.Status != workflows.StatusCompleted {
		t.Fatalf("retrain run %s: %s %s", rs.Run.WorkflowID, rs.Run.Status, rs.Run.Error)
	}
	// Keep the traffic going for a few more windows: the new version is
	// good on the new concept, and the cooldown holds anyway.
	time.Sleep(8 * time.Second)
	if got := listWorkflows(t, st.Client, retrainQuery); len(got) != 1 {
		t.Errorf("%d performance retrains, want exactly 1: %v", len(got), got)
	}
	reg := st.Activities.Registry
	if v, ok, err := reg.Alias(ctx, "churn", "production"); err != nil || !ok || v != 2 {
		t.Fatalf("production = %d (%v, %v), want version 2 promoted by the retrain's canary", v, ok, err)
	}
	v2, err := reg.Get(ctx, "churn", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v2.Trigger, "monitor decision #") || !strings.Contains(v2.Trigger, "auc") {
		t.Errorf("v2 trigger %q does not name the monitor decision", v2.Trigger)
	}
	appended := false
	for _, ds := range v2.Datasets {
		appended = appended || ds.Role == registry.DatasetAppended
	}
	if !appended {
		t.Errorf("v2 lineage has no appended data: %+v", v2.Datasets)
	}
	ev := rs.Run.Artifacts().Evaluation
	if ev == nil || !ev.Passed || !strings.Contains(ev.Report, "recent rows") {
		t.Fatalf("retrain evaluation %+v", ev)
	}
	t.Logf("retrain evaluation on the recent holdout:\n%s", ev.Report)
	if ev.Metrics["auc"] <= ev.ChampionMetrics["auc"] {
		t.Errorf("v2 AUC %.4f does not beat v1's %.4f on the recent holdout", ev.Metrics["auc"], ev.ChampionMetrics["auc"])
	}
	// The decision that retrained, and the K windows before it.
	decisions, err := reg.MonitorDecisions(ctx, "churn", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var retrainDecision *registry.MonitorDecision
	breaches := 0
	for i := range decisions {
		d := decisions[i]
		if d.Trigger == monitor.TriggerPerformance && d.Action != monitor.ActionRetrain && retrainDecision == nil {
			breaches++
		}
		if d.Action == monitor.ActionRetrain {
			if retrainDecision != nil {
				t.Errorf("a second retrain decision: %+v", d)
			}
			retrainDecision = &decisions[i]
		}
	}
	if retrainDecision == nil || retrainDecision.Metric != "auc" || retrainDecision.Value >= 0.7 || retrainDecision.WorkflowID == "" {
		t.Fatalf("retrain decision %+v", retrainDecision)
	}
	if breaches < 2 {
		t.Errorf("%d breaching windows before the retrain decision, want the K-1 = 2 before it", breaches)
	}
	out, err := kiln(t, st, home, "monitor", "show", "churn")
	if err != nil {
		t.Fatalf("monitor show: %v\n%s", err, out)
	}
	for _, want := range []string{"AUC", "Crossed a threshold", "auc = ", "(threshold 0.7", "retrain", fmt.Sprintf("#%d", retrainDecision.ID), "Labels arrived over these windows"} {
		if !strings.Contains(out, want) {
			t.Errorf("monitor show lacks %q:\n%s", want, out)
		}
	}
	t.Logf("kiln monitor show churn:\n%s", out)
	out, err = kiln(t, st, home, "models", "lineage", "churn:2")
	if err != nil || !strings.Contains(out, fmt.Sprintf("monitor decision #%d", retrainDecision.ID)) {
		t.Errorf("lineage of churn:2 does not name decision #%d: %v\n%s", retrainDecision.ID, err, out)
	}
	// Some labels arrived for predictions nobody made: counted, not dropped.
	ws, err := reg.MonitorWindows(ctx, "churn", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unknown int64
	for _, row := range ws {
		var w monitor.Window
		json.Unmarshal(row.Data, &w)
		unknown += w.Labels.Unknown
		t.Logf("window %s: labels %+v", w.End.Format("15:04:05"), w.Labels)
	}
	if unknown == 0 {
		t.Error("no window counted the labels of unknown IDs")
	}

	// Restart everything: the record survives, the monitor goes on.
	stopPush()
	pushWG.Wait()
	recorded := len(ws)
	st.Stop()
	stopped = true
	st = start()
	stopped = false
	tr.mu.Lock()
	tr.server = st.ServerURL
	tr.mu.Unlock()
	// A window whose activity was running when the stack stopped is retried
	// after the monitor's heartbeat timeout.
	eventually(t, 2*time.Minute, "the monitor to record windows after the restart", func() bool {
		after, err := st.Activities.Registry.MonitorWindows(ctx, "churn", time.Time{}, 0)
		return err == nil && len(after) > recorded+1
	})
	after, err := st.Activities.Registry.MonitorDecisions(ctx, "churn", time.Time{}, monitor.ActionRetrain)
	if err != nil || len(after) != 1 || after[0].ID != retrainDecision.ID {
		t.Errorf("after the restart, retrain decisions %+v (%v), want decision #%d", after, err, retrainDecision.ID)
	}
}

// checkServeHelpExample posts the v1 request printed by kiln serve --help,
// as printed, to the stack's server, which serves a churn model.
func checkServeHelpExample(t *testing.T, st *devstack.Stack, home string) {
	t.Helper()
	help, _ := kiln(t, st, home, "serve", "--help")
	const start = "curl -s localhost:8080/v1/models/churn:predict -d '"
	i := strings.Index(help, start)
	if i < 0 {
		t.Fatalf("kiln serve --help has no churn predict example:\n%s", help)
	}
	body := help[i+len(start):]
	body = body[:strings.Index(body, "'")]
	resp, err := http.Post(st.ServerURL+"/v1/models/churn:predict", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the kiln serve --help example answers %d: %s\nbody: %s", resp.StatusCode, b, body)
	}
}
