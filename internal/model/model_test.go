package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// testColumns is a small batch: plan (string, one null), tenure (int64, one
// null), charges (float64), active (bool, one null), churn (the target).
type testColumns struct {
	plan    []any
	tenure  []any
	charges []float64
	active  []any
	churn   []int64
}

var data = testColumns{
	plan:    []any{"basic", "pro", "basic", nil, "enterprise", "pro", "basic", "pro"},
	tenure:  []any{int64(1), int64(3), nil, int64(7), int64(3), int64(10), int64(2), int64(5)},
	charges: []float64{10, 20, 30, 40, 25, 30, 12, 50},
	active:  []any{true, false, true, nil, true, false, true, true},
	churn:   []int64{0, 1, 0, 1, 0, 1, 0, 1},
}

var churnSchema = dataset.Schema{Fields: []dataset.Field{
	{Name: "plan", Type: dataset.String},
	{Name: "tenure", Type: dataset.Int64},
	{Name: "charges", Type: dataset.Float64},
	{Name: "active", Type: dataset.Bool},
	{Name: "churn", Type: dataset.Int64},
}}

// record builds the Arrow record of d.
func (d testColumns) record(t testing.TB) arrow.Record {
	t.Helper()
	mem := memory.NewGoAllocator()
	pb := array.NewStringBuilder(mem)
	tb := array.NewInt64Builder(mem)
	cb := array.NewFloat64Builder(mem)
	ab := array.NewBooleanBuilder(mem)
	yb := array.NewInt64Builder(mem)
	for i := range d.charges {
		if v, ok := d.plan[i].(string); ok {
			pb.Append(v)
		} else {
			pb.AppendNull()
		}
		if v, ok := d.tenure[i].(int64); ok {
			tb.Append(v)
		} else {
			tb.AppendNull()
		}
		cb.Append(d.charges[i])
		if v, ok := d.active[i].(bool); ok {
			ab.Append(v)
		} else {
			ab.AppendNull()
		}
		yb.Append(d.churn[i])
	}
	cols := []arrow.Array{pb.NewArray(), tb.NewArray(), cb.NewArray(), ab.NewArray(), yb.NewArray()}
	rec := array.NewRecord(churnSchema.Arrow(), cols, int64(len(d.charges)))
	for _, c := range cols {
		c.Release()
	}
	t.Cleanup(rec.Release)
	return rec
}

// rows returns d as decoded JSON rows (numbers as float64, nulls absent).
func (d testColumns) rows() []map[string]any {
	out := make([]map[string]any, len(d.charges))
	for i := range out {
		r := map[string]any{"charges": d.charges[i]}
		if d.plan[i] != nil {
			r["plan"] = d.plan[i]
		}
		if v, ok := d.tenure[i].(int64); ok {
			r["tenure"] = float64(v)
		}
		if d.active[i] != nil {
			r["active"] = d.active[i]
		}
		out[i] = r
	}
	return out
}

var cfg = pipelines.PreprocessConfig{
	Target: "churn",
	Transforms: []pipelines.Transform{
		{Kind: "impute", Columns: []string{"*"}},
		{Kind: "standardize", Columns: []string{"tenure", "charges"}},
		{Kind: "onehot", Columns: []string{"plan"}},
	},
}

// weights are arbitrary coefficients for the fixture's features.
var weights = map[string]float64{
	"plan=basic": -0.4, "plan=pro": 0.9, "plan=enterprise": 0.25,
	"tenure": -1.3, "charges": 0.7, "active": 0.35,
}

const intercept = -0.2

