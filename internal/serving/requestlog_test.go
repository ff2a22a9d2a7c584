package serving

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// logSchema is the schema of the churn bundles' request logs.
var logSchema = dataset.Schema{Fields: append(slices.Clone(churnInputs), LogFields...)}

// logRow is one request log row as Go values, nil for null.
type logRow map[string]any

// readLogs reads every request log file of model under dir, in
// RequestLogFiles order, checking each file's schema.
func readLogs(t *testing.T, dir, model string) (files []string, rows []logRow) {
	t.Helper()
	files, err := RequestLogFiles(dir, model, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		r, err := dataset.OpenParquet(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Schema(); !slices.Equal(got.Fields, logSchema.Fields) {
			t.Errorf("%s: schema %v, want %v", f, got.Fields, logSchema.Fields)
		}
		rec, err := r.ReadAll(context.Background(), nil)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, recordRows(t, rec)...)
		rec.Release()
	}
	return files, rows
}

// recordRows converts a record to rows of Go values.
func recordRows(t *testing.T, rec arrow.Record) []logRow {
	t.Helper()
	out := make([]logRow, rec.NumRows())
	for i := range out {
		out[i] = logRow{}
	}
	for j, f := range rec.Schema().Fields() {
		col := rec.Column(j)
		for i := range out {
			v, ok := dataset.Value(col, i)
			if !ok {
				t.Fatalf("column %s has type %s", f.Name, col.DataType())
			}
			out[i][f.Name] = v
		}
	}
	return out
}

// wantInputs is how an instance's inputs are logged: typed per the model's
// input schema, nil for absent and null values.
func wantInputs(inst map[string]any) logRow {
	out := logRow{}
	for _, f := range churnInputs {
		v := inst[f.Name]
		if v != nil && f.Type == dataset.Int64 {
			v = int64(v.(float64))
		}
		out[f.Name] = v
	}
	return out
}

// checkNoTempFiles fails if dir holds anything but .parquet files.
func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if !d.IsDir() && (!strings.HasSuffix(d.Name(), ".parquet") || strings.HasPrefix(d.Name(), ".")) {
			t.Errorf("left behind: %s", path)
		}
		return nil
	})
}

// TestRequestLog checks the rows logged for served requests: one per served
// instance, in order, with typed inputs, nulls, the prediction, version,
// variant, latency and time; failed requests are not logged.
func TestRequestLog(t *testing.T) {
	t.Run("in process", func(t *testing.T) { testRequestLog(t, nil) })
	// The same files from a log writer child (this test binary, TestMain).
	t.Run("child process", func(t *testing.T) {
		t.Setenv(envLogWriter, "1")
		testRequestLog(t, []string{os.Args[0], "-test.run=^$"})
	})
}

