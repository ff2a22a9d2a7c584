package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/gate"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// Evaluate scores the raw holdout rows through the bundle (transforms and
// estimator, exactly as serving will) and computes the task's metrics: AUC,
// PR-AUC, log loss, accuracy, precision, recall, F1 and ECE for a binary
// task; RMSE, MAE and R² for regression. When the model already has a
// champion (its production alias), the champion is scored on the same
// holdout so the gate can compare the two and the significance test (DeLong
// or a paired bootstrap) can tell whether the challenger is better by more
// than chance. A failed gate or test does not fail the step: its output has
// Evaluation.Passed false and a report of every check with its margin, and
// the register step downstream keeps the model as a rejected version and
// fails the run (see workflows). The step is cached (see cache.go) by its
// configuration, the holdout, the bundle and the champion's version.
func (a *Activities) Evaluate(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg, prep, bundle := in.Step.Evaluate, in.Inputs.Prepared, in.Inputs.Bundle
	if cfg == nil || prep == nil || bundle == nil {
		return StepOutput{}, invalid("step %q needs an evaluate config, a preprocess step and a train step upstream", in.Step.Name)
	}
	// The champion is resolved first: its version is part of the cache key.
	var champion *registry.Version
	if name := cfg.Champion; name != "" && a.Registry != nil {
		v, err := a.Registry.Resolve(ctx, name)
		switch {
		case errors.Is(err, registry.ErrNotFound):
		case err != nil:
			return StepOutput{}, fmt.Errorf("resolving champion %s: %w", name, err)
		default:
			champion = &v
		}
	}
	championKey := "none"
	if champion != nil {
		championKey = fmt.Sprintf("%s:%d", champion.Model, champion.Version)
	}
	address, err := preparedAddress(prep)
	if err != nil {
		return StepOutput{}, err
	}
	key, err := stepKey(pipelines.StepEvaluate, evaluateImplVersion, cfg, map[string]string{
		"prepared": address, "bundle_sha256": bundle.SHA256, "champion": championKey,
	}, in)
	if err != nil {
		return StepOutput{}, err
	}
	return a.cached(ctx, in, key, func() (StepOutput, error) { return a.evaluate(ctx, cfg, prep, bundle, champion) })
}

// evaluate does the work of Evaluate; championVersion is nil when there is
// no champion. A model that fails the gate or the significance test is not an
// error: the step succeeds with Evaluation.Passed false and the report, so
// that the register step keeps the model as a rejected version (and then
// fails the run).
func (a *Activities) evaluate(ctx context.Context, cfg *pipelines.EvaluateConfig, prep *PreparedRef, bundle *BundleRef, championVersion *registry.Version) (StepOutput, error) {
	pl := startPulse(ctx, Progress{Msg: "scoring the holdout"})
	defer pl.stop()
	m, err := a.loadBundle(ctx, bundle.URI)
	if err != nil {
		return StepOutput{}, err
	}
	task := prep.Task
	if task == "" {
		task = metrics.TaskBinary
	}
	if bt := m.Manifest.Task; bt != "" && bt != task {
		return StepOutput{}, invalid("the bundle is a %s model but the preprocess step's task is %s", bt, task)
	}
	testPath, err := a.Store.Local(ctx, prep.TestURI)
	if err != nil {
		return StepOutput{}, err
	}
	r, err := dataset.OpenParquet(testPath)
	if err != nil {
		return StepOutput{}, err
	}
	defer r.Close()
	test, err := r.ReadAll(ctx, nil)
	if err != nil {
		return StepOutput{}, err
	}
	defer test.Release()
	holdoutNote := ""
	if cfg.Holdout == pipelines.HoldoutRecent {
		recent, note, err := recentRows(test)
		if err != nil {
			return StepOutput{}, err
		}
		if recent != nil {
			defer recent.Release()
			test = recent
		}
		holdoutNote = note
	}
	labels, err := holdoutLabels(test, prep.Target, task, m.Manifest.Classes)
	if err != nil {
		return StepOutput{}, fmt.Errorf("reading target %q of the holdout %s: %w", prep.Target, testPath, err)
	}
	predict := m.Predict
	if task == metrics.TaskMulticlass {
		predict = m.PredictProba
	}
	preds, err := predict(test)
	if err != nil {
		return StepOutput{}, fmt.Errorf("scoring the holdout: %w", err)
	}
	// The champion, scored on the same rows.
	var champ *scoredChampion
	if v := championVersion; v != nil {
		cm, err := a.loadBundle(ctx, v.BundleURI)
		if err != nil {
			return StepOutput{}, fmt.Errorf("champion %s: %w", cfg.Champion, err)
		}
		if task == metrics.TaskMulticlass && !slices.Equal(cm.Manifest.Classes, m.Manifest.Classes) {
			return StepOutput{}, invalid("champion %s predicts classes %q but this model predicts %q; they cannot be compared", cfg.Champion, cm.Manifest.Classes, m.Manifest.Classes)
		}
		predict := cm.Predict
		if task == metrics.TaskMulticlass {
			predict = cm.PredictProba
		}
		cp, err := predict(test)
		if err != nil {
			return StepOutput{}, fmt.Errorf("champion %s cannot score this holdout (inputs changed?): %w", cfg.Champion, err)
		}
		champ = &scoredChampion{Ref: fmt.Sprintf("%s:%d", v.Model, v.Version), Version: v.Version, Preds: cp}
	}
	pl.set(Progress{Pct: 80, Msg: "checking the gate"})
	ev, err := judge(cfg, task, labels, preds, champ)
	if err == nil && holdoutNote != "" {
		ev.Report = holdoutNote + "\n" + ev.Report
	}
	if err != nil {
		return StepOutput{}, err
	}
	summary := metricSummary(ev, len(labels))
	switch {
	case !ev.Passed:
		oneLine := strings.NewReplacer(":\n  ", ": ", "\n  ", "; ", "\n", "; ").Replace(ev.Report)
		summary += "; REJECTED: " + oneLine
	case cfg.Gate != "" || cfg.Significance != nil:
		summary += "; gate passed"
	}
	return StepOutput{Artifacts: Artifacts{Evaluation: ev}, Summary: summary}, nil
}

