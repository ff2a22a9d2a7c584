// Package benchdata draws the synthetic data set that Kiln's large
// benchmarks share (the nightly report's and the monitor window's): Features
// normal float64 columns, a third of them shifted in the "served" or
// "scored" rows, and a 0/1 outcome that depends on three of them. The
// draws are a pure function of the random source, so data generated once
// and cached stay valid while this package does not change.
package benchdata

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// Features is the number of feature columns.
const Features = 30

// Name is feature j's column name: f00, f01, ...
func Name(j int) string { return fmt.Sprintf("f%02d", j) }

// Names are the feature column names in order.
func Names() []string {
	names := make([]string, Features)
	for j := range names {
		names[j] = Name(j)
	}
	return names
}

// Schema is the float64 feature columns in order.
func Schema() dataset.Schema {
	var s dataset.Schema
	for j := range Features {
		s.Fields = append(s.Fields, dataset.Field{Name: Name(j), Type: dataset.Float64})
	}
	return s
}

// Feature is feature j's training distribution: normal with mean 0.1·j and
// standard deviation 1, 1.5, 2 or 2.5.
func Feature(j int) (mean, std float64) { return 0.1 * float64(j), 1 + 0.5*float64(j%4) }

// Shifted says whether feature j is shifted in the served or scored rows
// (by half its standard deviation): a third of them.
func Shifted(j int) bool { return j%3 == 0 }

// Columns draws rows of the features into new slices, shifted as served
// rows when shift.
func Columns(r *rand.Rand, rows int, shift bool) [][]float64 {
	cols := make([][]float64, Features)
	for j := range cols {
		mu, sd := Feature(j)
		if shift && Shifted(j) {
			mu += sd / 2
		}
		c := make([]float64, rows)
		for k := range c {
			c[k] = mu + sd*r.NormFloat64()
		}
		cols[j] = c
	}
	return cols
}

// Outcome draws the 0/1 outcome of row k of cols (from Columns).
func Outcome(r *rand.Rand, cols [][]float64, k int) float64 {
	z := 0.8*(cols[1][k]-0.1) - 0.5*(cols[4][k]-0.4) + 0.3*(cols[7][k]-0.7)/2.5
	if r.Float64() < 1/(1+math.Exp(-z)) {
		return 1
	}
	return 0
}
