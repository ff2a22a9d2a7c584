package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/labels"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/report"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/pipelines"
)

// requestLogColumns are the columns report.Build reads in request logs.
var requestLogColumns = report.Columns{
	Prediction: serving.LogPrediction, Version: serving.LogVersion,
	ID: serving.LogPredictionID, Time: serving.LogTimeMs,
}

// MonitorWindowInput asks for one monitor window's measurement.
type MonitorWindowInput struct {
	Model  string                  `json:"model"`
	Alias  string                  `json:"alias"`
	Config pipelines.MonitorConfig `json:"config"`
	// SpecDir resolves a relative label source.
	SpecDir string `json:"spec_dir,omitempty"`
	// End is the window's end (the check's time); the window is
	// [End-Config.Window, End).
	End time.Time `json:"end"`
	// Servers are the model servers whose health is read; Prev their
	// previous scrapes (parallel to Servers; empty the first time).
	Servers []string         `json:"servers,omitempty"`
	Prev    []serving.Health `json:"prev,omitempty"`
	// Accounted is the last label batch already accounted for by an
	// earlier window: this window accounts for the batches after it.
	Accounted int64 `json:"accounted,omitempty"`
}

// MonitorWindowOutput is the window and the servers' scrapes, for the next
// window's health.
type MonitorWindowOutput struct {
	Window monitor.Window   `json:"window"`
	Health []serving.Health `json:"health,omitempty"`
	// Accounted is the last label batch accounted for so far.
	Accounted int64 `json:"accounted,omitempty"`
}

// MonitorWindow measures one window of served traffic for the monitor:
// drift of every input feature and of the predictions against the training
// data of the model's alias (the report's statistics over the request log
// rows of the window), live metrics over the predictions whose late labels
// have joined (the performance window, shifted back by the label delay;
// shown only above the minimum sample), what became of the labels that
// arrived in the window (joined, unknown, duplicated, too late), and the
// model servers' health since the previous window. Label files arriving at
// the configured source are pushed first. Nothing is decided here (see
// internal/monitor) and nothing is recorded (RecordMonitorWindow).
func (a *Activities) MonitorWindow(ctx context.Context, in MonitorWindowInput) (MonitorWindowOutput, error) {
	cfg := in.Config
	end := in.End.UTC()
	start := end.Add(-cfg.Window.D())
	w := monitor.Window{Model: in.Model, Start: start, End: end}
	out := MonitorWindowOutput{Accounted: in.Accounted}
	pl := startPulse(ctx, Progress{Msg: "reading the model and its reference"})
	defer pl.stop()

	// Health first: it does not need the model.
	out.Health, w.Health = a.serverHealth(ctx, in)

	v, err := a.Registry.Resolve(ctx, in.Model+"@"+in.Alias)
	if errors.Is(err, registry.ErrNotFound) {
		w.Notes = append(w.Notes, fmt.Sprintf("%s@%s does not exist", in.Model, in.Alias))
		out.Window = w
		return out, nil
	}
	if err != nil {
		return out, err
	}
	w.Version = v.Version
	m, err := a.loadBundle(ctx, v.BundleURI)
	if err != nil {
		return out, err
	}
	input := a.referenceInput(ctx, v, m)
	input.Columns = requestLogColumns

	// Labels: push what arrived at the source, account for the batches of
	// this window, and join the labels of the performance window.
	delay := time.Duration(0)
	labelWindow := pipelines.DefaultLabelWindow.D()
	if l := cfg.Labels; l != nil {
		delay = l.Delay.D()
		if l.Window > 0 {
			labelWindow = l.Window.D()
		}
		if l.Source != "" {
			pl.set(Progress{Msg: "polling " + l.Source})
			src := l.Source
			if !artifact.Remote(src) {
				p, err := a.specPath(src, in.SpecDir)
				if err != nil {
					return out, invalid("labels source %s: %v", l.Source, err)
				}
				src = p
			}
			if _, err := labels.Poll(ctx, a.Store, a.Registry, in.Model, src, labels.PollOptions{PushedBy: "monitor/" + in.Model, Classes: m.Manifest.Classes}); err != nil {
				w.Notes = append(w.Notes, "labels source: "+err.Error())
			}
		}
	}
	perfStart, perfEnd := start.Add(-delay), end.Add(-delay)
	w.PerformanceStart, w.PerformanceEnd = perfStart, perfEnd
	var byID map[string]float64
	batches, err := a.Registry.LabelBatches(ctx, in.Model, perfStart.Add(-labelWindow))
	if err != nil {
		return out, err
	}
	if len(batches) > 0 {
		pl.set(Progress{Msg: fmt.Sprintf("joining %d label batch(es)", len(batches))})
		if w.Labels, out.Accounted, err = a.accountLabels(ctx, in.Model, batches, in.Accounted, labelWindow); err != nil {
			return out, err
		}
		files, err := a.batchFiles(ctx, batches)
		if err != nil {
			return out, err
		}
		logs, err := a.requestLogFiles(ctx, in.Model, perfStart)
		if err != nil {
			return out, err
		}
		if len(logs) > 0 {
			j, err := labels.Join(ctx, labels.JoinInput{RequestLogs: logs, LabelFiles: files, Window: labelWindow, From: perfStart, To: perfEnd})
			if err != nil {
				return out, fmt.Errorf("joining labels: %w", err)
			}
			byID = j.LabelsByID()
		}
	}

	first := start
	if perfStart.Before(first) {
		first = perfStart
	}
	files, err := a.requestLogFiles(ctx, in.Model, first)
	if err != nil {
		return out, err
	}
	if len(files) == 0 {
		w.Notes = append(w.Notes, fmt.Sprintf("no request logged for %s since %s", in.Model, first.Format(time.RFC3339)))
		out.Window = w
		return out, nil
	}
	input.Files, input.Display = files, filepath.Join(a.RequestLogDir, in.Model)
	dopts := monitorDriftOptions(cfg)
	opts := report.Options{From: start, To: end, Drift: &dopts, Pipeline: "monitor/" + in.Model, LogicalDate: end.Format(time.RFC3339)}
	if byID != nil && delay == 0 {
		opts.Labels = &report.Labels{ByID: byID, Source: fmt.Sprintf("%d label batch(es) joined by prediction ID", len(batches))}
	}
	pl.set(Progress{Msg: fmt.Sprintf("measuring %d request log file(s)", len(files))})
	sum, err := report.Build(ctx, input, opts)
	if err != nil {
		return out, badInput(ctx, fmt.Errorf("monitor window of %s: %w", in.Model, err))
	}
	fillWindow(&w, sum)
	perf := sum.Performance
	if byID != nil && delay > 0 {
		// The performance window is another range of the same logs.
		opts.From, opts.To = perfStart, perfEnd
		opts.Labels = &report.Labels{ByID: byID, Source: fmt.Sprintf("%d label batch(es) joined by prediction ID", len(batches))}
		ps, err := report.Build(ctx, input, opts)
		if err != nil {
			return out, badInput(ctx, fmt.Errorf("monitor performance window of %s: %w", in.Model, err))
		}
		perf = ps.Performance
		if ps.Rows > 0 && perf != nil {
			perf.Coverage = float64(perf.LabeledRows) / float64(ps.Rows)
		}
	}
	if perf != nil {
		w.Labeled, w.Coverage = perf.LabeledRows, perf.Coverage
		minLabels := cfg.MinLabels
		if minLabels <= 0 {
			minLabels = pipelines.DefaultMinLabels
		}
		if w.Labeled >= int64(minLabels) {
			w.Metrics = perf.Metrics
		} else {
			w.Withheld = fmt.Sprintf("%d labelled rows, %d needed to show metrics", w.Labeled, minLabels)
		}
	} else if cfg.Metric != nil {
		w.Withheld = "no labels joined"
	}
	out.Window = w
	return out, nil
}

