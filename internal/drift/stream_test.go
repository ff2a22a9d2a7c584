package drift

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// addInBatches feeds values to the accumulator in batches of random sizes.
func addInBatches(rng *rand.Rand, a *NumericAccumulator, values []float64, valid []bool) {
	for len(values) > 0 {
		k := min(len(values), 1+rng.IntN(5000))
		var v []bool
		if valid != nil {
			v = valid[:k]
			valid = valid[k:]
		}
		a.Add(values[:k], v)
		values = values[k:]
	}
}

func sample(rng *rand.Rand, n int, mean, sd, dec float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		v := mean + sd*rng.NormFloat64()
		if dec > 0 {
			v = math.Round(v*dec) / dec
		}
		out[i] = v
	}
	return out
}

func pEqual(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b || (math.IsNaN(*a) && math.IsNaN(*b))
}

// TestStreamingKSExact checks that for exact references the streamed KS
// statistic and p-value are the very numbers of the in-memory exact path,
// over many shapes: small references with and without ties, references with
// many rows but few distinct values, current data below, inside and above
// the reference range, with nulls, and current sizes in both the exact and
// the asymptotic p-value regimes.
func TestStreamingKSExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type tc struct {
		name     string
		ref, cur []float64
	}
	var cases []tc
	for _, n := range []int{1, 2, 5, 30, 200, 1000} {
		for _, m := range []int{1, 3, 50, 999, 10000, 10001, 40000} {
			for _, dec := range []float64{0, 1, 10} {
				shift := rng.Float64() * 0.5
				cases = append(cases, tc{fmt.Sprintf("ref %d cur %d dec %v", n, m, dec),
					sample(rng, n, 0, 1, dec), sample(rng, m, shift, 1+rng.Float64(), dec)})
			}
		}
	}
	// A big reference with few distinct values is kept exactly too.
	cases = append(cases, tc{"50k integer reference", sample(rng, 50000, 10, 3, 1), sample(rng, 20000, 10.5, 3, 1)})
	// Current far outside the reference on both sides.
	cases = append(cases, tc{"outside", sample(rng, 300, 0, 1, 0), append(sample(rng, 500, -10, 1, 0), sample(rng, 500, 10, 1, 0)...)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{NumericMethod: MethodKS}
			// Nulls in the current data: NaN, ±Inf and invalid entries.
			cur := slices.Clone(c.cur)
			valid := make([]bool, len(cur)+3)
			for i := range valid {
				valid[i] = rng.IntN(10) != 0
			}
			cur = append(cur, math.NaN(), math.Inf(1), math.Inf(-1))
			var kept []float64
			for i, v := range cur {
				if valid[i] && !math.IsNaN(v) && !math.IsInf(v, 0) {
					kept = append(kept, v)
				}
			}
			ref := NewNumericReference(append(slices.Clone(c.ref), math.NaN()), opts)
			if !ref.Exact() {
				t.Fatalf("reference of %d values with %d distinct is not exact", len(c.ref), len(slices.Compact(slices.Sorted(slices.Values(c.ref)))))
			}
			acc := ref.NewAccumulator()
			addInBatches(rng, acc, cur, valid)
			got := acc.Result(opts)
			want := CompareNumeric(c.ref, kept, opts)
			if len(kept) == 0 {
				if got.Note != "no current values" || want.Note != got.Note {
					t.Fatalf("no current values: %+v", got)
				}
				return
			}
			if got.Statistic != want.Statistic || !pEqual(got.PValue, want.PValue) || got.StatisticError != 0 {
				t.Fatalf("streamed KS %v p %v (err %v); exact %v p %v", got.Statistic, *got.PValue, got.StatisticError, want.Statistic, *want.PValue)
			}
			d, p := KS(c.ref, kept)
			if d != want.Statistic || p != *want.PValue {
				t.Fatalf("CompareNumeric KS %v %v; KS %v %v", want.Statistic, *want.PValue, d, p)
			}
			if got.PSI != want.PSI || !reflect.DeepEqual(got.Histogram, want.Histogram) || got.OutOfRange != want.OutOfRange {
				t.Errorf("PSI %v vs %v, out of range %d vs %d, histograms\n%+v\n%+v", got.PSI, want.PSI, got.OutOfRange, want.OutOfRange, got.Histogram, want.Histogram)
			}
			if got.Rows != int64(len(kept)) || got.Nulls != int64(len(cur)-len(kept)) || got.ReferenceRows != int64(len(c.ref)) {
				t.Errorf("rows %d nulls %d reference %d; want %d %d %d", got.Rows, got.Nulls, got.ReferenceRows, len(kept), len(cur)-len(kept), len(c.ref))
			}
			wantDrift := *want.PValue < 0.05
			if got.Drifted != wantDrift || got.Method != MethodKS || got.Threshold != 0.05 {
				t.Errorf("verdict %v method %v threshold %v", got.Drifted, got.Method, got.Threshold)
			}
		})
	}
}

