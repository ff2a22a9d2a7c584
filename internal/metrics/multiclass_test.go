package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// checkMulticlass compares every key of want with Multiclass's result to
// tol; a NaN want must be NaN.
func checkMulticlass(t *testing.T, got, want map[string]float64, tol float64) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !near(g, w, tol) {
			t.Errorf("%s = %.17g, want %.17g", k, g, w)
		}
	}
}

func TestMulticlass(t *testing.T) {
	// eps is MulticlassEpsilon; a probability of 0 is clipped to it.
	const eps = 0x1p-52
	tests := []struct {
		name   string
		labels []float64
		probs  []float64
		want   map[string]float64
	}{
		{
			// Predictions 0 1 1 2 0 1 against labels 0 1 2 1 0 0:
			//   class 0: tp 2, fp 0, support 3: P 1, R 2/3, F1 4/5
			//   class 1: tp 1, fp 2, support 2: P 1/3, R 1/2, F1 2/5
			//   class 2: tp 0, fp 1, support 1: P 0, R 0, F1 0
			// AUC class 0: positives .7 .5 .3 against .1 .2 .3: 3 + 3 +
			// (1 + 1 + ½) = 8.5/9; class 1: positives .6 .3 against .2 .5
			// .4 .5: 4 + 1 = 5/8; class 2: positive .3 against .1 .3 .4 .1
			// .2: 3 + ½ = 3.5/5.
			name:   "three classes",
			labels: []float64{0, 1, 2, 1, 0, 0},
			probs: []float64{
				0.7, 0.2, 0.1,
				0.1, 0.6, 0.3,
				0.2, 0.5, 0.3,
				0.3, 0.3, 0.4,
				0.5, 0.4, 0.1,
				0.3, 0.5, 0.2,
			},
			want: map[string]float64{
				"accuracy":        3.0 / 6,
				"precision_macro": (1 + 1.0/3 + 0) / 3,
				"recall_macro":    (2.0/3 + 1.0/2 + 0) / 3,
				"f1_macro":        (4.0/5 + 2.0/5 + 0) / 3,
				"f1_weighted":     (3*4.0/5 + 2*2.0/5 + 1*0) / 6,
				"logloss":         -(math.Log(0.7) + math.Log(0.6) + math.Log(0.3) + math.Log(0.3) + math.Log(0.5) + math.Log(0.3)) / 6,
				"auc_ovr":         (8.5/9 + 5.0/8 + 3.5/5) / 3,
				"rows":            6,
			},
		},
		{
			// Class 2 is never a label: AUC is undefined, and the averages
			// run over classes 0 and 1 only while it is never predicted.
			// Predictions 0 1 1 0: class 0 tp 1, fp 1, support 2 (P R F1
			// ½); class 1 tp 1, fp 1, support 2 (½).
			name:   "class missing from labels",
			labels: []float64{0, 1, 0, 1},
			probs: []float64{
				0.8, 0.1, 0.1,
				0.2, 0.7, 0.1,
				0.3, 0.6, 0.1,
				0.5, 0.4, 0.1,
			},
			want: map[string]float64{
				"accuracy": 0.5, "precision_macro": 0.5, "recall_macro": 0.5, "f1_macro": 0.5, "f1_weighted": 0.5,
				"logloss": -(math.Log(0.8) + math.Log(0.7) + math.Log(0.3) + math.Log(0.4)) / 4,
				"auc_ovr": math.NaN(),
			},
		},
		{
			// Class 2 is a label but never predicted (predictions 0 1 0 1):
			// it counts in the averages with P = R = F1 = 0; class 0 tp 1,
			// fp 1, support 1 (P ½, R 1, F1 2/3); class 1 tp 2, fp 0,
			// support 2 (P = R = F1 = 1).
			name:   "class never predicted",
			labels: []float64{0, 1, 2, 1},
			probs: []float64{
				0.5, 0.3, 0.2,
				0.1, 0.6, 0.3,
				0.4, 0.3, 0.3,
				0.3, 0.4, 0.3,
			},
			want: map[string]float64{
				"accuracy":        3.0 / 4,
				"precision_macro": (0.5 + 1 + 0) / 3, "recall_macro": (1 + 1 + 0) / 3.0,
				"f1_macro": (2.0/3 + 1 + 0) / 3, "f1_weighted": (2.0/3 + 2*1 + 0) / 4,
			},
		},
		{
			// Ties predict the first class, as numpy's argmax: predictions
			// 0 0 1 against labels 1 0 1.
			name:   "tied probabilities",
			labels: []float64{1, 0, 1},
			probs: []float64{
				0.4, 0.4, 0.2,
				0.5, 0.25, 0.25,
				0.25, 0.5, 0.25,
			},
			want: map[string]float64{"accuracy": 2.0 / 3},
		},
		{
			// Certain and right: -log((1-eps)/(1-eps+2eps)); certain and
			// wrong: the label's 0 is clipped to eps, the row's clipped
			// sum is 1-eps+2eps = 1+eps.
			name:   "certain predictions are clipped",
			labels: []float64{0, 2},
			probs: []float64{
				1, 0, 0,
				1, 0, 0,
			},
			want: map[string]float64{
				"accuracy": 0.5,
				"logloss":  (-math.Log((1-eps)/(1+eps)) - math.Log(eps/(1+eps))) / 2,
			},
		},
		{
			name:   "empty",
			labels: nil,
			probs:  nil,
			want: map[string]float64{
				"accuracy": math.NaN(), "f1_macro": math.NaN(), "f1_weighted": math.NaN(),
				"precision_macro": math.NaN(), "recall_macro": math.NaN(),
				"logloss": math.NaN(), "auc_ovr": math.NaN(), "rows": 0,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Multiclass(tt.labels, tt.probs)
			if len(got) != len(MulticlassNames)+1 {
				t.Errorf("Multiclass has keys %v, want %v and rows", got, MulticlassNames)
			}
			for _, k := range MulticlassNames {
				if _, ok := got[k]; !ok {
					t.Errorf("Multiclass has no %s", k)
				}
			}
			checkMulticlass(t, got, tt.want, 1e-14)
		})
	}
}

