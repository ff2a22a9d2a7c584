package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Significance tests answer one question about two models scored on the same
// rows: is the challenger better than the champion by more than chance? Both
// are one-sided: the null hypothesis is "the challenger is not better", and a
// small p-value rejects it.

// Test names.
const (
	TestDeLong    = "delong"
	TestBootstrap = "bootstrap"
)

// Comparison is the result of a significance test.
type Comparison struct {
	// Test is TestDeLong or TestBootstrap.
	Test string `json:"test"`
	// Metric is the metric compared.
	Metric string `json:"metric"`
	// Challenger and Champion are the metric on all rows.
	Challenger float64 `json:"challenger"`
	Champion   float64 `json:"champion"`
	// Diff is Challenger - Champion.
	Diff float64 `json:"diff"`
	// Z is DeLong's statistic, Diff over its standard error (0 for the bootstrap).
	Z float64 `json:"z,omitempty"`
	// StdErr is the standard error of Diff: DeLong's estimate, or the
	// standard deviation of the bootstrap differences.
	StdErr float64 `json:"std_err"`
	// PValue is the one-sided p-value of "the challenger is not better".
	PValue float64 `json:"p_value"`
	// Resamples and Seed describe the bootstrap: the resamples whose metric
	// was defined for both models (e.g. a resample with one class has no AUC),
	// and the seed.
	Resamples int    `json:"resamples,omitempty"`
	Seed      uint64 `json:"seed,omitempty"`
}

// String formats c for reports, e.g.
// "delong on auc: challenger 0.912, champion 0.905, diff +0.007, z 1.23, one-sided p 0.109".
func (c Comparison) String() string {
	s := fmt.Sprintf("%s on %s: challenger %.4g, champion %.4g, diff %+.4g", c.Test, c.Metric, c.Challenger, c.Champion, c.Diff)
	if c.Test == TestDeLong {
		s += fmt.Sprintf(", z %.3g", c.Z)
	} else {
		s += fmt.Sprintf(", %d resamples (seed %d)", c.Resamples, c.Seed)
	}
	return s + fmt.Sprintf(", one-sided p %.3g", c.PValue)
}

// DeLong compares the AUCs of two scorers of the same rows with DeLong's test
// for correlated ROC curves (DeLong, DeLong and Clarke-Pearson 1988), using
// the midrank algorithm of Sun and Xu (2014): O(n log n). Z is the AUC
// difference (challenger - champion) over its standard error from the
// covariance of the two AUCs' structural components; the p-value is
// 1 - Phi(Z). Identical scorers (zero variance, zero difference) give p = 1.
// It returns an error when only one class is present or a value is NaN.
func DeLong(labels, challenger, champion []float64) (Comparison, error) {
	checkLengths("DeLong", labels, challenger)
	checkLengths("DeLong", labels, champion)
	var pos, neg []int
	for i, y := range labels {
		if math.IsNaN(y) || math.IsNaN(challenger[i]) || math.IsNaN(champion[i]) {
			return Comparison{}, fmt.Errorf("DeLong: row %d has a NaN label or score", i+1)
		}
		if positive(y) {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	m, n := len(pos), len(neg)
	if m < 2 || n < 2 {
		return Comparison{}, fmt.Errorf("DeLong needs at least 2 positives and 2 negatives, found %d and %d", m, n)
	}
	v10a, v01a, aucA := structural(challenger, pos, neg)
	v10b, v01b, aucB := structural(champion, pos, neg)
	s10 := covariance(v10a, v10b)
	s01 := covariance(v01a, v01b)
	// var(A - B) = var(A) + var(B) - 2 cov(A, B), each term S10/m + S01/n.
	variance := (s10[0]+s10[2]-2*s10[1])/float64(m) + (s01[0]+s01[2]-2*s01[1])/float64(n)
	c := Comparison{Test: TestDeLong, Metric: "auc", Challenger: aucA, Champion: aucB, Diff: aucA - aucB}
	switch {
	case variance > 0:
		c.StdErr = math.Sqrt(variance)
		c.Z = c.Diff / c.StdErr
		c.PValue = 0.5 * math.Erfc(c.Z/math.Sqrt2)
	case c.Diff > 0:
		c.PValue = 0
	default:
		c.PValue = 1
	}
	return c, nil
}

// structural returns DeLong's structural components of one scorer: V10 (per
// positive, the share of negatives it beats, ties one half), V01 (per
// negative, the share of positives that beat it) and the AUC, their mean.
func structural(scores []float64, pos, neg []int) (v10, v01 []float64, auc float64) {
	m, n := len(pos), len(neg)
	x := make([]float64, m)
	for i, r := range pos {
		x[i] = scores[r]
	}
	y := make([]float64, n)
	for j, r := range neg {
		y[j] = scores[r]
	}
	z := append(append(make([]float64, 0, m+n), x...), y...)
	tx, ty, tz := midranks(x), midranks(y), midranks(z)
	v10 = make([]float64, m)
	var sum float64
	for i := range x {
		// Negatives below x_i, ties one half: its rank among all rows less
		// its rank among the positives.
		v10[i] = (tz[i] - tx[i]) / float64(n)
		sum += v10[i]
	}
	v01 = make([]float64, n)
	for j := range y {
		v01[j] = 1 - (tz[m+j]-ty[j])/float64(m)
	}
	return v10, v01, sum / float64(m)
}

// midranks returns the 1-based ranks of v, tied values getting the mean of
// their ranks.
func midranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	r := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && v[idx[j]] == v[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			r[idx[k]] = mid
		}
		i = j
	}
	return r
}