// fillWindow copies a report summary's figures into the window.
func fillWindow(w *monitor.Window, s *report.Summary) {
	w.Rows = s.Rows
	w.Features = len(s.Drift.Columns)
	w.DriftShare, w.DatasetDrift = s.Drift.Share, s.Drift.Drifted
	for _, c := range s.Drift.Columns {
		w.Drift = append(w.Drift, monitor.FeatureDrift{Name: c.Column, Method: c.Method, Statistic: c.Statistic, PValue: c.PValue, Threshold: c.Threshold, Drifted: c.Drifted})
	}
	if p := s.Prediction; p.Method != "" {
		w.Prediction = &monitor.FeatureDrift{Name: p.Column, Method: p.Method, Statistic: p.Statistic, PValue: p.PValue, Threshold: p.Threshold, Drifted: p.Drifted}
	}
	w.PredictionMean = s.Prediction.Mean
	for _, note := range s.Warnings {
		// The window's own caveats; the per-figure "undefined" notes of an
		// empty window say the same as Rows 0.
		if !strings.HasPrefix(note, "figure ") {
			w.Notes = append(w.Notes, note)
		}
	}
}

// accountLabels joins the label batches the monitor has not accounted for
// yet (IDs after accounted) against the request logs, and returns what
// became of each label and the last batch accounted: every batch is
// accounted for once, by the first window that sees it. The logs scanned
// start a label window before the earliest label time of the new batches,
// so a late label of an old prediction counts as outside the window, not
// as an unknown ID; a label of an ID that an accounted batch labelled
// counts as a duplicate (the prediction was counted as labelled then).
func (a *Activities) accountLabels(ctx context.Context, model string, batches []registry.LabelBatch, accounted int64, labelWindow time.Duration) (monitor.LabelCounts, int64, error) {
	var fresh, earlier []registry.LabelBatch
	last := accounted
	for _, b := range batches {
		if b.ID > accounted {
			fresh = append(fresh, b)
			last = max(last, b.ID)
		} else {
			earlier = append(earlier, b)
		}
	}
	if len(fresh) == 0 {
		return monitor.LabelCounts{}, accounted, nil
	}
	files, err := a.batchFiles(ctx, fresh)
	if err != nil {
		return monitor.LabelCounts{}, accounted, err
	}
	earlierFiles, err := a.batchFiles(ctx, earlier)
	if err != nil {
		return monitor.LabelCounts{}, accounted, err
	}
	first, _, ok, err := labels.TimeRange(ctx, files)
	if err != nil {
		return monitor.LabelCounts{}, accounted, err
	}
	if !ok {
		return monitor.LabelCounts{}, last, nil
	}
	logs, err := a.requestLogFiles(ctx, model, first.Add(-labelWindow))
	if err != nil {
		return monitor.LabelCounts{}, accounted, err
	}
	j, err := labels.Join(ctx, labels.JoinInput{RequestLogs: logs, LabelFiles: files, Earlier: earlierFiles, Window: labelWindow})
	if err != nil {
		return monitor.LabelCounts{}, accounted, fmt.Errorf("joining labels: %w", err)
	}
	return monitor.LabelCounts(j.Counts), last, nil
}

