package activities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/gate"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// Evaluate scores the raw holdout rows through the bundle (transforms and
// estimator, exactly as serving will) and computes AUC, accuracy, F1, log loss
// and more. When the model already has a champion (its production alias), the
// champion is scored on the same holdout so the gate can compare the two. A
// failed gate fails the step without retries and reports every check. The
// step is cached (see cache.go) by its configuration, the holdout, the
// bundle and the champion's version; a failed gate is not cached.
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
// no champion.
func (a *Activities) evaluate(ctx context.Context, cfg *pipelines.EvaluateConfig, prep *PreparedRef, bundle *BundleRef, championVersion *registry.Version) (StepOutput, error) {
	pl := startPulse(ctx, Progress{Msg: "scoring the holdout"})
	defer pl.stop()
	m, err := loadBundle(bundle.URI)
	if err != nil {
		return StepOutput{}, err
	}
	testPath, err := artifact.Path(prep.TestURI, "")
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
	labels, err := dataset.Float64s(test, prep.Target)
	if err != nil {
		return StepOutput{}, err
	}
	threshold := cfg.Threshold
	if threshold == 0 {
		threshold = 0.5
	}
	probs, err := m.Predict(test)
	if err != nil {
		return StepOutput{}, fmt.Errorf("scoring the holdout: %w", err)
	}
	ev := &EvaluationRef{Metrics: metrics.Binary(labels, probs, threshold), Gate: cfg.Gate, Passed: true}

	// The champion, scored on the same rows.
	var champion map[string]float64
	if v := championVersion; v != nil {
		name := cfg.Champion
		cm, err := loadBundle(v.BundleURI)
		if err != nil {
			return StepOutput{}, fmt.Errorf("champion %s: %w", name, err)
		}
		cp, err := cm.Predict(test)
		if err != nil {
			return StepOutput{}, fmt.Errorf("champion %s cannot score this holdout (inputs changed?): %w", name, err)
		}
		champion = metrics.Binary(labels, cp, threshold)
		ev.Champion, ev.ChampionMetrics = v.Version, champion
	}

	summary := fmt.Sprintf("AUC %.4f, accuracy %.4f, F1 %.4f, log loss %.4f on %d holdout rows",
		ev.Metrics["auc"], ev.Metrics["accuracy"], ev.Metrics["f1"], ev.Metrics["logloss"], len(labels))
	if cfg.Gate != "" {
		expr, err := gate.Parse(cfg.Gate)
		if err != nil {
			return StepOutput{}, invalid("gate %q: %v", cfg.Gate, err)
		}
		pass, checks, err := expr.Eval(ev.Metrics, champion)
		if err != nil {
			return StepOutput{}, invalid("%v", err) // Eval's error names the gate
		}
		ev.Passed = pass
		var report []string
		for _, c := range checks {
			ev.Checks = append(ev.Checks, c)
			mark := "ok"
			switch {
			case c.Skipped:
				mark = "skipped (no champion)"
			case !c.Pass:
				mark = fmt.Sprintf("FAILED by %.4g", math.Abs(c.Right-c.Left))
			}
			report = append(report, fmt.Sprintf("%s: %.4f %s %.4f %s", c.Expr, c.Left, c.Op, c.Right, mark))
		}
		if !pass {
			msg := fmt.Sprintf("gate %q failed: %s", cfg.Gate, strings.Join(report, "; "))
			return StepOutput{}, temporal.NewNonRetryableApplicationError(msg, errGateFailed, nil, ev)
		}
		summary += "; gate passed"
	}
	return StepOutput{Artifacts: Artifacts{Evaluation: ev}, Summary: summary}, nil
}

// loadBundle loads a model bundle by URI.
func loadBundle(uri string) (*model.Model, error) {
	p, err := artifact.Path(uri, "")
	if err != nil {
		return nil, err
	}
	return model.Load(p)
}
