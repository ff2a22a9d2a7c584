// Package experiment judges A/B experiments on a model's traffic: each
// variant's outcomes (labels or a business KPI posted by prediction ID,
// joined to the request log by internal/labels) against the control's,
// with the always-valid intervals of internal/sequential, so the verdict
// may be read every day without inflating false discoveries, and with a
// practical-significance margin: a variant is "better" only when its
// interval lies wholly beyond the smallest improvement that matters
// (MinEffect), "worse" when it lies wholly below minus that, and
// "equivalent" when it lies within ±MinEffect and the variant has the
// sample that gives the declared power. Statistically significant
// differences smaller than MinEffect are reported as such, never as wins.
//
// The error rate over the N−1 comparisons with the control is split evenly
// (Bonferroni), so Alpha bounds the chance of any wrong "better" or
// "worse" verdict over the whole experiment and every look.
package experiment

import (
	"errors"
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/internal/sequential"
)

// Outcome metrics: what a joined label says about a prediction.
const (
	// MetricAccuracy: 1 when a binary classifier's prediction (at 0.5)
	// matches the label, or a multiclass model's predicted class is the
	// label (Observation.Class), else 0. Higher is better.
	MetricAccuracy = "accuracy"
	// MetricKPI: the posted value itself (a conversion 0/1, revenue, a
	// click): the outcome a business measures. Higher is better.
	MetricKPI = "kpi"
	// MetricAbsError: |prediction − label|, for regression. Lower is
	// better.
	MetricAbsError = "abs_error"
)

// Metrics are the outcome metrics, in the order help texts list them.
var Metrics = []string{MetricAccuracy, MetricKPI, MetricAbsError}

// Verdicts on one variant.
const (
	Better     = "better"
	Worse      = "worse"
	Equivalent = "equivalent"
	NotYet     = "not yet"
	Control    = "control"
)

// Definition is an experiment as kiln experiments records it (the JSON of
// registry.Experiment.Definition).
type Definition struct {
	// Key assigns requests: "header:NAME" or "field:NAME" (serving.Experiment).
	Key string `json:"key"`
	// Variants are the arms; the first is the control.
	Variants []Variant `json:"variants"`
	// Metric is the outcome compared (Metrics).
	Metric string `json:"metric"`
	// MinEffect is the smallest difference in Metric that matters (> 0),
	// in Metric's units (0.02 is two points of accuracy).
	MinEffect float64 `json:"min_effect"`
	// Alpha bounds the chance of any wrong better/worse verdict. Default 0.05.
	Alpha float64 `json:"alpha,omitempty"`
	// Power is the chance of a better/worse verdict for a difference of
	// MinEffect at the minimum sample. Default 0.8.
	Power float64 `json:"power,omitempty"`
	// Servers are the model servers the experiment was deployed to.
	Servers []string `json:"servers,omitempty"`
}

// Variant is one arm.
type Variant struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Weight  int    `json:"weight"`
}

// Check validates the definition.
func (d Definition) Check() error {
	var errs []error
	if len(d.Variants) < 2 {
		errs = append(errs, fmt.Errorf("an experiment needs at least two variants (the first is the control), found %d", len(d.Variants)))
	}
	switch d.Metric {
	case MetricAccuracy, MetricKPI, MetricAbsError:
	default:
		errs = append(errs, fmt.Errorf("metric %q: want one of %v", d.Metric, Metrics))
	}
	if !(d.MinEffect > 0) {
		errs = append(errs, fmt.Errorf("min_effect must be above 0 (the smallest difference in %s that matters), found %g", d.Metric, d.MinEffect))
	}
	if d.Alpha < 0 || d.Alpha >= 1 {
		errs = append(errs, fmt.Errorf("alpha must be in (0, 1), found %g", d.Alpha))
	}
	if d.Power < 0 || d.Power >= 1 {
		errs = append(errs, fmt.Errorf("power must be in (0, 1), found %g", d.Power))
	}
	return errors.Join(errs...)
}

