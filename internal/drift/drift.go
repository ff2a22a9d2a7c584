// Package drift is Kiln's drift statistics package: how far current
// feature values (served traffic, a nightly batch) have moved from a
// reference (the training data), for the monitor, the nightly reports and
// canary analysis.
//
// It has three layers:
//
//   - Exact two-sample statistics, each equal to its SciPy counterpart
//     (checked against SciPy 1.10 in the tests): KS (scipy.stats.ks_2samp,
//     exact and asymptotic p-values), ChiSquare (scipy.stats.chisquare),
//     Wasserstein (scipy.stats.wasserstein_distance) and JensenShannon
//     (scipy.spatial.distance.jensenshannon), plus PSI.
//   - Evidently's data drift defaults (Options, MethodFor, DatasetVerdict):
//     for a reference of at most 1000 rows KS (numeric) or chi-square
//     (categorical), drift when p < 0.05; above, the Wasserstein distance
//     divided by the reference's standard deviation, or the Jensen-Shannon
//     distance, drift when >= 0.1; the dataset drifts when at least half of
//     its columns do; every threshold and the method per column kind can be
//     overridden. CompareNumeric and CompareCategorical apply them to
//     samples in memory, exactly.
//   - Streaming comparison in bounded memory: NumericReference and
//     CategoricalReference keep what the tests need of a reference;
//     accumulators take the current data in batches (Add, Merge) and give a
//     ColumnResult, which maps one to one onto the report schema's
//     ColumnDrift. KS over an exact reference is exact; binned references
//     report an error bound (see NumericReference).
//
// The older PSI-only API (Compare, FeatureDrift, Report, NumericPSI,
// CategoricalPSI over a dataset.Profile) is what the monitor activity calls.
package drift

