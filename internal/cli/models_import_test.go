package cli_test

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/registry"
)

// TestModelsImportErrors: what cannot be imported is refused with a usage
// error naming the problem, and nothing is registered.
// multinomialJSON is a three-class Kiln multinomial estimator over a and b.
const multinomialJSON = `{"type":"multinomial","features":["a","b"],"weights":[[1,0],[0,1],[-1,-1]],"intercepts":[0,0.5,0]}`

func TestModelsImportErrors(t *testing.T) {
	home := t.TempDir()
	xgb := filepath.Join(repoRoot, "internal", "xgbjson", "testdata", "binary.json")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--estimator", xgb, "--reason", "r"}, "names no features (trained from arrays): name its 6 input columns in order with --inputs"},
		{[]string{"--estimator", xgb, "--inputs", "a,b", "--reason", "r"}, "--inputs names 2 columns but the model has 6 features"},
		{[]string{"--estimator", xgb, "--inputs", "a,b,c,d,e,f"}, "--reason is required"},
		{[]string{"--reason", "r"}, "--estimator FILE is required"},
		{[]string{"--estimator", write("x.json", `{"weights":[1]}`), "--reason", "r"}, "cannot tell the model's type"},
		{[]string{"--estimator", write("l.json", `{"type":"logistic","features":["a","a"],"weights":[1,2],"intercept":0}`), "--reason", "r"}, "distinct"},
		{[]string{"--estimator", write("n.txt", `not json`), "--reason", "r"}, "not a JSON model file"},
		{[]string{"--estimator", write("w.json", `{"type":"logistic","features":["a","b"],"weights":[1],"intercept":0}`), "--reason", "r"}, "does not load"},
		{[]string{"--estimator", write("mn.json", multinomialJSON), "--classes", "x,y", "--reason", "r"}, "the model has 3 classes but 2 class names are given"},
		{[]string{"--estimator", write("mn2.json", multinomialJSON), "--classes", "x,y,x", "--reason", "r"}, `class "x" is listed twice`},
		{[]string{"--estimator", write("l2.json", `{"type":"logistic","features":["a"],"weights":[1],"intercept":0}`), "--classes", "x,y", "--reason", "r"}, "--classes is for multi-class models"},
	}
	for _, tt := range tests {
		r := kiln(t, append([]string{"--home", home, "models", "import", "m"}, tt.args...)...)
		if r.exitCode() != 2 || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("import %v: exit %d, %v; want exit 2 naming %q", tt.args, r.exitCode(), r.err, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "registry.db")); err == nil {
		if r := kiln(t, "--home", home, "--json", "models", "list"); !strings.Contains(r.stdout, "[]") {
			t.Errorf("a refused import registered something: %s", r.stdout)
		}
	}
}