// TestStreamingBinnedBounds checks binned references: the streamed
// Wasserstein and KS statistics are within their reported bounds of the
// exact ones, the bounds are small, and PSI, histogram and Jensen-Shannon
// are exact.
func TestStreamingBinnedBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lognormal := func(n int, mu float64) []float64 {
		out := sample(rng, n, mu, 1, 0)
		for i := range out {
			out[i] = math.Exp(out[i])
		}
		return out
	}
	cases := []struct {
		name     string
		ref, cur []float64
	}{
		{"same distribution", sample(rng, 100000, 0, 1, 0), sample(rng, 200000, 0, 1, 0)},
		{"small shift", sample(rng, 100000, 0, 1, 0), sample(rng, 200000, 0.05, 1, 0)},
		{"large shift", sample(rng, 100000, 0, 1, 0), sample(rng, 200000, 1, 1, 0)},
		{"wider", sample(rng, 50000, 5, 2, 0), sample(rng, 80000, 5, 3, 0)},
		{"outside both sides", sample(rng, 20000, 0, 1, 0), sample(rng, 30000, 0, 6, 0)},
		{"heavy tail", lognormal(100000, 0), lognormal(100000, 0.1)},
		{"large offset", sample(rng, 50000, 1e9, 1, 0), sample(rng, 50000, 1e9+0.2, 1, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := NewNumericReference(c.ref, Options{})
			if ref.Exact() {
				t.Fatal("reference should be binned")
			}
			acc := ref.NewAccumulator()
			addInBatches(rng, acc, c.cur, nil)
			for _, m := range []Method{MethodWasserstein, MethodKS, MethodJensenShannon, MethodPSI} {
				opts := Options{NumericMethod: m}
				got := acc.Result(opts)
				want := CompareNumeric(c.ref, c.cur, opts)
				diff := math.Abs(got.Statistic - want.Statistic)
				slack := 1e-9 * math.Max(1, math.Abs(want.Statistic))
				switch m {
				case MethodWasserstein, MethodKS:
					if diff > got.StatisticError+slack {
						t.Errorf("%s: streamed %.10g ± %.3g, exact %.10g (off by %.3g)", m, got.Statistic, got.StatisticError, want.Statistic, diff)
					}
					t.Logf("%s: streamed %.6g ± %.2g, exact %.6g (off by %.2g)", m, got.Statistic, got.StatisticError, want.Statistic, diff)
					// The documented bound: about range/Bins of the normed
					// distance at worst; far below the 0.1 threshold.
					if m == MethodWasserstein && got.StatisticError > 0.01 {
						t.Errorf("Wasserstein error bound %v is large", got.StatisticError)
					}
				default:
					if got.Statistic != want.Statistic {
						t.Errorf("%s: streamed %v, exact %v", m, got.Statistic, want.Statistic)
					}
				}
				if got.PSI != want.PSI || !reflect.DeepEqual(got.Histogram, want.Histogram) || got.OutOfRange != want.OutOfRange {
					t.Errorf("%s: PSI %v vs %v, out of range %d vs %d", m, got.PSI, want.PSI, got.OutOfRange, want.OutOfRange)
				}
			}
		})
	}
}

