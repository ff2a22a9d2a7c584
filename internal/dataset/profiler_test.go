package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func approxSlice(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !approx(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestProfileNumericHandComputed(t *testing.T) {
	// x = 1..10 plus a null; y = the same as Int64 split over two records.
	s := Schema{Fields: []Field{{Name: "x", Type: Float64}, {Name: "y", Type: Int64}}}
	p := NewProfiler(s, 4)
	for _, part := range [][]float64{{3, 1, math.NaN(), 2, 10}, {9, 4, 5, 8, 7, 6}} {
		ints := make([]int64, len(part))
		valid := make([]bool, len(part))
		for i, v := range part {
			ints[i], valid[i] = int64(v), !math.IsNaN(v)
		}
		rec := mustRecord(t, s, Float64Array(part), Int64Array(ints, valid))
		if err := p.Add(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	prof := p.Profile()
	if prof.Rows != 11 || len(prof.Columns) != 2 {
		t.Fatalf("rows %d, columns %d", prof.Rows, len(prof.Columns))
	}
	// numpy.quantile(np.arange(1, 11), QuantileLevels)
	wantQ := []float64{1, 1.09, 1.45, 1.9, 3.25, 5.5, 7.75, 9.1, 9.55, 9.91, 10}
	for _, c := range prof.Columns {
		if c.Count != 10 || c.Nulls != 1 {
			t.Errorf("%s: count %d nulls %d", c.Name, c.Count, c.Nulls)
		}
		if c.Min != 1 || c.Max != 10 || !approx(c.Mean, 5.5) || !approx(c.Std, math.Sqrt(8.25)) {
			t.Errorf("%s: min %v max %v mean %v std %v", c.Name, c.Min, c.Max, c.Mean, c.Std)
		}
		if !approxSlice(c.Quantiles, wantQ) {
			t.Errorf("%s: quantiles %v, want %v", c.Name, c.Quantiles, wantQ)
		}
		// Edges at the quartiles; bins (-inf,3.25] (3.25,5.5] (5.5,7.75] (7.75,inf).
		if !approxSlice(c.Edges, []float64{3.25, 5.5, 7.75}) {
			t.Errorf("%s: edges %v", c.Name, c.Edges)
		}
		if !approxSlice(c.Fractions, []float64{0.3, 0.2, 0.2, 0.3}) {
			t.Errorf("%s: fractions %v", c.Name, c.Fractions)
		}
	}
}

func TestProfileEdgesDeduplicated(t *testing.T) {
	tests := []struct {
		name      string
		vals      []float64
		bins      int
		edges     []float64
		fractions []float64
	}{
		{"mostly zeros", []float64{0, 0, 0, 0, 0, 0, 0, 0, 1, 2}, 4, []float64{0}, []float64{0.8, 0.2}},
		{"constant", []float64{5, 5, 5}, 10, []float64{5}, []float64{1, 0}},
		{"single bin", []float64{1, 2, 3}, 1, nil, []float64{1}},
		{"values on edges", []float64{1, 2, 3, 4, 5}, 2, []float64{3}, []float64{0.6, 0.4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Schema{Fields: []Field{{Name: "x", Type: Float64}}}
			p := NewProfiler(s, tc.bins)
			if err := p.Add(mustRecord(t, s, Float64Array(tc.vals))); err != nil {
				t.Fatal(err)
			}
			c := p.Profile().Columns[0]
			if !approxSlice(c.Edges, tc.edges) || !approxSlice(c.Fractions, tc.fractions) {
				t.Errorf("edges %v fractions %v, want %v %v", c.Edges, c.Fractions, tc.edges, tc.fractions)
			}
		})
	}
}

func TestProfileFractionsSumToOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, bins := range []int{0, 2, 5, 10, 20} {
		t.Run(fmt.Sprint("bins=", bins), func(t *testing.T) {
			s := Schema{Fields: []Field{{Name: "x", Type: Float64}, {Name: "k", Type: Int64}}}
			p := NewProfiler(s, bins)
			n := 1000 + rng.IntN(1000)
			xs, ks := make([]float64, n), make([]int64, n)
			for i := range xs {
				xs[i] = rng.ExpFloat64()
				ks[i] = int64(rng.IntN(4)) // few distinct values: duplicated edges
			}
			if err := p.Add(mustRecord(t, s, Float64Array(xs), Int64Array(ks, nil))); err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Profile().Columns {
				wantBins := bins
				if wantBins <= 0 {
					wantBins = DefaultBins
				}
				if len(c.Edges) > wantBins-1 || len(c.Fractions) != len(c.Edges)+1 {
					t.Errorf("%s: %d edges, %d fractions", c.Name, len(c.Edges), len(c.Fractions))
				}
				for i := 1; i < len(c.Edges); i++ {
					if c.Edges[i] <= c.Edges[i-1] {
						t.Errorf("%s: edges not strictly increasing: %v", c.Name, c.Edges)
					}
				}
				var sum float64
				for _, f := range c.Fractions {
					sum += f
				}
				if !approx(sum, 1) {
					t.Errorf("%s: fractions sum to %v", c.Name, sum)
				}
			}
		})
	}
}

func TestProfileCategorical(t *testing.T) {
	s := Schema{Fields: []Field{{Name: "c", Type: String}, {Name: "b", Type: Bool}}}
	p := NewProfiler(s, 10)
	// c: "b" x3, "a" x2, "c" x2 (tie with "a", sorted by value), "d" x1, one null.
	cs := []string{"b", "a", "c", "b", "", "d", "a", "c", "b"}
	cv := []bool{true, true, true, true, false, true, true, true, true}
	bs := []bool{true, false, true, true, true, false, true, true, true}
	if err := p.Add(mustRecord(t, s, StringArray(cs, cv), BoolArray(bs, nil))); err != nil {
		t.Fatal(err)
	}
	prof := p.Profile()
	c := prof.Columns[0]
	if c.Count != 8 || c.Nulls != 1 {
		t.Errorf("count %d nulls %d", c.Count, c.Nulls)
	}
	if !reflect.DeepEqual(c.Categories, []string{"b", "a", "c", "d"}) ||
		!approxSlice(c.CategoryFractions, []float64{3.0 / 8, 2.0 / 8, 2.0 / 8, 1.0 / 8}) || c.OtherFraction != 0 {
		t.Errorf("categories %v %v other %v", c.Categories, c.CategoryFractions, c.OtherFraction)
	}
	if c.Quantiles != nil || c.Edges != nil {
		t.Errorf("categorical column has numeric fields: %+v", c)
	}
	b := prof.Columns[1]
	if !reflect.DeepEqual(b.Categories, []string{"true", "false"}) || !approxSlice(b.CategoryFractions, []float64{7.0 / 9, 2.0 / 9}) {
		t.Errorf("bool categories %v %v", b.Categories, b.CategoryFractions)
	}
}

func TestProfileManyCategories(t *testing.T) {
	s := Schema{Fields: []Field{{Name: "c", Type: String}}}
	var vals []string
	for i := range MaxCategories + 10 {
		for range i + 1 { // value i appears i+1 times
			vals = append(vals, fmt.Sprintf("v%03d", i))
		}
	}
	p := NewProfiler(s, 10)
	if err := p.Add(mustRecord(t, s, StringArray(vals, nil))); err != nil {
		t.Fatal(err)
	}
	c := p.Profile().Columns[0]
	if len(c.Categories) != MaxCategories || c.Categories[0] != fmt.Sprintf("v%03d", MaxCategories+9) {
		t.Fatalf("%d categories, first %q", len(c.Categories), c.Categories[0])
	}
	// The 10 least frequent values (1..10 occurrences) are "other".
	total := float64(len(vals))
	if !approx(c.OtherFraction, 55/total) {
		t.Errorf("other fraction %v, want %v", c.OtherFraction, 55/total)
	}
	sum := c.OtherFraction
	for _, f := range c.CategoryFractions {
		sum += f
	}
	if !approx(sum, 1) {
		t.Errorf("fractions sum to %v", sum)
	}
}

func TestProfilerAddErrors(t *testing.T) {
	s := Schema{Fields: []Field{{Name: "x", Type: Float64}}}
	tests := []struct {
		name string
		rs   Schema
		col  arrow.Array
		want string
	}{
		{"missing column", Schema{Fields: []Field{{Name: "y", Type: Float64}}}, Float64Array([]float64{1}), `no column "x"`},
		{"wrong type", Schema{Fields: []Field{{Name: "x", Type: Int64}}}, Int64Array([]int64{1}, nil), `column "x" is int64, schema says float64`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewProfiler(s, 10).Add(mustRecord(t, tc.rs, tc.col))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestQuantileEmpty(t *testing.T) {
	if q := Quantile(nil, 0.5); !math.IsNaN(q) {
		t.Errorf("Quantile(nil) = %v", q)
	}
	s := Schema{Fields: []Field{{Name: "x", Type: Float64}}}
	p := NewProfiler(s, 10)
	if err := p.Add(mustRecord(t, s, Float64ArrayNullNaN([]float64{math.NaN()}))); err != nil {
		t.Fatal(err)
	}
	c := p.Profile().Columns[0]
	if c.Count != 0 || c.Nulls != 1 || c.Quantiles != nil || c.Fractions != nil {
		t.Errorf("all-null column profile %+v", c)
	}
}

// TestProfileNonFinite checks that ±Inf count as nulls like NaN, so that the
// statistics stay finite and the profile encodes as JSON.
func TestProfileNonFinite(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name         string
		vals         []float64
		count, nulls int64
		min, max     float64
		mean         float64
	}{
		{"mixed", []float64{1, inf, 2, -inf, math.NaN(), 3}, 3, 3, 1, 3, 2},
		{"only +Inf", []float64{inf, inf}, 0, 2, 0, 0, 0},
		{"only -Inf", []float64{-inf, 5}, 1, 1, 5, 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Schema{Fields: []Field{{Name: "x", Type: Float64}}}
			p := NewProfiler(s, 4)
			if err := p.Add(mustRecord(t, s, Float64Array(tc.vals))); err != nil {
				t.Fatal(err)
			}
			prof := p.Profile()
			c := prof.Columns[0]
			if c.Count != tc.count || c.Nulls != tc.nulls || c.Min != tc.min || c.Max != tc.max || !approx(c.Mean, tc.mean) {
				t.Errorf("count %d nulls %d min %v max %v mean %v, want %d %d %v %v %v",
					c.Count, c.Nulls, c.Min, c.Max, c.Mean, tc.count, tc.nulls, tc.min, tc.max, tc.mean)
			}
			for _, v := range append(append([]float64{c.Std}, c.Quantiles...), c.Edges...) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("non-finite statistic in %+v", c)
					break
				}
			}
			if _, err := json.Marshal(prof); err != nil {
				t.Errorf("profile does not encode as JSON: %v", err)
			}
		})
	}
}

func TestQuantileInfinite(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		sorted []float64
		q      float64
		want   float64
	}{
		{[]float64{-inf, 1, 2}, 0.1, -inf}, // between -Inf and 1, nearer -Inf
		{[]float64{-inf, 1, 2}, 0.4, -inf}, // between -Inf and 1, nearer 1
		{[]float64{1, 2, inf}, 0.6, inf},   // between 2 and +Inf, nearer 2
		{[]float64{1, 2, inf}, 0.9, inf},   // between 2 and +Inf, nearer +Inf
		{[]float64{-inf, inf}, 0.25, -inf}, // nearer -Inf
		{[]float64{-inf, inf}, 0.75, inf},  // nearer +Inf
		{[]float64{-inf, -inf, 1}, 0.25, -inf},
		{[]float64{-inf, 1, 2}, 0.75, 1.5}, // finite neighbours interpolate
	}
	for _, tc := range tests {
		if got := Quantile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.sorted, tc.q, got, tc.want)
		}
	}
}
