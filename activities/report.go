package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/localfs"
	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/report"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// Report files inside a report's directory.
const (
	ReportHTMLFile    = "report.html"
	ReportSummaryFile = "summary.json"
)

// ReportRef is a report written by a report step.
type ReportRef struct {
	// URI is the report's directory (report.html and summary.json).
	URI string `json:"uri"`
	// HTML and Summary locate the two files.
	HTML    string `json:"html"`
	Summary string `json:"summary"`
	// RunKey is the logical date (or time) the report is about.
	RunKey string `json:"run_key"`
	Rows   int64  `json:"rows"`
	// Columns compared and how many drifted; the two verdicts.
	Columns         int  `json:"columns"`
	DriftedColumns  int  `json:"drifted_columns"`
	DatasetDrift    bool `json:"dataset_drift"`
	PredictionDrift bool `json:"prediction_drift"`
	// Model is the reference model, "name:version".
	Model string `json:"model"`
}

// Report runs a report step: it reads a scored output (the configured
// input, or the upstream score step's), compares it with the training data
// of the model that scored it, writes the HTML page and the JSON summary
// into the report's directory (replacing the run key's earlier report in one
// step), and indexes the report in the registry. It is never cached: a
// report reflects the trend and the labels known when it runs.
func (a *Activities) Report(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg := in.Step.Report
	if cfg == nil {
		return StepOutput{}, invalid("step %q has no report config", in.Step.Name)
	}
	pl := startPulse(ctx, Progress{Msg: "resolving the scored output"})
	defer pl.stop()
	files, display, scoredModel, err := a.reportInput(in)
	if err != nil {
		return StepOutput{}, err
	}
	ref := cfg.Model
	if ref == "" {
		ref = scoredModel
	}
	if ref == "" {
		return StepOutput{}, invalid("step %q: cannot tell which model scored %s; set with.model", in.Step.Name, display)
	}
	v, err := a.Registry.Resolve(ctx, ref)
	if errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrInvalid) {
		return StepOutput{}, invalid("step %q: model %s: %v", in.Step.Name, ref, err)
	}
	if err != nil {
		return StepOutput{}, err
	}
	m, err := a.loadBundle(ctx, v.BundleURI)
	if err != nil {
		return StepOutput{}, fmt.Errorf("loading %s:%d: %w", v.Model, v.Version, err)
	}
	input := a.referenceInput(ctx, v, m)
	input.Files, input.Display = files, display

	logical := in.Run.Logical
	if logical == nil {
		l := ManualLogicalRun(time.Now(), nil)
		logical = &l
	}
	earlier, err := a.Registry.Reports(ctx, registry.ReportFilter{Pipeline: in.Run.Pipeline, Step: in.Step.Name, Before: logical.Key, Limit: max(cfg.Trend, 1)})
	if err != nil {
		return StepOutput{}, err
	}
	var trend []report.TrendPoint
	for _, e := range earlier {
		var p report.TrendPoint
		if json.Unmarshal(e.TrendPoint, &p) == nil && p.LogicalDate != "" {
			trend = append(trend, p)
		}
	}
	dopts := reportDriftOptions(cfg)
	opts := report.Options{
		Title: cfg.Title, Pipeline: in.Run.Pipeline, Schedule: logical.Schedule, LogicalDate: logical.Key,
		Trigger: logical.Trigger, WorkflowID: in.Run.WorkflowID, Threshold: cfg.Threshold,
		Columns: cfg.Columns, Drift: &dopts, Trend: trend, TrendMax: cfg.Trend + 1,
		Interval: &report.Interval{Start: logical.IntervalStart, End: logical.IntervalEnd},
		Progress: func(done, total int64) {
			pl.set(Progress{Pct: 100 * float64(done) / float64(max(total, 1)), Msg: fmt.Sprintf("%d/%d scored rows read", done, total)})
		},
	}
	if l := cfg.Labels; l != nil {
		opts.Labels = &report.Labels{Column: l.Column, IDColumn: l.ID, FileID: l.ID, FileLabel: l.Label}
		if l.File != "" {
			p, err := a.specPath(l.File, in.Run.SpecDir)
			if err != nil {
				return StepOutput{}, invalid("step %q: labels file: %v", in.Step.Name, err)
			}
			opts.Labels.File = p
			if opts.Labels.FileLabel == "" {
				opts.Labels.FileLabel = m.Manifest.Target
			}
			if opts.Labels.FileLabel == "" {
				return StepOutput{}, invalid("step %q: labels file: the model's bundle names no target column; set labels.label to the file's label column", in.Step.Name)
			}
		}
	}
	if opts.Title == "" {
		opts.Title = fmt.Sprintf("%s — %s", in.Run.Pipeline, logical.Key)
	}
	sum, err := report.Build(ctx, input, opts)
	if err != nil {
		return StepOutput{}, badInput(ctx, fmt.Errorf("step %q: %w", in.Step.Name, err))
	}
	sum.Links = a.reportLinks(in.Run, v.Model, v.Version)

	dir, rel, err := a.reportDir(in, logical.Key)
	if err != nil {
		return StepOutput{}, err
	}
	pl.set(Progress{Pct: 100, Msg: "writing the report"})
	if err := writeReport(dir, sum); err != nil {
		return StepOutput{}, err
	}
	uri := artifact.FileURI(dir)
	if rel != "" {
		// A rerun of the run key (a backfill) replaces the report.
		if uri, err = a.Store.Put(ctx, rel); err != nil {
			return StepOutput{}, err
		}
	}
	point, _ := json.Marshal(report.Point(sum))
	entry := registry.ReportEntry{
		Pipeline: in.Run.Pipeline, Step: in.Step.Name, RunKey: logical.Key, Schedule: logical.Schedule,
		Model: v.Model, Version: v.Version, WorkflowID: in.Run.WorkflowID, Trigger: logical.Trigger,
		URI: uri, Rows: sum.Rows, Columns: len(sum.Drift.Columns), DriftedColumns: sum.Drift.DriftedColumns,
		DatasetDrift: sum.Drift.Drifted, PredictionDrift: sum.Prediction.Drifted, TrendPoint: point,
	}
	if _, err := a.Registry.PutReport(ctx, entry); err != nil {
		return StepOutput{}, err
	}
	if logical.Schedule != "" {
		if _, err := a.Registry.ResolveAlerts(ctx, logical.Schedule, logical.Key); err != nil {
			a.logger(ctx).Warn("resolving alerts", "error", err)
		}
	}
	rr := &ReportRef{
		URI: uri, HTML: artifact.JoinURI(uri, ReportHTMLFile),
		Summary: artifact.JoinURI(uri, ReportSummaryFile), RunKey: logical.Key, Rows: sum.Rows,
		Columns: len(sum.Drift.Columns), DriftedColumns: sum.Drift.DriftedColumns, DatasetDrift: sum.Drift.Drifted,
		PredictionDrift: sum.Prediction.Drifted, Model: fmt.Sprintf("%s:%d", v.Model, v.Version),
	}
	verdict := "no dataset drift"
	if sum.Drift.Drifted {
		verdict = "DATASET DRIFT"
	}
	summary := fmt.Sprintf("report %s: %d rows by %s, %d/%d features drifted (%s), prediction %s → %s",
		logical.Key, sum.Rows, rr.Model, sum.Drift.DriftedColumns, len(sum.Drift.Columns), verdict, driftWord(sum.Prediction.Drifted), filepath.Join(dir, ReportHTMLFile))
	return StepOutput{Artifacts: Artifacts{Report: rr}, Summary: summary}, nil
}

