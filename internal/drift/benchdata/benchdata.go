// Package benchdata generates the data of the drift benchmarks
// (internal/drift's BenchmarkDrift*, scripts/bench/drift_data and
// scripts/bench/drift_scipy.py) deterministically: for each column a
// reference sample from a normal distribution and a current sample from the
// same distribution shifted by 0, 0.02, 0.05, 0.1 or 0.2 standard
// deviations (by column, so some columns drift and some do not).
package benchdata

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Rows and Columns are the benchmark's shape: 1M rows by 100 numeric
// columns, for the reference and for the current data.
const (
	Rows    = 1_000_000
	Columns = 100
)

// Shifts are the current data's mean shifts in standard deviations;
// column c uses Shifts[c%len(Shifts)].
var Shifts = []float64{0, 0.02, 0.05, 0.1, 0.2}

// Params returns column c's reference mean and standard deviation and the
// current data's shift (in the column's units).
func Params(c int) (mean, sd, shift float64) {
	mean = float64(c%7) - 3
	sd = 1 + float64(c%3)*0.5
	return mean, sd, Shifts[c%len(Shifts)] * sd
}

// Column returns column c's reference and current samples of rows values
// each; the same c and rows always give the same values.
func Column(c, rows int) (ref, cur []float64) {
	mean, sd, shift := Params(c)
	rng := rand.New(rand.NewPCG(uint64(c), 0x6b696c6e))
	ref = make([]float64, rows)
	cur = make([]float64, rows)
	for i := range ref {
		ref[i] = mean + sd*rng.NormFloat64()
	}
	for i := range cur {
		cur[i] = mean + shift + sd*rng.NormFloat64()
	}
	return ref, cur
}

// WriteColumn writes column c's samples to dir/ref_NNN.f64 and
// dir/cur_NNN.f64 as little-endian float64, for scripts/bench/drift_scipy.py.
func WriteColumn(dir string, c, rows int) error {
	ref, cur := Column(c, rows)
	for _, f := range []struct {
		name string
		vals []float64
	}{{fmt.Sprintf("ref_%03d.f64", c), ref}, {fmt.Sprintf("cur_%03d.f64", c), cur}} {
		buf := make([]byte, 8*len(f.vals))
		for i, v := range f.vals {
			binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}
