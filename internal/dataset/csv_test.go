package dataset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/demodata"
)

func TestCSVToParquetRoundTrip(t *testing.T) {
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "basic.parquet")
	info, err := CSVToParquet(ctx, "testdata/basic.csv", dst, CSVOptions{BatchRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	wantSchema := Schema{Fields: []Field{
		{Name: "id", Type: Int64}, {Name: "score", Type: Float64}, {Name: "name", Type: String}, {Name: "active", Type: Bool},
		{Name: "empty", Type: Float64}, {Name: "mixed", Type: Float64}, {Name: "count", Type: Int64},
	}}
	if !reflect.DeepEqual(info.Schema, wantSchema) {
		t.Errorf("schema = %+v, want %+v", info.Schema, wantSchema)
	}
	if info.Rows != 5 || info.RowGroups != 3 {
		t.Errorf("rows, row groups = %d, %d, want 5, 3", info.Rows, info.RowGroups)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes != st.Size() {
		t.Errorf("Info.Bytes = %d, file has %d", info.Bytes, st.Size())
	}
	if h, err := HashFile(dst); err != nil || h != info.SHA256 {
		t.Errorf("HashFile = %s, %v; Info.SHA256 = %s", h, err, info.SHA256)
	}

	r, err := OpenParquet(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !reflect.DeepEqual(r.Schema(), wantSchema) {
		t.Errorf("reader schema = %+v, want %+v", r.Schema(), wantSchema)
	}
	if r.NumRows() != 5 || r.NumRowGroups() != 3 || r.RowGroupRows(2) != 1 {
		t.Errorf("NumRows %d, NumRowGroups %d, RowGroupRows(2) %d", r.NumRows(), r.NumRowGroups(), r.RowGroupRows(2))
	}
	rec, err := r.ReadAll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	inf := math.Inf(1)
	want := map[string][]any{
		"id":     {int64(1), int64(2), int64(3), int64(4), int64(5)},
		"score":  {0.5, nil, -125.0, 3.0, inf},
		"name":   {"alice", "bob, jr.", nil, nil, `say "hi"`},
		"active": {true, false, true, nil, false},
		"empty":  {nil, nil, nil, nil, nil},
		"mixed":  {1.0, 2.5, 3.0, nil, -inf},
		"count":  {int64(10), nil, int64(-7), int64(0), int64(math.MaxInt64)},
	}
	for name, w := range want {
		if got := values(t, columnByName(t, rec, name)); !equalValues(got, w) {
			t.Errorf("column %s = %v, want %v", name, got, w)
		}
	}
}

func TestInferCSVTypes(t *testing.T) {
	tests := []struct {
		name   string
		column string // values, one per line, "" for an empty field
		want   Type
	}{
		{"ints", "1\n-2\n+3\n007", Int64},
		{"ints and floats", "1\n2.5\n3", Float64},
		{"floats", "1e3\n.5\n-0.25", Float64},
		{"infinities", "Inf\n-Inf\n1", Float64},
		{"int overflow is float", "1\n99999999999999999999", Float64},
		{"bools any case", "true\nFALSE\nTrue", Bool},
		{"zero one is int", "0\n1\n1", Int64},
		{"bools and ints", "true\n1", String},
		{"strings", "a\n1", String},
		{"all null", "NA\n\nnull\n?\nNaN", Float64},
		{"nulls ignored", "NA\n5\nNone", Int64},
		{"spaces trimmed", " 12 \n 3", Int64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sb strings.Builder
			sb.WriteString("x,pad\n")
			for _, v := range strings.Split(tc.column, "\n") {
				sb.WriteString(v + ",p\n")
			}
			src := writeFile(t, "in.csv", sb.String())
			info, err := CSVToParquet(context.Background(), src, src+".parquet", CSVOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Schema.Fields[0].Type; got != tc.want {
				t.Errorf("inferred %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCSVOverrides(t *testing.T) {
	ctx := context.Background()
	src := writeFile(t, "in.csv", "a,b,c,d\n1,1,x,1\n2,0,y,2\n")
	dst := src + ".parquet"
	info, err := CSVToParquet(ctx, src, dst, CSVOptions{Types: map[string]Type{"a": Float64, "b": Bool, "d": String}})
	if err != nil {
		t.Fatal(err)
	}
	want := Schema{Fields: []Field{{Name: "a", Type: Float64}, {Name: "b", Type: Bool}, {Name: "c", Type: String}, {Name: "d", Type: String}}}
	if !reflect.DeepEqual(info.Schema, want) {
		t.Fatalf("schema = %+v, want %+v", info.Schema, want)
	}
	r, err := OpenParquet(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(ctx, []string{"b", "d"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := values(t, rec.Column(0)); !equalValues(got, []any{true, false}) {
		t.Errorf("b = %v", got)
	}
	if got := values(t, rec.Column(1)); !equalValues(got, []any{"1", "2"}) {
		t.Errorf("d = %v", got)
	}
}

func TestCSVHeaderNames(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string
	}{
		{"plain", "a,b\n", []string{"a", "b"}},
		{"spaces trimmed", " a ,\tb\n", []string{"a", "b"}},
		{"byte order mark", "\ufeffa,b\n", []string{"a", "b"}},
		{"quoted", "\"a,1\",\"b\"\n", []string{"a,1", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := writeFile(t, "in.csv", tc.header+"1,2\n")
			info, err := CSVToParquet(context.Background(), src, src+".parquet", CSVOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Schema.Names(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCSVDelimiter(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out.parquet")
	info, err := CSVToParquet(context.Background(), "testdata/semicolon.csv", dst, CSVOptions{Delimiter: ';'})
	if err != nil {
		t.Fatal(err)
	}
	want := Schema{Fields: []Field{{Name: "a", Type: Int64}, {Name: "b", Type: String}}}
	if !reflect.DeepEqual(info.Schema, want) || info.Rows != 2 {
		t.Errorf("schema %+v rows %d", info.Schema, info.Rows)
	}
}

func TestCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		opts CSVOptions
		want string
	}{
		{"ragged row", "testdata/ragged.csv", CSVOptions{}, "testdata/ragged.csv:3: expected 3 fields, found 2"},
		{"duplicate header", "testdata/dup_header.csv", CSVOptions{}, `testdata/dup_header.csv:1: duplicate column name "a" (columns 1 and 3)`},
		{"empty column name", "testdata/empty_name.csv", CSVOptions{}, "testdata/empty_name.csv:1: column 2 has an empty name"},
		{"empty file", "testdata/empty.csv", CSVOptions{}, "testdata/empty.csv: empty file"},
		{"header only", "testdata/header_only.csv", CSVOptions{}, "testdata/header_only.csv: no data rows"},
		{"bad override", "testdata/bad_int.csv", CSVOptions{Types: map[string]Type{"tenure": Int64}},
			`testdata/bad_int.csv:4: column tenure: "abc" is not an int64 (type overridden)`},
		{"bad float override", "testdata/bad_int.csv", CSVOptions{Types: map[string]Type{"customer_id": Float64}},
			`testdata/bad_int.csv:2: column customer_id: "C1" is not a float64 (type overridden)`},
		{"override unknown column", "testdata/bad_int.csv", CSVOptions{Types: map[string]Type{"nope": Int64}},
			`testdata/bad_int.csv: type override for unknown column "nope"`},
		{"override invalid type", "testdata/bad_int.csv", CSVOptions{Types: map[string]Type{"tenure": "decimal"}},
			`invalid type override "decimal"`},
		{"bad quote", "testdata/bad_quote.csv", CSVOptions{}, "testdata/bad_quote.csv:2:17: extraneous or missing \" in quoted-field"},
		{"missing file", "testdata/nope.csv", CSVOptions{}, "reading testdata/nope.csv"},
		{"negative batch", "testdata/basic.csv", CSVOptions{BatchRows: -1}, "negative BatchRows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := CSVToParquet(context.Background(), tc.src, filepath.Join(dir, "out.parquet"), tc.opts)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if left := dirEntries(t, dir); len(left) != 0 {
				t.Errorf("files left behind: %v", left)
			}
		})
	}
}

func TestCSVCancelled(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("a\n")
	for range 3 * ctxCheckRows {
		sb.WriteString("1\n")
	}
	src := writeFile(t, "in.csv", sb.String())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := CSVToParquet(ctx, src, src+".parquet", CSVOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if _, err := os.Stat(src + ".parquet"); !os.IsNotExist(err) {
		t.Errorf("output exists after cancellation: %v", err)
	}
}

func TestCSVToParquetDeterministic(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("id,x,cat,flag\n")
	for i := range 5000 {
		sb.WriteString(strings.Join([]string{
			itoa(i), ftoa(float64(i) * 0.37), []string{"a", "b", "c", ""}[i%4], []string{"true", "false"}[i%2],
		}, ",") + "\n")
	}
	src := writeFile(t, "in.csv", sb.String())
	var hashes []string
	for i := range 3 {
		dst := filepath.Join(t.TempDir(), "out"+itoa(i)+".parquet")
		info, err := CSVToParquet(context.Background(), src, dst, CSVOptions{BatchRows: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if info.RowGroups != 5 {
			t.Errorf("row groups = %d, want 5", info.RowGroups)
		}
		hashes = append(hashes, info.SHA256)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("hashes differ: %v", hashes)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func BenchmarkCSVToParquet(b *testing.B) {
	const rows = 200_000
	src := filepath.Join(b.TempDir(), "churn.csv")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := demodata.WriteChurnCSV(f, demodata.ChurnOptions{Rows: rows, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	dst := src + ".parquet"
	b.ResetTimer()
	for range b.N {
		if _, err := CSVToParquet(context.Background(), src, dst, CSVOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestCSVStringOverflow checks that a batch of more text than Arrow's 32-bit
// offsets address is an error naming the file, line and column, not a panic.
// The limit is lowered so the test need not allocate 2 GiB.
func TestCSVStringOverflow(t *testing.T) {
	defer func(old int) { maxStringData = old }(maxStringData)
	maxStringData = 10
	// Column s holds 4 bytes per row: the third row of a batch passes 10.
	src := writeFile(t, "in.csv", "n,s\n1,abcd\n2,efgh\n3,ijkl\n4,mnop\n")
	tests := []struct {
		batch int
		want  string // "" for success
	}{
		{2, ""},
		{3, src + ":4: column s: more than 2 GiB of text in one batch of 3 rows; lower BatchRows"},
		{0, src + ":4: column s: more than 2 GiB of text in one batch of 65536 rows; lower BatchRows"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("batch=", tc.batch), func(t *testing.T) {
			dir := t.TempDir()
			_, err := CSVToParquet(context.Background(), src, filepath.Join(dir, "out.parquet"), CSVOptions{BatchRows: tc.batch})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("error %v, want %q", err, tc.want)
			case tc.want != "":
				if left := dirEntries(t, dir); len(left) != 0 {
					t.Errorf("files left behind: %v", left)
				}
			}
		})
	}
}