// referenceInput is the report input of a model version without its rows:
// the model, its holdout metrics, and its training data and holdout (from
// the version's lineage) as the reference.
func (a *Activities) referenceInput(ctx context.Context, v registry.Version, m *model.Model) report.Input {
	input := report.Input{Model: m, ModelName: v.Model, ModelVersion: v.Version, ReferenceMetrics: v.Metrics}
	for _, d := range v.Datasets {
		p, err := a.Store.Local(ctx, d.URI)
		if err != nil {
			continue
		}
		switch d.Role {
		case registry.DatasetIngested:
			input.TrainingData = p
			input.TrainingSource = fmt.Sprintf("training dataset sha256:%.12s… (%d rows) of %s:%d", d.SHA256, d.Rows, v.Model, v.Version)
		case registry.DatasetTest:
			input.Holdout = p
			input.HoldoutSource = fmt.Sprintf("holdout of %s (%d rows) scored by %s:%d", v.RunID, d.Rows, v.Model, v.Version)
		}
	}
	return input
}

func driftWord(d bool) string {
	if d {
		return "drifted"
	}
	return "stable"
}

// reportInput resolves the scored files a report reads, a name for them and
// the model reference their manifest names (if any).
func (a *Activities) reportInput(in StepInput) (files []string, display, modelRef string, err error) {
	cfg := in.Step.Report
	loc := cfg.Input
	if loc == "" {
		if in.Inputs.Scored == nil {
			return nil, "", "", invalid("step %q: no input given and no score step upstream", in.Step.Name)
		}
		loc = in.Inputs.Scored.URI
	}
	p, err := a.specPath(loc, in.Run.SpecDir)
	if err != nil {
		return nil, "", "", invalid("step %q: input: %v", in.Step.Name, err)
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		man, err := scorer.ReadSuccess(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, "", "", invalid("step %q: %s is not a committed scored output (no %s): was its score step run?", in.Step.Name, p, scorer.SuccessFile)
			}
			return nil, "", "", invalid("step %q: %v", in.Step.Name, err)
		}
		for _, part := range man.Parts {
			files = append(files, filepath.Join(p, part.File))
		}
		if man.Model != "" {
			modelRef = fmt.Sprintf("%s:%d", man.Model, man.Version)
		}
		if len(files) == 0 {
			return nil, "", "", invalid("step %q: the scored output %s has no rows", in.Step.Name, p)
		}
		return files, p, modelRef, nil
	}
	files, err = scorer.ResolveInputs(p, in.Run.SpecDir)
	if err != nil {
		return nil, "", "", invalid("step %q: input: %v", in.Step.Name, err)
	}
	if err := a.confineAll(files); err != nil {
		return nil, "", "", err
	}
	return files, p, "", nil
}

