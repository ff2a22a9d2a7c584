package labels

import (
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/registry"
)

// env is an artifact store and a registry with the model "churn".
type env struct {
	dir   string
	store *artifact.Store
	reg   *registry.Registry
}

func newEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	store, err := artifact.NewLocal(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(context.Background(), filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if _, _, err := reg.Register(context.Background(), registry.Version{Model: "churn", BundleURI: "file:///bundles/1"}); err != nil {
		t.Fatal(err)
	}
	return env{dir: dir, store: store, reg: reg}
}

func writeText(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeGzip(t *testing.T, path, content string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(content))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeParquet writes one record with the given columns.
func writeParquet(t testing.TB, path string, fields []dataset.Field, cols []arrow.Array) string {
	t.Helper()
	schema := dataset.Schema{Fields: fields}
	rec, err := dataset.NewRecord(schema, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	w, err := dataset.CreateParquet(path, schema, dataset.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Request log columns the model server writes after the inputs (as
// internal/serving.LogFields, plus the prediction ID).
var logTail = []dataset.Field{
	{Name: "_kiln_prediction", Type: dataset.Float64},
	{Name: "_kiln_model_version", Type: dataset.Int64},
	{Name: "_kiln_variant", Type: dataset.String},
	{Name: "_kiln_latency_ms", Type: dataset.Float64},
	{Name: "_kiln_ts_ms", Type: dataset.Int64},
}

// logRow is one served row of a request log fixture: inputs tenure and
// plan, and what the server adds.
type logRow struct {
	id      string // "" is a null ID
	tenure  float64
	plan    string
	pred    float64
	version int64
	at      time.Time
}

// writeLog writes a request log file as the model server does; withID adds
// the prediction ID column (files written before IDs were logged have none).
func writeLog(t testing.TB, path string, rows []logRow, withID bool) string {
	t.Helper()
	n := len(rows)
	tenure, pred, lat := make([]float64, n), make([]float64, n), make([]float64, n)
	plan, variant, ids := make([]string, n), make([]string, n), make([]string, n)
	version, ts := make([]int64, n), make([]int64, n)
	idValid := make([]bool, n)
	for i, r := range rows {
		tenure[i], plan[i], pred[i], version[i], ts[i] = r.tenure, r.plan, r.pred, r.version, r.at.UnixMilli()
		variant[i], lat[i] = "stable", 0.5
		ids[i], idValid[i] = r.id, r.id != ""
	}
	fields := append([]dataset.Field{{Name: "tenure", Type: dataset.Float64}, {Name: "plan", Type: dataset.String}}, logTail...)
	cols := []arrow.Array{dataset.Float64ArrayNullNaN(tenure), dataset.StringArray(plan, nil), dataset.Float64Array(pred),
		dataset.Int64Array(version, nil), dataset.StringArray(variant, nil), dataset.Float64Array(lat), dataset.Int64Array(ts, nil)}
	if withID {
		fields = append(fields, dataset.Field{Name: LogPredictionID, Type: dataset.String})
		cols = append(cols, dataset.StringArray(ids, idValid))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	return writeParquet(t, path, fields, cols)
}

// labelRow is one row of a normalised label batch fixture.
type labelRow struct {
	id    string
	label float64
	at    time.Time
}

// writeBatch writes a normalised label batch file directly.
func writeBatch(t testing.TB, path string, rows []labelRow) string {
	t.Helper()
	n := len(rows)
	ids, labels, times := make([]string, n), make([]float64, n), make([]int64, n)
	for i, r := range rows {
		ids[i], labels[i], times[i] = r.id, r.label, r.at.UnixMilli()
	}
	return writeParquet(t, path, batchSchema.Fields, []arrow.Array{dataset.StringArray(ids, nil), dataset.Float64Array(labels), dataset.Int64Array(times, nil)})
}

// readAll reads every row of a Parquet file.
func readAll(t *testing.T, path string) arrow.Record {
	t.Helper()
	r, err := dataset.OpenParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return rec
}

// readBatchRows reads a normalised batch file back.
func readBatchRows(t *testing.T, path string) []labelRow {
	t.Helper()
	rec := readAll(t, path)
	ids := rec.Column(0).(*array.String)
	labels := rec.Column(1).(*array.Float64)
	times := rec.Column(2).(*array.Int64)
	out := make([]labelRow, rec.NumRows())
	for i := range out {
		out[i] = labelRow{id: ids.Value(i), label: labels.Value(i), at: time.UnixMilli(times.Value(i)).UTC()}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
