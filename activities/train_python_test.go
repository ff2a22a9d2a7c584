package activities_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/pipelines"
)

// xgboostImage is the image `make image-xgboost` builds.
const xgboostImage = "kiln/xgboost:dev"

// pythonTrainerCases are the algorithms of containers/xgboost/train.py with
// the bundle estimator type each must produce.
var pythonTrainerCases = []struct {
	algorithm string
	params    map[string]any
	estimator string
}{
	{algorithm: "gbdt", params: map[string]any{"n_estimators": 50, "max_depth": 4, "learning_rate": 0.3}, estimator: model.EstimatorXGBoost},
	{algorithm: "logistic", params: map[string]any{"l2": 0.01}, estimator: model.EstimatorLogistic},
}

// trainAndScorePython trains with the Python trainer on the breast cancer
// data through Kiln's train path (runtime rt: "docker" or "process"), then
// has Kiln evaluate the holdout with the bundle, register it and batch-score
// the whole data set with it.
func trainAndScorePython(t *testing.T, e *env, rt, image string, algorithm string, params map[string]any, estimator string) {
	t.Helper()
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "python-"+rt+"-"+algorithm))
	c.must(step(t, spec, "ingest"))
	c.must(step(t, spec, "prep"))
	train := step(t, spec, "train")
	train.Container.Image = image
	train.Container.Runtime = rt
	train.Container.Memory = 512 * pipelines.MiB
	train.Train.Algorithm = algorithm
	train.Train.Params = params
	bundle := c.must(train).Artifacts.Bundle

	m, err := loadModel(bundle.URI)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Manifest.Estimator.Type; got != estimator {
		t.Errorf("estimator type %q, want %q", got, estimator)
	}
	if !strings.HasPrefix(m.Manifest.Lineage.TrainerVersion, "kiln-xgboost/") || m.Manifest.Lineage.Runtime != rt {
		t.Errorf("lineage %+v, want the Python trainer's version and runtime %s", m.Manifest.Lineage, rt)
	}
	if auc := m.Manifest.Metrics["valid_auc"]; !(auc >= 0.9) {
		t.Errorf("trainer's valid AUC %v, want >= 0.9", auc)
	}

	ev := c.must(step(t, spec, "evaluate"))
	if ev.Artifacts.Evaluation == nil || !(ev.Artifacts.Evaluation.Metrics["auc"] >= 0.95) {
		t.Errorf("Kiln's holdout evaluation %+v, want AUC >= 0.95", ev.Artifacts.Evaluation)
	}
	c.must(step(t, spec, "register"))
	scored := c.must(step(t, spec, "score")).Artifacts.Scored
	if scored.Rows != breastCancerRows {
		t.Fatalf("scored %d rows, want %d", scored.Rows, breastCancerRows)
	}
	for i, p := range floats(t, readParquet(t, scored.URI), "prediction") {
		if !(p >= 0 && p <= 1) {
			t.Fatalf("row %d: prediction %v outside [0, 1]", i, p)
		}
	}
}

// TestTrainPythonProcess runs containers/xgboost/train.py under the process
// runtime with the host's Debian Python (CI installs python3-xgboost and
// python3-sklearn): the CSV inputs, both algorithms, and Kiln scoring what
// the trainer wrote.
func TestTrainPythonProcess(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import xgboost, sklearn, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import xgboost, sklearn and numpy (apt-get install python3-xgboost python3-sklearn): %v\n%s", python, err, out)
	}
	script := filepath.Join(repoRoot, "containers", "xgboost", "train.py")
	if st, err := os.Stat(script); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s must exist and be executable: %v", script, err)
	}
	for _, tt := range pythonTrainerCases {
		t.Run(tt.algorithm, func(t *testing.T) {
			e := newEnv(t)
			e.acts.Process = containers.NewProcess(containers.ProcessOptions{
				Binaries: map[string]string{xgboostImage: script},
				Labels:   map[string]map[string]string{xgboostImage: {containers.LabelInputs: "csv"}},
			})
			trainAndScorePython(t, e, "process", xgboostImage, tt.algorithm, tt.params, tt.estimator)
		})
	}
}

// TestPythonImage trains with the kiln/xgboost:dev image in the Docker
// sandbox and has Kiln score the models it wrote. Opt-in: `make
// test-python-image` builds the image and sets KILN_TEST_PYTHON_IMAGE=1.
func TestPythonImage(t *testing.T) {
	if os.Getenv("KILN_TEST_PYTHON_IMAGE") != "1" {
		t.Skip("set KILN_TEST_PYTHON_IMAGE=1 (make test-python-image builds kiln/xgboost:dev and runs this)")
	}
	ctx := context.Background()
	d, err := containers.NewDocker(ctx, containers.DockerOptions{})
	if err != nil {
		t.Fatalf("KILN_TEST_PYTHON_IMAGE=1 needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	labels, err := d.Labels(ctx, xgboostImage)
	if err != nil {
		t.Fatalf("%v (make image-xgboost builds it)", err)
	}
	if labels[containers.LabelInputs] != "csv" {
		t.Fatalf("%s labels %v, want %s=csv", xgboostImage, labels, containers.LabelInputs)
	}
	for _, tt := range pythonTrainerCases {
		t.Run(tt.algorithm, func(t *testing.T) {
			e := newEnv(t)
			e.acts.Docker = d
			trainAndScorePython(t, e, "docker", xgboostImage, tt.algorithm, tt.params, tt.estimator)
		})
	}
}
