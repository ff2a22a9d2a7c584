package drift

import (
	"os"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/drift/benchdata"
)

func TestExpBestOf(t *testing.T) {
	if os.Getenv("EXPRADIX") == "" {
		t.Skip()
	}
	var sumExact, sumBinned, sumSort, sumMerge time.Duration
	for c := 0; c < 10; c++ {
		ref, cur := benchdata.Column(c, 1000000)
		r := NewNumericReference(ref, Options{})
		var be, bb, bs, bm time.Duration
		best := func(b *time.Duration, d time.Duration) {
			if *b == 0 || d < *b {
				*b = d
			}
		}
		for rep := 0; rep < 7; rep++ {
			t0 := time.Now()
			KSAndWasserstein(ref, cur)
			best(&be, time.Since(t0))
			t0 = time.Now()
			acc := r.NewAccumulator()
			for off := 0; off < len(cur); off += 65536 {
				acc.Add(cur[off:min(off+65536, len(cur))], nil)
			}
			acc.Result(Options{})
			best(&bb, time.Since(t0))
			t0 = time.Now()
			kp := sortedKeys(cur, false)
			best(&bs, time.Since(t0))
			kr := sortedKeys(ref, false)
			t0 = time.Now()
			mergeKSW(*kr, *kp, true)
			best(&bm, time.Since(t0))
			putKeys(kp)
			putKeys(kr)
		}
		sumExact += be
		sumBinned += bb
		sumSort += bs
		sumMerge += bm
	}
	t.Logf("best-of-7 per column, x10 for 100 columns: exact %v, binned %v (one sort %v, merge %v)", sumExact, sumBinned, sumSort/10, sumMerge/10)
}
