package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// near reports whether got and want agree to tol, absolutely or relatively;
// two NaNs agree.
func near(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	d := math.Abs(got - want)
	return d <= tol || d <= tol*math.Abs(want)
}

func TestAUC(t *testing.T) {
	tests := []struct {
		name   string
		labels []float64
		scores []float64
		want   float64
	}{
		// Positives 0.35 and 0.8 beat 1 and 2 of the 2 negatives: 3/4.
		{"sklearn docs example", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, 0.75},
		// Positive 0.5 beats 0.2 and ties 0.5 (1.5), 0.9 beats both (2): 3.5/4.
		{"tie counts one half", []float64{0, 1, 0, 1}, []float64{0.5, 0.5, 0.2, 0.9}, 0.875},
		{"all tied", []float64{0, 1, 1, 0, 1}, []float64{0.3, 0.3, 0.3, 0.3, 0.3}, 0.5},
		{"perfect", []float64{0, 0, 1, 1}, []float64{0.1, 0.2, 0.8, 0.9}, 1},
		{"inverted", []float64{1, 1, 0, 0}, []float64{0.1, 0.2, 0.8, 0.9}, 0},
		// Positives 0.9, 0.6 beat both negatives, 0.3 beats 0.2: 5/6.
		{"unsorted input", []float64{1, 1, 0, 0, 1}, []float64{0.9, 0.6, 0.4, 0.2, 0.3}, 5.0 / 6},
		// Scores need not be probabilities: 7 beats both negatives (2), the
		// positive 2 beats -3 and ties the negative 2 (1.5): 3.5/4.
		{"raw scores", []float64{0, 1, 0, 1}, []float64{-3, 7, 2, 2}, 0.875},
		{"only positives", []float64{1, 1}, []float64{0.2, 0.7}, math.NaN()},
		{"only negatives", []float64{0, 0}, []float64{0.2, 0.7}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
		{"NaN score", []float64{0, 1}, []float64{0.2, math.NaN()}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AUC(tt.labels, tt.scores); !near(got, tt.want, 1e-15) {
				t.Errorf("AUC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLogLoss(t *testing.T) {
	tests := []struct {
		name   string
		labels []float64
		probs  []float64
		want   float64
	}{
		// -(ln 0.8 + ln 0.7)/2 = (0.2231435513 + 0.3566749439)/2.
		{"two rows", []float64{1, 0}, []float64{0.8, 0.3}, 0.2899092476264711},
		// -ln(0.9*0.6*0.6*0.8*0.3)/5 = -ln(0.07776)/5.
		{"five rows", []float64{1, 1, 0, 0, 1}, []float64{0.9, 0.6, 0.4, 0.2, 0.3}, 0.5108256237659907},
		{"certain and right", []float64{1, 0}, []float64{1, 0}, -math.Log(1 - 1e-15)},
		// Clipped to 1e-15: -ln(1e-15) = 15 ln 10.
		{"certain and wrong positive", []float64{1}, []float64{0}, 34.538776394910684},
		// Clipped to 1-1e-15, whose float64 complement is 9.992007221626409e-16.
		{"certain and wrong negative", []float64{0}, []float64{1}, 34.53957599234088},
		{"empty", nil, nil, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LogLoss(tt.labels, tt.probs); !near(got, tt.want, 1e-14) {
				t.Errorf("LogLoss = %.17g, want %.17g", got, tt.want)
			}
		})
	}
}

func TestConfusion(t *testing.T) {
	labels := []float64{1, 1, 0, 0, 1}
	probs := []float64{0.9, 0.6, 0.4, 0.2, 0.3}
	tests := []struct {
		name      string
		labels    []float64
		probs     []float64
		threshold float64
		want      Matrix
		acc       float64
		prec      float64
		rec       float64
		f1        float64
	}{
		// Predictions 1 1 0 0 0.
		{"at 0.5", labels, probs, 0.5, Matrix{TP: 2, FP: 0, TN: 2, FN: 1}, 0.8, 1, 2.0 / 3, 0.8},
		// Threshold is inclusive: predictions 1 1 1 1 1.
		{"inclusive threshold", labels, probs, 0.2, Matrix{TP: 3, FP: 2}, 0.6, 0.6, 1, 0.75},
		// Predictions 1 1 1 0 1.
		{"at 0.3", labels, probs, 0.3, Matrix{TP: 3, FP: 1, TN: 1}, 0.8, 0.75, 1, 6.0 / 7},
		{"nothing predicted positive", labels, probs, 0.95, Matrix{TN: 2, FN: 3}, 0.4, 0, 0, 0},
		{"no positives at all", []float64{0, 0}, []float64{0.1, 0.7}, 0.5, Matrix{FP: 1, TN: 1}, 0.5, 0, 0, 0},
		{"NaN predicts negative", []float64{1}, []float64{math.NaN()}, 0.5, Matrix{FN: 1}, 0, 0, 0, 0},
		{"empty", nil, nil, 0.5, Matrix{}, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Confusion(tt.labels, tt.probs, tt.threshold)
			if m != tt.want {
				t.Fatalf("Confusion = %+v, want %+v", m, tt.want)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"accuracy", m.Accuracy(), tt.acc},
				{"precision", m.Precision(), tt.prec},
				{"recall", m.Recall(), tt.rec},
				{"f1", m.F1(), tt.f1},
			} {
				if !near(c.got, c.want, 1e-15) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestBinary(t *testing.T) {
	got := Binary([]float64{1, 1, 0, 0, 1}, []float64{0.9, 0.6, 0.4, 0.2, 0.3}, 0.5)
	want := map[string]float64{
		"auc": 5.0 / 6, "logloss": 0.5108256237659907,
		// Thresholds 0.9, 0.6 (precision 1, recall +1/3 each), 0.4 (no new
		// positive), 0.3 (precision 3/4, recall +1/3): 1/3 + 1/3 + 1/4.
		"pr_auc": 11.0 / 12,
		// Every row alone in its bin: (0.1 + 0.4 + 0.4 + 0.2 + 0.7) / 5.
		"ece":      0.36,
		"accuracy": 0.8, "precision": 1, "recall": 2.0 / 3, "f1": 0.8,
		"positive_rate": 0.6, "rows": 5,
	}
	if len(got) != len(want) {
		t.Errorf("Binary keys = %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !near(g, w, 1e-15) {
			t.Errorf("Binary[%s] = %v, want %v", k, g, w)
		}
	}
}

func TestLengthMismatchPanics(t *testing.T) {
	fns := map[string]func(){
		"AUC":       func() { AUC([]float64{1}, nil) },
		"LogLoss":   func() { LogLoss([]float64{1}, nil) },
		"Confusion": func() { Confusion([]float64{1}, nil, 0.5) },
		"Binary":    func() { Binary(nil, []float64{1}, 0.5) },
	}
	for name, fn := range fns {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), name) {
					t.Errorf("recovered %v, want a panic naming %s", r, name)
				}
			}()
			fn()
		})
	}
}

// pythonWith returns a python3 interpreter that can import module, trying
// $KILN_PYTHON, python3 on PATH and /usr/bin/python3 (where Debian's
// python3-sklearn installs), or skips the test.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("KILN_PYTHON"); p != "" {
		candidates = append([]string{p}, candidates...)
	}
	for _, c := range candidates {
		if exec.Command(c, "-c", "import "+module).Run() == nil {
			return c
		}
	}
	t.Skipf("no python3 with %s (set KILN_PYTHON)", module)
	return ""
}

