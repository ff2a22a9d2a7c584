// Package canary judges a canary against the stable version it may replace,
// from the two arms' served traffic, with verdicts that stay valid when
// checked at every analysis interval (internal/sequential's mSPRT).
//
// Three metrics can be declared, each with the smallest degradation that
// matters (MinEffect) and a tolerated margin:
//
//   - error rate: the difference of the arms' error rates (canary − stable);
//   - latency: the rank (Mann-Whitney) effect of the canary's request
//     durations over stable's, P(canary slower) − ½, from the servers'
//     latency histograms; p50 and p99 of each arm are reported beside it;
//   - predictions: the rank effect of the canary's predictions over
//     stable's, two-sided (a shift either way), from the servers' prediction
//     histograms; the drift package's PSI of the two histograms is reported
//     beside it;
//   - live: a metric over the labels that have joined the arms' predictions
//     by prediction ID (accuracy or absolute error, as experiments measure
//     outcomes), the difference of its means, signed so that positive is
//     worse.
//
// Analyze combines them: any metric whose always-valid interval lies wholly
// beyond its margin rolls the canary back; the canary passes only when every
// metric's interval lies below its MinEffect and the canary arm has the
// sample each metric needs (sequential.Rule.MinSample); otherwise it waits.
// An arm with no traffic never passes. The chance of a wrong rollback is
// split evenly over the declared metrics (Bonferroni), so it stays below
// Alpha for the whole analysis.
package canary

import (
	"fmt"
	"math"
	"strings"

	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/sequential"
)

// Metric names.
const (
	MetricErrorRate   = "error_rate"
	MetricLatency     = "latency"
	MetricPredictions = "predictions"
	MetricLive        = "live"
)

// Live metrics: what a joined label says about a prediction.
const (
	// LiveAccuracy is 1 for a prediction whose class at 0.5 is the label.
	LiveAccuracy = "accuracy"
	// LiveAbsError is |prediction − label|.
	LiveAbsError = "abs_error"
)

// Decisions of one analysis.
const (
	Promote  = "pass"
	Rollback = "fail"
	Wait     = "wait"
)

// Threshold is one metric's margins.
type Threshold struct {
	// MinEffect is the smallest degradation that matters (see
	// sequential.Rule.MinEffect).
	MinEffect float64 `json:"min_effect" yaml:"min_effect"`
	// Margin is the degradation tolerated.
	Margin float64 `json:"margin" yaml:"margin"`
}

// LiveThreshold is a live metric's margins, in the metric's units (0.02 is
// two points of accuracy).
type LiveThreshold struct {
	// Metric is LiveAccuracy or LiveAbsError.
	Metric string `json:"metric"`
	Threshold
}

// Outcomes are an arm's labelled predictions: their number and the sum
// and sum of squares of their outcomes (1/0 for accuracy, the absolute
// error otherwise).
type Outcomes struct {
	N     int64   `json:"n"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sum_sq"`
}

// Mean is the mean outcome, NaN without any.
func (o Outcomes) Mean() float64 {
	if o.N == 0 {
		return math.NaN()
	}
	return o.Sum / float64(o.N)
}

// Var is one outcome's sample variance, floored (as for a proportion with
// one more success and failure than seen) so that a few equal outcomes do
// not claim certainty.
func (o Outcomes) Var() float64 {
	n := float64(o.N)
	floor := 1 / ((n + 2) * (n + 2))
	if o.N < 2 {
		return 0.25
	}
	v := (o.SumSq - o.Sum*o.Sum/n) / (n - 1)
	return math.Max(v, floor)
}