func testRequestLog(t *testing.T, writer []string) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	dir := t.TempDir()
	var mu sync.Mutex
	var written []string
	s := New(Options{RequestLogDir: dir, FlushInterval: time.Hour, Logger: quietLogger, LogWriter: writer,
		LogWritten: func(_, path string) { mu.Lock(); written = append(written, path); mu.Unlock() }})
	h := s.Handler()
	predict := func(path, body string) PredictResponse {
		t.Helper()
		rec := serve(t, h, "POST", path, body, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return decode[PredictResponse](t, rec)
	}

	start := time.Now().UnixMilli()
	deploy(t, s, "churn", stable(1, uri1))
	r1 := predict("/v1/models/churn:predict", predictV1Body(t, instances))
	if rec := serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, []map[string]any{{"plan": "pro"}}), ""); rec.Code != 400 {
		t.Fatalf("failing request: status %d", rec.Code)
	}
	deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, 100))
	r2 := predict("/v1/models/churn:predict", predictV1Body(t, instances[:2]))
	rec := serve(t, h, "POST", "/v2/models/churn/infer", v2Body(t, "", instances[2:3]), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("v2: status %d: %s", rec.Code, rec.Body)
	}
	r3 := decode[v2Response](t, rec).Outputs[0].Data[0].(float64)
	end := time.Now().UnixMilli()
	if files, _ := RequestLogFiles(dir, "churn", time.Time{}); len(files) != 0 {
		t.Errorf("files before the flush: %v", files)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	files, rows := readLogs(t, dir, "churn")
	if len(files) != 2 {
		t.Errorf("%d files, want one per model version: %v", len(files), files)
	}
	if writer != nil && (s.reqLog.proc == nil || s.reqLog.proc.sent != 2) {
		t.Errorf("the log writer child wrote %+v files, want both", s.reqLog.proc)
	}
	mu.Lock()
	slices.Sort(written)
	if !slices.Equal(written, files) {
		t.Errorf("LogWritten reported %v, want the files %v", written, files)
	}
	mu.Unlock()
	for _, f := range files {
		if filepath.Dir(f) != filepath.Join(dir, "churn") {
			t.Errorf("file %s is not in %s", f, filepath.Join(dir, "churn"))
		}
	}
	type served struct {
		inst    map[string]any
		pred    float64
		version int64
		variant string
	}
	var want []served
	for i, inst := range instances {
		want = append(want, served{inst, r1.Predictions[i], 1, "stable"})
	}
	for i, inst := range instances[:2] {
		want = append(want, served{inst, r2.Predictions[i], 2, "canary"})
	}
	want = append(want, served{instances[2], r3, 2, "canary"})
	// Files of the same flush have no defined order; compare by version.
	slices.SortStableFunc(rows, func(a, b logRow) int { return int(a[LogVersion].(int64) - b[LogVersion].(int64)) })
	if len(rows) != len(want) {
		t.Fatalf("%d rows logged, want %d", len(rows), len(want))
	}
	for i, w := range want {
		got := rows[i]
		for name, v := range wantInputs(w.inst) {
			if got[name] != v {
				t.Errorf("row %d: %s = %#v, want %#v", i, name, got[name], v)
			}
		}
		if got[LogPrediction] != w.pred || got[LogVersion] != w.version || got[LogVariant] != w.variant {
			t.Errorf("row %d: prediction %v v%v %v, want %v v%d %s", i, got[LogPrediction], got[LogVersion], got[LogVariant], w.pred, w.version, w.variant)
		}
		if l, ok := got[LogLatencyMs].(float64); !ok || !(l >= 0) || math.IsInf(l, 0) {
			t.Errorf("row %d: latency_ms %v", i, got[LogLatencyMs])
		}
		if ts, ok := got[LogTimeMs].(int64); !ok || ts < start || ts > end {
			t.Errorf("row %d: ts_ms %v outside %d..%d", i, got[LogTimeMs], start, end)
		}
	}
	checkNoTempFiles(t, dir)
}

// TestRequestLogFlushInterval checks that buffered rows are written after
// the flush interval, without Close.
func TestRequestLogFlushInterval(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	dir := t.TempDir()
	s := newTestServer(t, Options{RequestLogDir: dir, FlushInterval: 20 * time.Millisecond})
	deploy(t, s, "churn", stable(1, uri))
	if rec := serve(t, s.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:3]), ""); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if files, _ := RequestLogFiles(dir, "churn", time.Time{}); len(files) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no request log file 10s after a request with a 20ms flush interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, rows := readLogs(t, dir, "churn"); len(rows) != 3 {
		t.Errorf("%d rows, want 3", len(rows))
	}
}

// TestRequestLogFlushRows checks that full buffers are written early and
// that Close waits for those writes: every served row is on disk when Close
// returns.
func TestRequestLogFlushRows(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	dir := t.TempDir()
	s := New(Options{RequestLogDir: dir, FlushInterval: time.Hour, FlushRows: 4, Logger: quietLogger})
	deploy(t, s, "churn", stable(1, uri))
	h := s.Handler()
	const requests = 60
	for range requests {
		if rec := serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:2]), ""); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, rows := readLogs(t, dir, "churn")
	if len(rows) != 2*requests {
		t.Errorf("%d rows on disk after Close, want %d", len(rows), 2*requests)
	}
	if len(files) != requests/2 {
		t.Errorf("%d files, want %d (one per 4 rows)", len(files), requests/2)
	}
	checkNoTempFiles(t, dir)
}

