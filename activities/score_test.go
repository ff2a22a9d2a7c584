package activities_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/serving"
)

// TestScoreFile scores a two-row-group file directly and checks that the
// output appears atomically: a failure in the second row group leaves no
// output (and no temporary file), and an existing output untouched.
func TestScoreFile(t *testing.T) {
	e := newEnv(t)
	c := trainBreastCancer(t, e, "scorefile")
	m, err := loadModel(c.acc.Bundle.URI)
	if err != nil {
		t.Fatal(err)
	}
	raw := readParquet(t, c.acc.Dataset.URI)
	schema, err := dataset.SchemaFromArrow(raw.Schema())
	if err != nil {
		t.Fatal(err)
	}
	// group returns the columns of raw rows lo..hi-1, with mean_radius
	// missing in row nullAt of the group when nullAt >= 0.
	group := func(lo, hi, nullAt int) []arrow.Array {
		idx := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		rec, err := dataset.Take(raw, idx)
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		cols := make([]arrow.Array, rec.NumCols())
		for j := range cols {
			if f := rec.Schema().Field(j); f.Name == "mean_radius" && nullAt >= 0 {
				v := floats(t, rec, f.Name)
				v[nullAt] = math.NaN()
				cols[j] = dataset.Float64ArrayNullNaN(v)
				continue
			}
			cols[j] = rec.Column(j)
			cols[j].Retain()
		}
		t.Cleanup(func() {
			for _, c := range cols {
				c.Release()
			}
		})
		return cols
	}

	tests := []struct {
		name string
		// nullAt is the row of the second group with a missing feature, or -1.
		nullAt int
		// existing is the content of an output file that exists before.
		existing string
		err      []string
	}{
		{name: "two good row groups", nullAt: -1},
		{name: "good, replacing an old output", nullAt: -1, existing: "old"},
		{name: "missing value in the second row group", nullAt: 50, err: []string{"in.parquet, row group 1", `feature "mean_radius" is missing`, "row 50"}},
		{name: "failure keeps the old output", nullAt: 50, existing: "old", err: []string{"row group 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.parquet")
			writeParquet(t, in, schema, group(0, 100, -1), group(100, 200, tt.nullAt))
			outDir := filepath.Join(dir, "out")
			if err := os.Mkdir(outDir, 0o755); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(outDir, "scored.parquet")
			if tt.existing != "" {
				if err := os.WriteFile(out, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var progress [][2]int64
			info, err := scorer.File(e.ctx, m, "breast-cancer", 3, in, out, scorer.FileOptions{
				Passthrough: []string{"malignant"},
				Progress:    func(done, total int64) { progress = append(progress, [2]int64{done, total}) },
			})
			n := info.Rows
			files := listFiles(t, outDir)
			if tt.err != nil {
				checkBadInput(t, err, tt.err...)
				// It failed midway: after the first row group.
				if !slices.Equal(progress, [][2]int64{{100, 200}}) {
					t.Errorf("progress %v, want one call after the first row group", progress)
				}
				if tt.existing == "" {
					if len(files) != 0 {
						t.Errorf("failed scoring left %v", files)
					}
				} else if b, err := os.ReadFile(out); err != nil || string(b) != tt.existing || len(files) != 1 {
					t.Errorf("failed scoring changed the old output: %q, %v; directory %v", b, err, files)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != 200 || !slices.Equal(files, []string{"scored.parquet"}) {
				t.Errorf("scored %d rows into %v, want 200 rows into scored.parquet", n, files)
			}
			rec := readParquet(t, out)
			if rec.NumRows() != 200 || !slices.Equal(floats(t, rec, "malignant"), floats(t, raw, "malignant")[:200]) {
				t.Errorf("output has %d rows; passthrough malignant differs from the input", rec.NumRows())
			}
			for i, v := range floats(t, rec, "model_version") {
				if v != 3 {
					t.Fatalf("row %d: model_version %v, want 3", i, v)
				}
			}
		})
	}
}

// TestCheckDrift writes request logs as the model server does and checks the
// drift report against the churn model's training profile.
func TestCheckDrift(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "churn.yaml")
	c := e.chain(runInfo(spec, "drift"))
	ing := step(t, spec, "ingest")
	ing.Ingest.Source = writeChurn(t, t.TempDir(), "churn.csv", demodata.ChurnOptions{Rows: 3000, Seed: 1})
	c.must(ing)
	c.must(step(t, spec, "prep"))
	c.must(processTrain(t, spec, "train"))
	c.must(step(t, spec, "evaluate"))
	mref := c.must(step(t, spec, "register")).Artifacts.Model
	if _, err := e.reg.SetAlias(e.ctx, registry.AliasMove{Model: "churn", Alias: "production", To: mref.Version}); err != nil {
		t.Fatal(err)
	}
	m, err := loadModel(mref.BundleURI)
	if err != nil {
		t.Fatal(err)
	}

	// served returns request log columns for rows churn customers.
	served := func(t *testing.T, rows int, seed uint64, drift float64) (dataset.Schema, []arrow.Array) {
		t.Helper()
		csv := writeChurn(t, t.TempDir(), "served.csv", demodata.ChurnOptions{Rows: rows, Seed: seed, Drift: drift})
		pq := filepath.Join(t.TempDir(), "served.parquet")
		if _, err := dataset.CSVToParquet(e.ctx, csv, pq, dataset.CSVOptions{}); err != nil {
			t.Fatal(err)
		}
		rec := readParquet(t, pq)
		preds, err := m.Predict(rec)
		if err != nil {
			t.Fatal(err)
		}
		var schema dataset.Schema
		var cols []arrow.Array
		for _, f := range m.Manifest.Inputs {
			j := rec.Schema().FieldIndices(f.Name)
			got, _ := dataset.SchemaFromArrow(arrow.NewSchema([]arrow.Field{rec.Schema().Field(j[0])}, nil))
			if got.Fields[0].Type != f.Type {
				t.Fatalf("served column %s is %s, the model's input %s", f.Name, got.Fields[0].Type, f.Type)
			}
			schema.Fields = append(schema.Fields, f)
			cols = append(cols, rec.Column(j[0]))
		}
		now := time.Now().UnixMilli()
		versions, variants, latency, ts := make([]int64, rows), make([]string, rows), make([]float64, rows), make([]int64, rows)
		ids := make([]string, rows)
		for i := range rows {
			versions[i], variants[i], latency[i], ts[i] = mref.Version, "stable", 1.5, now
			ids[i] = fmt.Sprintf("s%d-%d", seed, i)
		}
		// The log's own columns, by name (serving.LogFields is their order).
		own := map[string]arrow.Array{
			serving.LogPrediction: dataset.Float64Array(preds), serving.LogVersion: dataset.Int64Array(versions, nil),
			serving.LogVariant: dataset.StringArray(variants, nil), serving.LogLatencyMs: dataset.Float64Array(latency),
			serving.LogTimeMs: dataset.Int64Array(ts, nil), serving.LogPredictionID: dataset.StringArray(ids, nil),
		}
		for _, f := range serving.LogFields {
			schema.Fields = append(schema.Fields, f)
			cols = append(cols, own[f.Name])
		}
		return schema, cols
	}
	type batch struct {
		rows  int
		drift float64
		age   time.Duration // how long ago the file was written
	}
	tests := []struct {
		name    string
		batches []batch
		rows    int
		drifted bool
		note    bool
	}{
		{name: "no request logs", rows: 0, note: true},
		{name: "training population", batches: []batch{{rows: 600}, {rows: 600}}, rows: 1200},
		{name: "drifted population", batches: []batch{{rows: 600, drift: 1}, {rows: 600, drift: 1}}, rows: 1200, drifted: true},
		{name: "drifted logs older than the window", batches: []batch{{rows: 600}, {rows: 600, drift: 1, age: 2 * time.Hour}}, rows: 600},
		{name: "too few rows to judge", batches: []batch{{rows: 50, drift: 1}}, rows: 50, note: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := *e.acts
			a.RequestLogDir = t.TempDir()
			for i, b := range tt.batches {
				dir := filepath.Join(a.RequestLogDir, "churn")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				schema, cols := served(t, b.rows, uint64(100+i), b.drift)
				name := fmt.Sprintf("%d-%d-%d.parquet", time.Now().Add(-b.age).UnixMilli(), os.Getpid(), i+1)
				writeParquet(t, filepath.Join(dir, name), schema, cols)
			}
			out, err := a.CheckDrift(e.ctx, activities.DriftInput{
				Model: "churn", Alias: "production", Window: time.Hour, PSIThreshold: 0.2, MinRows: 100,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", out)
			if out.Version != mref.Version || out.Rows != tt.rows || out.Drifted != tt.drifted || (out.Note != "") != tt.note {
				t.Errorf("report: version %d, %d rows, drifted %v, note %q; want version %d, %d rows, drifted %v, note %v",
					out.Version, out.Rows, out.Drifted, out.Note, mref.Version, tt.rows, tt.drifted, tt.note)
			}
			if tt.drifted != (out.MaxPSI >= 0.2) {
				t.Errorf("max PSI %.3f with drifted %v", out.MaxPSI, tt.drifted)
			}
			if tt.rows >= 100 && len(out.Features) != len(m.Manifest.Inputs) {
				t.Errorf("%d features compared, want %d", len(out.Features), len(m.Manifest.Inputs))
			}
			for _, f := range out.Features {
				// MaxPSI and Drifted only count features with MinRows values.
				if f.Drifted && (f.PSI < 0.2 || f.Rows < 100) || f.Rows >= 100 && f.PSI > out.MaxPSI {
					t.Errorf("feature %+v inconsistent with max PSI %.3f", f, out.MaxPSI)
				}
			}
		})
	}

	// Without the alias there is nothing to compare against.
	out, err := e.acts.CheckDrift(e.ctx, activities.DriftInput{Model: "churn", Alias: "canary", Window: time.Hour, MinRows: 1})
	if err != nil || out.Note == "" || out.Rows != 0 {
		t.Errorf("drift of churn@canary: %+v, %v; want a note", out, err)
	}
}
