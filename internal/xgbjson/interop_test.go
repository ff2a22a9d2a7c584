package xgbjson

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// python is the interpreter with xgboost (see common rules: the Debian one).
const python = "/usr/bin/python3"

// fixture is testdata/data.json: rows and XGBoost's outputs on them.
type fixture struct {
	Version  string       `json:"xgboost_version"`
	Features [][]*float64 `json:"features"`
	Binary   outputs      `json:"binary"`
	Regr     outputs      `json:"regression"`
	Multi    outputs      `json:"multiclass"`
}

// outputs are XGBoost's predictions of a model on the fixture rows: one
// per row, or for a multi-class model NumClass per row, row-major (the
// prediction of a multi:softmax model is one class index per row).
type outputs struct {
	Margin     []float64 `json:"margin"`
	Prediction []float64 `json:"prediction"`
}

// rows returns the fixture rows with NaN for null.
func (f *fixture) rows() [][]float64 {
	out := make([][]float64, len(f.Features))
	for i, r := range f.Features {
		out[i] = make([]float64, len(r))
		for j, v := range r {
			out[i][j] = math.NaN()
			if v != nil {
				out[i][j] = *v
			}
		}
	}
	return out
}

func readFixture(t *testing.T, dir string) *fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s/data.json: %v", dir, err)
	}
	return &f
}

func parseFile(t *testing.T, path string) *Booster {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return b
}

// checkAgainst compares b's margins and predictions on rows with want.
func checkAgainst(t *testing.T, name string, b *Booster, rows [][]float64, want outputs) {
	t.Helper()
	if b.Multiclass() {
		checkMultiAgainst(t, name, b, rows, want)
		return
	}
	if len(want.Margin) != len(rows) || len(want.Prediction) != len(rows) {
		t.Fatalf("%s: %d margins, %d predictions for %d rows", name, len(want.Margin), len(want.Prediction), len(rows))
	}
	bad := 0
	for i, x := range rows {
		m, p := b.Margin(x), b.Predict(x)
		if math.Abs(m-want.Margin[i]) > 1e-6 || math.Abs(p-want.Prediction[i]) > 1e-6 {
			if bad++; bad <= 5 {
				t.Errorf("%s row %d %v: margin %v prediction %v, XGBoost %v %v", name, i, x, m, p, want.Margin[i], want.Prediction[i])
			}
		}
	}
}

// checkMultiAgainst compares a multi-class b's margins and probabilities
// (or, when want has one prediction per row, its predicted classes) on
// rows with want, and returns the largest probability difference.
func checkMultiAgainst(t *testing.T, name string, b *Booster, rows [][]float64, want outputs) float64 {
	t.Helper()
	k := b.NumClass
	classes := len(want.Prediction) == len(rows)
	if len(want.Margin) != len(rows)*k || (!classes && len(want.Prediction) != len(rows)*k) {
		t.Fatalf("%s: %d margins, %d predictions for %d rows of %d classes", name, len(want.Margin), len(want.Prediction), len(rows), k)
	}
	bad := 0
	worst := 0.0
	m, p := make([]float64, k), make([]float64, k)
	for i, x := range rows {
		b.Margins(x, m)
		b.PredictProba(x, p)
		for c := range k {
			ok := math.Abs(m[c]-want.Margin[i*k+c]) <= 1e-6
			if !classes {
				d := math.Abs(p[c] - want.Prediction[i*k+c])
				worst = math.Max(worst, d)
				ok = ok && d <= 1e-6
			}
			if !ok {
				if bad++; bad <= 5 {
					t.Errorf("%s row %d %v class %d: margin %v probability %v, XGBoost %v %v", name, i, x, c, m[c], p[c], want.Margin[i*k+c], want.Prediction)
				}
			}
		}
		if classes {
			if got := b.Predict(x); got != want.Prediction[i] {
				if bad++; bad <= 5 {
					t.Errorf("%s row %d %v: class %v, XGBoost %v", name, i, x, got, want.Prediction[i])
				}
			}
		}
	}
	return worst
}

