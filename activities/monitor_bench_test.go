package activities_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	runmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/benchdata"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/labels"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// The monitor benchmark's data (see BenchmarkMonitorWindow).
const (
	mbFiles       = 10
	mbBatches     = 5
	mbTrainRows   = 100_000
	mbHoldoutRows = 20_000
	mbDefaultRows = 1_000_000
	mbModel       = "bench"
	// mbDataVersion names the generator: change it when the data change,
	// so that cached copies are not reused.
	mbDataVersion = 1
)

// Environment of the benchmark.
const (
	// envMonitorBench runs the benchmark under -short too.
	envMonitorBench = "KILN_MONITOR_BENCH"
	// envMonitorBenchDir is where the generated data are cached (default
	// $TMPDIR/kiln-monitor-bench).
	envMonitorBenchDir = "KILN_MONITOR_BENCH_DIR"
	// envMonitorBenchRows overrides the served rows (default 1,000,000).
	envMonitorBenchRows = "KILN_MONITOR_BENCH_ROWS"
	// envMonitorBenchPrepare only generates the data (scripts/bench/
	// monitor_bench.sh does so in a process of its own, so that the timed
	// process's peak RSS is not the generator's).
	envMonitorBenchPrepare = "KILN_MONITOR_BENCH_PREPARE"
)

// mbEnd is the end of the benchmark's window; the rows are served over the
// 10 minutes before it.
var mbEnd = time.Date(2026, 12, 2, 10, 10, 0, 0, time.UTC)

