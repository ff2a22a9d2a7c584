package dataset

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

var allTypes = Schema{Fields: []Field{{Name: "f", Type: Float64}, {Name: "i", Type: Int64}, {Name: "s", Type: String}, {Name: "b", Type: Bool}}}

// allTypesRecord returns a record of allTypes with nulls in every column.
func allTypesRecord(t testing.TB, off int) arrow.Record {
	nan := math.NaN()
	return mustRecord(t, allTypes,
		Float64Array([]float64{1.5 + float64(off), nan, -2, math.Inf(1)}),
		Int64Array([]int64{int64(off), 0, math.MinInt64, 7}, []bool{true, false, true, true}),
		StringArray([]string{"x", "", "", "ünïcode"}, []bool{true, true, false, true}),
		BoolArray([]bool{true, false, false, true}, []bool{true, true, false, true}),
	)
}

func TestWriteReadRoundTrip(t *testing.T) {
	for _, compression := range []string{"", "snappy", "zstd", "none"} {
		t.Run("compression="+compression, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "all.parquet")
			w, err := CreateParquet(path, allTypes, WriterOptions{Compression: compression})
			if err != nil {
				t.Fatal(err)
			}
			for g := range 3 {
				rec := allTypesRecord(t, g)
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
				rec.Release()
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("destination exists before Commit: %v", err)
			}
			info, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if info.Rows != 12 || info.RowGroups != 3 || !reflect.DeepEqual(info.Schema, allTypes) {
				t.Errorf("info = %+v", info)
			}
			if left := dirEntries(t, filepath.Dir(path)); !slices.Equal(left, []string{"all.parquet"}) {
				t.Errorf("directory holds %v", left)
			}

			r, err := OpenParquet(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !reflect.DeepEqual(r.Schema(), allTypes) || len(r.Unsupported()) != 0 {
				t.Errorf("schema %+v, unsupported %v", r.Schema(), r.Unsupported())
			}
			for g := range 3 {
				got, err := r.ReadRowGroup(ctx, g, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := allTypesRecord(t, g)
				for c := range allTypes.Fields {
					if gv, wv := values(t, got.Column(c)), values(t, want.Column(c)); !equalValues(gv, wv) {
						t.Errorf("row group %d column %s = %v, want %v", g, allTypes.Fields[c].Name, gv, wv)
					}
				}
				got.Release()
				want.Release()
			}
			all, err := r.ReadAll(ctx, []string{"s", "f"})
			if err != nil {
				t.Fatal(err)
			}
			defer all.Release()
			if all.NumRows() != 12 || all.ColumnName(0) != "s" || all.ColumnName(1) != "f" {
				t.Errorf("ReadAll: %d rows, columns %s, %s", all.NumRows(), all.ColumnName(0), all.ColumnName(1))
			}
			if got := values(t, all.Column(1))[8]; got != 3.5 {
				t.Errorf("f[8] = %v, want 3.5", got)
			}
		})
	}
}