// TestMerge checks that merging accumulators over two halves gives the
// result of one accumulator over everything.
func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, refN := range []int{500, 100000} {
		ref := NewNumericReference(sample(rng, refN, 0, 1, 0), Options{})
		cur := sample(rng, 60000, 0.1, 1.2, 0)
		whole, a, b := ref.NewAccumulator(), ref.NewAccumulator(), ref.NewAccumulator()
		whole.Add(cur, nil)
		a.Add(cur[:25000], nil)
		b.Add(cur[25000:], nil)
		a.Merge(b)
		for _, m := range []Method{MethodKS, MethodWasserstein, MethodPSI, MethodJensenShannon} {
			opts := Options{NumericMethod: m}
			w, g := whole.Result(opts), a.Result(opts)
			if m == MethodWasserstein {
				// Sums are added in another order.
				if math.Abs(w.Statistic-g.Statistic) > 1e-12*w.Statistic || math.Abs(w.StatisticError-g.StatisticError) > 1e-9 {
					t.Errorf("ref %d %s: merged %v ± %v, whole %v ± %v", refN, m, g.Statistic, g.StatisticError, w.Statistic, w.StatisticError)
				}
				w.Statistic, w.StatisticError = g.Statistic, g.StatisticError
			}
			if !reflect.DeepEqual(w, g) {
				t.Errorf("ref %d %s: merged %+v\nwhole %+v", refN, m, g, w)
			}
		}
	}
	cref := NewCategoricalReference([]string{"a", "b", "b", "c"}, nil, Options{})
	whole, a, b := cref.NewAccumulator(), cref.NewAccumulator(), cref.NewAccumulator()
	vals := []string{"a", "x", "b", "y", "x", "c", "", "z", "x"}
	valid := []bool{true, true, true, true, true, true, false, true, true}
	whole.Add(vals, valid)
	a.Add(vals[:4], valid[:4])
	b.Add(vals[4:], valid[4:])
	a.Merge(b)
	if w, g := whole.Result(Options{}), a.Result(Options{}); !reflect.DeepEqual(w, g) {
		t.Errorf("categorical merged %+v\nwhole %+v", g, w)
	}
	defer func() {
		if recover() == nil {
			t.Error("merging accumulators of different references did not panic")
		}
	}()
	a.Merge(NewCategoricalReferenceCounts(map[string]int64{"a": 1}).NewAccumulator())
}

