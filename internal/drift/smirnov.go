package drift

import "math"

// This file computes the one-sided Kolmogorov-Smirnov (Smirnov) survival
// function Pr(D+_n >= x), following the algorithm of SciPy's
// scipy.special.smirnov (cephes kolmogorov.c, after van Mulbregt, "Computing
// the Cumulative Distribution Function and Quantiles of the One-sided
// Kolmogorov-Smirnov Statistic", arXiv:1802.06966): the Birnbaum-Tingey sum
//
//	Pr(D+_n >= x) = x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v)
//
// evaluated in double-double arithmetic with the binomial coefficient and
// the powers kept as mantissa and exponent, so that no term overflows. One
// departure: a long sum of smooth terms (thousands of them, as for the
// asymptotic KS p-value of two samples of a million) is evaluated as an
// integral (smirnovIntegral), a thousand times faster and equal to the sum
// to about 1e-13 relative (TestSmirnovIntegral).

const (
	// cephesMinLog is cephes' MINLOG, log(2^-1075): exp of anything below
	// it is 0.
	cephesMinLog = -7.451332191019412076235e2
	// smirnovMaxComputeN is the n above which smirnov uses an approximation.
	smirnovMaxComputeN = 1000000
	smUpperMaxTerms    = 3
	smUpperSumMinN     = 10
	smMaxExponent      = 960
	dblEpsilon         = 2.220446049250313e-16
)

