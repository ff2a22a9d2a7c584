package drift

import "math"

// ColumnResult is the drift of one column, shaped like the report schema's
// ColumnDrift (internal/report): Column, Kind, the Test fields (Method,
// Statistic, PValue, Threshold, Drifted), PSI, ReferenceRows, Rows and
// Histogram map one to one, with the same JSON names; Nulls, OutOfRange,
// Unseen and UnseenExamples feed the report's ColumnQuality.
type ColumnResult struct {
	// Column is the column name; the comparison functions leave it empty
	// for the caller to set.
	Column string `json:"column,omitempty"`
	// Kind is KindNumeric or KindCategorical.
	Kind string `json:"kind"`
	// Method is the test that gave the verdict.
	Method Method `json:"method"`
	// Statistic is the test's statistic: the KS distance, the chi-square
	// statistic, the Wasserstein distance divided by the reference's
	// population standard deviation (at least 0.001), the Jensen-Shannon
	// distance, or the PSI. It is 0 when a side had no values (see Note).
	// A chi-square statistic is +Inf when the current data hold a category
	// the reference never had (as SciPy and Evidently compute it); encoding
	// it as JSON needs care, as encoding/json rejects infinities.
	Statistic float64 `json:"statistic"`
	// StatisticError bounds |Statistic - exact statistic| for results of a
	// binned NumericReference (see NumericReference); it is 0 when the
	// statistic is exact.
	StatisticError float64 `json:"statistic_error,omitempty"`
	// PValue is set for the tests that have one (KS, chi-square).
	PValue *float64 `json:"p_value,omitempty"`
	// Threshold is the p-value below which (KS, chi-square) or the
	// statistic at or above which (the others) the column drifted.
	Threshold float64 `json:"threshold"`
	// Drifted is the verdict.
	Drifted bool `json:"drifted"`
	// PSI is the population stability index beside the test.
	PSI float64 `json:"psi"`
	// ReferenceRows and Rows are the non-null reference and current values
	// compared; Nulls counts the current nulls (invalid, NaN or ±Inf
	// numbers).
	ReferenceRows int64 `json:"reference_rows"`
	Rows          int64 `json:"rows"`
	Nulls         int64 `json:"nulls"`
	// OutOfRange counts numeric current values below the reference minimum
	// or above its maximum.
	OutOfRange int64 `json:"out_of_range,omitempty"`
	// Unseen counts categorical current values the reference never had;
	// UnseenExamples lists the most frequent of them (most frequent first,
	// ties by value).
	Unseen         int64    `json:"unseen,omitempty"`
	UnseenExamples []string `json:"unseen_examples,omitempty"`
	// Histogram compares the distributions for display.
	Histogram Histogram `json:"histogram"`
	// Note says why there is no verdict ("no reference values", "no
	// current values"), or is empty.
	Note string `json:"note,omitempty"`
}

// Histogram is a binned comparison of the reference and current
// distributions, as the report schema's Histogram. Numeric histograms have
// HistogramBins equal-width bins over the reference range (edges as
// numpy.histogram computes them), len(Edges) == len(Reference)+1, each bin
// (Edges[i], Edges[i+1]] but the first, which is closed (the mirror image
// of numpy's convention, so that bins share the PSI's rule); current values
// outside the reference range are counted in the end bins. A reference
// whose values are all equal to v gets the range [v-0.5, v+0.5], as numpy. Categorical histograms have
// Labels instead of Edges: the categories with the largest reference plus
// current share (at most HistogramBins, the last one "(other)" when there
// are more, holding the rest).
type Histogram struct {
	Edges  []float64 `json:"edges,omitempty"`
	Labels []string  `json:"labels,omitempty"`
	// Reference and Current are the shares of values per bin (each sums to
	// 1, or to 0 when there were no values).
	Reference []float64 `json:"reference"`
	Current   []float64 `json:"current"`
}

// OtherLabel labels the categorical histogram bin of the categories not
// shown one by one.
const OtherLabel = "(other)"

// DatasetVerdict returns the number of drifted columns, their share of all
// results, and whether the dataset drifted: the share is at least
// opts.DatasetShare (default 0.5, as Evidently). With no results nothing
// drifted.
func DatasetVerdict(results []ColumnResult, opts Options) (drifted int, share float64, datasetDrift bool) {
	opts = opts.withDefaults()
	for _, r := range results {
		if r.Drifted {
			drifted++
		}
	}
	if len(results) == 0 {
		return 0, 0, false
	}
	share = float64(drifted) / float64(len(results))
	return drifted, share, share >= opts.DatasetShare
}

// verdict fills the result's test fields for a statistic and an optional
// p-value (NaN for none).
func (r *ColumnResult) verdict(opts Options, m Method, stat, p float64) {
	r.Method = m
	r.Threshold = opts.Threshold(m)
	r.Statistic = stat
	if m.HasPValue() {
		pv := p
		r.PValue = &pv
		r.Drifted = p < r.Threshold
	} else {
		r.Drifted = stat >= r.Threshold
	}
}

// noData marks a result without values on one side: no verdict.
func (r *ColumnResult) noData(opts Options, m Method) {
	r.Method = m
	r.Threshold = opts.Threshold(m)
	switch {
	case r.ReferenceRows == 0:
		r.Note = "no reference values"
	default:
		r.Note = "no current values"
	}
}

// shares returns counts divided by n (all zeros for n == 0).
func sharesOf(counts []int64, n int64) []float64 {
	out := make([]float64, len(counts))
	if n == 0 {
		return out
	}
	for i, c := range counts {
		out[i] = float64(c) / float64(n)
	}
	return out
}

// normedWasserstein divides a Wasserstein distance by Evidently's norm, the
// reference's population standard deviation but at least 0.001.
func normedWasserstein(w, std float64) float64 { return w / math.Max(std, 0.001) }

// meanStd returns the mean and the population standard deviation of the
// values (two passes, compensated sums).
func meanStd(values []float64) (mean, std float64) {
	if len(values) == 0 {
		return math.NaN(), math.NaN()
	}
	var s neumaier
	for _, v := range values {
		s.add(v)
	}
	mean = s.value() / float64(len(values))
	var ss neumaier
	for _, v := range values {
		d := v - mean
		ss.add(d * d)
	}
	return mean, math.Sqrt(ss.value() / float64(len(values)))
}
