package gbdt

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// binned is a data set cut into quantile bins.
type binned struct {
	// cuts[f] are feature f's bin upper edges, ascending: bin b holds the
	// values v with cuts[f][b-1] <= float32(v) < cuts[f][b]. The last edge
	// is above the largest value.
	cuts [][]float32
	// off[f] is feature f's first slot in a histogram; feature f has
	// len(cuts[f]) bin slots and then one slot for missing values.
	off []int
	// total is the histogram length.
	total int
	// cols[f][i] is the bin of row i's feature f; len(cuts[f]) if missing.
	cols [][]uint16
}

// missing returns feature f's missing-value bin.
func (b *binned) missing(f int) uint16 { return uint16(len(b.cuts[f])) }

// binData computes every feature's cuts from its values and bins them,
// spreading features over threads goroutines.
func binData(x [][]float64, maxBin, threads int) *binned {
	nf := len(x)
	b := &binned{cuts: make([][]float32, nf), off: make([]int, nf), cols: make([][]uint16, nf)}
	parallelFor(threads, nf, func(f int) {
		b.cuts[f] = featureCuts(x[f], maxBin)
		b.cols[f] = binColumn(x[f], b.cuts[f])
	})
	for f := range nf {
		b.off[f] = b.total
		b.total += len(b.cuts[f]) + 1
	}
	return b
}

// featureCuts returns the bin upper edges of one feature: with at most
// maxBin distinct (float32) values, one bin per value; otherwise edges at
// the values of ranks i·n/maxBin, as XGBoost's quantile sketch picks them
// (exactly, since the data fit in memory). NaN values are ignored; a feature
// with no values gets no bins.
func featureCuts(col []float64, maxBin int) []float32 {
	vals := make([]float32, 0, len(col))
	for _, v := range col {
		if !math.IsNaN(v) {
			vals = append(vals, float32(v))
		}
	}
	if len(vals) == 0 {
		return nil
	}
	sortFloat32s(vals)
	n := len(vals)
	distinct := 1
	for i := 1; i < n && distinct <= maxBin; i++ {
		if vals[i] != vals[i-1] {
			distinct++
		}
	}
	var cuts []float32
	if distinct <= maxBin {
		cuts = make([]float32, 0, distinct)
		for i := 1; i < n; i++ {
			if vals[i] != vals[i-1] {
				cuts = append(cuts, vals[i])
			}
		}
	} else {
		cuts = make([]float32, 0, maxBin)
		prev := vals[0]
		for i := 1; i < maxBin; i++ {
			v := vals[int(int64(i)*int64(n)/int64(maxBin))]
			if v > prev {
				cuts = append(cuts, v)
				prev = v
			}
		}
	}
	hi := vals[n-1]
	upper := float32(float64(hi) + math.Abs(float64(hi)) + 1e-5)
	if !(upper > hi) {
		upper = math.Nextafter32(hi, float32(math.Inf(1)))
	}
	return append(cuts, upper)
}

// sortFloat32s sorts vals (no NaN) ascending by an LSD radix sort on
// order-preserving keys: several times faster than a comparison sort for
// the hundreds of thousands of values of a column. Short slices use
// slices.Sort.
func sortFloat32s(vals []float32) {
	if len(vals) < 1024 {
		slices.Sort(vals)
		return
	}
	keys := make([]uint32, len(vals))
	for i, v := range vals {
		k := math.Float32bits(v)
		if k&0x80000000 != 0 {
			k = ^k
		} else {
			k |= 0x80000000
		}
		keys[i] = k
	}
	tmp := make([]uint32, len(keys))
	for shift := uint(0); shift < 32; shift += 8 {
		var count [257]int
		for _, k := range keys {
			count[(k>>shift)&0xff+1]++
		}
		if count[((keys[0]>>shift)&0xff)+1] == len(keys) {
			continue // every key has the same byte here
		}
		for i := 1; i < 257; i++ {
			count[i] += count[i-1]
		}
		for _, k := range keys {
			b := (k >> shift) & 0xff
			tmp[count[b]] = k
			count[b]++
		}
		keys, tmp = tmp, keys
	}
	for i, k := range keys {
		if k&0x80000000 != 0 {
			k &^= 0x80000000
		} else {
			k = ^k
		}
		vals[i] = math.Float32frombits(k)
	}
}

// binColumn returns the bin of every value of col: the first b with
// float32(v) < cuts[b], or len(cuts) for NaN.
func binColumn(col []float64, cuts []float32) []uint16 {
	out := make([]uint16, len(col))
	miss := uint16(len(cuts))
	for i, v := range col {
		if math.IsNaN(v) {
			out[i] = miss
			continue
		}
		out[i] = uint16(searchCut(cuts, float32(v)))
	}
	return out
}

// searchCut returns the first index b with v < cuts[b] (len(cuts)-1 when v
// is at or above the last edge, which only happens for values not seen when
// the cuts were made).
func searchCut(cuts []float32, v float32) int {
	lo, hi := 0, len(cuts)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if v < cuts[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// parallelFor calls fn(0), ..., fn(n-1) on up to threads goroutines. Each
// call must write only its own outputs.
func parallelFor(threads, n int, fn func(i int)) {
	if threads <= 1 || n <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(threads, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
