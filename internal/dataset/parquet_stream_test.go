package dataset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

// TestScanRowGroup checks that scanning a row group in batches of various
// sizes yields exactly the rows ReadRowGroup returns, for every column type,
// with and without nulls, across many pages.
func TestScanRowGroup(t *testing.T) {
	const rows = 70000 // several pages per column chunk
	s := Schema{Fields: []Field{{Name: "f", Type: Float64}, {Name: "fn", Type: Float64}, {Name: "i", Type: Int64}, {Name: "in", Type: Int64}, {Name: "s", Type: String}, {Name: "sn", Type: String}, {Name: "b", Type: Bool}, {Name: "bn", Type: Bool}}}
	f, fn := make([]float64, rows), make([]float64, rows)
	iv, in := make([]int64, rows), make([]int64, rows)
	sv := make([]string, rows)
	bv := make([]bool, rows)
	valid := make([]bool, rows)
	for r := range rows {
		f[r], fn[r] = float64(r)*0.5, math.Sqrt(float64(r))
		iv[r], in[r] = int64(r)*3, -int64(r)
		sv[r] = fmt.Sprintf("v%d", r%5000) // dictionary encoded, then long strings
		if r > 60000 {
			sv[r] = fmt.Sprintf("long-%08d-%s", r, "padding-padding-padding")
		}
		bv[r] = r%3 == 0
		valid[r] = r%7 != 0 && (r < 30000 || r > 30500)
	}
	path := filepath.Join(t.TempDir(), "scan.parquet")
	w, err := CreateParquet(path, s, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := mustRecord(t, s, Float64Array(f), floatsValid(fn, valid), Int64Array(iv, nil), Int64Array(in, valid),
		StringArray(sv, nil), StringArray(sv, valid), BoolArray(bv, nil), BoolArray(bv, valid))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	whole, err := r.ReadRowGroup(context.Background(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Release()
	for _, batch := range []int{7, 1000, 4096, 65536, rows, 2 * rows} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			got := 0
			err := r.ScanRowGroup(context.Background(), 0, nil, batch, func(b arrow.Record) error {
				if int(b.NumRows()) != min(batch, rows-got) {
					t.Fatalf("batch at row %d has %d rows, want %d", got, b.NumRows(), min(batch, rows-got))
				}
				// Compare a few rows of every batch (all of them for big batches).
				step := max(1, int(b.NumRows())/50)
				if batch < 100 {
					step = 997
				}
				for c := range int(b.NumCols()) {
					col := b.Column(c)
					ref := whole.Column(c)
					for k := 0; k < int(b.NumRows()); k += step {
						if col.IsNull(k) != ref.IsNull(got+k) || (!col.IsNull(k) && col.ValueStr(k) != ref.ValueStr(got+k)) {
							t.Fatalf("column %s row %d: got %q (null %v), want %q (null %v)", s.Fields[c].Name, got+k,
								col.ValueStr(k), col.IsNull(k), ref.ValueStr(got+k), ref.IsNull(got+k))
						}
					}
				}
				got += int(b.NumRows())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != rows {
				t.Fatalf("scanned %d rows, want %d", got, rows)
			}
		})
	}
	stop := errors.New("stop")
	if err := r.ScanRowGroup(context.Background(), 0, []string{"f"}, 100, func(arrow.Record) error { return stop }); err != stop {
		t.Errorf("error from fn: got %v, want it returned as is", err)
	}
	if err := r.ScanRowGroup(context.Background(), 1, nil, 100, func(arrow.Record) error { return nil }); err == nil {
		t.Error("row group 1 of a one-row-group file: no error")
	}
}

// TestScanRowGroupCorrupt checks that damaged page data is an error naming
// the file, row group and column, not a panic.
func TestScanRowGroupCorrupt(t *testing.T) {
	s := Schema{Fields: []Field{{Name: "x", Type: Float64}}}
	path := filepath.Join(t.TempDir(), "corrupt.parquet")
	w, err := CreateParquet(path, s, WriterOptions{Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float64, 10000)
	rec := mustRecord(t, s, Float64Array(vals))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4; i < 200; i++ { // clobber the first page header
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.ScanRowGroup(context.Background(), 0, nil, 1000, func(arrow.Record) error { return nil })
	if err == nil {
		t.Fatal("no error scanning a corrupt page")
	}
	for _, want := range []string{path, "row group 0", `column "x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// floatsValid is a Float64 array of vals with nulls where valid is false.
func floatsValid(vals []float64, valid []bool) arrow.Array {
	v := append([]float64(nil), vals...)
	for i, ok := range valid {
		if !ok {
			v[i] = math.NaN()
		}
	}
	return Float64ArrayNullNaN(v)
}