// reportDir is where a report of a run key goes: <output>/<run key>, or
// reports/<pipeline>/<step>/<run key> in the artifact store.
func (a *Activities) reportDir(in StepInput, key string) (dir, rel string, err error) {
	rel = path.Join("reports", sanitize(in.Run.Pipeline), sanitize(in.Step.Name), sanitize(key))
	dir = a.Store.LocalPath(rel)
	if o := in.Step.Report.Output; o != "" {
		p, err := a.specPath(o, in.Run.SpecDir)
		if err != nil {
			return "", "", invalid("step %q: output: %v", in.Step.Name, err)
		}
		if dir, err = filepath.Abs(filepath.Join(p, sanitize(key))); err != nil {
			return "", "", err
		}
		rel = ""
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", filepath.Dir(dir), err)
	}
	return dir, rel, nil
}

// writeReport writes the report's files into a staging directory beside
// dir, then swaps it into place (artifact.ReplaceDir): readers see the old
// report or the new one, never half of one.
func writeReport(dir string, s *report.Summary) error {
	staging, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".staging-")
	if err != nil {
		return fmt.Errorf("writing report %s: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(staging)
		}
	}()
	if err := os.Chmod(staging, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report summary: %w", err)
	}
	if err := localfs.WriteFileAtomic(filepath.Join(staging, ReportSummaryFile), append(js, '\n')); err != nil {
		return err
	}
	var html bytes.Buffer
	if err := report.RenderHTML(&html, s); err != nil {
		return fmt.Errorf("rendering the report: %w", err)
	}
	if err := localfs.WriteFileAtomic(filepath.Join(staging, ReportHTMLFile), html.Bytes()); err != nil {
		return err
	}
	if err := artifact.ReplaceDir(staging, dir); err != nil {
		return err
	}
	ok = true
	return nil
}

// reportLinks points a report at its run in the Temporal UI, its model's
// lineage and the reports index, when the worker knows where they are.
func (a *Activities) reportLinks(run RunInfo, model string, version int64) report.Links {
	var l report.Links
	if a.UIURL != "" {
		ns := a.Namespace
		if ns == "" {
			ns = "default"
		}
		l.Run = strings.TrimRight(a.UIURL, "/") + "/namespaces/" + url.PathEscape(ns) + "/workflows/" + url.PathEscape(run.WorkflowID)
	}
	if a.ReportsURL != "" {
		base := strings.TrimRight(a.ReportsURL, "/")
		l.Index = base + "/reports"
		l.Lineage = fmt.Sprintf("%s/models/%s/%d", base, url.PathEscape(model), version)
	}
	return l
}

// reportDriftOptions turns a report step's drift settings into the drift
// package's options.
func reportDriftOptions(cfg *pipelines.ReportConfig) drift.Options {
	o := drift.DefaultOptions()
	d := cfg.Drift
	if d.SmallReference > 0 {
		o.SmallReference = int64(d.SmallReference)
	}
	if d.DatasetShare > 0 {
		o.DatasetShare = d.DatasetShare
	}
	t := d.Thresholds
	if t.KS > 0 {
		o.KSThreshold = t.KS
	}
	if t.ChiSquare > 0 {
		o.ChiSquareThreshold = t.ChiSquare
	}
	if t.Wasserstein > 0 {
		o.WassersteinThreshold = t.Wasserstein
	}
	if t.JensenShannon > 0 {
		o.JensenShannonThreshold = t.JensenShannon
	}
	if t.PSI > 0 {
		o.PSIThreshold = t.PSI
	}
	if m := d.Method[drift.KindNumeric]; m != "" {
		o.NumericMethod = drift.Method(m)
	}
	if m := d.Method[drift.KindCategorical]; m != "" {
		o.CategoricalMethod = drift.Method(m)
	}
	return o
}
