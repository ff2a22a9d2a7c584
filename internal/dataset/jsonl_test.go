package dataset

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestJSONLToParquet(t *testing.T) {
	src := writeFile(t, "in.jsonl", `{"id": 1, "name": "a\"b", "x": 1.5, "ok": true}

{"id": 2, "x": 2, "ok": false, "late": "new"}
{"name": "", "id": -3, "x": null, "ok": null}
`)
	dst := filepath.Join(t.TempDir(), "out.parquet")
	info, err := JSONLToParquet(context.Background(), src, dst, JSONLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := Schema{Fields: []Field{{Name: "id", Type: Int64}, {Name: "name", Type: String}, {Name: "x", Type: Float64}, {Name: "ok", Type: Bool}, {Name: "late", Type: String}}}
	if fmt.Sprint(info.Schema) != fmt.Sprint(want) || info.Rows != 3 {
		t.Fatalf("schema %v, %d rows; want %v, 3 rows", info.Schema, info.Rows, want)
	}
	r, err := OpenParquet(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	for name, w := range map[string][]any{
		"id":   {int64(1), int64(2), int64(-3)},
		"name": {`a"b`, nil, ""},
		"x":    {1.5, 2.0, nil},
		"ok":   {true, false, nil},
		"late": {nil, "new", nil},
	} {
		if got := values(t, columnByName(t, rec, name)); !equalValues(got, w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

func TestJSONLInferenceAndOverrides(t *testing.T) {
	src := writeFile(t, "in.ndjson", `{"a": 1, "b": 1, "c": "x", "d": true, "e": "7", "f": null}
{"a": 2, "b": 2.5, "c": 3, "d": 1, "e": "8", "f": null}
`)
	tests := []struct {
		name  string
		types map[string]Type
		want  string
	}{
		// d mixes a bool and a number: String; f has no values: Float64.
		{"inferred", nil, "a:int64 b:float64 c:string d:string e:string f:float64"},
		{"overridden", map[string]Type{"e": Int64, "a": String, "b": Float64}, "a:string b:float64 c:string d:string e:int64 f:float64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := JSONLToParquet(context.Background(), src, filepath.Join(t.TempDir(), "o.parquet"), JSONLOptions{Types: tc.types})
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, f := range info.Schema.Fields {
				parts = append(parts, f.Name+":"+string(f.Type))
			}
			if got := strings.Join(parts, " "); got != tc.want {
				t.Errorf("schema %s, want %s", got, tc.want)
			}
		})
	}
}

func TestJSONLErrors(t *testing.T) {
	tests := []struct {
		name, content string
		types         map[string]Type
		want          string
	}{
		{"nested object", "{\"a\": 1}\n{\"a\": 2, \"addr\": {\"city\": \"x\"}}\n", nil, `:2: key "addr": nested objects and arrays are not supported`},
		{"array", "{\"tags\": [1, 2]}\n", nil, `:1: key "tags": nested objects and arrays are not supported`},
		{"not an object", "{\"a\": 1}\n[1, 2]\n", nil, `:2: expected a JSON object, found "[1, 2]`},
		{"bad number", "{\"a\": 1.2.3}\n", nil, `:1: key "a": invalid number 1.2.3`},
		{"duplicate key", "{\"a\": 1, \"a\": 2}\n", nil, `:1: duplicate key "a"`},
		{"trailing text", "{\"a\": 1} x\n", nil, `:1: unexpected text after the object`},
		{"unterminated string", "{\"a\": \"x}\n", nil, `:1: key "a": unterminated string`},
		{"bare word", "{\"a\": yes}\n", nil, `:1: key "a": invalid value at column 7`},
		{"empty file", "\n\n", nil, "no JSON objects"},
		{"override int64", "{\"age\": 1}\n{\"age\": 2}\n{\"age\": \"x\"}\n", map[string]Type{"age": Int64}, `:3: column age: value "x" is not an int64 (type overridden)`},
		{"override bool", "{\"f\": 2}\n", map[string]Type{"f": Bool}, `:1: column f: value 2 is not a bool (type overridden)`},
		{"override unknown column", "{\"a\": 1}\n", map[string]Type{"b": Int64}, `type override for unknown column "b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := writeFile(t, "bad.jsonl", tc.content)
			dir := t.TempDir()
			_, err := JSONLToParquet(context.Background(), src, filepath.Join(dir, "o.parquet"), JSONLOptions{Types: tc.types})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.jsonl") {
				t.Errorf("err = %v, want one naming the file and containing %q", err, tc.want)
			}
			if ents := dirEntries(t, dir); len(ents) != 0 {
				t.Errorf("left files behind: %v", ents)
			}
		})
	}
}

func TestCSVOverrideErrorNamesValue(t *testing.T) {
	src := writeFile(t, "o.csv", "id,age\n1,3\n2,x7\n")
	_, err := CSVToParquet(context.Background(), src, filepath.Join(t.TempDir(), "o.parquet"), CSVOptions{Types: map[string]Type{"age": Int64}})
	want := `o.csv:3: column age: "x7" is not an int64 (type overridden)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// gzipFile writes content gzip-compressed to name in a temp dir.
func gzipFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := io.WriteString(zw, content); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestContentAddressAcrossFormats checks that the dataset hash depends on
// the data only: the same table as CSV, gzipped CSV, JSON Lines and gzipped
// JSON Lines gives the same Parquet bytes, and different data does not.
func TestContentAddressAcrossFormats(t *testing.T) {
	var csvText, jsonText strings.Builder
	csvText.WriteString("id,plan,charges,active\n")
	for i := range 3000 {
		plan := []string{"basic", "pro", "team"}[i%3]
		fmt.Fprintf(&csvText, "%d,%s,%s,%t\n", i, plan, ftoa(float64(i)*0.25+0.5), i%2 == 0)
		fmt.Fprintf(&jsonText, `{"id": %d, "plan": %q, "charges": %s, "active": %t}`+"\n", i, plan, ftoa(float64(i)*0.25+0.5), i%2 == 0)
	}
	ctx := context.Background()
	conv := func(src string) string {
		dst := filepath.Join(t.TempDir(), "o.parquet")
		var info Info
		var err error
		if strings.Contains(src, ".jsonl") {
			info, err = JSONLToParquet(ctx, src, dst, JSONLOptions{BatchRows: 1000})
		} else {
			info, err = CSVToParquet(ctx, src, dst, CSVOptions{BatchRows: 1000})
		}
		if err != nil {
			t.Fatal(err)
		}
		return info.SHA256
	}
	ref := conv(writeFile(t, "d.csv", csvText.String()))
	for name, src := range map[string]string{
		"csv.gz":   gzipFile(t, "d.csv.gz", csvText.String()),
		"jsonl":    writeFile(t, "d.jsonl", jsonText.String()),
		"jsonl.gz": gzipFile(t, "d.jsonl.gz", jsonText.String()),
	} {
		if got := conv(src); got != ref {
			t.Errorf("%s: dataset hash %s, want %s (as the CSV)", name, got, ref)
		}
	}
	changed := strings.Replace(csvText.String(), "\n7,", "\n70000,", 1)
	if conv(writeFile(t, "e.csv", changed)) == ref {
		t.Errorf("different data gave the same hash")
	}
}

func TestGzipCorrupt(t *testing.T) {
	p := gzipFile(t, "c.csv.gz", strings.Repeat("a,b\n1,2\n", 1000))
	b, _ := os.ReadFile(p)
	b = b[:len(b)/2]
	os.WriteFile(p, b, 0o644)
	_, err := CSVToParquet(context.Background(), p, filepath.Join(t.TempDir(), "o.parquet"), CSVOptions{})
	if err == nil || !strings.Contains(err.Error(), "c.csv.gz") {
		t.Errorf("err = %v, want one naming the file", err)
	}
}

// writeLarge writes rows rows of a 6-column table as CSV or JSON Lines.
func writeLarge(t testing.TB, path string, rows int, jsonl bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	plans := []string{"basic", "pro", "team", "enterprise"}
	if !jsonl {
		w.WriteString("id,tenure,charges,plan,active,churned\n")
	}
	for i := range rows {
		tenure, charges, plan := i%72, float64(i%9973)*0.01+20, plans[i%4]
		if jsonl {
			fmt.Fprintf(w, `{"id":%d,"tenure":%d,"charges":%g,"plan":"%s","active":%t,"churned":%d}`+"\n", i, tenure, charges, plan, i%3 == 0, i%2)
		} else {
			fmt.Fprintf(w, "%d,%d,%g,%s,%t,%d\n", i, tenure, charges, plan, i%3 == 0, i%2)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// peakHeap runs fn while sampling the live heap every few milliseconds and
// returns the largest sample.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(done)
	return peak.Load()
}

// TestIngestBoundedMemory converts 2 million rows (CSV and JSON Lines) and
// checks that the peak heap stays far below the input size: memory is
// decided by the batch size, not the file.
func TestIngestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and converts 2M-row files; skipped with -short")
	}
	const rows = 2_000_000
	const limit = 256 << 20
	for _, jsonl := range []bool{false, true} {
		name := "large.csv"
		if jsonl {
			name = "large.jsonl"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, name)
			writeLarge(t, src, rows, jsonl)
			st, _ := os.Stat(src)
			var info Info
			var err error
			peak := peakHeap(func() {
				if jsonl {
					info, err = JSONLToParquet(context.Background(), src, filepath.Join(dir, "o.parquet"), JSONLOptions{})
				} else {
					info, err = CSVToParquet(context.Background(), src, filepath.Join(dir, "o.parquet"), CSVOptions{})
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if info.Rows != rows {
				t.Fatalf("%d rows, want %d", info.Rows, rows)
			}
			var rep *Report
			checkPeak := peakHeap(func() {
				rep, err = CheckExpectations(context.Background(), filepath.Join(dir, "o.parquet"), name, Expectations{
					MinRows: rows, NotNull: []string{"id", "plan"}, Allowed: map[string][]string{"plan": {"basic", "pro", "team", "enterprise"}},
					Ranges: map[string]Range{"tenure": {Min: ptr(0), Max: ptr(71)}},
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Passed {
				t.Errorf("expectations failed: %v", rep)
			}
			t.Logf("%s: %d rows, %.0f MiB input: peak heap %.1f MiB converting, %.1f MiB checking expectations",
				name, rows, float64(st.Size())/(1<<20), float64(peak)/(1<<20), float64(checkPeak)/(1<<20))
			if peak > limit || checkPeak > limit {
				t.Errorf("peak heap %d / %d bytes, want at most %d", peak, checkPeak, limit)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func BenchmarkJSONLToParquet(b *testing.B) {
	const rows = 200_000
	src := filepath.Join(b.TempDir(), "churn.jsonl")
	writeLarge(b, src, rows, true)
	dst := src + ".parquet"
	b.ResetTimer()
	for range b.N {
		if _, err := JSONLToParquet(context.Background(), src, dst, JSONLOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVToParquetWide is BenchmarkCSVToParquet on the table of
// BenchmarkJSONLToParquet, so the two formats compare on the same data.
func BenchmarkCSVToParquetWide(b *testing.B) {
	const rows = 200_000
	src := filepath.Join(b.TempDir(), "churn.csv")
	writeLarge(b, src, rows, false)
	dst := src + ".parquet"
	b.ResetTimer()
	for range b.N {
		if _, err := CSVToParquet(context.Background(), src, dst, CSVOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
