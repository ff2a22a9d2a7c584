package xgbjson

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
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
}

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
	for _, name := range []string{"binary.json", "regression.json", "data.json"} {
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
	for name, b := range map[string]*Booster{
		"binary":     parseFile(t, "testdata/binary.json"),
		"regression": parseFile(t, "testdata/regression.json"),
		"synthetic":  synthetic,
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
	for _, name := range []string{"binary.json", "regression.json"} {
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
		m := b.Margin(x)
		out, err := b.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a parsed model: %v", err)
		}
		b2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON()): %v\n%s", err, out)
		}
		if m2 := b2.Margin(x); m2 != m && !(m != m && m2 != m2) {
			t.Fatalf("margin %v after a round trip, %v before", m2, m)
		}
	})
}
