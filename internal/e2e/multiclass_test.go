package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/workflows"
)

// wineClasses are the cultivars of data/wine.csv, in class order.
var wineClasses = []string{"class_0", "class_1", "class_2"}

// TestMulticlassWineEndToEnd runs pipelines/wine.yaml on the real embedded
// Temporal server with the trainer in Docker, once per algorithm
// (multinomial logistic regression and multi:softprob trees): the holdout
// accuracy is at least 0.9 and the evaluate step's metrics equal
// scikit-learn's to 1e-9 on the same probabilities; the scored file's
// per-class probabilities are the bundle's; XGBoost 1.7 loads Kiln's
// multi-class model and agrees with them to 1e-6. The registered model is
// then served, and its v1 and v2 answers carry the same classes and
// probabilities as batch scoring. Finally a multi:softprob model trained
// by XGBoost itself is imported, batch-scored by `kiln score` in agreement
// with XGBoost to 1e-6, and its lineage says "imported".
func TestMulticlassWineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	spec := filepath.Join(repoRoot, "pipelines", "wine.yaml")
	raw := readCSVRecord(t, filepath.Join(repoRoot, "data", "wine.csv"))
	scoredByAlgo := map[string][]float64{}
	for _, algo := range []string{"logistic", "gbdt"} {
		rs := runPipeline(t, st, st.Home, spec, "algorithm="+algo)
		if rs.Status != workflows.StatusCompleted {
			t.Fatalf("%s run: %s: %s", algo, rs.Status, rs.Error)
		}
		ev := rs.Step("evaluate").Artifacts.Evaluation
		if ev == nil || ev.Task != "multiclass" || ev.Metrics["accuracy"] < 0.9 {
			t.Fatalf("%s run: evaluation %+v, want a multiclass holdout accuracy >= 0.9", algo, ev)
		}
		t.Logf("%s: %s", algo, rs.Step("evaluate").Summary)
		bundle := rs.Step("train").Artifacts.Bundle
		dir, err := artifact.Path(bundle.URI, "")
		if err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Manifest.Classes, wineClasses) {
			t.Fatalf("%s bundle classes %q, want %q", algo, m.Manifest.Classes, wineClasses)
		}
		if bundle.Runtime == "docker" && !strings.HasPrefix(bundle.Image, "sha256:") {
			t.Errorf("bundle image %q: want the trainer image ID", bundle.Image)
		}

		// evaluate's metrics are scikit-learn's on the holdout.
		prep := rs.Step("prep").Artifacts.Prepared
		test := readParquetRecord(t, prep.TestURI)
		proba, err := m.PredictProba(test)
		if err != nil {
			t.Fatal(err)
		}
		names, _, err := dataset.Strings(test, "cultivar")
		if err != nil {
			t.Fatal(err)
		}
		labels := make([]int, len(names))
		for i, n := range names {
			labels[i] = slices.Index(wineClasses, n)
		}
		checkSklearnMulticlass(t, labels, proba, ev.Metrics)

		// The scored file holds the bundle's probabilities for every row.
		want, err := m.PredictProba(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := scoredProbabilities(t, rs)
		if !equalFloats(got, want) {
			t.Fatalf("%s: the scored probabilities differ from the bundle's", algo)
		}
		scoredByAlgo[algo] = got
		if algo == "gbdt" {
			x, err := m.Manifest.Transforms.Apply(raw)
			if err != nil {
				t.Fatal(err)
			}
			checkXGBoostMulticlass(t, filepath.Join(dir, m.Manifest.Estimator.File), x, got)
		}
	}

	// Serve wine:1 (the logistic model) and ask it about every row.
	if out, err := kiln(t, st, st.Home, "models", "promote", "wine", "1", "--to", "production", "--reason", "first wine model"); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	r := &replica{addr: freeAddr(t), home: st.Home, reg: filepath.Join(st.Home, "registry.db"), token: "t0ken"}
	r.start(t)
	stopped := false
	defer func() {
		if !stopped {
			r.stop(t)
		}
	}()
	rows := csvRows(t, filepath.Join(repoRoot, "data", "wine.csv"))
	for _, row := range rows {
		delete(row, "cultivar")
	}
	body, _ := json.Marshal(map[string]any{"instances": rows})
	resp, err := http.Post("http://"+r.addr+"/v1/models/wine:predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var v1 struct {
		PredictionIDs []string    `json:"prediction_ids"`
		Predictions   []float64   `json:"predictions"`
		Classes       []string    `json:"classes"`
		Labels        []string    `json:"labels"`
		Probabilities [][]float64 `json:"probabilities"`
	}
	err = json.NewDecoder(resp.Body).Decode(&v1)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("v1 predict: status %d, %v", resp.StatusCode, err)
	}
	batch := scoredByAlgo["logistic"]
	v1IDs := v1.PredictionIDs[:20]
	names := wineClasses
	if !slices.Equal(v1.Classes, wineClasses) || len(v1.Probabilities) != len(rows) || len(v1.Labels) != len(rows) {
		t.Fatalf("v1 answer: classes %q, %d labels, %d probability rows for %d instances", v1.Classes, len(v1.Labels), len(v1.Probabilities), len(rows))
	}
	for i, p := range v1.Probabilities {
		if !equalFloats(p, batch[3*i:3*i+3]) {
			t.Fatalf("instance %d: served probabilities %v, batch %v", i, p, batch[3*i:3*i+3])
		}
		k := int(v1.Predictions[i])
		if v1.Labels[i] != wineClasses[k] || p[k] != slices.Max(p) {
			t.Fatalf("instance %d: prediction %v label %q for probabilities %v", i, v1.Predictions[i], v1.Labels[i], p)
		}
	}
	checkV2Multiclass(t, r.addr, rows[:2], batch[:6])

	// Late labels for a multiclass model are class names, stored as the
	// class's index; a name the model does not know is rejected.
	labelsFile := filepath.Join(t.TempDir(), "labels.csv")
	var lb strings.Builder
	lb.WriteString("id,label\n")
	for i, id := range v1IDs {
		fmt.Fprintf(&lb, "%s,%s\n", id, names[i%len(names)])
	}
	lb.WriteString("bogus-id,class_7\n")
	if err := os.WriteFile(labelsFile, []byte(lb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kiln(t, st, st.Home, "labels", "push", "wine", labelsFile, "--json")
	var pushed struct {
		Report struct {
			Accepted, Rejected int64
		} `json:"report"`
	}
	if err != nil || json.Unmarshal([]byte(out), &pushed) != nil || pushed.Report.Accepted != int64(len(v1IDs)) || pushed.Report.Rejected != 1 {
		t.Errorf("kiln labels push wine: %v, %+v; want %d accepted and class_7 rejected\n%s", err, pushed.Report, len(v1IDs), out)
	}

	// A retrain's new data: the served rows whose labels joined, with the
	// target written as class names, as in the training data.
	r.stop(t) // flushes the request log
	stopped = true
	now := time.Now().UTC()
	rt, err := st.Activities.PrepareRetrain(context.Background(), activities.PrepareRetrainInput{
		Model: "wine", Alias: "production", End: now.Add(time.Minute), Since: time.Hour,
		Decision: registry.MonitorDecision{ID: 1, Model: "wine", Window: now, Action: monitor.ActionRetrain, Reason: "test"},
	})
	if err != nil || rt.Rows != int64(len(v1IDs)) {
		t.Fatalf("PrepareRetrain: %+v, %v; want %d rows", rt, err, len(v1IDs))
	}
	retrain := readParquetRecord(t, rt.Data)
	targets, _, err := dataset.Strings(retrain, "cultivar")
	if f := retrain.Schema().Field(retrain.Schema().FieldIndices("cultivar")[0]); err != nil || f.Type.ID() != arrow.STRING {
		t.Fatalf("retrain target column %v (%v), want strings", f, err)
	}
	for _, c := range targets {
		if !slices.Contains(wineClasses, c) {
			t.Errorf("retrain target %q is not a class name", c)
		}
	}

	checkImportXGBoostMulticlass(t, st)
}

// readCSVRecord reads a CSV file as Kiln's ingest does.
func readCSVRecord(t *testing.T, path string) arrow.Record {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "data.parquet")
	if _, err := dataset.CSVToParquet(context.Background(), path, tmp, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	return readParquetFile(t, tmp)
}

// readParquetRecord reads a Parquet artifact by URI.
func readParquetRecord(t *testing.T, uri string) arrow.Record {
	t.Helper()
	p, err := artifact.Path(uri, "")
	if err != nil {
		t.Fatal(err)
	}
	return readParquetFile(t, onePart(t, p))
}

func readParquetFile(t *testing.T, path string) arrow.Record {
	t.Helper()
	r, err := dataset.OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return rec
}

// scoredProbabilities reads a run's scored file's probability_<class>
// columns as row-major probabilities.
func scoredProbabilities(t *testing.T, rs workflows.RunStatus) []float64 {
	t.Helper()
	rec := readParquetRecord(t, rs.Artifacts().Scored.URI)
	n := int(rec.NumRows())
	out := make([]float64, n*len(wineClasses))
	pred, _, err := dataset.Strings(rec, "prediction")
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range wineClasses {
		col, err := dataset.Float64s(rec, "probability_"+c)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range col {
			out[i*len(wineClasses)+k] = v
		}
	}
	for i, p := range pred {
		row := out[i*3 : i*3+3]
		if p != wineClasses[slices.Index(row, slices.Max(row))] {
			t.Fatalf("scored row %d: prediction %q for probabilities %v", i, p, row)
		}
	}
	return out
}

// python is Debian's Python, which has scikit-learn and XGBoost when
// python3-sklearn and python3-xgboost are installed (.ci/run installs them).
const python = "/usr/bin/python3"

// runPython runs a script with args and decodes its JSON output into v; it
// reports false (and logs why) when the modules it imports are missing.
func runPython(t *testing.T, modules, script string, v any, args ...string) bool {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+modules).Run(); err != nil {
		t.Logf("skipping a cross-check: %s lacks %s (apt-get install python3-sklearn python3-xgboost)", python, modules)
		return false
	}
	cmd := exec.Command(python, append([]string{"-c", script}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("decoding python's output %q: %v", out, err)
	}
	return true
}

// checkSklearnMulticlass checks Kiln's multiclass metrics against
// scikit-learn's on the same labels and probabilities, to 1e-9.
func checkSklearnMulticlass(t *testing.T, labels []int, proba []float64, got map[string]float64) {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"y": labels, "p": proba})
	path := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys
