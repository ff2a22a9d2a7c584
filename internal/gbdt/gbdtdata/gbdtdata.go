// Package gbdtdata holds the data sets of the GBDT parity benchmark
// (BenchmarkGBDTTrain in internal/gbdt, scripts/bench/gbdt_parity.py): a
// deterministic synthetic binary data set and the breast cancer data split
// into train and holdout, and a simple binary file format that both the Go
// benchmark and the Python script read (no Parquet reader is available to
// the Python side).
//
// File format (little endian): the magic "KGBD", uint32 rows, uint32
// features, then the features column by column as float64 (NaN missing),
// then the labels as float64.
package gbdtdata

import (
	"bufio"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kiln-ml/kiln/internal/gbdt"
)

// magic starts every data file.
const magic = "KGBD"

// hash is SplitMix64 of (seed, i): a deterministic stream independent of
// how many values are drawn.
func hash(seed, i uint64) uint64 {
	z := seed*0x9E3779B97F4A7C15 + i + 0x632BE59BD9B4E019
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// unit maps (seed, i) to (0, 1).
func unit(seed, i uint64) float64 {
	return (float64(hash(seed, i)>>11) + 0.5) / (1 << 53)
}

// normal draws a standard normal value for (seed, i) by Box-Muller.
func normal(seed, i uint64) float64 {
	u1, u2 := unit(seed, 2*i), unit(seed, 2*i+1)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// Synthetic returns rows first..first+rows-1 of the synthetic binary data
// set with the given number of features (at least 10): standard normal
// features, features 8 and 9 missing (NaN) in about 5% of the rows (more
// often when feature 0 is positive), and a label drawn from a non-linear
// logistic model of the first ten features. Row i is the same whatever
// first and rows are, so a holdout is just another range of rows.
func Synthetic(first, rows, features int, seed uint64) *gbdt.Data {
	d := &gbdt.Data{X: make([][]float64, features), Y: make([]float64, rows)}
	for j := range d.X {
		d.X[j] = make([]float64, rows)
	}
	for k := range rows {
		i := uint64(first + k)
		x := func(j int) float64 { return normal(seed+uint64(j)*7919, i) }
		for j := range features {
			d.X[j][k] = x(j)
		}
		z := 1.2*d.X[0][k] - 0.9*d.X[1][k]*d.X[2][k] + math.Sin(2*d.X[3][k]) +
			step(d.X[4][k] > 0.5, 1.0, -0.4) + 0.4*d.X[5][k]*d.X[5][k] - 0.4 +
			0.5*math.Abs(d.X[6][k]) - 0.3*d.X[7][k] + 0.4*d.X[8][k] - 0.3*d.X[9][k]
		for j := range 2 {
			rate := 0.03
			if d.X[0][k] > 0 {
				rate = 0.07
			}
			if unit(seed^0xabcdef, i*2+uint64(j)) < rate {
				d.X[8+j][k] = math.NaN()
			}
		}
		p := 1 / (1 + math.Exp(-z))
		if unit(seed^0x5eed, i) < p {
			d.Y[k] = 1
		}
	}
	return d
}

func step(c bool, a, b float64) float64 {
	if c {
		return a
	}
	return b
}

// BreastCancer reads data/breast_cancer.csv (30 features, target
// "malignant" last) and splits it into train and holdout rows as Kiln's
// preprocess step does for pipelines/breast_cancer.yaml's test fraction
// (0.25, seed 42): row i is holdout when SplitMix64(42, i) < 0.25.
func BreastCancer(path string) (train, test *gbdt.Data, names []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(recs) < 2 {
		return nil, nil, nil, fmt.Errorf("reading %s: no rows", path)
	}
	header := recs[0]
	nf := len(header) - 1
	if header[nf] != "malignant" {
		return nil, nil, nil, fmt.Errorf("reading %s: last column is %q, want malignant", path, header[nf])
	}
	train = &gbdt.Data{X: make([][]float64, nf)}
	test = &gbdt.Data{X: make([][]float64, nf)}
	for i, rec := range recs[1:] {
		vals := make([]float64, len(rec))
		for j, s := range rec {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s:%d: column %s: %w", path, i+2, header[j], err)
			}
			vals[j] = v
		}
		d := train
		if float64(hash(42, uint64(i))>>11)/(1<<53) < 0.25 {
			d = test
		}
		for j := range nf {
			d.X[j] = append(d.X[j], vals[j])
		}
		d.Y = append(d.Y, vals[nf])
	}
	return train, test, header[:nf], nil
}

// Write writes d to path in the package's binary format, through a
// temporary file renamed into place.
func Write(path string, d *gbdt.Data) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	w.WriteString(magic)
	binary.Write(w, binary.LittleEndian, [2]uint32{uint32(d.Rows()), uint32(len(d.X))})
	for _, col := range append(append([][]float64(nil), d.X...), d.Y) {
		if err := binary.Write(w, binary.LittleEndian, col); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// Read reads a file written by Write.
func Read(path string) (*gbdt.Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var head [4]byte
	var dims [2]uint32
	if _, err := io.ReadFull(r, head[:]); err != nil || string(head[:]) != magic {
		return nil, fmt.Errorf("reading %s: not a %s file", path, magic)
	}
	if err := binary.Read(r, binary.LittleEndian, &dims); err != nil {
		return nil, fmt.Errorf("reading %s: header: %w", path, err)
	}
	rows, nf := int(dims[0]), int(dims[1])
	d := &gbdt.Data{X: make([][]float64, nf), Y: make([]float64, rows)}
	for j := range nf {
		d.X[j] = make([]float64, rows)
		if err := binary.Read(r, binary.LittleEndian, d.X[j]); err != nil {
			return nil, fmt.Errorf("reading %s: feature %d: %w", path, j, err)
		}
	}
	if err := binary.Read(r, binary.LittleEndian, d.Y); err != nil {
		return nil, fmt.Errorf("reading %s: labels: %w", path, err)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s: data after the labels", path)
	}
	return d, nil
}
