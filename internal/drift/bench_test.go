package drift

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/drift/benchdata"
)

// The drift benchmarks: 1M reference rows and 1M current rows by 100
// numeric columns (internal/drift/benchdata), run on one core with
//
//	go test -run '^$' -bench 'Drift' -cpu 1 -benchtime 3x ./internal/drift/
//
// The data (1.6 GB) are generated once per process, outside the timings.

var (
	benchOnce          sync.Once
	benchRef, benchCur [][]float64
)

func benchColumns(b *testing.B) (ref, cur [][]float64) {
	b.Helper()
	benchOnce.Do(func() {
		benchRef = make([][]float64, benchdata.Columns)
		benchCur = make([][]float64, benchdata.Columns)
		for c := range benchRef {
			benchRef[c], benchCur[c] = benchdata.Column(c, benchdata.Rows)
		}
	})
	return benchRef, benchCur
}

// batchRows is the record batch size the streaming benchmark feeds.
const batchRows = 64 * 1024

var sinkResult ColumnResult

// BenchmarkDriftBinned streams 100 columns of 1M current values through
// accumulators of references built once (1M values each, binned), and
// computes each column's result (Evidently's default for a big reference:
// the normed Wasserstein distance, with the PSI and the histogram).
func BenchmarkDriftBinned(b *testing.B) {
	ref, cur := benchColumns(b)
	refs := make([]*NumericReference, len(ref))
	for c := range ref {
		refs[c] = NewNumericReference(ref[c], Options{})
	}
	runtime.GC() // the generated data's garbage is not the benchmark's
	b.ResetTimer()
	for b.Loop() {
		for c, r := range refs {
			acc := r.NewAccumulator()
			vals := cur[c]
			for off := 0; off < len(vals); off += batchRows {
				acc.Add(vals[off:min(off+batchRows, len(vals))], nil)
			}
			sinkResult = acc.Result(Options{})
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(refs)*benchdata.Rows), "ns/value")
}

// BenchmarkDriftExact computes the exact KS statistic and p-value and the
// exact Wasserstein distance of 100 columns of 1M current against 1M
// reference values (KSAndWasserstein: one sort of each sample for both).
func BenchmarkDriftExact(b *testing.B) {
	ref, cur := benchColumns(b)
	runtime.GC() // the generated data's garbage is not the benchmark's
	b.ResetTimer()
	var sink float64
	for b.Loop() {
		for c := range ref {
			d, p, w := KSAndWasserstein(ref[c], cur[c])
			sink += d + p + w
		}
	}
	_ = sink
}

// BenchmarkDriftPSIToday is the path the monitor took before this package
// grew the tests above: Compare's PSI over a dataset.Profile with decile
// edges, 100 columns of 1M current values.
func BenchmarkDriftPSIToday(b *testing.B) {
	ref, cur := benchColumns(b)
	profile := dataset.Profile{Rows: benchdata.Rows}
	cols := map[string]Column{}
	for c := range ref {
		name := fmt.Sprintf("f%d", c)
		profile.Columns = append(profile.Columns, decileProfile(name, ref[c]))
		cols[name] = Column{Floats: cur[c]}
	}
	runtime.GC() // the generated data's garbage is not the benchmark's
	b.ResetTimer()
	var sink Report
	for b.Loop() {
		sink = Compare(profile, cols, 0, 0)
	}
	_ = sink
}

// BenchmarkNumericReference builds one binned reference of 1M values.
func BenchmarkNumericReference(b *testing.B) {
	ref, _ := benchColumns(b)
	for b.Loop() {
		NewNumericReference(ref[0], Options{})
	}
}

// BenchmarkAddColumn streams one column of 1M values (ns/value).
func BenchmarkAddColumn(b *testing.B) {
	ref, cur := benchColumns(b)
	r := NewNumericReference(ref[1], Options{})
	runtime.GC() // the generated data's garbage is not the benchmark's
	b.ResetTimer()
	for b.Loop() {
		acc := r.NewAccumulator()
		acc.Add(cur[1], nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(cur[1])), "ns/value")
}