func checkDir(t *testing.T, dir string) {
	f := readFixture(t, dir)
	rows := f.rows()
	bin := parseFile(t, filepath.Join(dir, "binary.json"))
	reg := parseFile(t, filepath.Join(dir, "regression.json"))
	if bin.Objective != ObjectiveBinaryLogistic || float32(bin.BaseScore) != 0.3 || bin.NumFeature != 6 || len(bin.FeatureNames) != 0 || len(bin.Trees) != 12 {
		t.Errorf("binary.json: objective %q base_score %v num_feature %d names %v trees %d", bin.Objective, bin.BaseScore, bin.NumFeature, bin.FeatureNames, len(bin.Trees))
	}
	if reg.Objective != ObjectiveSquaredError || reg.BaseScore != 2 || len(reg.FeatureNames) != 6 || reg.FeatureNames[0] != "f_a" || len(reg.Trees) != 8 {
		t.Errorf("regression.json: objective %q base_score %v names %v trees %d", reg.Objective, reg.BaseScore, reg.FeatureNames, len(reg.Trees))
	}
	checkAgainst(t, "binary", bin, rows, f.Binary)
	checkAgainst(t, "regression", reg, rows, f.Regr)
	multi := parseFile(t, filepath.Join(dir, "multiclass.json"))
	if multi.Objective != ObjectiveMultiSoftprob || multi.NumClass != 3 || float32(multi.BaseScore) != 0.2 || len(multi.Trees) != 24 ||
		len(multi.TreeInfo) != 24 || multi.TreeInfo[4] != 1 || multi.TreeInfo[23] != 2 || len(multi.FeatureNames) != 6 {
		t.Errorf("multiclass.json: objective %q num_class %d base_score %v trees %d tree_info %v names %v", multi.Objective, multi.NumClass, multi.BaseScore, len(multi.Trees), multi.TreeInfo, multi.FeatureNames)
	}
	worst := checkMultiAgainst(t, "multiclass", multi, rows, f.Multi)
	t.Logf("multiclass: %d rows, largest probability difference from XGBoost %.3g", len(rows), worst)
}

// TestMultiSoftmaxReadsAsSoftprob checks that a multi:softmax file (the
// same trees, XGBoost predicting the class) gives the same margins and
// probabilities as multi:softprob and predicts the most probable class.
func TestMultiSoftmaxReadsAsSoftprob(t *testing.T) {
	data, err := os.ReadFile("testdata/multiclass.json")
	if err != nil {
		t.Fatal(err)
	}
	prob, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	soft, err := Parse(bytes.Replace(data, []byte(`"name":"multi:softprob"`), []byte(`"name":"multi:softmax"`), 1))
	if err != nil {
		t.Fatal(err)
	}
	if soft.Objective != ObjectiveMultiSoftmax {
		t.Fatalf("objective %q", soft.Objective)
	}
	f := readFixture(t, "testdata")
	pp, ps := make([]float64, 3), make([]float64, 3)
	for i, x := range f.rows() {
		prob.PredictProba(x, pp)
		soft.PredictProba(x, ps)
		if !reflect.DeepEqual(pp, ps) {
			t.Fatalf("row %d: multi:softmax %v, multi:softprob %v", i, ps, pp)
		}
		best := 0
		for k := range pp {
			if pp[k] > pp[best] {
				best = k
			}
		}
		if c := soft.Predict(x); c != float64(best) {
			t.Fatalf("row %d: Predict %v, most probable class %d of %v", i, c, best, pp)
		}
	}
}

// TestXGBoostFixtures checks Parse and Margin against the committed models
// and XGBoost's predictions (testdata/gen.py made them).
func TestXGBoostFixtures(t *testing.T) {
	checkDir(t, "testdata")
}

// needXGBoost skips the test unless python has xgboost.
func needXGBoost(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not running Python")
	}
	if err := exec.Command(python, "-c", "import xgboost").Run(); err != nil {
		t.Skipf("%s with xgboost is not available (%v); install python3-xgboost to run the live interop tests", python, err)
	}
}