// BenchmarkMonitorWindow times one monitor window: MonitorWindow over
// 1,000,000 served rows × 30 float64 features in 10 request log files of
// 100,000 rows (as the model server writes them: the features, then
// serving.LogFields with a prediction ID per row), served over the 10
// minutes of the window, a third of the features (f00, f03, …) shifted by
// half a standard deviation; the model is a logistic bundle over the 30
// features (standardize fitted on its training rows), registered with
// 100,000 training rows and a 20,000-row holdout; labels for every other
// row (500,000) arrive in 5 batches pushed with labels.Push, all joined. The
// window is the whole 10 minutes, so the call accounts for the 5 batches,
// joins the labels of the window, and computes drift (30 features and the
// predictions against the training data and the scored holdout) and the
// live metrics over the 500,000 labelled rows.
//
// It reports rows/s, the peak heap in use (HeapInuse, sampled every 10 ms
// during the call) and the process's peak resident memory during the call
// (VmHWM, reset before the call through /proc/self/clear_refs where the
// kernel allows it). Target, not asserted: at most 5 s on one core (-cpu 1).
//
// The request logs, training data, holdout, bundle and label files are
// generated on first use (about 300 MB for 1M rows) and cached under
// $KILN_MONITOR_BENCH_DIR (default $TMPDIR/kiln-monitor-bench), keyed by the
// row count and the generator's version; KILN_MONITOR_BENCH_ROWS sets a
// smaller scale. The registry and the artifact store the labels are pushed
// into are fresh for each run (pushing is not timed). Under -short it skips
// unless KILN_MONITOR_BENCH is set. scripts/bench/monitor_bench.sh runs it
// on one core under /usr/bin/time -v.
func BenchmarkMonitorWindow(b *testing.B) {
	if testing.Short() && os.Getenv(envMonitorBench) == "" {
		b.Skipf("BenchmarkMonitorWindow generates ~300 MB of Parquet on first use: run without -short, or set %s=1", envMonitorBench)
	}
	rows := int64(mbDefaultRows)
	if v := os.Getenv(envMonitorBenchRows); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 2*mbFiles*mbBatches {
			b.Fatalf("%s=%q: want a row count of at least %d", envMonitorBenchRows, v, 2*mbFiles*mbBatches)
		}
		rows = n
	}
	d, generated := monitorBenchData(b, rows)
	if os.Getenv(envMonitorBenchPrepare) != "" {
		b.Skipf("data ready in %s", d.dir)
	}

	// A fresh registry and store: the version, its alias and the label
	// batches.
	ctx := context.Background()
	tmp := b.TempDir()
	store, err := artifact.NewLocal(filepath.Join(tmp, "artifacts"))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := registry.Open(ctx, filepath.Join(tmp, "registry.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	v, _, err := reg.Register(ctx, registry.Version{
		Model: mbModel, BundleURI: artifact.FileURI(filepath.Join(d.dir, "bundle")), CreatedBy: "bench",
		Metrics: map[string]float64{"auc": d.meta.HoldoutAUC},
		Datasets: []registry.DatasetRef{
			{Role: registry.DatasetIngested, URI: artifact.FileURI(filepath.Join(d.dir, "train.parquet")), Rows: mbTrainRows},
			{Role: registry.DatasetTest, URI: artifact.FileURI(filepath.Join(d.dir, "holdout.parquet")), Rows: mbHoldoutRows},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: mbModel, Alias: "production", To: v.Version}); err != nil {
		b.Fatal(err)
	}
	var labelled int64
	for k := range mbBatches {
		_, rep, err := labels.Push(ctx, store, reg, labels.PushInput{
			Model: mbModel, File: filepath.Join(d.dir, "labels", fmt.Sprintf("batch-%d.parquet", k)), PushedBy: "bench",
			At: mbEnd.Add(time.Duration(k+1) * time.Minute),
		})
		if err != nil {
			b.Fatal(err)
		}
		labelled += rep.Accepted
	}
	a := &activities.Activities{Store: store, Registry: reg, RequestLogDir: filepath.Join(d.dir, "requests")}
	cfg := pipelines.MonitorConfig{
		Interval: pipelines.Duration(time.Minute), PSIThreshold: 0.2, MinRows: 200, Window: pipelines.Duration(10 * time.Minute),
		Cooldown: pipelines.Duration(time.Hour), DriftShare: 0.5, MinLabels: pipelines.DefaultMinLabels,
		Metric: &pipelines.MonitorMetric{Name: "auc", Threshold: 0.6, Windows: 3},
		Drift:  pipelines.ReportDrift{SmallReference: pipelines.DefaultSmallReference, DatasetShare: pipelines.DefaultDatasetShare},
	}
	in := activities.MonitorWindowInput{Model: mbModel, Alias: "production", Config: cfg, End: mbEnd}

	// Start from a collected heap, and the resident high-water mark reset,
	// so that the generator and the setup are not counted.
	runtime.GC()
	debug.FreeOSMemory()
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	peak := newHeapSampler(10 * time.Millisecond)
	var out activities.MonitorWindowOutput
	b.ResetTimer()
	for range b.N {
		out, err = a.MonitorWindow(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	heap := peak.stop()
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	if hwm, err := procStatusKiB("VmHWM"); err == nil {
		b.ReportMetric(float64(hwm)/1024, "peak-rss-MiB")
		if !hwmReset {
			what := "the setup"
			if generated {
				what = "the setup and the data generation"
			}
			b.Logf("VmHWM could not be reset: peak-rss-MiB includes %s", what)
		}
	}

	// The benchmark must measure what it claims.
	w := out.Window
	var drifted []string
	for j := range benchdata.Features {
		if benchdata.Shifted(j) {
			drifted = append(drifted, benchdata.Name(j))
		}
	}
	if w.Rows != rows || w.Features != benchdata.Features || w.Labeled != rows/2 || labelled != rows/2 || w.Metrics == nil ||
		w.Labels.Total != rows/2 || w.Labels.Joined != rows/2 || w.Coverage != float64(rows/2)/float64(rows) || len(w.Notes) > 0 {
		b.Errorf("window: %d rows, %d features, %d labelled (coverage %v) of %d pushed, labels %+v, metrics %v, notes %q; want %d rows, %d features, %d labelled, all joined",
			w.Rows, w.Features, w.Labeled, w.Coverage, labelled, w.Labels, w.Metrics, w.Notes, rows, benchdata.Features, rows/2)
	}
	if got := w.Drifted(); !slices.Equal(got, drifted) {
		b.Errorf("drifted features %v, want %v", got, drifted)
	}
	if w.Prediction == nil {
		b.Fatalf("no prediction drift test (notes %q)", w.Notes)
	}
	b.Logf("%d rows in %d files: drift share %.3f (%d of %d features), prediction %s %.4g; %d labelled, auc %.4f (holdout %.4f); data in %s",
		w.Rows, mbFiles, w.DriftShare, len(w.Drifted()), w.Features, w.Prediction.Method, w.Prediction.Statistic,
		w.Labeled, w.Metrics["auc"], d.meta.HoldoutAUC, d.dir)
}

// heapSampler records the largest heap in use (the runtime's
// HeapInuse: heap objects plus the unused parts of their spans) seen by a
// goroutine reading runtime/metrics (no stop-the-world) every interval.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func newHeapSampler(every time.Duration) *heapSampler {
	s := &heapSampler{done: make(chan struct{})}
	samples := []runmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	read := func() {
		runmetrics.Read(samples)
		s.peak = max(s.peak, samples[0].Value.Uint64()+samples[1].Value.Uint64())
	}
	read()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return s
}

func (s *heapSampler) stop() uint64 {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

// procStatusKiB reads a "kB" field of /proc/self/status (VmHWM, VmRSS).
func procStatusKiB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// mbMeta is written last into a generated directory: its presence marks the
// data complete.
type mbMeta struct {
	Version     int     `json:"version"`
	Rows        int64   `json:"rows"`
	Features    int     `json:"features"`
	Files       int     `json:"files"`
	Batches     int     `json:"batches"`
	TrainRows   int     `json:"train_rows"`
	HoldoutRows int     `json:"holdout_rows"`
	End         string  `json:"end"`
	HoldoutAUC  float64 `json:"holdout_auc"`
}

func (m mbMeta) key() mbMeta {
	m.HoldoutAUC = 0
	return m
}

const mbMetaFile = "bench.json"

// mbData locates the benchmark's cached data.
type mbData struct {
	dir  string
	meta mbMeta
}

// monitorBenchData returns the benchmark's data for rows served rows,
// generating them if no complete copy is cached; generated says whether
// this process generated them.
func monitorBenchData(b *testing.B, rows int64) (d mbData, generated bool) {
	b.Helper()
	root := os.Getenv(envMonitorBenchDir)
	if root == "" {
		root = filepath.Join(os.TempDir(), "kiln-monitor-bench")
	}
	want := mbMeta{Version: mbDataVersion, Rows: rows, Features: benchdata.Features, Files: mbFiles, Batches: mbBatches,
		TrainRows: mbTrainRows, HoldoutRows: mbHoldoutRows, End: mbEnd.Format(time.RFC3339)}
	dir := filepath.Join(root, fmt.Sprintf("monitor-%d-v%d", rows, mbDataVersion))
	meta, ok := mbComplete(dir, want)
	if !ok {
		// Generate next to the final directory and rename it into place, so
		// that an interrupted or concurrent run never leaves a partial copy
		// that looks complete.
		if err := os.MkdirAll(root, 0o755); err != nil {
			b.Fatal(err)
		}
		tmp, err := os.MkdirTemp(root, filepath.Base(dir)+".tmp-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		start := time.Now()
		b.Logf("generating the monitor benchmark's data (%d served rows) in %s", rows, dir)
		if err := genMonitorBench(tmp, want); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			if _, ok := mbComplete(dir, want); !ok {
				b.Fatal(err)
			}
		}
		if meta, ok = mbComplete(dir, want); !ok {
			b.Fatalf("generated data in %s are incomplete", dir)
		}
		b.Logf("generated in %v", time.Since(start).Round(time.Second))
		generated = true
	}
	return mbData{dir: dir, meta: meta}, generated
}

func mbComplete(dir string, want mbMeta) (mbMeta, bool) {
	raw, err := os.ReadFile(filepath.Join(dir, mbMetaFile))
	if err != nil {
		return mbMeta{}, false
	}
	var got mbMeta
	return got, json.Unmarshal(raw, &got) == nil && got.key() == want.key()
}

// mbWrite writes arrays as a Parquet file in row groups of 65,536 rows and
// releases them.
func mbWrite(path string, schema dataset.Schema, arrs []arrow.Array) error {
	rec, err := dataset.NewRecord(schema, arrs)
	for _, a := range arrs {
		a.Release()
	}
	if err != nil {
		return err
	}
	defer rec.Release()
	w, err := dataset.CreateParquet(path, schema, dataset.WriterOptions{})
	if err != nil {
		return err
	}
	for lo := int64(0); lo < rec.NumRows(); lo += 1 << 16 {
		part := rec.NewSlice(lo, min(lo+1<<16, rec.NumRows()))
		err := w.Write(part)
		part.Release()
		if err != nil {
			w.Abort()
			return err
		}
	}
	_, err = w.Commit()
	return err
}

// mbWriteRaw writes rows raw rows (the features and a 0/1 target y): the
// training data or the holdout.
func mbWriteRaw(path string, r *rand.Rand, rows int) (arrow.Record, error) {
	schema := benchdata.Schema()
	schema.Fields = append(schema.Fields, dataset.Field{Name: "y", Type: dataset.Float64})
	cols := benchdata.Columns(r, rows, false)
	y := make([]float64, rows)
	for k := range y {
		y[k] = benchdata.Outcome(r, cols, k)
	}
	arrs := make([]arrow.Array, 0, len(cols)+1)
	for _, c := range cols {
		arrs = append(arrs, dataset.Float64Array(c))
	}
	arrs = append(arrs, dataset.Float64Array(y))
	for _, a := range arrs {
		a.Retain()
	}
	if err := mbWrite(path, schema, arrs); err != nil {
		return nil, err
	}
	rec, err := dataset.NewRecord(schema, arrs)
	for _, a := range arrs {
		a.Release()
	}
	return rec, err
}

// genMonitorBench writes the benchmark's data into dir: train.parquet,
// holdout.parquet, bundle/, requests/bench/<ms>-1-<n>.parquet (the request
// logs, flushed at the end of each tenth of the window),
// labels/batch-<k>.parquet, then bench.json.
func genMonitorBench(dir string, meta mbMeta) error {
	r := rand.New(rand.NewPCG(2026, 12))

	// Training rows, and the bundle fitted on them.
	train, err := mbWriteRaw(filepath.Join(dir, "train.parquet"), r, meta.TrainRows)
	if err != nil {
		return err
	}
	defer train.Release()
	rawSchema := benchdata.Schema()
	rawSchema.Fields = append(rawSchema.Fields, dataset.Field{Name: "y", Type: dataset.Float64})
	fitted, err := transform.Fit(transform.Recipe{Target: "y", Transforms: []pipelines.Transform{{Kind: "standardize", Columns: []string{"*"}}}}, rawSchema, train)
	if err != nil {
		return err
	}
	l := model.Logistic{Type: model.EstimatorLogistic, Features: fitted.Features}
	for _, f := range fitted.Features {
		var w float64
		switch f {
		case "f01":
			w = 0.8 * 1.5
		case "f04":
			w = -0.5
		case "f07":
			w = 0.3 * 2.5 / 2.5
		}
		l.Weights = append(l.Weights, w)
	}
	est, err := json.Marshal(l)
	if err != nil {
		return err
	}
	prof := dataset.NewProfiler(dataset.Schema{Fields: fitted.Inputs}, 0)
	if err := prof.Add(train); err != nil {
		return err
	}
	p := prof.Profile()
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Name: mbModel, Task: model.TaskBinary, Target: "y", Output: model.OutputProbability,
		Inputs: fitted.Inputs, Transforms: fitted, Profile: &p,
		Estimator: model.Estimator{Type: model.EstimatorLogistic, File: model.DefaultEstimatorFile},
	}
	bundle := filepath.Join(dir, "bundle")
	if err := model.WriteBundle(bundle, man, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		return err
	}
	m, err := model.Load(bundle)
	if err != nil {
		return err
	}
	hold, err := mbWriteRaw(filepath.Join(dir, "holdout.parquet"), r, meta.HoldoutRows)
	if err != nil {
		return err
	}
	hp, err := m.Predict(hold)
	if err != nil {
		hold.Release()
		return err
	}
	hy, err := dataset.Float64s(hold, "y")
	hold.Release()
	if err != nil {
		return err
	}
	meta.HoldoutAUC = binaryMetrics(hy, hp)["auc"]

	// Request logs: the rows of the window in order, a row every
	// window/rows, in mbFiles files; every other row labelled a minute
	// after its prediction, the labels in mbBatches batches in time order.
	logDir := filepath.Join(dir, "requests", mbModel)
	labelDir := filepath.Join(dir, "labels")
	for _, d := range []string{logDir, labelDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	start := mbEnd.Add(-10 * time.Minute)
	step := float64(10*time.Minute) / float64(meta.Rows)
	at := func(g int64) time.Time { return start.Add(time.Duration(float64(g) * step)) }
	logSchema := benchdata.Schema()
	logSchema.Fields = append(logSchema.Fields, serving.LogFields...)
	labelSchema := dataset.Schema{Fields: []dataset.Field{
		{Name: labels.DefaultIDColumn, Type: dataset.String}, {Name: labels.DefaultLabelColumn, Type: dataset.Float64},
		{Name: labels.DefaultTimeColumn, Type: dataset.Int64},
	}}
	var lids []string
	var lvals []float64
	var ltimes []int64
	batch := 0
	flushLabels := func() error {
		err := mbWrite(filepath.Join(labelDir, fmt.Sprintf("batch-%d.parquet", batch)), labelSchema,
			[]arrow.Array{dataset.StringArray(lids, nil), dataset.Float64Array(lvals), dataset.Int64Array(ltimes, nil)})
		lids, lvals, ltimes = lids[:0], lvals[:0], ltimes[:0]
		batch++
		return err
	}
	perBatch := meta.Rows / int64(meta.Batches)
	var g int64
	for file := range meta.Files {
		n := meta.Rows / int64(meta.Files)
		if file == meta.Files-1 {
			n = meta.Rows - g
		}
		cols := benchdata.Columns(r, int(n), true)
		arrs := make([]arrow.Array, 0, len(logSchema.Fields))
		for _, c := range cols {
			arrs = append(arrs, dataset.Float64Array(c))
		}
		feats, err := dataset.NewRecord(benchdata.Schema(), arrs)
		if err != nil {
			return err
		}
		preds, err := m.Predict(feats)
		feats.Release()
		if err != nil {
			return err
		}
		versions, variants, latency, ts, ids := make([]int64, n), make([]string, n), make([]float64, n), make([]int64, n), make([]string, n)
		for k := range n {
			versions[k], variants[k], latency[k], ts[k], ids[k] = 1, "stable", 0.05, at(g).UnixMilli(), fmt.Sprintf("p%08d", g)
			if g%2 == 0 {
				lids, lvals, ltimes = append(lids, ids[k]), append(lvals, benchdata.Outcome(r, cols, int(k))), append(ltimes, at(g).Add(time.Minute).UnixMilli())
			}
			g++
			if batch < meta.Batches-1 && g == int64(batch+1)*perBatch {
				if err := flushLabels(); err != nil {
					return err
				}
			}
		}
		arrs = append(arrs, dataset.Float64Array(preds), dataset.Int64Array(versions, nil), dataset.StringArray(variants, nil),
			dataset.Float64Array(latency), dataset.Int64Array(ts, nil), dataset.StringArray(ids, nil))
		flushed := start.Add(time.Duration(file+1) * 10 * time.Minute / time.Duration(meta.Files))
		if err := mbWrite(filepath.Join(logDir, fmt.Sprintf("%d-1-%d.parquet", flushed.UnixMilli(), file+1)), logSchema, arrs); err != nil {
			return err
		}
	}
	if err := flushLabels(); err != nil {
		return err
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, mbMetaFile), raw, 0o644)
}
