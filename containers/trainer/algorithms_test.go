package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/xgbjson"
)

// mixed makes n rows of three features with a non-linear binary label (or
// a regression target); feature "a" is missing in about 10% of the rows.
func mixed(seed uint64, n int, regression bool) split {
	r := rand.New(rand.NewPCG(seed, 2))
	s := split{x: [][]float64{make([]float64, n), make([]float64, n), make([]float64, n)}, y: make([]float64, n)}
	for i := range n {
		a, b, c := r.NormFloat64(), r.NormFloat64(), r.NormFloat64()
		z := 1.5*a - b*c + math.Sin(2*b)
		if r.Float64() < 0.1 {
			a = math.NaN()
			z = 1
		}
		s.x[0][i], s.x[1][i], s.x[2][i] = a, b, c
		if regression {
			s.y[i] = z + 0.1*r.NormFloat64()
		} else if r.Float64() < 1/(1+math.Exp(-z)) {
			s.y[i] = 1
		}
	}
	return s
}

func schemaJSON(task string) string {
	return `{"features": ["a", "b", "c"], "target": "label", "task": "` + task + `"}`
}

// gbdtClasses names the classes of mixedClasses.
var gbdtClasses = []string{"low", "mid", "high"}

// gbdtMultiSchema is schema.json for a multiclass target "label" over
// features a, b, c with gbdtClasses.
func gbdtMultiSchema() string {
	return `{"features": ["a", "b", "c"], "target": "label", "task": "multiclass", "classes": ["low", "mid", "high"]}`
}

// mixedClasses makes n rows of three features with a non-linear
// three-class label (class indexes 0..2, the largest of three noisy
// scores); feature "a" is missing in about 10% of the rows, which are
// mostly class 2.
func mixedClasses(seed uint64, n int) split {
	r := rand.New(rand.NewPCG(seed, 3))
	s := split{x: [][]float64{make([]float64, n), make([]float64, n), make([]float64, n)}, y: make([]float64, n)}
	for i := range n {
		a, b, c := r.NormFloat64(), r.NormFloat64(), r.NormFloat64()
		scores := []float64{1.5 * a, b*c + 0.3, math.Sin(2*b) - a}
		if r.Float64() < 0.1 {
			a = math.NaN()
			scores = []float64{0, 0, 2}
		}
		s.x[0][i], s.x[1][i], s.x[2][i] = a, b, c
		best := 0
		for k := range scores {
			scores[k] += 0.5 * r.NormFloat64()
			if scores[k] > scores[best] {
				best = k
			}
		}
		s.y[i] = float64(best)
	}
	return s
}