// Config is what an analysis checks. A nil metric is not checked.
type Config struct {
	ErrorRate   *Threshold `json:"error_rate,omitempty"`
	Latency     *Threshold `json:"latency,omitempty"`
	Predictions *Threshold `json:"predictions,omitempty"`
	// Live judges a metric over the labels joined to each arm's
	// predictions: it waits for labels, so declare it when labels arrive
	// within the rollout.
	Live *LiveThreshold `json:"live,omitempty"`
	// Alpha bounds the chance of a wrong rollback over all metrics and all
	// looks. Default 0.05.
	Alpha float64 `json:"alpha"`
	// Power is each metric's chance of catching a degradation of its
	// MinEffect once the canary has the minimum sample. Default 0.8.
	Power float64 `json:"power"`
}

// DefaultConfig checks the error rate (min_effect 0.02) and latency
// (min_effect 0.1, margin 0.05: a rank effect below 0.05 is noise of the
// machine, not of the model) at alpha 0.05 and power 0.8.
func DefaultConfig() Config {
	return Config{
		ErrorRate: &Threshold{MinEffect: 0.02},
		Latency:   &Threshold{MinEffect: 0.1, Margin: 0.05},
		Alpha:     0.05, Power: 0.8,
	}
}

// Arm is one variant's traffic over the analysed period.
type Arm struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Latency and Predictions are histogram counts per bin (not
	// cumulative), over the same bins in both arms; the last bin is the
	// overflow (+Inf) bin. LatencyBounds are the finite bins' upper bounds
	// in seconds (used to report quantiles).
	Latency       []float64 `json:"latency,omitempty"`
	LatencyBounds []float64 `json:"latency_bounds,omitempty"`
	Predictions   []float64 `json:"predictions,omitempty"`
	// Outcomes are the arm's labelled predictions (Config.Live).
	Outcomes Outcomes `json:"outcomes,omitempty"`
}

// Result is one metric's evidence at one look.
type Result struct {
	Metric  string `json:"metric"`
	Verdict string `json:"verdict"`
	// Effect is canary − stable (a rate difference, or a rank effect in
	// [−½, ½]); Lower and Upper its always-valid interval (clamped to
	// ±1e9 so that JSON can carry "unbounded").
	Effect float64 `json:"effect"`
	Lower  float64 `json:"lower"`
	Upper  float64 `json:"upper"`
	// Stable and Canary are the arms' sample sizes; Need is the canary
	// sample below which the metric never passes.
	Stable    int64   `json:"stable"`
	Canary    int64   `json:"canary"`
	Need      int64   `json:"need"`
	MinEffect float64 `json:"min_effect"`
	Margin    float64 `json:"margin"`
	// Detail describes the arms in the metric's units (rates, p50/p99, PSI).
	Detail string `json:"detail"`
}

// Analysis is a decision with its evidence.
type Analysis struct {
	Decision string   `json:"decision"`
	Reason   string   `json:"reason"`
	Metrics  []Result `json:"metrics"`
}