import (
	"fmt"
	"math"
	"sort"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// Epsilon replaces empty bins' fractions in PSI, as Evidently does, so that
// the logarithm stays finite.
const Epsilon = 1e-4

// DefaultThreshold is the customary PSI above which a feature has drifted
// significantly; Compare uses it when given a threshold <= 0.
const DefaultThreshold = 0.2

// Feature kinds.
const (
	KindNumeric     = "numeric"
	KindCategorical = "categorical"
)

// PSI returns the population stability index sum((a-e)*ln(a/e)) of the
// actual bin fractions against the expected ones, after replacing zero
// fractions by Epsilon. The slices must have the same length; PSI panics
// otherwise.
func PSI(expected, actual []float64) float64 {
	if len(expected) != len(actual) {
		panic(fmt.Sprintf("drift.PSI: %d expected bins but %d actual", len(expected), len(actual)))
	}
	var psi float64
	for i, e := range expected {
		a := actual[i]
		if e == 0 {
			e = Epsilon
		}
		if a == 0 {
			a = Epsilon
		}
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// BinFractions returns the share of values in each of the len(edges)+1 bins
// delimited by the increasing inner edges — value v falls in bin
// sort.SearchFloat64s(edges, v), so bin i holds edges[i-1] < v <= edges[i] —
// and n, the number of values counted. NaN values are skipped. With no values
// counted every fraction is 0. The binning is dataset.BinFractions', which
// computed the training profile's fractions.
func BinFractions(edges, values []float64) (fractions []float64, n int) {
	for _, v := range values {
		if !math.IsNaN(v) {
			n++
		}
	}
	return dataset.BinFractions(values, edges), n
}

// CategoryFractions returns the share of values equal to each category, the
// share of other values, and n, the number of values counted. Values whose
// valid entry is false are skipped; a nil valid counts every value.
func CategoryFractions(categories []string, values []string, valid []bool) (fractions []float64, other float64, n int) {
	index := make(map[string]int, len(categories))
	for i, c := range categories {
		if _, dup := index[c]; !dup {
			index[c] = i
		}
	}
	counts := make([]int, len(categories)+1) // last: other
	for i, v := range values {
		if valid != nil && (i >= len(valid) || !valid[i]) {
			continue
		}
		if j, ok := index[v]; ok {
			counts[j]++
		} else {
			counts[len(categories)]++
		}
		n++
	}
	f := shares(counts, n)
	return f[:len(categories)], f[len(categories)], n
}

// shares divides counts by n, giving zeros when n is 0.
func shares(counts []int, n int) []float64 {
	out := make([]float64, len(counts))
	if n == 0 {
		return out
	}
	for i, c := range counts {
		out[i] = float64(c) / float64(n)
	}
	return out
}

// NumericPSI bins values with the profile's edges and returns their PSI
// against the profile's fractions, with n the number of non-NaN values. It
// returns 0 when no value was counted, and NaN when the profile has no
// reference distribution (no training values, or Fractions not matching
// Edges).
func NumericPSI(p dataset.ColumnProfile, values []float64) (psi float64, n int) {
	actual, n := BinFractions(p.Edges, values)
	if !hasNumericReference(p) {
		return math.NaN(), n
	}
	if n == 0 {
		return 0, 0
	}
	return PSI(p.Fractions, actual), n
}

// CategoricalPSI returns the PSI of values against the profile's categories
// plus one "other" bin, with n the number of valid values (see
// CategoryFractions). It returns 0 when no value was counted, and NaN when the
// profile has no reference distribution.
func CategoricalPSI(p dataset.ColumnProfile, values []string, valid []bool) (psi float64, n int) {
	fr, other, n := CategoryFractions(p.Categories, values, valid)
	if !hasCategoricalReference(p) {
		return math.NaN(), n
	}
	if n == 0 {
		return 0, 0
	}
	expected := append(append([]float64(nil), p.CategoryFractions...), p.OtherFraction)
	return PSI(expected, append(fr, other)), n
}

// hasNumericReference reports whether a profile holds a numeric distribution.
func hasNumericReference(p dataset.ColumnProfile) bool {
	return p.Count > 0 && len(p.Fractions) == len(p.Edges)+1
}

// hasCategoricalReference reports whether a profile holds a categorical
// distribution.
func hasCategoricalReference(p dataset.ColumnProfile) bool {
	return p.Count > 0 && len(p.CategoryFractions) == len(p.Categories) &&
		(len(p.Categories) > 0 || p.OtherFraction > 0)
}

// Column holds one feature's served values: Floats for numeric features
// (Int64 columns converted to float64), Strings for categorical ones (bools as
// "true"/"false"). Valid marks non-null entries; nil means all are valid. NaN
// floats count as null.
type Column struct {
	Floats  []float64
	Strings []string
	Valid   []bool
}

// len returns the number of rows in the column.
func (c Column) len() int { return max(len(c.Floats), len(c.Strings)) }

// FeatureDrift is the drift of one feature.
type FeatureDrift struct {
	// Feature is the column name.
	Feature string `json:"feature"`
	// Kind is KindNumeric or KindCategorical.
	Kind string `json:"kind"`
	// PSI is the population stability index against the training profile.
	PSI float64 `json:"psi"`
	// Rows is the number of non-null values compared.
	Rows int `json:"rows"`
	// Drifted reports PSI >= the threshold with at least minRows values.
	Drifted bool `json:"drifted"`
}

// Report is the drift of a window of served rows against a training profile.
type Report struct {
	// Features are sorted by PSI, largest first, then by name.
	Features []FeatureDrift `json:"features"`
	// Rows is the number of rows in the window (the longest column).
	Rows int `json:"rows"`
	// Threshold is the PSI at or above which a feature counts as drifted.
	Threshold float64 `json:"threshold"`
	// Drifted reports whether any feature drifted.
	Drifted bool `json:"drifted"`
	// MaxPSI is the largest PSI among features with at least minRows values.
	MaxPSI float64 `json:"max_psi"`
	// Skipped lists, sorted, the profiled columns that were not compared:
	// absent from the window, of the wrong kind (numeric without Floats,
	// categorical without Strings), or without a reference distribution.
	Skipped []string `json:"skipped,omitempty"`
}

// Compare computes the drift of every profiled column present in columns. A
// feature drifts when its PSI is at least threshold (DefaultThreshold if
// threshold <= 0) and it has at least minRows non-null values; features with
// fewer values are reported with their PSI and Rows but never drift.
func Compare(profile dataset.Profile, columns map[string]Column, threshold float64, minRows int) Report {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	rep := Report{Threshold: threshold}
	for _, c := range columns {
		rep.Rows = max(rep.Rows, c.len())
	}
	for _, p := range profile.Columns {
		col, ok := columns[p.Name]
		if !ok {
			rep.Skipped = append(rep.Skipped, p.Name)
			continue
		}
		var fd FeatureDrift
		switch p.Type {
		case dataset.Float64, dataset.Int64:
			if col.Floats == nil || !hasNumericReference(p) {
				rep.Skipped = append(rep.Skipped, p.Name)
				continue
			}
			fd = FeatureDrift{Feature: p.Name, Kind: KindNumeric}
			fd.PSI, fd.Rows = NumericPSI(p, validFloats(col))
		case dataset.String, dataset.Bool:
			if col.Strings == nil || !hasCategoricalReference(p) {
				rep.Skipped = append(rep.Skipped, p.Name)
				continue
			}
			fd = FeatureDrift{Feature: p.Name, Kind: KindCategorical}
			fd.PSI, fd.Rows = CategoricalPSI(p, col.Strings, col.Valid)
		default:
			rep.Skipped = append(rep.Skipped, p.Name)
			continue
		}
		if fd.Rows >= minRows && fd.Rows > 0 {
			fd.Drifted = fd.PSI >= threshold
			rep.MaxPSI = max(rep.MaxPSI, fd.PSI)
			rep.Drifted = rep.Drifted || fd.Drifted
		}
		rep.Features = append(rep.Features, fd)
	}
	sort.Slice(rep.Features, func(i, j int) bool {
		a, b := rep.Features[i], rep.Features[j]
		if a.PSI != b.PSI {
			return a.PSI > b.PSI
		}
		return a.Feature < b.Feature
	})
	sort.Strings(rep.Skipped)
	return rep
}

// validFloats returns the column's floats whose Valid entry is true.
func validFloats(c Column) []float64 {
	if c.Valid == nil {
		return c.Floats
	}
	out := make([]float64, 0, len(c.Floats))
	for i, v := range c.Floats {
		if i < len(c.Valid) && c.Valid[i] {
			out = append(out, v)
		}
	}
	return out
}
