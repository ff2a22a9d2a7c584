package model

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/transform"
)

// xgbNames are the raw input columns of the XGBoost fixtures (the
// regression model's feature names; the binary model has none).
var xgbNames = []string{"f_a", "f_b", "f_c", "f_d", "f_e", "f_f"}

// xgbSchema is the fixtures' columns plus a target.
func xgbSchema() dataset.Schema {
	var s dataset.Schema
	for _, n := range xgbNames {
		s.Fields = append(s.Fields, dataset.Field{Name: n, Type: dataset.Float64})
	}
	s.Fields = append(s.Fields, dataset.Field{Name: "y", Type: dataset.Float64})
	return s
}

// record returns d's rows as an Arrow record with nulls for missing values
// (and a zero target).
func (d *xgbData) record(t testing.TB) arrow.Record {
	t.Helper()
	s := xgbSchema()
	b := array.NewRecordBuilder(memory.NewGoAllocator(), s.Arrow())
	defer b.Release()
	for _, row := range d.Features {
		for j, v := range row {
			fb := b.Field(j).(*array.Float64Builder)
			if v == nil {
				fb.AppendNull()
			} else {
				fb.Append(*v)
			}
		}
		b.Field(len(row)).(*array.Float64Builder).Append(0)
	}
	rec := b.NewRecord()
	t.Cleanup(rec.Release)
	return rec
}

// rows returns d's rows as decoded JSON rows, missing values absent.
func (d *xgbData) rows() []map[string]any {
	out := make([]map[string]any, len(d.Features))
	for i, row := range d.Features {
		r := map[string]any{}
		for j, v := range row {
			if v != nil {
				r[xgbNames[j]] = *v
			}
		}
		out[i] = r
	}
	return out
}

// xgbClasses names multiclass.json's three classes.
var xgbClasses = []string{"red", "green", "blue"}

// xgbManifest is a manifest for an XGBoost estimator over the fixture
// columns, with no preprocessing (missing values reach the trees as NaN);
// a TaskMulticlass one names xgbClasses.
func xgbManifest(t testing.TB, d *xgbData, task, output string) Manifest {
	t.Helper()
	fitted, err := transform.Fit(transform.Recipe{Target: "y"}, xgbSchema(), d.record(t))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(fitted.Features, ",") != strings.Join(xgbNames, ",") {
		t.Fatalf("transforms produce %v", fitted.Features)
	}
	m := Manifest{
		FormatVersion: FormatVersion, Name: "interop", Task: task, Target: "y",
		Inputs: fitted.Inputs, Transforms: fitted,
		Estimator: Estimator{Type: EstimatorXGBoost, File: DefaultEstimatorFile},
		Output:    output,
	}
	if task == TaskMulticlass {
		m.Classes = xgbClasses
	}
	return m
}