func TestReadRowGroupErrors(t *testing.T) {
	path := writeForeign(t, 1)
	r, err := OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name    string
		group   int
		columns []string
		want    string
	}{
		{"unknown column", 0, []string{"nope"}, `no column "nope"`},
		{"unsupported column", 0, []string{"id", "when"}, `column "when" has unsupported type TIMESTAMP`},
		{"nested column", 0, []string{"tags"}, `column "tags" has unsupported type`},
		{"duplicate column", 0, []string{"id", "id"}, `column "id" requested twice`},
		{"group out of range", 5, nil, "row group 5 out of range"},
		{"negative group", -1, nil, "row group -1 out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.ReadRowGroup(context.Background(), tc.group, tc.columns)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}

// foreignRow is written with parquet-go's generic writer, as another tool
// would: REQUIRED physical INT32/FLOAT columns, small and unsigned ints,
// optional and dictionary-encoded columns, and unsupported types.
type foreignRow struct {
	ID     int32     `parquet:"id"`
	Score  float32   `parquet:"score"`
	Small  int8      `parquet:"small"`
	Big    uint32    `parquet:"big"`
	Label  string    `parquet:"label,dict"`
	Raw    []byte    `parquet:"raw"`
	Maybe  *float64  `parquet:"maybe,optional"`
	Count  *int64    `parquet:"count,optional"`
	Flag   bool      `parquet:"flag"`
	When   time.Time `parquet:"when"`
	Tags   []string  `parquet:"tags,list"`
	Amount float64   `parquet:"amount,dict"`
}

func foreignRows(n int) []foreignRow {
	rows := make([]foreignRow, n)
	for i := range rows {
		rows[i] = foreignRow{
			ID:     int32(i - 3),
			Score:  float32(i) / 4,
			Small:  int8(-i),
			Big:    math.MaxUint32 - uint32(i),
			Label:  []string{"a", "b", "c"}[i%3],
			Raw:    []byte(fmt.Sprint("r", i)),
			Flag:   i%3 == 0,
			When:   time.Unix(int64(i), 0).UTC(),
			Tags:   []string{"t"},
			Amount: float64(i % 4),
		}
		if i%2 == 0 {
			v := float64(i) + 0.5
			rows[i].Maybe = &v
		}
		if i%5 != 0 {
			v := int64(i) * 1000
			rows[i].Count = &v
		}
	}
	return rows
}

// writeForeign writes foreignRows(10) in row groups of 4 with the given data
// page version and returns the path.
func writeForeign(t *testing.T, pageVersion int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "foreign.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[foreignRow](f, parquet.MaxRowsPerRowGroup(4), parquet.DataPageVersion(pageVersion))
	if _, err := w.Write(foreignRows(10)); err != nil {
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

func TestReadForeignParquet(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprint("page version ", version), func(t *testing.T) {
			path := writeForeign(t, version)
			r, err := OpenParquet(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			wantSchema := Schema{Fields: []Field{
				{Name: "id", Type: Int64}, {Name: "score", Type: Float64}, {Name: "small", Type: Int64}, {Name: "big", Type: Int64}, {Name: "label", Type: String},
				{Name: "raw", Type: String}, {Name: "maybe", Type: Float64}, {Name: "count", Type: Int64}, {Name: "flag", Type: Bool}, {Name: "amount", Type: Float64},
			}}
			if !reflect.DeepEqual(r.Schema(), wantSchema) {
				t.Errorf("schema = %+v\nwant %+v", r.Schema(), wantSchema)
			}
			if got := r.Unsupported(); !slices.Equal(got, []string{"when", "tags"}) {
				t.Errorf("unsupported = %v", got)
			}
			if r.NumRowGroups() != 3 || r.NumRows() != 10 {
				t.Errorf("%d row groups, %d rows", r.NumRowGroups(), r.NumRows())
			}
			rec, err := r.ReadAll(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Release()
			rows := foreignRows(10)
			want := map[string][]any{}
			for _, row := range rows {
				want["id"] = append(want["id"], int64(row.ID))
				want["score"] = append(want["score"], float64(row.Score))
				want["small"] = append(want["small"], int64(row.Small))
				want["big"] = append(want["big"], int64(row.Big))
				want["label"] = append(want["label"], row.Label)
				want["raw"] = append(want["raw"], string(row.Raw))
				want["flag"] = append(want["flag"], row.Flag)
				want["amount"] = append(want["amount"], row.Amount)
				if row.Maybe != nil {
					want["maybe"] = append(want["maybe"], *row.Maybe)
				} else {
					want["maybe"] = append(want["maybe"], nil)
				}
				if row.Count != nil {
					want["count"] = append(want["count"], *row.Count)
				} else {
					want["count"] = append(want["count"], nil)
				}
			}
			for name, w := range want {
				if got := values(t, columnByName(t, rec, name)); !equalValues(got, w) {
					t.Errorf("column %s = %v\nwant %v", name, got, w)
				}
			}
		})
	}
}

func TestCorruptParquet(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	w, err := CreateParquet(good, allTypes, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for g := range 4 {
		if err := w.Write(allTypesRecord(t, g)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the data pages but keep the footer: the footer parses, reading fails.
	scrambled := slices.Clone(data)
	for i := 4; i < len(data)/2; i++ {
		scrambled[i] ^= 0x5a
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", data[:len(data)/2]},
		{"no footer", data[:len(data)-8]},
		{"empty", nil},
		{"text", []byte("id,name\n1,x\n")},
		{"scrambled pages", scrambled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := OpenParquet(path)
			if err == nil {
				defer r.Close()
				var rec arrow.Record
				rec, err = r.ReadAll(context.Background(), nil)
				if err == nil {
					rec.Release()
					t.Fatal("corrupt file read without error")
				}
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

func TestRandomCorruptionNeverPanics(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	w, err := CreateParquet(good, allTypes, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for g := range 3 {
		if err := w.Write(allTypesRecord(t, g)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	path := filepath.Join(dir, "bad.parquet")
	failures := 0
	for trial := range 300 {
		bad := slices.Clone(data)
		for range 1 + rng.IntN(4) {
			bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
		}
		if trial%3 == 0 {
			bad = bad[:rng.IntN(len(bad))]
		}
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		// A panic escaping OpenParquet or ReadAll fails the test.
		r, err := OpenParquet(path)
		if err == nil {
			var rec arrow.Record
			rec, err = r.ReadAll(context.Background(), nil)
			if err == nil {
				rec.Release()
			}
			r.Close()
		}
		if err != nil {
			failures++
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("trial %d: error %q does not name the file", trial, err)
			}
		}
	}
	if failures == 0 {
		t.Error("no corruption was detected in 300 trials")
	}
}

func TestWriterLargeDeterministic(t *testing.T) {
	// Enough rows for many pages per column, written by parallel workers.
	const n = 100_000
	s := Schema{Fields: []Field{
		{Name: "a", Type: Float64}, {Name: "b", Type: Int64}, {Name: "c", Type: String}, {Name: "d", Type: Bool}, {Name: "e", Type: Float64}, {Name: "f", Type: Int64}, {Name: "g", Type: String},
	}}
	rng := rand.New(rand.NewPCG(3, 4))
	fa, fe := make([]float64, n), make([]float64, n)
	ib, iff := make([]int64, n), make([]int64, n)
	sc, sg, bd := make([]string, n), make([]string, n), make([]bool, n)
	valid := make([]bool, n)
	for i := range n {
		fa[i], fe[i] = rng.NormFloat64(), float64(i)
		ib[i], iff[i] = rng.Int64(), int64(i%7)
		sc[i], bd[i] = fmt.Sprint("cat", rng.IntN(20)), rng.IntN(2) == 0
		// Unique values: the dictionary outgrows its limit and falls back to plain.
		sg[i] = fmt.Sprintf("customer-%08d-%016x", i, rng.Uint64())
		valid[i] = rng.IntN(10) != 0
	}
	rec := mustRecord(t, s, Float64ArrayNullNaN(fa), Int64Array(ib, valid), StringArray(sc, valid),
		BoolArray(bd, valid), Float64Array(fe), Int64Array(iff, nil), StringArray(sg, nil))
	defer rec.Release()
	dir := t.TempDir()
	var hashes []string
	for k := range 2 {
		path := filepath.Join(dir, fmt.Sprint(k, ".parquet"))
		w, err := CreateParquet(path, s, WriterOptions{Compression: "zstd"})
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range [][2]int64{{0, n / 2}, {n / 2, n}} {
			slice := rec.NewSlice(part[0], part[1])
			if err := w.Write(slice); err != nil {
				t.Fatal(err)
			}
			slice.Release()
		}
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, info.SHA256)
	}
	if hashes[0] != hashes[1] {
		t.Errorf("same record written twice gives different files: %v", hashes)
	}
	r, err := OpenParquet(filepath.Join(dir, "0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	for c := range s.Fields {
		if gv, wv := values(t, got.Column(c)), values(t, rec.Column(c)); !equalValues(gv, wv) {
			t.Errorf("column %s differs after round trip", s.Fields[c].Name)
		}
	}
}

func TestWriterAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.parquet")
	w, err := CreateParquet(path, allTypes, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(allTypesRecord(t, 0)); err != nil {
		t.Fatal(err)
	}
	if len(dirEntries(t, dir)) != 1 {
		t.Errorf("expected one temporary file while writing, have %v", dirEntries(t, dir))
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if left := dirEntries(t, dir); len(left) != 0 {
		t.Errorf("files left after Abort: %v", left)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}

	// Abort after Commit is a no-op and keeps the file.
	w, err = CreateParquet(path, allTypes, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if left := dirEntries(t, dir); !slices.Equal(left, []string{"x.parquet"}) {
		t.Errorf("directory holds %v after Commit+Abort", left)
	}
	if err := w.Write(allTypesRecord(t, 0)); err == nil {
		t.Error("Write after Commit succeeded")
	}
	r, err := OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != 0 || !reflect.DeepEqual(r.Schema(), allTypes) {
		t.Errorf("empty file: %d rows, schema %+v", r.NumRows(), r.Schema())
	}
	empty, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Release()
	if empty.NumRows() != 0 || empty.NumCols() != 4 {
		t.Errorf("ReadAll of empty file: %d rows, %d columns", empty.NumRows(), empty.NumCols())
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.parquet")
	if _, err := CreateParquet(path, allTypes, WriterOptions{Compression: "lzma"}); err == nil || !strings.Contains(err.Error(), "unknown compression") {
		t.Errorf("bad compression: %v", err)
	}
	if _, err := CreateParquet(path, Schema{Fields: []Field{{Name: "a", Type: "decimal"}}}, WriterOptions{}); err == nil {
		t.Error("invalid schema accepted")
	}
	if _, err := CreateParquet(filepath.Join(dir, "missing", "x.parquet"), allTypes, WriterOptions{}); err == nil {
		t.Error("missing directory accepted")
	}
	w, err := CreateParquet(path, allTypes, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	other := Schema{Fields: []Field{{Name: "f", Type: Float64}, {Name: "i", Type: Float64}, {Name: "s", Type: String}, {Name: "b", Type: Bool}}}
	rec := mustRecord(t, other, Float64Array([]float64{1}), Float64Array([]float64{1}), StringArray([]string{"a"}, nil), BoolArray([]bool{true}, nil))
	if err := w.Write(rec); err == nil || !strings.Contains(err.Error(), `record column "i" is float64, schema says int64`) {
		t.Errorf("mismatched record: %v", err)
	}
	renamed := Schema{Fields: []Field{{Name: "g", Type: Float64}, {Name: "i", Type: Int64}, {Name: "s", Type: String}, {Name: "b", Type: Bool}}}
	rec = mustRecord(t, renamed, Float64Array([]float64{1}), Int64Array([]int64{1}, nil), StringArray([]string{"a"}, nil), BoolArray([]bool{true}, nil))
	if err := w.Write(rec); err == nil || !strings.Contains(err.Error(), `record column 1 is "g"`) {
		t.Errorf("renamed record: %v", err)
	}
}

func TestHashFile(t *testing.T) {
	p := writeFile(t, "x", "hello\n")
	got, err := HashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// sha256sum of "hello\n"
	if want := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; got != want {
		t.Errorf("HashFile = %s, want %s", got, want)
	}
	if _, err := HashFile(p + ".missing"); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("missing file: %v", err)
	}
}

// benchRows and benchCols size the throughput benchmarks: 1M rows x 30
// float64 columns.
const benchRows, benchCols = 1 << 20, 30

func benchRecord(b *testing.B) (Schema, arrow.Record) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := Schema{}
	cols := make([]arrow.Array, benchCols)
	for c := range benchCols {
		s.Fields = append(s.Fields, Field{Name: fmt.Sprintf("x%02d", c), Type: Float64})
		vals := make([]float64, benchRows)
		for i := range vals {
			vals[i] = math.Round(rng.NormFloat64()*1000) / 100
		}
		cols[c] = Float64Array(vals)
	}
	return s, mustRecord(b, s, cols...)
}

func BenchmarkWrite(b *testing.B) {
	s, rec := benchRecord(b)
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		w, err := CreateParquet(filepath.Join(dir, "bench.parquet"), s, WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkReadRowGroup(b *testing.B) {
	s, rec := benchRecord(b)
	path := filepath.Join(b.TempDir(), "bench.parquet")
	w, err := CreateParquet(path, s, WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	rec.Release()
	r, err := OpenParquet(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		got, err := r.ReadRowGroup(ctx, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if got.NumRows() != benchRows {
			b.Fatalf("%d rows", got.NumRows())
		}
		got.Release()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestWriterRecoversColumnPanic checks that a panic while a column is
// encoded (here on a String array whose offsets point past its data) is an
// error of Write, not a crash of the process: columns are encoded on
// goroutines of their own, where nothing else would recover it. Wrapped
// int32 offsets of an overflowing column look like these.
func TestWriterRecoversColumnPanic(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateParquet(filepath.Join(dir, "x.parquet"), allTypes, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := array.NewData(arrow.BinaryTypes.String, 2, []*memory.Buffer{nil,
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes([]int32{0, 100, 3})),
		memory.NewBufferBytes([]byte("abc"))}, nil, 0, 0)
	bad := array.MakeFromData(data)
	data.Release()
	rec := mustRecord(t, allTypes, Float64Array([]float64{1, 2}), Int64Array([]int64{1, 2}, nil), bad, BoolArray([]bool{true, false}, nil))
	err = w.Write(rec)
	if err == nil || !strings.Contains(err.Error(), `column "s": parquet writer: `) {
		t.Errorf("Write of a corrupt String column: %v, want an error naming column \"s\"", err)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after a failed Write succeeded")
	}
	if left := dirEntries(t, dir); len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}