// Observation is one labelled prediction of the experiment.
type Observation struct {
	Variant    string
	Prediction float64
	Label      float64
	// Class says the model is multiclass: Prediction and Label are class
	// indexes, and accuracy asks them to be equal.
	Class bool
}

// Outcome returns what an observation contributes to metric, and whether
// it counts (a NaN prediction does not).
func Outcome(metric string, o Observation) (float64, bool) {
	if math.IsNaN(o.Label) {
		return 0, false
	}
	switch metric {
	case MetricAccuracy:
		if math.IsNaN(o.Prediction) {
			return 0, false
		}
		if o.Class && o.Prediction == o.Label || !o.Class && (o.Prediction >= 0.5) == (o.Label >= 0.5) {
			return 1, true
		}
		return 0, true
	case MetricKPI:
		return o.Label, true
	case MetricAbsError:
		if math.IsNaN(o.Prediction) {
			return 0, false
		}
		return math.Abs(o.Prediction - o.Label), true
	}
	return 0, false
}

// higherIsBetter says which way metric improves.
func higherIsBetter(metric string) bool { return metric != MetricAbsError }

// Arm is one variant's outcomes so far.
type Arm struct {
	Name    string  `json:"name"`
	Version int64   `json:"version"`
	N       int64   `json:"n"`
	Mean    float64 `json:"mean"`
	// Var is one outcome's sample variance.
	Var float64 `json:"var"`
}

// Result is one variant's verdict against the control.
type Result struct {
	Arm
	Verdict string `json:"verdict"`
	// Effect is the variant's mean minus the control's, in Metric's
	// units; Lower and Upper its always-valid interval (±1e9 when
	// unbounded). Improvement is Effect signed so that positive is better.
	Effect      float64 `json:"effect"`
	Lower       float64 `json:"lower"`
	Upper       float64 `json:"upper"`
	Improvement float64 `json:"improvement"`
	// Need is the sample per arm at which the comparison has Power for
	// MinEffect; an "equivalent" verdict waits for it.
	Need int64 `json:"need"`
	// Note explains the verdict in words.
	Note string `json:"note"`
}

// Report is an experiment's verdicts.
type Report struct {
	Metric    string   `json:"metric"`
	MinEffect float64  `json:"min_effect"`
	Alpha     float64  `json:"alpha"`
	Results   []Result `json:"results"`
	// Decision summarises: "keep <variant>" once a variant is better than
	// the control (the one with the highest lower bound), "keep control"
	// once every other variant is worse or equivalent, else "continue".
	Decision string `json:"decision"`
	// Unassigned counts observations whose variant is not one of the
	// experiment's (served before it started, or by a canary).
	Unassigned int64 `json:"unassigned"`
}

