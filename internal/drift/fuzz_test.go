package drift

import (
	"encoding/binary"
	"math"
	"testing"
)

// fuzzSamples turns fuzz bytes into two samples: with raw set, 8-byte
// floats (any bit pattern, NaN and ±Inf included); otherwise small
// multiples of 1/4 from single bytes, with many ties.
func fuzzSamples(data []byte, split uint8, raw bool) (a, b []float64) {
	var vals []float64
	if raw {
		for len(data) >= 8 {
			vals = append(vals, math.Float64frombits(binary.LittleEndian.Uint64(data)))
			data = data[8:]
		}
	} else {
		for _, c := range data {
			vals = append(vals, float64(int8(c))/4)
		}
	}
	k := 0
	if len(vals) > 0 {
		k = int(split) % (len(vals) + 1)
	}
	return vals[:k], vals[k:]
}

func FuzzKS(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7}, uint8(3), false)
	f.Add([]byte{0, 0, 0, 1, 1, 200, 7, 7, 7, 9}, uint8(4), false)
	f.Add(make([]byte, 64), uint8(2), true)
	f.Fuzz(func(t *testing.T, data []byte, split uint8, raw bool) {
		a, b := fuzzSamples(data, split, raw)
		d, p, w := KSAndWasserstein(a, b)
		d2, p2, w2 := KSAndWasserstein(b, a)
		nonNaN := func(xs []float64) int {
			n := 0
			for _, x := range xs {
				if !math.IsNaN(x) {
					n++
				}
			}
			return n
		}
		if nonNaN(a) == 0 || nonNaN(b) == 0 {
			if !math.IsNaN(d) || !math.IsNaN(p) {
				t.Fatalf("empty sample: %v %v", d, p)
			}
			return
		}
		if !(d >= 0 && d <= 1) || !(p >= 0 && p <= 1) {
			t.Fatalf("KS = %v, %v", d, p)
		}
		if d != d2 || p != p2 || !(w == w2 || (math.IsNaN(w) && math.IsNaN(w2))) {
			t.Fatalf("not symmetric: %v %v %v / %v %v %v", d, p, w, d2, p2, w2)
		}
		if w < 0 {
			t.Fatalf("Wasserstein %v", w)
		}
		// The streamed statistic of an exact reference is the exact one.
		if len(a) <= 1000 {
			got := CompareNumeric(a, b, Options{NumericMethod: MethodKS})
			acc := NewNumericReference(a, Options{}).NewAccumulator()
			acc.Add(b, nil)
			s := acc.Result(Options{NumericMethod: MethodKS})
			if got.Statistic != s.Statistic || !pEqual(got.PValue, s.PValue) || got.PSI != s.PSI {
				t.Fatalf("streamed %v %v, exact %v %v", s.Statistic, s.PValue, got.Statistic, got.PValue)
			}
		}
	})
}

func FuzzChiSquareJS(f *testing.F) {
	f.Add([]byte{3, 4, 5, 6, 0, 9})
	f.Add([]byte{0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		k := len(data) / 2
		p, q := make([]float64, k), make([]float64, k)
		for i := 0; i < k; i++ {
			p[i], q[i] = float64(data[2*i]), float64(data[2*i+1])
		}
		js := JensenShannon(p, q)
		if js2 := JensenShannon(q, p); !(js == js2 || math.Abs(js-js2) < 1e-15 || (math.IsNaN(js) && math.IsNaN(js2))) {
			t.Fatalf("JensenShannon not symmetric: %v %v", js, js2)
		}
		if !math.IsNaN(js) && (js < 0 || js > math.Sqrt(math.Ln2)+1e-12) {
			t.Fatalf("JensenShannon = %v", js)
		}
		var sp, sq float64
		for i := range p {
			sp += p[i]
			sq += q[i]
		}
		if sp > 0 && sq > 0 {
			// Scale the expected counts to the observed total, as the
			// categorical test does.
			for i := range q {
				q[i] *= sp / sq
			}
			s, pv := ChiSquare(p, q)
			if !math.IsNaN(pv) && (pv < 0 || pv > 1 || s < 0) {
				t.Fatalf("ChiSquare = %v, %v", s, pv)
			}
		}
	})
}
