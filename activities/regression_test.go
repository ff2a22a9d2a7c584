package activities_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// linearBundle writes a hand-built regression bundle (estimator "linear",
// output "value") over the prepared transforms: intercept + weight * the
// named transformed feature.
func linearBundle(t *testing.T, p *activities.PreparedRef, feature string, intercept, weight float64) *activities.BundleRef {
	t.Helper()
	path, err := artifact.Path(p.TransformsURI, "")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fitted transform.Fitted
	if err := json.Unmarshal(data, &fitted); err != nil {
		t.Fatal(err)
	}
	weights := make([]float64, len(p.Features))
	found := false
	for j, f := range p.Features {
		if f == feature {
			weights[j], found = weight, true
		}
	}
	if !found {
		t.Fatalf("no feature %q in %v", feature, p.Features)
	}
	est, err := json.Marshal(model.Linear{Type: model.EstimatorLinear, Features: p.Features, Weights: weights, Intercept: intercept})
	if err != nil {
		t.Fatal(err)
	}
	man := model.Manifest{
		FormatVersion: model.FormatVersion, Task: model.TaskRegression, Target: p.Target,
		Inputs: fitted.Inputs, Transforms: &fitted, Output: model.OutputValue,
		Estimator: model.Estimator{Type: model.EstimatorLinear, File: model.DefaultEstimatorFile},
	}
	dir := filepath.Join(t.TempDir(), "bundle-"+feature)
	if err := model.WriteBundle(dir, man, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
	return &activities.BundleRef{URI: "file://" + filepath.ToSlash(dir), SHA256: "hand-built-" + feature}
}

// TestRegressionRejected runs the regression task through evaluate and
// register with hand-built linear bundles: the challenger (mean_radius from
// mean_texture) is worse than the champion (from mean_perimeter) on the same
// holdout, so the gate and the bootstrap test reject it, the report gives the
// RMSE shortfall, and the registry keeps it as rejected without alias.
func TestRegressionRejected(t *testing.T) {
	spec := loadSpec(t, "breast_cancer.yaml")
	e := newEnv(t)
	c := e.chain(runInfo(spec, "regression-rejected"))
	c.must(step(t, spec, "ingest"))
	prep := step(t, spec, "prep")
	cfg := *prep.Preprocess
	cfg.Target, cfg.Task, cfg.Exclude = "mean_radius", "regression", []string{"malignant"}
	prep.Preprocess = &cfg
	p := c.must(prep).Artifacts.Prepared
	y := floats(t, readParquet(t, p.TestURI), "mean_radius")
	mean, sd := 0.0, 0.0
	for _, v := range y {
		mean += v
	}
	mean /= float64(len(y))
	for _, v := range y {
		sd += (v - mean) * (v - mean)
	}
	sd = math.Sqrt(sd / float64(len(y)))

	// Standardized features: intercept + sd * z predicts well when the
	// feature tracks the radius (the perimeter does, the texture hardly).
	champBundle := linearBundle(t, p, "mean_perimeter", mean, sd)
	champ, _, err := e.reg.Register(e.ctx, registry.Version{Model: "radius", BundleURI: champBundle.URI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.SetAlias(e.ctx, registry.AliasMove{Model: "radius", Alias: "production", To: champ.Version}); err != nil {
		t.Fatal(err)
	}
	c.acc.Bundle = linearBundle(t, p, "mean_texture", mean, sd)

	ev := step(t, spec, "evaluate")
	ev.Evaluate.Gate = "r2 >= 0 && rmse <= champion.rmse"
	ev.Evaluate.Champion = "radius@production"
	ev.Evaluate.Significance = &pipelines.Significance{Test: metrics.TestBootstrap, Metric: "rmse", Alpha: 0.05, Resamples: 500, Seed: 42}
	got := c.must(ev).Artifacts.Evaluation
	if got.Task != "regression" || got.Passed {
		t.Fatalf("evaluation task %q passed %v, want a rejected regression:\n%s", got.Task, got.Passed, got.Report)
	}
	rmse, champRMSE := got.Metrics["rmse"], got.ChampionMetrics["rmse"]
	if !(champRMSE < rmse) || got.Metrics["r2"] >= got.ChampionMetrics["r2"] {
		t.Fatalf("challenger RMSE %v, champion %v: the champion should be better", rmse, champRMSE)
	}
	line := fmt.Sprintf("rmse %.4g > champion.rmse %.4g: short by %.4g", rmse, champRMSE, rmse-champRMSE)
	if !strings.Contains(got.Report, line) || !strings.Contains(got.Report, "not significantly better than radius:1") {
		t.Errorf("report %q lacks %q or the significance verdict", got.Report, line)
	}

	reg := step(t, spec, "register")
	reg.Register.Model = "radius"
	_, err = c.try(reg)
	checkAppError(t, err, "GateFailed", "radius:2", line)
	v, err := e.reg.Get(e.ctx, "radius", 2)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != registry.StatusRejected || len(v.Aliases) != 0 || !strings.Contains(v.Report, "short by") {
		t.Errorf("radius:2 status %q aliases %v report %s; want rejected, no alias, the report", v.Status, v.Aliases, v.Report)
	}
}
