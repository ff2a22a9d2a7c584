package drift

import (
	"math"
	"testing"
)

// smirnovSum is smirnov without the integral shortcut: SciPy's term by
// term summation.
func smirnovSum(n int, x float64) float64 {
	saved := smirnovIntegralEnabled
	smirnovIntegralEnabled = false
	defer func() { smirnovIntegralEnabled = saved }()
	return smirnov(n, x)
}

// TestSmirnovIntegral checks the integral evaluation of the Smirnov sum
// against the term by term sum over the regimes where smirnov uses it.
func TestSmirnovIntegral(t *testing.T) {
	worst, used := 0.0, 0
	ns := []int{2000, 5000, 20000, 100000, 250000}
	if testing.Short() {
		ns = ns[:3]
	}
	for _, n := range ns {
		for _, nx2 := range []float64{0.01, 0.1, 0.5, 1, 2.2, 3, 5, 10, 30, 100, 300, 369, 700} {
			x := math.Sqrt(nx2 / float64(n))
			alpha, nxfl := modNX(n, x)
			last := n - nxfl - 1
			if alpha == 0 {
				last--
			}
			_, ok := smirnovIntegral(n, x, last)
			if ok {
				used++
			}
			got, want := smirnov(n, x), smirnovSum(n, x)
			e := relErr(got, want)
			worst = math.Max(worst, e)
			if e > 1e-12 {
				t.Errorf("smirnov(%d, %.6g) = %.17g (integral %v), sum %.17g, relerr %.2g", n, x, got, ok, want, e)
			}
		}
	}
	if used < 10 {
		t.Errorf("the integral served only %d cases", used)
	}
	t.Logf("%d integral cases, worst relative error %.2g", used, worst)
}
