package activities_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// smallCSV is a valid two-feature binary data set of 20 rows; the tests edit
// it into bad ones.
func smallCSV() string {
	var b strings.Builder
	b.WriteString("a,b,y\n")
	for i := range 20 {
		fmt.Fprintf(&b, "%d.5,%d,%d\n", i, (i*7)%5, i%2)
	}
	return b.String()
}

// ingestStep is an ingest step reading source.
func ingestStep(source string, minRows int64) pipelines.Step {
	return pipelines.Step{Name: "ingest", Uses: pipelines.StepIngest, Ingest: &pipelines.IngestConfig{
		Source: source, Expect: pipelines.Expectations{MinRows: minRows},
	}}
}

// prepStep is a preprocess step standardising every numeric feature.
func prepStep(target string) pipelines.Step {
	return pipelines.Step{Name: "prep", Uses: pipelines.StepPreprocess, Preprocess: &pipelines.PreprocessConfig{
		Target: target, Task: "binary",
		Split:      pipelines.Split{Test: 0.3, Valid: 0.1, Seed: 1},
		Transforms: []pipelines.Transform{{Kind: "standardize", Columns: []string{"*"}}},
	}}
}

// TestInvalidInput feeds each step bad input and checks that it fails with a
// non-retryable InvalidInput error naming the file, column or row, and that
// nothing was left in the artifact store.
func TestInvalidInput(t *testing.T) {
	spec := loadSpec(t, "breast_cancer.yaml")
	// ingestCSV writes text as name and returns a chain that ingested it.
	ingestCSV := func(t *testing.T, e *env, name, text string) *chain {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c := e.chain(runInfo(spec, "invalid"))
		c.must(ingestStep(path, 0))
		return c
	}
	// scoreWith trains and registers the breast cancer model, then returns
	// the call of a score step with cfg.
	scoreWith := func(t *testing.T, e *env, cfg pipelines.ScoreConfig) func() error {
		t.Helper()
		c := trainBreastCancer(t, e, "invalid")
		c.must(step(t, spec, "register"))
		st := step(t, spec, "score")
		st.Score = &cfg
		return func() error { _, err := c.try(st); return err }
	}

	tests := []struct {
		name string
		// setup prepares the test and returns the failing call.
		setup func(t *testing.T, e *env) func() error
		want  []string
	}{
		{
			name: "missing source file",
			setup: func(t *testing.T, e *env) func() error {
				src := filepath.Join(t.TempDir(), "nope.csv")
				return func() error { _, err := e.chain(runInfo(spec, "invalid")).try(ingestStep(src, 0)); return err }
			},
			want: []string{"nope.csv", "no such file"},
		},
		{
			name: "ragged CSV row",
			setup: func(t *testing.T, e *env) func() error {
				src := filepath.Join(t.TempDir(), "ragged.csv")
				text := strings.Replace(smallCSV(), "\n2.5,4,0\n", "\n2.5,4\n", 1)
				if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return func() error { _, err := e.chain(runInfo(spec, "invalid")).try(ingestStep(src, 0)); return err }
			},
			want: []string{"ragged.csv:4", "expected 3 fields, found 2"},
		},
		{
			name: "min_rows expectation",
			setup: func(t *testing.T, e *env) func() error {
				src := filepath.Join(t.TempDir(), "small.csv")
				if err := os.WriteFile(src, []byte(smallCSV()), 0o644); err != nil {
					t.Fatal(err)
				}
				return func() error { _, err := e.chain(runInfo(spec, "invalid")).try(ingestStep(src, 500)); return err }
			},
			want: []string{"small.csv", "has 20 rows, expected at least 500"},
		},
		{
			name: "target column missing",
			setup: func(t *testing.T, e *env) func() error {
				c := ingestCSV(t, e, "data.csv", smallCSV())
				return func() error { _, err := c.try(prepStep("label")); return err }
			},
			want: []string{`target column "label"`, "[a b y]"},
		},
		{
			name: "non-binary target",
			setup: func(t *testing.T, e *env) func() error {
				c := ingestCSV(t, e, "data.csv", strings.Replace(smallCSV(), "\n2.5,4,0\n", "\n2.5,4,2\n", 1))
				return func() error { _, err := c.try(prepStep("y")); return err }
			},
			want: []string{`target "y" has value 2 in row 3`},
		},
		{
			name: "string column not one-hot encoded",
			setup: func(t *testing.T, e *env) func() error {
				text := strings.Replace(smallCSV(), "a,b,y", "a,color,y", 1)
				text = strings.Replace(text, "\n2.5,4,0\n", "\n2.5,red,0\n", 1)
				c := ingestCSV(t, e, "data.csv", text)
				return func() error { _, err := c.try(prepStep("y")); return err }
			},
			want: []string{"column color is a string", "onehot"},
		},
		{
			name: "infinite feature value",
			setup: func(t *testing.T, e *env) func() error {
				c := ingestCSV(t, e, "data.csv", strings.Replace(smallCSV(), "\n3.5,", "\n-Inf,", 1))
				return func() error { _, err := c.try(prepStep("y")); return err }
			},
			want: []string{`column "a" has an infinite value in row 4`},
		},
		{
			name: "score passthrough column missing",
			setup: func(t *testing.T, e *env) func() error {
				return scoreWith(t, e, pipelines.ScoreConfig{Passthrough: []string{"patient_id"}})
			},
			want: []string{`passthrough column "patient_id" not found`},
		},
		{
			name: "score input lacks a model input",
			setup: func(t *testing.T, e *env) func() error {
				in := filepath.Join(t.TempDir(), "no-radius.parquet")
				writeWithout(t, filepath.Join(repoRoot, "data", "breast_cancer.csv"), in, "mean_radius")
				return scoreWith(t, e, pipelines.ScoreConfig{Input: in})
			},
			want: []string{"no-radius.parquet", `needs column "mean_radius"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			call := tt.setup(t, e)
			// A failed expectation publishes its report, by design.
			files := func() []string {
				return slices.DeleteFunc(regularFiles(t, e.store.Root()), func(f string) bool { return strings.HasPrefix(f, "reports/expectations/") })
			}
			before := files()
			err := call()
			checkAppError(t, err, "InvalidInput", tt.want...)
			if after := files(); !slices.Equal(after, before) {
				t.Errorf("the failed step changed the artifact store:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// trainBreastCancer runs the breast cancer pipeline up to evaluate.
func trainBreastCancer(t *testing.T, e *env, run string) *chain {
	t.Helper()
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, run))
	c.must(step(t, spec, "ingest"))
	c.must(step(t, spec, "prep"))
	c.must(processTrain(t, spec, "train"))
	c.must(step(t, spec, "evaluate"))
	return c
}

// writeWithout converts the CSV src to the Parquet file dst without column drop.
func writeWithout(t *testing.T, src, dst, drop string) {
	t.Helper()
	full := filepath.Join(t.TempDir(), "full.parquet")
	if _, err := dataset.CSVToParquet(t.Context(), src, full, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := readParquet(t, full)
	var fields []dataset.Field
	var cols []arrow.Array
	for i, f := range rec.Schema().Fields() {
		if f.Name == drop {
			continue
		}
		typ := dataset.Float64
		if f.Type.ID() == arrow.INT64 {
			typ = dataset.Int64
		}
		fields = append(fields, dataset.Field{Name: f.Name, Type: typ})
		cols = append(cols, rec.Column(i))
	}
	writeParquet(t, dst, dataset.Schema{Fields: fields}, cols)
}

// writeParquet writes one row group with the given columns.
func writeParquet(t *testing.T, path string, schema dataset.Schema, groups ...[]arrow.Array) {
	t.Helper()
	w, err := dataset.CreateParquet(path, schema, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, cols := range groups {
		rec, err := dataset.NewRecord(schema, cols)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// regularFiles lists the regular files under root (empty directories a failed
// step may leave behind are not artifacts).
func regularFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, f := range listFiles(t, root) {
		if fi, err := os.Stat(filepath.Join(root, f)); err == nil && fi.Mode().IsRegular() {
			out = append(out, f)
		}
	}
	return out
}
