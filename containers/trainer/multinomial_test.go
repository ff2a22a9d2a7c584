package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// wineFile is the wine data set (data/README.md): 13 numeric features,
// target cultivar.
const wineFile = "../../data/wine.csv"

// mnWineClasses are the values of wine's target, cultivar.
var mnWineClasses = []string{"class_0", "class_1", "class_2"}

// readWine reads wineFile: the 13 features as they are (column-major) and
// the target as class indexes (class_0 is 0).
func readWine(t *testing.T) (features []string, all split) {
	t.Helper()
	f, err := os.Open(wineFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, rows := recs[0], recs[1:]
	if len(header) != 14 || header[13] != "cultivar" || len(rows) != 178 {
		t.Fatalf("%s: unexpected shape: header %v, %d rows", wineFile, header, len(rows))
	}
	features = header[:13]
	all.x = make([][]float64, len(features))
	for i, r := range rows {
		for j, name := range features {
			v, err := strconv.ParseFloat(r[j], 64)
			if err != nil {
				t.Fatalf("row %d, %s: %v", i, name, err)
			}
			all.x[j] = append(all.x[j], v)
		}
		k := slices.Index(mnWineClasses, r[13])
		if k < 0 {
			t.Fatalf("row %d: cultivar %q", i, r[13])
		}
		all.y = append(all.y, float64(k))
	}
	return features, all
}

// mnWine reads the wine data (readWine) with the 13 features standardized
// as Kiln's preprocess step does (transform.Fit with standardize on every
// column: population standard deviation).
func mnWine(t *testing.T) (features []string, s split) {
	t.Helper()
	names, all := readWine(t)
	var sc dataset.Schema
	var cols []arrow.Array
	for j, name := range names {
		sc.Fields = append(sc.Fields, dataset.Field{Name: name, Type: dataset.Float64})
		cols = append(cols, dataset.Float64Array(all.x[j]))
	}
	sc.Fields = append(sc.Fields, dataset.Field{Name: "cultivar", Type: dataset.Float64})
	cols = append(cols, dataset.Float64Array(all.y))
	rec, err := dataset.NewRecord(sc, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	fitted, err := transform.Fit(transform.Recipe{Target: "cultivar", Transforms: []transform.Spec{{Kind: "standardize", Columns: []string{"*"}}}}, sc, rec)
	if err != nil {
		t.Fatal(err)
	}
	x, err := fitted.Apply(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Features) != 13 {
		t.Fatalf("features %v", x.Features)
	}
	return append([]string(nil), x.Features...), split{x: x.Cols, y: all.y}
}

// mnSchema is schema.json for a multiclass target "label".
func mnSchema(features, classes []string) string {
	b, _ := json.Marshal(map[string]any{"features": features, "target": "label", "task": "multiclass", "classes": classes})
	return string(b)
}

// mnParams is params.json for the logistic algorithm.
func mnParams(params map[string]any) string {
	b, _ := json.Marshal(map[string]any{"algorithm": "logistic", "seed": 1, "params": params})
	return string(b)
}

// mnResult is a finished multiclass run's outputs.
type mnResult struct {
	est     *model.Multinomial
	metrics metricsOut
	raw     map[string][]byte
	stdout  string
	stderr  string
}

// mnTrain runs the trainer on j (a multiclass job) and decodes its
// outputs; model.json must be a valid Multinomial.
func mnTrain(t *testing.T, j job) mnResult {
	t.Helper()
	in, out := setup(t, j)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), in, out, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	r := mnResult{raw: map[string][]byte{}, stdout: stdout.String(), stderr: stderr.String()}
	for _, name := range []string{"model.json", "metrics.json"} {
		b, err := os.ReadFile(out + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		r.raw[name] = b
	}
	est, err := model.ParseMultinomial(r.raw["model.json"])
	if err != nil {
		t.Fatalf("model.ParseMultinomial: %v\n%s", err, r.raw["model.json"])
	}
	r.est = est
	if err := json.Unmarshal(r.raw["metrics.json"], &r.metrics); err != nil {
		t.Fatal(err)
	}
	checkProgress(t, r.stdout, "iteration 1/")
	return r
}

// mnProba scores s with est through internal/model, n×K row-major.
func mnProba(t *testing.T, est *model.Multinomial, s split) []float64 {
	t.Helper()
	out := make([]float64, len(s.y)*est.NumClass())
	if err := est.PredictProba(&transform.Matrix{Rows: len(s.y), Features: est.Features, Cols: s.x}, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// mnGradient returns the largest component of the gradient of the
// trainer's objective at est, computed independently of the trainer:
// (1/n)Σ(p_c - [y = c])x̃ + l2·w_c for every class c.
func mnGradient(est *model.Multinomial, s split, l2 float64) float64 {
	k, n := est.NumClass(), float64(len(s.y))
	var worst float64
	for c := range k {
		g := make([]float64, len(s.x)+1)
		for i := range s.y {
			z := make([]float64, k)
			zmax := math.Inf(-1)
			for cc := range k {
				z[cc] = est.Intercepts[cc]
				for j := range s.x {
					z[cc] += est.Weights[cc][j] * s.x[j][i]
				}
				zmax = math.Max(zmax, z[cc])
			}
			var e float64
			for cc := range k {
				e += math.Exp(z[cc] - zmax)
			}
			r := math.Exp(z[c]-zmax) / e
			if int(s.y[i]) == c {
				r--
			}
			g[0] += r / n
			for j := range s.x {
				g[j+1] += r * s.x[j][i] / n
			}
		}
		for j := range s.x {
			g[j+1] += l2 * est.Weights[c][j]
		}
		for _, v := range g {
			worst = math.Max(worst, math.Abs(v))
		}
	}
	return worst
}

// TestMultinomialWine trains on the (standardized) wine data: the model is
// optimal, predicts the training data almost perfectly, its intercepts and
// weights sum to zero over the classes, and internal/model's predictions
// give the trainer's metrics.
func TestMultinomialWine(t *testing.T) {
	features, s := mnWine(t)
	for _, l2 := range []float64{1e-2, 1e-4} {
		r := mnTrain(t, job{
			features: features, train: s, valid: s,
			schema: mnSchema(features, mnWineClasses),
			params: mnParams(map[string]any{"l2": l2, "tol": 1e-10}),
		})
		if r.est.Type != "multinomial" || strings.Join(r.est.Features, ",") != strings.Join(features, ",") || r.est.NumClass() != 3 {
			t.Fatalf("l2=%g: model %s", l2, r.raw["model.json"])
		}
		if g := mnGradient(r.est, s, l2); g > 1e-9 {
			t.Errorf("l2=%g: max |gradient| at the trained model = %g", l2, g)
		}
		var bs float64
		for c, b := range r.est.Intercepts {
			bs += b
			t.Logf("l2=%g: class %d intercept %.6f", l2, c, b)
		}
		if math.Abs(bs) > 1e-12 {
			t.Errorf("l2=%g: intercepts sum to %g, want 0", l2, bs)
		}
		for j := range features {
			var ws float64
			for c := range 3 {
				ws += r.est.Weights[c][j]
			}
			if math.Abs(ws) > 1e-12 {
				t.Errorf("l2=%g: weights of %s sum to %g over the classes, want 0", l2, features[j], ws)
			}
		}
		m := r.metrics.Train
		if m.Accuracy == nil || *m.Accuracy < 0.99 {
			t.Errorf("l2=%g: train accuracy %v, want >= 0.99 (wine is nearly separable)", l2, m.Accuracy)
		}
		if m.LogLoss == nil || *m.LogLoss > 0.1 {
			t.Errorf("l2=%g: train logloss %v, want small", l2, m.LogLoss)
		}
		if m.AUC != nil || m.RMSE != nil {
			t.Errorf("l2=%g: multiclass metrics %+v", l2, m)
		}
		if r.metrics.Iterations < 3 || r.metrics.Iterations > 30 {
			t.Errorf("l2=%g: %d Newton steps", l2, r.metrics.Iterations)
		}
		want := metrics.Multiclass(s.y, mnProba(t, r.est, s))
		for name, got := range map[string]*float64{"logloss": r.metrics.Valid.LogLoss, "accuracy": r.metrics.Valid.Accuracy} {
			if got == nil || *got != want[name] {
				t.Errorf("l2=%g: valid %s %v, internal/model's predictions give %v", l2, name, got, want[name])
			}
		}
		if !strings.Contains(r.stderr, "task multiclass") || !strings.Contains(r.stderr, "iteration 1: objective") || strings.Contains(r.stderr, "not converged") {
			t.Errorf("l2=%g: log:\n%s", l2, r.stderr)
		}
	}
}

// mnWineScript fits scikit-learn's multinomial LogisticRegression with
// C = 1/(n·l2) (Kiln's penalty convention) three ways: by lbfgs as it
// ships, which stops once an iteration improves the objective by less
// than scipy's default ftol (2.2e-9 relative), well before tol; by lbfgs
// with that rule off (ftol=0, patched into scipy.optimize.minimize: it
// then runs until its line search cannot improve, which it reports as a
// ConvergenceWarning); and by newton-cg, whose stopping rule is the
// gradient alone. It prints each model's probabilities and coefficients
// and the objective divided by n (Kiln's scale).
const mnWineScript = `
import json, sys, warnings
import numpy as np
from scipy import optimize
from sklearn.linear_model import LogisticRegression
from sklearn.exceptions import ConvergenceWarning

minimize = optimize.minimize
def minimize_ftol0(*args, **kw):
    kw["options"] = dict(kw.get("options") or {}, ftol=0.0)
    return minimize(*args, **kw)

inp = json.load(sys.stdin)
X, y = np.asarray(inp["x"]), np.asarray(inp["y"], dtype=int)
n = len(y)
out = []
for l2 in inp["l2"]:
    res = {}
    for name, solver, tol in [("lbfgs", "lbfgs", 1e-12), ("lbfgs, ftol=0", "lbfgs", 1e-12), ("newton-cg", "newton-cg", 1e-8)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if "ftol" in name else "error", ConvergenceWarning)
            optimize.minimize = minimize_ftol0 if "ftol" in name else minimize
            try:
                m = LogisticRegression(multi_class="multinomial", penalty="l2", C=1 / (n * l2),
                                       solver=solver, tol=tol, max_iter=100000).fit(X, y)
            finally:
                optimize.minimize = minimize
        p = m.predict_proba(X)
        loss = -np.log(p[np.arange(n), y]).mean()
        res[name] = {
            "proba": p.ravel().tolist(),
            "coef": m.coef_.tolist(),
            "intercept": m.intercept_.tolist(),
            "objective": loss + l2 / 2 * float((m.coef_ ** 2).sum()),
            "n_iter": int(m.n_iter_[0]),
        }
    out.append(res)
json.dump(out, sys.stdout)
`

// TestMultinomialAgainstScikitLearn trains on the standardized wine data
// and compares the model with scikit-learn's
// LogisticRegression(multi_class="multinomial") at the matched C, live
// through /usr/bin/python3 (skipped without scikit-learn): the
// probabilities agree with newton-cg's to 1e-8 and with lbfgs's to 1e-6
// once its ftol stop is off (1e-4 as shipped, see mnWineScript), the
// coefficients and intercepts to 100 times that, and Kiln's objective is
// no worse than any of them.
func TestMultinomialAgainstScikitLearn(t *testing.T) {
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import sklearn, numpy").Run() != nil {
		t.Skipf("%s with scikit-learn and numpy is not available (Debian: apt install python3-sklearn)", py)
	}
	features, s := mnWine(t)
	l2s := []float64{1e-2, 1e-3}
	n := len(s.y)
	rows := make([][]float64, n)
	for i := range rows {
		for j := range features {
			rows[i] = append(rows[i], s.x[j][i])
		}
	}
	in, err := json.Marshal(map[string]any{"x": rows, "y": s.y, "l2": l2s})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", mnWineScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	type fitted struct {
		Proba     []float64   `json:"proba"`
		Coef      [][]float64 `json:"coef"`
		Intercept []float64   `json:"intercept"`
		Objective float64     `json:"objective"`
		NIter     int         `json:"n_iter"`
	}
	var want []map[string]fitted
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decoding python output: %v\n%s", err, out)
	}
	for li, l2 := range l2s {
		r := mnTrain(t, job{
			features: features, train: s,
			schema: mnSchema(features, mnWineClasses),
			params: mnParams(map[string]any{"l2": l2, "tol": 1e-10}),
		})
		got := mnProba(t, r.est, s)
		obj := 0.0
		for i, y := range s.y {
			obj -= math.Log(got[i*3+int(y)])
		}
		obj /= float64(n)
		for _, w := range r.est.Weights {
			for _, v := range w {
				obj += l2 / 2 * v * v
			}
		}
		for _, solver := range []struct {
			name string
			tol  float64
		}{{"newton-cg", 1e-8}, {"lbfgs, ftol=0", 1e-6}, {"lbfgs", 1e-4}} {
			sk := want[li][solver.name]
			var dp, dc float64
			for i := range got {
				dp = math.Max(dp, math.Abs(got[i]-sk.Proba[i]))
			}
			for c := range 3 {
				dc = math.Max(dc, math.Abs(r.est.Intercepts[c]-sk.Intercept[c]))
				for j := range features {
					dc = math.Max(dc, math.Abs(r.est.Weights[c][j]-sk.Coef[c][j]))
				}
			}
			t.Logf("l2=%g (C=%.6g) vs %s (%d iterations): max |Δp| %.3g, max |Δcoef| %.3g, objective Kiln %.17g, scikit-learn %.17g",
				l2, 1/(float64(n)*l2), solver.name, sk.NIter, dp, dc, obj, sk.Objective)
			if dp > solver.tol || dc > 100*solver.tol {
				t.Errorf("l2=%g: %s differs: max |Δp| %.3g, max |Δcoef| %.3g (tolerance %g)", l2, solver.name, dp, dc, solver.tol)
			}
			if obj > sk.Objective+1e-13 {
				t.Errorf("l2=%g: Kiln's objective %.17g is above %s's %.17g", l2, obj, solver.name, sk.Objective)
			}
		}
	}
}

// TestMultinomialKnownSolution: with one binary feature and l2 = 0 the
// model is saturated, so maximum likelihood reproduces each cell's class
// frequencies exactly, and the zero-sum parametrisation fixes the
// parameters: b_c = log p_c(0) - mean_c' log p_c'(0), and b_c + w_c the same
// at x = 1.
func TestMultinomialKnownSolution(t *testing.T) {
	counts := [2][3]int{{10, 20, 30}, {40, 10, 10}}
	var s split
	s.x = [][]float64{nil}
	for x, row := range counts {
		for c, m := range row {
			for range m {
				s.x[0] = append(s.x[0], float64(x))
				s.y = append(s.y, float64(c))
			}
		}
	}
	r := mnTrain(t, job{
		features: []string{"x"}, train: s, valid: s,
		schema: mnSchema([]string{"x"}, []string{"a", "b", "c"}),
		params: mnParams(map[string]any{"l2": 0, "tol": 1e-13}),
	})
	var ll float64
	for x, row := range counts {
		tot := float64(row[0] + row[1] + row[2])
		var meanLog float64
		for _, m := range row {
			meanLog += math.Log(float64(m)/tot) / 3
		}
		for c, m := range row {
			p := float64(m) / tot
			ll -= float64(m) * math.Log(p)
			z := r.est.Intercepts[c] + float64(x)*r.est.Weights[c][0]
			if want := math.Log(p) - meanLog; math.Abs(z-want) > 1e-10 {
				t.Errorf("x=%d class %d: margin %.15g, want %.15g", x, c, z, want)
			}
		}
	}
	ll /= float64(len(s.y))
	if m := r.metrics.Train; m.LogLoss == nil || math.Abs(*m.LogLoss-ll) > 1e-12 {
		t.Errorf("train logloss %v, want the cells' entropy %.15g", m.LogLoss, ll)
	}
	// Predictions: class 2 for x = 0 (30 of 60), class 0 for x = 1 (40 of 60).
	if m := r.metrics.Valid; m.Accuracy == nil || *m.Accuracy != 70.0/120 {
		t.Errorf("valid accuracy %v, want 70/120", m.Accuracy)
	}
}

// TestMultinomialTwoClassesIsBinary: softmax over two classes with weights
// ±w/2 is the binary logistic model with weights w, and the penalty
// (l2/2)(‖w/2‖²+‖w/2‖²) is the binary one with l2/2; so a two-class
// multinomial fit at l2 gives the binary fit's probabilities at l2/2.
func TestMultinomialTwoClassesIsBinary(t *testing.T) {
	s := random(21, 800, []float64{0.9, -0.4, 0.2}, -0.3)
	features := []string{"x0", "x1", "x2"}
	for _, l2 := range []float64{0, 0.02, 1} {
		bin := train(t, job{features: features, train: s, params: mnParams(map[string]any{"l2": l2 / 2, "tol": 1e-12})})
		multi := mnTrain(t, job{features: features, train: s, schema: mnSchema(features, []string{"no", "yes"}), params: mnParams(map[string]any{"l2": l2, "tol": 1e-12})})
		p := mnProba(t, multi.est, s)
		var worst float64
		for i := range s.y {
			z := bin.model.Intercept
			for j := range features {
				z += bin.model.Weights[j] * s.x[j][i]
			}
			worst = math.Max(worst, math.Abs(p[2*i+1]-1/(1+math.Exp(-z))))
		}
		if worst > 1e-10 {
			t.Errorf("l2=%g: P(class 1) differs from the binary fit's by up to %.3g", l2, worst)
		}
		for j := range features {
			if d := multi.est.Weights[1][j] - multi.est.Weights[0][j] - bin.model.Weights[j]; math.Abs(d) > 1e-9 {
				t.Errorf("l2=%g: w_1 - w_0 of %s is off the binary weight by %g", l2, features[j], d)
			}
		}
	}
}

// mnBlobs makes n rows of two features in k Gaussian clusters (class c
// centred at angle 2πc/k, radius spread), labelled by cluster.
func mnBlobs(seed uint64, n, k int, spread float64) split {
	rng := rand.New(rand.NewPCG(seed, 13))
	s := split{x: [][]float64{make([]float64, n), make([]float64, n)}, y: make([]float64, n)}
	for i := range n {
		c := i % k
		a := 2 * math.Pi * float64(c) / float64(k)
		s.x[0][i] = spread*math.Cos(a) + rng.NormFloat64()
		s.x[1][i] = spread*math.Sin(a) + rng.NormFloat64()
		s.y[i] = float64(c)
	}
	return s
}

// TestMultinomialDeterministic: two runs on five classes write identical
// files and logs, and with more rows than a Hessian block (rowBlock) the
// model still satisfies the optimality conditions.
func TestMultinomialDeterministic(t *testing.T) {
	s := mnBlobs(5, 3*rowBlock+100, 5, 1.5)
	j := job{
		features: []string{"u", "v"}, train: s, valid: mnBlobs(6, 500, 5, 1.5),
		schema: mnSchema([]string{"u", "v"}, []string{"a", "b", "c", "d", "e"}),
		params: mnParams(map[string]any{"l2": 1e-3}),
	}
	a, b := mnTrain(t, j), mnTrain(t, j)
	for _, name := range []string{"model.json", "metrics.json"} {
		if !bytes.Equal(a.raw[name], b.raw[name]) {
			t.Errorf("%s differs between runs:\n%s\n%s", name, a.raw[name], b.raw[name])
		}
	}
	if a.stdout != b.stdout || a.stderr != b.stderr {
		t.Errorf("logs differ between runs")
	}
	if g := mnGradient(a.est, s, 1e-3); g > 1e-8 {
		t.Errorf("max |gradient| %g", g)
	}
	if acc := a.metrics.Valid.Accuracy; acc == nil || *acc < 0.6 {
		t.Errorf("valid accuracy %v", acc)
	}
}

// TestMultinomialNotConverged: max_iter stops the fit with a warning; the
// model is still written.
func TestMultinomialNotConverged(t *testing.T) {
	features, s := mnWine(t)
	r := mnTrain(t, job{
		features: features, train: s,
		schema: mnSchema(features, mnWineClasses),
		params: mnParams(map[string]any{"l2": 1e-4, "max_iter": 2}),
	})
	if r.metrics.Iterations != 2 || !strings.Contains(r.stderr, "warning: not converged after 2 iterations") {
		t.Errorf("iterations %d, log:\n%s", r.metrics.Iterations, r.stderr)
	}
}

func TestMultinomialRejects(t *testing.T) {
	good := mnBlobs(7, 90, 3, 2)
	abc := []string{"a", "b", "c"}
	withTarget := func(row int, v float64) split {
		s := split{x: good.x, y: append([]float64(nil), good.y...)}
		s.y[row] = v
		return s
	}
	withFeature := func(row int, v float64) split {
		s := split{x: [][]float64{good.x[0], append([]float64(nil), good.x[1]...)}, y: good.y}
		s.x[1][row] = v
		return s
	}
	only := func(classes ...float64) split { // the rows of good in classes
		var s split
		s.x = [][]float64{nil, nil}
		for i, y := range good.y {
			for _, c := range classes {
				if y == c {
					s.x[0] = append(s.x[0], good.x[0][i])
					s.x[1] = append(s.x[1], good.x[1][i])
					s.y = append(s.y, y)
				}
			}
		}
		return s
	}
	tests := []struct {
		name    string
		train   split
		valid   split
		classes []string
		params  string
		want    string
	}{
		{"class index out of range", withTarget(4, 3), split{}, abc, "", `train.parquet: target "label" is 3 in row 4; a multiclass target must be a class index from 0 to 2`},
		{"negative class index", withTarget(8, -1), split{}, abc, "", `target "label" is -1 in row 8`},
		{"fractional class index", withTarget(2, 0.5), split{}, abc, "", `target "label" is 0.5 in row 2`},
		{"bad class in valid", good, withTarget(1, 7), abc, "", `valid.parquet: target "label" is 7 in row 1`},
		{"missing target", withTarget(5, math.NaN()), split{}, abc, "", `target "label" is missing (null or NaN) in row 5`},
		{"one class", only(1), split{}, abc, "", `target "label" has only class "b"`},
		{"class without rows", only(0, 2), split{}, abc, "", `class "b" (target "label" = 1) has no rows`},
		{"more classes than the data has", good, split{}, []string{"a", "b", "c", "d"}, "", `class "d" (target "label" = 3) has no rows`},
		{"one class named", good, split{}, []string{"a"}, "", `task "multiclass" needs at least 2 classes, got 1`},
		{"NaN feature", withFeature(6, math.NaN()), split{}, abc, "", `column "v" is missing (null or NaN) in row 6`},
		{"infinite feature", withFeature(6, math.Inf(1)), split{}, abc, "", `column "v" is infinite in row 6`},
		{"unknown param", good, split{}, abc, mnParams(map[string]any{"C": 1}), `unknown parameter "C" for algorithm logistic`},
		{"collinear without l2", split{x: [][]float64{good.x[0], good.x[0]}, y: good.y}, split{}, abc, mnParams(map[string]any{"l2": 0}), "Hessian is not positive definite"},
	}
	// 3 classes × (1365 features + 1) = 4098 parameters.
	wide := split{y: []float64{0, 1, 2, 0, 1, 2}}
	var wideNames []string
	for j := range 1365 {
		wideNames = append(wideNames, "f"+strconv.Itoa(j))
		wide.x = append(wide.x, []float64{1, 2, 3, 4, 5, float64(j)})
	}
	t.Run("too many parameters", func(t *testing.T) {
		in, out := setup(t, job{features: wideNames, train: wide, schema: mnSchema(wideNames, abc)})
		err := run(context.Background(), in, out, &bytes.Buffer{}, &bytes.Buffer{})
		if want := "3 classes × (1365 features + 1) = 4098 parameters"; err == nil || !strings.Contains(err.Error(), want) || exitCode(err) != exitBadInput {
			t.Errorf("err = %v, want a bad-input error containing %q", err, want)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := job{features: []string{"u", "v"}, train: tc.train, valid: tc.valid, schema: mnSchema([]string{"u", "v"}, tc.classes), params: tc.params}
			in, out := setup(t, j)
			err := run(context.Background(), in, out, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if c := exitCode(err); c != exitBadInput {
				t.Errorf("exit code %d, want %d", c, exitBadInput)
			}
			if left := entries(t, out); len(left) != 0 {
				t.Errorf("output dir holds %v after a failure", left)
			}
		})
	}
}
