// Command drift_data writes the first columns of the drift benchmark's data
// (internal/drift/benchdata, the data of BenchmarkDriftBinned and
// BenchmarkDriftExact) with Kiln's statistics on them, for
// scripts/bench/drift_scipy.py to check against SciPy:
//
//	go run ./scripts/bench/drift_data -dir DIR [-columns 3] [-rows 1000000]
//	/usr/bin/python3 scripts/bench/drift_scipy.py check DIR
//
// DIR/ref_NNN.f64 and DIR/cur_NNN.f64 hold each column's reference and
// current samples (little-endian float64); DIR/go.json Kiln's exact KS
// statistic and p-value, Wasserstein distance and normed Wasserstein
// distance (CompareNumeric), and the streamed (binned) normed Wasserstein
// distance with its error bound.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/drift/benchdata"
)

type column struct {
	Column         int     `json:"column"`
	KS             float64 `json:"ks"`
	KSPValue       float64 `json:"ks_pvalue"`
	Wasserstein    float64 `json:"wasserstein"`
	Normed         float64 `json:"normed"`
	Streamed       float64 `json:"streamed_normed"`
	StreamedBound  float64 `json:"streamed_bound"`
	StreamedDrift  bool    `json:"streamed_drifted"`
	ExactDrift     bool    `json:"exact_drifted"`
	ReferenceMean  float64 `json:"reference_mean"`
	CurrentShiftSD float64 `json:"shift_sd"`
}

func main() {
	dir := flag.String("dir", "", "output directory (created)")
	columns := flag.Int("columns", 3, "number of columns (from column 0)")
	rows := flag.Int("rows", benchdata.Rows, "rows per sample")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "drift_data: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *columns, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "drift_data:", err)
		os.Exit(1)
	}
}

func run(dir string, columns, rows int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var out []column
	for c := 0; c < columns; c++ {
		if err := benchdata.WriteColumn(dir, c, rows); err != nil {
			return err
		}
		ref, cur := benchdata.Column(c, rows)
		d, p, w := drift.KSAndWasserstein(ref, cur)
		exact := drift.CompareNumeric(ref, cur, drift.Options{NumericMethod: drift.MethodWasserstein})
		acc := drift.NewNumericReference(ref, drift.Options{}).NewAccumulator()
		acc.Add(cur, nil)
		st := acc.Result(drift.Options{})
		mean, sd, shift := benchdata.Params(c)
		out = append(out, column{Column: c, KS: d, KSPValue: p, Wasserstein: w, Normed: exact.Statistic,
			Streamed: st.Statistic, StreamedBound: st.StatisticError, StreamedDrift: st.Drifted, ExactDrift: exact.Drifted,
			ReferenceMean: mean, CurrentShiftSD: shift / sd})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.json"), append(b, '\n'), 0o644)
}