// Check validates the configuration.
func (c Config) Check() error {
	n := 0
	for _, m := range c.metrics() {
		if m.t == nil {
			continue
		}
		n++
		r := sequential.Rule{MinEffect: m.t.MinEffect, Margin: m.t.Margin}
		if err := r.Check(); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if m.name == MetricLive && c.Live.Metric != LiveAccuracy && c.Live.Metric != LiveAbsError {
			return fmt.Errorf("live: metric %q: want %s or %s", c.Live.Metric, LiveAccuracy, LiveAbsError)
		}
		if m.name != MetricErrorRate && m.name != MetricLive && m.t.MinEffect > 0.5 {
			return fmt.Errorf("%s: min_effect is a rank effect in (0, 0.5], found %g", m.name, m.t.MinEffect)
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("declare at least one metric (error_rate, latency, predictions, live)")
	case c.Alpha < 0 || c.Alpha >= 1:
		return fmt.Errorf("alpha must be in (0, 1), found %g", c.Alpha)
	case c.Power < 0 || c.Power >= 1:
		return fmt.Errorf("power must be in (0, 1), found %g", c.Power)
	}
	return nil
}

type namedThreshold struct {
	name string
	t    *Threshold
}

// metrics lists the metrics in a fixed order.
func (c Config) metrics() []namedThreshold {
	out := []namedThreshold{{MetricErrorRate, c.ErrorRate}, {MetricLatency, c.Latency}, {MetricPredictions, c.Predictions}}
	if c.Live != nil {
		out = append(out, namedThreshold{MetricLive, &c.Live.Threshold})
	}
	return out
}

// rules returns the declared metrics' rules, alpha split evenly.
func (c Config) rules() []namedRule {
	var out []namedRule
	for _, m := range c.metrics() {
		if m.t != nil {
			out = append(out, namedRule{name: m.name, rule: sequential.Rule{MinEffect: m.t.MinEffect, Margin: m.t.Margin, TwoSided: m.name == MetricPredictions, Power: c.Power}})
		}
	}
	alpha := c.Alpha
	if !(alpha > 0 && alpha < 1) {
		alpha = 0.05
	}
	for i := range out {
		out[i].rule.Alpha = alpha / float64(len(out))
	}
	return out
}

type namedRule struct {
	name string
	rule sequential.Rule
}

// Analyze judges the canary against stable. percent is the canary's current
// traffic share, used for the sample each metric needs when the arms have
// no traffic yet to measure their ratio.
func Analyze(cfg Config, stable, canary Arm, percent int) Analysis {
	out := Analysis{Decision: Promote}
	ratio := float64(100-percent) / math.Max(float64(percent), 1)
	if stable.Requests > 0 && canary.Requests > 0 {
		ratio = float64(stable.Requests) / float64(canary.Requests)
	}
	var waiting, worse []string
	for _, nr := range cfg.rules() {
		var (
			est        sequential.Estimate
			varA, varB float64
			detail     string
		)
		switch nr.name {
		case MetricErrorRate:
			est = sequential.Proportions(stable.Errors, stable.Requests, canary.Errors, canary.Requests)
			p := (float64(stable.Errors) + 0.5) / (float64(stable.Requests) + 1)
			varA = p * (1 - p)
			q := math.Min(p+nr.rule.MinEffect, 0.5)
			varB = q * (1 - q)
			detail = fmt.Sprintf("error rate %s vs stable %s", rateString(canary.Errors, canary.Requests), rateString(stable.Errors, stable.Requests))
		case MetricLive:
			sa, sb := stable.Outcomes, canary.Outcomes
			if sa.N > 0 && sb.N > 0 {
				// Positive is worse: lower accuracy, or larger errors.
				est = sequential.Estimate{Effect: sa.Mean() - sb.Mean(), Var: sa.Var()/float64(sa.N) + sb.Var()/float64(sb.N), NA: sa.N, NB: sb.N}
				if cfg.Live.Metric == LiveAbsError {
					est.Effect = -est.Effect
				}
			}
			varA, varB = sa.Var(), sb.Var()
			detail = fmt.Sprintf("%s %s (%d labelled) vs stable %s (%d labelled)", cfg.Live.Metric, meanString(sb), sb.N, meanString(sa), sa.N)
		case MetricLatency, MetricPredictions:
			a, b := stable.Latency, canary.Latency
			if nr.name == MetricPredictions {
				a, b = stable.Predictions, canary.Predictions
			}
			if len(a) > 0 && len(b) > 0 {
				var err error
				if est, err = sequential.Ranks(a, b); err != nil {
					detail = err.Error()
				}
			}
			varA, varB = 1.0/12, 1.0/12
			if nr.name == MetricLatency {
				detail = fmt.Sprintf("p50 %s, p99 %s vs stable p50 %s, p99 %s",
					msString(quantile(b, stable.LatencyBounds, 0.5)), msString(quantile(b, stable.LatencyBounds, 0.99)),
					msString(quantile(a, stable.LatencyBounds, 0.5)), msString(quantile(a, stable.LatencyBounds, 0.99)))
			} else if est.NA > 0 && est.NB > 0 && len(a) == len(b) {
				detail = fmt.Sprintf("PSI %.3f between the prediction histograms", drift.PSI(fractions(a), fractions(b)))
			}
		}
		need := nr.rule.MinSample(varA, varB, ratio)
		j := nr.rule.Judge(est, need)
		r := Result{
			Metric: nr.name, Verdict: j.Verdict, Effect: j.Effect, Lower: clamp(j.Lower), Upper: clamp(j.Upper),
			Stable: j.NA, Canary: j.NB, Need: need, MinEffect: nr.rule.MinEffect, Margin: nr.rule.Margin, Detail: detail,
		}
		out.Metrics = append(out.Metrics, r)
		switch j.Verdict {
		case sequential.Worse:
			worse = append(worse, fmt.Sprintf("%s worse by %.4g (interval %.4g to %.4g, beyond margin %g; %s)", nr.name, r.Effect, r.Lower, r.Upper, r.Margin, detail))
		case sequential.NotYet:
			if r.Canary < need || r.Stable == 0 {
				waiting = append(waiting, fmt.Sprintf("%s: %d of %d canary samples", nr.name, r.Canary, need))
			} else {
				waiting = append(waiting, fmt.Sprintf("%s: effect %.4g, interval %.4g to %.4g not yet below %g", nr.name, r.Effect, r.Lower, r.Upper, r.MinEffect))
			}
		}
	}
	switch {
	case len(worse) > 0:
		out.Decision, out.Reason = Rollback, strings.Join(worse, "; ")
	case len(waiting) > 0:
		out.Decision, out.Reason = Wait, strings.Join(waiting, "; ")
	default:
		parts := make([]string, len(out.Metrics))
		for i, r := range out.Metrics {
			parts[i] = fmt.Sprintf("%s %.4g (interval %.4g to %.4g, below %g; %s)", r.Metric, r.Effect, r.Lower, r.Upper, r.MinEffect, r.Detail)
		}
		out.Reason = strings.Join(parts, "; ")
	}
	return out
}

// NeedsData reports whether the analysis waits only for samples (as opposed
// to an interval that is still too wide).
func (a Analysis) NeedsData() bool {
	if a.Decision != Wait {
		return false
	}
	for _, r := range a.Metrics {
		if r.Verdict == sequential.NotYet && r.Canary < r.Need {
			return true
		}
	}
	return false
}

func clamp(v float64) float64 { return math.Max(-1e9, math.Min(1e9, v)) }

func meanString(o Outcomes) string {
	if o.N == 0 {
		return "—"
	}
	return fmt.Sprintf("%.4f", o.Mean())
}

func rateString(x, n int64) string {
	if n == 0 {
		return "— (0 requests)"
	}
	return fmt.Sprintf("%.4f (%d/%d)", float64(x)/float64(n), x, n)
}

func msString(s float64) string {
	if math.IsNaN(s) {
		return "—"
	}
	return fmt.Sprintf("%.3gms", s*1e3)
}

func fractions(counts []float64) []float64 {
	var n float64
	for _, c := range counts {
		n += c
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = c / n
	}
	return out
}

// quantile interpolates the q-quantile within bins (counts per bin, the last
// the overflow bin) with the given finite upper bounds, as Prometheus's
// histogram_quantile does. NaN without observations or bounds.
func quantile(counts, bounds []float64, q float64) float64 {
	var n float64
	for _, c := range counts {
		n += c
	}
	if n == 0 || len(bounds) == 0 || len(counts) != len(bounds)+1 {
		return math.NaN()
	}
	rank := q * n
	var cum float64
	for i, c := range counts {
		if cum+c >= rank && c > 0 {
			if i == len(bounds) {
				return bounds[len(bounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			return lo + (bounds[i]-lo)*(rank-cum)/c
		}
		cum += c
	}
	return bounds[len(bounds)-1]
}