import numpy as np
from sklearn import metrics as m
d = json.load(open(sys.argv[1]))
y = np.array(d["y"]); p = np.array(d["p"]).reshape(len(y), -1); k = p.shape[1]
pred = p.argmax(axis=1)
print(json.dumps({
  "accuracy": m.accuracy_score(y, pred),
  "f1_macro": m.f1_score(y, pred, average="macro", zero_division=0),
  "f1_weighted": m.f1_score(y, pred, average="weighted", zero_division=0),
  "precision_macro": m.precision_score(y, pred, average="macro", zero_division=0),
  "recall_macro": m.recall_score(y, pred, average="macro", zero_division=0),
  "logloss": m.log_loss(y, p, labels=list(range(k))),
  "auc_ovr": m.roc_auc_score(y, p, multi_class="ovr", average="macro"),
}))
`
	var want map[string]float64
	if !runPython(t, "sklearn, numpy", script, &want, path) {
		return
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || math.Abs(g-w) > 1e-9 {
			t.Errorf("metric %s: Kiln %v, scikit-learn %v", name, g, w)
		}
	}
	t.Logf("evaluate's %d multiclass metrics equal scikit-learn's to 1e-9", len(want))
}

// writeFeaturesCSV writes a feature matrix as CSV with its feature names as
// the header; NaN is an empty field.
func writeFeaturesCSV(t *testing.T, x *model.Matrix) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "features.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write(x.Features)
	for i := range x.Rows {
		rec := make([]string, len(x.Cols))
		for j, c := range x.Cols {
			if !math.IsNaN(c[i]) {
				rec[j] = strconv.FormatFloat(c[i], 'g', -1, 64)
			}
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := f.Close(); err != nil || w.Error() != nil {
		t.Fatal(err, w.Error())
	}
	return path
}

// xgbPredictScript prints XGBoost's predictions for a model file and a
// features CSV (header = feature names, empty = missing).
const xgbPredictScript = `
import csv, json, sys
import numpy as np, xgboost as xgb
b = xgb.Booster(model_file=sys.argv[1])
with open(sys.argv[2]) as f:
    rows = list(csv.DictReader(f))
