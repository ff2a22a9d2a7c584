package dataset

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
)

// DefaultBins is the number of bins NewProfiler uses when given bins <= 0.
const DefaultBins = 10

// Profiler accumulates records into a Profile. Numeric columns keep their
// values in memory (training sets fit in memory); categorical columns keep a
// count per distinct value. Non-finite numbers (NaN, +Inf and -Inf) count as
// nulls, so that every numeric statistic of a profile is finite and the
// profile can be encoded as JSON.
type Profiler struct {
	schema Schema
	bins   int
	rows   int64
	cols   []profileColumn
}

// profileColumn accumulates one column.
type profileColumn struct {
	nulls  int64
	values []float64        // numeric columns: non-null values
	counts map[string]int64 // categorical columns: count per value
}

// NewProfiler returns a profiler for records of the given schema, cutting
// numeric columns into bins quantile bins (DefaultBins if bins <= 0).
func NewProfiler(schema Schema, bins int) *Profiler {
	if bins <= 0 {
		bins = DefaultBins
	}
	p := &Profiler{
		schema: Schema{Fields: append([]Field(nil), schema.Fields...)},
		bins:   bins,
		cols:   make([]profileColumn, len(schema.Fields)),
	}
	for i, f := range schema.Fields {
		if !f.Type.Numeric() {
			p.cols[i].counts = map[string]int64{}
		}
	}
	return p
}

// Add accumulates rec, which must hold every schema column (by name, with
// the schema's type; other columns are ignored).
func (p *Profiler) Add(rec arrow.Record) error {
	if rec == nil {
		return fmt.Errorf("profiling: nil record")
	}
	for _, f := range p.schema.Fields {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			return fmt.Errorf("profiling: record has no column %q", f.Name)
		}
		if t, ok := typeOfArrow(rec.Column(idx[0]).DataType()); !ok || t != f.Type {
			return fmt.Errorf("profiling: column %q is %s, schema says %s", f.Name, rec.Column(idx[0]).DataType(), f.Type)
		}
	}
	for i, f := range p.schema.Fields {
		c := &p.cols[i]
		if f.Type.Numeric() {
			vals, err := Float64s(rec, f.Name)
			if err != nil {
				return fmt.Errorf("profiling: %w", err)
			}
			for _, v := range vals {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					c.nulls++
				} else {
					c.values = append(c.values, v)
				}
			}
			continue
		}
		vals, valid, err := Strings(rec, f.Name)
		if err != nil {
			return fmt.Errorf("profiling: %w", err)
		}
		for j, v := range vals {
			if valid[j] {
				c.counts[v]++
			} else {
				c.nulls++
			}
		}
	}
	p.rows += rec.NumRows()
	return nil
}

// Profile returns the profile of everything added so far.
func (p *Profiler) Profile() Profile {
	out := Profile{Rows: p.rows, Columns: make([]ColumnProfile, len(p.schema.Fields))}
	for i, f := range p.schema.Fields {
		c := &p.cols[i]
		cp := ColumnProfile{Name: f.Name, Type: f.Type, Nulls: c.nulls}
		if f.Type.Numeric() {
			numericProfile(&cp, c.values, p.bins)
		} else {
			categoricalProfile(&cp, c.counts)
		}
		out.Columns[i] = cp
	}
	return out
}

// numericProfile fills the numeric fields of cp from the non-null values.
func numericProfile(cp *ColumnProfile, values []float64, bins int) {
	n := len(values)
	cp.Count = int64(n)
	if n == 0 {
		return
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	cp.Min, cp.Max = sorted[0], sorted[n-1]
	var sum float64
	for _, v := range sorted {
		sum += v
	}
	mean := sum / float64(n)
	var ss float64
	for _, v := range sorted {
		ss += (v - mean) * (v - mean)
	}
	cp.Mean, cp.Std = mean, math.Sqrt(ss/float64(n))

	cp.Quantiles = make([]float64, len(QuantileLevels))
	for i, q := range QuantileLevels {
		cp.Quantiles[i] = Quantile(sorted, q)
	}
	for k := 1; k < bins; k++ {
		e := Quantile(sorted, float64(k)/float64(bins))
		if len(cp.Edges) == 0 || e > cp.Edges[len(cp.Edges)-1] {
			cp.Edges = append(cp.Edges, e)
		}
	}
	cp.Fractions = BinFractions(sorted, cp.Edges)
}

// Quantile returns the q-quantile (0 <= q <= 1) of sorted values with
// linear interpolation between closest ranks, as numpy.quantile's default
// method. It returns NaN for no values. Between an infinite and a finite
// neighbour it returns the infinite one (the limit of the interpolation);
// between -Inf and +Inf, the nearer one. It never returns NaN for sorted
// values without NaN.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	pos := q * float64(n-1)
	if pos <= 0 {
		return sorted[0]
	}
	if pos >= float64(n-1) {
		return sorted[n-1]
	}
	lo := int(math.Floor(pos))
	t := pos - float64(lo)
	a, b := sorted[lo], sorted[lo+1]
	if t == 0 || a == b {
		return a
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		// b - a is infinite (or NaN): interpolating would give NaN.
		switch {
		case !math.IsInf(b, 0):
			return a
		case !math.IsInf(a, 0) || t >= 0.5:
			return b
		}
		return a
	}
	// numpy's _lerp: interpolate from the nearer end for accuracy.
	d := b - a
	if t >= 0.5 {
		return b - d*(1-t)
	}
	return a + d*t
}

// BinFractions returns the share of values per bin for the given edges,
// len(edges)+1 entries: value v falls in bin sort.SearchFloat64s(edges, v).
// NaN values are ignored; with no values every fraction is 0.
func BinFractions(values []float64, edges []float64) []float64 {
	counts := make([]float64, len(edges)+1)
	var n float64
	for _, v := range values {
		if math.IsNaN(v) {
			continue
		}
		counts[sort.SearchFloat64s(edges, v)]++
		n++
	}
	if n > 0 {
		for i := range counts {
			counts[i] /= n
		}
	}
	return counts
}

// categoricalProfile fills the categorical fields of cp from value counts.
func categoricalProfile(cp *ColumnProfile, counts map[string]int64) {
	type kv struct {
		v string
		n int64
	}
	all := make([]kv, 0, len(counts))
	var total int64
	for v, n := range counts {
		all = append(all, kv{v, n})
		total += n
	}
	cp.Count = total
	if total == 0 {
		return
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.v, b.v)
	})
	top := all[:min(len(all), MaxCategories)]
	var kept int64
	for _, c := range top {
		cp.Categories = append(cp.Categories, c.v)
		cp.CategoryFractions = append(cp.CategoryFractions, float64(c.n)/float64(total))
		kept += c.n
	}
	cp.OtherFraction = float64(total-kept) / float64(total)
}