// smirnov returns Pr(D+_n >= x), SciPy's scipy.special.smirnov(n, x).
func smirnov(n int, x float64) float64 {
	if math.IsNaN(x) || !(n > 0 && x >= 0 && x <= 1) {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	alpha, nxfl := modNX(n, x)
	n1mxfl := n - nxfl
	if alpha != 0 {
		n1mxfl--
	}
	n1mxceil := n - nxfl
	// With alpha 0 the last term belongs to neither sum.
	if alpha == 0 {
		n1mxfl--
		n1mxceil++
	}
	// x <= 1/n.
	if nxfl == 0 || (nxfl == 1 && alpha == 0) {
		t := powDD(ddFrom2(1, x), n-1).hi
		return 1 - x*t
	}
	// The survival function underflows.
	if -2*float64(n)*x*x < cephesMinLog {
		return 0
	}
	// x >= 1 - 1/n.
	if nxfl >= n-1 {
		return powDD(ddFrom2(1, -x), n).hi
	}
	if n > smirnovMaxComputeN {
		// p ~ exp(-(6nx+1)^2 / 18n)
		logp := -math.Pow(6.0*float64(n)*x+1, 2) / 18.0 / float64(n)
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 - (-math.Expm1(logp))
	}
	// The upper sum (alternating) only when it has very few terms.
	nUpperTerms := n - n1mxceil + 1
	useUpper := nUpperTerms <= 1 && x < 0.5
	useUpper = useUpper || (n >= smUpperSumMinN && nUpperTerms <= smUpperMaxTerms && x <= 0.5/math.Sqrt(float64(n)))
	if smirnovIntegralEnabled && !useUpper && n1mxfl+1 >= smirnovIntegralMinTerms {
		if sf, ok := smirnovIntegral(n, x, n1mxfl); ok {
			return min(max(sf, 0), 1)
		}
	}

	start, step, nTerms := 0, 1, n1mxfl+1
	vmid := n / 2
	cman, cexpt := ddOne, 0
	var aj, sum dd
	if useUpper {
		start, step = n, -1
		nTerms = n - n1mxceil + 1
		aj = pow4DD(1, x, 1, 0, n-1)
	} else {
		aj = ddDivD(pow4DD(1, -x, 1, 0, n), x)
	}
	sum = ddAddDD(sum, aj)
	cman, cexpt = updateBinomial(cman, cexpt, n, 0)
	for j := 1; j < nTerms; j++ {
		v := start + j*step
		aj = smirnovTerm(n, x, v, cman, cexpt)
		if aj.isFinite() && !aj.isZero() {
			sum = ddAddDD(sum, aj)
		}
		if !aj.isZero() {
			if 4*float64(nTerms-j)*math.Abs(aj.hi) < dblEpsilon*sum.hi && j != nTerms-1 {
				break
			}
		} else if j > vmid {
			break
		}
		cman, cexpt = updateBinomial(cman, cexpt, n, j)
	}
	prob := ddMulD(sum, x).hi
	sf := prob
	if step < 0 {
		sf = 1 - prob
	}
	return min(max(sf, 0), 1)
}

// modNX returns floor(n*x) and the fractional part of n*x, computed exactly;
// a fractional part rounding to 1 rounds the floor up.
func modNX(n int, x float64) (alpha float64, nxfloor int) {
	nx := ddMul2(float64(n), x)
	fl := ddFloor(nx)
	alpha = ddSubDD(nx, fl).hi
	nxfloor = int(fl.hi)
	if alpha == 1 {
		nxfloor++
		alpha = 0
	}
	return alpha, nxfloor
}

// updateBinomial multiplies the binomial coefficient C(n,j), kept as a
// mantissa and an exponent, by (n-j)/(j+1), giving C(n,j+1).
func updateBinomial(man dd, expt, n, j int) (dd, int) {
	rat := ddDiv2(float64(n-j), float64(j)+1.0)
	m, e := ddFrexp(ddMulDD(man, rat))
	return m, expt + e
}

// powDD returns a^m, with pow for the high part and a first-order
// correction for the low part (as SciPy's pow_D).
func powDD(a dd, m int) dd {
	if m <= 0 {
		if m == 0 {
			return ddOne
		}
		return ddDivDD(ddOne, powDD(a, -m))
	}
	if a.isZero() {
		return ddZero
	}
	ans := math.Pow(a.hi, float64(m))
	r := a.lo / a.hi
	adj := float64(m) * r
	if math.Abs(adj) > 1e-8 {
		if math.Abs(adj) < 1e-4 {
			// The first two terms of the Taylor series of (1+r)^m.
			adj += (float64(m) * r) * (float64(m-1) / 2.0 * r)
		} else {
			adj = math.Expm1(float64(m) * math.Log1p(r))
		}
	}
	return ddFrom2(ans, ans*adj)
}

// nextPowerOf2 is SciPy's helper of the same name.
func nextPowerOf2(x float64) float64 {
	q := math.Ldexp(x, 1-53)
	l := math.Abs(q + x)
	if l == 0 {
		l = math.Abs(x)
	} else if li := int(l); float64(li) == l {
		l = float64(li)
	}
	return l
}

// pow2Scaled returns a^m as a mantissa (high part in [0.5, 1)) and a binary
// exponent, splitting the power so that no intermediate result underflows.
func pow2Scaled(a dd, m int) (dd, int) {
	if m <= 0 {
		if m == 0 {
			return ddOne, 0
		}
		ans, e1 := pow2Scaled(a, -m)
		inv, e2 := ddFrexp(ddDivDD(ddOne, ans))
		return inv, -e1 + e2
	}
	y, ye := ddFrexp(a)
	if m == 1 {
		return y, ye
	}
	maxExpt := smMaxExponent
	if float64(m)*(y.hi-1)/y.hi < -smMaxExponent*math.Ln2 {
		lg2y := math.Log(y.hi) / math.Ln2
		if float64(m)*lg2y <= -smMaxExponent {
			maxExpt = int(nextPowerOf2(-smMaxExponent/lg2y+1) / 2)
		}
	}
	if m <= maxExpt {
		ans, e := ddFrexp(powDD(y, m))
		return ans, e + m*ye
	}
	q, r := m/maxExpt, m%maxExpt
	y2r, y2rE := pow2Scaled(y, r)
	y2m, y2mE := pow2Scaled(y, maxExpt)
	y2mq, y2mqE := pow2Scaled(y2m, q)
	ans, e := ddFrexp(ddMulDD(y2r, y2mq))
	y2mqE += y2mE * q
	e += y2mqE + y2rE
	e += m * ye
	return ans, e
}

// pow4DD returns ((a+b)/(c+d))^m.
func pow4DD(a, b, c, d float64, m int) dd {
	if m <= 0 {
		if m == 0 {
			return ddOne
		}
		return pow4DD(c, d, a, b, -m)
	}
	num, den := ddFrom2(a, b), ddFrom2(c, d)
	if num.isZero() {
		if den.isZero() {
			return dd{math.NaN(), 0}
		}
		return ddZero
	}
	if den.isZero() {
		if num.hi < 0 {
			return dd{math.Inf(-1), 0}
		}
		return dd{math.Inf(1), 0}
	}
	return powDD(ddDivDD(num, den), m)
}

// smirnovTerm returns C(n,v) (1-x-v/n)^(n-v) (x+v/n)^(v-1), with C(n,v)
// given as mantissa and exponent.
func smirnovTerm(n int, x float64, v int, cman dd, cexpt int) dd {
	t2x := ddAddD(ddDiv2(float64(n-v), float64(n)), -x) // 1 - x - v/n
	t2, t2e := pow2Scaled(t2x, n-v)
	t1x := ddAddD(ddDiv2(float64(v), float64(n)), x) // x + v/n
	t1, t1e := pow2Scaled(t1x, v-1)
	ans := ddMulDD(ddMulDD(t1, t2), cman)
	return ddLdexp(ans, cexpt+t1e+t2e)
}

// smirnovIntegralMinTerms is the number of terms of the lower sum from
// which smirnov evaluates it as an integral.
const smirnovIntegralMinTerms = 2000

// smirnovIntegralEnabled lets tests compare the integral with the sum.
var smirnovIntegralEnabled = true

// smirnovIntegral evaluates the lower sum x·Σ_{v=0}^{last} A_v of smirnov,
// A_v = C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v), as x·∫A(v)dv over the
// continuous extension of A (log-gamma for the binomial coefficient). SciPy
// sums the terms one by one, O(n) work with about a microsecond per term in
// double-double arithmetic (0.5 s for n = 500000); the integral needs about
// a thousand evaluations. By the Euler-Maclaurin formula (or Poisson
// summation) the sum of a smooth function equals its integral up to the
// boundary terms and a remainder of the order of its Fourier transform at
// 2π: the integral is used only when A and its derivatives are negligible
// at both ends of the sum (log A at least 60 below its peak there) and the
// peak is wide (at least 10 terms), where the two agree to rounding. ok is
// false when those conditions do not hold; the caller then sums.
//
// log A is computed without the cancellation of its large parts:
//
//	log A(v) = v·log1p(nx/v) + (n-v)·log1p(-nx/(n-v)) - log(x+v/n)
//	           + log(n/(2π v (n-v)))/2 + c(n) - c(v) - c(n-v),
//
// c(z) = lgamma(z+1) - (z log z - z + log(2πz)/2), Stirling's correction.
func smirnovIntegral(n int, x float64, last int) (sf float64, ok bool) {
	fn := float64(n)
	nx := fn * x
	cn := stirlingCorr1(fn)
	logA := func(v float64) float64 {
		if v <= 0 || v >= fn-nx {
			return math.Inf(-1)
		}
		w := fn - v
		return v*math.Log1p(nx/v) + w*math.Log1p(-nx/w) - math.Log(x+v/fn) +
			0.5*math.Log(fn/(2*math.Pi*v*w)) + cn - stirlingCorr1(v) - stirlingCorr1(w)
	}
	hi := float64(last)
	// Locate the peak on a coarse grid, then refine by golden sections.
	const grid = 256
	best, bestV := math.Inf(-1), 0.0
	for i := 1; i < grid; i++ {
		v := hi * float64(i) / grid
		if l := logA(v); l > best {
			best, bestV = l, v
		}
	}
	if math.IsInf(best, -1) || math.IsNaN(best) {
		return 0, false
	}
	a, b := math.Max(bestV-hi/grid, 0), math.Min(bestV+hi/grid, hi)
	const g = 0.6180339887498949
	for i := 0; i < 100 && b-a > 1e-3; i++ {
		c, d := b-g*(b-a), a+g*(b-a)
		if logA(c) > logA(d) {
			b = d
		} else {
			a = c
		}
	}
	peakV := (a + b) / 2
	peak := logA(peakV)
	// The terms at the ends of the sum must be negligible, with their
	// neighbourhood: log A 60 below the peak at v = 1 (A_0 = (1-x)^n/x is
	// below A_1 there) and at the last term.
	end0 := fn*math.Log1p(-x) - math.Log(x)
	if peak-math.Max(end0, logA(1)) < 60 || peak-logA(hi) < 60 {
		return 0, false
	}
	// The width of the peak, from the second difference of log A.
	h := math.Max(1, peakV*1e-3)
	curv := (logA(peakV+h) - 2*peak + logA(peakV-h)) / (h * h)
	if !(curv < 0) || 1/math.Sqrt(-curv) < 10 {
		return 0, false
	}
	// The support where log A > peak - 50, found by bisection on each side
	// (log A is unimodal).
	edge := func(from, to float64) float64 {
		for i := 0; i < 200 && math.Abs(to-from) > 0.5; i++ {
			mid := (from + to) / 2
			if logA(mid) > peak-50 {
				from = mid
			} else {
				to = mid
			}
		}
		return to
	}
	lo, up := edge(peakV, 0), edge(peakV, hi)
	// Adaptive Gauss-Legendre quadrature of exp(log A - peak): a panel is
	// split until its rule agrees with the sum over its halves.
	f := func(v float64) float64 { return math.Exp(logA(v) - peak) }
	gl := func(a, b float64) float64 {
		var s float64
		for i, t := range glNodes {
			s += glWeights[i] * f((a+b)/2+t*(b-a)/2)
		}
		return s * (b - a) / 2
	}
	const panels = 32
	coarse := 0.0
	for p := 0; p < panels; p++ {
		coarse += gl(lo+float64(p)*(up-lo)/panels, lo+float64(p+1)*(up-lo)/panels)
	}
	tol := 1e-15 * coarse
	var integrate func(a, b, whole float64, depth int) float64
	integrate = func(a, b, whole float64, depth int) float64 {
		m := (a + b) / 2
		l, r := gl(a, m), gl(m, b)
		if depth >= 40 || math.Abs(l+r-whole) <= tol {
			return l + r
		}
		return integrate(a, m, l, depth+1) + integrate(m, b, r, depth+1)
	}
	var sum neumaier
	for p := 0; p < panels; p++ {
		a, b := lo+float64(p)*(up-lo)/panels, lo+float64(p+1)*(up-lo)/panels
		sum.add(integrate(a, b, gl(a, b), 0))
	}
	integral := sum.value()
	return x * math.Exp(peak+math.Log(integral)), true
}

// stirlingCorr1 returns lgamma(z+1) - (z log z - z + log(2πz)/2).
func stirlingCorr1(z float64) float64 {
	if z >= 10 {
		return stirlingCorr(z)
	}
	lg, _ := math.Lgamma(z + 1)
	return lg - (z*math.Log(z) - z + 0.5*math.Log(2*math.Pi*z))
}

// glNodes and glWeights are the 20-point Gauss-Legendre rule on [-1, 1].
var glNodes, glWeights = gaussLegendre(20)

// gaussLegendre returns the nodes and weights of the n-point Gauss-Legendre
// rule, by Newton's method on the Legendre polynomial.
func gaussLegendre(n int) (nodes, weights []float64) {
	nodes, weights = make([]float64, n), make([]float64, n)
	for i := 0; i < (n+1)/2; i++ {
		z := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		var dp float64
		for iter := 0; iter < 100; iter++ {
			p0, p1 := 1.0, 0.0
			for j := 1; j <= n; j++ {
				p0, p1 = ((2*float64(j)-1)*z*p0-(float64(j)-1)*p1)/float64(j), p0
			}
			dp = float64(n) * (z*p0 - p1) / (z*z - 1)
			dz := p0 / dp
			z -= dz
			if math.Abs(dz) < 1e-16 {
				break
			}
		}
		nodes[i], nodes[n-1-i] = -z, z
		weights[i] = 2 / ((1 - z*z) * dp * dp)
		weights[n-1-i] = weights[i]
	}
	return nodes, weights
}