// TestRequestLogFiles checks the listing: only <ms>-<pid>-<seq>.parquet
// files written at or after since, oldest first (by time, then sequence).
func TestRequestLogFiles(t *testing.T) {
	dir := t.TempDir()
	mdir := filepath.Join(dir, "churn")
	for _, name := range []string{
		"2000-5-1.parquet",
		"1000-5-10.parquet",
		"1000-5-9.parquet",
		"999-5-8.parquet",           // before since
		"1500-12-3.parquet",         // another process
		"1500-9-4.parquet",          // another process
		"abc-5-1.parquet",           // not a time
		"1200-5-2.csv",              // not Parquet
		".1300-5-3.parquet.tmp-123", // a file being written
		"1400-5-4.parquet/x",        // a directory
	} {
		p := filepath.Join(mdir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		since time.Time
		want  []string
	}{
		{time.UnixMilli(1000), []string{"1000-5-9.parquet", "1000-5-10.parquet", "1500-9-4.parquet", "1500-12-3.parquet", "2000-5-1.parquet"}},
		{time.Time{}, []string{"999-5-8.parquet", "1000-5-9.parquet", "1000-5-10.parquet", "1500-9-4.parquet", "1500-12-3.parquet", "2000-5-1.parquet"}},
		{time.UnixMilli(1001), []string{"1500-9-4.parquet", "1500-12-3.parquet", "2000-5-1.parquet"}},
		{time.UnixMilli(2001), nil},
	}
	for _, tt := range tests {
		got, err := RequestLogFiles(dir, "churn", tt.since)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range got {
			if filepath.Dir(p) != mdir {
				t.Errorf("%s is not in %s", p, mdir)
			}
			names = append(names, filepath.Base(p))
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("since %d: %v, want %v", tt.since.UnixMilli(), names, tt.want)
		}
	}
	if got, err := RequestLogFiles(dir, "nope", time.Time{}); err != nil || got != nil {
		t.Errorf("unknown model: %v, %v; want nil, nil", got, err)
	}
}

// TestRequestLogFilesOrderMatchesWrites checks that the files the server
// writes list in the order they were written. (Files of the same
// millisecond are covered by TestRequestLogFiles: real flushes rarely share
// one.)
func TestRequestLogFilesOrderMatchesWrites(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	dir := t.TempDir()
	s := newTestServer(t, Options{RequestLogDir: dir, FlushInterval: time.Hour})
	deploy(t, s, "churn", stable(1, uri))
	h := s.Handler()
	const flushes = 25
	for i := range flushes {
		body := predictV1Body(t, []map[string]any{{"charges": float64(i)}})
		if rec := serve(t, h, "POST", "/v1/models/churn:predict", body, ""); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if err := s.reqLog.flushAll(); err != nil {
			t.Fatal(err)
		}
	}
	_, rows := readLogs(t, dir, "churn")
	if len(rows) != flushes {
		t.Fatalf("%d rows, want %d", len(rows), flushes)
	}
	for i, r := range rows {
		if r["charges"] != float64(i) {
			t.Errorf("file %d holds the row of request %v", i, r["charges"])
		}
	}
}

// writeOldLog writes a request log file as servers before prediction IDs
// did: the model's inputs, then the first five LogFields.
func writeOldLog(t *testing.T, path string, charges []float64, version int64) {
	t.Helper()
	n := len(charges)
	fields := append(slices.Clone(churnInputs), LogFields[:5]...)
	for _, f := range fields {
		if f.Name == LogPredictionID {
			t.Fatal("the old format has no prediction ID")
		}
	}
	plans, valid := make([]string, n), make([]bool, n)
	tenure, preds, versions, lat, ts := make([]int64, n), make([]float64, n), make([]int64, n), make([]float64, n), make([]int64, n)
	variants := make([]string, n)
	for i := range n {
		plans[i], valid[i] = "pro", true
		tenure[i], preds[i], versions[i], lat[i], ts[i], variants[i] = int64(i), 0.5, version, 0.1, time.Now().UnixMilli(), "stable"
	}
	cols := []arrow.Array{
		dataset.StringArray(plans, valid), dataset.Int64Array(tenure, nil), dataset.Float64Array(charges),
		dataset.Float64ArrayNullNaN(make([]float64, n)), dataset.BoolArray(make([]bool, n), nil),
		dataset.Float64Array(preds), dataset.Int64Array(versions, nil), dataset.StringArray(variants, nil),
		dataset.Float64Array(lat), dataset.Int64Array(ts, nil),
	}
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
	defer w.Abort()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRequestLogOldAndNewFiles checks that request logs written before
// prediction IDs existed still list and read next to new ones: by input
// column name (as the drift monitor reads them), and through
// ReadRequestLog, which gives old files a null ID column.
func TestRequestLogOldAndNewFiles(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "churn"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "churn", fmt.Sprintf("%d-1-1.parquet", time.Now().Add(-time.Minute).UnixMilli()))
	writeOldLog(t, old, []float64{1, 2, 3}, 1)

	s := New(Options{RequestLogDir: dir, FlushInterval: time.Hour, Logger: quietLogger})
	deploy(t, s, "churn", stable(2, uri))
	body := mustJSON(t, map[string]any{"instances": []map[string]any{{"charges": 4.0}, {"charges": 5.0}}, "ids": []string{"n-1", "n-2"}})
	if rec := serve(t, s.Handler(), "POST", "/v1/models/churn:predict", body, ""); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := RequestLogFiles(dir, "churn", time.Time{})
	if err != nil || len(files) != 2 || files[0] != old {
		t.Fatalf("files %v (%v), want the old file then the new one", files, err)
	}

	type want struct {
		charges []float64
		ids     []any // nil entries: null
		fields  int   // columns in the file
	}
	wants := []want{
		{[]float64{1, 2, 3}, []any{nil, nil, nil}, len(churnInputs) + 5},
		{[]float64{4, 5}, []any{"n-1", "n-2"}, len(churnInputs) + len(LogFields)},
	}
	for i, f := range files {
		w := wants[i]
		// As the monitor reads: open, select the inputs by name.
		r, err := dataset.OpenParquet(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(r.Schema().Fields); got != w.fields {
			t.Errorf("%s: %d columns, want %d", f, got, w.fields)
		}
		rec, err := r.ReadAll(context.Background(), []string{"charges", "plan", LogVersion})
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		charges, err := dataset.Float64s(rec, "charges")
		rec.Release()
		if err != nil || !slices.Equal(charges, w.charges) {
			t.Errorf("%s: charges %v (%v), want %v", f, charges, err, w.charges)
		}

		// Through ReadRequestLog, every file has every log column.
		rec, err = ReadRequestLog(context.Background(), f, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, _ := dataset.SchemaFromArrow(rec.Schema())
		if !slices.Equal(got.Fields, logSchema.Fields) {
			t.Errorf("%s: ReadRequestLog schema %v, want %v", f, got.Fields, logSchema.Fields)
		}
		rows := recordRows(t, rec)
		rec.Release()
		for j, row := range rows {
			if row[LogPredictionID] != w.ids[j] {
				t.Errorf("%s row %d: id %#v, want %#v", f, j, row[LogPredictionID], w.ids[j])
			}
			if row["charges"] != w.charges[j] {
				t.Errorf("%s row %d: charges %v, want %v", f, j, row["charges"], w.charges[j])
			}
		}

		// Named columns, in the order asked.
		rec, err = ReadRequestLog(context.Background(), f, []string{LogPredictionID, "charges"})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if rec.NumCols() != 2 || rec.Schema().Field(0).Name != LogPredictionID || rec.Schema().Field(1).Name != "charges" || int(rec.NumRows()) != len(w.charges) {
			t.Errorf("%s: named read gave %v, %d rows", f, rec.Schema(), rec.NumRows())
		}
		ids, valid, err := dataset.Strings(rec, LogPredictionID)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		for j := range ids {
			var id any
			if valid == nil || valid[j] {
				id = ids[j]
			}
			if id != w.ids[j] {
				t.Errorf("%s row %d: named read id %#v, want %#v", f, j, id, w.ids[j])
			}
		}
		if _, err := ReadRequestLog(context.Background(), f, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("%s: an unknown input column read without error (%v)", f, err)
		}
	}
}

// TestRequestLogWriterGone: a log writer child that is gone does not lose
// rows: the server writes the files itself.
func TestRequestLogWriterGone(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	dir := t.TempDir()
	s := New(Options{RequestLogDir: dir, FlushInterval: time.Hour, Logger: quietLogger, LogWriter: []string{"false"}})
	time.Sleep(100 * time.Millisecond) // let it exit
	deploy(t, s, "churn", stable(1, uri1))
	if rec := serve(t, s.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, instances), ""); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, rows := readLogs(t, dir, "churn"); len(rows) != len(instances) {
		t.Fatalf("%d rows logged, want %d", len(rows), len(instances))
	}
}