const sklearnScript = `
import json, sys
from sklearn.metrics import roc_auc_score, log_loss, accuracy_score, precision_score, recall_score, f1_score
out = []
for case in json.load(sys.stdin):
    y, p, t = case["labels"], case["probs"], case["threshold"]
    pred = [1 if x >= t else 0 for x in p]
    out.append({
        "auc": roc_auc_score(y, p),
        "logloss": log_loss(y, p, labels=[0, 1]),
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
    })
json.dump(out, sys.stdout)
`

func TestAgainstScikitLearn(t *testing.T) {
	py := pythonWith(t, "sklearn")
	rng := rand.New(rand.NewPCG(1, 2))
	type tc struct {
		Name      string    `json:"name"`
		Labels    []float64 `json:"labels"`
		Probs     []float64 `json:"probs"`
		Threshold float64   `json:"threshold"`
	}
	gen := func(name string, n int, posRate, signal float64, decimals int, threshold float64) tc {
		c := tc{Name: name, Threshold: threshold}
		scale := math.Pow(10, float64(decimals))
		for range n {
			y := 0.0
			if rng.Float64() < posRate {
				y = 1
			}
			z := rng.NormFloat64() + signal*(2*y-1)
			p := 1 / (1 + math.Exp(-z))
			// Keep away from 0 and 1 so that clipping conventions (sklearn's
			// default eps differs between versions) do not matter; rounding
			// creates ties.
			p = min(max(math.Round(p*scale)/scale, 0.01), 0.99)
			c.Labels = append(c.Labels, y)
			c.Probs = append(c.Probs, p)
		}
		return c
	}
	cases := []tc{
		gen("balanced", 1000, 0.5, 1, 12, 0.5),
		gen("imbalanced", 2000, 0.05, 1.5, 12, 0.3),
		gen("heavy ties", 800, 0.4, 0.7, 1, 0.5),
		gen("weak signal", 500, 0.5, 0.05, 6, 0.5),
		gen("nothing predicted positive", 300, 0.3, 1, 3, 0.995),
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", sklearnScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var want []map[string]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decode python output: %v\n%s", err, out)
	}
	for i, c := range cases {
		got := Binary(c.Labels, c.Probs, c.Threshold)
		for k, w := range want[i] {
			if !near(got[k], w, 1e-12) {
				t.Errorf("%s: %s = %.17g, scikit-learn %.17g", c.Name, k, got[k], w)
			}
		}
	}
}