// Analyze summarises the observations per variant and judges each variant
// against the control (the first).
func Analyze(d Definition, obs []Observation) (Report, error) {
	if err := d.Check(); err != nil {
		return Report{}, err
	}
	alpha, power := d.Alpha, d.Power
	if alpha == 0 {
		alpha = 0.05
	}
	if power == 0 {
		power = 0.8
	}
	idx := map[string]int{}
	type acc struct{ n, mean, m2 float64 } // Welford
	accs := make([]acc, len(d.Variants))
	for i, v := range d.Variants {
		idx[v.Name] = i
	}
	rep := Report{Metric: d.Metric, MinEffect: d.MinEffect, Alpha: alpha}
	for _, o := range obs {
		i, ok := idx[o.Variant]
		if !ok {
			rep.Unassigned++
			continue
		}
		y, ok := Outcome(d.Metric, o)
		if !ok {
			continue
		}
		a := &accs[i]
		a.n++
		delta := y - a.mean
		a.mean += delta / a.n
		a.m2 += delta * (y - a.mean)
	}
	arms := make([]Arm, len(d.Variants))
	for i, v := range d.Variants {
		a := accs[i]
		arms[i] = Arm{Name: v.Name, Version: v.Version, N: int64(a.n), Mean: a.mean}
		if a.n > 1 {
			arms[i].Var = a.m2 / (a.n - 1)
		}
		if a.n == 0 {
			arms[i].Mean = math.NaN()
		}
	}
	comparisons := len(d.Variants) - 1
	rule := sequential.Rule{MinEffect: d.MinEffect, Alpha: alpha / float64(comparisons), Power: power}
	ctl := arms[0]
	rep.Results = append(rep.Results, Result{Arm: ctl, Verdict: Control, Note: "the control: every other variant is compared with it"})
	sign := 1.0
	if !higherIsBetter(d.Metric) {
		sign = -1
	}
	better, bestLo, settled := -1, 0.0, 0
	for i := 1; i < len(arms); i++ {
		v := arms[i]
		r := Result{Arm: v, Verdict: NotYet}
		e := sequential.Estimate{NA: ctl.N, NB: v.N}
		if ctl.N > 0 && v.N > 0 {
			e.Effect = v.Mean - ctl.Mean
			e.Var = varOf(v)/float64(v.N) + varOf(ctl)/float64(ctl.N)
		}
		ratio := float64(d.Variants[0].Weight) / float64(max(d.Variants[i].Weight, 1))
		r.Need = rule.MinSample(math.Max(varOf(ctl), 1e-12), math.Max(varOf(v), 1e-12), ratio)
		lo, hi := sequential.Interval(e, rule.Tau2(), rule.Alpha)
		r.Effect, r.Lower, r.Upper = e.Effect, clamp(lo), clamp(hi)
		// In "better" units: positive is an improvement.
		ilo, ihi := sign*lo, sign*hi
		if ilo > ihi {
			ilo, ihi = ihi, ilo
		}
		r.Improvement = sign * e.Effect
		switch {
		case v.N == 0 || ctl.N == 0:
			r.Note = "no labelled predictions yet: post outcomes with kiln labels push"
		case ilo > d.MinEffect:
			r.Verdict = Better
			r.Note = fmt.Sprintf("better than the control by more than %g (practically significant)", d.MinEffect)
		case ihi < -d.MinEffect:
			r.Verdict = Worse
			r.Note = fmt.Sprintf("worse than the control by more than %g (practically significant)", d.MinEffect)
		case ilo > -d.MinEffect && ihi < d.MinEffect && v.N >= r.Need && ctl.N >= r.Need:
			r.Verdict = Equivalent
			r.Note = fmt.Sprintf("within ±%g of the control: no difference that matters", d.MinEffect)
		case ilo > 0:
			r.Note = fmt.Sprintf("better than the control, but not yet shown by more than %g", d.MinEffect)
		case ihi < 0:
			r.Note = fmt.Sprintf("worse than the control, but not yet shown by more than %g", d.MinEffect)
		case min(v.N, ctl.N) < r.Need:
			r.Note = fmt.Sprintf("undecided: %d of the %d labelled predictions per arm the test plans for", min(v.N, ctl.N), r.Need)
		default:
			r.Note = fmt.Sprintf("undecided: the interval still reaches beyond ±%g", d.MinEffect)
		}
		if r.Verdict != NotYet {
			settled++
		}
		if r.Verdict == Better && (better < 0 || ilo > bestLo) {
			better, bestLo = len(rep.Results), ilo
		}
		rep.Results = append(rep.Results, r)
	}
	switch {
	case better > 0:
		rep.Decision = "keep " + rep.Results[better].Name
	case settled == comparisons:
		rep.Decision = "keep " + ctl.Name
	default:
		rep.Decision = "continue"
	}
	return rep, nil
}

// varOf is an arm's outcome variance, with a floor that keeps an arm
// whose outcomes are all equal (so far) from claiming certainty: the
// variance of a Bernoulli with one success or failure more than seen.
func varOf(a Arm) float64 {
	if a.N == 0 {
		return 0
	}
	if a.Var > 0 {
		return a.Var
	}
	p := 1 / float64(a.N+2)
	return p * (1 - p)
}

func clamp(v float64) float64 { return math.Max(-1e9, math.Min(1e9, v)) }
