package activities_test

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/labels"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/pipelines"
)

// mwFixture is a trained and registered churn model and two populations of
// customers to serve: one from the training distribution, one drifted.
type mwFixture struct {
	e *env
	// v is the trained version (churn:1); m its bundle.
	v registry.Version
	m *model.Model
	// pop is served from the training population, drifted from a drifted
	// one (demodata's Drift 1).
	pop, drifted *mwPopulation
}

// mwQuiet discards the model server's log.
var mwQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// mwPopulation is a table of customers with the model's predictions and
// their true outcomes (churned).
type mwPopulation struct {
	rec    arrow.Record
	preds  []float64
	labels []float64
}

// newMWFixture trains the churn pipeline up to register (process runtime)
// and generates the served populations.
func newMWFixture(t *testing.T) *mwFixture {
	t.Helper()
	e := newEnv(t)
	spec := loadSpec(t, "churn.yaml")
	c := e.chain(runInfo(spec, "monitor"))
	ing := step(t, spec, "ingest")
	ing.Ingest.Source = writeChurn(t, t.TempDir(), "churn.csv", demodata.ChurnOptions{Rows: 3000, Seed: 1})
	c.must(ing)
	c.must(step(t, spec, "prep"))
	c.must(processTrain(t, spec, "train"))
	c.must(step(t, spec, "evaluate"))
	mref := c.must(step(t, spec, "register")).Artifacts.Model
	v, err := e.reg.Get(e.ctx, "churn", mref.Version)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadModel(v.BundleURI)
	if err != nil {
		t.Fatal(err)
	}
	f := &mwFixture{e: e, v: v, m: m}
	f.pop = f.population(t, 3000, 11, 0)
	f.drifted = f.population(t, 3000, 12, 1)
	return f
}

