package activities

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/pipelines"
)

// regressionPreds returns true values and two models' predictions with noise
// of the given scales.
func regressionPreds(n int, good, bad float64) (y, a, b []float64) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range n {
		v := 10 * rng.NormFloat64()
		y = append(y, v)
		a = append(a, v+good*rng.NormFloat64())
		b = append(b, v+bad*rng.NormFloat64())
	}
	return
}

// TestJudgeRegression checks evaluate's verdict for the regression task:
// regression metrics, gates over them with the champion, the bootstrap
// significance test, and the errors for classification metrics.
func TestJudgeRegression(t *testing.T) {
	y, good, bad := regressionPreds(400, 1, 2)
	sig := &pipelines.Significance{Test: metrics.TestBootstrap, Metric: "rmse", Alpha: 0.05, Resamples: 300, Seed: 1}
	tests := []struct {
		name       string
		cfg        pipelines.EvaluateConfig
		challenger []float64
		champion   []float64 // nil: no champion
		passed     bool
		report     []string
		err        string
	}{
		{name: "better than the champion", challenger: good, champion: bad, passed: true,
			cfg:    pipelines.EvaluateConfig{Gate: "r2 >= 0.9 && rmse <= champion.rmse", Significance: sig},
			report: []string{"passes by", "significantly better than demo:1"}},
		{name: "worse than the champion", challenger: bad, champion: good,
			cfg:    pipelines.EvaluateConfig{Gate: "rmse <= champion.rmse", Significance: sig},
			report: []string{"rmse 2.", "> champion.rmse 0.9", "short by", "not significantly better than demo:1"}},
		{name: "no champion: the comparison and the test are skipped", challenger: bad, passed: true,
			cfg:    pipelines.EvaluateConfig{Gate: "mae < 5 && rmse <= champion.rmse", Significance: sig},
			report: []string{"skipped (no champion)", "significance (bootstrap on rmse): skipped, no champion yet"}},
		{name: "classification metric", challenger: good,
			cfg: pipelines.EvaluateConfig{Gate: "auc >= 0.8"}, err: "metric auc is not computed for task regression"},
		{name: "DeLong on a regression", challenger: good, champion: bad,
			cfg: pipelines.EvaluateConfig{Significance: &pipelines.Significance{Test: metrics.TestDeLong, Metric: "auc", Alpha: 0.05}},
			err: "needs a binary task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var champ *scoredChampion
			if tt.champion != nil {
				champ = &scoredChampion{Ref: "demo:1", Version: 1, Preds: tt.champion}
			}
			ev, err := judge(&tt.cfg, metrics.TaskRegression, y, tt.challenger, champ)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := metrics.Regression(y, tt.challenger)
			for _, k := range []string{"rmse", "mae", "r2"} {
				if ev.Metrics[k] != want[k] || math.IsNaN(want[k]) {
					t.Errorf("%s = %v, want %v", k, ev.Metrics[k], want[k])
				}
			}
			if _, ok := ev.Metrics["auc"]; ok {
				t.Error("a regression evaluation has an AUC")
			}
			if ev.Passed != tt.passed || ev.Task != metrics.TaskRegression {
				t.Errorf("passed %v task %q, want %v regression; report:\n%s", ev.Passed, ev.Task, tt.passed, ev.Report)
			}
			for _, w := range tt.report {
				if !strings.Contains(ev.Report, w) {
					t.Errorf("report %q does not contain %q", ev.Report, w)
				}
			}
		})
	}
}

// TestJudgeSignificanceAlone: a significance test without a gate can reject
// a model that is better, but not significantly.
func TestJudgeSignificanceAlone(t *testing.T) {
	y, a, _ := regressionPreds(300, 1, 1)
	b := make([]float64, len(a))
	for i := range a {
		b[i] = a[i] + 0.001 // the champion is barely different
	}
	cfg := pipelines.EvaluateConfig{Significance: &pipelines.Significance{Test: metrics.TestBootstrap, Metric: "mae", Alpha: 0.01, Resamples: 200, Seed: 2}}
	ev, err := judge(&cfg, metrics.TaskRegression, y, a, &scoredChampion{Ref: "demo:4", Version: 4, Preds: b})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Passed || ev.Significance == nil || ev.Significance.Passed || ev.Significance.PValue < 0.01 {
		t.Errorf("evaluation %+v, significance %+v: want rejected as not significant", ev, ev.Significance)
	}
}
