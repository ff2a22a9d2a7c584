package model

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/transform"
)

func TestParseMultinomial(t *testing.T) {
	good := `{"type":"multinomial","features":["a","b"],"weights":[[1,-1],[0.5,2],[0,0]],"intercepts":[0.1,-0.2,0.3]}`
	l, err := ParseMultinomial([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if l.NumClass() != 3 || strings.Join(l.FeatureNames(), ",") != "a,b" || l.Weights[1][1] != 2 || l.Intercepts[2] != 0.3 {
		t.Errorf("parsed %+v", l)
	}
	tests := []struct {
		name string
		json string
		want string
	}{
		{"not JSON", `{"type":`, "decoding multinomial model"},
		{"unknown field", `{"type":"multinomial","features":["a"],"weights":[[1],[2]],"intercepts":[0,0],"classes":["x","y"]}`, `unknown field "classes"`},
		{"data after the object", good + ` {}`, "data after the JSON object"},
		{"wrong type", strings.Replace(good, `"multinomial"`, `"logistic"`, 1), `type is "logistic", want "multinomial"`},
		{"no type", `{"features":["a"],"weights":[[1],[2]],"intercepts":[0,0]}`, `type is "", want "multinomial"`},
		{"no features", `{"type":"multinomial","features":[],"weights":[[],[]],"intercepts":[0,0]}`, "no features"},
		{"empty feature", `{"type":"multinomial","features":["a",""],"weights":[[1,1],[2,2]],"intercepts":[0,0]}`, "features[1] is empty"},
		{"feature twice", `{"type":"multinomial","features":["a","a"],"weights":[[1,1],[2,2]],"intercepts":[0,0]}`, `feature "a" is listed twice`},
		{"one class", `{"type":"multinomial","features":["a"],"weights":[[1]],"intercepts":[0]}`, "1 intercepts: a multinomial model has one per class and at least 2 classes"},
		{"no intercepts", `{"type":"multinomial","features":["a"],"weights":[[1],[2]]}`, "0 intercepts"},
		{"fewer weight rows than classes", `{"type":"multinomial","features":["a"],"weights":[[1],[2]],"intercepts":[0,0,0]}`, "2 weight rows for 3 classes"},
		{"more weight rows than classes", `{"type":"multinomial","features":["a"],"weights":[[1],[2],[3]],"intercepts":[0,0]}`, "3 weight rows for 2 classes"},
		{"short weight row", `{"type":"multinomial","features":["a","b"],"weights":[[1,2],[3]],"intercepts":[0,0]}`, "weights[1] has 1 weights for 2 features"},
		{"long weight row", `{"type":"multinomial","features":["a"],"weights":[[1,2],[3]],"intercepts":[0,0]}`, "weights[0] has 2 weights for 1 features"},
		{"weights not a matrix", `{"type":"multinomial","features":["a"],"weights":[1,2],"intercepts":[0,0]}`, "cannot unmarshal number"},
		{"overflowing weight", `{"type":"multinomial","features":["a"],"weights":[[1e400],[2]],"intercepts":[0,0]}`, "decoding multinomial model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseMultinomial([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMultinomial = %+v, %v; want an error containing %q", l, err, tt.want)
			}
		})
	}
	// JSON cannot spell NaN or ±Inf; Validate still refuses them in a
	// Multinomial built in Go.
	for _, tt := range []struct {
		name string
		edit func(*Multinomial)
		want string
	}{
		{"NaN weight", func(l *Multinomial) { l.Weights[2][1] = math.NaN() }, `weights[2] of "b" is NaN`},
		{"infinite weight", func(l *Multinomial) { l.Weights[0][0] = math.Inf(-1) }, `weights[0] of "a" is -Inf`},
		{"infinite intercept", func(l *Multinomial) { l.Intercepts[1] = math.Inf(1) }, "intercepts[1] is +Inf"},
		{"NaN intercept", func(l *Multinomial) { l.Intercepts[2] = math.NaN() }, "intercepts[2] is NaN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseMultinomial([]byte(good))
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(l)
			if err := l.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// handMultinomial is a 3-class model of features a and b whose scores are
// easy to compute by hand.
func handMultinomial() *Multinomial {
	return &Multinomial{
		Type:       EstimatorMultinomial,
		Features:   []string{"a", "b"},
		Weights:    [][]float64{{1, -1}, {0.5, 2}, {0, 0}},
		Intercepts: []float64{0.1, -0.2, 0.3},
	}
}

// abMatrix builds a feature matrix of columns a and b.
func abMatrix(a, b []float64) *transform.Matrix {
	return &transform.Matrix{Rows: len(a), Features: []string{"a", "b"}, Cols: [][]float64{a, b}}
}

func TestMultinomialPredictProba(t *testing.T) {
	l := handMultinomial()
	x := abMatrix([]float64{0, 1, -3, 2}, []float64{0, 2, 0.5, 0.25})
	// Scores z_c = b_c + w_c·(a, b):
	//   (0, 0):     0.1,              -0.2,                0.3
	//   (1, 2):     0.1+1-2 = -0.9,   -0.2+0.5+4 = 4.3,    0.3
	//   (-3, 0.5):  0.1-3-0.5 = -3.4, -0.2-1.5+1 = -0.7,   0.3
	//   (2, 0.25):  0.1+2-0.25 = 1.85, -0.2+1+0.5 = 1.3,   0.3
	z := [][]float64{{0.1, -0.2, 0.3}, {-0.9, 4.3, 0.3}, {-3.4, -0.7, 0.3}, {1.85, 1.3, 0.3}}
	wantClass := []float64{2, 1, 2, 0}
	got := make([]float64, 4*3)
	if err := l.PredictProba(x, got); err != nil {
		t.Fatal(err)
	}
	for i, zi := range z {
		var s float64
		for _, v := range zi {
			s += math.Exp(v)
		}
		var rowSum float64
		for c, v := range zi {
			want := math.Exp(v) / s
			if g := got[i*3+c]; math.Abs(g-want) > 1e-15*want {
				t.Errorf("row %d class %d: p = %.17g, want %.17g", i, c, g, want)
			}
			rowSum += got[i*3+c]
		}
		if math.Abs(rowSum-1) > 2e-16 {
			t.Errorf("row %d sums to %.17g", i, rowSum)
		}
	}
	classes := make([]float64, 4)
	if err := l.PredictMatrix(x, classes); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(classes, wantClass) {
		t.Errorf("PredictMatrix = %v, want %v", classes, wantClass)
	}
	// A row's probabilities do not depend on the batch.
	for i := range 4 {
		one := make([]float64, 3)
		if err := l.PredictProba(abMatrix([]float64{x.Cols[0][i]}, []float64{x.Cols[1][i]}), one); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one, got[i*3:i*3+3]) {
			t.Errorf("row %d alone: %v, in the batch %v", i, one, got[i*3:i*3+3])
		}
	}
}

// TestMultinomialExtremeMargins: scores far beyond exp's range (±1e300, or
// hundreds apart) give finite probabilities summing to 1; a score beyond
// ±MaxFloat64 from finite features is an error.
func TestMultinomialExtremeMargins(t *testing.T) {
	l := &Multinomial{Type: EstimatorMultinomial, Features: []string{"a", "b"}, Weights: [][]float64{{1, 0}, {-1, 0}, {0, 1}}, Intercepts: []float64{0, 0, 0}}
	tests := []struct {
		name string
		a, b float64
		want []float64
	}{
		{"huge", 1e300, 0, []float64{1, 0, 0}},
		{"huge negative", -1e300, -1e300, []float64{0, 1, 0}},
		{"exp would overflow", 800, 801, []float64{1 / (1 + math.E), 0, math.E / (1 + math.E)}},
		{"exp would underflow", -800, -1000, []float64{0, 1, 0}},
		{"max float", math.MaxFloat64, math.MaxFloat64, []float64{0.5, 0, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]float64, 3)
			if err := l.PredictProba(abMatrix([]float64{tt.a}, []float64{tt.b}), got); err != nil {
				t.Fatal(err)
			}
			var s float64
			for c, p := range got {
				if math.IsNaN(p) || math.Abs(p-tt.want[c]) > 1e-15 {
					t.Errorf("p = %v, want %v", got, tt.want)
				}
				s += p
			}
			if math.Abs(s-1) > 2e-16 {
				t.Errorf("probabilities %v sum to %v", got, s)
			}
		})
	}
	over := &Multinomial{Type: EstimatorMultinomial, Features: []string{"a", "b"}, Weights: [][]float64{{1, 1}, {0, 0}}, Intercepts: []float64{0, 0}}
	err := over.PredictProba(abMatrix([]float64{0, math.MaxFloat64}, []float64{0, math.MaxFloat64}), make([]float64, 4))
	if err == nil || !strings.Contains(err.Error(), "the score of row 1 overflows") {
		t.Errorf("err = %v, want the score of row 1 overflows", err)
	}
}

