// Command gbdt_data writes the GBDT parity benchmark's data sets (see
// internal/gbdt/gbdtdata) to a directory, for scripts/bench/gbdt_parity.py
// and BenchmarkGBDTTrain (with KILN_GBDT_BENCH_DIR) to read:
// breast_cancer_{train,test}.bin and synthetic_{train,test}.bin.
//
//	go run ./scripts/bench/gbdt_data -out build/gbdt-bench
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-ml/kiln/internal/gbdt"
	"github.com/kiln-ml/kiln/internal/gbdt/gbdtdata"
)

func main() {
	out := flag.String("out", "build/gbdt-bench", "output directory")
	csv := flag.String("breast-cancer", "data/breast_cancer.csv", "the breast cancer CSV")
	rows := flag.Int("rows", 200_000, "synthetic training rows")
	holdout := flag.Int("holdout", 50_000, "synthetic holdout rows")
	features := flag.Int("features", 30, "synthetic features")
	seed := flag.Uint64("seed", 7, "synthetic seed")
	flag.Parse()
	if err := run(*out, *csv, *rows, *holdout, *features, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gbdt_data:", err)
		os.Exit(1)
	}
}

func run(out, csv string, rows, holdout, features int, seed uint64) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tr, te, _, err := gbdtdata.BreastCancer(csv)
	if err != nil {
		return err
	}
	files := map[string]*gbdt.Data{
		"breast_cancer_train.bin": tr,
		"breast_cancer_test.bin":  te,
		"synthetic_train.bin":     gbdtdata.Synthetic(0, rows, features, seed),
		"synthetic_test.bin":      gbdtdata.Synthetic(rows, holdout, features, seed),
	}
	for name, d := range files {
		if err := gbdtdata.Write(filepath.Join(out, name), d); err != nil {
			return err
		}
		fmt.Printf("%s: %d rows × %d features\n", filepath.Join(out, name), d.Rows(), len(d.X))
	}
	return nil
}