names = b.feature_names
x = np.array([[float(r[n]) if r[n] != "" else np.nan for n in names] for r in rows], dtype=np.float32)
print(json.dumps(b.predict(xgb.DMatrix(x, feature_names=names)).astype(float).reshape(-1).tolist()))
`

// checkXGBoostMulticlass loads Kiln's multi-class model file with XGBoost
// and checks it predicts want (row-major probabilities) for features x, to
// 1e-6.
func checkXGBoostMulticlass(t *testing.T, modelFile string, x *model.Matrix, want []float64) {
	t.Helper()
	var got []float64
	if !runPython(t, "xgboost, numpy", xgbPredictScript, &got, modelFile, writeFeaturesCSV(t, x)) {
		return
	}
	if worst := maxDiff(t, got, want); worst > 1e-6 {
		t.Errorf("XGBoost and Kiln disagree on the multi-class probabilities by up to %g (want <= 1e-6)", worst)
	} else {
		t.Logf("XGBoost agrees with Kiln's multi-class probabilities on %d rows to %.1e", x.Rows, worst)
	}
}

func maxDiff(t *testing.T, got, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(got[i]-want[i]))
	}
	return worst
}

// checkV2Multiclass asks the Open Inference Protocol v2 route about rows
// and checks the prediction, label and probabilities outputs.
func checkV2Multiclass(t *testing.T, addr string, rows []map[string]any, want []float64) {
	t.Helper()
	var inputs []map[string]any
	for name := range rows[0] {
		data := make([]any, len(rows))
		for i, r := range rows {
			data[i] = r[name]
		}
		inputs = append(inputs, map[string]any{"name": name, "shape": []int{len(rows)}, "datatype": "FP64", "data": data})
	}
	body, _ := json.Marshal(map[string]any{"inputs": inputs})
	resp, err := http.Post("http://"+addr+"/v2/models/wine/infer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Outputs []struct {
			Name     string `json:"name"`
			Shape    []int  `json:"shape"`
			Datatype string `json:"datatype"`
			Data     []any  `json:"data"`
		} `json:"outputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 {
		t.Fatalf("v2 infer: status %d, %v", resp.StatusCode, err)
	}
	var names []string
	for _, o := range ans.Outputs {
		names = append(names, fmt.Sprintf("%s %s %v", o.Name, o.Datatype, o.Shape))
		if o.Name == "probabilities" {
			for i, v := range o.Data {
				if v.(float64) != want[i] {
					t.Errorf("v2 probabilities[%d] = %v, want %v", i, v, want[i])
				}
			}
		}
	}
	wantNames := []string{"prediction FP64 [2]", "label BYTES [2]", "probabilities FP64 [2 3]"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("v2 outputs %q, want %q", names, wantNames)
	}
}

