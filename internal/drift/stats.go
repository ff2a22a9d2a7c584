package drift

import (
	"math"
	"math/bits"
)

// This file holds the exact two-sample statistics, each equal to its SciPy
// counterpart (SciPy 1.10). Inputs may be unsorted and are never modified:
// the functions sort copies. SciPy propagates NaN (or raises on empty
// input); these functions drop NaN values first (Kiln treats NaN as null)
// and return NaN results when a sample is left empty. Infinite values are
// kept and behave as in SciPy.

// MaxExactKS is the largest sample size for which KS computes the exact
// p-value, as scipy.stats.ks_2samp's method='auto' (MAX_AUTO_N).
const MaxExactKS = 10000

// KS returns the two-sample Kolmogorov-Smirnov statistic D = sup|F_a - F_b|
// of the empirical distribution functions and its two-sided p-value, as
// scipy.stats.ks_2samp(a, b) with its defaults (alternative='two-sided',
// method='auto'): the exact p-value when max(len(a), len(b)) <= MaxExactKS
// (counting lattice paths, with ties handled as SciPy does: D is read off
// the step functions at every distinct value and the exact p-value treats
// it as the statistic of untied samples; in that case D is returned as
// round(D*lcm)/lcm, as SciPy returns it), else the asymptotic
// kstwo.sf(D, round(n1*n2/(n1+n2))). NaN values are dropped; KS returns
// NaN, NaN when a sample has no other value.
func KS(a, b []float64) (statistic, pvalue float64) {
	statistic, pvalue, _ = ksw(a, b, false)
	return statistic, pvalue
}

// ksw sorts the samples once and returns the KS statistic, its p-value and,
// when withW, the Wasserstein distance.
func ksw(a, b []float64, withW bool) (d, p, w float64) {
	ka := sortedKeys(a, false)
	defer putKeys(ka)
	kb := sortedKeys(b, false)
	defer putKeys(kb)
	if len(*ka) == 0 || len(*kb) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	d, w = mergeKSW(*ka, *kb, withW)
	d, p = ksTwoSided(d, int64(len(*ka)), int64(len(*kb)))
	return d, p, w
}

// Wasserstein returns the first Wasserstein (earth mover's) distance
// between the empirical distributions of a and b, the integral of
// |F_a - F_b|, as scipy.stats.wasserstein_distance(a, b) (unweighted).
// NaN values are dropped; it returns NaN when a sample has no other value.
// With infinite values the result is +Inf or NaN, as in SciPy.
func Wasserstein(a, b []float64) float64 {
	ka := sortedKeys(a, false)
	defer putKeys(ka)
	kb := sortedKeys(b, false)
	defer putKeys(kb)
	if len(*ka) == 0 || len(*kb) == 0 {
		return math.NaN()
	}
	_, w := mergeKSW(*ka, *kb, true)
	return w
}

// KSAndWasserstein returns KS(a, b) and Wasserstein(a, b), sorting each
// sample once for both.
func KSAndWasserstein(a, b []float64) (ksStatistic, ksPValue, wasserstein float64) {
	return ksw(a, b, true)
}

