package activities_test

import (
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
)

// TestGBDTChain trains the breast cancer pipeline with algorithm gbdt on
// the process runtime: the bundle holds an XGBoost estimator with
// probability output that loads, predicts the holdout as evaluate scored
// it, and passes the spec's gate.
func TestGBDTChain(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "gbdt"))
	c.must(step(t, spec, "ingest"))
	prep := c.must(step(t, spec, "prep")).Artifacts.Prepared

	tr := processTrain(t, spec, "train")
	tr.Train.Algorithm = "gbdt"
	tr.Train.Params = map[string]any{"n_estimators": 50, "max_depth": 3, "early_stopping_rounds": 10}
	bundle := c.must(tr).Artifacts.Bundle
	ev := c.must(step(t, spec, "evaluate")).Artifacts.Evaluation
	if auc := ev.Metrics["auc"]; !(auc >= 0.95) || !ev.Passed {
		t.Errorf("holdout AUC %.4f (passed %v), want >= 0.95", auc, ev.Passed)
	}
	dir, err := artifact.Path(bundle.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatalf("loading the bundle: %v", err)
	}
	if m.Manifest.Estimator.Type != model.EstimatorXGBoost || m.Manifest.Output != model.OutputProbability || m.Manifest.Task != model.TaskBinary {
		t.Errorf("manifest estimator %q, output %q, task %q", m.Manifest.Estimator.Type, m.Manifest.Output, m.Manifest.Task)
	}
	test := readParquet(t, prep.TestURI)
	probs, err := m.Predict(test)
	if err != nil {
		t.Fatal(err)
	}
	if got := metrics.AUC(floats(t, test, "malignant"), probs); got != ev.Metrics["auc"] {
		t.Errorf("AUC of the loaded bundle %v, evaluate reported %v", got, ev.Metrics["auc"])
	}
}
