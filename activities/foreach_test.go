package activities_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// writeGroups writes a one-column Parquet file with one row group per size.
func writeGroups(t *testing.T, path string, sizes ...int) {
	t.Helper()
	schema := dataset.Schema{Fields: []dataset.Field{{Name: "x", Type: dataset.Float64}}}
	groups := make([][]arrow.Array, len(sizes))
	for i, n := range sizes {
		col := dataset.Float64Array(make([]float64, n))
		t.Cleanup(col.Release)
		groups[i] = []arrow.Array{col}
	}
	writeParquet(t, path, schema, groups...)
}

// TestExpandForeach lists foreach items from files and row groups.
func TestExpandForeach(t *testing.T) {
	e := newEnv(t)
	specDir := t.TempDir()
	shards := filepath.Join(specDir, "shards")
	for _, d := range []string{shards, filepath.Join(shards, "d.parquet")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"b.parquet", "a.parquet", "c.csv", "10.parquet"} {
		writeFile(t, filepath.Join(shards, f), []byte(f))
	}
	if err := os.Symlink(filepath.Join(shards, "a.parquet"), filepath.Join(shards, "e.parquet")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(shards, "missing"), filepath.Join(shards, "f.parquet")); err != nil {
		t.Fatal(err)
	}
	dsPath := filepath.Join(t.TempDir(), "ds.parquet")
	writeGroups(t, dsPath, 5, 5, 3)
	ds := &activities.DatasetRef{URI: artifact.FileURI(dsPath)}
	in := func(fe pipelines.Foreach, inputs activities.Artifacts) activities.ExpandForeachInput {
		return activities.ExpandForeachInput{Run: activities.RunInfo{WorkflowID: "pipeline/p/r", SpecDir: specDir}, Step: "fan", Foreach: fe, Inputs: inputs}
	}
	abs := func(names ...string) []string {
		out := []string{}
		for _, n := range names {
			out = append(out, filepath.Join(shards, n))
		}
		return out
	}
	tests := []struct {
		name string
		in   activities.ExpandForeachInput
		want []string
		err  []string
	}{
		// Regular files only (d.parquet is a directory, f.parquet a
		// dangling link), in lexical order.
		{name: "relative glob", in: in(pipelines.Foreach{Files: "shards/*.parquet"}, activities.Artifacts{}), want: abs("10.parquet", "a.parquet", "b.parquet", "e.parquet")},
		{name: "absolute glob", in: in(pipelines.Foreach{Files: filepath.Join(shards, "?.csv")}, activities.Artifacts{}), want: abs("c.csv")},
		{name: "no match", in: in(pipelines.Foreach{Files: "shards/*.json"}, activities.Artifacts{}), want: []string{}},
		{name: "no directory", in: in(pipelines.Foreach{Files: "nowhere/*"}, activities.Artifacts{}), want: []string{}},
		{name: "bad pattern", in: in(pipelines.Foreach{Files: "shards/[a-"}, activities.Artifacts{}), err: []string{`step "fan"`, "shards/[a-", "syntax error in pattern"}},
		{name: "row groups", in: in(pipelines.Foreach{RowGroups: true}, activities.Artifacts{Dataset: ds}), want: []string{"0", "1", "2"}},
		{name: "row groups without a dataset", in: in(pipelines.Foreach{RowGroups: true}, activities.Artifacts{}), err: []string{`step "fan"`, "needs an ingested dataset"}},
		{name: "literal items", in: in(pipelines.Foreach{Items: []string{"x", "y"}}, activities.Artifacts{}), want: []string{"x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.acts.ExpandForeach(e.ctx, tt.in)
			if tt.err != nil {
				checkAppError(t, err, "InvalidInput", tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Items == nil || !slices.Equal(out.Items, tt.want) {
				t.Errorf("items %q, want %q", out.Items, tt.want)
			}
		})
	}
}

// readItemResults reads a results file written by WriteItemResults.
func readItemResults(t *testing.T, uri string) []activities.ItemResult {
	t.Helper()
	f, err := os.Open(mustPath(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := []activities.ItemResult{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r activities.ItemResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWriteItemResults writes chunks of foreach results and reads them back.
func TestWriteItemResults(t *testing.T) {
	e := newEnv(t)
	run := activities.RunInfo{WorkflowID: "pipeline/p/r1"}
	ok := activities.ItemResult{Item: activities.Item{Index: 0, Value: "a <&> b"}, Output: &activities.StepOutput{
		Summary: "scored", CacheKey: "k0", Cached: true,
		Artifacts: activities.Artifacts{Scored: &activities.ScoredRef{URI: "file:///s/0.parquet", Rows: 3, SHA256: "abc"}},
	}}
	failed := activities.ItemResult{Item: activities.Item{Index: 1, Value: "b"}, Error: "row group 1 out of range"}
	tests := []struct {
		name    string
		chunk   int
		results []activities.ItemResult
		err     string
	}{
		{name: "chunk 0", chunk: 0, results: []activities.ItemResult{ok, failed}},
		{name: "chunk 1", chunk: 1, results: []activities.ItemResult{failed}},
		{name: "chunk 0 rewritten by a retry", chunk: 0, results: []activities.ItemResult{failed, ok}},
		{name: "empty chunk", chunk: 2, results: nil},
		{name: "negative chunk", chunk: -1, err: "chunk >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.acts.WriteItemResults(e.ctx, activities.WriteItemResultsInput{Run: run, Step: "fan", Chunk: tt.chunk, Results: tt.results})
			if tt.err != "" {
				checkAppError(t, err, "InvalidInput", tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := e.store.URI("foreach/pipeline_p_r1/fan/" + string(rune('0'+tt.chunk)) + ".jsonl")
			if out.URI != want {
				t.Errorf("URI %s, want %s", out.URI, want)
			}
			got := readItemResults(t, out.URI)
			if len(got) != len(tt.results) || !sameJSON(t, got, append([]activities.ItemResult{}, tt.results...)) {
				t.Errorf("read back %+v, want %+v", got, tt.results)
			}
		})
	}
	// Only the results files are left: no temporary files.
	if files := listFiles(t, e.store.LocalPath("foreach/pipeline_p_r1/fan")); !slices.Equal(files, []string{"0.jsonl", "1.jsonl", "2.jsonl"}) {
		t.Errorf("results directory holds %v", files)
	}
}

// TestNoop checks the noop step's summary and that a cancellation ends its
// sleep.
func TestNoop(t *testing.T) {
	e := newEnv(t)
	noop := func(sleep time.Duration) pipelines.Step {
		return pipelines.Step{Name: "wait", Uses: pipelines.StepNoop, Noop: &pipelines.NoopConfig{Sleep: pipelines.Duration(sleep)}}
	}
	tests := []struct {
		name    string
		in      activities.StepInput
		cancel  time.Duration
		summary string
		err     error
		// min and max bound how long the step takes.
		min, max time.Duration
	}{
		{name: "no config", in: activities.StepInput{Step: pipelines.Step{Name: "n", Uses: pipelines.StepNoop}}, summary: "nothing done", max: time.Second},
		{name: "sleep", in: activities.StepInput{Step: noop(50 * time.Millisecond)}, summary: "slept 50ms", min: 50 * time.Millisecond, max: 5 * time.Second},
		{name: "item", in: activities.StepInput{Step: noop(0), Item: &activities.Item{Index: 3, Value: "shard-3"}}, summary: "nothing done (item 3: shard-3)", max: time.Second},
		{name: "canceled", in: activities.StepInput{Step: noop(30 * time.Second)}, cancel: 20 * time.Millisecond, err: context.Canceled, max: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			out, err := e.acts.Noop(ctx, tt.in)
			took := time.Since(start)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Errorf("error %v, want %v", err, tt.err)
				}
			} else if err != nil || out.Summary != tt.summary || out.CacheKey != "" {
				t.Errorf("Noop = %+v, %v; want summary %q and no cache key", out, err, tt.summary)
			}
			if took < tt.min || took > tt.max {
				t.Errorf("took %s, want between %s and %s", took, tt.min, tt.max)
			}
		})
	}
}

// TestScoreRowGroups scores some row groups of a three-row-group file, with
// ScoreFile and with the score step (as a foreach item, whose default output
// is per item).
func TestScoreRowGroups(t *testing.T) {
	e := newEnv(t)
	c := trainBreastCancer(t, e, "rowgroups")
	mref := c.must(step(t, loadSpec(t, "breast_cancer.yaml"), "register")).Artifacts.Model
	m, err := loadModel(mref.BundleURI)
	if err != nil {
		t.Fatal(err)
	}
	raw := readParquet(t, c.acc.Dataset.URI)
	schema, err := dataset.SchemaFromArrow(raw.Schema())
	if err != nil {
		t.Fatal(err)
	}
	// The raw rows in three row groups: 0-199, 200-399, 400-568.
	bounds := [][2]int{{0, 200}, {200, 400}, {400, int(raw.NumRows())}}
	var groups [][]arrow.Array
	for _, b := range bounds {
		idx := make([]int, 0, b[1]-b[0])
		for i := b[0]; i < b[1]; i++ {
			idx = append(idx, i)
		}
		rec, err := dataset.Take(raw, idx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Release)
		groups = append(groups, rec.Columns())
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	writeParquet(t, in, schema, groups...)
	radius := floats(t, raw, "mean_radius")

	tests := []struct {
		name      string
		rowGroups string
		// lo and hi are the raw rows scored.
		lo, hi int
		err    []string
	}{
		{name: "all", rowGroups: "", lo: 0, hi: 569},
		{name: "one", rowGroups: "1", lo: 200, hi: 400},
		{name: "range", rowGroups: "1-2", lo: 200, hi: 569},
		{name: "single range", rowGroups: "0-0", lo: 0, hi: 200},
		{name: "out of range", rowGroups: "3", err: []string{"in.parquet", `row_groups "3" is out of range`, "has 3 row groups (0-2)"}},
		{name: "range out of range", rowGroups: "2-5", err: []string{"in.parquet", "has 3 row groups"}},
		{name: "reversed range", rowGroups: "2-1", err: []string{"in.parquet", `row_groups "2-1"`, "N-M"}},
		{name: "not a number", rowGroups: "first", err: []string{`row_groups "first"`}},
		{name: "negative", rowGroups: "-1", err: []string{`row_groups "-1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".parquet")
			var last [2]int64
			info, err := scorer.File(e.ctx, m, mref.Name, mref.Version, in, out, scorer.FileOptions{
				Passthrough: []string{"mean_radius"}, RowGroups: tt.rowGroups,
				Progress: func(done, total int64) { last = [2]int64{done, total} },
			})
			if tt.err != nil {
				checkBadInput(t, err, tt.err...)
				if _, err := os.Stat(out); err == nil {
					t.Errorf("a failed scoring wrote %s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := int64(tt.hi - tt.lo)
			if info.Rows != n || last != [2]int64{n, n} || info.SHA256 != hashURI(t, out) {
				t.Errorf("scored %d rows (progress %v, sha256 %s); want %d rows and the file's hash", info.Rows, last, info.SHA256, n)
			}
			if got := floats(t, readParquet(t, out), "mean_radius"); !slices.Equal(got, radius[tt.lo:tt.hi]) {
				t.Errorf("scored rows are not raw rows %d-%d", tt.lo, tt.hi-1)
			}
		})
	}

	// As a foreach item without an output, the score step writes one file
	// per item; a row group out of range fails the item.
	spec := loadSpec(t, "breast_cancer.yaml")
	items := []struct {
		item    activities.Item
		rows    int64
		wantErr bool
	}{
		{item: activities.Item{Index: 0, Value: "0"}, rows: 200},
		{item: activities.Item{Index: 2, Value: "2"}, rows: 169},
		{item: activities.Item{Index: 3, Value: "3"}, wantErr: true},
	}
	for _, it := range items {
		t.Run("item "+it.item.Value, func(t *testing.T) {
			st := step(t, spec, "score")
			st.Score.Input, st.Score.RowGroups = in, it.item.Value
			item := it.item
			out, err := e.acts.Score(e.ctx, activities.StepInput{Run: c.run, Step: st, Inputs: c.acc, Item: &item})
			if it.wantErr {
				checkAppError(t, err, "InvalidInput", "in.parquet", "3 row groups")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := e.store.URI("scores/pipeline_breast-cancer_rowgroups/score/" + string(rune('0'+item.Index)) + ".parquet")
			if out.Artifacts.Scored.URI != want || out.Artifacts.Scored.Rows != it.rows {
				t.Errorf("scored %d rows into %s, want %d into %s", out.Artifacts.Scored.Rows, out.Artifacts.Scored.URI, it.rows, want)
			}
		})
	}
}