// checkImportXGBoostMulticlass trains a multi:softprob model with XGBoost
// on the raw wine features (some missing), imports it, batch-scores the
// data with `kiln score`, and checks the probabilities against XGBoost's
// to 1e-6 and the lineage.
func checkImportXGBoostMulticlass(t *testing.T, st *devstack.Stack) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "data", "wine.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// Every 7th row misses its malic_acid (column 1): XGBoost and Kiln both
	// send it the split's default way.
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(src), "\r\n", "\n")), "\n")
	for i := 1; i < len(lines); i += 7 {
		f := strings.Split(lines[i], ",")
		f[1] = ""
		lines[i] = strings.Join(f, ",")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "wine-missing.csv")
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	modelFile := filepath.Join(dir, "wine-xgb.json")
	script := `
import csv, json, sys
import numpy as np, xgboost as xgb
with open(sys.argv[1]) as f:
    rows = list(csv.DictReader(f))
names = [n for n in rows[0] if n != "cultivar"]
x = np.array([[float(r[n]) if r[n] != "" else np.nan for n in names] for r in rows], dtype=np.float32)
y = np.array([["class_0", "class_1", "class_2"].index(r["cultivar"]) for r in rows])
d = xgb.DMatrix(x, label=y, feature_names=names)
b = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3, "seed": 1}, d, num_boost_round=20)
b.save_model(sys.argv[2])
print(json.dumps(b.predict(d).astype(float).reshape(-1).tolist()))
`
	var want []float64
	if !runPython(t, "xgboost, numpy", script, &want, data, modelFile) {
		return
	}
	out, err := kiln(t, st, st.Home, "models", "import", "wine-xgb", "--estimator", modelFile,
		"--classes", strings.Join(wineClasses, ","), "--reason", "multi:softprob from XGBoost 1.7")
	if err != nil {
		t.Fatalf("kiln models import: %v\n%s", err, out)
	}
	scored := filepath.Join(dir, "scored.parquet")
	if out, err := kiln(t, st, st.Home, "score", "wine-xgb:1", data, scored); err != nil {
		t.Fatalf("kiln score: %v\n%s", err, out)
	}
	rec := readParquetFile(t, scored)
	got := make([]float64, 3*rec.NumRows())
	for k, c := range wineClasses {
		col, err := dataset.Float64s(rec, "probability_"+c)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range col {
			got[3*i+k] = v
		}
	}
	if worst := maxDiff(t, got, want); worst > 1e-6 {
		t.Errorf("kiln score of the imported XGBoost model differs from XGBoost by up to %g (want <= 1e-6)", worst)
	} else {
		t.Logf("the imported multi:softprob model scores %d rows within %.1e of XGBoost", rec.NumRows(), worst)
	}
	out, err = kiln(t, st, st.Home, "models", "lineage", "wine-xgb:1")
	if err != nil || !strings.Contains(out, "imported") {
		t.Errorf("kiln models lineage wine-xgb:1 does not say imported (%v):\n%s", err, out)
	}
}
