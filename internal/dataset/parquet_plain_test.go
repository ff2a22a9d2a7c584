package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// plainRow has the column shapes the direct PLAIN path decodes (required and
// optional DOUBLE and INT64) next to one it leaves to the general path.
type plainRow struct {
	F    float64  `parquet:"f"`
	FN   *float64 `parquet:"fn,optional"`
	I    int64    `parquet:"i"`
	IN   *int64   `parquet:"in,optional"`
	Dict float64  `parquet:"dict,dict"`
	U    uint64   `parquet:"u"`
}

// writePlainRows writes rows in row groups of 3000 with small pages, with
// the given data page version and codec, and returns the path.
func writePlainRows(t *testing.T, rows []plainRow, version int, codec compress.Codec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[plainRow](f, parquet.MaxRowsPerRowGroup(3000), parquet.PageBufferSize(4096),
		parquet.DataPageVersion(version), parquet.Compression(codec))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func plainRows(n int) []plainRow {
	rows := make([]plainRow, n)
	for i := range rows {
		rows[i] = plainRow{F: float64(i) * 0.25, I: int64(i) - 5000, Dict: float64(i % 3), U: uint64(i)}
		if i%3 != 0 && (i < 2000 || i > 2600) { // a run of nulls spanning pages
			v, k := float64(-i), int64(i)*7
			rows[i].FN, rows[i].IN = &v, &k
		}
	}
	return rows
}

// TestScanPlainMatchesGeneral checks that the direct PLAIN path decodes
// exactly what the general page path does (through ScanRowGroup and
// ReadRowGroup), for v1 and v2 data pages, every
// codec, with and without nulls, in batches that straddle pages.
func TestScanPlainMatchesGeneral(t *testing.T) {
	rows := plainRows(7000)
	codecs := []struct {
		name  string
		codec compress.Codec
		plain bool // the direct path applies
	}{{"snappy", &parquet.Snappy, true}, {"none", &parquet.Uncompressed, true}, {"zstd", &parquet.Zstd, false}}
	for _, version := range []int{1, 2} {
		for _, c := range codecs {
			t.Run(fmt.Sprintf("v%d-%s", version, c.name), func(t *testing.T) {
				r, err := OpenParquet(writePlainRows(t, rows, version, c.codec))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				_, cols, err := r.resolve(nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, col := range cols {
					want := c.plain && col.name != "dict" && col.name != "u"
					if got := r.plainChunkOf(0, col) != nil; got != want {
						t.Errorf("column %q: direct path %v, want %v", col.name, got, want)
					}
				}
				for g := range r.NumRowGroups() {
					whole, err := readGeneral(r, g)
					if err != nil {
						t.Fatal(err)
					}
					direct, err := r.ReadRowGroup(context.Background(), g, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !array.RecordEqual(direct, whole) {
						t.Fatalf("row group %d: ReadRowGroup differs from the general path", g)
					}
					direct.Release()
					for _, batch := range []int{1000, 4096} {
						var got []arrow.Record
						err := r.ScanRowGroup(context.Background(), g, nil, batch, func(rec arrow.Record) error {
							// Copy: the scanned record's memory is reused.
							cp := make([]arrow.Array, rec.NumCols())
							for i := range cp {
								cp[i] = copyArray(t, rec.Column(i))
							}
							got = append(got, array.NewRecord(rec.Schema(), cp, rec.NumRows()))
							return nil
						})
						if err != nil {
							t.Fatalf("row group %d, batch %d: %v", g, batch, err)
						}
						off := int64(0)
						for _, rec := range got {
							want := whole.NewSlice(off, off+rec.NumRows())
							if !array.RecordEqual(rec, want) {
								t.Fatalf("row group %d, batch %d at row %d: scanned rows differ from ReadRowGroup", g, batch, off)
							}
							off += rec.NumRows()
							want.Release()
							rec.Release()
						}
						if off != whole.NumRows() {
							t.Fatalf("row group %d: scanned %d rows, want %d", g, off, whole.NumRows())
						}
					}
					whole.Release()
				}
			})
		}
	}
}

// readGeneral reads row group g without the direct PLAIN path.
func readGeneral(r *Reader, g int) (arrow.Record, error) {
	plainChunkReads = false
	defer func() { plainChunkReads = true }()
	return r.ReadRowGroup(context.Background(), g, nil)
}

// copyArray deep-copies a Float64 or Int64 array (with its nulls).
func copyArray(t *testing.T, a arrow.Array) arrow.Array {
	t.Helper()
	switch a := a.(type) {
	case *array.Float64:
		v := slices.Clone(a.Float64Values())
		valid := make([]bool, a.Len())
		for i := range valid {
			valid[i] = a.IsValid(i)
		}
		return floatsValid(v, valid)
	case *array.Int64:
		v := slices.Clone(a.Int64Values())
		valid := make([]bool, a.Len())
		for i := range valid {
			valid[i] = a.IsValid(i)
		}
		return Int64Array(v, valid)
	}
	t.Fatalf("unexpected array type %s", a.DataType())
	return nil
}

// TestScanCorruptionNeverPanics corrupts a file of plain pages at random:
// scanning must fail with an error naming the file, or succeed, never panic.
func TestScanCorruptionNeverPanics(t *testing.T) {
	for _, version := range []int{1, 2} {
		data, err := os.ReadFile(writePlainRows(t, plainRows(7000), version, &parquet.Snappy))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, uint64(version)))
		path := filepath.Join(t.TempDir(), "bad.parquet")
		failures := 0
		for trial := range 200 {
			bad := slices.Clone(data)
			// Corrupt the data pages, not the footer: the footer is checked
			// by TestRandomCorruptionNeverPanics.
			for range 1 + rng.IntN(4) {
				bad[4+rng.IntN(len(bad)/2)] ^= byte(1 + rng.IntN(255))
			}
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := OpenParquet(path)
			if err != nil {
				continue
			}
			for g := range r.NumRowGroups() {
				err = r.ScanRowGroup(context.Background(), g, nil, 1000, func(arrow.Record) error { return nil })
				if err != nil {
					break
				}
			}
			r.Close()
			if err != nil {
				failures++
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("v%d trial %d: error %q does not name the file", version, trial, err)
				}
			}
		}
		if failures == 0 {
			t.Errorf("v%d: no corruption was detected in 200 trials", version)
		}
	}
}