// scoredChampion is the champion's predictions for the holdout.
type scoredChampion struct {
	Ref     string
	Version int64
	Preds   []float64
}

// judge computes the task's metrics of the challenger (and champion), checks
// the gate and the significance test, and writes the report. Configuration
// problems (a gate naming a metric the task lacks, a NaN metric) are
// non-retryable errors; a failed gate is a verdict (Passed false).
func judge(cfg *pipelines.EvaluateConfig, task string, labels, preds []float64, champ *scoredChampion) (*EvaluationRef, error) {
	threshold := cfg.Threshold
	if threshold == 0 {
		threshold = 0.5
	}
	compute := func(p []float64) map[string]float64 {
		switch task {
		case metrics.TaskRegression:
			return metrics.Regression(labels, p)
		case metrics.TaskMulticlass:
			return metrics.Multiclass(labels, p)
		}
		return metrics.Binary(labels, p, threshold)
	}
	switch task {
	case metrics.TaskBinary, metrics.TaskRegression:
	case metrics.TaskMulticlass:
		if cfg.Significance != nil {
			return nil, invalid("significance: no test compares multiclass models yet; compare with the champion in the gate instead")
		}
	default:
		return nil, invalid("task %q is not supported by evaluate (want binary, multiclass or regression)", task)
	}
	ev := &EvaluationRef{Metrics: compute(preds), Gate: cfg.Gate, Passed: true, Task: task}
	var champion map[string]float64
	if champ != nil {
		champion = compute(champ.Preds)
		ev.Champion, ev.ChampionMetrics, ev.ChampionRef = champ.Version, champion, champ.Ref
	}
	var report []string
	if cfg.Gate != "" {
		expr, err := gate.Parse(cfg.Gate)
		if err != nil {
			return nil, invalid("gate %q: %v", cfg.Gate, err)
		}
		for _, r := range expr.Refs() {
			if !slices.Contains(metrics.Names(task), r.Metric) {
				return nil, invalid("gate %q: metric %s is not computed for task %s (metrics: %s)", cfg.Gate, r.Name, task, strings.Join(metrics.Names(task), ", "))
			}
		}
		pass, checks, err := expr.Eval(ev.Metrics, champion)
		if err != nil {
			return nil, invalid("%v", err) // Eval's error names the gate
		}
		ev.Passed, ev.Checks = pass, checks
		verdict := "passed"
		if !pass {
			verdict = "failed"
		}
		against := "no champion yet"
		if champ != nil {
			against = "champion " + champ.Ref
		}
		report = append(report, fmt.Sprintf("gate %q %s (%s):", cfg.Gate, verdict, against))
		for _, c := range checks {
			report = append(report, "  "+c.Report())
		}
	}
	if sig := cfg.Significance; sig != nil {
		res, err := significance(sig, task, threshold, labels, preds, champ)
		if err != nil {
			return nil, err
		}
		ev.Significance = res
		ev.Passed = ev.Passed && res.Passed
		switch {
		case res.Skipped != "":
			report = append(report, fmt.Sprintf("significance (%s on %s): skipped, %s", sig.Test, sig.Metric, res.Skipped))
		case res.Passed:
			report = append(report, fmt.Sprintf("significance: %s < alpha %g: significantly better than %s", res.Comparison, res.Alpha, champ.Ref))
		default:
			report = append(report, fmt.Sprintf("significance: %s >= alpha %g: not significantly better than %s", res.Comparison, res.Alpha, champ.Ref))
		}
	}
	ev.Report = strings.Join(report, "\n")
	return ev, nil
}

