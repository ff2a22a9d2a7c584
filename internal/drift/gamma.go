package drift

import "math"

// chi2SF returns the chi-square survival function Pr(X > x) with df degrees
// of freedom, SciPy's scipy.stats.chi2.sf(x, df): NaN for df <= 0 or NaN
// arguments, 1 for x <= 0, 0 for x = +Inf.
func chi2SF(x, df float64) float64 {
	if math.IsNaN(x) || math.IsNaN(df) || !(df > 0) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	if math.IsInf(x, 1) {
		return 0
	}
	return gammaQ(df/2, x/2)
}

// gammaQ returns the regularized upper incomplete gamma function
// Q(a, x) = Γ(a, x)/Γ(a) for a > 0, x >= 0: by the power series of P = 1-Q
// (DLMF 8.11.4) when x < a+1, where Q >= ~0.3 so that 1-P loses nothing,
// and by the continued fraction of Q (DLMF 8.9.2, modified Lentz) otherwise,
// which keeps full relative precision deep into the tail. The common
// factor x^a e^-x / Γ(a) is computed through log1pmx and Stirling's series
// for large a, avoiding the cancellation of a*log(x) - x - lgamma(a).
func gammaQ(a, x float64) float64 {
	switch {
	case math.IsNaN(a) || math.IsNaN(x) || a <= 0 || x < 0:
		return math.NaN()
	case x == 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	if x < a+1 {
		return 1 - gammaPSeries(a, x)
	}
	return gammaQFraction(a, x)
}

// gammaPrefactor returns x^a e^-x / Γ(a).
func gammaPrefactor(a, x float64) float64 {
	if a < 10 {
		lg, _ := math.Lgamma(a)
		return math.Exp(a*math.Log(x) - x - lg)
	}
	// lgamma(a) = (a-0.5) log a - a + log sqrt(2π) + stirlingCorr(a), so
	// a log x - x - lgamma(a) = a log1pmx((x-a)/a) + 0.5 log a - log sqrt(2π) - corr.
	t := (x - a) / a
	return math.Exp(a*log1pmx(t) + 0.5*math.Log(a) - 0.5*log2Pi - stirlingCorr(a))
}

// stirlingCorr returns lgamma(a) - ((a-0.5) log a - a + log sqrt(2π)) for
// a >= 10 by Stirling's series.
func stirlingCorr(a float64) float64 {
	r := 1 / a
	r2 := r * r
	return r * (1.0/12 + r2*(-1.0/360+r2*(1.0/1260+r2*(-1.0/1680+r2*(1.0/1188+r2*(-691.0/360360))))))
}

// log1pmx returns log(1+t) - t accurately for t > -1.
func log1pmx(t float64) float64 {
	if math.Abs(t) < 0.5 {
		// log(1+t) - t = -t^2/2 + t^3/3 - ...; written with u = t/(2+t):
		// log(1+t) = 2 atanh(u) = 2(u + u^3/3 + u^5/5 + ...).
		u := t / (2 + t)
		u2 := u * u
		// 2u - t = -t*u, exactly in real arithmetic.
		s := 0.0
		pow := u * u2
		for k := 3; k < 200; k += 2 {
			term := pow / float64(k)
			s += term
			if math.Abs(term) <= 1e-17*math.Abs(s) {
				break
			}
			pow *= u2
		}
		return -t*u + 2*s
	}
	return math.Log1p(t) - t
}

// gammaPSeries returns P(a, x) by its power series.
func gammaPSeries(a, x float64) float64 {
	f := gammaPrefactor(a, x)
	if f == 0 {
		return 0
	}
	sum, term, r := 1.0, 1.0, a
	for i := 0; i < 100000; i++ {
		r++
		term *= x / r
		sum += term
		if term <= dblEpsilon*sum {
			break
		}
	}
	return sum * f / a
}

// gammaQFraction returns Q(a, x) by its continued fraction (x >= a+1).
func gammaQFraction(a, x float64) float64 {
	f := gammaPrefactor(a, x)
	if f == 0 {
		return 0
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 100000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) <= dblEpsilon {
			break
		}
	}
	return f * h
}