func TestMultinomialPredictErrors(t *testing.T) {
	l := handMultinomial()
	good := func() *transform.Matrix { return abMatrix([]float64{0, 1, 2}, []float64{3, 4, 5}) }
	tests := []struct {
		name string
		x    *transform.Matrix
		out  int
		want string
	}{
		{"NaN feature", func() *transform.Matrix { x := good(); x.Cols[1][2] = math.NaN(); return x }(), 9, `feature "b" is missing (NaN) in row 2; impute it in preprocess`},
		{"infinite feature", func() *transform.Matrix { x := good(); x.Cols[0][1] = math.Inf(1); return x }(), 9, `feature "a" is infinite (+Inf) in row 1`},
		{"infinite feature, zero weight", func() *transform.Matrix {
			x := good()
			x.Cols[0][0] = math.Inf(-1)
			return x
		}(), 9, `feature "a" is infinite (-Inf) in row 0`},
		{"output too short", good(), 8, "8 probability slots for 3 rows of 3 classes"},
		{"output one per row", good(), 3, "3 probability slots for 3 rows of 3 classes"},
		{"wrong feature", &transform.Matrix{Rows: 1, Features: []string{"a", "c"}, Cols: [][]float64{{1}, {2}}}, 3, `matrix feature 1 is "c", the estimator wants "b"`},
		{"too few features", &transform.Matrix{Rows: 1, Features: []string{"a"}, Cols: [][]float64{{1}}}, 3, "the matrix has 1 features, the estimator wants 2"},
		{"short column", &transform.Matrix{Rows: 2, Features: []string{"a", "b"}, Cols: [][]float64{{1, 2}, {2}}}, 6, `feature "b" has 1 values for 2 rows`},
		{"nil matrix", nil, 3, "nil feature matrix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.PredictProba(tt.x, make([]float64, tt.out))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PredictProba err = %v, want one containing %q", err, tt.want)
			}
			if tt.x == nil || tt.out != 9 {
				return
			}
			if err := l.PredictMatrix(tt.x, make([]float64, 3)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PredictMatrix err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := l.PredictMatrix(good(), make([]float64, 9)); err == nil || !strings.Contains(err.Error(), "9 output slots for 3 rows") {
		t.Errorf("PredictMatrix with K slots per row: err = %v", err)
	}
}

// mnSchema is the inputs of the multiclass Model tests: three float64
// features and a target.
var mnSchema = dataset.Schema{Fields: []dataset.Field{
	{Name: "a", Type: dataset.Float64},
	{Name: "b", Type: dataset.Float64},
	{Name: "c", Type: dataset.Float64},
	{Name: "y", Type: dataset.Float64},
}}

// mnRecord builds a record of schema s from columns (same order).
func mnRecord(t testing.TB, s dataset.Schema, cols [][]float64) arrow.Record {
	t.Helper()
	b := array.NewRecordBuilder(memory.NewGoAllocator(), s.Arrow())
	defer b.Release()
	for j, col := range cols {
		b.Field(j).(*array.Float64Builder).AppendValues(col, nil)
	}
	rec := b.NewRecord()
	t.Cleanup(rec.Release)
	return rec
}

// mnManifest fits transforms (standardize b, impute c with its median)
// on rec and returns a multiclass manifest with the given classes.
func mnManifest(t testing.TB, rec arrow.Record, classes []string) Manifest {
	t.Helper()
	fitted, err := transform.Fit(transform.Recipe{Target: "y", Transforms: []transform.Spec{
		{Kind: "impute", Columns: []string{"c"}},
		{Kind: "standardize", Columns: []string{"b"}},
	}}, mnSchema, rec)
	if err != nil {
		t.Fatal(err)
	}
	return Manifest{
		FormatVersion: FormatVersion, Name: "multi", Task: TaskMulticlass, Target: "y", Classes: classes,
		Inputs: fitted.Inputs, Transforms: fitted,
		Estimator: Estimator{Type: EstimatorMultinomial, File: DefaultEstimatorFile},
		Output:    OutputProbabilities,
	}
}

func TestMultinomialModel(t *testing.T) {
	a := []float64{0.5, -1, 2, 0, 1.5}
	b := []float64{10, 20, 30, 40, 50}
	c := []float64{1, math.NaN(), 3, -2, 0}
	rec := mnRecord(t, mnSchema, [][]float64{a, b, c, {0, 1, 2, 3, 0}})
	est := &Multinomial{Type: EstimatorMultinomial, Features: []string{"a", "b", "c"},
		Weights:    [][]float64{{1, 0.5, -0.25}, {-0.5, 1, 0.75}, {0.25, -1, 0}, {0, 0, 0.5}},
		Intercepts: []float64{0.2, -0.1, 0, 0.3}}
	file, err := json.Marshal(est)
	if err != nil {
		t.Fatal(err)
	}
	classes := []string{"setosa", "versicolor", "virginica", "other"}
	mod, err := New(mnManifest(t, rec, classes), map[string][]byte{DefaultEstimatorFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if k := mod.NumClass(); k != 4 {
		t.Fatalf("NumClass = %d, want 4", k)
	}
	got, err := mod.PredictProba(rec)
	if err != nil {
		t.Fatal(err)
	}
	// By hand: c's NaN imputed with the median of {1, 3, -2, 0} = 0.5; b
	// standardized with mean 30 and population sd √200.
	want := make([]float64, 0, 20)
	wantClass := make([]float64, 0, 5)
	for i := range a {
		ci := c[i]
		if math.IsNaN(ci) {
			ci = 0.5
		}
		x := []float64{a[i], (b[i] - 30) / math.Sqrt(200), ci}
		z := make([]float64, 4)
		var s float64
		best := 0
		for k := range z {
			z[k] = est.Intercepts[k]
			for j, v := range x {
				z[k] += est.Weights[k][j] * v
			}
			s += math.Exp(z[k])
			if z[k] > z[best] {
				best = k
			}
		}
		for k := range z {
			want = append(want, math.Exp(z[k])/s)
		}
		wantClass = append(wantClass, float64(best))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-14 {
			t.Errorf("PredictProba[%d] = %.17g, want %.17g", i, got[i], want[i])
		}
	}
	pred, err := mod.Predict(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pred, wantClass) {
		t.Errorf("Predict = %v, want the most probable classes %v", pred, wantClass)
	}
	// JSON rows (c's NaN as a missing key) score the same bits.
	rows := make([]map[string]any, len(a))
	for i := range rows {
		rows[i] = map[string]any{"a": a[i], "b": b[i], "ignored": "x"}
		if !math.IsNaN(c[i]) {
			rows[i]["c"] = c[i]
		}
	}
	sc, err := mod.ScoreRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sc.Proba, got) || !slices.Equal(sc.Values, wantClass) {
		t.Errorf("ScoreRows = %+v, want Proba %v and Values %v", sc, got, wantClass)
	}
	if pr, err := mod.PredictRows(rows); err != nil || !slices.Equal(pr, wantClass) {
		t.Errorf("PredictRows = %v, %v", pr, err)
	}
	for i, k := range wantClass {
		if name := mod.ClassOf(k); name != classes[int(k)] {
			t.Errorf("row %d: ClassOf(%v) = %q", i, k, name)
		}
	}
	for _, bad := range []float64{-1, 4, 1.5, math.NaN()} {
		if name := mod.ClassOf(bad); name != "" {
			t.Errorf("ClassOf(%v) = %q, want \"\"", bad, name)
		}
	}
	rows[3]["a"] = "high"
	if _, err := mod.ScoreRows(rows); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("ScoreRows with a string for a number: err = %v", err)
	}

	// The bundle round trip keeps the classes.
	dir := t.TempDir() + "/bundle"
	if err := WriteBundle(dir, mod.Manifest, map[string][]byte{DefaultEstimatorFile: file}); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded.Manifest.Classes, classes) || loaded.NumClass() != 4 {
		t.Errorf("loaded classes %v, NumClass %d", loaded.Manifest.Classes, loaded.NumClass())
	}
	if again, err := loaded.PredictProba(rec); err != nil || !slices.Equal(again, got) {
		t.Errorf("loaded PredictProba = %v, %v", again, err)
	}
}

