package report_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/report"
)

// TestBuildWindow reads rows shaped like a model server's request log (its
// own column names, a prediction ID and a time per row) between two times,
// with labels joined by ID elsewhere: only the rows of the window count, and
// the labelled ones give the metrics.
func TestBuildWindow(t *testing.T) {
	f := newFixture(t, defaultFixture())
	base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	// Rename the scored parts' columns to a request log's, and give each
	// row an ID and a time one second apart.
	var files []string
	row := 0
	for p, part := range f.parts {
		var ids []string
		var ts []int64
		for k := 0; k < part.rows(); k++ {
			ids = append(ids, fmt.Sprintf("p-%06d", row))
			ts = append(ts, base.Add(time.Duration(row)*time.Second).UnixMilli())
			row++
		}
		var log table
		for _, c := range part {
			c := *c
			switch c.name {
			case report.PredictionColumn:
				c.name = "_kiln_prediction"
			case report.ModelVersionColumn:
				c.name = "_kiln_model_version"
			case report.ModelColumn:
				continue
			}
			log = append(log, &c)
		}
		log = append(log, &column{name: "_kiln_prediction_id", typ: dataset.String, s: ids},
			&column{name: "_kiln_ts_ms", typ: dataset.Int64, i: ts})
		files = append(files, writeTable(t, filepath.Join(f.dir, fmt.Sprintf("log-%d.parquet", p)), log, 100))
	}
	// The window: rows 300 to 899 (it spans both files).
	from, to := base.Add(300*time.Second), base.Add(900*time.Second)
	preds := f.current(report.PredictionColumn).numbers()
	labels := map[string]float64{}
	var wantY, wantP []float64
	for k := 0; k < row; k += 3 { // every third row is labelled
		y := float64(k % 2)
		labels[fmt.Sprintf("p-%06d", k)] = y
		if k >= 300 && k < 900 {
			wantY, wantP = append(wantY, y), append(wantP, preds[k])
		}
	}
	labels["unknown-id"] = 1
	in := f.input()
	in.Files = files
	in.Columns = report.Columns{Prediction: "_kiln_prediction", Version: "_kiln_model_version", ID: "_kiln_prediction_id", Time: "_kiln_ts_ms"}
	s := build(t, in, report.Options{From: from, To: to, Labels: &report.Labels{ByID: labels, Source: "test labels"}})
	if s.Rows != 600 {
		t.Fatalf("rows = %d, want the 600 of the window", s.Rows)
	}
	if len(s.Models) != 2 || s.Models[0] != (report.ModelRows{Name: "churn", Version: 3, Rows: 400}) || s.Models[1] != (report.ModelRows{Name: "churn", Version: 2, Rows: 200}) {
		t.Errorf("models %+v, want churn:3 (rows 300-699) and churn:2 (700-899)", s.Models)
	}
	var wantNulls int64
	x := f.current("x")
	for k := 300; k < 900; k++ {
		if !x.ok(k) {
			wantNulls++
		}
	}
	if q := qualityOf(s, "x"); q.Rows != 600 || q.Nulls != wantNulls {
		t.Errorf("x quality rows %d nulls %d, want 600 and %d", q.Rows, q.Nulls, wantNulls)
	}
	var sum float64
	for k := 300; k < 900; k++ {
		sum += preds[k]
	}
	checkNear(t, "prediction mean", s.Prediction.Mean, sum/600, 1e-12)
	p := s.Performance
	if p == nil || p.LabeledRows != int64(len(wantY)) || p.LabelSource != "test labels" {
		t.Fatalf("performance %+v, want %d labelled rows", p, len(wantY))
	}
	for k, v := range metrics.Binary(wantY, wantP, 0.5) {
		if k == "rows" {
			continue
		}
		checkNear(t, k, p.Metrics[k], v, 1e-12)
	}

	// No time column: a time range is refused.
	in.Columns.Time = ""
	if _, err := report.Build(t.Context(), in, report.Options{From: from, To: to}); err == nil {
		t.Error("a time range without a time column was accepted")
	}
	// A window with no rows.
	in.Columns.Time = "_kiln_ts_ms"
	s = build(t, in, report.Options{From: base.Add(-time.Hour), To: base.Add(-time.Minute)})
	if s.Rows != 0 {
		t.Errorf("an empty window has %d rows", s.Rows)
	}
}