func TestMulticlassPanics(t *testing.T) {
	tests := []struct {
		name   string
		labels []float64
		probs  []float64
		want   string
	}{
		{"label out of range", []float64{0, 3}, []float64{0.5, 0.5, 0, 0.5, 0.5, 0}, "label 3 of row 1 is not a class index in [0, 3)"},
		{"negative label", []float64{-1}, []float64{0.5, 0.5}, "label -1 of row 0"},
		{"fractional label", []float64{0.5}, []float64{0.5, 0.5}, "label 0.5 of row 0"},
		{"NaN label", []float64{math.NaN()}, []float64{0.5, 0.5}, "label NaN of row 0"},
		{"ragged probabilities", []float64{0, 1}, []float64{0.5, 0.5, 1}, "2 labels but 3 probabilities"},
		{"one class", []float64{0, 0}, []float64{1, 1}, "2 labels but 2 probabilities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, "metrics.Multiclass") || !strings.Contains(s, tt.want) {
					t.Errorf("recovered %v, want a panic containing %q", r, tt.want)
				}
			}()
			Multiclass(tt.labels, tt.probs)
		})
	}
}

// multiclassCase is one input of TestMulticlassAgainstScikitLearn.
type multiclassCase struct {
	Name   string    `json:"name"`
	K      int       `json:"k"`
	Labels []float64 `json:"labels"`
	Probs  []float64 `json:"probs"` // row-major n×K
}