// TestWriterRequiredColumns checks that columns declared required round-trip
// (through the direct and the general read paths), are REQUIRED in the file,
// and reject nulls; an unknown required name is an error.
func TestWriterRequiredColumns(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateParquet(filepath.Join(dir, "x.parquet"), allTypes, WriterOptions{Required: []string{"nope"}}); err == nil ||
		!strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown required column: error %v", err)
	}
	req := []string{"f", "i", "s", "b"}
	path := filepath.Join(dir, "req.parquet")
	w, err := CreateParquet(path, allTypes, WriterOptions{Required: req})
	if err != nil {
		t.Fatal(err)
	}
	rec := mustRecord(t, allTypes,
		Float64Array([]float64{1.5, -2, 3}),
		Int64Array([]int64{7, 0, -1}, nil),
		StringArray([]string{"a", "", "a"}, nil),
		BoolArray([]bool{true, false, true}, nil))
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, c := range r.pf.Root().Columns() {
		if !c.Required() {
			t.Errorf("column %q is not REQUIRED in the file", c.Name())
		}
	}
	direct, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Release()
	general, err := readGeneral(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer general.Release()
	if !array.RecordEqual(direct, rec) || !array.RecordEqual(general, rec) {
		t.Errorf("read back\n%v\n%v\nwant %v", direct, general, rec)
	}

	w, err = CreateParquet(filepath.Join(dir, "null.parquet"), allTypes, WriterOptions{Required: []string{"i"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write(allTypesRecord(t, 0)); err == nil || !strings.Contains(err.Error(), `column "i"`) || !strings.Contains(err.Error(), "null") {
		t.Errorf("null in a required column: error %v", err)
	}
}
