package canary

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// outcomes draws n accuracy outcomes with the given accuracy.
func outcomes(r *rand.Rand, n int, acc float64) Outcomes {
	var o Outcomes
	for range n {
		o.N++
		if r.Float64() < acc {
			o.Sum++
			o.SumSq++
		}
	}
	return o
}

func TestLiveMetric(t *testing.T) {
	cfg := Config{Live: &LiveThreshold{Metric: LiveAccuracy, Threshold: Threshold{MinEffect: 0.05, Margin: 0.01}}, Alpha: 0.05, Power: 0.8}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(13, 14))
	tests := []struct {
		name       string
		stable     Outcomes
		canary     Outcomes
		decision   string
		reasonPart string
	}{
		{"no labels yet", Outcomes{}, Outcomes{}, Wait, "live: 0 of"},
		{"worse canary", outcomes(r, 4000, 0.9), outcomes(r, 1000, 0.75), Rollback, "live worse"},
		{"as good", outcomes(r, 20000, 0.9), outcomes(r, 5000, 0.9), Promote, "live"},
		{"few labels", outcomes(r, 40, 0.9), outcomes(r, 10, 0.9), Wait, "live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an := Analyze(cfg, Arm{Requests: 100, Outcomes: tt.stable}, Arm{Requests: 100, Outcomes: tt.canary}, 20)
			if an.Decision != tt.decision || !strings.Contains(an.Reason, tt.reasonPart) {
				t.Fatalf("decision %s (%s), want %s naming %q", an.Decision, an.Reason, tt.decision, tt.reasonPart)
			}
		})
	}
	// Absolute error: a larger error is worse.
	abs := Config{Live: &LiveThreshold{Metric: LiveAbsError, Threshold: Threshold{MinEffect: 0.1}}}
	worse := Outcomes{N: 1000, Sum: 500, SumSq: 300} // mean 0.5
	better := Outcomes{N: 1000, Sum: 200, SumSq: 60} // mean 0.2
	if an := Analyze(abs, Arm{Requests: 1, Outcomes: better}, Arm{Requests: 1, Outcomes: worse}, 50); an.Decision != Rollback {
		t.Errorf("larger errors: %s (%s), want a rollback", an.Decision, an.Reason)
	}
	if err := (Config{Live: &LiveThreshold{Metric: "auc", Threshold: Threshold{MinEffect: 0.1}}}).Check(); err == nil || !strings.Contains(err.Error(), `metric "auc"`) {
		t.Errorf("unknown live metric: %v", err)
	}
}
