package dataset

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fuzzConverted checks one conversion of arbitrary input: it fails with an
// error and leaves no file, or writes a Parquet file that reads back with
// the rows and schema it reported. It must never panic.
func fuzzConverted(t *testing.T, info Info, err error, dst string) {
	t.Helper()
	if err != nil {
		if _, serr := os.Stat(dst); serr == nil {
			t.Fatalf("a failed conversion (%v) left %s", err, dst)
		}
		return
	}
	r, err := OpenParquet(dst)
	if err != nil {
		t.Fatalf("the written file does not open: %v", err)
	}
	defer r.Close()
	if r.NumRows() != info.Rows || len(r.Schema().Fields) != len(info.Schema.Fields) {
		t.Fatalf("file has %d rows and %d columns, the conversion reported %d and %d", r.NumRows(), len(r.Schema().Fields), info.Rows, len(info.Schema.Fields))
	}
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatalf("reading the written file: %v", err)
	}
	rec.Release()
}

// FuzzCSVToParquet converts arbitrary bytes as CSV (ingest's reader).
func FuzzCSVToParquet(f *testing.F) {
	for _, s := range []string{
		"a,b,c\n1,2.5,x\n2,,y\n",
		"id,flag\n1,true\n2,FALSE\n3,NA\n",
		"x\n1e308\n-Inf\nNaN\n",
		"\"q,uoted\",b\n\"a\"\"b\",2\n",
		"a,a\n1,2\n",
		"a,b\n1\n",
		"",
		"a\n" + string([]byte{0xff, 0xfe}) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.parquet")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := CSVToParquet(context.Background(), src, dst, CSVOptions{BatchRows: 3})
		fuzzConverted(t, info, err, dst)
	})
}

// FuzzJSONLToParquet converts arbitrary bytes as JSON Lines.
func FuzzJSONLToParquet(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x"}` + "\n" + `{"a":2.5,"b":null}` + "\n",
		`{"flag":true}` + "\n" + `{"flag":false,"extra":[1,2]}` + "\n",
		`{"n":1e400}` + "\n",
		`[1,2]` + "\n",
		`{"a":1}{"a":2}`,
		"\n\n",
		`{"a":"` + string([]byte{0xff}) + `"}` + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.parquet")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := JSONLToParquet(context.Background(), src, dst, JSONLOptions{BatchRows: 3})
		fuzzConverted(t, info, err, dst)
	})
}
