package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/workflows"
)

const objectStoreSpec = `apiVersion: kiln/v1
kind: Pipeline
name: churn-objects
steps:
  - name: ingest
    uses: ingest
    with: {source: "SOURCE", expect: {min_rows: 1000}}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: churned
      exclude: [customer_id]
      split: {test: 0.2, valid: 0.1, seed: 7}
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
    with: {algorithm: logistic}
  - name: evaluate
    uses: evaluate
    needs: [train]
    with: {gate: "auc >= 0.6"}
  - name: register
    uses: register
    needs: [evaluate]
    with: {model: churn-objects, alias: production}
  - name: score
    uses: score
    queue: score
    needs: [register]
    with: {passthrough: [customer_id], parallelism: 2}
`

// TestObjectStoreWorkers: two `kiln worker` processes with separate, empty
// Kiln homes and an S3 object store (--artifacts) run one pipeline: the
// run and the score step on one (queues kiln,score), training on the other
// (queue train). Nothing is shared on disk but the registry, so every step
// reads what the step before it published to the object store. Then a
// `kiln serve` with a third empty home serves the registered version from
// the object store.
func TestObjectStoreWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ctx := context.Background()
	s3 := s3test.Start(t, "kiln")
	var csv bytes.Buffer
	const rows = 3000
	if err := demodata.WriteChurnCSV(&csv, demodata.ChurnOptions{Rows: rows, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	s3.Put(t, "kiln", "data/churn.csv", csv.Bytes())
	remote := s3.URL("kiln", "artifacts")

	st, err := devstack.Start(ctx, devstack.Options{Home: t.TempDir(), Ephemeral: true, NoWorker: true})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Stop)
	shared := t.TempDir()
	reg := filepath.Join(shared, "registry.db")
	logs := t.TempDir()
	trainer := []string{"--trainer-image", trainerImage()}
	if docker(t) == nil {
		trainer = []string{"--no-docker", "--trainer-bin", buildTrainer(t)}
	}
	homeA, homeB := t.TempDir(), t.TempDir()
	startWorker := func(name, home, queues string) string {
		log := filepath.Join(logs, name+".log")
		args := append([]string{"--address", st.Temporal.Address(), "--home", home, "--registry", reg,
			"--artifacts", remote, "worker", "--queues", queues}, trainer...)
		startKilnProcess(t, log, nil, args...)
		return log
	}
	logA := startWorker("a", homeA, "kiln,score")
	logB := startWorker("b", homeB, "train")
	for _, log := range []string{logA, logB} {
		deadline := time.Now().Add(time.Minute)
		for {
			b, _ := os.ReadFile(log)
			if bytes.Contains(b, []byte("Kiln worker polling kiln-host-")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the worker of %s did not start:\n%s", log, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	spec := filepath.Join(t.TempDir(), "churn.yaml")
	writeFile(t, spec, strings.Replace(objectStoreSpec, "SOURCE", s3.URL("kiln", "data/churn.csv"), 1))
	rs := runPipeline(t, st, t.TempDir(), spec)
	if rs.Status != workflows.StatusCompleted {
		a, _ := os.ReadFile(logA)
		b, _ := os.ReadFile(logB)
		t.Fatalf("run: %s %s\nworker a:\n%s\nworker b:\n%s", rs.Status, rs.Error, a, b)
	}

	for _, s := range rs.Steps {
		t.Logf("step %s: %s %s", s.Name, s.Status, s.Summary)
	}
	// Steps ran where the spec routed them; the shards on the planning
	// worker's own queue.
	q := scheduledQueues(t, st, rs.WorkflowID)
	if q["train"] != "train" || q["prep"] != "kiln" {
		t.Errorf("activities scheduled on %v; want train on train, prep on kiln", q)
	}
	idA, err := os.ReadFile(filepath.Join(homeA, "worker-id"))
	if err != nil {
		t.Fatal(err)
	}
	shards := scheduledQueues(t, st, rs.WorkflowID+"/score/shards-0")
	if len(shards) == 0 {
		t.Fatal("no shard activities")
	}
	for id, queue := range shards {
		if queue != "kiln-host-"+strings.TrimSpace(string(idA)) {
			t.Errorf("%s ran on %s, want worker a's own queue", id, queue)
		}
	}

	// Every artifact the run handed on is an object URL, and a store with
	// an empty directory reads them.
	art := rs.Artifacts()
	fresh, err := artifact.Open(ctx, artifact.Options{Dir: t.TempDir(), Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	uris := []string{art.Dataset.URI, art.Prepared.TrainURI, art.Prepared.TransformsURI, art.Bundle.URI, art.Scored.URI}
	for _, u := range uris {
		if !strings.HasPrefix(u, "s3://kiln/artifacts/") {
			t.Errorf("artifact %s is not in the object store", u)
		}
	}
	out, err := fresh.Local(ctx, art.Scored.URI)
	if err != nil {
		t.Fatal(err)
	}
	man, err := scorer.ReadSuccess(out)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range man.Parts {
		r, err := dataset.OpenParquet(filepath.Join(out, p.File))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.ReadAll(ctx, []string{"customer_id"})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		col := rec.Column(0).(*array.String)
		for i := range col.Len() {
			id := col.Value(i)
			if ids[id] {
				t.Fatalf("customer %s scored twice", id)
			}
			ids[id] = true
		}
		rec.Release()
	}
	if man.Rows != rows || len(ids) != rows {
		t.Errorf("%d rows scored (%d distinct IDs), want %d", man.Rows, len(ids), rows)
	}

	// Nothing was published only to a worker's disk: each file a worker
	// holds under its artifacts directory (but its scratch space and its
	// cache of remote inputs) is an object of the store.
	keys, err := fresh.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d objects in the store", len(keys))
	inStore := map[string]bool{}
	for _, k := range keys {
		inStore[k] = true
	}
	for _, home := range []string{homeA, homeB} {
		root := filepath.Join(home, "artifacts")
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if strings.HasPrefix(rel, "tmp/") || strings.HasPrefix(rel, "cache/") || strings.Contains(rel, ".staging") {
				return nil
			}
			if !inStore[rel] {
				t.Errorf("%s is on %s's disk only", rel, filepath.Base(home))
			}
			return nil
		})
	}
	if _, err := os.Stat(filepath.Join(homeB, "artifacts", "datasets")); err == nil {
		t.Error("the train worker holds the ingested dataset: it should have read only the prepared splits")
	}

	// The same run again: the step caches of the workers hit, checking
	// that the cached outputs are still in the object store. (Its register
	// step makes version 2, so its score step runs again.)
	rs2 := runPipeline(t, st, t.TempDir(), spec)
	if rs2.Status != workflows.StatusCompleted {
		t.Fatalf("run 2: %s %s", rs2.Status, rs2.Error)
	}
	for _, name := range []string{"ingest", "prep", "train"} {
		if s := rs2.Step(name); s == nil || !s.Cached {
			t.Errorf("run 2's %s step was not a cache hit: %+v", name, s)
		}
	}

	// A model server with an empty home serves the version from the
	// object store.
	r, err := registry.Open(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Resolve(ctx, "churn-objects@production")
	r.Close()
	if err != nil || !strings.HasPrefix(v.BundleURI, "s3://") {
		t.Fatalf("churn-objects@production: %+v, %v", v, err)
	}
	addr := freeAddr(t)
	serveHome := t.TempDir()
	serveLog := filepath.Join(logs, "serve.log")
	startKilnProcess(t, serveLog, []string{"KILN_ADMIN_TOKEN=e2e-token"}, "--home", serveHome, "--registry", reg,
		"--artifacts", remote, "serve", "--addr", addr)
	row := map[string]any{"customer_id": "C1", "tenure": 12, "monthly_charges": 70.5, "total_charges": 846.0, "plan": "basic",
		"contract": "one-year", "region": "east", "support_calls": 2, "paperless": false}
	body, _ := json.Marshal(map[string]any{"instances": []any{row}})
	var answer []byte
	eventually(t, time.Minute, "kiln serve to answer from the object store's bundle", func() bool {
		resp, err := http.Post("http://"+addr+"/v1/models/churn-objects:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		answer, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK
	})
	if !bytes.Contains(answer, []byte(`"predictions"`)) {
		log, _ := os.ReadFile(serveLog)
		t.Fatalf("answer %s\n%s", answer, log)
	}
	if _, err := os.Stat(filepath.Join(serveHome, "artifacts", "bundles", filepath.Base(strings.SplitN(v.BundleURI, "?", 2)[0]), "manifest.json")); err != nil {
		t.Errorf("the server's cache holds no bundle: %v", err)
	}
}
