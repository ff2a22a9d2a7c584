package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAveragePrecision(t *testing.T) {
	tests := []struct {
		name   string
		labels []float64
		scores []float64
		want   float64
	}{
		// sklearn docs: average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.8333.
		{"sklearn docs example", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, 5.0 / 6},
		// One threshold holding everything: precision 2/4 at recall 1.
		{"all tied", []float64{1, 0, 1, 0}, []float64{0.5, 0.5, 0.5, 0.5}, 0.5},
		{"perfect", []float64{0, 1, 1}, []float64{0.1, 0.8, 0.9}, 1},
		// Order 0.9(0) 0.8(0) 0.2(1) 0.1(1): P=1/3 at R=1/2, P=2/4 at R=1.
		{"inverted", []float64{0, 0, 1, 1}, []float64{0.9, 0.8, 0.2, 0.1}, 0.5*(1.0/3) + 0.5*0.5},
		{"no negatives", []float64{1, 1}, []float64{0.2, 0.3}, 1},
		{"no positives", []float64{0, 0}, []float64{0.2, 0.3}, math.NaN()},
		{"NaN", []float64{0, 1}, []float64{math.NaN(), 0.3}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AveragePrecision(tt.labels, tt.scores); !near(got, tt.want, 1e-15) {
				t.Errorf("AveragePrecision = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestECE(t *testing.T) {
	tests := []struct {
		name   string
		labels []float64
		probs  []float64
		want   float64
	}{
		{"perfectly calibrated bins", []float64{1, 0, 1, 0}, []float64{0.5, 0.5, 0.5, 0.5}, 0},
		// 0.1 is the upper edge of bin 0, so it shares a bin with 0.05:
		// |0 - 0.075| * 2/4; 0.95 and 1 share the last bin: |1 - 0.975| * 2/4.
		{"edges belong to the lower bin", []float64{0, 0, 1, 1}, []float64{0.05, 0.1, 0.95, 1}, 0.5*0.075 + 0.5*0.025},
		// 0.3 (the edge, computed as 3*0.1 = 0.30000000000000004) shares
		// (0.2, 0.3] with 0.25: |1/2 - 0.275|.
		{"float edge", []float64{1, 0}, []float64{0.3, 0.25}, 0.225},
		{"empty", nil, nil, math.NaN()},
		{"NaN", []float64{1}, []float64{math.NaN()}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ECE(tt.labels, tt.probs); !near(got, tt.want, 1e-15) {
				t.Errorf("ECE = %.17g, want %.17g", got, tt.want)
			}
		})
	}
	for p, want := range map[float64]int{0: 0, 0.1: 0, 0.10000001: 1, 0.3: 2, 0.5: 4, 0.9: 8, 0.95: 9, 1: 9, -1: 0, 2: 9} {
		if got := ECEBin(p); got != want {
			t.Errorf("ECEBin(%v) = %d, want %d", p, got, want)
		}
	}
}

func TestRegression(t *testing.T) {
	tests := []struct {
		name          string
		labels, preds []float64
		rmse, mae, r2 float64
	}{
		// Errors 0, 1, -2: MSE 5/3, MAE 1; mean 2, SS_tot 2, SS_res 5.
		{"hand computed", []float64{1, 2, 3}, []float64{1, 1, 5}, math.Sqrt(5.0 / 3), 1, 1 - 5.0/2},
		{"exact", []float64{1, 2, 3}, []float64{1, 2, 3}, 0, 0, 1},
		{"constant labels, exact", []float64{4, 4}, []float64{4, 4}, 0, 0, 1},
		{"constant labels, inexact", []float64{4, 4}, []float64{4, 5}, math.Sqrt(0.5), 0.5, 0},
		{"empty", nil, nil, math.NaN(), math.NaN(), math.NaN()},
		{"NaN", []float64{1, 2}, []float64{1, math.NaN()}, math.NaN(), math.NaN(), math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Regression(tt.labels, tt.preds)
			for k, w := range map[string]float64{"rmse": tt.rmse, "mae": tt.mae, "r2": tt.r2, "rows": float64(len(tt.labels))} {
				if !near(got[k], w, 1e-15) {
					t.Errorf("%s = %v, want %v", k, got[k], w)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	labels, probs := []float64{1, 1, 0, 0, 1}, []float64{0.9, 0.6, 0.4, 0.2, 0.3}
	want := Binary(labels, probs, 0.5)
	for _, name := range BinaryNames {
		if name == "positive_rate" {
			continue
		}
		fn, err := Lookup(TaskBinary, name, 0.5)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", name, err)
		}
		if got := fn(labels, probs); got != want[name] {
			t.Errorf("Lookup(%s) computes %v, Binary %v", name, got, want[name])
		}
	}
	for _, name := range RegressionNames {
		if _, err := Lookup(TaskRegression, name, 0); err != nil {
			t.Errorf("Lookup(regression, %s): %v", name, err)
		}
	}
	for _, c := range [][2]string{{TaskRegression, "auc"}, {TaskBinary, "rmse"}, {"multiclass", "auc"}, {TaskBinary, "positive_rate"}} {
		if _, err := Lookup(c[0], c[1], 0.5); err == nil {
			t.Errorf("Lookup(%s, %s) succeeded", c[0], c[1])
		}
	}
}

// correlatedScores draws labels and two correlated scorers, the challenger
// with signal a and the champion with signal b.
func correlatedScores(seed uint64, n int, a, b float64) (labels, ch, champ []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for range n {
		y := float64(rng.IntN(2))
		s := rng.NormFloat64()
		labels = append(labels, y)
		ch = append(ch, 0.6*s+0.8*rng.NormFloat64()+a*(2*y-1))
		champ = append(champ, 0.6*s+0.8*rng.NormFloat64()+b*(2*y-1))
	}
	return
}

func TestDeLongProperties(t *testing.T) {
	labels, better, worse := correlatedScores(3, 2000, 1.0, 0.6)
	c, err := DeLong(labels, better, worse)
	if err != nil {
		t.Fatal(err)
	}
	if c.Diff <= 0 || c.PValue > 1e-6 {
		t.Errorf("clearly better challenger: %v", c)
	}
	r, err := DeLong(labels, worse, better)
	if err != nil {
		t.Fatal(err)
	}
	// Swapping the models negates z: p and 1-p.
	if !near(r.Z, -c.Z, 1e-12) || !near(r.PValue, 1-c.PValue, 1e-12) {
		t.Errorf("swapped: z %v p %v, want %v and %v", r.Z, r.PValue, -c.Z, 1-c.PValue)
	}
	same, err := DeLong(labels, better, better)
	if err != nil {
		t.Fatal(err)
	}
	if same.PValue != 1 || same.Diff != 0 {
		t.Errorf("identical models: %v, want p = 1", same)
	}
	// A monotone transform of the scores changes nothing.
	logistic := make([]float64, len(better))
	for i, s := range better {
		logistic[i] = 1 / (1 + math.Exp(-s))
	}
	m, err := DeLong(labels, logistic, worse)
	if err != nil {
		t.Fatal(err)
	}
	if !near(m.Z, c.Z, 1e-9) {
		t.Errorf("monotone transform changed z: %v, want %v", m.Z, c.Z)
	}
	if _, err := DeLong([]float64{1, 1, 1, 0}, []float64{1, 2, 3, 4}, []float64{1, 2, 3, 4}); err == nil {
		t.Error("DeLong with one negative succeeded")
	}
	if _, err := DeLong([]float64{1, 0, 1, 0}, []float64{1, math.NaN(), 3, 4}, []float64{1, 2, 3, 4}); err == nil {
		t.Error("DeLong with a NaN score succeeded")
	}
}

func TestPairedBootstrap(t *testing.T) {
	labels, better, worse := correlatedScores(5, 600, 0.75, 0.65)
	cfg := BootstrapConfig{Metric: "auc", Task: TaskBinary, Threshold: 0.5, Resamples: 1000, Seed: 9}
	c, err := Bootstrap(labels, better, worse, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Bootstrap(labels, better, worse, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c != again {
		t.Errorf("same seed, different results: %v and %v", c, again)
	}
	cfg2 := cfg
	cfg2.Seed = 10
	other, err := Bootstrap(labels, better, worse, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if other.PValue == c.PValue && other.StdErr == c.StdErr {
		t.Errorf("different seeds gave identical resamples: %v", other)
	}
	// For AUC the bootstrap and DeLong agree roughly.
	d, err := DeLong(labels, better, worse)
	if err != nil {
		t.Fatal(err)
	}
	if d.PValue < 0.01 || d.PValue > 0.5 {
		t.Fatalf("the test data should give a moderate DeLong p-value, got %v", d)
	}
	if !near(c.Diff, d.Diff, 1e-12) || math.Abs(c.PValue-d.PValue) > 0.03 || math.Abs(c.StdErr-d.StdErr) > 0.15*d.StdErr {
		t.Errorf("bootstrap %v (std err %v) far from DeLong %v (std err %v)", c, c.StdErr, d, d.StdErr)
	}
	same, err := Bootstrap(labels, better, better, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if same.PValue != 1 {
		t.Errorf("identical models: p = %v, want 1", same.PValue)
	}

	// Lower is better: the challenger with the smaller error is the better one.
	rng := rand.New(rand.NewPCG(1, 1))
	var y, good, bad []float64
	for range 300 {
		v := rng.NormFloat64()
		y = append(y, v)
		good = append(good, v+0.3*rng.NormFloat64())
		bad = append(bad, v+0.6*rng.NormFloat64())
	}
	for _, m := range []string{"rmse", "mae", "r2"} {
		rc := BootstrapConfig{Metric: m, Task: TaskRegression, Resamples: 200, Seed: 1}
		g, err := Bootstrap(y, good, bad, rc)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Bootstrap(y, bad, good, rc)
		if err != nil {
			t.Fatal(err)
		}
		if g.PValue > 0.01 || b.PValue < 0.99 {
			t.Errorf("%s: better challenger p %v, worse challenger p %v", m, g.PValue, b.PValue)
		}
	}
	for _, bad := range []BootstrapConfig{
		{Metric: "auc", Task: TaskBinary, Resamples: 0},
		{Metric: "rmse", Task: TaskBinary, Resamples: 10},
	} {
		if _, err := Bootstrap(labels, better, worse, bad); err == nil {
			t.Errorf("Bootstrap(%+v) succeeded", bad)
		}
	}
}

// TestBootstrapAUCFastPath checks that the counting AUC of resamples gives
// exactly what materialising each resample and calling AUC gives.
func TestBootstrapAUCFastPath(t *testing.T) {
	labels, ch, champ := correlatedScores(8, 300, 0.5, 0.4)
	for i := range ch { // ties
		ch[i] = math.Round(ch[i]*4) / 4
	}
	fast, err := Bootstrap(labels, ch, champ, BootstrapConfig{Metric: "auc", Task: TaskBinary, Resamples: 300, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The same resamples through the general path: a metric Lookup does
	// not special-case, computing the AUC.
	rng := rand.New(rand.NewPCG(3, 0x6b696c6e))
	n := len(labels)
	y, a, b := make([]float64, n), make([]float64, n), make([]float64, n)
	notBetter, valid := 0, 0
	for range 300 {
		for i := range n {
			r := rng.IntN(n)
			y[i], a[i], b[i] = labels[r], ch[r], champ[r]
		}
		d := AUC(y, a) - AUC(y, b)
		if math.IsNaN(d) {
			continue
		}
		valid++
		if d <= 0 {
			notBetter++
		}
	}
	if want := float64(1+notBetter) / float64(1+valid); fast.PValue != want || fast.Resamples != valid {
		t.Errorf("fast path p %v over %d resamples, general path %v over %d", fast.PValue, fast.Resamples, want, valid)
	}
}

func BenchmarkDeLong(b *testing.B) {
	labels, ch, champ := correlatedScores(1, 100_000, 1, 0.8)
	b.ResetTimer()
	for b.Loop() {
		if _, err := DeLong(labels, ch, champ); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBootstrapAUC(b *testing.B) {
	labels, ch, champ := correlatedScores(1, 10_000, 1, 0.8)
	cfg := BootstrapConfig{Metric: "auc", Task: TaskBinary, Resamples: 200, Seed: 1}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Bootstrap(labels, ch, champ, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