// mergeKSW walks the distinct values of the union of two samples, given as
// sorted keys (floatKey; neither empty, each with capacity for one more
// key), and returns the KS statistic as ks_2samp computes it before its
// exact-path rounding, and, when withW, the Wasserstein distance as scipy's
// _cdf_distance(1, ...) sums it.
//
// The merge takes one key per step without branching on its side (both
// slices end in a sentinel above every key) and evaluates the step
// functions only where the next key differs, i.e. after each distinct
// value. It tracks D = i*n2 - j*n1 = n1*n2*(F_a - F_b) exactly in integers
// and computes SciPy's floating-point difference i/n1 - j/n2 only where D
// comes within a margin of its running extremes: elsewhere that float, a
// few ulps from the exact value, cannot be an extreme. (With n1*n2 beyond
// 2^62 every distinct value is evaluated.) The Wasserstein steps use
// |D|/(n1*n2), equal to SciPy's |i/n1 - j/n2| to a few ulps.
func mergeKSW(a, b []uint64, withW bool) (d, w float64) {
	const sentinel = math.MaxUint64 // above every key (floatKey(+Inf) < it)
	n1, n2 := len(a), len(b)
	a, b = append(a, sentinel), append(b, sentinel)
	fn1, fn2 := float64(n1), float64(n2)
	var prod, margin int64
	if hi, lo := bits.Mul64(uint64(n1), uint64(n2)); hi == 0 && lo < 1<<62 {
		prod = int64(lo)
		margin = int64(float64(prod)*8e-16) + 2
	}
	evalAll := prod == 0
	invProd := 1 / (fn1 * fn2)
	maxS, minS := math.Inf(-1), math.Inf(1)
	maxD, minD := int64(math.MinInt64)/2, int64(math.MaxInt64)/2
	n1i, n2i := int64(n1), int64(n2)
	// W: plain sums over blocks of steps, compensated across blocks.
	var sum neumaier
	var block float64
	steps := 0
	var D int64
	i, j := 0, 0
	ka, kb := a[0], b[0]
	k := min(ka, kb)
	x := keyFloat(k)
	tie := 0 // keys of the current distinct value taken so far, less one
	for t := n1 + n2; t > 0; t-- {
		takeA := ka <= kb
		ta := b2i(takeA)
		i += ta
		j += 1 - ta
		D += int64(ta)*n2i - int64(1-ta)*n1i
		ka, kb = a[i], b[j]
		next := min(ka, kb)
		if next == k {
			tie++
			continue
		}
		// k's last copy is taken: the step functions are at F(k).
		if evalAll || D >= maxD-margin || D <= minD+margin {
			diff := float64(i)/fn1 - float64(j)/fn2
			if diff > maxS {
				maxS = diff
			}
			if diff < minS {
				minS = diff
			}
			maxD, minD = max(maxD, D), min(minD, D)
		}
		if withW {
			if tie > 0 && math.IsInf(x, 0) {
				// SciPy multiplies by the zero-width steps between tied
				// values, and inf-inf is NaN.
				sum.add(math.NaN())
			}
			if next != sentinel {
				xn := keyFloat(next)
				absDiff := math.Abs(float64(D)) * invProd
				if evalAll {
					absDiff = math.Abs(float64(i)/fn1 - float64(j)/fn2)
				}
				block += absDiff * (xn - x)
				if steps++; steps == 256 {
					sum.add(block)
					block, steps = 0, 0
				}
				x = xn
			}
		}
		k, tie = next, 0
	}
	sum.add(block)
	minS = min(max(-minS, 0), 1)
	d = maxS
	if minS > maxS {
		d = minS
	}
	return d, sum.value()
}

// neumaier is a compensated sum.
type neumaier struct{ s, c float64 }

func (n *neumaier) add(x float64) {
	t := n.s + x
	if math.Abs(n.s) >= math.Abs(x) {
		n.c += (n.s - t) + x
	} else {
		n.c += (x - t) + n.s
	}
	n.s = t
}

func (n *neumaier) value() float64 {
	if math.IsNaN(n.s) || math.IsInf(n.s, 0) {
		return n.s
	}
	return n.s + n.c
}

