package drift

import (
	"cmp"
	"math"
	"slices"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// CategoricalReference is the reference of a categorical column: the count
// of every category (most frequent first, ties by value, as
// dataset.Profile orders them). Its first dataset.MaxCategories categories
// plus one "other" bin are the PSI bins, as in the training profile, so the
// PSI equals CategoricalPSI over a profile of the same data. It is
// immutable and safe for concurrent use.
type CategoricalReference struct {
	cats      []string
	counts    []int64
	index     map[string]int32
	n, nulls  int64
	maxUnseen int
}

// NewCategoricalReference builds the reference of a categorical column from
// its sample. valid marks non-null entries (nil: all valid; entries past its
// end count as null). opts sets MaxUnseen.
func NewCategoricalReference(values []string, valid []bool, opts Options) *CategoricalReference {
	counts := map[string]int64{}
	var nulls int64
	for i, v := range values {
		if valid != nil && (i >= len(valid) || !valid[i]) {
			nulls++
			continue
		}
		counts[v]++
	}
	r := newCategoricalReference(counts, opts)
	r.nulls = nulls
	return r
}

// NewCategoricalReferenceCounts builds the reference of a categorical
// column from the count of each category (counts <= 0 are ignored), with
// the default options.
func NewCategoricalReferenceCounts(counts map[string]int64) *CategoricalReference {
	return newCategoricalReference(counts, Options{})
}

func newCategoricalReference(counts map[string]int64, opts Options) *CategoricalReference {
	opts = opts.withDefaults()
	r := &CategoricalReference{index: make(map[string]int32, len(counts)), maxUnseen: opts.MaxUnseen}
	for v, c := range counts {
		if c > 0 {
			r.cats = append(r.cats, v)
		}
	}
	slices.SortFunc(r.cats, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	r.counts = make([]int64, len(r.cats))
	for i, v := range r.cats {
		r.counts[i] = counts[v]
		r.index[v] = int32(i)
		r.n += counts[v]
	}
	return r
}

// ReferenceRows returns the number of non-null reference values.
func (r *CategoricalReference) ReferenceRows() int64 { return r.n }

// ReferenceNulls returns the number of null reference values (0 for a
// reference built from counts).
func (r *CategoricalReference) ReferenceNulls() int64 { return r.nulls }

// valueCount is a category and its count.
type valueCount struct {
	v string
	n int64
}

// CategoricalAccumulator accumulates current values of a categorical column:
// a count per reference category and, for categories the reference never
// had, a count per category for the first MaxUnseen distinct ones and a
// total.
type CategoricalAccumulator struct {
	ref         *CategoricalReference
	counts      []int64
	unseen      map[string]int64
	unseenTotal int64
	nulls       int64
}

// NewAccumulator returns an empty accumulator for current data.
func (r *CategoricalReference) NewAccumulator() *CategoricalAccumulator {
	return &CategoricalAccumulator{ref: r, counts: make([]int64, len(r.cats)), unseen: map[string]int64{}}
}

// Add accumulates a batch of current values; valid marks the non-null
// entries (nil: all valid; entries past its end count as null).
func (a *CategoricalAccumulator) Add(values []string, valid []bool) {
	idx := a.ref.index
	for i, v := range values {
		if valid != nil && (i >= len(valid) || !valid[i]) {
			a.nulls++
			continue
		}
		if j, ok := idx[v]; ok {
			a.counts[j]++
			continue
		}
		a.addUnseen(v, 1)
	}
}

func (a *CategoricalAccumulator) addUnseen(v string, n int64) {
	a.unseenTotal += n
	if _, ok := a.unseen[v]; ok || len(a.unseen) < a.ref.maxUnseen {
		a.unseen[v] += n
	}
}

// Merge adds other's values to a. Both must come from the same reference;
// Merge panics otherwise. Unseen categories beyond MaxUnseen distinct ones
// are only counted in total (a category both counted one by one in a and
// only in total in other undercounts in UnseenExamples).
func (a *CategoricalAccumulator) Merge(other *CategoricalAccumulator) {
	if other.ref != a.ref {
		panic("drift: merging categorical accumulators of different references")
	}
	for i, c := range other.counts {
		a.counts[i] += c
	}
	var tracked int64
	for v, c := range other.unseen {
		a.unseenTotal += c
		tracked += c
		if _, ok := a.unseen[v]; ok || len(a.unseen) < a.ref.maxUnseen {
			a.unseen[v] += c
		}
	}
	a.unseenTotal += other.unseenTotal - tracked
	a.nulls += other.nulls
}

// Result compares the accumulated current values with the reference by
// opts.MethodFor(KindCategorical, reference rows), computing the PSI and
// the histogram beside it:
//
//   - chi-square, as Evidently: over every category of the reference or the
//     current data, observed = current counts, expected = reference counts
//     times (current rows / reference rows). A category the reference never
//     had is expected 0 times, so the statistic is +Inf and the p-value 0
//     (drift), as SciPy computes it. With a single category in all
//     (no degrees of freedom; SciPy gives NaN) the p-value is 1.
//   - Jensen-Shannon, as Evidently: over the same categories, the shares of
//     the reference and of the current data (zeros kept, no smoothing).
//     Unseen categories have reference share 0, and their contribution
//     depends only on their total share, so they are counted as one.
//   - PSI: the reference's first dataset.MaxCategories categories plus
//     "other" (the rest and every unseen category), Epsilon for empty
//     bins, as CategoricalPSI.
func (a *CategoricalAccumulator) Result(opts Options) ColumnResult {
	opts = opts.withDefaults()
	r := a.ref
	var m int64
	for _, c := range a.counts {
		m += c
	}
	m += a.unseenTotal
	res := ColumnResult{Kind: KindCategorical, ReferenceRows: r.n, Rows: m, Nulls: a.nulls, Unseen: a.unseenTotal}
	method := opts.MethodFor(KindCategorical, r.n)

	unseen := make([]valueCount, 0, len(a.unseen))
	for v, n := range a.unseen {
		unseen = append(unseen, valueCount{v, n})
	}
	slices.SortFunc(unseen, func(x, y valueCount) int {
		if c := cmp.Compare(y.n, x.n); c != 0 {
			return c
		}
		return cmp.Compare(x.v, y.v)
	})
	for _, u := range unseen[:min(len(unseen), opts.UnseenExamples)] {
		res.UnseenExamples = append(res.UnseenExamples, u.v)
	}
	res.Histogram = a.histogram(opts.HistogramBins, m, unseen)

	if r.n > 0 && m > 0 {
		kept := min(len(r.cats), dataset.MaxCategories)
		exp := make([]float64, kept+1)
		act := make([]float64, kept+1)
		var keptRef, keptCur int64
		for i := 0; i < kept; i++ {
			exp[i] = float64(r.counts[i]) / float64(r.n)
			act[i] = float64(a.counts[i]) / float64(m)
			keptRef += r.counts[i]
			keptCur += a.counts[i]
		}
		exp[kept] = float64(r.n-keptRef) / float64(r.n)
		act[kept] = float64(m-keptCur) / float64(m)
		res.PSI = PSI(exp, act)
	}
	if r.n == 0 || m == 0 {
		res.noData(opts, method)
		return res
	}
	switch method {
	case MethodChiSquare:
		k := len(r.cats) + len(unseen)
		if a.unseenTotal > 0 && len(unseen) == 0 {
			k++
		}
		obs := make([]float64, 0, k)
		exp := make([]float64, 0, k)
		kn := float64(m) / float64(r.n)
		for i, c := range r.counts {
			obs = append(obs, float64(a.counts[i]))
			exp = append(exp, float64(c)*kn)
		}
		var tracked int64
		for _, u := range unseen {
			obs = append(obs, float64(u.n))
			exp = append(exp, 0)
			tracked += u.n
		}
		if rest := a.unseenTotal - tracked; rest > 0 {
			obs = append(obs, float64(rest))
			exp = append(exp, 0)
		}
		stat, p := ChiSquare(obs, exp)
		if len(obs) == 1 {
			stat, p = 0, 1
		}
		res.verdict(opts, method, stat, p)
	case MethodJensenShannon:
		p := make([]float64, len(r.counts)+1)
		q := make([]float64, len(r.counts)+1)
		for i, c := range r.counts {
			p[i] = float64(c) / float64(r.n)
			q[i] = float64(a.counts[i]) / float64(m)
		}
		q[len(r.counts)] = float64(a.unseenTotal) / float64(m)
		res.verdict(opts, method, JensenShannon(p, q), math.NaN())
	case MethodPSI:
		res.verdict(opts, method, res.PSI, math.NaN())
	}
	return res
}

// histogram returns the display histogram: the categories with the largest
// reference plus current share, at most bins of them, the last one
// OtherLabel holding the rest when there are more.
func (a *CategoricalAccumulator) histogram(bins int, m int64, unseen []valueCount) Histogram {
	r := a.ref
	type bar struct {
		label    string
		ref, cur int64
		score    float64
	}
	share := func(c, n int64) float64 {
		if n == 0 {
			return 0
		}
		return float64(c) / float64(n)
	}
	bars := make([]bar, 0, len(r.cats)+len(unseen))
	for i, v := range r.cats {
		bars = append(bars, bar{v, r.counts[i], a.counts[i], share(r.counts[i], r.n) + share(a.counts[i], m)})
	}
	var tracked int64
	for _, u := range unseen {
		bars = append(bars, bar{u.v, 0, u.n, share(u.n, m)})
		tracked += u.n
	}
	slices.SortStableFunc(bars, func(x, y bar) int { return cmp.Compare(y.score, x.score) })
	h := Histogram{Labels: []string{}, Reference: []float64{}, Current: []float64{}}
	shown := bars
	var otherRef, otherCur int64
	otherCur = a.unseenTotal - tracked
	if len(bars) > bins || otherCur > 0 {
		cut := min(len(bars), bins-1)
		shown = bars[:cut]
		for _, b := range bars[cut:] {
			otherRef += b.ref
			otherCur += b.cur
		}
	}
	for _, b := range shown {
		h.Labels = append(h.Labels, b.label)
		h.Reference = append(h.Reference, share(b.ref, r.n))
		h.Current = append(h.Current, share(b.cur, m))
	}
	if len(shown) < len(bars) || otherCur > 0 {
		h.Labels = append(h.Labels, OtherLabel)
		h.Reference = append(h.Reference, share(otherRef, r.n))
		h.Current = append(h.Current, share(otherCur, m))
	}
	return h
}

// CompareCategorical compares a current categorical sample with a
// reference sample in memory (exactly: every unseen category is counted).
// refValid and curValid mark non-null entries (nil: all valid).
func CompareCategorical(ref []string, refValid []bool, cur []string, curValid []bool, opts Options) ColumnResult {
	opts = opts.withDefaults()
	opts.MaxUnseen = max(opts.MaxUnseen, len(cur))
	r := NewCategoricalReference(ref, refValid, opts)
	a := r.NewAccumulator()
	a.Add(cur, curValid)
	return a.Result(opts)
}
