package drift

import "math"

// This file computes the distribution of the two-sided one-sample
// Kolmogorov-Smirnov statistic D_n, following SciPy's scipy.stats._ksstats
// (kolmogn, behind scipy.stats.kstwo), which chooses among exact and
// asymptotic methods as Simard and L'Ecuyer (2011), "Computing the
// Two-Sided Kolmogorov-Smirnov Distribution", J. Stat. Softw. 39(11):
//
//   - Ruben-Gambino closed forms for n*x <= 1 and n*x >= n-1;
//   - 2*smirnov(n, x) for x >= 0.5 (exact there) and in the upper tail;
//   - the Durbin matrix algorithm as organised by Marsaglia, Tsang and
//     Wang (2003) for small n*x^2;
//   - the Pomeranz (1974) recursion for moderate n*x^2 when n <= 140;
//   - the Pelz-Good (1976) asymptotic series for large n.

var (
	ep128    = math.Ldexp(1, 128)
	em128    = math.Ldexp(1, -128)
	sqrt2Pi  = math.Sqrt(2 * math.Pi)
	log2Pi   = math.Log(2 * math.Pi)
	sqrt3    = math.Sqrt(3)
	piSq     = math.Pi * math.Pi
	piFour   = piSq * piSq
	piSix    = piFour * piSq
	stirling = [...]float64{
		-2.955065359477124183e-2, 6.4102564102564102564e-3,
		-1.9175269175269175269e-3, 8.4175084175084175084e-4,
		-5.952380952380952381e-4, 7.9365079365079365079e-4,
		-2.7777777777777777778e-3, 8.3333333333333333333e-2,
	}
)

const minLog = -708

// clip01 clips p to [0, 1] (NaN stays NaN).
func clip01(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}

// choose returns the CDF or the survival probability, clipped to [0, 1].
func choose(cdfProb, sfProb float64, cdf bool) float64 {
	if cdf {
		return clip01(cdfProb)
	}
	return clip01(sfProb)
}

// logNFactorialDivNPowN returns log(n!/n^n) by Stirling's series.
func logNFactorialDivNPowN(n int) float64 {
	rn := 1.0 / float64(n)
	x := rn / float64(n)
	var p float64
	for _, c := range stirling {
		p = p*x + c
	}
	return math.Log(float64(n))/2 - float64(n) + log2Pi/2 + rn*p
}

// kolmogn returns Pr(D_n <= x) when cdf is true, else Pr(D_n > x): SciPy's
// scipy.stats.kstwo.cdf(x, n) and kstwo.sf(x, n).
func kolmogn(n int, x float64, cdf bool) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return choose(1, 0, cdf)
	}
	if x <= 0 {
		return choose(0, 1, cdf)
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 { // Ruben-Gambino: 1/2n <= x <= 1/n
		if t <= 0.5 {
			return choose(0, 1, cdf)
		}
		var prob float64
		if n <= 140 {
			prob = 1
			for i := 1; i <= n; i++ {
				prob *= float64(i) * (1.0 / fn) * (2*t - 1)
			}
		} else {
			prob = math.Exp(logNFactorialDivNPowN(n) + fn*math.Log(2*t-1))
		}
		return choose(prob, 1-prob, cdf)
	}
	if t >= fn-1 { // Ruben-Gambino
		prob := 2 * math.Pow(1.0-x, fn)
		return choose(1-prob, prob, cdf)
	}
	if x >= 0.5 { // exact: 2 * smirnov
		prob := 2 * smirnov(n, x)
		return choose(1-prob, prob, cdf)
	}
	nxsq := t * x
	if n <= 140 {
		if nxsq <= 0.754693 {
			prob := kolmognDMTW(n, x)
			return choose(prob, 1-prob, cdf)
		}
		if nxsq <= 4 {
			prob := kolmognPomeranz(n, x)
			return choose(prob, 1-prob, cdf)
		}
		// Miller's approximation of 2*smirnov.
		prob := 2 * smirnov(n, x)
		return choose(1-prob, prob, cdf)
	}
	// The CDF and the SF have different cut-offs on n*x^2.
	if !cdf {
		if nxsq >= 370.0 {
			return 0
		}
		if nxsq >= 2.2 {
			return clip01(2 * smirnov(n, x))
		}
		// Fall through: SF = 1 - CDF.
	}
	var cdfProb float64
	switch {
	case nxsq >= 18.0:
		cdfProb = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		cdfProb = kolmognDMTW(n, x)
	default:
		cdfProb = kolmognPelzGood(n, x)
	}
	return choose(cdfProb, 1-cdfProb, cdf)
}