// TestPSIMatchesProfile checks that the PSI beside the tests equals
// NumericPSI and CategoricalPSI over the training profile of the same
// reference data (the monitor's PSI).
func TestPSIMatchesProfile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	refNum := append(sample(rng, 3000, 0, 1, 10), math.NaN(), math.Inf(1))
	curNum := sample(rng, 2000, 0.3, 1, 10)
	catVals := []string{"a", "b", "c", "d"}
	var refCat, curCat []string
	for i := 0; i < 3000; i++ {
		refCat = append(refCat, catVals[rng.IntN(3)])
		curCat = append(curCat, catVals[rng.IntN(4)])
	}
	for i := 0; i < 80; i++ { // more categories than the profile keeps
		refCat = append(refCat, fmt.Sprintf("rare%02d", i))
	}
	s := dataset.Schema{Fields: []dataset.Field{{Name: "x", Type: dataset.Float64}, {Name: "c", Type: dataset.String}}}
	p := dataset.NewProfiler(s, 10)
	catArr := make([]string, len(refNum))
	for i := range catArr {
		catArr[i] = refCat[i%len(refCat)]
	}
	// Profile the numeric column and, separately, the full categorical one.
	rec, err := dataset.NewRecord(s, []arrow.Array{dataset.Float64Array(refNum), dataset.StringArray(catArr, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if err := p.Add(rec); err != nil {
		t.Fatal(err)
	}
	prof := p.Profile()
	wantNum, _ := NumericPSI(prof.Columns[0], curNum)
	got := CompareNumeric(refNum, curNum, Options{})
	acc := NewNumericReference(refNum, Options{}).NewAccumulator()
	acc.Add(curNum, nil)
	if got.PSI != wantNum || acc.Result(Options{}).PSI != wantNum {
		t.Errorf("numeric PSI %v (streamed %v), NumericPSI %v", got.PSI, acc.Result(Options{}).PSI, wantNum)
	}
	wantCat, _ := CategoricalPSI(prof.Columns[1], curCat, nil)
	if g := CompareCategorical(catArr, nil, curCat, nil, Options{}); g.PSI != wantCat {
		t.Errorf("categorical PSI %v, CategoricalPSI %v", g.PSI, wantCat)
	}
}

// evidentlyCategorical computes Evidently's chi-square and Jensen-Shannon
// inputs the way its code does: keys = categories of either sample,
// expected = reference counts * (current rows / reference rows).
func evidentlyCategorical(ref, cur []string) (obs, exp, p, q []float64) {
	rc, cc := map[string]float64{}, map[string]float64{}
	for _, v := range ref {
		rc[v]++
	}
	for _, v := range cur {
		cc[v]++
	}
	keys := map[string]bool{}
	for k := range rc {
		keys[k] = true
	}
	for k := range cc {
		keys[k] = true
	}
	kn := float64(len(cur)) / float64(len(ref))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		obs = append(obs, cc[k])
		exp = append(exp, rc[k]*kn)
		p = append(p, rc[k]/float64(len(ref)))
		q = append(q, cc[k]/float64(len(cur)))
	}
	return
}

func TestCategorical(t *testing.T) {
	tests := []struct {
		name           string
		ref, cur       []string
		curValid       []bool
		method         Method
		wantDrift      bool
		wantUnseen     int64
		wantExamples   []string
		wantInfinite   bool
		wantNulls      int64
		wantPValueOne  bool
		wantStatNonNeg bool
	}{
		{name: "same shares", ref: rep("a", 50, "b", 30, "c", 20), cur: rep("a", 100, "b", 60, "c", 40), method: MethodChiSquare},
		{name: "shifted shares", ref: rep("a", 50, "b", 30, "c", 20), cur: rep("a", 20, "b", 30, "c", 50), method: MethodChiSquare, wantDrift: true},
		{name: "unseen categories", ref: rep("a", 50, "b", 50), cur: rep("a", 49, "b", 49, "x", 3, "y", 1, "z", 3), method: MethodChiSquare,
			wantDrift: true, wantUnseen: 7, wantExamples: []string{"x", "z", "y"}, wantInfinite: true},
		{name: "nulls skipped", ref: rep("a", 5, "b", 5), cur: []string{"a", "b", "", "a"}, curValid: []bool{true, true, false}, method: MethodChiSquare, wantNulls: 2},
		{name: "one category", ref: rep("a", 10), cur: rep("a", 4), method: MethodChiSquare, wantPValueOne: true},
		{name: "js same", ref: rep("a", 600, "b", 600), cur: rep("a", 50, "b", 50), method: MethodJensenShannon},
		{name: "js shifted", ref: rep("a", 600, "b", 600), cur: rep("a", 80, "b", 20), method: MethodJensenShannon, wantDrift: true},
		{name: "js unseen", ref: rep("a", 600, "b", 600), cur: rep("a", 40, "b", 40, "x", 20), method: MethodJensenShannon, wantDrift: true, wantUnseen: 20, wantExamples: []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CompareCategorical(tt.ref, nil, tt.cur, tt.curValid, Options{})
			if res.Method != tt.method || res.Drifted != tt.wantDrift || res.Unseen != tt.wantUnseen ||
				!slices.Equal(res.UnseenExamples, tt.wantExamples) || res.Nulls != tt.wantNulls || res.Kind != KindCategorical {
				t.Fatalf("result %+v", res)
			}
			var cur []string
			for i, v := range tt.cur {
				if tt.curValid == nil || (i < len(tt.curValid) && tt.curValid[i]) {
					cur = append(cur, v)
				}
			}
			obs, exp, p, q := evidentlyCategorical(tt.ref, cur)
			switch {
			case tt.wantPValueOne:
				if res.Statistic != 0 || *res.PValue != 1 {
					t.Errorf("single category: %v %v", res.Statistic, *res.PValue)
				}
			case tt.method == MethodChiSquare:
				s, pv := ChiSquare(obs, exp)
				if !agree(res.Statistic, s, 1e-12) || !agree(*res.PValue, pv, 1e-12) || math.IsInf(s, 1) != tt.wantInfinite {
					t.Errorf("chi-square %v %v, Evidently's %v %v", res.Statistic, *res.PValue, s, pv)
				}
			case tt.method == MethodJensenShannon:
				if js := JensenShannon(p, q); !agree(res.Statistic, js, 1e-12) || res.PValue != nil {
					t.Errorf("Jensen-Shannon %v, Evidently's %v", res.Statistic, js)
				}
			}
			// Histogram shares sum to 1.
			var sr, sc float64
			for i := range res.Histogram.Labels {
				sr += res.Histogram.Reference[i]
				sc += res.Histogram.Current[i]
			}
			if math.Abs(sr-1) > 1e-12 || math.Abs(sc-1) > 1e-12 {
				t.Errorf("histogram sums %v %v: %+v", sr, sc, res.Histogram)
			}
		})
	}
}

