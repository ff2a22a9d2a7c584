package activities_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/pipelines"
)

// TestMulticlassWine runs pipelines/wine.yaml's steps (training on the
// process runtime, for each algorithm): preprocess encodes the three
// cultivars as classes, the trainer fits a multinomial logistic regression
// or multi:softprob trees, evaluate's metrics are metrics.Multiclass of the
// bundle's probabilities on the holdout, the gate passes, and the scored
// file holds the most probable class and one probability column per class,
// equal to the bundle's.
func TestMulticlassWine(t *testing.T) {
	for _, algo := range []struct{ name, estimator string }{
		{"logistic", model.EstimatorMultinomial},
		{"gbdt", model.EstimatorXGBoost},
	} {
		t.Run(algo.name, func(t *testing.T) {
			spec := loadSpec(t, "wine.yaml")
			e := newEnv(t)
			c := e.chain(runInfo(spec, "wine-"+algo.name))
			c.must(step(t, spec, "ingest"))
			p := c.must(step(t, spec, "prep")).Artifacts.Prepared
			if want := []string{"class_0", "class_1", "class_2"}; p.Task != "multiclass" || !slices.Equal(p.Classes, want) {
				t.Fatalf("prepared task %q classes %q, want multiclass %q", p.Task, p.Classes, want)
			}
			train := readParquet(t, p.TrainURI)
			for i, y := range floats(t, train, "cultivar") {
				if y != 0 && y != 1 && y != 2 {
					t.Fatalf("train row %d has target %v, want a class index", i, y)
				}
			}
			tr := processTrain(t, spec, "train")
			tr.Train.Algorithm = algo.name
			c.must(tr)
			m, err := loadModel(c.acc.Bundle.URI)
			if err != nil {
				t.Fatal(err)
			}
			if m.Manifest.Task != model.TaskMulticlass || m.Manifest.Estimator.Type != algo.estimator || m.NumClass() != 3 || !slices.Equal(m.Manifest.Classes, p.Classes) {
				t.Fatalf("bundle task %q estimator %q classes %q", m.Manifest.Task, m.Manifest.Estimator.Type, m.Manifest.Classes)
			}

			ev := c.must(step(t, spec, "evaluate")).Artifacts.Evaluation
			if !ev.Passed || ev.Task != "multiclass" {
				t.Fatalf("evaluation passed %v task %q:\n%s", ev.Passed, ev.Task, ev.Report)
			}
			test := readParquet(t, p.TestURI)
			proba, err := m.PredictProba(test)
			if err != nil {
				t.Fatal(err)
			}
			names := strs(t, test, "cultivar")
			labels := make([]float64, len(names))
			for i, n := range names {
				labels[i] = float64(slices.Index(p.Classes, n))
			}
			want := metrics.Multiclass(labels, proba)
			for _, name := range metrics.MulticlassNames {
				if got := ev.Metrics[name]; got != want[name] {
					t.Errorf("evaluate %s = %v, want %v", name, got, want[name])
				}
			}
			if ev.Metrics["accuracy"] < 0.9 {
				t.Errorf("holdout accuracy %v, want >= 0.9", ev.Metrics["accuracy"])
			}

			c.must(step(t, spec, "register"))
			scored := c.must(step(t, spec, "score")).Artifacts.Scored
			out := readParquet(t, scored.URI)
			var cols []string
			for _, f := range out.Schema().Fields() {
				cols = append(cols, f.Name)
			}
			wantCols := []string{"cultivar", "prediction", "probability_class_0", "probability_class_1", "probability_class_2", "model", "model_version"}
			if !slices.Equal(cols, wantCols) {
				t.Fatalf("scored columns %q, want %q", cols, wantCols)
			}
			raw := readParquet(t, c.acc.Dataset.URI)
			all, err := m.PredictProba(raw)
			if err != nil {
				t.Fatal(err)
			}
			pred := strs(t, out, "prediction")
			right := 0
			for i, label := range strs(t, out, "cultivar") {
				row := all[i*3 : i*3+3]
				best := slices.Index(row, slices.Max(row))
				if pred[i] != p.Classes[best] {
					t.Fatalf("row %d: prediction %q, want %q (%v)", i, pred[i], p.Classes[best], row)
				}
				if pred[i] == label {
					right++
				}
			}
			for k, cl := range p.Classes {
				got := floats(t, out, "probability_"+cl)
				for i := range got {
					if got[i] != all[i*3+k] {
						t.Fatalf("row %d: probability_%s %v, want %v", i, cl, got[i], all[i*3+k])
					}
				}
			}
			if acc := float64(right) / float64(out.NumRows()); acc < 0.9 {
				t.Errorf("accuracy over all rows %v, want >= 0.9", acc)
			}
		})
	}
}

// TestPreprocessMulticlassTargets checks how preprocess reads a multiclass
// target: numbers sort as numbers (as scikit-learn's LabelEncoder does),
// and a target with two values, or with a value per row, is refused with a
// hint.
func TestPreprocessMulticlassTargets(t *testing.T) {
	spec := loadSpec(t, "wine.yaml")
	src, err := os.ReadFile(filepath.Join(repoRoot, "data", "wine.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// rewrite replaces the cultivar column by fn(row, cultivar).
	rewrite := func(t *testing.T, fn func(i int, v string) string) string {
		lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(src), "\r\n", "\n")), "\n")
		for i := 1; i < len(lines); i++ {
			f := strings.Split(lines[i], ",")
			f[len(f)-1] = fn(i, f[len(f)-1])
			lines[i] = strings.Join(f, ",")
		}
		path := filepath.Join(t.TempDir(), "wine.csv")
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name        string
		relabel     func(i int, v string) string
		wantClasses []string
		wantErr     []string
	}{
		{"numbers sort numerically", func(i int, v string) string {
			return map[string]string{"class_0": "10", "class_1": "9", "class_2": "100"}[v]
		}, []string{"9", "10", "100"}, nil},
		{"missing labels are dropped", func(i int, v string) string {
			if i%10 == 0 {
				return ""
			}
			return v
		}, []string{"class_0", "class_1", "class_2"}, nil},
		{"two classes", func(i int, v string) string {
			return strings.Replace(v, "class_2", "class_1", 1)
		}, nil, []string{"2 distinct values", "task: binary"}},
		{"a regression target", func(i int, v string) string { return strconv.Itoa(i) }, nil, []string{"178 distinct values in 178 labelled rows", "task: regression"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.chain(runInfo(spec, "wine-targets"))
			ing := step(t, spec, "ingest")
			ing.Ingest.Source = rewrite(t, tc.relabel)
			ing.Ingest.Expect = pipelines.Expectations{}
			c.must(ing)
			out, err := c.try(step(t, spec, "prep"))
			if tc.wantClasses == nil {
				if err == nil {
					t.Fatalf("preprocess succeeded with classes %q, want an error", out.Artifacts.Prepared.Classes)
				}
				checkAppError(t, err, "InvalidInput", tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := out.Artifacts.Prepared
			if !slices.Equal(p.Classes, tc.wantClasses) {
				t.Errorf("classes %q, want %q", p.Classes, tc.wantClasses)
			}
			for _, uri := range []string{p.TrainURI, p.ValidURI} {
				for i, y := range floats(t, readParquet(t, uri), "cultivar") {
					if math.IsNaN(y) || y < 0 || y >= float64(len(tc.wantClasses)) || y != math.Trunc(y) {
						t.Fatalf("%s row %d: target %v, want a class index", uri, i, y)
					}
				}
			}
		})
	}
}