// covariance returns the sample covariance matrix (n-1 denominator) of two
// equally long series as [var(a), cov(a, b), var(b)].
func covariance(a, b []float64) [3]float64 {
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var saa, sab, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		saa += da * da
		sab += da * db
		sbb += db * db
	}
	d := float64(len(a) - 1)
	return [3]float64{saa / d, sab / d, sbb / d}
}

// BootstrapConfig configures Bootstrap.
type BootstrapConfig struct {
	// Metric names the metric (see Lookup); Task and Threshold select it.
	Metric    string
	Task      string
	Threshold float64
	// Resamples is the number of bootstrap resamples (> 0).
	Resamples int
	// Seed seeds the resampling (PCG): the same inputs and seed give the same
	// result.
	Seed uint64
}

// Bootstrap compares two models' predictions for the same rows with a paired
// bootstrap: each resample draws len(labels) rows with replacement (the same
// rows for both models) and computes the improvement d, the challenger's
// metric minus the champion's, negated for metrics where lower is better. The
// one-sided p-value is (1 + #{d <= 0}) / (1 + resamples), counting only
// resamples where both metrics are defined (a resample with one class has no
// AUC). StdErr is the standard deviation of the resampled differences.
func Bootstrap(labels, challenger, champion []float64, cfg BootstrapConfig) (Comparison, error) {
	checkLengths("Bootstrap", labels, challenger)
	checkLengths("Bootstrap", labels, champion)
	fn, err := Lookup(cfg.Task, cfg.Metric, cfg.Threshold)
	if err != nil {
		return Comparison{}, err
	}
	if cfg.Resamples <= 0 {
		return Comparison{}, fmt.Errorf("bootstrap needs a positive number of resamples, found %d", cfg.Resamples)
	}
	n := len(labels)
	if n == 0 {
		return Comparison{}, fmt.Errorf("bootstrap needs rows, found none")
	}
	c := Comparison{Test: TestBootstrap, Metric: cfg.Metric, Seed: cfg.Seed,
		Challenger: fn(labels, challenger), Champion: fn(labels, champion)}
	c.Diff = c.Challenger - c.Champion
	if math.IsNaN(c.Diff) {
		return Comparison{}, fmt.Errorf("bootstrap: %s is undefined on these rows (challenger %g, champion %g)", cfg.Metric, c.Challenger, c.Champion)
	}
	sign := 1.0
	if !HigherIsBetter(cfg.Metric) {
		sign = -1
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6e)) // "kiln"
	y, a, b := make([]float64, n), make([]float64, n), make([]float64, n)
	// AUC depends on the resample only through how often each row is drawn:
	// sort once and count instead of sorting every resample. It gives
	// exactly the same values (the U statistic is an integer either way).
	var fastA, fastB *weightedAUC
	var counts []int64
	if cfg.Task == TaskBinary && cfg.Metric == "auc" {
		fastA, fastB = newWeightedAUC(labels, challenger), newWeightedAUC(labels, champion)
		counts = make([]int64, n)
	}
	var notBetter int
	var sum, sumSq float64
	for range cfg.Resamples {
		var d float64
		if fastA != nil && fastB != nil {
			clear(counts)
			for range n {
				counts[rng.IntN(n)]++
			}
			d = fastA.auc(counts) - fastB.auc(counts)
		} else {
			for i := range n {
				r := rng.IntN(n)
				y[i], a[i], b[i] = labels[r], challenger[r], champion[r]
			}
			d = fn(y, a) - fn(y, b)
		}
		if math.IsNaN(d) {
			continue
		}
		c.Resamples++
		sum += d
		sumSq += d * d
		if sign*d <= 0 {
			notBetter++
		}
	}
	if c.Resamples == 0 {
		return Comparison{}, fmt.Errorf("bootstrap: %s is undefined on every resample", cfg.Metric)
	}
	c.PValue = float64(1+notBetter) / float64(1+c.Resamples)
	if c.Resamples > 1 {
		k := float64(c.Resamples)
		c.StdErr = math.Sqrt(max(0, (sumSq-sum*sum/k)/(k-1)))
	}
	return c, nil
}

// weightedAUC computes the AUC of resamples of fixed rows, given how many
// times each row was drawn, in O(n) from a sort done once.
type weightedAUC struct {
	order  []int // rows by increasing score
	groups []int // end (exclusive) in order of each group of tied scores
	pos    []bool
}

// newWeightedAUC prepares the rows, or returns nil when a label or score is
// NaN (the AUC is then NaN; the general path handles it).
func newWeightedAUC(labels, scores []float64) *weightedAUC {
	w := &weightedAUC{order: make([]int, len(scores)), pos: make([]bool, len(scores))}
	for i := range w.order {
		if math.IsNaN(scores[i]) || math.IsNaN(labels[i]) {
			return nil
		}
		w.order[i] = i
		w.pos[i] = positive(labels[i])
	}
	sort.Slice(w.order, func(a, b int) bool { return scores[w.order[a]] < scores[w.order[b]] })
	for i := 1; i <= len(w.order); i++ {
		if i == len(w.order) || scores[w.order[i]] != scores[w.order[i-1]] {
			w.groups = append(w.groups, i)
		}
	}
	return w
}

// auc is AUC (see there) of the resample drawing row i counts[i] times.
func (w *weightedAUC) auc(counts []int64) float64 {
	var nPos, nNeg, twiceU int64
	start := 0
	for _, end := range w.groups {
		var pos, neg int64
		for _, r := range w.order[start:end] {
			if w.pos[r] {
				pos += counts[r]
			} else {
				neg += counts[r]
			}
		}
		twiceU += pos * (2*nNeg + neg)
		nPos += pos
		nNeg += neg
		start = end
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return float64(twiceU) / (2 * float64(nPos) * float64(nNeg))
}