// rep repeats values: rep("a", 2, "b", 1) = a a b.
func rep(args ...any) []string {
	var out []string
	for i := 0; i < len(args); i += 2 {
		for j := 0; j < args[i+1].(int); j++ {
			out = append(out, args[i].(string))
		}
	}
	return out
}

func TestCategoricalHistogramOther(t *testing.T) {
	var ref, cur []string
	for i := 0; i < 30; i++ {
		for j := 0; j <= i; j++ {
			ref = append(ref, fmt.Sprintf("c%02d", i))
		}
	}
	cur = append(cur, rep("new", 1000)...)
	cur = append(cur, ref...)
	res := CompareCategorical(ref, nil, cur, nil, Options{HistogramBins: 5})
	h := res.Histogram
	if len(h.Labels) != 5 || h.Labels[0] != "new" || h.Labels[4] != OtherLabel {
		t.Fatalf("labels %v", h.Labels)
	}
	var sr, sc float64
	for i := range h.Labels {
		sr += h.Reference[i]
		sc += h.Current[i]
	}
	if math.Abs(sr-1) > 1e-12 || math.Abs(sc-1) > 1e-12 {
		t.Errorf("sums %v %v", sr, sc)
	}
}

// TestUnseenCap checks that unseen categories beyond MaxUnseen are counted
// in total but not one by one.
func TestUnseenCap(t *testing.T) {
	r := newCategoricalReference(map[string]int64{"a": 10}, Options{MaxUnseen: 3})
	a := r.NewAccumulator()
	a.Add([]string{"u1", "u2", "u2", "u3", "u4", "u5", "a"}, nil)
	res := a.Result(Options{UnseenExamples: 2})
	if res.Unseen != 6 || res.Rows != 7 || !slices.Equal(res.UnseenExamples, []string{"u2", "u1"}) {
		t.Errorf("unseen %d rows %d examples %v", res.Unseen, res.Rows, res.UnseenExamples)
	}
	if !math.IsInf(res.Statistic, 1) || *res.PValue != 0 || !res.Drifted {
		t.Errorf("chi-square with unseen: %v %v", res.Statistic, *res.PValue)
	}
}