// ksTwoSided returns ks_2samp's two-sided statistic and p-value for the
// statistic d of samples of sizes n1 and n2.
func ksTwoSided(d float64, n1, n2 int64) (float64, float64) {
	if n1 <= 0 || n2 <= 0 || math.IsNaN(d) {
		return math.NaN(), math.NaN()
	}
	if max(n1, n2) <= MaxExactKS {
		g := gcd(n1, n2)
		ok, dd, prob := attemptExactKS(n1, n2, g, d)
		d = dd
		if ok {
			return d, clip01(prob)
		}
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := m * n / (m + n)
	return d, clip01(kstwoSF(d, math.RoundToEven(en)))
}

// kstwoSF returns scipy.stats.kstwo.sf(x, n).
func kstwoSF(x, n float64) float64 {
	if math.IsNaN(x) || !(n >= 1) || n != math.Round(n) {
		return math.NaN()
	}
	if x <= 0.5/n {
		return 1
	}
	if x >= 1 {
		return 0
	}
	return kolmogn(int(n), x, false)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// attemptExactKS computes the exact two-sided p-value of ks_2samp
// (_attempt_exact_2kssamp): it rounds d to h/lcm(n1, n2) and counts the
// lattice paths that leave the band |x/n1 - y/n2| < h/lcm. ok is false when
// the computation gave no probability, and SciPy then uses the asymptotic
// distribution with the rounded d.
func attemptExactKS(n1, n2, g int64, d float64) (ok bool, rounded, prob float64) {
	lcm := (n1 / g) * n2
	h := int64(math.RoundToEven(d * float64(lcm)))
	d = float64(h) * 1.0 / float64(lcm)
	if h == 0 {
		return true, d, 1.0
	}
	if n1 == n2 {
		prob = probOutsideSquare(n1, h)
	} else {
		prob = outerProbInside(n1, n2, g, h)
	}
	if !(0 <= prob && prob <= 1) {
		return false, d, prob
	}
	return true, d, prob
}

// probOutsideSquare returns the share of lattice paths from (0,0) to (n,n)
// that pass outside the lines x-y = ±h (SciPy's
// _compute_prob_outside_square), 2*(A0*(1 - A1*(1 - A2*(...)))) with
// A_k = binom(2n, n-kh)/binom(2n, n) - style ratios, Horner-like.
func probOutsideSquare(n, h int64) float64 {
	P := 0.0
	k := int64(math.Floor(float64(n) / float64(h)))
	for k >= 0 {
		p1 := 1.0
		for j := int64(0); j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1.0 - P)
		k--
	}
	return 2 * P
}

// outerProbInside returns the share of lattice paths from (0,0) to (m,n)
// that do not stay strictly inside |x/m - y/n| < h/lcm(m,n) (SciPy's
// _compute_outer_prob_inside_method, after Hodges (1958) and Viehmann's
// recursion for 1-p, arXiv:2102.08037).
func outerProbInside(m, n, g, h int64) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := int64(0), min(int64(math.Ceil(float64(h)/float64(mg))), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	A := make([]float64, lenA)
	for i := range A {
		A[i] = 1
	}
	for i := minj; i < min(maxj, lenA); i++ {
		A[i] = 0
	}
	for i := int64(1); i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(int64(math.Floor(float64(ng*i-h)/float64(mg)))+1, 0)
		minj = min(minj, n)
		maxj = min(int64(math.Ceil(float64(ng*i+h)/float64(mg))), n+1)
		if maxj <= minj {
			return 1.0
		}
		val := 0.0
		if minj != 0 {
			val = 1.0
		}
		fi := float64(i)
		off := minj - lastminj
		for jj := int64(0); jj < maxj-minj; jj++ {
			j := jj + minj
			val = (A[jj+off]*fi + val*float64(j)) / float64(i+j)
			A[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for t := maxj - minj; t < min(maxj-minj+(lastlen-curlen), lenA); t++ {
				A[t] = 1
			}
		}
	}
	return A[maxj-minj-1]
}

// ChiSquare returns Pearson's chi-square statistic sum((o-e)^2/e) of the
// observed frequencies against the expected ones and its p-value from the
// chi-square distribution with len(observed)-1 degrees of freedom, as
// scipy.stats.chisquare(observed, expected). A nil expected means equal
// frequencies (the mean of observed). Like SciPy it returns a +Inf
// statistic and p-value 0 when a category expected 0 times was observed,
// and NaN for a category with 0 observed and 0 expected or for a single
// category; where SciPy raises an error (lengths differ, sums differ by
// more than a relative 1e-8, no categories) it returns NaN, NaN.
func ChiSquare(observed, expected []float64) (statistic, pvalue float64) {
	k := len(observed)
	if k == 0 || (expected != nil && len(expected) != k) {
		return math.NaN(), math.NaN()
	}
	if expected == nil {
		var s float64
		for _, o := range observed {
			s += o
		}
		mean := s / float64(k)
		expected = make([]float64, k)
		for i := range expected {
			expected[i] = mean
		}
	} else {
		var so, se float64
		for i := range observed {
			so += observed[i]
			se += expected[i]
		}
		if math.Abs(so-se)/math.Min(so, se) > 1e-8 {
			return math.NaN(), math.NaN()
		}
	}
	var stat neumaier
	for i, o := range observed {
		e := expected[i]
		stat.add((o - e) * (o - e) / e)
	}
	statistic = stat.value()
	return statistic, chi2SF(statistic, float64(k-1))
}

// JensenShannon returns the Jensen-Shannon distance between the discrete
// distributions p and q (each normalised to sum 1), with natural
// logarithms: sqrt((KL(p||m) + KL(q||m))/2), m = (p+q)/2, as
// scipy.spatial.distance.jensenshannon(p, q). The slices must have the
// same length and non-negative entries with positive sums; it returns NaN
// otherwise. Where rounding makes the divergence a tiny negative number
// (SciPy then returns NaN from the square root), it returns 0.
func JensenShannon(p, q []float64) float64 {
	if len(p) != len(q) || len(p) == 0 {
		return math.NaN()
	}
	var sp, sq float64
	for i := range p {
		if p[i] < 0 || q[i] < 0 || math.IsNaN(p[i]) || math.IsNaN(q[i]) {
			return math.NaN()
		}
		sp += p[i]
		sq += q[i]
	}
	if !(sp > 0) || !(sq > 0) {
		return math.NaN()
	}
	var left, right float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2.0
		left += relEntr(pi, m)
		right += relEntr(qi, m)
	}
	js := left + right
	if js < 0 {
		return 0
	}
	return math.Sqrt(js / 2.0)
}

// relEntr is scipy.special.rel_entr: x log(x/y), 0 for x = 0 <= y.
func relEntr(x, y float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(y):
		return math.NaN()
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	}
	return math.Inf(1)
}