// TestXGBoostLive retrains the fixtures with the local XGBoost and checks
// Kiln against its predictions, and that the committed files are what the
// script makes.
func TestXGBoostLive(t *testing.T) {
	needXGBoost(t)
	dir := t.TempDir()
	if out, err := exec.Command(python, "testdata/gen.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("gen.py: %v\n%s", err, out)
	}
	checkDir(t, dir)
	for _, name := range []string{"binary.json", "regression.json", "multiclass.json", "data.json"} {
		a, _ := os.ReadFile(filepath.Join("testdata", name))
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.Equal(a, b) {
			t.Logf("testdata/%s differs from what this XGBoost (%s) makes; regenerate with gen.py if it is newer", name, readFixture(t, dir).Version)
		}
	}
}

// TestMarshalLoadsInXGBoost writes models with MarshalJSON, has XGBoost
// load them and predict the fixture rows, and compares with Margin.
func TestMarshalLoadsInXGBoost(t *testing.T) {
	needXGBoost(t)
	f := readFixture(t, "testdata")
	rows := f.rows()
	dir := t.TempDir()
	synthetic := &Booster{Objective: ObjectiveBinaryLogistic, BaseScore: 0.7, NumFeature: 6,
		FeatureNames: []string{"a", "b", "c", "d", "e", "f"},
		Trees:        []Tree{stump(3, 0, -0.5, 0.25, true), stump(5, 1e-3, 1, -1, false), stump(0, -7, 0.125, 3, true), dfsTree()}}
	// Multi-class, two rounds of trees not in class order, one class
	// without trees; multi:softmax makes XGBoost predict classes.
	multiSynth := &Booster{Objective: ObjectiveMultiSoftmax, BaseScore: -1.5, NumFeature: 6, NumClass: 4,
		FeatureNames: []string{"a", "b", "c", "d", "e", "f"}, TreeInfo: []int{2, 0, 0, 3, 2, 0, 3, 3},
		Trees: []Tree{stump(3, 0, -0.5, 0.25, true), stump(5, 1e-3, 1, -1, false), dfsTree(), stump(0, -7, 0.125, 3, true),
			stump(1, 0.5, 2, -2, false), stump(2, 0, 0.5, -0.5, true), stump(4, 0.25, -1, 1, false), dfsTree()}}
	for name, b := range map[string]*Booster{
		"binary":          parseFile(t, "testdata/binary.json"),
		"regression":      parseFile(t, "testdata/regression.json"),
		"multiclass":      parseFile(t, "testdata/multiclass.json"),
		"synthetic":       synthetic,
		"multi synthetic": multiSynth,
	} {
		data, err := b.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: MarshalJSON: %v", name, err)
		}
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(python, "testdata/gen.py", "--predict", path, "testdata/data.json").Output()
		if err != nil {
			t.Fatalf("%s: XGBoost cannot use Kiln's file: %v\n%s", name, err, stderr(err))
		}
		var want outputs
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkAgainst(t, name, b, rows, want)
	}
}

func stderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

// FuzzParse checks Parse never panics, and that whatever it accepts
// marshals, parses back to the same margins and never panics in Margin.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"binary.json", "regression.json", "multiclass.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	small, _ := (&Booster{Objective: ObjectiveSquaredError, BaseScore: 1, NumFeature: 2,
		Trees: []Tree{stump(1, 0.5, 1, 2, true)}}).MarshalJSON()
	f.Add(small)
	f.Add([]byte(`{"learner":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			return
		}
		x := []float64{0, math.NaN(), 1, -1, 0.5, 3}
		m := make([]float64, b.NumOutputs())
		b.Margins(x, m)
		_ = b.Predict(x)
		out, err := b.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a parsed model: %v", err)
		}
		b2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON()): %v\n%s", err, out)
		}
		if b2.NumOutputs() != len(m) {
			t.Fatalf("%d outputs after a round trip, %d before", b2.NumOutputs(), len(m))
		}
		m2 := make([]float64, len(m))
		b2.Margins(x, m2)
		for k := range m {
			if m2[k] != m[k] && !(m[k] != m[k] && m2[k] != m2[k]) {
				t.Fatalf("margin %d: %v after a round trip, %v before", k, m2[k], m[k])
			}
		}
	})
}