// runRaw runs the trainer on j and returns its output files.
func runRaw(t *testing.T, j job) map[string][]byte {
	t.Helper()
	in, out := setup(t, j)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), in, out, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	want := "tree 1/"
	if strings.Contains(j.params, `"ridge"`) {
		want = "solved"
	}
	checkProgress(t, stdout.String(), want)
	files := map[string][]byte{}
	for _, name := range []string{"model.json", "metrics.json"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

func TestGBDTDeterministic(t *testing.T) {
	j := job{
		features: []string{"a", "b", "c"}, train: mixed(1, 2000, false), valid: mixed(2, 500, false),
		schema: schemaJSON("binary"),
		params: `{"algorithm": "gbdt", "seed": 5, "params": {"n_estimators": 30, "subsample": 0.8, "colsample_bytree": 0.7, "early_stopping_rounds": 5}}`,
	}
	first, second := runRaw(t, j), runRaw(t, j)
	for name := range first {
		if !bytes.Equal(first[name], second[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	j.params = strings.Replace(j.params, `"seed": 5`, `"seed": 6`, 1)
	if other := runRaw(t, j); bytes.Equal(other["model.json"], first["model.json"]) {
		t.Error("seed 6 wrote the same model as seed 5 with subsampling on")
	}
	b, err := xgbjson.Parse(first["model.json"])
	if err != nil {
		t.Fatalf("model.json does not parse as an XGBoost model: %v", err)
	}
	if b.Objective != "binary:logistic" || strings.Join(b.FeatureNames, ",") != "a,b,c" || len(b.Trees) == 0 {
		t.Errorf("model: objective %q, features %v, %d trees", b.Objective, b.FeatureNames, len(b.Trees))
	}
	var m metricsOut
	if err := json.Unmarshal(first["metrics.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.BestIteration == nil || *m.BestIteration+1 != len(b.Trees) || m.Valid.AUC == nil || *m.Valid.AUC < 0.75 {
		t.Errorf("metrics %s with %d trees", first["metrics.json"], len(b.Trees))
	}
}

// TestGBDTInterop loads a Kiln-trained model with XGBoost and checks its
// predictions against Kiln's to 1e-6, for the three objectives (for
// multi:softprob the class probabilities) and rows with missing values.
func TestGBDTInterop(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found: %v", python, err)
	}
	if out, err := exec.Command(python, "-c", "import xgboost, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s has no xgboost/numpy (apt install python3-xgboost): %v %s", python, err, out)
	}
	for _, task := range []string{"binary", "regression", "multiclass"} {
		t.Run(task, func(t *testing.T) {
			reg := task == "regression"
			train, test := mixed(3, 3000, reg), mixed(4, 1000, reg)
			schema := schemaJSON(task)
			if task == "multiclass" {
				train, test, schema = mixedClasses(3, 3000), mixedClasses(4, 1000), gbdtMultiSchema()
			}
			files := runRaw(t, job{
				features: []string{"a", "b", "c"}, train: train, schema: schema,
				params: `{"algorithm": "gbdt", "seed": 1, "params": {"n_estimators": 50, "max_depth": 5, "learning_rate": 0.2}}`,
			})
			dir := t.TempDir()
			modelPath := filepath.Join(dir, "model.json")
			if err := os.WriteFile(modelPath, files["model.json"], 0o644); err != nil {
				t.Fatal(err)
			}
			rows := make([][]any, len(test.y))
			for i := range rows {
				for _, col := range test.x {
					if math.IsNaN(col[i]) {
						rows[i] = append(rows[i], nil)
					} else {
						rows[i] = append(rows[i], col[i])
					}
				}
			}
			rb, _ := json.Marshal(rows)
			rowsPath := filepath.Join(dir, "rows.json")
			if err := os.WriteFile(rowsPath, rb, 0o644); err != nil {
				t.Fatal(err)
			}
			script := `import json, sys, numpy as np, xgboost as xgb
b = xgb.Booster(model_file=sys.argv[1])
x = np.array([[np.nan if v is None else v for v in r] for r in json.load(open(sys.argv[2]))], dtype=np.float64)
print(json.dumps([float(p) for p in np.ravel(b.predict(xgb.DMatrix(x, missing=np.nan, feature_names=b.feature_names)))]))`
			var stderr bytes.Buffer
			cmd := exec.Command(python, "-c", script, modelPath, rowsPath)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("xgboost: %v\n%s", err, stderr.String())
			}
			var theirs []float64
			if err := json.Unmarshal(out, &theirs); err != nil {
				t.Fatal(err)
			}
			b, err := xgbjson.Parse(files["model.json"])
			if err != nil {
				t.Fatal(err)
			}
			if task == "multiclass" && (b.Objective != xgbjson.ObjectiveMultiSoftprob || b.NumClass != 3 || len(b.Trees) != 150) {
				t.Fatalf("model.json: objective %q, num_class %d, %d trees", b.Objective, b.NumClass, len(b.Trees))
			}
			ours := predictBooster(b, &data{rows: len(test.y), x: test.x, y: test.y})
			if len(theirs) != len(ours) {
				t.Fatalf("xgboost predicted %d rows, want %d", len(theirs), len(ours))
			}
			worst := 0.0
			for i := range ours {
				worst = math.Max(worst, math.Abs(ours[i]-theirs[i]))
			}
			if worst > 1e-6 {
				t.Errorf("largest difference between Kiln's and XGBoost's predictions: %g", worst)
			}
			t.Logf("%d predictions (%d rows), largest difference %.3g", len(ours), len(test.y), worst)
		})
	}
}

// gbdtWine reads the wine data (readWine): the features as they are,
// every fourth row in valid and the others in train.
func gbdtWine(t *testing.T) (features []string, train, valid split) {
	t.Helper()
	features, all := readWine(t)
	train.x, valid.x = make([][]float64, len(features)), make([][]float64, len(features))
	for i, y := range all.y {
		s := &train
		if i%4 == 3 {
			s = &valid
		}
		for j := range features {
			s.x[j] = append(s.x[j], all.x[j][i])
		}
		s.y = append(s.y, y)
	}
	return features, train, valid
}

// TestGBDTMulticlass trains multi:softprob on the wine data (numeric
// features, class indexes as the target) with early stopping and checks
// model.json (num_class, tree_info, whole rounds up to the best one) and
// metrics.json (multiclass logloss and accuracy), and that the run is
// deterministic.
func TestGBDTMulticlass(t *testing.T) {
	features, train, valid := gbdtWine(t)
	schema, _ := json.Marshal(map[string]any{"features": features, "target": "label", "task": "multiclass", "classes": []string{"class_0", "class_1", "class_2"}})
	j := job{features: features, train: train, valid: valid, schema: string(schema),
		params: `{"algorithm": "gbdt", "seed": 3, "params": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8, "early_stopping_rounds": 20}}`}
	files := runRaw(t, j)
	if again := runRaw(t, j); !bytes.Equal(again["model.json"], files["model.json"]) || !bytes.Equal(again["metrics.json"], files["metrics.json"]) {
		t.Error("two runs with the same seed differ")
	}
	b, err := xgbjson.Parse(files["model.json"])
	if err != nil {
		t.Fatalf("model.json does not parse as an XGBoost model: %v", err)
	}
	if b.Objective != xgbjson.ObjectiveMultiSoftprob || b.NumClass != 3 || float32(b.BaseScore) != 0.5 || strings.Join(b.FeatureNames, ",") != strings.Join(features, ",") {
		t.Fatalf("model: objective %q, num_class %d, base_score %v, features %v", b.Objective, b.NumClass, b.BaseScore, b.FeatureNames)
	}
	for i, k := range b.TreeInfo {
		if k != i%3 {
			t.Fatalf("tree_info[%d] is %d, want %d", i, k, i%3)
		}
	}
	var m metricsOut
	if err := json.Unmarshal(files["metrics.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.BestIteration == nil || 3*(*m.BestIteration+1) != len(b.Trees) || m.Iterations <= *m.BestIteration {
		t.Fatalf("metrics %s with %d trees", files["metrics.json"], len(b.Trees))
	}
	if m.Valid.Accuracy == nil || *m.Valid.Accuracy < 0.9 || m.Valid.LogLoss == nil || *m.Valid.LogLoss > 0.3 || m.Valid.AUC != nil || m.Valid.RMSE != nil {
		t.Errorf("metrics %s", files["metrics.json"])
	}
	// metrics.json's logloss is that of the probabilities model.json gives.
	proba := predictBooster(b, &data{rows: len(valid.y), x: valid.x, y: valid.y})
	if ll := metrics.Multiclass(valid.y, proba)["logloss"]; math.Abs(ll-*m.Valid.LogLoss) > 1e-12 {
		t.Errorf("valid logloss %v in metrics.json, %v from model.json", *m.Valid.LogLoss, ll)
	}
	t.Logf("wine: %d trees (best round %d of %d), valid accuracy %.4f, logloss %.4f", len(b.Trees), *m.BestIteration+1, m.Iterations, *m.Valid.Accuracy, *m.Valid.LogLoss)
}

func TestGBDTRegression(t *testing.T) {
	files := runRaw(t, job{
		features: []string{"a", "b", "c"}, train: mixed(5, 5000, true), valid: mixed(6, 1000, true),
		schema: schemaJSON("regression"),
		params: `{"algorithm": "gbdt", "seed": 1, "params": {"n_estimators": 200, "eta": 0.1}}`,
	})
	var m metricsOut
	if err := json.Unmarshal(files["metrics.json"], &m); err != nil {
		t.Fatal(err)
	}
	// Noise sd 0.1; the target's sd is about 1.8.
	if m.Valid.RMSE == nil || *m.Valid.RMSE > 0.35 || m.Valid.R2 == nil || *m.Valid.R2 < 0.95 || m.Valid.AUC != nil {
		t.Errorf("metrics %s", files["metrics.json"])
	}
}

func TestRidge(t *testing.T) {
	// y = 1 + 2a - 3b exactly: with l2 = 0 ridge is least squares.
	r := rand.New(rand.NewPCG(7, 7))
	s := split{x: [][]float64{make([]float64, 200), make([]float64, 200), make([]float64, 200)}, y: make([]float64, 200)}
	for i := range s.y {
		s.x[0][i], s.x[1][i], s.x[2][i] = r.Float64()*10, r.NormFloat64(), 4 // c is constant
		s.y[i] = 1 + 2*s.x[0][i] - 3*s.x[1][i]
	}
	files := runRaw(t, job{features: []string{"a", "b", "c"}, train: s, schema: schemaJSON("regression"),
		params: `{"algorithm": "ridge", "seed": 1, "params": {"l2": 0}}`})
	var lm linearModel
	if err := json.Unmarshal(files["model.json"], &lm); err != nil {
		t.Fatal(err)
	}
	want := []float64{2, -3, 0}
	for j := range want {
		if math.Abs(lm.Weights[j]-want[j]) > 1e-9 {
			t.Errorf("weight %d = %.12g, want %g", j, lm.Weights[j], want[j])
		}
	}
	if lm.Type != "linear" || math.Abs(lm.Intercept-1) > 1e-9 {
		t.Errorf("model %s", files["model.json"])
	}

	// One feature with l2 > 0: β = Σ z(y-ȳ) / (Σ z² + l2) = (n·cov/σ) / (n + l2)
	// with σ² = 1.25 and cov(a, y) = 0.75.
	one := split{x: [][]float64{{1, 2, 3, 4}}, y: []float64{2, 1, 4, 3}}
	files = runRaw(t, job{features: []string{"a"}, train: one,
		schema: `{"features": ["a"], "target": "label", "task": "regression"}`,
		params: `{"algorithm": "ridge", "seed": 1, "params": {"l2": 2}}`})
	if err := json.Unmarshal(files["model.json"], &lm); err != nil {
		t.Fatal(err)
	}
	sigma := math.Sqrt(1.25)
	beta := (4 * 0.75 / sigma) / (4 + 2)
	if w := beta / sigma; math.Abs(lm.Weights[0]-w) > 1e-12 || math.Abs(lm.Intercept-(2.5-w*2.5)) > 1e-12 {
		t.Errorf("l2=2: weight %.15g intercept %.15g, want %.15g and %.15g", lm.Weights[0], lm.Intercept, w, 2.5-w*2.5)
	}
}

func TestGBDTAcceptsMissing(t *testing.T) {
	for _, nulls := range []bool{false, true} {
		files := runRaw(t, job{features: []string{"a", "b", "c"}, train: mixed(8, 500, false), nulls: nulls,
			schema: schemaJSON("binary"), params: `{"algorithm": "gbdt", "seed": 1, "params": {"n_estimators": 5}}`})
		b, err := xgbjson.Parse(files["model.json"])
		if err != nil {
			t.Fatal(err)
		}
		if p := b.Predict([]float64{math.NaN(), 0, 0}); !(p > 0.5) {
			t.Errorf("nulls=%v: P(y=1 | a missing) = %v; missing rows are mostly positive", nulls, p)
		}
	}
}

func TestAlgorithmRejects(t *testing.T) {
	gb := func(params string) string { return `{"algorithm": "gbdt", "seed": 1, "params": ` + params + `}` }
	bin, reg := mixed(9, 200, false), mixed(9, 200, true)
	clean := func(s split) split { // a copy without missing values
		c := split{y: s.y}
		for _, col := range s.x {
			col = append([]float64(nil), col...)
			for i, v := range col {
				if math.IsNaN(v) {
					col[i] = 0
				}
			}
			c.x = append(c.x, col)
		}
		return c
	}
	tests := []struct {
		name string
		job  job
		want string
	}{
		{"gbdt unknown param", job{params: gb(`{"n_trees": 10}`)}, `unknown parameter "n_trees" for algorithm gbdt (known: base_score, colsample_bytree, early_stopping_rounds, gamma, lambda, learning_rate, max_bin, max_depth, min_child_weight, n_estimators, objective, subsample)`},
		{"gbdt alias twice", job{params: gb(`{"eta": 0.1, "learning_rate": 0.2}`)}, "params.eta and params.learning_rate are the same parameter"},
		{"gbdt eta zero", job{params: gb(`{"eta": 0}`)}, "params.eta must be a number in (0, 1], got 0"},
		{"gbdt depth", job{params: gb(`{"max_depth": 40}`)}, "params.max_depth must be a whole number from 1 to 31, got 40"},
		{"gbdt trees fraction", job{params: gb(`{"n_estimators": 2.5}`)}, "params.n_estimators must be a whole number from 1 to 100000, got 2.5"},
		{"gbdt subsample", job{params: gb(`{"subsample": 0}`)}, "params.subsample must be a number in (0, 1], got 0"},
		{"gbdt lambda", job{params: gb(`{"lambda": -1}`)}, "params.lambda must be a number >= 0, got -1"},
		{"gbdt objective type", job{params: gb(`{"objective": 1}`)}, "params.objective must be a string"},
		{"gbdt objective unknown", job{params: gb(`{"objective": "multi:softmax"}`)}, `params.objective "multi:softmax" is not supported`},
		{"gbdt objective vs task", job{params: gb(`{"objective": "reg:squarederror"}`)}, `params.objective "reg:squarederror" does not fit task "binary" (want "binary:logistic")`},
		{"gbdt softprob for binary", job{params: gb(`{"objective": "multi:softprob"}`)}, `params.objective "multi:softprob" does not fit task "binary" (want "binary:logistic")`},
		{"gbdt binary objective for multiclass", job{params: gb(`{"objective": "binary:logistic"}`), schema: gbdtMultiSchema(), train: mixedClasses(9, 200)}, `params.objective "binary:logistic" does not fit task "multiclass" (want "multi:softprob")`},
		{"gbdt multiclass label", job{params: gb(`{}`), schema: `{"features": ["a", "b", "c"], "target": "label", "task": "multiclass", "classes": ["x", "y"]}`, train: mixedClasses(9, 200)}, "a multiclass target must be a class index from 0 to 1"},
		{"gbdt multiclass num_class", job{params: gb(`{"num_class": 3}`), schema: gbdtMultiSchema(), train: mixedClasses(9, 200)}, `unknown parameter "num_class" for algorithm gbdt`},
		{"gbdt base_score", job{params: gb(`{"base_score": 1.5}`)}, "base_score must be a probability in (0, 1)"},
		{"gbdt early stopping without valid", job{params: gb(`{"early_stopping_rounds": 3}`)}, "params.early_stopping_rounds needs validation rows, and valid.parquet has none"},
		{"gbdt infinite feature", job{params: gb(`{}`), train: func() split { s := clean(mixed(9, 200, false)); s.x[1][3] = math.Inf(-1); return s }()}, `column "b" is infinite in row 3`},
		{"ridge on binary", job{params: `{"algorithm": "ridge", "seed": 1}`}, `task "binary" is not supported by algorithm ridge (want "regression")`},
		{"ridge missing", job{params: `{"algorithm": "ridge", "seed": 1}`, schema: schemaJSON("regression"), train: reg}, `column "a" is missing (null or NaN) in row`},
		{"ridge unknown param", job{params: `{"algorithm": "ridge", "seed": 1, "params": {"alpha": 1}}`, schema: schemaJSON("regression"), train: clean(reg)}, `unknown parameter "alpha" for algorithm ridge (known: l2)`},
		{"ridge collinear", job{params: `{"algorithm": "ridge", "seed": 1, "params": {"l2": 0}}`, schema: schemaJSON("regression"), train: func() split { s := clean(mixed(9, 200, true)); s.x[2] = s.x[1]; return s }()}, "increase params.l2"},
		{"logistic on regression", job{params: `{"algorithm": "logistic", "seed": 1}`, schema: schemaJSON("regression"), train: clean(reg)}, `task "regression" is not supported by algorithm logistic (want "binary" or "multiclass")`},
		{"regression target NaN", job{params: gb(`{}`), schema: schemaJSON("regression"), train: func() split { s := mixed(9, 200, true); s.y[7] = math.NaN(); return s }()}, `target "label" is missing (null or NaN) in row 7`},
		{"unknown task", job{params: gb(`{}`), schema: schemaJSON("ranking")}, `task "ranking" is not supported (want "binary", "multiclass" or "regression")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job
			j.features = []string{"a", "b", "c"}
			if j.train.x == nil {
				j.train = bin
			}
			if j.schema == "" {
				j.schema = schemaJSON("binary")
			}
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