func TestMultinomialModelRejects(t *testing.T) {
	rec := mnRecord(t, mnSchema, [][]float64{{1, 2}, {3, 4}, {5, 6}, {0, 1}})
	est := func(k int) []byte {
		l := Multinomial{Type: EstimatorMultinomial, Features: []string{"a", "b", "c"}}
		for range k {
			l.Weights = append(l.Weights, []float64{1, 2, 3})
			l.Intercepts = append(l.Intercepts, 0)
		}
		b, _ := json.Marshal(l)
		return b
	}
	logistic, _ := json.Marshal(Logistic{Type: EstimatorLogistic, Features: []string{"a", "b", "c"}, Weights: []float64{1, 2, 3}})
	three := []string{"x", "y", "z"}
	tests := []struct {
		name string
		edit func(*Manifest)
		file []byte
		want string
	}{
		{"fewer classes than the estimator", func(m *Manifest) { m.Classes = []string{"x", "y"} }, est(3), "the estimator has 3 classes but the manifest names 2"},
		{"more classes than the estimator", func(m *Manifest) { m.Classes = []string{"w", "x", "y", "z"} }, est(3), "the estimator has 3 classes but the manifest names 4"},
		{"no classes", func(m *Manifest) { m.Classes = nil }, est(3), `task "multiclass" needs classes`},
		{"class twice", func(m *Manifest) { m.Classes = []string{"x", "y", "x"} }, est(3), `class "x" is listed twice`},
		{"empty class", func(m *Manifest) { m.Classes = []string{"x", "", "z"} }, est(3), "classes[1] is empty"},
		{"single probability output", func(m *Manifest) { m.Output = OutputProbability }, est(3), `output "probability" is not supported for task "multiclass"`},
		{"binary task", func(m *Manifest) { m.Task, m.Output, m.Classes = TaskBinary, OutputProbability, nil }, est(3), `a multinomial estimator is for task "multiclass" but the manifest's task is "binary"`},
		{"classes on a binary task", func(m *Manifest) { m.Task, m.Output = TaskBinary, OutputProbability }, logistic, `classes are listed but task "binary" has none`},
		{"logistic estimator", func(m *Manifest) { m.Estimator.Type = EstimatorLogistic }, logistic, `a logistic estimator is for task "binary"`},
		{"estimator features", func(m *Manifest) {}, bytes.Replace(est(3), []byte(`"c"`), []byte(`"d"`), 1), `estimator feature 2 is "d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mnManifest(t, rec, three)
			tt.edit(&m)
			mod, err := New(m, map[string][]byte{DefaultEstimatorFile: tt.file})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, %v; want an error containing %q", mod, err, tt.want)
			}
		})
	}
	// A binary model has no class probabilities.
	bin := newModel(t)
	if k := bin.NumClass(); k != 0 {
		t.Errorf("binary NumClass = %d", k)
	}
	if _, err := bin.PredictProba(data.record(t)); err == nil || !strings.Contains(err.Error(), "a binary model has no class probabilities") {
		t.Errorf("binary PredictProba err = %v", err)
	}
	if s, err := bin.ScoreRows(data.rows()); err != nil || s.Proba != nil || len(s.Values) != len(data.charges) {
		t.Errorf("binary ScoreRows = %+v, %v", s, err)
	}
}

// mnWineFile is the wine data set (data/README.md).
const mnWineFile = "../../data/wine.csv"

// mnReadWine returns wine's 13 feature names and columns and the cultivar
// as class indexes.
func mnReadWine(t *testing.T) (names []string, cols [][]float64, y []float64) {
	t.Helper()
	f, err := os.Open(mnWineFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	names = recs[0][:13]
	cols = make([][]float64, 13)
	for i, r := range recs[1:] {
		for j := range 13 {
			v, err := strconv.ParseFloat(r[j], 64)
			if err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			cols[j] = append(cols[j], v)
		}
		k, err := strconv.Atoi(strings.TrimPrefix(r[13], "class_"))
		if err != nil {
			t.Fatalf("row %d: cultivar %q", i, r[13])
		}
		y = append(y, float64(k))
	}
	return names, cols, y
}

// mnWineScript fits scikit-learn's StandardScaler then
// LogisticRegression(multi_class="multinomial") on wine and prints the
// scaled rows, the coefficients and predict_proba.
const mnWineScript = `
import csv, json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

with open(sys.argv[1]) as f:
    rows = list(csv.reader(f))[1:]
X = np.array([[float(v) for v in r[:13]] for r in rows])
y = np.array([int(r[13].removeprefix("class_")) for r in rows])
Xs = StandardScaler().fit_transform(X)
m = LogisticRegression(multi_class="multinomial", C=0.5, max_iter=10000).fit(Xs, y)
json.dump({
    "x": Xs.tolist(),
    "coef": m.coef_.tolist(),
    "intercept": m.intercept_.tolist(),
    "proba": m.predict_proba(Xs).ravel().tolist(),
    "predict": m.predict(Xs).tolist(),
}, sys.stdout)
`

// TestMultinomialAgainstScikitLearn: a LogisticRegression fitted by
// scikit-learn on the standardized wine data, exported as a Multinomial,
// predicts scikit-learn's predict_proba to 1e-12, alone on scikit-learn's
// scaled rows and in a bundle whose transforms standardize the raw
// columns. Live through /usr/bin/python3; skipped without scikit-learn.
func TestMultinomialAgainstScikitLearn(t *testing.T) {
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import sklearn, numpy").Run() != nil {
		t.Skipf("%s with scikit-learn and numpy is not available (Debian: apt install python3-sklearn)", py)
	}
	names, cols, y := mnReadWine(t)
	cmd := exec.Command(py, "-c", mnWineScript, mnWineFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var sk struct {
		X         [][]float64 `json:"x"`
		Coef      [][]float64 `json:"coef"`
		Intercept []float64   `json:"intercept"`
		Proba     []float64   `json:"proba"`
		Predict   []float64   `json:"predict"`
	}
	if err := json.Unmarshal(out, &sk); err != nil {
		t.Fatalf("decoding python output: %v\n%s", err, out)
	}
	est := &Multinomial{Type: EstimatorMultinomial, Features: names, Weights: sk.Coef, Intercepts: sk.Intercept}
	file, err := json.Marshal(est)
	if err != nil {
		t.Fatal(err)
	}
	est, err = ParseMultinomial(file)
	if err != nil {
		t.Fatal(err)
	}
	n := len(y)
	maxDiff := func(got []float64) (float64, int) {
		worst, at := 0.0, -1
		for i := range got {
			if d := math.Abs(got[i] - sk.Proba[i]); d > worst || at < 0 {
				worst, at = d, i
			}
		}
		return worst, at
	}

	// The estimator alone, on scikit-learn's scaled rows.
	x := &transform.Matrix{Rows: n, Features: names, Cols: make([][]float64, 13)}
	for j := range x.Cols {
		for i := range n {
			x.Cols[j] = append(x.Cols[j], sk.X[i][j])
		}
	}
	got := make([]float64, n*3)
	if err := est.PredictProba(x, got); err != nil {
		t.Fatal(err)
	}
	d, at := maxDiff(got)
	t.Logf("Multinomial.PredictProba vs predict_proba: max |Δp| %.3g (row %d)", d, at/3)
	if d > 1e-12 {
		t.Errorf("probability %d: Kiln %.17g, scikit-learn %.17g", at, got[at], sk.Proba[at])
	}
	classes := make([]float64, n)
	if err := est.PredictMatrix(x, classes); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(classes, sk.Predict) {
		t.Errorf("PredictMatrix differs from predict")
	}

	// A bundle standardizing the raw columns (Kiln's standardize is
	// StandardScaler's population standard deviation).
	sc := dataset.Schema{}
	for _, name := range names {
		sc.Fields = append(sc.Fields, dataset.Field{Name: name, Type: dataset.Float64})
	}
	sc.Fields = append(sc.Fields, dataset.Field{Name: "cultivar", Type: dataset.Float64})
	rec := mnRecord(t, sc, append(slices.Clone(cols), y))
	fitted, err := transform.Fit(transform.Recipe{Target: "cultivar", Transforms: []transform.Spec{{Kind: "standardize", Columns: []string{"*"}}}}, sc, rec)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := New(Manifest{
		FormatVersion: FormatVersion, Name: "wine", Task: TaskMulticlass, Target: "cultivar",
		Classes: []string{"class_0", "class_1", "class_2"},
		Inputs:  fitted.Inputs, Transforms: fitted,
		Estimator: Estimator{Type: EstimatorMultinomial, File: DefaultEstimatorFile},
		Output:    OutputProbabilities,
	}, map[string][]byte{DefaultEstimatorFile: file})
	if err != nil {
		t.Fatal(err)
	}
	got, err = mod.PredictProba(rec)
	if err != nil {
		t.Fatal(err)
	}
	d, at = maxDiff(got)
	t.Logf("Model.PredictProba on raw rows vs StandardScaler + predict_proba: max |Δp| %.3g (row %d)", d, at/3)
	if d > 1e-12 {
		t.Errorf("bundle probability %d: Kiln %.17g, scikit-learn %.17g", at, got[at], sk.Proba[at])
	}
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{}
		for j, name := range names {
			rows[i][name] = cols[j][i]
		}
	}
	s, err := mod.ScoreRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Proba, got) || !slices.Equal(s.Values, sk.Predict) {
		t.Errorf("ScoreRows differs from PredictProba or from predict")
	}
}