// kolmognDMTW returns Pr(D_n <= d) by the Durbin matrix algorithm in the
// form of Marsaglia, Tsang and Wang: the k-th diagonal entry of H^n scaled
// by n!/n^n, with d = (k-h)/n and H an m x m matrix, m = 2k-1.
func kolmognDMTW(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	fn := float64(n)
	nd := fn * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1.0 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(math.Max(2*h-1.0, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1.0 + tt) * fac

	H := newMatrix(m)
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-(i-1)])
		}
	}
	for r := 0; r < m; r++ {
		H.set(r, 0, v[r])
	}
	for c := 0; c < m; c++ {
		H.set(m-1, c, v[m-1-c])
	}

	pw := identity(m)
	tmp := newMatrix(m)
	nn := n
	expnt, hexpnt := 0, 0
	for nn > 0 {
		if nn%2 == 1 {
			matMul(tmp, pw, H)
			pw, tmp = tmp, pw
			expnt += hexpnt
		}
		matMul(tmp, H, H)
		H, tmp = tmp, H
		hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			for i := range H.a {
				H.a[i] /= ep128
			}
			hexpnt += 128
		}
		nn /= 2
	}
	p := pw.at(k-1, k-1)
	// Multiply by n!/n^n.
	for i := 1; i <= n; i++ {
		p = float64(i) * p / fn
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= 128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

// matrix is a dense square row-major matrix.
type matrix struct {
	n int
	a []float64
}

func newMatrix(n int) matrix { return matrix{n, make([]float64, n*n)} }

func identity(n int) matrix {
	m := newMatrix(n)
	for i := 0; i < n; i++ {
		m.a[i*n+i] = 1
	}
	return m
}

func (m matrix) at(i, j int) float64     { return m.a[i*m.n+j] }
func (m matrix) set(i, j int, v float64) { m.a[i*m.n+j] = v }

// matMul sets dst = a*b; dst must not alias a or b.
func matMul(dst, a, b matrix) {
	n := a.n
	clear(dst.a)
	for i := 0; i < n; i++ {
		row := dst.a[i*n : (i+1)*n]
		for l := 0; l < n; l++ {
			x := a.a[i*n+l]
			if x == 0 {
				continue
			}
			brow := b.a[l*n : (l+1)*n]
			for j, y := range brow {
				row[j] += x * y
			}
		}
	}
}

// pomeranzJ1J2 returns the interval of non-zero entries of row i.
func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		if ip1mod2 == 0 { // i is odd
			if ip1div2 == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
			}
		} else {
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// pySlice returns s[lo:hi] with Python's clipping of the bounds.
func pySlice(s []float64, lo, hi int) []float64 {
	n := len(s)
	if lo < 0 {
		lo = max(lo+n, 0)
	}
	if hi < 0 {
		hi = max(hi+n, 0)
	}
	lo, hi = min(lo, n), min(hi, n)
	if hi < lo {
		hi = lo
	}
	return s[lo:hi]
}

// convolve returns the full discrete convolution of a and b (numpy.convolve).
func convolve(a, b []float64) []float64 {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	out := make([]float64, len(a)+len(b)-1)
	for i, x := range a {
		for j, y := range b {
			out[i+j] += x * y
		}
	}
	return out
}

// kolmognPomeranz returns Pr(D_n <= x) by the Pomeranz recursion.
func kolmognPomeranz(n int, x float64) float64 {
	fn := float64(n)
	t := fn * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1.0-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpower := make([]float64, npwrs)
	twogpower := make([]float64, npwrs)
	onem2gpower := make([]float64, npwrs)
	gpower[0], twogpower[0], onem2gpower[0] = 1, 1, 1
	expnt := 0
	gOverN, twoGOverN, oneMinusTwoGOverN := g/fn, 2*g/fn, (1-2*g)/fn
	for m := 1; m < npwrs; m++ {
		gpower[m] = gpower[m-1] * gOverN / float64(m)
		twogpower[m] = twogpower[m-1] * twoGOverN / float64(m)
		onem2gpower[m] = onem2gpower[m-1] * oneMinusTwoGOverN / float64(m)
	}
	V0 := make([]float64, npwrs)
	V1 := make([]float64, npwrs)
	V1[0] = 1
	V0s, V1s := 0, 0
	j1, j2 := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		V0, V1 = V1, V0
		V0s, V1s = V1s, V0s
		clear(V1)
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		var pwrs []float64
		switch {
		case i == 1 || i == 2*n+1:
			pwrs = gpower
		case i%2 == 1:
			pwrs = twogpower
		default:
			pwrs = onem2gpower
		}
		ln2 := j2 - k1 + 1
		if ln2 > 0 {
			conv := convolve(pySlice(V0, k1-V0s, k1-V0s+ln2), pySlice(pwrs, 0, ln2))
			convStart := j1 - k1
			convLen := j2 - j1 + 1
			copy(pySlice(V1, 0, convLen), pySlice(conv, convStart, convStart+convLen))
			vmax := math.Inf(-1)
			for _, v := range V1 {
				vmax = math.Max(vmax, v)
			}
			if 0 < vmax && vmax < em128 {
				for i := range V1 {
					V1[i] *= ep128
				}
				expnt -= 128
			}
			V1s = V0s + j1 - k1
		}
	}
	ans := V1[n-V1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ep128 {
			ans *= em128
			expnt += 128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// kolmognPelzGood returns the Pelz-Good approximation of Pr(D_n <= x).
func kolmognPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	fn := float64(n)
	z := math.Sqrt(fn) * x
	zsquared, zthree, zfour, zsix := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)

	qlog := -piSq / 8 / zsquared
	if qlog < minLog {
		return 0
	}
	q := math.Exp(qlog)

	k1a := -zsquared
	k1b := piSq / 4
	k2a := 6*zsix + 2*zfour
	k2b := (2*zfour - 5*zsquared) * piSq / 4
	k2c := piFour * (1 - 2*zsquared) / 16
	k3d := piSix * (5 - 30*zsquared) / 64
	k3c := piFour * (-60*zsquared + 212*zfour) / 16
	k3b := piSq * (135*zfour - 96*zsix) / 4
	k3a := -30*zsix - 90*math.Pow(z, 8)

	var K [4]float64
	// Horner scheme for sum c_i q^(i^2), over odd integers.
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		msq, mfour, msix := m*m, math.Pow(m, 4), math.Pow(m, 6)
		qpower := math.Pow(q, float64(8*k))
		coeffs := [4]float64{
			1.0,
			k1a + k1b*msq,
			k2a + k2b*msq + k2c*mfour,
			k3a + k3b*msq + k3c*mfour + k3d*msix,
		}
		for i := range K {
			K[i] = K[i]*qpower + coeffs[i]
		}
	}
	div := [4]float64{z, 6 * zfour, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] *= q
		K[i] *= sqrt2Pi
		K[i] /= div[i]
	}
	// The other sums, over all integers k.
	q = math.Exp(-piSq / 2 / zsquared)
	sqrt3z := sqrt3 * z
	var k2extra, k3extra float64
	for k := maxk; k > 0; k-- {
		fk := float64(k)
		ksq := fk * fk
		qp := math.Pow(q, ksq)
		kspi := math.Pi * fk
		k2extra += ksq * qp
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp
	}
	k2extra *= piSq * sqrt2Pi / (-36 * zthree)
	K[2] += k2extra
	k3extra *= piSq * sqrt2Pi / (216 * zsix)
	K[3] += k3extra
	for i := range K {
		K[i] /= math.Pow(fn, float64(i)/2.0)
	}
	return K[0] + K[1] + K[2] + K[3]
}
