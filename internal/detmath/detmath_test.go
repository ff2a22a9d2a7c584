package detmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCloseToMath: Exp, Log and Log1p agree with the standard library
// (which may fuse multiply-adds, or run assembly) within four
// ulps (its assembly versions round differently) and
// exactly on the special cases.
func TestCloseToMath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		x := (rng.Float64() - 0.5) * 1400
		if d := ulps(Exp(x), math.Exp(x)); d > 4 {
			t.Fatalf("Exp(%v) = %v, math.Exp %v (%d ulps)", x, Exp(x), math.Exp(x), d)
		}
		z := math.Exp((rng.Float64()-0.5)*60) - 1
		if got, want := Log1p(z), math.Log1p(z); ulps(got, want) > 4 {
			t.Fatalf("Log1p(%v) = %v, math.Log1p %v", z, got, want)
		}
		y := math.Exp((rng.Float64() - 0.5) * 1400)
		if d := ulps(Log(y), math.Log(y)); d > 4 {
			t.Fatalf("Log(%v) = %v, math.Log %v (%d ulps)", y, Log(y), math.Log(y), d)
		}
	}
	for _, tc := range []struct{ got, want float64 }{
		{Exp(0), 1}, {Exp(math.Inf(-1)), 0}, {Exp(1000), math.Inf(1)}, {Exp(-1000), 0},
		{Log(1), 0}, {Log(0), math.Inf(-1)}, {Log(math.Inf(1)), math.Inf(1)},
		{Sigmoid(0), 0.5}, {Sigmoid(800), 1}, {Sigmoid(-800), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("got %v, want %v", tc.got, tc.want)
		}
	}
	if !math.IsNaN(Log(-1)) || !math.IsNaN(Exp(math.NaN())) {
		t.Error("NaN cases")
	}
}

// TestGolden pins a few results bit for bit: every architecture must give
// these (the export tests run them under qemu and wasm too).
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		got  float64
		want uint64
	}{
		{Exp(-7.946), 0x3f373467497a4242},
		{Exp(0.5), 0x3ffa61298e1e069c},
		{Log(0.3), 0xbff34378fcbda721},
		{Sigmoid(-3.25), 0x3fa31c8280cf1c3e},
		{Log1p(0.3929159284223316), 0x3fd535a593e52fd0},
	} {
		if math.Float64bits(tc.got) != tc.want {
			t.Errorf("got %#x (%v), want %#x", math.Float64bits(tc.got), tc.got, tc.want)
		}
	}
}

func ulps(a, b float64) uint64 {
	x, y := math.Float64bits(a), math.Float64bits(b)
	if x > y {
		return x - y
	}
	return y - x
}
