package demodata_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
)

// loadChurn writes a churn CSV, converts it to Parquet and profiles it.
func loadChurn(t *testing.T, opts demodata.ChurnOptions) (dataset.Schema, *dataset.Reader) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "churn.csv")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := demodata.WriteChurnCSV(f, opts); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := dataset.CSVToParquet(context.Background(), src, filepath.Join(dir, "churn.parquet"), dataset.CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(filepath.Join(dir, "churn.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return info.Schema, r
}

// psi is the population stability index of actual against expected shares.
func psi(expected, actual []float64) float64 {
	const eps = 1e-4
	var s float64
	for i := range expected {
		e, a := math.Max(expected[i], eps), math.Max(actual[i], eps)
		s += (a - e) * math.Log(a/e)
	}
	return s
}

func TestChurnSchemaAndDriftPSI(t *testing.T) {
	ctx := context.Background()
	schema, ref := loadChurn(t, demodata.ChurnOptions{Rows: 20000, Seed: 11})
	want := dataset.Schema{Fields: []dataset.Field{
		{Name: "customer_id", Type: dataset.String}, {Name: "tenure", Type: dataset.Int64},
		{Name: "monthly_charges", Type: dataset.Float64}, {Name: "total_charges", Type: dataset.Float64},
		{Name: "plan", Type: dataset.String}, {Name: "contract", Type: dataset.String},
		{Name: "support_calls", Type: dataset.Int64}, {Name: "region", Type: dataset.String},
		{Name: "paperless", Type: dataset.Bool}, {Name: "churned", Type: dataset.Int64},
	}}
	if !reflect.DeepEqual(schema, want) {
		t.Fatalf("inferred schema %+v", schema)
	}
	refRec, err := ref.ReadAll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer refRec.Release()
	prof := dataset.NewProfiler(schema, 10)
	if err := prof.Add(refRec); err != nil {
		t.Fatal(err)
	}
	profile := prof.Profile()

	tests := []struct {
		drift  float64
		column string
		min    float64 // PSI at least
		max    float64 // PSI at most
	}{
		{0, "monthly_charges", 0, 0.02},
		{0, "tenure", 0, 0.02},
		{0, "plan", 0, 0.02},
		{1, "monthly_charges", 0.5, math.Inf(1)},
		{1, "tenure", 0.2, math.Inf(1)},
		{1, "total_charges", 0.2, math.Inf(1)},
		{1, "support_calls", 0.2, math.Inf(1)},
		{1, "plan", 0.2, math.Inf(1)},
		{1, "region", 0, 0.02}, // not drifted
	}
	current := map[float64]*dataset.Reader{}
	for _, tc := range tests {
		r := current[tc.drift]
		if r == nil {
			_, r = loadChurn(t, demodata.ChurnOptions{Rows: 20000, Seed: 12, Drift: tc.drift})
			current[tc.drift] = r
		}
		rec, err := r.ReadAll(ctx, []string{tc.column})
		if err != nil {
			t.Fatal(err)
		}
		cp := profile.Columns[schema.Index(tc.column)]
		var expected, actual []float64
		if cp.Type == dataset.String {
			vals, valid, err := dataset.Strings(rec, tc.column)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]float64{}
			var n float64
			for i, v := range vals {
				if valid[i] {
					counts[v]++
					n++
				}
			}
			for i, c := range cp.Categories {
				expected = append(expected, cp.CategoryFractions[i])
				actual = append(actual, counts[c]/n)
			}
		} else {
			vals, err := dataset.Float64s(rec, tc.column)
			if err != nil {
				t.Fatal(err)
			}
			expected, actual = cp.Fractions, dataset.BinFractions(vals, cp.Edges)
		}
		rec.Release()
		got := psi(expected, actual)
		t.Logf("drift %v %s: PSI %.3f", tc.drift, tc.column, got)
		if got < tc.min || got > tc.max {
			t.Errorf("drift %v %s: PSI %.3f, want within [%v, %v]", tc.drift, tc.column, got, tc.min, tc.max)
		}
	}
}