func TestMethodFor(t *testing.T) {
	tests := []struct {
		opts Options
		kind string
		rows int64
		want Method
	}{
		{Options{}, KindNumeric, 0, MethodKS},
		{Options{}, KindNumeric, 1000, MethodKS},
		{Options{}, KindNumeric, 1001, MethodWasserstein},
		{Options{}, KindCategorical, 1000, MethodChiSquare},
		{Options{}, KindCategorical, 1001, MethodJensenShannon},
		{Options{SmallReference: 50}, KindNumeric, 51, MethodWasserstein},
		{Options{SmallReference: 5000}, KindCategorical, 4000, MethodChiSquare},
		{Options{NumericMethod: MethodPSI}, KindNumeric, 10, MethodPSI},
		{Options{NumericMethod: MethodJensenShannon}, KindNumeric, 1e6, MethodJensenShannon},
		{Options{CategoricalMethod: MethodPSI}, KindCategorical, 10, MethodPSI},
		// A method that does not apply to the kind is ignored.
		{Options{NumericMethod: MethodChiSquare}, KindNumeric, 10, MethodKS},
		{Options{CategoricalMethod: MethodWasserstein}, KindCategorical, 1e6, MethodJensenShannon},
		{Options{}, "text", 10, ""},
	}
	for _, tt := range tests {
		if got := tt.opts.MethodFor(tt.kind, tt.rows); got != tt.want {
			t.Errorf("%+v.MethodFor(%s, %d) = %q, want %q", tt.opts, tt.kind, tt.rows, got, tt.want)
		}
	}
	if err := (Options{NumericMethod: MethodChiSquare}).Validate(); err == nil {
		t.Error("Validate accepted chisquare for numeric columns")
	}
	if err := (Options{KSThreshold: 2}).Validate(); err == nil {
		t.Error("Validate accepted a p-value threshold of 2")
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Error(err)
	}
	d := DefaultOptions()
	if d.Threshold(MethodKS) != 0.05 || d.Threshold(MethodChiSquare) != 0.05 || d.Threshold(MethodWasserstein) != 0.1 ||
		d.Threshold(MethodJensenShannon) != 0.1 || d.Threshold(MethodPSI) != 0.1 || d.DatasetShare != 0.5 || d.SmallReference != 1000 {
		t.Errorf("defaults %+v", d)
	}
	if (Options{}).WithDefaults() != d || (Options{DatasetShare: 0.7}).WithDefaults().DatasetShare != 0.7 {
		t.Errorf("zero options with defaults %+v, want %+v", (Options{}).withDefaults(), d)
	}
}

func TestThresholdsOverride(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	ref, cur := sample(rng, 5000, 0, 1, 0), sample(rng, 5000, 0.15, 1, 0)
	base := CompareNumeric(ref, cur, Options{})
	if base.Method != MethodWasserstein || base.Statistic < 0.1 || base.Statistic > 0.2 || !base.Drifted {
		t.Fatalf("base %+v", base)
	}
	high := CompareNumeric(ref, cur, Options{WassersteinThreshold: base.Statistic + 1e-9})
	exact := CompareNumeric(ref, cur, Options{WassersteinThreshold: base.Statistic})
	if high.Drifted || !exact.Drifted || high.Threshold != base.Statistic+1e-9 {
		t.Errorf("threshold above the statistic drifted %v; at it %v", high.Drifted, exact.Drifted)
	}
	ks := CompareNumeric(ref[:800], cur[:800], Options{})
	strict := CompareNumeric(ref[:800], cur[:800], Options{KSThreshold: *ks.PValue / 2})
	if ks.Method != MethodKS || !ks.Drifted || strict.Drifted {
		t.Errorf("ks %+v strict %+v", ks, strict)
	}
}

func TestDatasetVerdict(t *testing.T) {
	r := func(drifted ...bool) []ColumnResult {
		out := make([]ColumnResult, len(drifted))
		for i, d := range drifted {
			out[i].Drifted = d
		}
		return out
	}
	tests := []struct {
		results   []ColumnResult
		opts      Options
		n         int
		share     float64
		dataDrift bool
	}{
		{nil, Options{}, 0, 0, false},
		{r(false, false), Options{}, 0, 0, false},
		{r(true, false), Options{}, 1, 0.5, true},
		{r(true, false, false), Options{}, 1, 1.0 / 3, false},
		{r(true, false, false), Options{DatasetShare: 0.3}, 1, 1.0 / 3, true},
		{r(true, true, true, false), Options{DatasetShare: 0.8}, 3, 0.75, false},
	}
	for _, tt := range tests {
		n, share, dd := DatasetVerdict(tt.results, tt.opts)
		if n != tt.n || share != tt.share || dd != tt.dataDrift {
			t.Errorf("DatasetVerdict(%d results, %+v) = %d %v %v, want %d %v %v", len(tt.results), tt.opts, n, share, dd, tt.n, tt.share, tt.dataDrift)
		}
	}
}

