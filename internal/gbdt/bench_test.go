package gbdt_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/internal/gbdt"
	"github.com/kiln-ml/kiln/internal/gbdt/gbdtdata"
	"github.com/kiln-ml/kiln/internal/metrics"
)

// Parity benchmark data sizes: scripts/bench/gbdt_parity.py reads the same
// data from the files scripts/bench/gbdt_data writes.
const (
	synthRows     = 200_000
	synthHoldout  = 50_000
	synthFeatures = 30
	synthSeed     = 7
)

// benchSet is a parity data set: train and holdout.
type benchSet struct {
	name        string
	train, test *gbdt.Data
}

var benchSets = sync.OnceValues(func() ([]benchSet, error) {
	// With KILN_GBDT_BENCH_DIR set, read the files the Python side reads.
	if dir := os.Getenv("KILN_GBDT_BENCH_DIR"); dir != "" {
		var out []benchSet
		for _, name := range []string{"breast_cancer", "synthetic"} {
			tr, err := gbdtdata.Read(filepath.Join(dir, name+"_train.bin"))
			if err != nil {
				return nil, err
			}
			te, err := gbdtdata.Read(filepath.Join(dir, name+"_test.bin"))
			if err != nil {
				return nil, err
			}
			out = append(out, benchSet{name, tr, te})
		}
		return out, nil
	}
	tr, te, _, err := gbdtdata.BreastCancer(filepath.Join("..", "..", "data", "breast_cancer.csv"))
	if err != nil {
		return nil, err
	}
	return []benchSet{
		{"breast_cancer", tr, te},
		{"synthetic", gbdtdata.Synthetic(0, synthRows, synthFeatures, synthSeed), gbdtdata.Synthetic(synthRows, synthHoldout, synthFeatures, synthSeed)},
	}, nil
})

// BenchmarkGBDTTrain trains 100 rounds of depth 6 (XGBoost's defaults,
// binary:logistic, max_bin 256) on each parity data set and reports the
// holdout AUC; scripts/bench/gbdt_parity.py trains XGBoost hist on the same
// data with the same parameters and GOMAXPROCS threads.
func BenchmarkGBDTTrain(b *testing.B) {
	sets, err := benchSets()
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range sets {
		b.Run(s.name, func(b *testing.B) {
			p := gbdt.DefaultParams(gbdt.BinaryLogistic)
			var m *gbdt.Model
			for b.Loop() {
				m, err = gbdt.Train(context.Background(), s.train, nil, p, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(metrics.AUC(s.test.Y, m.PredictColumns(s.test.X)), "AUC")
			b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "threads")
		})
	}
}
