package metrics

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/reference.json from /usr/bin/python3 (scikit-learn, scipy)")

// refCase is one input of the reference tests: labels with two models'
// probabilities (classification) or true values with two models' predictions
// (regression).
type refCase struct {
	Name      string    `json:"name"`
	Task      string    `json:"task"`
	Labels    []float64 `json:"labels"`
	A         []float64 `json:"a"`
	B         []float64 `json:"b"`
	Threshold float64   `json:"threshold,omitempty"`
}

// refWant is what scikit-learn (metrics of A) and the Python DeLong
// reference (A against B) compute for a refCase.
type refWant struct {
	Metrics map[string]float64 `json:"metrics"`
	DeLong  *struct {
		AUCA float64 `json:"auc_a"`
		AUCB float64 `json:"auc_b"`
		Var  float64 `json:"var"`
		Z    float64 `json:"z"`
		P    float64 `json:"p"`
	} `json:"delong,omitempty"`
}

type refFixture struct {
	Cases []refCase `json:"cases"`
	Want  []refWant `json:"want"`
}

// refCases generates the reference inputs deterministically. Values are
// rounded to a few decimals so that the JSON round trip is exact and ties
// occur.
func refCases() []refCase {
	rng := rand.New(rand.NewPCG(7, 11))
	round := func(x float64, decimals int) float64 {
		s := math.Pow(10, float64(decimals))
		return math.Round(x*s) / s
	}
	binary := func(name string, n int, posRate, sigA, sigB, corr float64, decimals int, threshold float64) refCase {
		c := refCase{Name: name, Task: TaskBinary, Threshold: threshold}
		for range n {
			y := 0.0
			if rng.Float64() < posRate {
				y = 1
			}
			shared := rng.NormFloat64()
			za := corr*shared + math.Sqrt(1-corr*corr)*rng.NormFloat64() + sigA*(2*y-1)
			zb := corr*shared + math.Sqrt(1-corr*corr)*rng.NormFloat64() + sigB*(2*y-1)
			pa := min(max(round(1/(1+math.Exp(-za)), decimals), 0.001), 0.999)
			pb := min(max(round(1/(1+math.Exp(-zb)), decimals), 0.001), 0.999)
			c.Labels, c.A, c.B = append(c.Labels, y), append(c.A, pa), append(c.B, pb)
		}
		return c
	}
	regression := func(name string, n int, noiseA, noiseB float64) refCase {
		c := refCase{Name: name, Task: TaskRegression}
		for range n {
			x := rng.NormFloat64()
			y := round(3*x+1+0.5*rng.NormFloat64(), 6)
			c.Labels = append(c.Labels, y)
			c.A = append(c.A, round(3*x+1+noiseA*rng.NormFloat64(), 6))
			c.B = append(c.B, round(2.5*x+1.2+noiseB*rng.NormFloat64(), 6))
		}
		return c
	}
	return []refCase{
		binary("balanced, correlated", 600, 0.5, 1, 0.8, 0.7, 6, 0.5),
		binary("imbalanced", 1500, 0.07, 1.4, 1.2, 0.5, 6, 0.3),
		binary("heavy ties", 400, 0.4, 0.8, 0.8, 0.3, 1, 0.5),
		binary("equal models", 300, 0.5, 0.5, 0.5, 0.9, 3, 0.5),
		binary("small", 25, 0.4, 1, 0.2, 0.2, 2, 0.5),
		regression("regression", 800, 0.5, 1.2),
		regression("regression, small", 12, 2, 3),
	}
}