func TestNoData(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		ref, cur []float64
		note     string
	}{
		{"no reference", []float64{nan}, []float64{1, 2}, "no reference values"},
		{"no current", []float64{1, 2, 3}, []float64{nan, math.Inf(1)}, "no current values"},
		{"nothing", nil, nil, "no reference values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, res := range []ColumnResult{CompareNumeric(tt.ref, tt.cur, Options{}), streamed(tt.ref, tt.cur)} {
				if res.Note != tt.note || res.Drifted || res.PValue != nil || res.Statistic != 0 {
					t.Errorf("path %d: %+v", i, res)
				}
				if _, err := json.Marshal(res); err != nil {
					t.Errorf("path %d: %v", i, err)
				}
			}
		})
	}
	if d, p := KS(nil, []float64{1}); !math.IsNaN(d) || !math.IsNaN(p) {
		t.Errorf("KS of an empty sample = %v %v", d, p)
	}
	if w := Wasserstein([]float64{nan}, []float64{1}); !math.IsNaN(w) {
		t.Errorf("Wasserstein of an all-NaN sample = %v", w)
	}
	cres := CompareCategorical(nil, nil, []string{"a"}, nil, Options{})
	if cres.Note != "no reference values" || cres.Drifted || cres.Unseen != 1 {
		t.Errorf("categorical without reference: %+v", cres)
	}
}

func streamed(ref, cur []float64) ColumnResult {
	a := NewNumericReference(ref, Options{}).NewAccumulator()
	a.Add(cur, nil)
	return a.Result(Options{})
}

// TestConstantReference covers a reference whose values are all equal.
func TestConstantReference(t *testing.T) {
	ref := []float64{3, 3, 3, 3}
	cur := []float64{2, 3, 3.2, 3.6, 10}
	got, want := streamed(ref, cur), CompareNumeric(ref, cur, Options{})
	if got.Statistic != want.Statistic || *got.PValue != *want.PValue || !reflect.DeepEqual(got.Histogram, want.Histogram) {
		t.Errorf("streamed %+v\nexact %+v", got, want)
	}
	if e := want.Histogram.Edges; e[0] != 2.5 || e[len(e)-1] != 3.5 || got.OutOfRange != 4 {
		t.Errorf("edges %v out of range %d", e, got.OutOfRange)
	}
	w := CompareNumeric(ref, cur, Options{NumericMethod: MethodWasserstein})
	// Norm: max(std 0, 0.001).
	if !agree(w.Statistic, Wasserstein(ref, cur)/0.001, 1e-12) {
		t.Errorf("normed Wasserstein %v", w.Statistic)
	}
}

func TestInputsNotModified(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	a, b := sample(rng, 5000, 0, 1, 0), sample(rng, 3000, 0, 1, 0)
	a[7], b[9] = math.NaN(), math.Copysign(0, -1)
	ca, cb := slices.Clone(a), slices.Clone(b)
	KS(a, b)
	Wasserstein(a, b)
	KSAndWasserstein(a, b)
	CompareNumeric(a, b, Options{})
	NewNumericReference(a, Options{}).NewAccumulator().Add(b, nil)
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(ca[i]) {
			t.Fatalf("a[%d] changed", i)
		}
	}
	for i := range b {
		if math.Float64bits(b[i]) != math.Float64bits(cb[i]) {
			t.Fatalf("b[%d] changed", i)
		}
	}
}

func TestSortValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var sources [][]float64
	for _, n := range []int{0, 1, 100, radixMin - 1, radixMin, 100000} {
		src := make([]float64, n)
		for i := range src {
			switch rng.IntN(20) {
			case 0:
				src[i] = math.NaN()
			case 1:
				src[i] = math.Inf(1 - 2*rng.IntN(2))
			case 2:
				src[i] = math.Copysign(0, -1)
			case 3:
				src[i] = float64(rng.IntN(5))
			default:
				src[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
			}
		}
		sources = append(sources, src)
	}
	// Long runs equal in the radix window: values that differ only in
	// their lowest bits, beside one far away; and all values equal.
	low := make([]float64, 5000)
	for i := range low {
		low[i] = 1 + float64(rng.IntN(3000))*0x1p-52
	}
	sources = append(sources, append(low, 1e300), slices.Repeat([]float64{7}, 3000), slices.Repeat([]float64{math.NaN()}, 3000))
	for _, src := range sources {
		n := len(src)
		for _, finiteOnly := range []bool{false, true} {
			var want []float64
			for _, v := range src {
				if !math.IsNaN(v) && (!finiteOnly || !math.IsInf(v, 0)) {
					want = append(want, v+0) // -0 + 0 = +0
				}
			}
			slices.Sort(want)
			got := sortValues(nil, src, finiteOnly)
			if len(got) != len(want) {
				t.Fatalf("n %d: %d values, want %d", n, len(got), len(want))
			}
			for i := range got {
				if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
					t.Fatalf("n %d finite %v: [%d] = %v, want %v", n, finiteOnly, i, got[i], want[i])
				}
			}
		}
	}
}

// TestLocatorPaths checks the cell lookup of every accumulator loop (bucket
// scans of 2 and 4 breakpoints, the binary-search fallback, a single
// breakpoint) against a binary search, for exact and binned references.
func TestLocatorPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	clustered := func(n int) []float64 {
		// Extremely skewed: most values packed near 0, a few huge.
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Ldexp(rng.Float64(), -rng.IntN(60))
			if rng.IntN(1000) == 0 {
				out[i] = 1e12 * rng.Float64()
			}
		}
		return out
	}
	scans := map[int]bool{}
	for _, tc := range []struct {
		name string
		ref  []float64
		opts Options
	}{
		{"normal binned", sample(rng, 200000, 0, 1, 0), Options{}},
		// More than 2^16 breakpoints: the fallback loop.
		{"70k exact", sample(rng, 70000, 0, 1, 0), Options{ExactPoints: 100000}},
		{"normal exact", sample(rng, 900, 0, 1, 0), Options{}},
		{"integers exact", sample(rng, 100000, 0, 20, 1), Options{}},
		{"clustered binned", clustered(200000), Options{}},
		{"clustered exact", clustered(1500), Options{}},
		{"constant", []float64{2, 2, 2}, Options{}},
		{"triple exact", []float64{0, 0.5, 0.5 + 1e-9, 0.5 + 2e-9, 1}, Options{}},
		{"triple binned", append(sample(rng, 2000, 0.5, 0.2, 0), slices.Repeat([]float64{0.5, 0.5 + 1e-9, 0.5 + 2e-9}, 400)...), Options{}},
		{"two values", []float64{-1, 5, 5}, Options{}},
	} {
		ref := NewNumericReference(tc.ref, tc.opts)
		scans[ref.loc.scan] = true
		cur := append(sample(rng, 5000, 0, 2, 0), tc.ref[:min(len(tc.ref), 3000)]...)
		cur = append(cur, clustered(2000)...)
		cur = append(cur, ref.loc.points[:ref.loc.k]...)
		cur = append(cur, -1e300, 1e300, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64)
		acc := ref.NewAccumulator()
		acc.Add(cur, nil)
		want := make([]int64, len(acc.cells))
		pts := ref.loc.points[:ref.loc.k]
		for _, v := range cur {
			j := sort.SearchFloat64s(pts, v)
			eq := j < len(pts) && pts[j] == v
			c := j
			if ref.exact {
				c = 2 * j
				if eq {
					c++
				}
			}
			want[c]++
		}
		for c := range want {
			if acc.cells[c].n != want[c] {
				t.Errorf("%s (scan %d, exact %v): cell %d has %d values, want %d", tc.name, ref.loc.scan, ref.exact, c, acc.cells[c].n, want[c])
				break
			}
		}
	}
	for _, s := range []int{0, 2, 4} {
		if !scans[s] {
			t.Errorf("no test reference used scan %d (used %v)", s, scans)
		}
	}
	t.Logf("scans used: %v", scans)
}
