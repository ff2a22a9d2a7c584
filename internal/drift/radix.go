package drift

import (
	"math"
	"math/bits"
	"slices"
	"sync"
)

// radixMin is the length below which sorting uses a comparison sort.
const radixMin = 2048

// The sort of float keys is a radix sort on a 32-bit window of the keys:
// the bits just below the prefix all keys share (from the smallest and the
// largest key), in two LSD passes of 16 bits (the first reading the floats
// directly), followed by a pass that sorts the runs of keys equal in the
// window and above (insertion sort for short runs, pdqsort for long ones).
// For continuous data the runs hold one or two keys, so the data move two
// times instead of the six to eight times of a full radix sort (measured
// 2-3 times faster; 16-bit digits measured a little faster than 8 or 11
// here); for data with many exact ties the runs are already sorted; for
// data that differs only in its lowest bits the long runs fall back to
// pdqsort.
const (
	digitBits   = 16
	radixPasses = 2
	windowBits  = digitBits * radixPasses
	digitSize   = 1 << digitBits
	digitMask   = digitSize - 1
	maxInsert   = 32
)

var histPool = sync.Pool{New: func() any { return new([radixPasses * digitSize]uint32) }}

var keyPool = sync.Pool{New: func() any { return new([]uint64) }}

// getKeys returns a scratch slice of n keys from the pool; putKeys returns
// it.
func getKeys(n int) *[]uint64 {
	p := keyPool.Get().(*[]uint64)
	if cap(*p) < n {
		*p = make([]uint64, n)
	}
	*p = (*p)[:n]
	return p
}

func putKeys(p *[]uint64) { keyPool.Put(p) }

// floatKey maps a float64 to a uint64 whose unsigned order is the numeric
// order of the floats (-0 maps to +0's key; NaN must be removed first).
func floatKey(v float64) uint64 {
	b := math.Float64bits(v)
	if b == 1<<63 { // -0
		b = 0
	}
	return b ^ (uint64(int64(b)>>63) | 1<<63)
}

// keyFloat inverts floatKey (without a branch: keys of positive floats
// have the top bit set and only lose it, the others are complemented).
func keyFloat(k uint64) float64 {
	return math.Float64frombits(k ^ ((k>>63 - 1) | 1<<63))
}

// sortedKeys returns the keys (floatKey) of the values of src but NaN (and
// also ±Inf when finiteOnly), sorted, in a pooled slice the caller returns
// with putKeys; its capacity leaves room for one more key. src is not
// modified.
func sortedKeys(src []float64, finiteOnly bool) *[]uint64 {
	kp := getKeys(len(src) + 1) // room for mergeKSW's sentinel
	keys := (*kp)[:0]
	keep := func(v float64) bool { return v == v && (!finiteOnly || v-v == 0) }
	if len(src) < radixMin {
		for _, v := range src {
			if keep(v) {
				keys = append(keys, floatKey(v))
			}
		}
		slices.Sort(keys)
		*kp = keys
		return kp
	}
	// The passes sort on the window of bits below the prefix every key
	// shares. Guess it from the first values, then count the digits (and
	// check the guess) in one pass; a wrong guess costs a second count.
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for _, v := range src[:radixMin] {
		if keep(v) {
			k := floatKey(v)
			lo, hi = min(lo, k), max(hi, k)
		}
	}
	hp := histPool.Get().(*[radixPasses * digitSize]uint32)
	defer histPool.Put(hp)
	hist := hp[:]
	// Two digits (radixPasses).
	h0 := hist[0*digitSize : 1*digitSize : 1*digitSize]
	h1 := hist[1*digitSize : 2*digitSize : 2*digitSize]
	var shift uint
	n := 0
	for try := 0; ; try++ {
		if lo > hi { // no value in the sample
			lo, hi = 0, math.MaxUint64
		}
		common := bits.LeadingZeros64(lo ^ hi)
		shift = uint(max(64-common-windowBits, 0))
		prefix := uint64(0)
		if common > 0 {
			prefix = ^uint64(0) << (64 - common)
		}
		clear(hist)
		n = 0
		outside := false
		for _, v := range src {
			if keep(v) {
				k := floatKey(v)
				n++
				outside = outside || (k^lo)&prefix != 0
				w := k >> shift
				h0[w&digitMask]++
				h1[(w>>digitBits)&digitMask]++
			}
		}
		if !outside || try > 0 {
			break
		}
		lo, hi = uint64(math.MaxUint64), 0
		for _, v := range src {
			if keep(v) {
				k := floatKey(v)
				lo, hi = min(lo, k), max(hi, k)
			}
		}
	}
	keys = keys[:n]
	*kp = keys
	if n == 0 {
		return kp
	}
	tp := getKeys(n + 1)
	tmp := (*tp)[:n]
	first := true // the first pass reads the floats
	for p := 0; p < radixPasses; p++ {
		h := hist[p*digitSize : (p+1)*digitSize : (p+1)*digitSize]
		s := shift + uint(p*digitBits)
		var d0 uint64
		for _, v := range src {
			if keep(v) {
				d0 = (floatKey(v) >> s) & digitMask
				break
			}
		}
		if h[d0] == uint32(n) {
			continue // a digit shared by every key
		}
		var sum uint32
		for i := range h {
			c := h[i]
			h[i] = sum
			sum += c
		}
		if first {
			// Scatter straight from the floats into tmp.
			for _, v := range src {
				if keep(v) {
					k := floatKey(v)
					d := (k >> s) & digitMask
					i := h[d]
					tmp[i] = k
					h[d] = i + 1
				}
			}
			first = false
		} else {
			for _, k := range keys {
				d := (k >> s) & digitMask
				i := h[d]
				tmp[i] = k
				h[d] = i + 1
			}
		}
		keys, tmp = tmp, keys
	}
	if first {
		// Every digit was shared: the keys only need writing.
		keys = keys[:0]
		for _, v := range src {
			if keep(v) {
				keys = append(keys, floatKey(v))
			}
		}
	}
	// Sort the runs of keys equal in the window and above: one insertion
	// pass (keys only move within their run, as every earlier run is
	// smaller); should a key move further than maxInsert, the runs are
	// sorted one by one instead, pdqsort for the long ones.
	if shift > 0 {
		long := false
		for i := 1; i < n && !long; i++ {
			k := keys[i]
			if k >= keys[i-1] {
				continue
			}
			j := i
			for j > 0 && keys[j-1] > k {
				keys[j] = keys[j-1]
				j--
				if i-j > maxInsert {
					long = true
					break
				}
			}
			keys[j] = k
		}
		for i := 0; long && i < n; {
			w := keys[i] >> shift
			j := i + 1
			for j < n && keys[j]>>shift == w {
				j++
			}
			if j-i > 1 {
				slices.Sort(keys[i:j])
			}
			i = j
		}
	}
	// keys now lives in one of the two pooled slices: hand that one back
	// to the caller and the other to the pool.
	if &keys[0] != &(*kp)[0] {
		*tp = tmp[:cap(tmp)]
		*kp = keys
	}
	putKeys(tp)
	return kp
}

// sortValues returns the values of src but NaN (and also ±Inf when
// finiteOnly), sorted ascending, in dst[:0] (grown if needed); -0 is
// returned as +0. src is not modified.
func sortValues(dst, src []float64, finiteOnly bool) []float64 {
	kp := sortedKeys(src, finiteOnly)
	defer putKeys(kp)
	keys := *kp
	dst = slices.Grow(dst[:0], len(keys))[:len(keys)]
	for i, k := range keys {
		dst[i] = keyFloat(k)
	}
	return dst
}
