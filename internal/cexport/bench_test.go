package cexport

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kiln-ml/kiln/internal/gbdt"
	"github.com/kiln-ml/kiln/internal/gbdt/gbdtdata"
	"github.com/kiln-ml/kiln/internal/model"
)

// The edge-export benchmark's model (make bench-export,
// scripts/bench/export_bench.sh; TestCThroughput): 100 trees of depth 6,
// binary:logistic, trained by Kiln's GBDT on 20,000 synthetic rows of 20
// features; test rows come from the same generator further on.
const (
	benchFeatures  = 20
	benchTrainRows = 20000
	benchSeed      = 3
	benchTestFirst = 1_000_000
)

// benchModel trains the benchmark's model and returns it, its estimator
// file (XGBoost JSON) and its input names.
func benchModel(t testing.TB) (*model.Model, []byte, []string) {
	t.Helper()
	names := make([]string, benchFeatures)
	for j := range names {
		names[j] = fmt.Sprintf("x%d", j)
	}
	train := gbdtdata.Synthetic(0, benchTrainRows, benchFeatures, benchSeed)
	p := gbdt.DefaultParams(gbdt.BinaryLogistic)
	p.NumRound, p.MaxDepth = 100, 6
	m := gbdtModel(t, names, train, p)
	est, err := m.Predictor().(*model.XGBoost).Booster().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return m, est, names
}

// benchRows returns n test rows of the benchmark's model as decoded JSON
// rows (a missing value is absent) and as columns.
func benchRows(names []string, n int) ([]map[string]any, [][]float64) {
	test := gbdtdata.Synthetic(benchTestFirst, n, benchFeatures, benchSeed)
	rows := make([]map[string]any, n)
	for i := range rows {
		r := map[string]any{}
		for j, c := range test.X {
			if !math.IsNaN(c[i]) {
				r[names[j]] = c[i]
			}
		}
		rows[i] = r
	}
	return rows, test.X
}

// benchOneRowRows is how many test rows the one-row benchmarks cycle
// through (rows.csv of the benchmark directory).
const benchOneRowRows = 1000

// TestWriteExportBenchBundle writes the edge-export benchmark's files into
// $KILN_EXPORT_BENCH_DIR (skipped when unset): bundle/ (the model as a Kiln
// bundle; its model.json is what XGBoost loads for the peer), rows.csv
// (1,000 test rows, a header of the input names, empty fields missing),
// row.csv (the first of them) and preds.txt (Go's prediction of each,
// %.17g).
func TestWriteExportBenchBundle(t *testing.T) {
	dir := os.Getenv("KILN_EXPORT_BENCH_DIR")
	if dir == "" {
		t.Skip("set KILN_EXPORT_BENCH_DIR to write the edge-export benchmark's bundle and rows")
	}
	m, est, names := benchModel(t)
	m.Manifest.Name = "export-bench"
	bundle := filepath.Join(dir, "bundle")
	if err := os.RemoveAll(bundle); err != nil {
		t.Fatal(err)
	}
	if err := model.WriteBundle(bundle, m.Manifest, map[string][]byte{m.Manifest.Estimator.File: est}); err != nil {
		t.Fatal(err)
	}
	rows, cols := benchRows(names, benchOneRowRows)
	preds, err := m.PredictRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	var csv, one, pred bytes.Buffer
	header := ""
	for j, n := range names {
		if j > 0 {
			header += ","
		}
		header += n
	}
	csv.WriteString(header + "\n")
	for i := range rows {
		for j := range names {
			if j > 0 {
				csv.WriteByte(',')
			}
			if v := cols[j][i]; !math.IsNaN(v) {
				csv.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		csv.WriteByte('\n')
		if i == 0 {
			one.Write(csv.Bytes())
		}
		fmt.Fprintf(&pred, "%.17g\n", preds[i])
	}
	for name, data := range map[string][]byte{"rows.csv": csv.Bytes(), "row.csv": one.Bytes(), "preds.txt": pred.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	trees := 0
	depth := 0
	for _, tr := range m.Predictor().(*model.XGBoost).Booster().Trees {
		trees++
		d := 0
		walk(&tr, func(_ int32, nd int) { d = max(d, nd) })
		depth = max(depth, d)
	}
	t.Logf("wrote %s: %d trees, max depth %d, %d features; %d test rows", bundle, trees, depth, len(names), len(rows))
}

// BenchmarkExportPredictRowsOneRow is the in-process one-row latency of the
// edge-export benchmark's model: Model.PredictRows on one decoded row per
// call, cycling through the 1,000 test rows. It loads
// $KILN_EXPORT_BENCH_DIR/bundle when set (what make bench-export exported),
// else trains the same model.
func BenchmarkExportPredictRowsOneRow(b *testing.B) {
	var m *model.Model
	names := make([]string, benchFeatures)
	for j := range names {
		names[j] = fmt.Sprintf("x%d", j)
	}
	if dir := os.Getenv("KILN_EXPORT_BENCH_DIR"); dir != "" {
		var err error
		if m, err = model.Load(filepath.Join(dir, "bundle")); err != nil {
			b.Fatal(err)
		}
	} else {
		m, _, names = benchModel(b)
	}
	rows, _ := benchRows(names, benchOneRowRows)
	one := make([][]map[string]any, len(rows))
	for i, r := range rows {
		one[i] = []map[string]any{r}
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.PredictRows(one[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(one) {
			i = 0
		}
	}
}