// fixture fits the transforms on data and builds a manifest and model.json.
func fixture(t testing.TB) (Manifest, map[string][]byte) {
	t.Helper()
	fitted, err := transform.Fit(cfg.Recipe(), churnSchema, data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	l := Logistic{Type: "logistic", Features: fitted.Features, Intercept: intercept}
	for _, f := range fitted.Features {
		w, ok := weights[f]
		if !ok {
			t.Fatalf("no weight for feature %q", f)
		}
		l.Weights = append(l.Weights, w)
	}
	est, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{
		FormatVersion: 1,
		Name:          "churn",
		Task:          "binary",
		Target:        "churn",
		Inputs:        fitted.Inputs,
		Transforms:    fitted,
		Estimator:     Estimator{Type: "logistic", File: "model.json"},
		Output:        "probability",
		Metrics:       map[string]float64{"auc": 0.91, "logloss": 0.35},
		Lineage: Lineage{
			Pipeline: "churn", RunID: "run-1", SpecHash: "abc", DatasetHash: "def",
			Image: "kiln/trainer:dev", Runtime: "process", TrainerVersion: "0.1.0",
			Params:    map[string]any{"l2": 0.001},
			CreatedBy: "test", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
	return m, map[string][]byte{"model.json": est}
}

func newModel(t testing.TB) *Model {
	t.Helper()
	m, files := fixture(t)
	mod, err := New(m, files)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func TestPredictHandComputed(t *testing.T) {
	mod := newModel(t)
	got, err := mod.Predict(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	// Features by hand: tenure imputed with the median of {1,3,7,3,10,2,5}
	// = 3, then standardized; charges standardized; active imputed with the
	// median of {1,0,1,1,0,1,1} = 1; plan onehot in frequency order
	// basic(3), pro(3), enterprise(1) (ties by value), the null all zeros.
	tenure := []float64{1, 3, 3, 7, 3, 10, 2, 5}
	active := []float64{1, 0, 1, 1, 1, 0, 1, 1}
	st := func(xs []float64) []float64 {
		var m, v float64
		for _, x := range xs {
			m += x
		}
		m /= float64(len(xs))
		for _, x := range xs {
			v += (x - m) * (x - m)
		}
		sd := math.Sqrt(v / float64(len(xs)))
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = (x - m) / sd
		}
		return out
	}
	ts, cs := st(tenure), st(data.charges)
	for i := range got {
		z := intercept + weights["tenure"]*ts[i] + weights["charges"]*cs[i] + weights["active"]*active[i]
		if p, ok := data.plan[i].(string); ok {
			z += weights["plan="+p]
		}
		want := 1 / (1 + math.Exp(-z))
		if math.Abs(got[i]-want) > 1e-14 {
			t.Errorf("row %d: p = %.17g, want %.17g", i, got[i], want)
		}
	}
	if f := mod.FeatureNames(); strings.Join(f, ",") != "plan=basic,plan=pro,plan=enterprise,tenure,charges,active" {
		t.Errorf("features = %v", f)
	}
}

func TestPredictBatchEqualsRows(t *testing.T) {
	mod := newModel(t)
	batch, err := mod.Predict(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := mod.PredictRows(data.rows())
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != len(rows) {
		t.Fatalf("%d batch predictions, %d row predictions", len(batch), len(rows))
	}
	for i := range batch {
		if math.Float64bits(batch[i]) != math.Float64bits(rows[i]) {
			t.Errorf("row %d: Predict %.17g, PredictRows %.17g", i, batch[i], rows[i])
		}
	}
	// One row at a time, as serving does, gives the same bits too.
	for i, r := range data.rows() {
		one, err := mod.PredictRows([]map[string]any{r})
		if err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(one[0]) != math.Float64bits(batch[i]) {
			t.Errorf("row %d alone: %.17g, in the batch %.17g", i, one[0], batch[i])
		}
	}
}

func TestPredictErrors(t *testing.T) {
	// Without imputing active, a null active is NaN and must be refused.
	noImpute := cfg
	noImpute.Transforms = []pipelines.Transform{{Kind: "onehot", Columns: []string{"*"}}, {Kind: "impute", Columns: []string{"tenure"}}}
	fitted, err := transform.Fit(noImpute.Recipe(), churnSchema, data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	l := Logistic{Type: "logistic", Features: fitted.Features, Weights: make([]float64, len(fitted.Features))}
	x, err := fitted.Apply(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	err = l.PredictMatrix(x, make([]float64, x.Rows))
	if err == nil || !strings.Contains(err.Error(), `feature "active" is missing (NaN) in row 3`) {
		t.Errorf("err = %v, want a NaN error naming active and row 3", err)
	}

	mod := newModel(t)
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"short output", func() error {
			x, _ := mod.Manifest.Transforms.Apply(data.record(t))
			return mod.PredictMatrix(x, make([]float64, 2))
		}, "2 output slots for 8 rows"},
		{"wrong features", func() error {
			x, _ := mod.Manifest.Transforms.Apply(data.record(t))
			y := *x
			y.Features = append([]string(nil), x.Features...)
			y.Features[3] = "tenure_days"
			return mod.PredictMatrix(&y, make([]float64, y.Rows))
		}, `matrix feature 3 is "tenure_days", the estimator wants "tenure"`},
		{"infinite features", func() error {
			x, _ := mod.Manifest.Transforms.Apply(data.record(t))
			x.Cols[3][5], x.Cols[4][5] = math.Inf(-1), math.Inf(-1) // -1.3·-Inf + 0.7·-Inf
			return mod.PredictMatrix(x, make([]float64, x.Rows))
		}, "the score of row 5 is NaN (infinite feature values)"},
		{"row type", func() error {
			_, err := mod.PredictRows([]map[string]any{{"plan": "pro"}, {"plan": 3.0}})
			return err
		}, `row 1: column "plan": want a string`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestBundleRoundTrip(t *testing.T) {
	m, files := fixture(t)
	dir := filepath.Join(t.TempDir(), "models", "churn", "v1")
	if err := WriteBundle(dir, m, files); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != dir {
		t.Errorf("Dir = %q, want %q", got.Dir, dir)
	}
	// Params decode as float64 like any JSON number; compare via JSON.
	a, _ := json.Marshal(m)
	b, _ := json.Marshal(got.Manifest)
	if !bytes.Equal(a, b) {
		t.Errorf("manifest changed in the round trip:\n%s\n%s", a, b)
	}
	if !reflect.DeepEqual(got.Manifest.Transforms, m.Transforms) {
		t.Errorf("transforms changed in the round trip")
	}
	want, err := newModel(t).Predict(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := got.Predict(data.record(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float64bits(p[i]) != math.Float64bits(want[i]) {
			t.Errorf("row %d: loaded %.17g, original %.17g", i, p[i], want[i])
		}
	}
	// The bundle holds exactly the manifest and the estimator file.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "manifest.json,model.json" {
		t.Errorf("bundle holds %v", names)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Errorf("bundle dir mode %v, want 0755", fi.Mode().Perm())
	}
	// The manifest is stable: compare with the golden file.
	manifest, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "manifest.json")
	if *update {
		if err := os.WriteFile(golden, manifest, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantManifest, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(manifest, wantManifest) {
		t.Errorf("manifest.json differs from %s (go test -update rewrites it):\n%s", golden, manifest)
	}
}

// leftovers lists the entries of dir other than keep.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWriteBundleAtomic(t *testing.T) {
	m, files := fixture(t)
	bad := m
	bad.FormatVersion = 0
	badFiles := map[string][]byte{"model.json": files["model.json"], "../escape": []byte("x")}
	tests := []struct {
		name     string
		m        Manifest
		files    map[string][]byte
		existing bool
		hook     error
		want     string
	}{
		{name: "exists", m: m, files: files, existing: true, want: "already exists"},
		{name: "late failure", m: m, files: files, hook: errors.New("disk on fire"), want: "disk on fire"},
		{name: "invalid manifest", m: bad, files: files, want: "format_version 0 is not supported"},
		{name: "missing estimator", m: m, files: map[string][]byte{}, want: "estimator file model.json is missing"},
		{name: "bad file name", m: m, files: badFiles, want: `"../escape" is not a plain file name`},
		{name: "NaN metric", m: withMetric(m, math.NaN()), files: files, want: "encoding manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "v1")
			if tc.existing {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.hook != nil {
				beforeRename = func(string) error { return tc.hook }
				defer func() { beforeRename = func(string) error { return nil } }()
			}
			err := WriteBundle(dir, tc.m, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			var keep []string
			if tc.existing {
				keep = []string{"v1"}
				if left := leftovers(t, dir); len(left) != 0 {
					t.Errorf("the existing bundle dir was changed: %v", left)
				}
			}
			if left := leftovers(t, parent, keep...); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestWriteBundleIgnoresParentSyncFailure checks that a failure to sync the
// parent directory after the rename does not fail WriteBundle: the bundle is
// in place, and an error would make a retry fail with "already exists".
func TestWriteBundleIgnoresParentSyncFailure(t *testing.T) {
	m, files := fixture(t)
	syncParent = func(string) error { return errors.New("sync not supported") }
	defer func() { syncParent = syncDir }()
	dir := filepath.Join(t.TempDir(), "v1")
	if err := WriteBundle(dir, m, files); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	if _, err := Load(dir); err != nil {
		t.Errorf("Load of the written bundle: %v", err)
	}
}

// TestBundleWithoutTarget: a bundle that only scores need not name its
// target column.
func TestBundleWithoutTarget(t *testing.T) {
	m, files := fixture(t)
	m.Target = ""
	dir := filepath.Join(t.TempDir(), "b")
	if err := WriteBundle(dir, m, files); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loaded.PredictRows([]map[string]any{{"plan": "pro", "tenure": 3.0, "charges": 20.0, "active": true}}); err != nil {
		t.Errorf("predicting with a bundle without target: %v", err)
	}
}

func withMetric(m Manifest, v float64) Manifest {
	m.Metrics = map[string]float64{"auc": v}
	return m
}

func TestLoadErrors(t *testing.T) {
	m, files := fixture(t)
	edit := func(field string, v any) func(map[string]any) {
		return func(j map[string]any) { j[field] = v }
	}
	tests := []struct {
		name     string
		manifest func(map[string]any) // edits the decoded manifest
		model    string               // replaces model.json when set
		remove   string               // file to delete
		file     string               // the file the error must name
		want     string
	}{
		{name: "format version", manifest: edit("format_version", 2), file: "manifest.json", want: "format_version 2 is not supported (this Kiln reads 1)"},
		{name: "task", manifest: edit("task", "ranking"), file: "manifest.json", want: `task "ranking" is not supported`},
		{name: "output", manifest: edit("output", "label"), file: "manifest.json", want: `output "label" is not supported for task "binary"`},
		{name: "task and output", manifest: edit("task", "regression"), file: "manifest.json", want: `output "probability" is not supported for task "regression" (want "value")`},
		{name: "estimator type", manifest: edit("estimator", map[string]any{"type": "forest", "file": "model.json"}), file: "model.json", want: `unknown estimator type "forest"`},
		{name: "estimator task", manifest: edit("estimator", map[string]any{"type": "linear", "file": "model.json"}), model: `{"type":"linear","features":["plan=basic","plan=pro","plan=enterprise","tenure","charges","active"],"weights":[1,2,3,4,5,6],"intercept":0}`, file: "model.json", want: `a linear estimator is for task "regression" but the manifest's task is "binary"`},
		{name: "xgboost for logistic", manifest: edit("estimator", map[string]any{"type": "xgboost", "file": "model.json"}), file: "model.json", want: `no "learner" object`},
		{name: "estimator path", manifest: edit("estimator", map[string]any{"type": "logistic", "file": "../model.json"}), file: "manifest.json", want: `"../model.json" is not a plain file name`},
		{name: "no transforms", manifest: edit("transforms", nil), file: "manifest.json", want: "no transforms"},
		{name: "inputs differ", manifest: edit("inputs", []any{map[string]any{"name": "plan", "type": "string"}}), file: "manifest.json", want: "inputs differ from transforms.inputs"},
		{name: "not json", manifest: nil, model: "", remove: "", file: "manifest.json", want: "invalid character"},
		{name: "feature count", model: `{"type":"logistic","features":["tenure"],"weights":[1],"intercept":0}`, file: "model.json", want: "the estimator has 1 features but the transforms produce 6"},
		{name: "feature names", model: `{"type":"logistic","features":["plan=pro","plan=basic","plan=enterprise","tenure","charges","active"],"weights":[1,2,3,4,5,6],"intercept":0}`, file: "model.json", want: `estimator feature 0 is "plan=pro" but the transforms produce "plan=basic"`},
		{name: "weight count", model: `{"type":"logistic","features":["a","b"],"weights":[1],"intercept":0}`, file: "model.json", want: "1 weights for 2 features"},
		{name: "unknown field", model: `{"type":"logistic","features":["a"],"weights":[1],"bias":0}`, file: "model.json", want: `unknown field "bias"`},
		{name: "wrong type", model: `{"type":"xgboost","features":["a"],"weights":[1],"intercept":0}`, file: "model.json", want: `type is "xgboost", want "logistic"`},
		{name: "missing estimator", remove: "model.json", file: "model.json", want: "no such file"},
		{name: "missing manifest", remove: "manifest.json", file: "manifest.json", want: "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if err := WriteBundle(dir, m, files); err != nil {
				t.Fatal(err)
			}
			mpath := filepath.Join(dir, ManifestFile)
			if tc.model != "" {
				if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(tc.model), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tc.manifest != nil:
				raw, err := os.ReadFile(mpath)
				if err != nil {
					t.Fatal(err)
				}
				var j map[string]any
				if err := json.Unmarshal(raw, &j); err != nil {
					t.Fatal(err)
				}
				tc.manifest(j)
				raw, _ = json.Marshal(j)
				if err := os.WriteFile(mpath, raw, 0o644); err != nil {
					t.Fatal(err)
				}
			case tc.model != "":
			case tc.remove != "":
				if err := os.Remove(filepath.Join(dir, tc.remove)); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(mpath, []byte("{not json"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Errorf("err = %v, want one naming %s and containing %q", err, tc.file, tc.want)
			}
		})
	}
}

// benchData builds n rows × d float64 features (a few nulls) and a model that
// imputes and standardizes them all.
func benchData(b *testing.B, n, d int) (*Model, arrow.Record) {
	b.Helper()
	mem := memory.NewGoAllocator()
	fields := make([]dataset.Field, d+1)
	cols := make([]arrow.Array, d+1)
	for j := 0; j < d; j++ {
		fields[j] = dataset.Field{Name: fmt.Sprintf("x%02d", j), Type: dataset.Float64}
		fb := array.NewFloat64Builder(mem)
		fb.Reserve(n)
		for i := 0; i < n; i++ {
			if (i+j)%1000 == 0 {
				fb.AppendNull()
			} else {
				fb.UnsafeAppend(float64((i*(j+7))%1009) / 100)
			}
		}
		cols[j] = fb.NewArray()
		fb.Release()
	}
	fields[d] = dataset.Field{Name: "y", Type: dataset.Int64}
	yb := array.NewInt64Builder(mem)
	for i := 0; i < n; i++ {
		yb.Append(int64(i % 2))
	}
	cols[d] = yb.NewArray()
	sc := dataset.Schema{Fields: fields}
	rec := array.NewRecord(sc.Arrow(), cols, int64(n))
	b.Cleanup(rec.Release)
	fitted, err := transform.Fit(transform.Recipe{Target: "y", Transforms: []transform.Spec{
		{Kind: "impute", Columns: []string{"*"}, Strategy: "mean"},
		{Kind: "standardize", Columns: []string{"*"}},
	}}, sc, rec)
	if err != nil {
		b.Fatal(err)
	}
	l := Logistic{Type: "logistic", Features: fitted.Features, Intercept: 0.1}
	for j := range fitted.Features {
		l.Weights = append(l.Weights, float64(j%5)/10-0.2)
	}
	est, _ := json.Marshal(l)
	mod, err := New(Manifest{
		FormatVersion: 1, Task: "binary", Target: "y", Inputs: fitted.Inputs, Transforms: fitted,
		Estimator: Estimator{Type: "logistic", File: "model.json"}, Output: "probability",
	}, map[string][]byte{"model.json": est})
	if err != nil {
		b.Fatal(err)
	}
	return mod, rec
}

// BenchmarkPredict scores 1M rows × 30 features from an Arrow record:
// transforms (impute, standardize) plus the logistic estimator.
func BenchmarkPredict(b *testing.B) {
	const n, d = 1_000_000, 30
	mod, rec := benchData(b, n, d)
	b.ResetTimer()
	for b.Loop() {
		if _, err := mod.Predict(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPredictMatrix is the estimator alone on 1M rows × 30 features.
func BenchmarkPredictMatrix(b *testing.B) {
	const n, d = 1_000_000, 30
	mod, rec := benchData(b, n, d)
	x, err := mod.Manifest.Transforms.Apply(rec)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float64, n)
	b.ResetTimer()
	for b.Loop() {
		if err := mod.PredictMatrix(x, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestIdentityRows checks PredictRows' shortcut for transforms without
// steps over numeric inputs (identityRows) against ApplyRows: the same
// matrix for numbers, nulls and absent values; no shortcut for other
// values (ApplyRows converts or rejects them) or other transforms.
func TestIdentityRows(t *testing.T) {
	inputs := []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "b", Type: dataset.Int64}, {Name: "c", Type: dataset.Float64}}
	id := &transform.Fitted{Inputs: inputs, Features: []string{"a", "b", "c"}}
	if err := id.Validate(); err != nil {
		t.Fatal(err)
	}
	rows := []map[string]any{
		{"a": 1.5, "b": 3.0, "c": -0.0},
		{"a": nil, "b": 2.0},
		{"a": math.Inf(1), "b": nil, "c": 7.25, "extra": "x"},
		nil,
	}
	got, ok := identityRows(id, rows)
	if !ok {
		t.Fatal("no shortcut for numbers, nulls and absent values")
	}
	want, err := id.ApplyRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != want.Rows || !slices.Equal(got.Features, want.Features) || len(got.Cols) != len(want.Cols) {
		t.Fatalf("matrix %d rows %v, ApplyRows %d rows %v", got.Rows, got.Features, want.Rows, want.Features)
	}
	for j := range want.Cols {
		for i := range want.Cols[j] {
			if math.Float64bits(got.Cols[j][i]) != math.Float64bits(want.Cols[j][i]) {
				t.Errorf("row %d feature %d: %v, ApplyRows %v", i, j, got.Cols[j][i], want.Cols[j][i])
			}
		}
	}
	for _, v := range []any{3, "3", true, []any{1.0}} {
		if _, ok := identityRows(id, []map[string]any{{"a": 1.0, "b": v}}); ok {
			t.Errorf("shortcut taken for %T", v)
		}
	}
	withBool := &transform.Fitted{Inputs: []dataset.Field{{Name: "a", Type: dataset.Bool}}, Features: []string{"a"}}
	if _, ok := identityRows(withBool, []map[string]any{{"a": 1.0}}); ok {
		t.Error("shortcut taken for a bool input")
	}
	if _, ok := identityRows(newModel(t).Manifest.Transforms, data.rows()); ok {
		t.Error("shortcut taken for transforms with steps")
	}
}