// multiclassCases generates the scikit-learn comparison inputs
// deterministically. Each row's probabilities are m_k/Σm for whole numbers
// m_k in [0, grain], so that rows sum to 1 (as roc_auc_score demands),
// zeros and ones occur for a small grain, and ties are common.
func multiclassCases() []multiclassCase {
	rng := rand.New(rand.NewPCG(3, 5))
	// gen draws n rows of k classes; the label is drawn from prior (nil:
	// uniform), its score raised by signal; never (>= 0) is a class whose
	// weight is forced below every other (never predicted).
	gen := func(name string, n, k int, prior []float64, signal float64, grain int, never int) multiclassCase {
		c := multiclassCase{Name: name, K: k}
		for range n {
			y := rng.IntN(k)
			if prior != nil {
				u, acc := rng.Float64(), 0.0
				for j, p := range prior {
					acc += p
					if u < acc {
						y = j
						break
					}
				}
			}
			z := make([]float64, k)
			var zs float64
			for j := range z {
				z[j] = math.Exp(rng.NormFloat64() + signal*b2f(j == y))
				zs += z[j]
			}
			m := make([]float64, k)
			var ms float64
			for j := range m {
				m[j] = math.Round(float64(grain) * z[j] / zs)
				if j == never {
					m[j] = 0
				}
				ms += m[j]
			}
			if ms == 0 {
				m[(y+1)%k], ms = 1, 1 // a confidently wrong row
				if (y+1)%k == never {
					m[(y+2)%k] = 1
					m[never] = 0
				}
			}
			for j := range m {
				c.Probs = append(c.Probs, m[j]/ms)
			}
			c.Labels = append(c.Labels, float64(y))
		}
		return c
	}
	return []multiclassCase{
		gen("3 classes", 600, 3, nil, 1, 1_000_000, -1),
		gen("4 classes, imbalanced", 800, 4, []float64{0.6, 0.25, 0.1, 0.05}, 1.5, 10_000, -1),
		gen("5 classes, heavy ties", 500, 5, nil, 1, 4, -1),
		gen("4 classes, class 3 never predicted", 400, 4, nil, 1, 1000, 3),
		gen("4 classes, class 2 never a label", 300, 4, []float64{0.4, 0.3, 0, 0.3}, 1, 1000, -1),
		gen("3 classes, zeros and ones", 300, 3, nil, 2, 1, -1),
		gen("5 classes, weak signal", 400, 5, nil, 0.1, 100, -1),
		gen("3 classes, small", 9, 3, nil, 1, 10, -1),
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// multiclassScript computes scikit-learn's metrics for each case; an
// error (roc_auc_score refuses a class without labels) is null.
const multiclassScript = `
import json, sys
import numpy as np
from sklearn.metrics import (accuracy_score, f1_score, precision_score, recall_score,
    log_loss, roc_auc_score)

out = []
for c in json.load(sys.stdin):
    k = c["k"]
    y = np.asarray(c["labels"], dtype=int)
    p = np.asarray(c["probs"], dtype=float).reshape(-1, k)
    pred = p.argmax(axis=1)
    m = {
        "accuracy": accuracy_score(y, pred),
        "f1_macro": f1_score(y, pred, average="macro", zero_division=0),
        "f1_weighted": f1_score(y, pred, average="weighted", zero_division=0),
        "precision_macro": precision_score(y, pred, average="macro", zero_division=0),
        "recall_macro": recall_score(y, pred, average="macro", zero_division=0),
        "logloss": log_loss(y, p, labels=list(range(k))),
    }
    try:
        m["auc_ovr"] = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(range(k)))
    except ValueError as e:
        m["auc_ovr"] = None
        m["auc_error"] = str(e)
    out.append({"version": __import__("sklearn").__version__, "metrics": m})
json.dump(out, sys.stdout)
`

// TestMulticlassAgainstScikitLearn checks Multiclass against scikit-learn
// (1.2, Debian's python3-sklearn) to 1e-9, live through /usr/bin/python3;
// it skips without scikit-learn.
func TestMulticlassAgainstScikitLearn(t *testing.T) {
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import sklearn, numpy").Run() != nil {
		t.Skipf("%s with scikit-learn and numpy is not available (Debian: apt install python3-sklearn)", py)
	}
	cases := multiclassCases()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", multiclassScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var want []struct {
		Version string `json:"version"`
		Metrics struct {
			Accuracy       float64  `json:"accuracy"`
			F1Macro        float64  `json:"f1_macro"`
			F1Weighted     float64  `json:"f1_weighted"`
			PrecisionMacro float64  `json:"precision_macro"`
			RecallMacro    float64  `json:"recall_macro"`
			LogLoss        float64  `json:"logloss"`
			AUCOVR         *float64 `json:"auc_ovr"`
			AUCError       string   `json:"auc_error"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decoding python output: %v\n%s", err, out)
	}
	if len(want) != len(cases) {
		t.Fatalf("%d cases but %d results", len(cases), len(want))
	}
	if v := want[0].Version; !strings.HasPrefix(v, "1.2.") {
		t.Logf("scikit-learn %s: Multiclass follows 1.2 (log_loss's default eps changed in 1.2 and again later)", v)
	}
	var worst float64
	for i, c := range cases {
		w := want[i].Metrics
		auc := math.NaN()
		if w.AUCOVR != nil {
			auc = *w.AUCOVR
		} else {
			t.Logf("%s: scikit-learn refuses auc_ovr: %s", c.Name, w.AUCError)
		}
		ref := map[string]float64{
			"accuracy": w.Accuracy, "f1_macro": w.F1Macro, "f1_weighted": w.F1Weighted,
			"precision_macro": w.PrecisionMacro, "recall_macro": w.RecallMacro,
			"logloss": w.LogLoss, "auc_ovr": auc, "rows": float64(len(c.Labels)),
		}
		got := Multiclass(c.Labels, c.Probs)
		t.Run(c.Name, func(t *testing.T) { checkMulticlass(t, got, ref, 1e-9) })
		for k, r := range ref {
			if !math.IsNaN(r) {
				worst = max(worst, math.Abs(got[k]-r)/max(1, math.Abs(r)))
			}
		}
	}
	t.Logf("largest difference from scikit-learn: %.3g", worst)
}

// TestMulticlassPredicted: from the predicted classes alone, the metrics
// that need no probabilities are Multiclass's on the probabilities those
// classes are the argmax of; a prediction that is no class index panics.
func TestMulticlassPredicted(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int{3, 4, 6} {
		n := 200
		labels := make([]float64, n)
		probs := make([]float64, n*k)
		preds := make([]float64, n)
		for i := range n {
			labels[i] = float64(r.IntN(k))
			best := 0
			for c := range k {
				probs[i*k+c] = r.Float64()
				if probs[i*k+c] > probs[i*k+best] {
					best = c
				}
			}
			preds[i] = float64(best)
		}
		want := Multiclass(labels, probs)
		got := MulticlassPredicted(labels, preds, k)
		for _, name := range append(MulticlassPredictedNames, "rows") {
			if got[name] != want[name] {
				t.Errorf("k=%d %s = %v, want %v", k, name, got[name], want[name])
			}
		}
		if _, ok := got["logloss"]; ok {
			t.Errorf("k=%d: logloss from classes alone", k)
		}
	}
	for _, tc := range []struct {
		name          string
		labels, preds []float64
	}{
		{"prediction out of range", []float64{0, 1}, []float64{0, 3}},
		{"fractional prediction", []float64{0, 1}, []float64{0.5, 1}},
		{"label out of range", []float64{0, -1}, []float64{0, 1}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			MulticlassPredicted(tc.labels, tc.preds, 3)
		}()
	}
}