// refScript computes the references: scikit-learn's metrics of model A and,
// for classification, DeLong's test of A against B by its definition (the
// O(mn) kernel matrix, not the midrank algorithm the Go code uses).
const refScript = `
import json, sys
import numpy as np
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import (roc_auc_score, average_precision_score, log_loss, accuracy_score,
    precision_score, recall_score, f1_score, mean_squared_error, mean_absolute_error, r2_score)

def ece(y, p, bins=10):
    # Bin as calibration_curve(strategy="uniform") does and weight each bin's gap by its size.
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts != 0]
    return float(np.sum(counts * np.abs(prob_true - prob_pred)) / len(p))

def delong(y, a, b):
    y = np.asarray(y) >= 0.5
    def components(s):
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)
        return psi.mean(axis=1), psi.mean(axis=0), psi.mean()
    v10a, v01a, auca = components(np.asarray(a))
    v10b, v01b, aucb = components(np.asarray(b))
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    s = s10 / len(v10a) + s01 / len(v01a)
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (auca - aucb) / np.sqrt(var)
    return {"auc_a": auca, "auc_b": aucb, "var": var, "z": z, "p": norm.sf(z)}

out = []
for c in json.load(sys.stdin):
    y, a = np.asarray(c["labels"]), np.asarray(c["a"])
    if c["task"] == "regression":
        out.append({"metrics": {
            "rmse": mean_squared_error(y, a, squared=False),
            "mae": mean_absolute_error(y, a),
            "r2": r2_score(y, a),
        }})
        continue
    pred = (a >= c["threshold"]).astype(int)
    out.append({"metrics": {
        "auc": roc_auc_score(y, a),
        "pr_auc": average_precision_score(y, a),
        "logloss": log_loss(y, a, labels=[0, 1]),
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
        "ece": ece(y, a),
    }, "delong": {k: float(v) for k, v in delong(y, a, c["b"]).items()}})
json.dump(out, sys.stdout)
`

const refFile = "testdata/reference.json"

// checkReference compares this package with the reference values to 1e-9.
func checkReference(t *testing.T, cases []refCase, want []refWant) {
	t.Helper()
	if len(cases) != len(want) {
		t.Fatalf("%d cases but %d reference results", len(cases), len(want))
	}
	for i, c := range cases {
		var got map[string]float64
		if c.Task == TaskRegression {
			got = Regression(c.Labels, c.A)
		} else {
			got = Binary(c.Labels, c.A, c.Threshold)
		}
		for k, w := range want[i].Metrics {
			if g, ok := got[k]; !ok || !near(g, w, 1e-9) {
				t.Errorf("%s: %s = %.17g, reference %.17g", c.Name, k, g, w)
			}
		}
		d := want[i].DeLong
		if d == nil {
			continue
		}
		cmp, err := DeLong(c.Labels, c.A, c.B)
		if err != nil {
			t.Errorf("%s: DeLong: %v", c.Name, err)
			continue
		}
		for _, f := range []struct {
			name      string
			got, want float64
		}{
			{"challenger AUC", cmp.Challenger, d.AUCA}, {"champion AUC", cmp.Champion, d.AUCB},
			{"variance", cmp.StdErr * cmp.StdErr, d.Var}, {"z", cmp.Z, d.Z}, {"p", cmp.PValue, d.P},
		} {
			if !near(f.got, f.want, 1e-9) {
				t.Errorf("%s: DeLong %s = %.17g, reference %.17g", c.Name, f.name, f.got, f.want)
			}
		}
	}
}

// TestReferenceFixture checks against the committed reference values (no
// Python needed).
func TestReferenceFixture(t *testing.T) {
	data, err := os.ReadFile(refFile)
	if err != nil {
		t.Fatal(err)
	}
	var fx refFixture
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatalf("%s: %v", refFile, err)
	}
	if len(fx.Cases) == 0 {
		t.Fatalf("%s has no cases", refFile)
	}
	checkReference(t, fx.Cases, fx.Want)
}

// TestAgainstPythonReference recomputes the references with scikit-learn and
// scipy (skipping without them); -update rewrites the fixture.
func TestAgainstPythonReference(t *testing.T) {
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import sklearn, scipy, numpy").Run() != nil {
		t.Skipf("%s with scikit-learn, scipy and numpy is not available (Debian: apt install python3-sklearn python3-scipy)", py)
	}
	cases := refCases()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", refScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var want []refWant
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decoding python output: %v\n%s", err, out)
	}
	checkReference(t, cases, want)
	if *update {
		data, err := json.MarshalIndent(refFixture{Cases: cases, Want: want}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(filepath.Dir(refFile), ".reference.json.tmp")
		if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, refFile); err != nil {
			t.Fatal(err)
		}
	}
}
