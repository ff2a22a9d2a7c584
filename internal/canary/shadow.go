package canary

import (
	"fmt"
	"math"
	"strings"

	"github.com/kiln-ml/kiln/internal/sequential"
)

// ShadowConfig is a shadow phase before a canary: the candidate receives a
// copy of the live requests (its answers are never returned), and is
// compared with the live version on the same requests before it gets any
// real traffic.
type ShadowConfig struct {
	// MinAgreement is the lowest share of rows on which the candidate must
	// agree with the live answer (same class at 0.5; within 5% for
	// regression). The shadow fails once the always-valid interval of the
	// agreement lies wholly below it, and passes only once it lies wholly
	// above. Default 0.9.
	MinAgreement float64 `json:"min_agreement" yaml:"min_agreement"`
	// MinRequests is the fewest mirrored requests (over every server)
	// before the shadow can pass. Default 200.
	MinRequests int `json:"min_requests" yaml:"min_requests"`
	// Analysis compares the candidate's prediction distribution and model
	// latency with the live version's on the mirrored requests (the
	// canary's metrics; error_rate counts requests the candidate failed).
	// Default: predictions min_effect 0.1 margin 0.05, latency min_effect
	// 0.25 margin 0.1, error_rate min_effect 0.02.
	Analysis *Config `json:"analysis,omitempty" yaml:"analysis"`
}

// DefaultShadowAnalysis is the shadow's default analysis.
func DefaultShadowAnalysis() Config {
	return Config{
		ErrorRate:   &Threshold{MinEffect: 0.02},
		Latency:     &Threshold{MinEffect: 0.25, Margin: 0.1},
		Predictions: &Threshold{MinEffect: 0.1, Margin: 0.05},
		Alpha:       0.05, Power: 0.8,
	}
}

// WithDefaults returns c with its defaults filled in.
func (c ShadowConfig) WithDefaults() ShadowConfig {
	if c.MinAgreement == 0 {
		c.MinAgreement = 0.9
	}
	if c.MinRequests == 0 {
		c.MinRequests = 200
	}
	if c.Analysis == nil {
		a := DefaultShadowAnalysis()
		c.Analysis = &a
	}
	return c
}

// ShadowArms are a shadow's mirrored traffic over the analysed period.
type ShadowArms struct {
	// Live and Shadow are the live version's and the candidate's
	// observations on the same mirrored requests (Live.Errors is 0: a
	// request the live version failed is not mirrored).
	Live   Arm `json:"live"`
	Shadow Arm `json:"shadow"`
	// Rows predicted by the shadow, and Agreements among them.
	Rows       int64 `json:"rows"`
	Agreements int64 `json:"agreements"`
	// Dropped requests were not mirrored (the shadow's queue was full).
	Dropped int64 `json:"dropped"`
}

// ShadowAnalysis is a shadow decision with its evidence.
type ShadowAnalysis struct {
	// Decision is Promote (go on to the canary), Rollback (the candidate
	// is refused) or Wait.
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// Agreement is the share of rows agreeing, and AgreementLower and
	// AgreementUpper its always-valid interval.
	Agreement      float64 `json:"agreement"`
	AgreementLower float64 `json:"agreement_lower"`
	AgreementUpper float64 `json:"agreement_upper"`
	MinAgreement   float64 `json:"min_agreement"`
	Requests       int64   `json:"requests"`
	Rows           int64   `json:"rows"`
	Dropped        int64   `json:"dropped"`
	// Comparison is the distribution, latency and error analysis of the
	// shadow (as the canary) against the live version (as stable).
	Comparison Analysis `json:"comparison"`
}

// AnalyzeShadow judges a shadow from its mirrored traffic. Agreement is
// tested with a one-sample always-valid interval (the mSPRT of
// internal/sequential on the agreement share minus MinAgreement), at half
// the configured alpha; the comparison spends the other half.
func AnalyzeShadow(cfg ShadowConfig, arms ShadowArms) ShadowAnalysis {
	cfg = cfg.WithDefaults()
	acfg := *cfg.Analysis
	alpha := acfg.Alpha
	if !(alpha > 0 && alpha < 1) {
		alpha = 0.05
	}
	acfg.Alpha = alpha / 2
	out := ShadowAnalysis{MinAgreement: cfg.MinAgreement, Requests: arms.Shadow.Requests, Rows: arms.Rows, Dropped: arms.Dropped,
		AgreementLower: math.Inf(-1), AgreementUpper: math.Inf(1)}
	// Equal arms: each mirrored request is observed once on each side.
	out.Comparison = Analyze(acfg, arms.Live, arms.Shadow, 50)
	if arms.Rows > 0 {
		p := float64(arms.Agreements) / float64(arms.Rows)
		out.Agreement = p
		// The variance of the share, floored as if one more row had gone
		// the other way, so a streak of agreement is not certainty.
		q := (float64(arms.Agreements) + 0.5) / (float64(arms.Rows) + 1)
		v := q * (1 - q) / float64(arms.Rows)
		tau := math.Max(1-cfg.MinAgreement, 0.01)
		lo, hi := sequential.Interval(sequential.Estimate{Effect: p, Var: v, NA: arms.Rows, NB: arms.Rows}, tau*tau, alpha/2)
		out.AgreementLower, out.AgreementUpper = math.Max(lo, 0), math.Min(hi, 1)
	}
	agreement := fmt.Sprintf("agreement %.4f (interval %.4f to %.4f, %d rows) against %g", out.Agreement, out.AgreementLower, out.AgreementUpper, arms.Rows, cfg.MinAgreement)
	var worse, waiting []string
	switch {
	case arms.Rows > 0 && out.AgreementUpper < cfg.MinAgreement:
		worse = append(worse, agreement+": below")
	case arms.Rows == 0 || out.AgreementLower < cfg.MinAgreement:
		waiting = append(waiting, agreement)
	}
	switch out.Comparison.Decision {
	case Rollback:
		worse = append(worse, out.Comparison.Reason)
	case Wait:
		waiting = append(waiting, out.Comparison.Reason)
	}
	if n := arms.Shadow.Requests; n < int64(cfg.MinRequests) {
		waiting = append(waiting, fmt.Sprintf("%d of %d mirrored requests", n, cfg.MinRequests))
	}
	switch {
	case len(worse) > 0:
		out.Decision, out.Reason = Rollback, strings.Join(worse, "; ")
	case len(waiting) > 0:
		out.Decision, out.Reason = Wait, strings.Join(waiting, "; ")
	default:
		out.Decision, out.Reason = Promote, agreement+"; "+out.Comparison.Reason
	}
	out.AgreementLower, out.AgreementUpper = clamp(out.AgreementLower), clamp(out.AgreementUpper)
	return out
}
