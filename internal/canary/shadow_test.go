package canary

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// shadowRun simulates a shadow phase: perLook mirrored requests of one row
// between looks, the candidate agreeing with probability agree and serving
// from cand while live serves from live; it returns the first decision
// other than Wait, or Wait after maxLooks.
func shadowRun(r *rand.Rand, cfg ShadowConfig, live, cand world, agree float64, perLook, maxLooks int) ShadowAnalysis {
	var arms ShadowArms
	var an ShadowAnalysis
	for range maxLooks {
		live.serve(r, &arms.Live, perLook)
		cand.serve(r, &arms.Shadow, perLook)
		arms.Live.Errors = 0
		for range perLook {
			arms.Rows++
			if r.Float64() < agree {
				arms.Agreements++
			}
		}
		an = AnalyzeShadow(cfg, arms)
		if an.Decision != Wait {
			return an
		}
	}
	return an
}

func TestAnalyzeShadow(t *testing.T) {
	same := newWorld(0, 0, 0)
	tests := []struct {
		name   string
		cand   world
		agree  float64
		want   string
		reason string
	}{
		{"faithful candidate", same, 0.98, Promote, "agreement"},
		{"disagrees", same, 0.6, Rollback, "agreement"},
		{"shifted predictions", newWorld(0, 0, shiftFor(predProbs, 0.3)), 0.97, Rollback, "predictions worse"},
		{"fails requests", newWorld(0.2, 0, 0), 0.97, Rollback, "error_rate worse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an := shadowRun(rand.New(rand.NewPCG(9, 10)), ShadowConfig{}, same, tt.cand, tt.agree, 100, 60)
			if an.Decision != tt.want || !strings.Contains(an.Reason, tt.reason) {
				t.Fatalf("decision %s (%s), want %s naming %q", an.Decision, an.Reason, tt.want, tt.reason)
			}
			if an.AgreementLower > an.Agreement || an.AgreementUpper < an.Agreement {
				t.Errorf("agreement %.4f outside its interval [%.4f, %.4f]", an.Agreement, an.AgreementLower, an.AgreementUpper)
			}
		})
	}
}

// TestShadowAAFalseRejections: a candidate as good as required (agreement
// exactly at min_agreement, 0.9, and the same distributions) is
// refused in at most alpha of simulated shadows looked at every interval.
func TestShadowAAFalseRejections(t *testing.T) {
	const sims = 1000
	r := rand.New(rand.NewPCG(11, 12))
	same := newWorld(0, 0, 0)
	refused := 0
	for range sims {
		if shadowRun(r, ShadowConfig{}, same, same, 0.9, 50, 40).Decision == Rollback {
			refused++
		}
	}
	if rate := float64(refused) / sims; rate > 0.05 {
		t.Errorf("refused %.1f%% of shadows whose agreement is at the minimum, want ≤ 5%%", 100*rate)
	} else {
		t.Logf("refused %.2f%% of %d shadows at the minimum agreement", 100*rate, sims)
	}
}

func TestShadowWithoutTrafficNeverPasses(t *testing.T) {
	an := AnalyzeShadow(ShadowConfig{}, ShadowArms{})
	if an.Decision != Wait {
		t.Fatalf("no traffic: %s (%s)", an.Decision, an.Reason)
	}
}
