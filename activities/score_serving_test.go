package activities_test

import (
	"context"
	"math"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/serving"
)

// TestBatchEqualsServing scores the breast cancer rows in batch (Parquet →
// Parquet, as `kiln score` and the score step do) and through the model
// server over real HTTP (internal/serving, JSON), and expects bit-identical
// float64 predictions for every row.
func TestBatchEqualsServing(t *testing.T) {
	e := newEnv(t)
	c := trainBreastCancer(t, e, "batchserving")
	m, err := loadModel(c.acc.Bundle.URI)
	if err != nil {
		t.Fatal(err)
	}
	in, err := artifact.Path(c.acc.Dataset.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "scored.parquet")
	if _, err := scorer.Local(context.Background(), m, []string{in}, out, scorer.LocalOptions{
		PlanOptions: scorer.PlanOptions{Model: "bc", Version: 1},
	}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(out)
	if err != nil {
		t.Fatal(err)
	}
	scored, err := r.ReadAll(context.Background(), []string{"prediction"})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer scored.Release()
	batch := scored.Column(0).(*array.Float64).Float64Values()

	srv := serving.New(serving.Options{AdminToken: "t", RequestLogDir: t.TempDir()})
	defer srv.Close()
	if err := srv.SetDeployment("bc", serving.Deployment{Stable: serving.Target{Version: 1, BundleURI: c.acc.Bundle.URI}}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	raw := readParquet(t, c.acc.Dataset.URI)
	defer raw.Release()
	n := int(raw.NumRows())
	if n != len(batch) {
		t.Fatalf("batch scored %d rows of %d", len(batch), n)
	}
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{}
	}
	for _, f := range m.Manifest.Inputs {
		col := raw.Column(raw.Schema().FieldIndices(f.Name)[0])
		for i := range rows {
			if col.IsNull(i) {
				rows[i][f.Name] = nil
				continue
			}
			switch a := col.(type) {
			case *array.Float64:
				rows[i][f.Name] = a.Value(i)
			case *array.Int64:
				rows[i][f.Name] = a.Value(i)
			case *array.String:
				rows[i][f.Name] = a.Value(i)
			case *array.Boolean:
				rows[i][f.Name] = a.Value(i)
			}
		}
	}
	cl := &serving.Client{BaseURL: hs.URL}
	resp, err := cl.Predict(context.Background(), "bc", rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Predictions) != n {
		t.Fatalf("server returned %d predictions for %d rows", len(resp.Predictions), n)
	}
	for i, p := range resp.Predictions {
		if math.Float64bits(p) != math.Float64bits(batch[i]) {
			t.Fatalf("row %d: batch %v (%#x), server %v (%#x)", i, batch[i], math.Float64bits(batch[i]), p, math.Float64bits(p))
		}
	}
}