// checkXGBoostBundles writes bundles holding dir's XGBoost models, loads
// them, and checks Kiln's predictions on Arrow batches and on JSON rows
// against XGBoost's to 1e-6: probabilities or values, and for the
// multi-class model the class probabilities (and the predicted classes,
// their argmax).
func checkXGBoostBundles(t *testing.T, dir string) {
	d := readXGBData(t, filepath.Join(dir, "data.json"))
	for _, tt := range []struct {
		file, task, output string
		want               []float64
	}{
		{"binary.json", TaskBinary, OutputProbability, d.Binary.Prediction},
		{"regression.json", TaskRegression, OutputValue, d.Regression.Prediction},
		{"multiclass.json", TaskMulticlass, OutputProbabilities, d.Multiclass.Prediction},
	} {
		t.Run(tt.file, func(t *testing.T) {
			est, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			bdir := filepath.Join(t.TempDir(), "bundle")
			if err := WriteBundle(bdir, xgbManifest(t, d, tt.task, tt.output), map[string][]byte{DefaultEstimatorFile: est}); err != nil {
				t.Fatal(err)
			}
			mod, err := Load(bdir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mod.Predict(d.record(t))
			if err != nil {
				t.Fatal(err)
			}
			if tt.task == TaskMulticlass {
				checkMulticlassBundle(t, mod, d, tt.want, got)
				return
			}
			if i := firstDiff(got, tt.want, 1e-6); i >= 0 {
				t.Errorf("Predict row %d: Kiln %v, XGBoost %v", i, got[i], tt.want[i])
			}
			rows, err := mod.PredictRows(d.rows())
			if err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(rows, got, 0); i >= 0 {
				t.Errorf("PredictRows row %d: %v, Predict %v", i, rows[i], got[i])
			}
		})
	}
}

// checkMulticlassBundle checks a multi-class bundle's probabilities (Arrow
// batch and JSON rows) against XGBoost's, want, to 1e-6, and its
// predicted classes got against their argmax.
func checkMulticlassBundle(t *testing.T, mod *Model, d *xgbData, want, got []float64) {
	t.Helper()
	k := len(xgbClasses)
	if mod.NumClass() != k {
		t.Fatalf("NumClass %d, want %d", mod.NumClass(), k)
	}
	proba, err := mod.PredictProba(d.record(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(proba) != len(want) {
		t.Fatalf("%d probabilities, XGBoost %d", len(proba), len(want))
	}
	worst := 0.0
	for i := range proba {
		worst = math.Max(worst, math.Abs(proba[i]-want[i]))
	}
	if worst > 1e-6 {
		i := firstDiff(proba, want, 1e-6)
		t.Errorf("PredictProba row %d class %d: Kiln %v, XGBoost %v (largest difference %.3g)", i/k, i%k, proba[i], want[i], worst)
	}
	t.Logf("%d rows × %d classes: largest probability difference from XGBoost %.3g", len(proba)/k, k, worst)
	classes := make([]float64, len(got))
	Argmax(want, k, classes)
	if i := firstDiff(got, classes, 0); i >= 0 {
		t.Errorf("Predict row %d: class %v, XGBoost's most probable %v", i, got[i], classes[i])
	}
	s, err := mod.ScoreRows(d.rows())
	if err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(s.Proba, proba, 0); i >= 0 {
		t.Errorf("ScoreRows probability %d: %v, PredictProba %v", i, s.Proba[i], proba[i])
	}
	if i := firstDiff(s.Values, got, 0); i >= 0 {
		t.Errorf("ScoreRows row %d: class %v, Predict %v", i, s.Values[i], got[i])
	}
	if c := mod.ClassOf(got[0]); c != xgbClasses[int(got[0])] {
		t.Errorf("ClassOf(%v) = %q", got[0], c)
	}
}

// TestXGBoostBundleInterop: XGBoost-trained models in Kiln bundles predict
// what XGBoost predicts (committed fixtures).
func TestXGBoostBundleInterop(t *testing.T) {
	checkXGBoostBundles(t, xgbFixtures)
}

// TestXGBoostBundleInteropLive retrains the fixtures with the local
// XGBoost (when /usr/bin/python3 has it) and checks again.
func TestXGBoostBundleInteropLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running Python")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import xgboost").Run(); err != nil {
		t.Skipf("%s with xgboost is not available (%v); install python3-xgboost to run the live interop tests", python, err)
	}
	dir := t.TempDir()
	if out, err := exec.Command(python, filepath.Join(xgbFixtures, "gen.py"), dir).CombinedOutput(); err != nil {
		t.Fatalf("gen.py: %v\n%s", err, out)
	}
	checkXGBoostBundles(t, dir)
}

// TestXGBoostBundleErrors: task/output/objective consistency and feature
// checks name the file and the fix.
func TestXGBoostBundleErrors(t *testing.T) {
	d := readXGBData(t, filepath.Join(xgbFixtures, "data.json"))
	bin, _ := os.ReadFile(filepath.Join(xgbFixtures, "binary.json"))
	reg, _ := os.ReadFile(filepath.Join(xgbFixtures, "regression.json"))
	multi, _ := os.ReadFile(filepath.Join(xgbFixtures, "multiclass.json"))
	renamed := []byte(strings.Replace(string(reg), `"f_c"`, `"f_z"`, 1))
	fewer := []byte(strings.Replace(string(bin), `"num_feature":"6"`, `"num_feature":"7"`, -1))
	tests := []struct {
		name, task, output string
		est                []byte
		want               string
	}{
		{"regression model, binary task", TaskBinary, OutputProbability, reg, `a xgboost estimator is for task "regression" but the manifest's task is "binary"`},
		{"binary model, regression task", TaskRegression, OutputValue, bin, `a xgboost estimator is for task "binary" but the manifest's task is "regression"`},
		{"value for binary", TaskBinary, OutputValue, bin, `output "value" is not supported for task "binary" (want "probability")`},
		{"feature names", TaskRegression, OutputValue, renamed, `estimator feature 2 is "f_z" but the transforms produce "f_c"`},
		{"num_feature", TaskBinary, OutputProbability, fewer, "it has no feature names and 7 features, but the transforms produce 6"},
		{"multiclass model, binary task", TaskBinary, OutputProbability, multi, `a xgboost estimator is for task "multiclass" but the manifest's task is "binary"`},
		{"binary model, multiclass task", TaskMulticlass, OutputProbabilities, bin, `a xgboost estimator is for task "binary" but the manifest's task is "multiclass"`},
		{"class count", TaskMulticlass, OutputProbabilities, multi, "the estimator has 3 classes but the manifest names 2"},
		{"probability for multiclass", TaskMulticlass, OutputProbability, multi, `output "probability" is not supported for task "multiclass" (want "probabilities")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := xgbManifest(t, d, tt.task, tt.output)
			if tt.name == "class count" {
				m.Classes = m.Classes[:2]
			}
			_, err := New(m, map[string][]byte{DefaultEstimatorFile: tt.est})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestLinear checks the linear estimator's raw values and its bundle.
func TestLinear(t *testing.T) {
	m, _ := fixture(t)
	m.Task, m.Output = TaskRegression, OutputValue
	m.Estimator.Type = EstimatorLinear
	l := Linear{Type: EstimatorLinear, Features: m.Transforms.Features, Intercept: 3}
	for _, f := range l.Features {
		l.Weights = append(l.Weights, weights[f])
	}
	est, _ := json.Marshal(l)
	mod, err := New(m, map[string][]byte{DefaultEstimatorFile: est})
	if err != nil {
		t.Fatal(err)
	}
	x, err := m.Transforms.Apply(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := mod.Predict(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		want := 3.0
		for j, w := range l.Weights {
			want += w * x.Cols[j][i]
		}
		if got[i] != want {
			t.Errorf("row %d: %v, want %v", i, got[i], want)
		}
	}
	if _, err := ParseLinear([]byte(`{"type":"logistic","features":["a"],"weights":[1],"intercept":0}`)); err == nil || !strings.Contains(err.Error(), `type is "logistic", want "linear"`) {
		t.Errorf("ParseLinear of a logistic file: %v", err)
	}
}

// FuzzLoad feeds arbitrary manifests and estimator files to New and Load:
// they must never panic, and a model they accept must predict.
func FuzzLoad(f *testing.F) {
	d := readXGBData(f, filepath.Join(xgbFixtures, "data.json"))
	for _, tt := range []struct{ file, task, output string }{
		{"binary.json", TaskBinary, OutputProbability},
		{"regression.json", TaskRegression, OutputValue},
		{"multiclass.json", TaskMulticlass, OutputProbabilities},
	} {
		est, err := os.ReadFile(filepath.Join(xgbFixtures, tt.file))
		if err != nil {
			f.Fatal(err)
		}
		man, err := json.Marshal(xgbManifest(f, d, tt.task, tt.output))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(man, est)
	}
	m, files := fixture(f)
	man, _ := json.Marshal(m)
	f.Add(man, files[DefaultEstimatorFile])
	m.Task, m.Output, m.Estimator.Type = TaskRegression, OutputValue, EstimatorLinear
	man, _ = json.Marshal(m)
	f.Add(man, []byte(strings.Replace(string(files[DefaultEstimatorFile]), `"logistic"`, `"linear"`, 1)))
	rows := d.rows()
	f.Fuzz(func(t *testing.T, manifest, estimator []byte) {
		var m Manifest
		if err := json.Unmarshal(manifest, &m); err != nil {
			return
		}
		mod, err := New(m, map[string][]byte{m.Estimator.File: estimator})
		if err != nil {
			return
		}
		// Rows may lack the model's inputs; only panics matter here.
		_, _ = mod.PredictRows(rows)
		_, _ = mod.ScoreRows(rows)
		dir := filepath.Join(t.TempDir(), "b")
		if err := WriteBundle(dir, m, map[string][]byte{m.Estimator.File: estimator}); err != nil {
			t.Fatalf("WriteBundle of a model New accepts: %v", err)
		}
		if _, err := Load(dir); err != nil {
			t.Fatalf("Load of a bundle WriteBundle wrote: %v", err)
		}
	})
}
