package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// split is a test dataset: feature columns and labels.
type split struct {
	x [][]float64
	y []float64
}

// job describes one trainer run's inputs.
type job struct {
	features     []string
	train, valid split
	params       string // params.json
	schema       string // schema.json; default from features
	nulls        bool   // write NaN as null instead of as a value
}

// writeParquet writes float64 columns (features then "label") to path.
func writeParquet(t *testing.T, path string, names []string, s split, nulls bool) {
	t.Helper()
	var sc dataset.Schema
	var cols []arrow.Array
	add := func(name string, vals []float64) {
		sc.Fields = append(sc.Fields, dataset.Field{Name: name, Type: dataset.Float64})
		if nulls {
			cols = append(cols, dataset.Float64ArrayNullNaN(vals))
		} else {
			cols = append(cols, dataset.Float64Array(vals))
		}
	}
	for j, n := range names {
		add(n, s.x[j])
	}
	add("label", s.y)
	rec, err := dataset.NewRecord(sc, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	w, err := dataset.CreateParquet(path, sc, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// setup writes j's inputs to a new directory and returns it with an output
// directory.
func setup(t *testing.T, j job) (in, out string) {
	t.Helper()
	root := t.TempDir()
	in, out = filepath.Join(root, "in"), filepath.Join(root, "out")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	writeParquet(t, filepath.Join(in, "train.parquet"), j.features, j.train, j.nulls)
	if j.valid.x == nil {
		j.valid = split{x: make([][]float64, len(j.features))}
		for k := range j.valid.x {
			j.valid.x[k] = []float64{}
		}
		j.valid.y = []float64{}
	}
	writeParquet(t, filepath.Join(in, "valid.parquet"), j.features, j.valid, j.nulls)
	schema := j.schema
	if schema == "" {
		b, _ := json.Marshal(map[string]any{"features": j.features, "target": "label", "task": "binary"})
		schema = string(b)
	}
	params := j.params
	if params == "" {
		params = `{"algorithm": "logistic", "seed": 42, "params": {}}`
	}
	for name, content := range map[string]string{"schema.json": schema, "params.json": params} {
		if err := os.WriteFile(filepath.Join(in, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return in, out
}

// result is a finished run's outputs.
type result struct {
	model   logisticModel
	metrics metricsOut
	raw     map[string][]byte
	stdout  string
	stderr  string
}

// train runs the trainer on j and decodes its outputs.
func train(t *testing.T, j job) result {
	t.Helper()
	in, out := setup(t, j)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), in, out, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	r := result{raw: map[string][]byte{}, stdout: stdout.String(), stderr: stderr.String()}
	for _, name := range []string{"model.json", "metrics.json"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		r.raw[name] = b
	}
	if err := json.Unmarshal(r.raw["model.json"], &r.model); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(r.raw["metrics.json"], &r.metrics); err != nil {
		t.Fatal(err)
	}
	if left := entries(t, out); strings.Join(left, ",") != "metrics.json,model.json" {
		t.Errorf("output dir holds %v", left)
	}
	return r
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// cells builds a dataset of two binary features where the log-odds of each
// cell are exactly b + w1·x1 + w2·x2 with b = 0, w1 = ln 3, w2 = ln 2:
// (pos, neg) counts (10,10), (30,10), (20,10), (60,10). Unregularised
// maximum likelihood reproduces every cell's rate, so it recovers b, w1, w2
// exactly.
func cells() split {
	var s split
	s.x = [][]float64{nil, nil}
	add := func(x1, x2 float64, pos, neg int) {
		for k := 0; k < pos+neg; k++ {
			s.x[0] = append(s.x[0], x1)
			s.x[1] = append(s.x[1], x2)
			s.y = append(s.y, map[bool]float64{true: 1, false: 0}[k < pos])
		}
	}
	add(0, 0, 10, 10)
	add(1, 0, 30, 10)
	add(0, 1, 20, 10)
	add(1, 1, 60, 10)
	return s
}

func TestKnownSolution(t *testing.T) {
	r := train(t, job{
		features: []string{"a", "b"},
		train:    cells(),
		valid:    cells(),
		params:   `{"algorithm": "logistic", "seed": 1, "params": {"l2": 0, "tol": 1e-12}}`,
	})
	want := []float64{math.Log(3), math.Log(2)}
	if math.Abs(r.model.Intercept) > 1e-10 {
		t.Errorf("intercept = %.15g, want 0", r.model.Intercept)
	}
	for j := range want {
		if math.Abs(r.model.Weights[j]-want[j]) > 1e-10 {
			t.Errorf("weight %d = %.15g, want %.15g", j, r.model.Weights[j], want[j])
		}
	}
	if r.model.Type != "logistic" || strings.Join(r.model.Features, ",") != "a,b" {
		t.Errorf("model = %+v", r.model)
	}
	// The log-loss at the optimum is the cells' mean binary entropy.
	var ll float64
	for _, c := range [][2]float64{{10, 10}, {30, 10}, {20, 10}, {60, 10}} {
		p := c[0] / (c[0] + c[1])
		ll -= c[0]*math.Log(p) + c[1]*math.Log(1-p)
	}
	ll /= 160
	for name, m := range map[string]splitMetrics{"train": r.metrics.Train, "valid": r.metrics.Valid} {
		if m.LogLoss == nil || math.Abs(*m.LogLoss-ll) > 1e-12 {
			t.Errorf("%s logloss = %v, want %.15g", name, m.LogLoss, ll)
		}
		if m.AUC == nil || *m.AUC <= 0.5 || *m.AUC >= 1 {
			t.Errorf("%s auc = %v", name, m.AUC)
		}
	}
	if r.metrics.Iterations < 2 || r.metrics.Iterations > 20 {
		t.Errorf("iterations = %d", r.metrics.Iterations)
	}
	if r.metrics.TrainerVersion != version {
		t.Errorf("trainer_version = %q", r.metrics.TrainerVersion)
	}
	checkProgress(t, r.stdout, "iteration 1/")
}

// checkProgress checks that stdout holds only KILN_PROGRESS lines with
// non-decreasing percentages ending at 100, one of them with the message
// prefix want.
func checkProgress(t *testing.T, stdout, want string) {
	t.Helper()
	re := regexp.MustCompile(`^KILN_PROGRESS \{"pct": (\d+), "msg": "[^"]*"\}$`)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	last := -1
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("stdout line %q is not a progress line", l)
			continue
		}
		var v struct {
			Pct int    `json:"pct"`
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "KILN_PROGRESS ")), &v); err != nil {
			t.Errorf("progress line %q: %v", l, err)
		}
		if v.Pct < last {
			t.Errorf("progress went back from %d to %d", last, v.Pct)
		}
		last = v.Pct
	}
	if last != 100 {
		t.Errorf("last progress %d, want 100", last)
	}
	if !strings.Contains(stdout, `"msg": "`+want) {
		t.Errorf("no progress %q in %q", want, stdout)
	}
}

// random returns n rows of d standard-normal-ish features and labels drawn
// from a logistic model with the given weights.
func random(seed uint64, n int, w []float64, b float64) split {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := split{x: make([][]float64, len(w)), y: make([]float64, n)}
	for j := range s.x {
		s.x[j] = make([]float64, n)
	}
	for i := 0; i < n; i++ {
		z := b
		for j := range w {
			s.x[j][i] = rng.NormFloat64()*(1+float64(j)) + float64(j)
			z += w[j] * s.x[j][i]
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			s.y[i] = 1
		}
	}
	return s
}

// TestOptimality checks the first-order conditions of the regularised
// problem, computed independently of the trainer: (1/n)Σ(p-y) = 0 and
// (1/n)Σ(p-y)x_j + l2·w_j = 0.
func TestOptimality(t *testing.T) {
	for _, l2 := range []float64{0, 1e-4, 0.01, 1} {
		s := random(3, 500, []float64{0.8, -0.5, 0.3}, 0.4)
		params, _ := json.Marshal(map[string]any{"algorithm": "logistic", "seed": 0, "params": map[string]any{"l2": l2}})
		r := train(t, job{features: []string{"x0", "x1", "x2"}, train: s, params: string(params)})
		n := float64(len(s.y))
		g := make([]float64, 4)
		for i := range s.y {
			z := r.model.Intercept
			for j := range s.x {
				z += r.model.Weights[j] * s.x[j][i]
			}
			e := 1/(1+math.Exp(-z)) - s.y[i]
			g[0] += e / n
			for j := range s.x {
				g[j+1] += e * s.x[j][i] / n
			}
		}
		for j := range s.x {
			g[j+1] += l2 * r.model.Weights[j]
		}
		for k, v := range g {
			if math.Abs(v) > 1e-8 {
				t.Errorf("l2=%g: gradient component %d = %g", l2, k, v)
			}
		}
		if l2 == 1 && math.Abs(r.model.Weights[0]) > 0.2 {
			t.Errorf("l2=1 should shrink the weights, got %v", r.model.Weights)
		}
		if r.metrics.Valid.LogLoss != nil || r.metrics.Valid.AUC != nil {
			t.Errorf("empty valid split has metrics %+v", r.metrics.Valid)
		}
		if !bytes.Contains(r.raw["metrics.json"], []byte(`"valid": {}`)) {
			t.Errorf("metrics.json: %s", r.raw["metrics.json"])
		}
	}
}

// separable returns points with x0 + x1 > 1 labelled 1, keeping a margin.
func separable(seed uint64, n int) split {
	rng := rand.New(rand.NewPCG(seed, 11))
	s := split{x: [][]float64{nil, nil}}
	for len(s.y) < n {
		a, b := rng.Float64()*2, rng.Float64()*2
		if math.Abs(a+b-2) < 0.1 {
			continue
		}
		s.x[0] = append(s.x[0], a)
		s.x[1] = append(s.x[1], b)
		s.y = append(s.y, map[bool]float64{true: 1, false: 0}[a+b > 2])
	}
	return s
}

func TestSeparable(t *testing.T) {
	r := train(t, job{features: []string{"x0", "x1"}, train: separable(1, 400), valid: separable(2, 200)})
	for name, m := range map[string]splitMetrics{"train": r.metrics.Train, "valid": r.metrics.Valid} {
		if m.AUC == nil || *m.AUC < 0.999 {
			t.Errorf("%s auc = %v, want ~1", name, m.AUC)
		}
		if m.LogLoss == nil || *m.LogLoss > 0.1 {
			t.Errorf("%s logloss = %v, want small", name, m.LogLoss)
		}
	}
	// The boundary is x0 + x1 = 2: equal weights, intercept ≈ -2·weight.
	w := r.model.Weights
	if w[0] <= 0 || math.Abs(w[0]-w[1]) > 0.1*w[0] || math.Abs(r.model.Intercept+2*w[0]) > 0.1*w[0] {
		t.Errorf("weights %v, intercept %v: not the x0 + x1 = 2 boundary", w, r.model.Intercept)
	}
}

// TestModelFileLoads checks that model.json is what internal/model reads and
// that its predictions give the trainer's own metrics.
func TestModelFileLoads(t *testing.T) {
	valid := random(5, 300, []float64{1, -1}, 0)
	r := train(t, job{features: []string{"f0", "f1"}, train: random(4, 300, []float64{1, -1}, 0), valid: valid})
	l, err := model.ParseLogistic(r.raw["model.json"])
	if err != nil {
		t.Fatalf("model.ParseLogistic: %v", err)
	}
	x := &transform.Matrix{Rows: len(valid.y), Features: l.Features, Cols: valid.x}
	p := make([]float64, x.Rows)
	if err := l.PredictMatrix(x, p); err != nil {
		t.Fatal(err)
	}
	if ll := metrics.LogLoss(valid.y, p); math.Abs(ll-*r.metrics.Valid.LogLoss) > 1e-12 {
		t.Errorf("logloss from the model package %v, trainer %v", ll, *r.metrics.Valid.LogLoss)
	}
	if auc := metrics.AUC(valid.y, p); math.Abs(auc-*r.metrics.Valid.AUC) > 1e-12 {
		t.Errorf("auc from the model package %v, trainer %v", auc, *r.metrics.Valid.AUC)
	}
}

func TestDeterministic(t *testing.T) {
	j := job{features: []string{"x0", "x1", "x2"}, train: random(9, 2000, []float64{0.5, 0.2, -0.7}, -0.3), valid: random(10, 500, []float64{0.5, 0.2, -0.7}, -0.3)}
	a, b := train(t, j), train(t, j)
	for _, name := range []string{"model.json", "metrics.json"} {
		if !bytes.Equal(a.raw[name], b.raw[name]) {
			t.Errorf("%s differs between runs:\n%s\n%s", name, a.raw[name], b.raw[name])
		}
	}
	if a.stdout != b.stdout {
		t.Errorf("progress differs between runs")
	}
}

func TestMetricFunctions(t *testing.T) {
	clipHigh := 1 - 1e-15 // a float64 variable, so 1-clipHigh is not exact
	tests := []struct {
		y, p    []float64
		auc     float64
		aucOK   bool
		logloss float64
	}{
		{[]float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, 0.75, true, -(math.Log(0.9) + math.Log(0.6) + math.Log(0.35) + math.Log(0.8)) / 4},
		{[]float64{0, 1}, []float64{0.5, 0.5}, 0.5, true, math.Log(2)}, // ties count one half
		{[]float64{1, 0, 1}, []float64{0.9, 0.2, 0.7}, 1, true, -(math.Log(0.9) + math.Log(0.8) + math.Log(0.7)) / 3},
		{[]float64{1, 1}, []float64{0.9, 0.7}, 0, false, -(math.Log(0.9) + math.Log(0.7)) / 2},
		{[]float64{1, 0}, []float64{0, 1}, 0, true, -(math.Log(1e-15) + math.Log(1-clipHigh)) / 2}, // clipped to [1e-15, 1-1e-15]
	}
	for i, tc := range tests {
		m := metricsOf(tc.y, tc.p)
		if ok := m.AUC != nil; ok != tc.aucOK || (ok && math.Abs(*m.AUC-tc.auc) > 1e-15) {
			t.Errorf("case %d: auc = %v; want %v, %v", i, m.AUC, tc.auc, tc.aucOK)
		}
		if m.LogLoss == nil || math.Abs(*m.LogLoss-tc.logloss) > 1e-9 {
			t.Errorf("case %d: logloss = %v, want %v", i, m.LogLoss, tc.logloss)
		}
	}
	if m := metricsOf(nil, nil); m.AUC != nil || m.LogLoss != nil {
		t.Errorf("metrics of no rows = %+v, want none", m)
	}
}

func TestRejects(t *testing.T) {
	good := cells()
	withValue := func(col, row int, v float64) split {
		s := split{x: [][]float64{append([]float64(nil), good.x[0]...), append([]float64(nil), good.x[1]...)}, y: append([]float64(nil), good.y...)}
		if col < 2 {
			s.x[col][row] = v
		} else {
			s.y[row] = v
		}
		return s
	}
	p := func(s string) string { return `{"algorithm": "logistic", "seed": 1, "params": ` + s + `}` }
	ones := split{x: [][]float64{good.x[0], good.x[1]}, y: make([]float64, len(good.y))}
	for i := range ones.y {
		ones.y[i] = 1
	}
	tests := []struct {
		name string
		job  job
		want string
		code int
	}{
		{"NaN feature", job{train: withValue(1, 7, math.NaN())}, `train.parquet: column "b" is missing (null or NaN) in row 7`, 2},
		{"null feature", job{train: withValue(0, 3, math.NaN()), nulls: true}, `train.parquet: column "a" is missing (null or NaN) in row 3`, 2},
		{"infinite feature", job{train: withValue(0, 5, math.Inf(1))}, `train.parquet: column "a" is infinite in row 5`, 2},
		{"NaN in valid", job{train: good, valid: withValue(0, 2, math.NaN())}, `valid.parquet: column "a" is missing (null or NaN) in row 2`, 2},
		{"bad label", job{train: withValue(2, 4, 2)}, `target "label" is 2 in row 4`, 2},
		{"one class", job{train: ones}, `target "label" has only class 1`, 2},
		{"unknown algorithm", job{params: `{"algorithm": "xgboost", "seed": 1, "params": {}}`}, `unknown algorithm "xgboost"`, 2},
		{"unknown param", job{params: p(`{"epochs": 300}`)}, `unknown parameter "epochs" for algorithm logistic (known: l2, max_iter, tol)`, 2},
		{"negative l2", job{params: p(`{"l2": -1}`)}, "params.l2 must be >= 0", 2},
		{"fractional max_iter", job{params: p(`{"max_iter": 2.5}`)}, "params.max_iter must be a whole number", 2},
		{"zero max_iter", job{params: p(`{"max_iter": 0}`)}, "params.max_iter must be a whole number", 2},
		{"string param", job{params: p(`{"tol": "small"}`)}, "params.tol must be a number", 2},
		{"unknown top-level key", job{params: `{"algorithm": "logistic", "sed": 1}`}, `unknown field "sed"`, 2},
		{"bad task", job{schema: `{"features": ["a", "b"], "target": "label", "task": "regression"}`}, `task "regression" is not supported`, 2},
		{"missing column", job{schema: `{"features": ["a", "c"], "target": "label", "task": "binary"}`}, `train.parquet: no column "c"`, 2},
		{"target as feature", job{schema: `{"features": ["a", "label"], "target": "label", "task": "binary"}`}, `the target "label" is also a feature`, 2},
		{"collinear without l2", job{train: split{x: [][]float64{good.x[0], good.x[0]}, y: good.y}, params: p(`{"l2": 0}`)}, "Hessian is not positive definite", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job
			j.features = []string{"a", "b"}
			if j.train.x == nil {
				j.train = good
			}
			in, out := setup(t, j)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), in, out, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if c := exitCode(err); c != tc.code {
				t.Errorf("exit code %d, want %d", c, tc.code)
			}
			if left := entries(t, out); len(left) != 0 {
				t.Errorf("output dir holds %v after a failure", left)
			}
		})
	}
}

