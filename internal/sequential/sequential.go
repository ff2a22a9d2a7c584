// Package sequential makes comparisons between two arms (a canary and the
// stable version, or two variants of an experiment) that stay valid however
// often they are looked at.
//
// A fixed-sample test checked at every analysis interval rejects a true null
// far more often than its nominal level: ten looks at p < 0.05 reject an A/A
// comparison about 20% of the time, which is why canary tools that re-test
// every interval fail or pass long rollouts by chance (kayenta#780). Kiln uses
// the mixture sequential probability ratio test (mSPRT) of Johari, Koomen,
// Pekelis and Walsh, "Always Valid Inference: Continuous Monitoring of A/B
// Tests" (Operations Research 70(3), 2022; the KDD 2017 paper "Peeking at A/B
// Tests"), in its two-sample normal form: with the difference of the arms'
// means θ̂ and its variance V, and a normal mixing distribution N(θ0, τ²) over
// the alternative, the likelihood ratio against θ = θ0 is
//
//	Λ(θ0) = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ0)² / (2 V (V + τ²)))
//
// and rejecting θ0 once Λ ≥ 1/α keeps the chance of ever rejecting a true θ0
// below α, whenever the data are looked at. Inverting it gives the
// confidence sequence Interval: an interval around θ̂ that holds the true θ
// at every look simultaneously with probability at least 1 − α. The arms'
// variances are plug-in estimates, so the guarantee is asymptotic (as in the
// paper); the simulation tests check it where Kiln uses it.
//
// Rule turns an interval into a verdict: "worse" (roll back) once the whole
// interval lies beyond the tolerated margin, "ok" once it lies below the
// smallest effect that matters (non-inferiority at MinEffect) and the arm has
// the sample MinSample derives for the rule's power, and "not yet" otherwise;
// an arm with no data is always "not yet", never "ok".
package sequential

import (
	"fmt"
	"math"
)

// Estimate is a difference between two arms, B minus A (canary minus stable),
// with the variance of that difference.
type Estimate struct {
	// Effect is the estimated difference.
	Effect float64 `json:"effect"`
	// Var is the variance of Effect; 0 or less means no information.
	Var float64 `json:"var"`
	// NA and NB are the arms' sample sizes (requests, predictions, ...).
	NA int64 `json:"n_a"`
	NB int64 `json:"n_b"`
}

// Interval returns the always-valid (1 − alpha) confidence interval of the
// mSPRT with mixing variance tau2 (τ²): the set of θ0 the test has not
// rejected. Without information (no samples or zero variance) it is
// (−Inf, +Inf).
func Interval(e Estimate, tau2, alpha float64) (lo, hi float64) {
	w := HalfWidth(e.Var, tau2, alpha)
	if math.IsInf(w, 1) || e.NA == 0 || e.NB == 0 {
		return math.Inf(-1), math.Inf(1)
	}
	return e.Effect - w, e.Effect + w
}

// HalfWidth is the half-width of Interval for an estimate of variance v:
// sqrt(2 v (v + τ²) / τ² · (log(1/α) + ½ log((v + τ²) / v))).
func HalfWidth(v, tau2, alpha float64) float64 {
	if !(v > 0) || !(tau2 > 0) || !(alpha > 0 && alpha < 1) {
		return math.Inf(1)
	}
	return math.Sqrt(2 * v * (v + tau2) / tau2 * (math.Log(1/alpha) + 0.5*math.Log((v+tau2)/v)))
}

// PValue is the mSPRT's p-value against θ = theta0 at this look, 1/Λ capped
// at 1. An always-valid p-value is the running minimum of PValue over the
// looks so far.
func PValue(e Estimate, theta0, tau2 float64) float64 {
	v := e.Var
	if !(v > 0) || !(tau2 > 0) || e.NA == 0 || e.NB == 0 {
		return 1
	}
	d := e.Effect - theta0
	logL := 0.5*math.Log(v/(v+tau2)) + tau2*d*d/(2*v*(v+tau2))
	if logL <= 0 {
		return 1
	}
	return math.Exp(-logL)
}