// significance runs the configured test of the challenger against the
// champion; without a champion it is skipped (and passes).
func significance(sig *pipelines.Significance, task string, threshold float64, labels, preds []float64, champ *scoredChampion) (*SignificanceResult, error) {
	res := &SignificanceResult{Alpha: sig.Alpha, Passed: true}
	if champ == nil {
		res.Test, res.Metric, res.Skipped = sig.Test, sig.Metric, "no champion yet"
		return res, nil
	}
	var err error
	switch sig.Test {
	case metrics.TestDeLong:
		if task != metrics.TaskBinary {
			return nil, invalid("significance: DeLong's test compares AUCs and needs a binary task, not %s", task)
		}
		res.Comparison, err = metrics.DeLong(labels, preds, champ.Preds)
	case metrics.TestBootstrap:
		res.Comparison, err = metrics.Bootstrap(labels, preds, champ.Preds, metrics.BootstrapConfig{
			Metric: sig.Metric, Task: task, Threshold: threshold, Resamples: sig.Resamples, Seed: uint64(sig.Seed),
		})
	default:
		return nil, invalid("significance: unknown test %q", sig.Test)
	}
	if err != nil {
		return nil, invalid("significance test against %s: %v", champ.Ref, err)
	}
	res.Passed = res.PValue < sig.Alpha
	return res, nil
}

// metricSummary is the one-line summary of an evaluation's metrics.
func metricSummary(ev *EvaluationRef, rows int) string {
	m := ev.Metrics
	switch ev.Task {
	case metrics.TaskRegression:
		return fmt.Sprintf("RMSE %.4g, MAE %.4g, R² %.4f on %d holdout rows", m["rmse"], m["mae"], m["r2"], rows)
	case metrics.TaskMulticlass:
		return fmt.Sprintf("accuracy %.4f, macro F1 %.4f, weighted F1 %.4f, log loss %.4f, one-vs-rest AUC %.4f on %d holdout rows",
			m["accuracy"], m["f1_macro"], m["f1_weighted"], m["logloss"], m["auc_ovr"], rows)
	}
	return fmt.Sprintf("AUC %.4f, PR-AUC %.4f, accuracy %.4f, F1 %.4f, log loss %.4f, ECE %.4f on %d holdout rows",
		m["auc"], m["pr_auc"], m["accuracy"], m["f1"], m["logloss"], m["ece"], rows)
}

// holdoutLabels reads the holdout's target: 0/1 or values, or for a
// multiclass task each row's index in classes.
func holdoutLabels(test arrow.Record, target, task string, classes []string) ([]float64, error) {
	if task != metrics.TaskMulticlass {
		return dataset.Float64s(test, target)
	}
	vals, valid, err := dataset.Strings(test, target)
	if err != nil {
		return nil, err
	}
	return classIndexes(vals, valid, classes)
}

// recentRows keeps the holdout rows a retrain appended (pipelines.SourceColumn
// is SourceAppended), for evaluate's holdout: recent. It returns nil (the
// whole holdout) when there are none, with a note saying which it used.
func recentRows(test arrow.Record) (arrow.Record, string, error) {
	if test.Schema().HasField(pipelines.SourceColumn) {
		src, valid, err := dataset.Strings(test, pipelines.SourceColumn)
		if err != nil {
			return nil, "", err
		}
		var keep []int
		for i, s := range src {
			if valid[i] && s == pipelines.SourceAppended {
				keep = append(keep, i)
			}
		}
		if len(keep) > 0 {
			rec, err := dataset.Take(test, keep)
			if err != nil {
				return nil, "", err
			}
			return rec, fmt.Sprintf("holdout: the %d recent rows (appended by the monitor's retrain) of %d", len(keep), test.NumRows()), nil
		}
	}
	return nil, fmt.Sprintf("holdout: recent asked for, but no holdout row was appended by a retrain: all %d rows", test.NumRows()), nil
}

// loadBundle loads a model bundle by URI.
func (a *Activities) loadBundle(ctx context.Context, uri string) (*model.Model, error) {
	p, err := a.Store.Local(ctx, uri)
	if err != nil {
		return nil, err
	}
	return model.Load(p)
}