func TestMissingInputs(t *testing.T) {
	for _, name := range []string{"train.parquet", "valid.parquet", "schema.json", "params.json"} {
		t.Run(name, func(t *testing.T) {
			in, out := setup(t, job{features: []string{"a", "b"}, train: cells()})
			if err := os.Remove(filepath.Join(in, name)); err != nil {
				t.Fatal(err)
			}
			err := run(context.Background(), in, out, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), name) || exitCode(err) != 2 {
				t.Errorf("err = %v (exit %d), want a bad-input error naming %s", err, exitCode(err), name)
			}
		})
	}
}

func TestCLI(t *testing.T) {
	in, out := setup(t, job{features: []string{"a", "b"}, train: cells()})
	env := func(k string) string { return map[string]string{"KILN_IN": in, "KILN_OUT": out}[k] }
	tests := []struct {
		name       string
		args       []string
		env        func(string) string
		code       int
		stdout     string // prefix
		stderrPart string
	}{
		{"version", []string{"--version"}, env, 0, version + "\n", ""},
		{"bad args", []string{"train"}, env, 2, "", "usage: trainer"},
		{"default dirs", nil, func(string) string { return "" }, 2, "KILN_PROGRESS", "/kiln/in/schema.json"},
		{"train", nil, env, 0, "KILN_PROGRESS", "iteration 1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli(context.Background(), tc.args, tc.env, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q, want prefix %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderrPart) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.stderrPart)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "model.json")); err != nil {
		t.Errorf("cli did not write model.json: %v", err)
	}
}

func TestCancel(t *testing.T) {
	in, out := setup(t, job{features: []string{"a", "b"}, train: cells()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := run(ctx, in, out, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) || exitCode(err) != 1 {
		t.Errorf("err = %v (exit %d), want context.Canceled with exit 1", err, exitCode(err))
	}
}