// Proportions estimates the difference of two rates, xB/nB − xA/nA (e.g.
// the canary's error rate minus stable's). Each arm's variance p(1 − p)/n
// uses p = (x + ½)/(n + 1), so that an arm with no events still carries
// its uncertainty.
func Proportions(xA, nA, xB, nB int64) Estimate {
	e := Estimate{NA: nA, NB: nB}
	if nA <= 0 || nB <= 0 {
		return e
	}
	pa, pb := float64(xA)/float64(nA), float64(xB)/float64(nB)
	e.Effect = pb - pa
	e.Var = BernoulliVar(xA, nA)/float64(nA) + BernoulliVar(xB, nB)/float64(nB)
	return e
}

// BernoulliVar is p(1 − p) of one observation, with p = (x + ½)/(n + 1).
func BernoulliVar(x, n int64) float64 {
	p := (float64(x) + 0.5) / (float64(n) + 1)
	return p * (1 - p)
}

// Ranks compares two arms binned the same way (counts per bin, bins in
// ascending order of value, e.g. latency or prediction histograms): Effect
// is P(B > A) + ½ P(B = A) − ½, the Mann-Whitney (probabilistic index)
// effect, 0 when the arms have the same distribution and ½ when every B is
// larger. Observations in one bin tie. Var is the DeLong placement variance,
// Var(placements of B)/nB + Var(placements of A)/nA, floored at the
// variance under the null for untied data, (nA + nB + 1)/(12 nA nB): ties
// (coarse bins, a constant model) would otherwise shrink it towards 0 and
// claim a certainty the binning does not give, and the floor is the variance
// Rule.MinSample plans with (1/12 per observation).
func Ranks(a, b []float64) (Estimate, error) {
	if len(a) != len(b) {
		return Estimate{}, fmt.Errorf("ranks: the arms have %d and %d bins", len(a), len(b))
	}
	var na, nb float64
	for i := range a {
		if a[i] < 0 || b[i] < 0 || math.IsNaN(a[i]) || math.IsNaN(b[i]) {
			return Estimate{}, fmt.Errorf("ranks: bin %d has a negative or NaN count", i)
		}
		na += a[i]
		nb += b[i]
	}
	e := Estimate{NA: int64(na), NB: int64(nb)}
	if na == 0 || nb == 0 {
		return e, nil
	}
	// Placement of a value in bin i among the other arm: the share below
	// plus half the share tied.
	var belowA, belowB float64
	var mB, mB2, mA, mA2 float64
	for i := range a {
		pa := (belowA + a[i]/2) / na // placement of a B value in bin i among A
		pb := (belowB + b[i]/2) / nb // placement of an A value in bin i among B
		mB += b[i] * pa
		mB2 += b[i] * pa * pa
		mA += a[i] * pb
		mA2 += a[i] * pb * pb
		belowA += a[i]
		belowB += b[i]
	}
	meanB := mB / nb
	e.Effect = meanB - 0.5
	varB := math.Max(mB2/nb-meanB*meanB, 0)
	meanA := mA / na
	varA := math.Max(mA2/na-meanA*meanA, 0)
	e.Var = varB/nb + varA/na
	// Floor: the variance under the null without ties, (N + 1)/(12 nA nB).
	if null := (na + nb + 1) / (12 * na * nb); null > e.Var {
		e.Var = null
	}
	return e, nil
}

// Verdicts of a Rule.
const (
	// Worse: the interval lies wholly beyond the tolerated margin.
	Worse = "worse"
	// OK: the interval lies below MinEffect and the sample is sufficient.
	OK = "ok"
	// NotYet: neither, yet (including no data at all).
	NotYet = "not yet"
)

// Rule judges one metric's Estimate.
type Rule struct {
	// MinEffect is the smallest degradation that matters (> 0): the rule
	// has Power to roll back a canary worse by MinEffect, and passes one
	// only when the interval lies below MinEffect (non-inferiority).
	MinEffect float64 `json:"min_effect"`
	// Margin is the degradation tolerated (0 ≤ Margin < MinEffect): the
	// rule says Worse only when the whole interval lies above it.
	Margin float64 `json:"margin"`
	// TwoSided judges |effect| (a shift either way is a degradation, as for
	// a prediction distribution); otherwise larger is worse.
	TwoSided bool `json:"two_sided"`
	// Alpha bounds the chance of ever saying Worse when the arms do not
	// differ by more than Margin. Default 0.05.
	Alpha float64 `json:"alpha"`
	// Power is the chance of saying Worse for a degradation of MinEffect,
	// once the sample MinSample gives is reached. Default 0.8.
	Power float64 `json:"power"`
}