// batchFiles are the local paths of label batches, oldest first.
func (a *Activities) batchFiles(ctx context.Context, batches []registry.LabelBatch) ([]string, error) {
	out := make([]string, 0, len(batches))
	for _, b := range batches {
		p, err := a.Store.Local(ctx, b.URI)
		if err != nil {
			return nil, fmt.Errorf("label batch %d: %w", b.ID, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// serverHealth scrapes the model servers and compares each scrape with the
// previous one: request and error rates, latency percentiles, CPU and
// memory over the window (summed over the servers; latency the worst).
func (a *Activities) serverHealth(ctx context.Context, in MonitorWindowInput) ([]serving.Health, *monitor.Health) {
	if len(in.Servers) == 0 {
		return nil, nil
	}
	scrapes := make([]serving.Health, len(in.Servers))
	var h monitor.Health
	windows := 0
	for i, s := range in.Servers {
		cur, err := serving.ScrapeHealth(ctx, a.httpClient(), s, in.Model)
		if err != nil {
			a.logger(ctx).Warn("reading model server health", "server", s, "error", err)
			continue
		}
		scrapes[i] = cur
		if i >= len(in.Prev) || in.Prev[i].Time.IsZero() {
			continue
		}
		wh := cur.Since(in.Prev[i])
		windows++
		h.RequestRate += wh.RequestRate
		h.CPUSeconds += wh.CPUCores * wh.Seconds
		h.RSSBytes += wh.ResidentBytes
		h.P50Ms = max(h.P50Ms, wh.P50Ms)
		h.P99Ms = max(h.P99Ms, wh.P99Ms)
		if wh.Requests > 0 {
			h.ErrorRate = max(h.ErrorRate, wh.ErrorRate)
		}
	}
	if windows == 0 {
		return scrapes, nil
	}
	return scrapes, &h
}

// monitorDriftOptions turns a monitor step's drift settings into the drift
// package's options (as a report step's).
func monitorDriftOptions(cfg pipelines.MonitorConfig) drift.Options {
	o := reportDriftOptions(&pipelines.ReportConfig{Drift: cfg.Drift})
	if cfg.PSIThreshold > 0 && cfg.Drift.Thresholds.PSI == 0 {
		o.PSIThreshold = cfg.PSIThreshold
	}
	return o
}

// MonitorRules are the judgement rules of a monitor step.
func MonitorRules(cfg pipelines.MonitorConfig) monitor.Rules {
	r := monitor.Rules{
		MinRows: cfg.MinRows, MinLabels: cfg.MinLabels, DriftShare: cfg.DriftShare, Features: cfg.Features,
		Cooldown: cfg.Cooldown.D(), Retrain: cfg.Retrain == nil || *cfg.Retrain,
	}
	if m := cfg.Metric; m != nil {
		r.Metric = &monitor.MetricRule{Name: m.Name, Threshold: m.Threshold, Windows: m.Windows, Below: metrics.HigherIsBetter(m.Name)}
	}
	return r
}

// RecordMonitorWindowInput records a window and its decision.
type RecordMonitorWindowInput struct {
	Window   monitor.Window   `json:"window"`
	Decision monitor.Decision `json:"decision"`
}

// RecordMonitorWindowOutput is the recorded decision.
type RecordMonitorWindowOutput struct {
	Decision registry.MonitorDecision `json:"decision"`
}

// RecordMonitorWindow stores a window and the decision taken after it in
// the registry's time series (idempotently: a retry returns the first
// record).
func (a *Activities) RecordMonitorWindow(ctx context.Context, in RecordMonitorWindowInput) (RecordMonitorWindowOutput, error) {
	w := in.Window
	data, err := json.Marshal(w)
	if err != nil {
		return RecordMonitorWindowOutput{}, fmt.Errorf("encoding the window: %w", err)
	}
	d, err := a.Registry.RecordMonitorWindow(ctx, registry.MonitorWindow{
		Model: w.Model, Start: w.Start, End: w.End, Version: w.Version, Rows: w.Rows, Labeled: w.Labeled,
		DriftShare: w.DriftShare, Data: data,
	}, registry.MonitorDecision{
		Action: in.Decision.Action, Trigger: in.Decision.Trigger, Reason: in.Decision.Reason,
		Metric: in.Decision.Metric, Value: in.Decision.Value, Threshold: in.Decision.Threshold,
	})
	if err != nil {
		return RecordMonitorWindowOutput{}, err
	}
	return RecordMonitorWindowOutput{Decision: d}, nil
}

// PrepareRetrainInput asks for a retrain's new data.
type PrepareRetrainInput struct {
	Model string        `json:"model"`
	Alias string        `json:"alias"`
	End   time.Time     `json:"end"`
	Since time.Duration `json:"since"`
	// Decision is the decision that asked for the retrain.
	Decision registry.MonitorDecision `json:"decision"`
}

// PrepareRetrainOutput is the data a retrain appends, if any.
type PrepareRetrainOutput struct {
	// Data is a content-addressed Parquet dataset (URI) of the served rows
	// whose labels joined: their input features and the label under the
	// model's target; empty when no label joined.
	Data string `json:"data,omitempty"`
	Rows int64  `json:"rows,omitempty"`
	// Trigger describes the decision for the new version's lineage.
	Trigger string `json:"trigger"`
}

// PrepareRetrain writes the retrain's new data: the served rows of the last
// Since before End whose labels joined (labels.JoinRows), published in the
// artifact store as a content-addressed dataset, so the retrain trains on
// what changed. Without labels (a drift-triggered retrain) there is none.
func (a *Activities) PrepareRetrain(ctx context.Context, in PrepareRetrainInput) (PrepareRetrainOutput, error) {
	d := in.Decision
	out := PrepareRetrainOutput{Trigger: fmt.Sprintf("monitor decision #%d of %s at %s: %s", d.ID, in.Model, d.Window.UTC().Format(time.RFC3339), d.Reason)}
	v, err := a.Registry.Resolve(ctx, in.Model+"@"+in.Alias)
	if err != nil {
		return out, err
	}
	m, err := a.loadBundle(ctx, v.BundleURI)
	if err != nil {
		return out, err
	}
	batches, err := a.Registry.LabelBatches(ctx, in.Model, in.End.Add(-in.Since))
	if err != nil || len(batches) == 0 {
		return out, err
	}
	files, err := a.batchFiles(ctx, batches)
	if err != nil {
		return out, err
	}
	logs, err := a.requestLogFiles(ctx, in.Model, in.End.Add(-in.Since))
	if err != nil || len(logs) == 0 {
		return out, err
	}
	tmp, err := a.Store.TempDir("retrain")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(tmp)
	if m.Manifest.Target == "" {
		return out, invalid("model %s names no target column in its bundle: its labelled rows cannot become training data", in.Model)
	}
	var features []string
	for _, f := range m.Manifest.Inputs {
		if !slices.Contains(features, f.Name) && f.Name != m.Manifest.Target {
			features = append(features, f.Name)
		}
	}
	res, err := labels.JoinRows(ctx, labels.JoinRowsInput{
		JoinInput: labels.JoinInput{RequestLogs: logs, LabelFiles: files, From: in.End.Add(-in.Since), To: in.End},
		Target:    m.Manifest.Target, Output: filepath.Join(tmp, "rows.parquet"), Features: features,
		Classes: m.Manifest.Classes,
	})
	if errors.Is(err, labels.ErrNoRows) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("retrain data of %s: %w", in.Model, err)
	}
	uri, err := a.Store.Publish(ctx, filepath.Join(tmp, "rows.parquet"), "datasets/"+res.Dataset.SHA256+".parquet")
	if err != nil {
		return out, err
	}
	out.Data, out.Rows = uri, res.Dataset.Rows
	return out, nil
}
