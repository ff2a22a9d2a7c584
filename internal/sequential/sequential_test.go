package sequential

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRanksMatchesPairs: the binned rank effect equals the share of
// (A, B) pairs with B above A, ties counting half, computed pair by pair.
func TestRanksMatchesPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		bins := 1 + r.IntN(8)
		a, b := make([]float64, bins), make([]float64, bins)
		var xa, xb []int
		for range 1 + r.IntN(40) {
			i := r.IntN(bins)
			a[i]++
			xa = append(xa, i)
		}
		for range 1 + r.IntN(40) {
			i := r.IntN(bins)
			b[i]++
			xb = append(xb, i)
		}
		var wins float64
		for _, va := range xa {
			for _, vb := range xb {
				switch {
				case vb > va:
					wins++
				case vb == va:
					wins += 0.5
				}
			}
		}
		want := wins/float64(len(xa)*len(xb)) - 0.5
		e, err := Ranks(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(e.Effect-want) > 1e-12 || e.NA != int64(len(xa)) || e.NB != int64(len(xb)) || !(e.Var > 0) {
			t.Fatalf("trial %d: Ranks = %+v, want effect %g", trial, e, want)
		}
	}
	if _, err := Ranks([]float64{1}, []float64{1, 2}); err == nil {
		t.Error("different bin counts accepted")
	}
	if _, err := Ranks([]float64{-1}, []float64{1}); err == nil {
		t.Error("a negative count accepted")
	}
}

// TestIntervalInvertsTest: the interval's ends are where the test's
// p-value reaches alpha.
func TestIntervalInvertsTest(t *testing.T) {
	for _, e := range []Estimate{
		{Effect: 0.01, Var: 1e-5, NA: 1000, NB: 100},
		{Effect: -0.2, Var: 4e-3, NA: 50, NB: 50},
		{Effect: 0, Var: 1e-8, NA: 1e6, NB: 1e6},
	} {
		for _, alpha := range []float64{0.01, 0.05, 0.2} {
			tau2 := 1e-3
			lo, hi := Interval(e, tau2, alpha)
			if !(lo < e.Effect && e.Effect < hi) {
				t.Fatalf("%+v: interval %g..%g does not hold the estimate", e, lo, hi)
			}
			for _, end := range []float64{lo, hi} {
				if p := PValue(e, end, tau2); math.Abs(p-alpha) > 1e-9*alpha+1e-12 {
					t.Errorf("%+v alpha %g: p-value at the interval's end %g is %g", e, alpha, end, p)
				}
			}
		}
	}
	lo, hi := Interval(Estimate{}, 1, 0.05)
	if !math.IsInf(lo, -1) || !math.IsInf(hi, 1) {
		t.Errorf("no data: interval %g..%g, want unbounded", lo, hi)
	}
}

// TestIntervalCoverage: over many simulated streams looked at after every
// batch, the always-valid interval misses the true difference in at most
// alpha of the streams, where a fixed-sample 95% interval checked at every
// look misses far more often.
func TestIntervalCoverage(t *testing.T) {
	const streams, looks, batch = 2000, 50, 20
	r := rand.New(rand.NewPCG(5, 6))
	missCS, missFixed := 0, 0
	for range streams {
		var xa, xb, na, nb int64
		cs, fixed := false, false
		for range looks {
			for range batch {
				na++
				nb++
				if r.Float64() < 0.3 {
					xa++
				}
				if r.Float64() < 0.3 {
					xb++
				}
			}
			e := Proportions(xa, na, xb, nb)
			lo, hi := Interval(e, 0.01, 0.05)
			if lo > 0 || hi < 0 {
				cs = true
			}
			if math.Abs(e.Effect) > 1.96*math.Sqrt(e.Var) {
				fixed = true
			}
		}
		if cs {
			missCS++
		}
		if fixed {
			missFixed++
		}
	}
	t.Logf("%d streams, %d looks: always-valid interval missed %d, fixed 95%% interval missed %d", streams, looks, missCS, missFixed)
	if float64(missCS)/streams > 0.05 {
		t.Errorf("always-valid interval missed in %.1f%% of streams", 100*float64(missCS)/streams)
	}
	if missFixed <= missCS {
		t.Errorf("the fixed interval (%d misses) should miss more than the always-valid one (%d)", missFixed, missCS)
	}
}

func TestRuleJudge(t *testing.T) {
	r := Rule{MinEffect: 0.1, Margin: 0.02}
	tests := []struct {
		name string
		rule Rule
		e    Estimate
		need int64
		want string
	}{
		{"no data", r, Estimate{}, 0, NotYet},
		{"no canary data", r, Estimate{NA: 100}, 0, NotYet},
		{"clearly worse", r, Estimate{Effect: 0.3, Var: 1e-4, NA: 1000, NB: 1000}, 10, Worse},
		{"worse but within the margin", r, Estimate{Effect: 0.015, Var: 1e-8, NA: 1e6, NB: 1e6}, 10, OK},
		{"fine with enough sample", r, Estimate{Effect: 0, Var: 1e-5, NA: 1000, NB: 1000}, 1000, OK},
		{"fine but below the minimum sample", r, Estimate{Effect: 0, Var: 1e-5, NA: 1000, NB: 999}, 1000, NotYet},
		{"too uncertain", r, Estimate{Effect: 0, Var: 1e-2, NA: 10, NB: 10}, 1, NotYet},
		{"better is not worse", r, Estimate{Effect: -0.3, Var: 1e-4, NA: 1000, NB: 1000}, 10, OK},
		{"two-sided: lower is worse", Rule{MinEffect: 0.1, TwoSided: true}, Estimate{Effect: -0.3, Var: 1e-4, NA: 1000, NB: 1000}, 10, Worse},
		{"two-sided: close is fine", Rule{MinEffect: 0.1, TwoSided: true}, Estimate{Effect: 0.01, Var: 1e-5, NA: 1000, NB: 1000}, 10, OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.Judge(tt.e, tt.need); got.Verdict != tt.want {
				t.Errorf("Judge = %+v, want %s", got, tt.want)
			}
		})
	}
}

// TestMinSample: the returned sample is the smallest meeting the power
// condition, and it grows as the effect shrinks or the split gets thinner.
func TestMinSample(t *testing.T) {
	r := Rule{MinEffect: 0.05, Alpha: 0.05, Power: 0.8}
	n := r.MinSample(0.25, 0.25, 1)
	cond := func(n float64) bool {
		v := 0.25/n + 0.25/n
		return r.MinEffect-HalfWidth(v, r.Tau2(), 0.05) >= normalQuantile(0.8)*math.Sqrt(v)
	}
	if !cond(float64(n)) || cond(float64(n-1)) {
		t.Fatalf("MinSample = %d is not the smallest sample meeting the condition", n)
	}
	if smaller := (Rule{MinEffect: 0.025}).MinSample(0.25, 0.25, 1); smaller <= n {
		t.Errorf("halving the effect: %d, not above %d", smaller, n)
	}
	if thin := r.MinSample(0.25, 0.25, 0.1); thin <= n {
		t.Errorf("a thinner stable arm: %d, not above %d", thin, n)
	}
	if got := (Rule{}).MinSample(1, 1, 1); got != 0 {
		t.Errorf("invalid rule: %d", got)
	}
	if z := normalQuantile(0.975); math.Abs(z-1.959963984540054) > 1e-12 {
		t.Errorf("normalQuantile(0.975) = %g", z)
	}
}