func (r Rule) alpha() float64 {
	if r.Alpha > 0 && r.Alpha < 1 {
		return r.Alpha
	}
	return 0.05
}

func (r Rule) power() float64 {
	if r.Power > 0 && r.Power < 1 {
		return r.Power
	}
	return 0.8
}

// Tau2 is the mixing variance the rule's test uses: MinEffect², which
// centres the mixture's power on the effect the spec says matters (Johari
// et al. tune τ to the anticipated effect).
func (r Rule) Tau2() float64 { return r.MinEffect * r.MinEffect }

// Check validates the rule.
func (r Rule) Check() error {
	switch {
	case !(r.MinEffect > 0):
		return fmt.Errorf("min_effect must be above 0, found %g", r.MinEffect)
	case r.Margin < 0 || r.Margin >= r.MinEffect:
		return fmt.Errorf("margin must be in [0, min_effect=%g), found %g", r.MinEffect, r.Margin)
	case r.Alpha < 0 || r.Alpha >= 1:
		return fmt.Errorf("alpha must be in (0, 1), found %g", r.Alpha)
	case r.Power < 0 || r.Power >= 1:
		return fmt.Errorf("power must be in (0, 1), found %g", r.Power)
	}
	return nil
}

// Judgement is a Rule's verdict on one Estimate, with its evidence.
type Judgement struct {
	Verdict string  `json:"verdict"`
	Effect  float64 `json:"effect"`
	// Lower and Upper bound the always-valid interval (±Inf without data,
	// which JSON cannot carry: use Bounded).
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	NA    int64   `json:"n_a"`
	NB    int64   `json:"n_b"`
	// PValue is the test's p-value against "no difference beyond Margin"
	// at this look.
	PValue float64 `json:"p_value"`
}

// Judge returns the verdict on e. need is the B arm's sample below which
// the rule never says OK (MinSample's answer); a Worse verdict needs no
// minimum, since the interval is valid at every sample size.
func (r Rule) Judge(e Estimate, need int64) Judgement {
	lo, hi := Interval(e, r.Tau2(), r.alpha())
	j := Judgement{Verdict: NotYet, Effect: e.Effect, Lower: lo, Upper: hi, NA: e.NA, NB: e.NB}
	j.PValue = PValue(e, r.Margin, r.Tau2())
	if r.TwoSided {
		if e.Effect < 0 {
			j.PValue = PValue(e, -r.Margin, r.Tau2())
		}
		switch {
		case lo > r.Margin || hi < -r.Margin:
			j.Verdict = Worse
		case e.NB >= need && e.NB > 0 && e.NA > 0 && lo > -r.MinEffect && hi < r.MinEffect:
			j.Verdict = OK
		}
		return j
	}
	switch {
	case lo > r.Margin:
		j.Verdict = Worse
	case e.NB >= need && e.NB > 0 && e.NA > 0 && hi < r.MinEffect:
		j.Verdict = OK
	}
	return j
}

// MinSample returns the B arm's sample size at which the rule says Worse
// with probability Power when B is worse by MinEffect, under the normal
// approximation: the smallest nB with
//
//	MinEffect − Margin − HalfWidth(V) ≥ z(Power) · sqrt(V),  V = varB/nB + varA/nA,
//
// where nA = ratio · nB (ratio is A's traffic over B's, e.g. 19 for a 5%
// canary) and varA, varB are one observation's variances in each arm. It
// returns 0 for an invalid rule or variances, and caps at 1e12.
func (r Rule) MinSample(varA, varB, ratio float64) int64 {
	if r.Check() != nil || !(varA >= 0) || !(varB > 0) || !(ratio > 0) {
		return 0
	}
	z := normalQuantile(r.power())
	ok := func(n float64) bool {
		v := varB/n + varA/(ratio*n)
		return r.MinEffect-r.Margin-HalfWidth(v, r.Tau2(), r.alpha()) >= z*math.Sqrt(v)
	}
	hi := 1.0
	for !ok(hi) {
		hi *= 2
		if hi > 1e12 {
			return 1e12
		}
	}
	lo := hi / 2
	if hi == 1 {
		return 1
	}
	for hi-lo > 1 {
		mid := math.Floor((lo + hi) / 2)
		if ok(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return int64(hi)
}

// normalQuantile is the standard normal quantile function (0 < p < 1).
func normalQuantile(p float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*p-1)
}
