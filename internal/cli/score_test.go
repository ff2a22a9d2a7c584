package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact/s3test"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// TestScoreCommand scores a directory of files with `kiln score` into one
// file and into a directory of parts (--json summary, plain progress lines
// on a non-terminal stderr), and checks usage errors.
func TestScoreCommand(t *testing.T) {
	dir := t.TempDir()
	inputs := []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "b", Type: dataset.Float64}}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Name: "toy", Task: model.TaskBinary, Target: "y", Output: model.OutputProbability,
		Inputs: inputs, Transforms: &transform.Fitted{Inputs: inputs, Features: []string{"a", "b"}},
		Estimator: model.Estimator{Type: model.EstimatorLogistic, File: "model.json"},
	}
	bundle := filepath.Join(dir, "bundle")
	if err := model.WriteBundle(bundle, man, map[string][]byte{"model.json": []byte(`{"type":"logistic","features":["a","b"],"weights":[1,-1],"intercept":0}`)}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	s := dataset.Schema{Fields: append([]dataset.Field{{Name: "id", Type: dataset.Int64}}, inputs...)}
	for f, name := range []string{"1.parquet", "2.parquet"} {
		w, err := dataset.CreateParquet(filepath.Join(in, name), s, dataset.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cols := []arrow.Array{dataset.Int64Array([]int64{int64(f * 3), int64(f*3 + 1), int64(f*3 + 2)}, nil),
			dataset.Float64Array([]float64{1, 2, 3}), dataset.Float64Array([]float64{0, 1, 5})}
		rec, err := dataset.NewRecord(s, cols)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, out := range []string{filepath.Join(dir, "out.parquet"), filepath.Join(dir, "out")} {
		r := kiln(t, "score", bundle, in, out, "--passthrough", "id", "--json")
		if r.err != nil {
			t.Fatalf("kiln score → %s: %v\n%s", out, r.err, r.stderr)
		}
		var sum struct {
			Rows   int64  `json:"rows"`
			Model  string `json:"model"`
			Single bool   `json:"single_file"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatalf("--json output %q: %v", r.stdout, err)
		}
		if sum.Rows != 6 || sum.Model != "toy" || sum.Single != strings.HasSuffix(out, ".parquet") {
			t.Errorf("summary %+v", sum)
		}
		if !strings.Contains(r.stderr, "scored 6/6 rows") {
			t.Errorf("no plain progress line on stderr: %q", r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "_SUCCESS")); err != nil {
		t.Errorf("directory output has no _SUCCESS: %v", err)
	}
	for _, args := range [][]string{
		{"score", bundle, in},
		{"score", "not a ref!", in, filepath.Join(dir, "x.parquet")},
		{"score", bundle, filepath.Join(dir, "nothing-*.parquet"), filepath.Join(dir, "x.parquet")},
	} {
		if r := kiln(t, args...); r.exitCode() != 2 {
			t.Errorf("kiln %v: exit %d (%v), want 2", args, r.exitCode(), r.err)
		}
	}
	// CSV and JSON Lines inputs are read as ingest reads them, and a
	// file:// URI (as kiln models lineage prints datasets) as its path.
	csvIn := filepath.Join(dir, "rows.csv")
	jsonlIn := filepath.Join(dir, "rows.jsonl")
	os.WriteFile(csvIn, []byte("id,a,b\n0,1,0\n1,2,1\n2,3,5\n"), 0o644)
	os.WriteFile(jsonlIn, []byte(`{"id":0,"a":1.0,"b":0}`+"\n"+`{"id":1,"a":2,"b":1.5}`+"\n"), 0o644)
	for _, tt := range []struct {
		input string
		rows  int64
	}{{csvIn, 3}, {"file://" + csvIn, 3}, {jsonlIn, 2}} {
		out := filepath.Join(t.TempDir(), "scored.parquet")
		r := kiln(t, "score", bundle, tt.input, out, "--passthrough", "id", "--json")
		var sum struct {
			Rows int64 `json:"rows"`
		}
		if r.err != nil || json.Unmarshal([]byte(r.stdout), &sum) != nil || sum.Rows != tt.rows {
			t.Errorf("kiln score %s: %v, %q (%s)", tt.input, r.err, r.stdout, r.stderr)
		}
	}
	if r := kiln(t, "score", bundle, filepath.Join(dir, "missing.csv"), filepath.Join(dir, "z.parquet")); r.exitCode() != 2 {
		t.Errorf("a missing CSV input: exit %d (%v), want 2", r.exitCode(), r.err)
	}
	r := kiln(t, "score", bundle, filepath.Join(in, "1.parquet"), filepath.Join(dir, "y.parquet"), "--passthrough", "nope")
	if r.err == nil || !strings.Contains(r.err.Error(), `"nope"`) {
		t.Errorf("unknown passthrough column: %v", r.err)
	}

	// The same files from an S3 prefix: fetched into the home's object
	// cache, then scored the same.
	srv := s3test.Start(t, "lake")
	for _, name := range []string{"1.parquet", "2.parquet"} {
		data, err := os.ReadFile(filepath.Join(in, name))
		if err != nil {
			t.Fatal(err)
		}
		srv.Put(t, "lake", "in/"+name, data)
	}
	home := t.TempDir()
	r = kiln(t, "--home", home, "score", bundle, srv.URL("lake", "in/"), filepath.Join(dir, "s3.parquet"), "--passthrough", "id", "--json")
	if r.err != nil {
		t.Fatalf("kiln score from S3: %v\n%s", r.err, r.stderr)
	}
	var sum struct {
		Rows   int64 `json:"rows"`
		Inputs int   `json:"input_files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Rows != 6 || sum.Inputs != 2 {
		t.Fatalf("summary %q (%v); want 6 rows from 2 files", r.stdout, err)
	}
	if !strings.Contains(r.stderr, "2 object(s)") {
		t.Errorf("stderr %q does not report the fetch", r.stderr)
	}
	cached, _ := filepath.Glob(filepath.Join(home, "artifacts", "cache", "objects", "*", "*.parquet"))
	if len(cached) != 2 {
		t.Errorf("object cache holds %v, want the 2 objects", cached)
	}
	if r := kiln(t, "score", bundle, srv.URL("lake", "none/"), filepath.Join(dir, "z.parquet")); r.exitCode() != 2 || !strings.Contains(r.err.Error(), "no .parquet object") {
		t.Errorf("empty prefix: exit %d (%v), want 2 naming the prefix", r.exitCode(), r.err)
	}
}
