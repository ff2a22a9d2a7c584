package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// TestModelsImportWithRecipe imports a logistic model trained elsewhere on
// the features of a spec's preprocess recipe: Kiln fits the recipe on the
// dataset, the bundle carries it, and kiln score predicts what the recipe
// and the weights give; a model that reads other features is refused with
// the recipe's features named.
func TestModelsImportWithRecipe(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	data := filepath.Join(dir, "churn.csv")
	var b strings.Builder
	b.WriteString("id,plan,tenure,charges,churn\n")
	plans := []string{"basic", "pro", "", "enterprise"}
	for i := range 300 {
		tenure := fmt.Sprint(i % 50)
		if i%11 == 0 {
			tenure = ""
		}
		fmt.Fprintf(&b, "%d,%s,%s,%.2f,%d\n", i, plans[i%4], tenure, 20+float64(i%37)*1.5, i%2)
	}
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "churn.yaml")
	if err := os.WriteFile(spec, []byte(`apiVersion: kiln/v1
kind: Pipeline
name: churn
steps:
  - name: ingest
    uses: ingest
    with: {source: churn.csv}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: churn
      exclude: [id]
      transforms:
        - impute: {columns: ["*"]}
        - onehot: {columns: [plan]}
        - standardize: {columns: [tenure, charges]}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// What the recipe fitted on every row produces (as the import fits it).
	parsed, err := pipelines.ParseFile(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(dir, "churn.parquet")
	if _, err := dataset.CSVToParquet(context.Background(), data, pq, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(pq)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	fitted, err := transform.Fit(parsed.Steps[1].Preprocess.Recipe(), r.Schema(), rec)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	l := model.Logistic{Type: model.EstimatorLogistic, Features: fitted.Features, Intercept: 0.2}
	for j := range fitted.Features {
		l.Weights = append(l.Weights, float64(j%3)-0.7)
	}
	est, _ := json.Marshal(l)
	estFile := filepath.Join(dir, "logistic.json")
	if err := os.WriteFile(estFile, est, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := model.New(model.Manifest{
		FormatVersion: model.FormatVersion, Name: "x", Task: model.TaskBinary, Target: "churn", Output: model.OutputProbability,
		Inputs: fitted.Inputs, Transforms: fitted, Estimator: model.Estimator{Type: model.EstimatorLogistic, File: "m.json"},
	}, map[string][]byte{"m.json": est})
	if err != nil {
		t.Fatal(err)
	}

	res := kiln(t, "--home", home, "models", "import", "churn-nb", "--estimator", estFile, "--spec", spec, "--dataset", data, "--reason", "notebook on Kiln's recipe")
	if res.err != nil {
		t.Fatalf("import: %v\n%s", res.err, res.stderr)
	}
	out := filepath.Join(dir, "scored.parquet")
	if res := kiln(t, "--home", home, "score", "churn-nb:1", pq, out); res.err != nil {
		t.Fatalf("score: %v\n%s", res.err, res.stderr)
	}
	got := readPredictions(t, out)
	exp, err := want.Predict(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exp) {
		t.Fatalf("%d predictions, want %d", len(got), len(exp))
	}
	for i := range exp {
		if math.Float64bits(got[i]) != math.Float64bits(exp[i]) {
			t.Fatalf("row %d: %v, the recipe and weights give %v", i, got[i], exp[i])
		}
	}
	lin := kiln(t, "--home", home, "models", "lineage", "churn-nb:1")
	for _, w := range []string{"churn.csv", "train", "spec"} {
		if !strings.Contains(lin.stdout, w) {
			t.Errorf("lineage lacks %q:\n%s", w, lin.stdout)
		}
	}

	// Features in another order are refused, naming the recipe's.
	l.Features[0], l.Features[1] = l.Features[1], l.Features[0]
	bad, _ := json.Marshal(l)
	if err := os.WriteFile(estFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	res = kiln(t, "--home", home, "models", "import", "churn-nb", "--estimator", estFile, "--spec", spec, "--dataset", data, "--reason", "r")
	if res.exitCode() != 2 || !strings.Contains(res.err.Error(), "feature 0") || !strings.Contains(res.err.Error(), fitted.Features[0]) {
		t.Errorf("swapped features: exit %d, %v", res.exitCode(), res.err)
	}
	res = kiln(t, "--home", home, "models", "import", "churn-nb", "--estimator", estFile, "--spec", spec, "--reason", "r")
	if res.exitCode() != 2 || !strings.Contains(res.err.Error(), "go together") {
		t.Errorf("--spec without --dataset: exit %d, %v", res.exitCode(), res.err)
	}
}