// population generates rows customers (demodata) and scores them.
func (f *mwFixture) population(t *testing.T, rows int, seed uint64, drift float64) *mwPopulation {
	t.Helper()
	csv := writeChurn(t, t.TempDir(), "served.csv", demodata.ChurnOptions{Rows: rows, Seed: seed, Drift: drift})
	pq := filepath.Join(t.TempDir(), "served.parquet")
	if _, err := dataset.CSVToParquet(f.e.ctx, csv, pq, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := readParquet(t, pq)
	preds, err := f.m.Predict(rec)
	if err != nil {
		t.Fatal(err)
	}
	return &mwPopulation{rec: rec, preds: preds, labels: floats(t, rec, f.m.Manifest.Target)}
}

// model registers the trained bundle (with its training data, holdout and
// metrics) as version 1 of a new model named name, with alias production,
// so that each test has its own label batches and request logs. It returns
// activities writing request logs under a directory of the test's own.
func (f *mwFixture) model(t *testing.T, name string) *activities.Activities {
	t.Helper()
	v, _, err := f.e.reg.Register(f.e.ctx, registry.Version{
		Model: name, BundleURI: f.v.BundleURI, Metrics: f.v.Metrics, Datasets: f.v.Datasets,
		DatasetHash: f.v.DatasetHash, CreatedBy: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.reg.SetAlias(f.e.ctx, registry.AliasMove{Model: name, Alias: "production", To: v.Version}); err != nil {
		t.Fatal(err)
	}
	a := *f.e.acts
	a.RequestLogDir = t.TempDir()
	return &a
}

// mwRow is one served row: row i of a population, predicted at at with
// prediction ID id.
type mwRow struct {
	pop *mwPopulation
	i   int
	id  string
	at  time.Time
}

func (r mwRow) pred() float64  { return r.pop.preds[r.i] }
func (r mwRow) label() float64 { return r.pop.labels[r.i] }

// spread returns n rows of pop (from row first on) predicted at times
// spread evenly over [from, to), with IDs prefix-0, prefix-1, ...
func mwSpread(pop *mwPopulation, first, n int, from, to time.Time, prefix string) []mwRow {
	rows := make([]mwRow, n)
	step := to.Sub(from) / time.Duration(n)
	for k := range rows {
		rows[k] = mwRow{pop: pop, i: (first + k) % int(pop.rec.NumRows()), id: fmt.Sprintf("%s-%d", prefix, k), at: from.Add(time.Duration(k) * step)}
	}
	return rows
}

// writeLog writes rows as one request log file of model, as the model
// server writes it (the model's inputs, then serving.LogFields), named
// after the flush time flushed. All rows are from one population.
func (f *mwFixture) writeLog(t *testing.T, a *activities.Activities, name string, flushed time.Time, seq int, rows []mwRow) string {
	t.Helper()
	return f.writeVersionLog(t, a, name, flushed, seq, rows, 1)
}

// writeVersionLog is writeLog for rows served by version.
func (f *mwFixture) writeVersionLog(t *testing.T, a *activities.Activities, name string, flushed time.Time, seq int, rows []mwRow, version int64) string {
	t.Helper()
	dir := filepath.Join(a.RequestLogDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	idx := make([]int, len(rows))
	n := len(rows)
	preds, versions, variants, latency, ts, ids := make([]float64, n), make([]int64, n), make([]string, n), make([]float64, n), make([]int64, n), make([]string, n)
	for k, r := range rows {
		if r.pop != rows[0].pop {
			t.Fatal("writeLog: rows of several populations")
		}
		idx[k] = r.i
		preds[k], versions[k], variants[k], latency[k], ts[k], ids[k] = r.pred(), version, "stable", 1.5, r.at.UnixMilli(), r.id
	}
	rec, err := dataset.Take(rows[0].pop.rec, idx)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var schema dataset.Schema
	var cols []arrow.Array
	for _, in := range f.m.Manifest.Inputs {
		schema.Fields = append(schema.Fields, in)
		c := rec.Column(rec.Schema().FieldIndices(in.Name)[0])
		c.Retain()
		cols = append(cols, c)
	}
	own := map[string]arrow.Array{
		serving.LogPrediction: dataset.Float64Array(preds), serving.LogVersion: dataset.Int64Array(versions, nil),
		serving.LogVariant: dataset.StringArray(variants, nil), serving.LogLatencyMs: dataset.Float64Array(latency),
		serving.LogTimeMs: dataset.Int64Array(ts, nil), serving.LogPredictionID: dataset.StringArray(ids, nil),
	}
	for _, fl := range serving.LogFields {
		schema.Fields = append(schema.Fields, fl)
		cols = append(cols, own[fl.Name])
	}
	path := filepath.Join(dir, fmt.Sprintf("%d-%d-%d.parquet", flushed.UnixMilli(), os.Getpid(), seq))
	writeParquet(t, path, schema, cols)
	for _, c := range cols {
		c.Release()
	}
	return path
}

// mwLabel is one row of a labels file.
type mwLabel struct {
	id    string
	label float64
	at    time.Time
}

// labelsOf labels rows with their true outcomes, after after.
func labelsOf(rows []mwRow, after time.Duration) []mwLabel {
	out := make([]mwLabel, len(rows))
	for k, r := range rows {
		out[k] = mwLabel{id: r.id, label: r.label(), at: r.at.Add(after)}
	}
	return out
}

// writeLabelsCSV writes a labels file (id, label, time in Unix ms).
func writeLabelsCSV(t *testing.T, path string, ls []mwLabel) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,label,time\n")
	for _, l := range ls {
		fmt.Fprintf(&b, "%s,%g,%d\n", l.id, l.label, l.at.UnixMilli())
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// push pushes ls as a label batch of model at time at.
func (f *mwFixture) push(t *testing.T, name string, at time.Time, ls []mwLabel) registry.LabelBatch {
	t.Helper()
	file := writeLabelsCSV(t, filepath.Join(t.TempDir(), "labels.csv"), ls)
	b, rep, err := labels.Push(f.e.ctx, f.e.store, f.e.reg, labels.PushInput{Model: name, File: file, PushedBy: "test", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != int64(len(ls)) || rep.AlreadyPushed {
		t.Fatalf("push: %s", rep)
	}
	return b
}

// binaryMetrics are the metrics report.Build shows for labels and
// predictions: metrics.Binary at threshold 0.5 without its row count and
// undefined values.
func binaryMetrics(labels, preds []float64) map[string]float64 {
	m := metrics.Binary(labels, preds, 0.5)
	delete(m, "rows")
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(m, k)
		}
	}
	return m
}

// sameMetrics compares metric maps to a relative 1e-12 (the order of
// summation is the same, so they are normally identical).
func sameMetrics(got, want map[string]float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("metrics %v, want %v", got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-w) > 1e-12*max(1, math.Abs(w)) {
			return fmt.Errorf("metric %s = %v, want %v (all: %v)", k, g, w, got)
		}
	}
	return nil
}

// mwConfig is a monitor step's configuration as the spec decoder fills it
// in (window 10m, min_rows 200, min_labels 500, the drift defaults).
func mwConfig() pipelines.MonitorConfig {
	return pipelines.MonitorConfig{
		Interval: pipelines.Duration(time.Minute), PSIThreshold: 0.2, MinRows: 200, Window: pipelines.Duration(10 * time.Minute),
		Cooldown: pipelines.Duration(time.Hour), DriftShare: 0.5, MinLabels: pipelines.DefaultMinLabels,
		Drift: pipelines.ReportDrift{SmallReference: pipelines.DefaultSmallReference, DatasetShare: pipelines.DefaultDatasetShare},
	}
}

func hasNote(w monitor.Window, sub string) bool {
	return slices.ContainsFunc(w.Notes, func(n string) bool { return strings.Contains(n, sub) })
}

// TestMonitorWindow measures single windows over request logs written as
// the model server writes them and labels pushed with labels.Push, and
// checks every figure against what was served: rows of [End-Window, End)
// only, drift, the live metrics equal to metrics.Binary over the joined
// rows of the performance window (shifted by the label delay), coverage,
// the minimum-sample rule, and the notes of a model without traffic or
// alias.
func TestMonitorWindow(t *testing.T) {
	f := newMWFixture(t)
	end := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) time.Time { return end.Add(d) }

	// span is one request log file: n rows predicted over [from, to) (from
	// End), flushed at to; the first labelled of them get their true
	// label a minute after the prediction.
	type span struct {
		from, to time.Duration
		n        int
		labelled int
		drift    bool
	}
	tests := []struct {
		name  string
		spans []span
		// alias (default production), min_labels (0: default), a metric
		// rule, and the label delay.
		alias     string
		minLabels int
		metric    bool
		delay     time.Duration
		// Expectations: rows in the window, labelled rows and coverage of
		// the performance window, metrics shown, why withheld, dataset
		// drift, a note containing note, the version measured.
		rows     int64
		labeled  int64
		coverage float64
		metrics  bool
		withheld string
		drifted  bool
		note     string
		version  int64
	}{
		{
			name:  "training population, enough labels",
			spans: []span{{from: -10 * time.Minute, to: -5 * time.Minute, n: 500, labelled: 350}, {from: -5 * time.Minute, to: 0, n: 500, labelled: 350}},
			rows:  1000, labeled: 700, coverage: 0.7, metrics: true, version: 1,
		},
		{
			name:  "drifted population",
			spans: []span{{from: -10 * time.Minute, to: 0, n: 1000, labelled: 600, drift: true}},
			rows:  1000, labeled: 600, coverage: 0.6, metrics: true, drifted: true, version: 1,
		},
		{
			name:  "below min_labels",
			spans: []span{{from: -10 * time.Minute, to: 0, n: 1000, labelled: 300}},
			rows:  1000, labeled: 300, coverage: 0.3, withheld: "300 labelled rows, 500 needed to show metrics", version: 1,
		},
		{
			name:      "min_labels unset is the default 500",
			spans:     []span{{from: -10 * time.Minute, to: 0, n: 1000, labelled: 499}},
			minLabels: -1, rows: 1000, labeled: 499, coverage: 0.499, withheld: "499 labelled rows, 500 needed", version: 1,
		},
		{
			name:      "min_labels lowered",
			spans:     []span{{from: -10 * time.Minute, to: 0, n: 1000, labelled: 300}},
			minLabels: 300, rows: 1000, labeled: 300, coverage: 0.3, metrics: true, version: 1,
		},
		{
			name:   "no labels at all, metric rule set",
			spans:  []span{{from: -10 * time.Minute, to: 0, n: 1000}},
			metric: true, rows: 1000, withheld: "no labels joined", version: 1,
		},
		{
			name:  "no labels at all, no metric rule",
			spans: []span{{from: -10 * time.Minute, to: 0, n: 1000}},
			rows:  1000, version: 1,
		},
		{
			name:   "labels only for predictions before the window",
			spans:  []span{{from: -30 * time.Minute, to: -20 * time.Minute, n: 600, labelled: 600}, {from: -10 * time.Minute, to: 0, n: 400}},
			metric: true, rows: 400, withheld: "0 labelled rows, 500 needed", version: 1,
			note: "labels were configured but no scored row had one",
		},
		{
			// One file from End-15m to End+5m, a row every 0.6 s: rows 500
			// (at End-10m, the window's start, included) to 1499
			// (End-0.6s) count; row 1500, at End itself, does not.
			name:  "rows outside the window in the same file are ignored",
			spans: []span{{from: -15 * time.Minute, to: 5 * time.Minute, n: 2000, labelled: 2000}},
			rows:  1000, labeled: 1000, coverage: 1, metrics: true, version: 1,
		},
		{
			// Drifted rows before the window (in a file flushed at its
			// start, so read) and after it do not count.
			name: "drifted rows just outside the window are ignored",
			spans: []span{
				{from: -20 * time.Minute, to: -10 * time.Minute, n: 1000, drift: true},
				{from: -10 * time.Minute, to: 0, n: 1000},
				{from: 0, to: 10 * time.Minute, n: 1000, drift: true},
			},
			rows: 1000, version: 1,
		},
		{
			// Performance over [End-70m, End-60m): 550 of its 600 rows
			// labelled; the drift window's rows are labelled too, but do
			// not count for performance.
			name: "label delay shifts the performance window",
			spans: []span{
				{from: -70 * time.Minute, to: -60 * time.Minute, n: 600, labelled: 550},
				{from: -60 * time.Minute, to: -10 * time.Minute, n: 100, labelled: 100},
				{from: -10 * time.Minute, to: 0, n: 400, labelled: 400},
			},
			delay: time.Hour, rows: 400, labeled: 550, coverage: 550.0 / 600, metrics: true, version: 1,
		},
		{
			name:  "label delay, nothing served in the performance window",
			spans: []span{{from: -10 * time.Minute, to: 0, n: 400, labelled: 400}},
			delay: time.Hour, metric: true, rows: 400, withheld: "0 labelled rows", version: 1,
		},
		{name: "no request logs", rows: 0, note: "no request logged for", version: 1},
		{
			name:  "alias that does not exist",
			spans: []span{{from: -10 * time.Minute, to: 0, n: 400, labelled: 400}},
			alias: "canary", note: "@canary does not exist", version: 0,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("mw-%d", i)
			a := f.model(t, name)
			cfg := mwConfig()
			switch {
			case tt.minLabels > 0:
				cfg.MinLabels = tt.minLabels
			case tt.minLabels < 0:
				cfg.MinLabels = 0
			}
			if tt.metric {
				cfg.Metric = &pipelines.MonitorMetric{Name: "auc", Threshold: 0.7, Windows: 3}
			}
			if tt.delay > 0 {
				cfg.Labels = &pipelines.MonitorLabels{Window: pipelines.DefaultLabelWindow, Delay: pipelines.Duration(tt.delay)}
			}
			var served []mwRow
			var ls []mwLabel
			for k, s := range tt.spans {
				pop := f.pop
				if s.drift {
					pop = f.drifted
				}
				rows := mwSpread(pop, len(served), s.n, at(s.from), at(s.to), fmt.Sprintf("p%d", k))
				f.writeLog(t, a, name, at(s.to), k+1, rows)
				served = append(served, rows...)
				ls = append(ls, labelsOf(rows[:s.labelled], time.Minute)...)
			}
			if len(ls) > 0 {
				f.push(t, name, end, ls)
			}
			alias := tt.alias
			if alias == "" {
				alias = "production"
			}
			out, err := a.MonitorWindow(f.e.ctx, activities.MonitorWindowInput{Model: name, Alias: alias, Config: cfg, End: end})
			if err != nil {
				t.Fatal(err)
			}
			w := out.Window
			t.Logf("window: rows %d, drift share %.3f (%v), labelled %d (coverage %.3f), metrics %v, withheld %q, labels %+v, notes %q",
				w.Rows, w.DriftShare, w.DatasetDrift, w.Labeled, w.Coverage, w.Metrics, w.Withheld, w.Labels, w.Notes)

			start, perfStart, perfEnd := end.Add(-10*time.Minute), end.Add(-10*time.Minute-tt.delay), end.Add(-tt.delay)
			if w.Model != name || w.Version != tt.version || !w.Start.Equal(start) || !w.End.Equal(end) {
				t.Errorf("window of %s:%d over [%s, %s), want %s:%d over [%s, %s)", w.Model, w.Version, w.Start, w.End, name, tt.version, start, end)
			}
			if tt.alias != "" || len(tt.spans) == 0 {
				if w.Rows != 0 || !hasNote(w, tt.note) || w.Metrics != nil || w.Health != nil {
					t.Errorf("window %+v, want no rows and a note %q", w, tt.note)
				}
				return
			}
			if (tt.note == "" && len(w.Notes) > 0) || (tt.note != "" && !hasNote(w, tt.note)) {
				t.Errorf("notes %q on a window with traffic, want a note %q", w.Notes, tt.note)
			}
			if !w.PerformanceStart.Equal(perfStart) || !w.PerformanceEnd.Equal(perfEnd) {
				t.Errorf("performance window [%s, %s), want [%s, %s)", w.PerformanceStart, w.PerformanceEnd, perfStart, perfEnd)
			}

			// What the window should have seen, from the rows served.
			labelled := map[string]bool{}
			for _, l := range ls {
				labelled[l.id] = true
			}
			var rows, perfRows int64
			var ys, ps []float64
			for _, r := range served {
				if !r.at.Before(start) && r.at.Before(end) {
					rows++
				}
				if !r.at.Before(perfStart) && r.at.Before(perfEnd) {
					perfRows++
					if labelled[r.id] {
						ys, ps = append(ys, r.label()), append(ps, r.pred())
					}
				}
			}
			if rows != tt.rows || int64(len(ys)) != tt.labeled {
				t.Fatalf("test data: %d rows in the window, %d labelled in the performance window; the case says %d and %d", rows, len(ys), tt.rows, tt.labeled)
			}
			if w.Rows != tt.rows || w.Labeled != tt.labeled {
				t.Errorf("%d rows, %d labelled; want %d, %d", w.Rows, w.Labeled, tt.rows, tt.labeled)
			}
			if math.Abs(w.Coverage-tt.coverage) > 1e-12 || (perfRows > 0 && math.Abs(w.Coverage-float64(len(ys))/float64(perfRows)) > 1e-12) {
				t.Errorf("coverage %v, want %v (%d labelled of %d rows)", w.Coverage, tt.coverage, len(ys), perfRows)
			}
			if tt.metrics {
				if w.Metrics == nil || w.Withheld != "" {
					t.Errorf("metrics %v withheld %q, want metrics", w.Metrics, w.Withheld)
				} else if err := sameMetrics(w.Metrics, binaryMetrics(ys, ps)); err != nil {
					t.Error(err)
				}
			} else if w.Metrics != nil || !strings.Contains(w.Withheld, tt.withheld) || (tt.withheld == "") != (w.Withheld == "") {
				t.Errorf("metrics %v withheld %q, want none, withheld %q", w.Metrics, w.Withheld, tt.withheld)
			}
			// Every label pushed is accounted for by this first window.
			if n := int64(len(ls)); w.Labels != (monitor.LabelCounts{Total: n, Joined: n}) {
				t.Errorf("labels %+v, want %d all joined", w.Labels, n)
			}

			// Drift: every input, and the predictions.
			if w.Features != len(f.m.Manifest.Inputs) || len(w.Drift) != w.Features || w.Prediction == nil {
				t.Errorf("%d features (%d tests), prediction test %v; want %d features and a prediction test", w.Features, len(w.Drift), w.Prediction, len(f.m.Manifest.Inputs))
			}
			if w.DatasetDrift != tt.drifted || (tt.drifted && w.DriftShare < 0.5) || (!tt.drifted && w.DriftShare > 0.25) {
				t.Errorf("drift share %.3f, dataset drift %v; want drifted %v (drifted features %v)", w.DriftShare, w.DatasetDrift, tt.drifted, w.Drifted())
			}
			var sum float64
			for _, r := range served {
				if !r.at.Before(start) && r.at.Before(end) {
					sum += r.pred()
				}
			}
			if want := sum / float64(rows); math.Abs(w.PredictionMean-want) > 1e-9 {
				t.Errorf("prediction mean %v, want %v", w.PredictionMean, want)
			}
		})
	}
}

// TestMonitorWindowLabelAccounting runs consecutive windows, each passing
// the Accounted it got to the next, and checks that every label batch is
// accounted for exactly once, by the first window that sees it, with its
// unknown IDs, duplicates, labels too late (more than the label window after
// their prediction) and labels dated before their prediction counted.
func TestMonitorWindowLabelAccounting(t *testing.T) {
	f := newMWFixture(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	cfg := mwConfig()
	cfg.MinLabels = 10
	cfg.Labels = &pipelines.MonitorLabels{Window: pipelines.Duration(time.Hour)}
	const name = "accounting"
	a := f.model(t, name)

	// Served: 10 old rows 68 minutes before t0 (within the scan of the
	// first window, [t0-10m-1h, ...)), then 200 rows in each of the 10
	// minutes windows before t0, before t0+10m and before t0+20m (c).
	old := mwSpread(f.pop, 0, 10, t0.Add(-68*time.Minute), t0.Add(-67*time.Minute), "old")
	pa := mwSpread(f.pop, 100, 200, t0.Add(-20*time.Minute), t0.Add(-10*time.Minute), "a")
	pb := mwSpread(f.pop, 300, 200, t0.Add(-10*time.Minute), t0, "b")
	pc := mwSpread(f.pop, 500, 200, t0, t0.Add(10*time.Minute), "c")
	f.writeLog(t, a, name, t0.Add(-67*time.Minute), 1, old)
	f.writeLog(t, a, name, t0.Add(-10*time.Minute), 2, pa)
	f.writeLog(t, a, name, t0, 3, pb)
	f.writeLog(t, a, name, t0.Add(10*time.Minute), 4, pc)

	// Batch 1, pushed at t0-1m: a-0..99 and b-0..49 a minute after their
	// predictions (150 joined); a-0..4 again, later, with the other label
	// (5 duplicates; the later label wins); 7 unknown IDs; old-0..2
	// labelled at t0-5m, 63 minutes after their predictions (3 too late);
	// c-0..3 labelled at t0-5m, before their predictions (4).
	var b1 []mwLabel
	b1 = append(b1, labelsOf(pa[:100], time.Minute)...)
	b1 = append(b1, labelsOf(pb[:50], time.Minute)...)
	for _, r := range pa[:5] {
		b1 = append(b1, mwLabel{id: r.id, label: 1 - r.label(), at: r.at.Add(2 * time.Minute)})
	}
	for k := range 7 {
		b1 = append(b1, mwLabel{id: fmt.Sprintf("nope-%d", k), label: 1, at: t0.Add(-2 * time.Minute)})
	}
	for _, r := range old[:3] {
		b1 = append(b1, mwLabel{id: r.id, label: r.label(), at: t0.Add(-5 * time.Minute)})
	}
	for _, r := range pc[:4] {
		b1 = append(b1, mwLabel{id: r.id, label: r.label(), at: t0.Add(-5 * time.Minute)})
	}
	batch1 := f.push(t, name, t0.Add(-time.Minute), b1)

	window := func(t *testing.T, end time.Time, accounted int64) activities.MonitorWindowOutput {
		t.Helper()
		out, err := a.MonitorWindow(f.e.ctx, activities.MonitorWindowInput{Model: name, Alias: "production", Config: cfg, End: end, Accounted: accounted})
		if err != nil {
			t.Fatal(err)
		}
		w := out.Window
		t.Logf("window to %s: accounted %d -> %d, labels %+v, rows %d, labelled %d, metrics %v, withheld %q",
			end.Format(time.TimeOnly), accounted, out.Accounted, w.Labels, w.Rows, w.Labeled, w.Metrics, w.Withheld)
		return out
	}

	// Window 1: [t0-10m, t0) accounts for batch 1; its performance is the
	// 50 labelled b rows.
	w1 := window(t, t0, 0)
	if want := (monitor.LabelCounts{Total: 169, Joined: 150, Duplicate: 5, Unknown: 7, OutsideWindow: 3, BeforePrediction: 4}); w1.Window.Labels != want {
		t.Errorf("window 1 labels %+v, want %+v", w1.Window.Labels, want)
	}
	if w1.Accounted != batch1.ID || w1.Window.Rows != 200 || w1.Window.Labeled != 50 || w1.Window.Metrics == nil {
		t.Errorf("window 1: accounted %d (want %d), %d rows, %d labelled, metrics %v; want 200 rows, 50 labelled, metrics",
			w1.Accounted, batch1.ID, w1.Window.Rows, w1.Window.Labeled, w1.Window.Metrics)
	}
	ys, ps := make([]float64, 50), make([]float64, 50)
	for k, r := range pb[:50] {
		ys[k], ps[k] = r.label(), r.pred()
	}
	if err := sameMetrics(w1.Window.Metrics, binaryMetrics(ys, ps)); err != nil {
		t.Errorf("window 1: %v", err)
	}

	// Batch 2, pushed at t0+5m: c-100..159 (60 joined) and 2 unknown IDs.
	b2 := labelsOf(pc[100:160], 30*time.Second)
	b2 = append(b2, mwLabel{id: "nope-100", label: 0, at: t0.Add(5 * time.Minute)}, mwLabel{id: "nope-101", label: 1, at: t0.Add(5 * time.Minute)})
	batch2 := f.push(t, name, t0.Add(5*time.Minute), b2)

	// Window 2 accounts for batch 2 only; a retry of it (the same input)
	// says the same.
	want2 := monitor.LabelCounts{Total: 62, Joined: 60, Unknown: 2}
	for _, try := range []string{"first", "retry"} {
		w2 := window(t, t0.Add(10*time.Minute), w1.Accounted)
		if w2.Window.Labels != want2 || w2.Accounted != batch2.ID {
			t.Errorf("window 2 (%s): labels %+v, accounted %d; want %+v, %d", try, w2.Window.Labels, w2.Accounted, want2, batch2.ID)
		}
		if w2.Window.Rows != 200 || w2.Window.Labeled != 60 {
			t.Errorf("window 2 (%s): %d rows, %d labelled; want 200, 60", try, w2.Window.Rows, w2.Window.Labeled)
		}
	}

	// Window 3: nothing new to account for.
	w3 := window(t, t0.Add(20*time.Minute), batch2.ID)
	if w3.Window.Labels != (monitor.LabelCounts{}) || w3.Accounted != batch2.ID || w3.Window.Rows != 0 {
		t.Errorf("window 3: labels %+v, accounted %d, %d rows; want nothing, %d, 0 rows", w3.Window.Labels, w3.Accounted, w3.Window.Rows, batch2.ID)
	}

	// Over the windows, each label was counted once.
	var sum monitor.LabelCounts
	for _, c := range []monitor.LabelCounts{w1.Window.Labels, want2, w3.Window.Labels} {
		sum.Total += c.Total
		sum.Joined += c.Joined
		sum.Unknown += c.Unknown
		sum.Duplicate += c.Duplicate
		sum.OutsideWindow += c.OutsideWindow
		sum.BeforePrediction += c.BeforePrediction
	}
	if sum.Total != int64(len(b1)+len(b2)) || sum.Total != sum.Joined+sum.Unknown+sum.Duplicate+sum.OutsideWindow+sum.BeforePrediction {
		t.Errorf("over the windows %+v, want %d labels each counted once", sum, len(b1)+len(b2))
	}
}

// TestMonitorWindowRelabelAcrossWindows: an ID labelled again in a later
// batch (a correction) after an earlier window counted its first label as
// joined. labels.Join counts the extra labels of an ID as Duplicate, and
// LabelCounts.Joined is "one per labelled prediction"; over consecutive
// windows the prediction must not be counted as joined twice.
func TestMonitorWindowRelabelAcrossWindows(t *testing.T) {
	f := newMWFixture(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	cfg := mwConfig()
	cfg.Labels = &pipelines.MonitorLabels{Window: pipelines.Duration(time.Hour)}
	const name = "relabel"
	a := f.model(t, name)
	rows := mwSpread(f.pop, 0, 100, t0.Add(-10*time.Minute), t0, "r")
	f.writeLog(t, a, name, t0, 1, rows)
	b1 := f.push(t, name, t0.Add(-time.Minute), labelsOf(rows[:10], time.Second))
	w1, err := a.MonitorWindow(f.e.ctx, activities.MonitorWindowInput{Model: name, Alias: "production", Config: cfg, End: t0})
	if err != nil {
		t.Fatal(err)
	}
	if w1.Window.Labels != (monitor.LabelCounts{Total: 10, Joined: 10}) || w1.Accounted != b1.ID {
		t.Fatalf("window 1: labels %+v, accounted %d", w1.Window.Labels, w1.Accounted)
	}
	// r-0 is labelled again, with the other outcome.
	f.push(t, name, t0.Add(time.Minute), []mwLabel{{id: "r-0", label: 1 - rows[0].label(), at: t0.Add(time.Minute)}})
	w2, err := a.MonitorWindow(f.e.ctx, activities.MonitorWindowInput{Model: name, Alias: "production", Config: cfg, End: t0.Add(10 * time.Minute), Accounted: w1.Accounted})
	if err != nil {
		t.Fatal(err)
	}
	if want := (monitor.LabelCounts{Total: 1, Duplicate: 1}); w2.Window.Labels != want {
		t.Errorf("a label for an ID already joined in an earlier window's batch: window 2 labels %+v, want %+v", w2.Window.Labels, want)
	}
}

// TestMonitorWindowLateLabelsOfOldPredictions: labels pushed in a window
// whose predictions are older than the window's start minus the label
// window. One came 2h after its prediction (too late: OutsideWindow); one
// is dated a minute after its prediction, 3h ago, and was only pushed now
// (it joins: Joined). Neither ID is unknown: both predictions are in the
// request logs.
func TestMonitorWindowLateLabelsOfOldPredictions(t *testing.T) {
	f := newMWFixture(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	cfg := mwConfig()
	cfg.Labels = &pipelines.MonitorLabels{Window: pipelines.Duration(time.Hour)}
	const name = "late"
	a := f.model(t, name)
	old := mwSpread(f.pop, 0, 2, t0.Add(-3*time.Hour), t0.Add(-3*time.Hour+2*time.Second), "old")
	f.writeLog(t, a, name, t0.Add(-3*time.Hour+2*time.Second), 1, old)
	cur := mwSpread(f.pop, 10, 100, t0.Add(-10*time.Minute), t0, "cur")
	f.writeLog(t, a, name, t0, 2, cur)
	f.push(t, name, t0.Add(-time.Minute), []mwLabel{
		{id: old[0].id, label: old[0].label(), at: old[0].at.Add(2 * time.Hour)},
		{id: old[1].id, label: old[1].label(), at: old[1].at.Add(time.Minute)},
	})
	out, err := a.MonitorWindow(f.e.ctx, activities.MonitorWindowInput{Model: name, Alias: "production", Config: cfg, End: t0})
	if err != nil {
		t.Fatal(err)
	}
	if want := (monitor.LabelCounts{Total: 2, Joined: 1, OutsideWindow: 1}); out.Window.Labels != want {
		t.Errorf("labels of predictions made before window start - label window: labels %+v, want %+v", out.Window.Labels, want)
	}
}

// TestMonitorWindowPollsLabelSource: a labels directory (relative to the
// spec) is polled by every window: each new CSV file is pushed once, as a
// batch pushed by the monitor, and accounted for by the window that pushed
// it; a copy of an already pushed file is not pushed again.
func TestMonitorWindowPollsLabelSource(t *testing.T) {
	f := newMWFixture(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	const name = "polled"
	a := f.model(t, name)
	specDir := t.TempDir()
	src := filepath.Join(specDir, "labels")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := mwConfig()
	cfg.MinLabels = 50
	cfg.Labels = &pipelines.MonitorLabels{Source: "labels", Window: pipelines.DefaultLabelWindow}
	rows := mwSpread(f.pop, 0, 400, t0.Add(-10*time.Minute), t0, "q")
	f.writeLog(t, a, name, t0, 1, rows)

	window := func(t *testing.T, accounted int64) activities.MonitorWindowOutput {
		t.Helper()
		out, err := a.MonitorWindow(f.e.ctx, activities.MonitorWindowInput{Model: name, Alias: "production", Config: cfg, SpecDir: specDir, End: t0, Accounted: accounted})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Window.Notes) > 0 {
			t.Errorf("notes %q", out.Window.Notes)
		}
		return out
	}
	batches := func(t *testing.T) []registry.LabelBatch {
		t.Helper()
		bs, err := f.e.reg.LabelBatches(f.e.ctx, name, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}

	// Nothing there yet.
	w0 := window(t, 0)
	if n := len(batches(t)); n != 0 || w0.Window.Labels.Total != 0 || w0.Window.Withheld != "" || w0.Window.Rows != 400 {
		t.Fatalf("empty source: %d batches, window %+v", n, w0.Window)
	}

	writeLabelsCSV(t, filepath.Join(src, "2026-12-01.csv"), labelsOf(rows[:100], time.Minute))
	w1 := window(t, w0.Accounted)
	bs := batches(t)
	if len(bs) != 1 || bs[0].PushedBy != "monitor/"+name || bs[0].Rows != 100 || !strings.HasSuffix(bs[0].Source, "2026-12-01.csv") {
		t.Fatalf("after the first file: batches %+v", bs)
	}
	if w1.Window.Labels != (monitor.LabelCounts{Total: 100, Joined: 100}) || w1.Accounted != bs[0].ID || w1.Window.Labeled != 100 {
		t.Errorf("window 1: labels %+v, accounted %d, %d labelled", w1.Window.Labels, w1.Accounted, w1.Window.Labeled)
	}

	// A second file, and a copy of the first under another name.
	writeLabelsCSV(t, filepath.Join(src, "2026-12-02.csv"), labelsOf(rows[100:150], time.Minute))
	first, err := os.ReadFile(filepath.Join(src, "2026-12-01.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "2026-12-01-copy.csv"), first, 0o644); err != nil {
		t.Fatal(err)
	}
	w2 := window(t, w1.Accounted)
	bs = batches(t)
	if len(bs) != 2 || bs[1].Rows != 50 || !strings.HasSuffix(bs[1].Source, "2026-12-02.csv") {
		t.Fatalf("after the second file: batches %+v", bs)
	}
	if w2.Window.Labels != (monitor.LabelCounts{Total: 50, Joined: 50}) || w2.Accounted != bs[1].ID || w2.Window.Labeled != 150 {
		t.Errorf("window 2: labels %+v, accounted %d, %d labelled", w2.Window.Labels, w2.Accounted, w2.Window.Labeled)
	}

	// Polling again pushes nothing.
	w3 := window(t, w2.Accounted)
	if n := len(batches(t)); n != 2 || w3.Window.Labels != (monitor.LabelCounts{}) || w3.Accounted != w2.Accounted {
		t.Errorf("third poll: %d batches, labels %+v, accounted %d", n, w3.Window.Labels, w3.Accounted)
	}
}

// TestMonitorWindowHealth reads a real model server's health over HTTP: the
// first window has no previous scrape (no Health), the second, after some
// predictions, a request rate and a p99 latency above zero. The server's
// own request logs are the windows' rows.
func TestMonitorWindowHealth(t *testing.T) {
	f := newMWFixture(t)
	const name = "served"
	a := f.model(t, name)
	srv := serving.New(serving.Options{RequestLogDir: a.RequestLogDir, FlushInterval: 20 * time.Millisecond, Logger: mwQuiet})
	defer srv.Close()
	if err := srv.SetDeployment(name, serving.Deployment{Stable: serving.Target{Version: 1, BundleURI: f.v.BundleURI}}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	cfg := mwConfig()
	in := activities.MonitorWindowInput{Model: name, Alias: "production", Config: cfg, Servers: []string{hs.URL}, End: time.Now()}

	out1, err := a.MonitorWindow(f.e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out1.Window.Health != nil || len(out1.Health) != 1 || out1.Health[0].Time.IsZero() || out1.Window.Rows != 0 {
		t.Fatalf("first window: health %+v, scrapes %+v, %d rows; want no health, one scrape, no rows", out1.Window.Health, out1.Health, out1.Window.Rows)
	}

	// 30 requests of 10 customers each.
	instances := mwInstances(t, f.pop.rec, f.m.Manifest.Inputs, 300)
	cl := &serving.Client{BaseURL: hs.URL}
	for k := 0; k < len(instances); k += 10 {
		if _, err := cl.Predict(f.e.ctx, name, instances[k:k+10]); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the server's flush of the request log.
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, err := serving.RequestLogFiles(a.RequestLogDir, name, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, p := range files {
			r, err := dataset.OpenParquet(p)
			if err != nil {
				t.Fatal(err)
			}
			n += r.NumRows()
			r.Close()
		}
		if n == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server logged %d rows of 300", n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	in.Prev, in.End = out1.Health, time.Now()
	out2, err := a.MonitorWindow(f.e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	h := out2.Window.Health
	t.Logf("second window: health %+v, rows %d", h, out2.Window.Rows)
	if h == nil || h.RequestRate <= 0 || h.P99Ms <= 0 || h.P50Ms <= 0 || h.P50Ms > h.P99Ms || h.ErrorRate != 0 || h.RSSBytes <= 0 {
		t.Errorf("second window health %+v; want requests, p50 <= p99 > 0, no errors, resident memory", h)
	}
	if len(out2.Health) != 1 || !out2.Health[0].Time.After(out1.Health[0].Time) || out2.Health[0].Requests != 30 {
		t.Errorf("second scrape %+v; want 30 requests, after the first", out2.Health)
	}
	if out2.Window.Rows != 300 {
		t.Errorf("second window: %d rows, want the 300 served", out2.Window.Rows)
	}

	// A server that cannot be read gives no health, not an error.
	hs2 := httptest.NewServer(nil)
	hs2.Close()
	in.Servers, in.Prev = []string{hs2.URL}, out2.Health
	out3, err := a.MonitorWindow(f.e.ctx, in)
	if err != nil || out3.Window.Health != nil {
		t.Errorf("unreachable server: health %+v, %v; want none and no error", out3.Window.Health, err)
	}
}

// mwInstances turns the first n rows of rec into JSON instances of the
// model's inputs.
func mwInstances(t *testing.T, rec arrow.Record, inputs []dataset.Field, n int) []map[string]any {
	t.Helper()
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{}
	}
	for _, f := range inputs {
		col := rec.Column(rec.Schema().FieldIndices(f.Name)[0])
		for i := range rows {
			v, ok := dataset.Value(col, i)
			if !ok {
				t.Fatalf("column %s: %T", f.Name, col)
			}
			rows[i][f.Name] = v
		}
	}
	return rows
}

// TestPrepareRetrain: the retrain's new data are exactly the served rows of
// [End-Since, End) whose labels joined, with the model's input features as
// served and the label under the model's target, published content-
// addressed; without any joined label there is no data and no error.
func TestPrepareRetrain(t *testing.T) {
	f := newMWFixture(t)
	end := time.Now().UTC().Truncate(time.Second)
	const name = "retrain"
	a := f.model(t, name)
	// Two hours served; labels for every other row of the last hour, for
	// 50 rows of the hour before (outside Since), and for unknown IDs.
	before := mwSpread(f.pop, 0, 100, end.Add(-2*time.Hour), end.Add(-time.Hour), "p")
	recent := mwSpread(f.pop, 100, 300, end.Add(-time.Hour), end, "q")
	f.writeLog(t, a, name, end.Add(-time.Hour), 1, before)
	f.writeLog(t, a, name, end.Add(-30*time.Minute), 2, recent[:150])
	f.writeLog(t, a, name, end, 3, recent[150:])
	var joined []mwRow
	for k, r := range recent {
		if k%2 == 0 {
			joined = append(joined, r)
		}
	}
	ls := labelsOf(joined, time.Minute)
	ls = append(ls, labelsOf(before[:50], time.Minute)...)
	ls = append(ls, mwLabel{id: "nope", label: 1, at: end.Add(-time.Minute)})
	f.push(t, name, end.Add(-time.Minute), ls)

	d := registry.MonitorDecision{ID: 7, Model: name, Window: end, Action: monitor.ActionRetrain, Reason: "auc 0.61 below 0.75 for 3 windows"}
	in := activities.PrepareRetrainInput{Model: name, Alias: "production", End: end, Since: time.Hour, Decision: d}
	out, err := a.PrepareRetrain(f.e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", out)
	if !strings.Contains(out.Trigger, "monitor decision #7 of "+name) || !strings.Contains(out.Trigger, d.Reason) {
		t.Errorf("trigger %q", out.Trigger)
	}
	if out.Data == "" {
		t.Fatal("no retrain data")
	}
	sha := hashURI(t, out.Data)
	if out.Data != f.e.store.URI("datasets/"+sha+".parquet") || out.Rows != int64(len(joined)) {
		t.Fatalf("data %s (%d rows), want %s (%d rows)", out.Data, out.Rows, f.e.store.URI("datasets/"+sha+".parquet"), len(joined))
	}
	got := readParquet(t, out.Data)
	target := f.m.Manifest.Target
	var wantNames []string
	for _, in := range f.m.Manifest.Inputs {
		wantNames = append(wantNames, in.Name)
	}
	wantNames = append(wantNames, target)
	var gotNames []string
	for _, fl := range got.Schema().Fields() {
		gotNames = append(gotNames, fl.Name)
	}
	if !slices.Equal(gotNames, wantNames) || got.NumRows() != int64(len(joined)) {
		t.Fatalf("columns %v, %d rows; want %v, %d rows", gotNames, got.NumRows(), wantNames, len(joined))
	}
	idx := make([]int, len(joined))
	ys := make([]float64, len(joined))
	for k, r := range joined {
		idx[k], ys[k] = r.i, r.label()
	}
	want, err := dataset.Take(f.pop.rec, idx)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Release()
	for j, in := range f.m.Manifest.Inputs {
		w := want.Column(want.Schema().FieldIndices(in.Name)[0])
		if !array.Equal(got.Column(j), w) {
			t.Errorf("feature %s differs from the served rows", in.Name)
		}
	}
	if y := floats(t, got, target); !slices.Equal(y, ys) {
		t.Errorf("labels %v, want %v", y[:min(10, len(y))], ys[:min(10, len(ys))])
	}

	// The same inputs give the same dataset.
	again, err := a.PrepareRetrain(f.e.ctx, in)
	if err != nil || again.Data != out.Data {
		t.Errorf("again: %s, %v; want %s", again.Data, err, out.Data)
	}

	// No label joined in range: no data, no error.
	for _, tc := range []struct {
		name   string
		labels []mwLabel
	}{
		{"no label batch", nil},
		{"only unknown IDs and labels of older predictions", append(labelsOf(before[:20], time.Minute), mwLabel{id: "nope", label: 0, at: end.Add(-time.Minute)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "retrain-" + fmt.Sprint(len(tc.labels))
			a := f.model(t, name)
			f.writeLog(t, a, name, end.Add(-time.Hour), 1, before)
			f.writeLog(t, a, name, end, 2, recent)
			if tc.labels != nil {
				f.push(t, name, end.Add(-time.Minute), tc.labels)
			}
			out, err := a.PrepareRetrain(f.e.ctx, activities.PrepareRetrainInput{Model: name, Alias: "production", End: end, Since: time.Hour, Decision: d})
			if err != nil || out.Data != "" || out.Rows != 0 || out.Trigger == "" {
				t.Errorf("PrepareRetrain = %+v, %v; want no data, a trigger, no error", out, err)
			}
		})
	}
}