// TestModelsImportXGBoost imports a model trained by Debian's XGBoost,
// scores the training data with it through kiln score (agreeing with
// XGBoost's own predictions to 1e-6), and finds "imported" in its lineage;
// then a Kiln logistic file imported the same way.
func TestModelsImportXGBoost(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import xgboost, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s has no xgboost/numpy (apt install python3-xgboost): %v %s", python, err, out)
	}
	home, dir := t.TempDir(), t.TempDir()
	data := filepath.Join(repoRoot, "data", "breast_cancer.csv")
	modelFile, predsFile := filepath.Join(dir, "model.json"), filepath.Join(dir, "preds.txt")
	script := `
import sys, numpy as np, xgboost as xgb
d = np.genfromtxt(sys.argv[1], delimiter=",", names=True)
names = [n for n in d.dtype.names if n != "malignant"]
X = np.column_stack([d[n] for n in names]); y = d["malignant"]
X[::7, 2] = np.nan  # missing values take the trees' default directions
b = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": 1}, xgb.DMatrix(X, label=y, feature_names=names), 30)
b.save_model(sys.argv[2])
np.savetxt(sys.argv[3], b.predict(xgb.DMatrix(X, feature_names=names)), fmt="%.9g")
`
	if out, err := exec.Command(python, "-c", script, data, modelFile, predsFile).CombinedOutput(); err != nil {
		t.Fatalf("training with XGBoost: %v\n%s", err, out)
	}
	r := kiln(t, "--home", home, "--json", "models", "import", "bc-xgb", "--estimator", modelFile, "--reason", "trained in the notebook")
	var v registry.Version
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Version != 1 || v.Runtime != "imported" {
		t.Fatalf("import: %v %s", r.err, r.stdout)
	}
	// The same rows, with the same values missing, scored by Kiln.
	in := filepath.Join(dir, "rows.csv")
	rows := readCSV(t, data)
	col := -1
	for j, h := range rows[0] {
		if h == "mean_perimeter" {
			col = j
		}
	}
	for i := 1; i < len(rows); i++ {
		if (i-1)%7 == 0 {
			rows[i][col] = ""
		}
	}
	writeCSV(t, in, rows)
	out := filepath.Join(dir, "scored.parquet")
	if r := kiln(t, "--home", home, "score", "bc-xgb:1", in, out); r.err != nil {
		t.Fatalf("kiln score: %v\n%s", r.err, r.stderr)
	}
	got := readPredictions(t, out)
	wantText, _ := os.ReadFile(predsFile)
	want := strings.Fields(string(wantText))
	if len(got) != len(want) {
		t.Fatalf("%d predictions, XGBoost made %d", len(got), len(want))
	}
	worst := 0.0
	for i := range want {
		w, _ := strconv.ParseFloat(want[i], 64)
		worst = math.Max(worst, math.Abs(got[i]-w))
	}
	if worst > 1e-6 {
		t.Errorf("Kiln and XGBoost differ by up to %g, want ≤ 1e-6", worst)
	}
	t.Logf("%d rows, largest difference from XGBoost %.2g", len(want), worst)
	lin := kiln(t, "--home", home, "models", "lineage", "bc-xgb:1")
	if !strings.Contains(lin.stdout, "imported") || !strings.Contains(lin.stdout, "trained in the notebook") {
		t.Errorf("lineage does not say imported:\n%s", lin.stdout)
	}
	// A Kiln logistic file: its features name the inputs.
	logit := filepath.Join(dir, "logit.json")
	os.WriteFile(logit, []byte(`{"type":"logistic","features":["mean_radius","mean_texture"],"weights":[0.5,-0.25],"intercept":0.1}`), 0o644)
	if r := kiln(t, "--home", home, "models", "import", "bc-lin", "--estimator", logit, "--reason", "scikit-learn weights"); r.err != nil {
		t.Fatalf("import logistic: %v", r.err)
	}
	if r := kiln(t, "--home", home, "score", "bc-lin:1", in, filepath.Join(dir, "lin.parquet")); r.err != nil {
		t.Fatalf("kiln score logistic: %v\n%s", r.err, r.stderr)
	}
	p := readPredictions(t, filepath.Join(dir, "lin.parquet"))
	r0, _ := strconv.ParseFloat(rows[1][0], 64)
	r1, _ := strconv.ParseFloat(rows[1][1], 64)
	if w := 1 / (1 + math.Exp(-(0.5*r0 - 0.25*r1 + 0.1))); math.Abs(p[0]-w) > 1e-12 {
		t.Errorf("logistic prediction %v, want %v", p[0], w)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func writeCSV(t *testing.T, path string, rows [][]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// readPredictions reads a scored file's prediction column.
func readPredictions(t *testing.T, path string) []float64 {
	t.Helper()
	r, err := dataset.OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(t.Context(), []string{"prediction"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	col := rec.Column(0).(*array.Float64)
	return append([]float64(nil), col.Float64Values()...)
}

// TestModelsImportMultinomial imports a Kiln multinomial file without and
// with --classes: the classes default to 0, 1, 2; named, they are what
// kiln score writes, one probability column each.
func TestModelsImportMultinomial(t *testing.T) {
	home, dir := t.TempDir(), t.TempDir()
	est := filepath.Join(dir, "m.json")
	if err := os.WriteFile(est, []byte(multinomialJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(data, []byte("a,b\n2,0\n0,3\n-2,-1.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		classes []string
		want    []string
	}{
		{"default", nil, []string{"0", "1", "2"}},
		{"named", []string{"red", "rosé", "white"}, []string{"red", "rosé", "white"}},
	} {
		args := []string{"--home", home, "models", "import", "wine-" + tc.name, "--estimator", est, "--reason", "from scikit-learn"}
		if tc.classes != nil {
			args = append(args, "--classes", strings.Join(tc.classes, ","))
		}
		if r := kiln(t, args...); r.err != nil || !strings.Contains(r.stdout, "task multiclass") {
			t.Fatalf("import %s: %v\n%s", tc.name, r.err, r.stdout)
		}
		out := filepath.Join(dir, tc.name+".parquet")
		if r := kiln(t, "--home", home, "score", "wine-"+tc.name+":1", data, out); r.err != nil {
			t.Fatalf("score %s: %v\n%s", tc.name, r.err, r.stderr)
		}
		rd, err := dataset.OpenParquet(out)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := rd.ReadAll(t.Context(), nil)
		rd.Close()
		if err != nil {
			t.Fatal(err)
		}
		pred, _, _ := dataset.Strings(rec, "prediction")
		if !slices.Equal(pred, tc.want) {
			t.Errorf("%s: predictions %q, want %q", tc.name, pred, tc.want)
		}
		for _, c := range tc.want {
			if !rec.Schema().HasField("probability_" + c) {
				t.Errorf("%s: no column probability_%s in %v", tc.name, c, rec.Schema())
			}
		}
		rec.Release()
		show := kiln(t, "--home", home, "models", "show", "wine-"+tc.name+":1")
		if want := "Classes    3: " + strings.Join(tc.want, ", "); show.err != nil || !strings.Contains(show.stdout, want) {
			t.Errorf("models show wine-%s:1 lacks %q (%v):\n%s", tc.name, want, show.err, show.stdout)
		}
	}
}
