package drift

import "math"

// dd is a double-double number hi+lo with |lo| <= ulp(hi)/2, about 106 bits
// of precision. The one-sided Smirnov probability (smirnov) uses it, as
// SciPy's cephes kolmogorov.c does, so that its sums of large alternating
// binomial terms keep double precision.
type dd struct{ hi, lo float64 }

var (
	ddOne  = dd{1, 0}
	ddZero = dd{}
)

// twoSum returns s+e == a+b exactly, s = fl(a+b).
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return
}

// quickTwoSum is twoSum for |a| >= |b|.
func quickTwoSum(a, b float64) (s, e float64) {
	s = a + b
	e = b - (s - a)
	return
}

// twoProd returns p+e == a*b exactly, p = fl(a*b).
func twoProd(a, b float64) (p, e float64) {
	p = a * b
	e = math.FMA(a, b, -p)
	return
}

func ddAddDD(a, b dd) dd {
	s1, s2 := twoSum(a.hi, b.hi)
	t1, t2 := twoSum(a.lo, b.lo)
	s2 += t1
	s1, s2 = quickTwoSum(s1, s2)
	s2 += t2
	s1, s2 = quickTwoSum(s1, s2)
	return dd{s1, s2}
}

func ddNeg(a dd) dd { return dd{-a.hi, -a.lo} }

func ddSubDD(a, b dd) dd { return ddAddDD(a, ddNeg(b)) }

// ddAddD returns a+b for a double b.
func ddAddD(a dd, b float64) dd {
	s1, s2 := twoSum(a.hi, b)
	s2 += a.lo
	s1, s2 = quickTwoSum(s1, s2)
	return dd{s1, s2}
}

// ddFrom2 returns a+b exactly.
func ddFrom2(a, b float64) dd {
	s, e := twoSum(a, b)
	return dd{s, e}
}

// ddMulDD returns a*b.
func ddMulDD(a, b dd) dd {
	p1, p2 := twoProd(a.hi, b.hi)
	p2 += a.hi*b.lo + a.lo*b.hi
	p1, p2 = quickTwoSum(p1, p2)
	return dd{p1, p2}
}

// ddMulD returns a*b for a double b.
func ddMulD(a dd, b float64) dd {
	p1, p2 := twoProd(a.hi, b)
	p2 += a.lo * b
	p1, p2 = quickTwoSum(p1, p2)
	return dd{p1, p2}
}

// ddMul2 returns the exact product a*b of two doubles.
func ddMul2(a, b float64) dd {
	p, e := twoProd(a, b)
	return dd{p, e}
}

// ddDiv2 returns a/b for doubles a and b, to double-double precision.
func ddDiv2(a, b float64) dd {
	q1 := a / b
	p1, p2 := twoProd(q1, b)
	s, e := twoSum(a, -p1)
	e -= p2
	q2 := (s + e) / b
	q1, q2 = quickTwoSum(q1, q2)
	return dd{q1, q2}
}

// ddDivD returns a/b for a double b.
func ddDivD(a dd, b float64) dd {
	q1 := a.hi / b
	p1, p2 := twoProd(q1, b)
	s, e := twoSum(a.hi, -p1)
	e += a.lo
	e -= p2
	q2 := (s + e) / b
	q1, q2 = quickTwoSum(q1, q2)
	return dd{q1, q2}
}

// ddDivDD returns a/b.
func ddDivDD(a, b dd) dd {
	q1 := a.hi / b.hi
	r := ddSubDD(a, ddMulD(b, q1))
	q2 := r.hi / b.hi
	r = ddSubDD(r, ddMulD(b, q2))
	q3 := r.hi / b.hi
	q1, q2 = quickTwoSum(q1, q2)
	return ddAddD(dd{q1, q2}, q3)
}

// ddFrexp splits a into a mantissa in [0.5, 1) (by its high part) and an
// exponent.
func ddFrexp(a dd) (dd, int) {
	hi, e := math.Frexp(a.hi)
	return dd{hi, math.Ldexp(a.lo, -e)}, e
}

func ddLdexp(a dd, e int) dd { return dd{math.Ldexp(a.hi, e), math.Ldexp(a.lo, e)} }

func ddFloor(a dd) dd {
	hi := math.Floor(a.hi)
	lo := 0.0
	if hi == a.hi {
		lo = math.Floor(a.lo)
		hi, lo = quickTwoSum(hi, lo)
	}
	return dd{hi, lo}
}

func (a dd) isZero() bool   { return a.hi == 0 }
func (a dd) isFinite() bool { return !math.IsInf(a.hi, 0) && !math.IsNaN(a.hi) }
