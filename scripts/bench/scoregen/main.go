// Command scoregen prepares the batch-scoring benchmark (scripts/bench/score_bench.sh):
//
//	scoregen data -rows 10000000 -dir DIR
//	    DIR/data.parquet: id (int64) and f0..f29 (float64) in row groups of
//	    1,048,576 rows (pyarrow's default), snappy; DIR/x.f64 and DIR/y.f64:
//	    the first -peer-rows rows of the same features, row-major
//	    little-endian float64, and their 0/1 labels, for the Python peers
//	    and for training.
//	scoregen bundle -estimator logistic|xgboost -file MODEL.json -dir DIR
//	    a Kiln bundle over f0..f29 (no transforms) with that estimator.
//	scoregen logrows DIR MODEL
//	    the number of rows in MODEL's request log files under DIR (a kiln
//	    serve's requests/ directory), for serve_bench.sh's completeness check.
//
// The data are deterministic (fixed seed), so a cached copy is reused.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/transform"
)

const features = 30

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: scoregen data|bundle [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "data":
		fs := flag.NewFlagSet("data", flag.ExitOnError)
		rows := fs.Int("rows", 10_000_000, "rows")
		peer := fs.Int("peer-rows", 2_000_000, "rows written for the peers")
		group := fs.Int("row-group", 1<<20, "rows per row group")
		dir := fs.String("dir", "", "output directory")
		fs.Parse(os.Args[2:])
		err = genData(*dir, *rows, *peer, *group)
	case "bundle":
		fs := flag.NewFlagSet("bundle", flag.ExitOnError)
		est := fs.String("estimator", "", "logistic or xgboost")
		file := fs.String("file", "", "estimator file")
		dir := fs.String("dir", "", "bundle directory to create")
		fs.Parse(os.Args[2:])
		err = genBundle(*dir, *est, *file)
	case "logrows":
		if len(os.Args) != 4 {
			err = fmt.Errorf("usage: scoregen logrows DIR MODEL")
			break
		}
		err = logRows(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scoregen:", err)
		os.Exit(1)
	}
}

func names() []string {
	n := make([]string, features)
	for j := range n {
		n[j] = fmt.Sprintf("f%d", j)
	}
	return n
}

// row fills x with row id's features and returns its label: a nonlinear
// function of a few features plus noise, so trees have work to do.
func row(r *rand.Rand, x []float64) float64 {
	for j := range x {
		x[j] = r.NormFloat64()
	}
	z := 0.8*x[0] - 0.6*x[1] + 0.5*x[2]*x[3] + math.Sin(2*x[4]) + 0.3*x[5]*x[5] - 0.3 + 0.5*r.NormFloat64()
	if z > 0 {
		return 1
	}
	return 0
}

func genData(dir string, rows, peer, group int) error {
	if dir == "" {
		return fmt.Errorf("no -dir")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s := dataset.Schema{Fields: []dataset.Field{{Name: "id", Type: dataset.Int64}}}
	for _, n := range names() {
		s.Fields = append(s.Fields, dataset.Field{Name: n, Type: dataset.Float64})
	}
	w, err := dataset.CreateParquet(filepath.Join(dir, "data.parquet"), s, dataset.WriterOptions{})
	if err != nil {
		return err
	}
	defer w.Abort()
	xf, err := os.Create(filepath.Join(dir, "x.f64"))
	if err != nil {
		return err
	}
	defer xf.Close()
	yf, err := os.Create(filepath.Join(dir, "y.f64"))
	if err != nil {
		return err
	}
	defer yf.Close()
	xb, yb := bufio.NewWriterSize(xf, 1<<20), bufio.NewWriterSize(yf, 1<<20)
	r := rand.New(rand.NewPCG(42, 1))
	x := make([]float64, features)
	for lo := 0; lo < rows; lo += group {
		n := min(group, rows-lo)
		ids := make([]int64, n)
		cols := make([][]float64, features)
		for j := range cols {
			cols[j] = make([]float64, n)
		}
		for i := range n {
			ids[i] = int64(lo + i)
			y := row(r, x)
			for j := range x {
				cols[j][i] = x[j]
			}
			if lo+i < peer {
				binary.Write(xb, binary.LittleEndian, x)
				binary.Write(yb, binary.LittleEndian, y)
			}
		}
		arrs := []arrow.Array{dataset.Int64Array(ids, nil)}
		for j := range cols {
			arrs = append(arrs, dataset.Float64Array(cols[j]))
		}
		rec, err := dataset.NewRecord(s, arrs)
		if err != nil {
			return err
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		rec.Release()
		for _, a := range arrs {
			a.Release()
		}
		fmt.Fprintf(os.Stderr, "\rscoregen: %d/%d rows", lo+n, rows)
	}
	fmt.Fprintln(os.Stderr)
	if err := xb.Flush(); err != nil {
		return err
	}
	if err := yb.Flush(); err != nil {
		return err
	}
	_, err = w.Commit()
	return err
}

func genBundle(dir, est, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var inputs []dataset.Field
	for _, n := range names() {
		inputs = append(inputs, dataset.Field{Name: n, Type: dataset.Float64})
	}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Name: "bench-" + est, Task: model.TaskBinary, Target: "y",
		Output: model.OutputProbability, Inputs: inputs,
		Transforms: &transform.Fitted{Inputs: inputs, Features: names()},
		Estimator:  model.Estimator{Type: est, File: "model.json"},
	}
	os.RemoveAll(dir)
	return model.WriteBundle(dir, man, map[string][]byte{"model.json": data})
}

// logRows prints the rows of model's request log files under dir.
func logRows(dir, name string) error {
	files, err := serving.RequestLogFiles(dir, name, time.Time{})
	if err != nil {
		return err
	}
	var rows int64
	for _, f := range files {
		r, err := dataset.OpenParquet(f)
		if err != nil {
			return err
		}
		rows += r.NumRows()
		r.Close()
	}
	fmt.Println(rows)
	return nil
}
