package activities_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/pipelines"
)

// dockerTrainer connects to the engine and builds the reference trainer
// image under a tag unique to this test (never kiln/trainer:dev), removing it
// afterwards. It skips t when no engine is reachable.
func dockerTrainer(t *testing.T) (*containers.Docker, string, string) {
	t.Helper()
	ctx := context.Background()
	d, err := containers.NewDocker(ctx, containers.DockerOptions{})
	if err != nil {
		t.Skipf("no Docker engine reachable, skipping: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	dir := t.TempDir()
	for src, dst := range map[string]string{trainerBin: "trainer", filepath.Join(repoRoot, "containers", "trainer", "Dockerfile.offline"): "Dockerfile"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	tag := "kiln/test-sandbox:trainer-" + hex.EncodeToString(id)
	var log bytes.Buffer
	imageID, err := containers.BuildImage(ctx, d.Client(), containers.BuildOptions{ContextDir: dir, Tag: tag, Log: &log})
	if err != nil {
		t.Fatalf("building %s: %v\n%s", tag, err, log.String())
	}
	t.Cleanup(func() {
		if _, err := d.Client().ImageRemove(context.Background(), imageID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Logf("removing %s: %v", tag, err)
		}
	})
	return d, tag, imageID
}

// kilnContainers counts Kiln's containers (kiln.managed=true) of a workflow.
func kilnContainers(t *testing.T, d *containers.Docker, workflowID string) int {
	t.Helper()
	args := filters.NewArgs(filters.Arg("label", containers.LabelManaged+"=true"), filters.Arg("label", "kiln.workflow="+workflowID))
	list, err := d.Client().ContainerList(context.Background(), container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// heartbeats records the Progress details of an activity's heartbeats.
type heartbeats struct {
	mu   sync.Mutex
	list []activities.Progress
}

func (h *heartbeats) listen(_ *activity.Info, details converter.EncodedValues) {
	var p activities.Progress
	if details.HasValues() && details.Get(&p) == nil {
		h.mu.Lock()
		h.list = append(h.list, p)
		h.mu.Unlock()
	}
}

// TestTrainDocker trains in a real container through the Train activity run
// as a Temporal activity: the trainer's KILN_PROGRESS lines arrive as
// heartbeat details, its log is stored as an artifact of the step, the image
// ID is recorded in the bundle's lineage and then in the registry, and no
// container of the run is left.
func TestTrainDocker(t *testing.T) {
	d, tag, imageID := dockerTrainer(t)
	e := newEnv(t)
	e.acts.Docker = d
	spec := loadSpec(t, "breast_cancer.yaml")
	run := runInfo(spec, "docker-"+strings.TrimPrefix(tag, "kiln/test-sandbox:"))
	c := e.chain(run)
	c.must(step(t, spec, "ingest"))
	c.must(step(t, spec, "prep"))

	train := step(t, spec, "train")
	train.Container.Image = tag
	train.Container.Runtime = "docker"
	before := kilnContainers(t, d, run.WorkflowID)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	var hb heartbeats
	env.SetOnActivityHeartbeatListener(hb.listen)
	env.RegisterActivity(e.acts)
	val, err := env.ExecuteActivity(e.acts.Train, c.input(train))
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	var out activities.StepOutput
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("train: %s", out.Summary)

	// Heartbeats flow (the SDK throttles them to one per 30s in this
	// environment, so the trainer's own reports are checked by
	// TestTrainProgressHeartbeats).
	hb.mu.Lock()
	got := append([]activities.Progress(nil), hb.list...)
	hb.mu.Unlock()
	if len(got) == 0 || got[0].Msg != "starting "+tag {
		t.Errorf("heartbeats %+v, want a first one %q", got, "starting "+tag)
	}

	// The log is an artifact of the step.
	logs := filepath.Join(e.store.Root(), "logs")
	var logFiles []string
	for _, f := range listFiles(t, logs) {
		if strings.HasSuffix(f, ".log") && strings.Contains(f, "/train-") {
			logFiles = append(logFiles, f)
		}
	}
	if len(logFiles) != 1 {
		t.Fatalf("training logs %v under %s, want one", logFiles, logs)
	}
	logText, err := os.ReadFile(filepath.Join(logs, logFiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "logistic regression") || strings.Contains(string(logText), containers.ProgressPrefix) {
		t.Errorf("training log lacks the trainer's stderr or holds progress lines:\n%s", logText)
	}

	// Lineage: the image ID in the bundle and in the registry.
	ref := out.Artifacts.Bundle
	if ref == nil || ref.Image != imageID || ref.Runtime != containers.RuntimeDocker {
		t.Fatalf("bundle ref %+v, want image %s and runtime docker", ref, imageID)
	}
	m, err := loadModel(ref.URI)
	if err != nil {
		t.Fatal(err)
	}
	if l := m.Manifest.Lineage; l.Image != imageID || l.Runtime != containers.RuntimeDocker || l.RunID != run.WorkflowID {
		t.Errorf("manifest lineage %+v, want image %s, runtime docker, run %s", l, imageID, run.WorkflowID)
	}
	next := out.Artifacts
	next.Merge(c.acc)
	c.acc = next
	c.must(step(t, spec, "evaluate"))
	reg := c.must(step(t, spec, "register"))
	v, err := e.reg.Get(e.ctx, reg.Artifacts.Model.Name, reg.Artifacts.Model.Version)
	if err != nil {
		t.Fatal(err)
	}
	if v.Image != imageID || v.Runtime != containers.RuntimeDocker {
		t.Errorf("registry version image %q runtime %q, want %s and docker", v.Image, v.Runtime, imageID)
	}

	if after := kilnContainers(t, d, run.WorkflowID); after != before {
		t.Errorf("%d Kiln containers of the run after training, %d before", after, before)
	}
}

// TestTrainProgressHeartbeats runs a trainer that reports progress slowly
// under the process runtime, inside a workflow whose activity heartbeat
// timeout is 3s (so the SDK sends a heartbeat at most every 2.4s): the
// trainer's KILN_PROGRESS reports arrive as heartbeat details.
func TestTrainProgressHeartbeats(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "heartbeats"))
	c.must(step(t, spec, "ingest"))
	c.must(step(t, spec, "prep"))
	script := filepath.Join(t.TempDir(), "slow-trainer")
	const body = `#!/bin/sh
echo 'KILN_PROGRESS {"pct": 50, "msg": "half way"}'
echo 'slow-trainer: working' >&2
sleep 2.6
echo 'KILN_PROGRESS {"pct": 100, "msg": "all done"}'
sleep 2.6
echo 'slow-trainer: no model, failing on purpose' >&2
exit 3
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	e.acts.Process = containers.NewProcess(containers.ProcessOptions{Binaries: map[string]string{"kiln/slow:dev": script}})
	train := processTrain(t, spec, "train")
	train.Container.Image = "kiln/slow:dev"
	in := c.input(train)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var hb heartbeats
	env.SetOnActivityHeartbeatListener(hb.listen)
	env.RegisterActivity(e.acts)
	wf := func(ctx workflow.Context, in activities.StepInput) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Minute, HeartbeatTimeout: 3 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		return workflow.ExecuteActivity(ctx, e.acts.Train, in).Get(ctx, nil)
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "train-heartbeats"})
	env.ExecuteWorkflow("train-heartbeats", in)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "failing on purpose") {
		t.Errorf("workflow error %v, want the trainer's failure", err)
	}
	hb.mu.Lock()
	got := append([]activities.Progress(nil), hb.list...)
	hb.mu.Unlock()
	want := map[string]bool{"half way": false, "all done": false}
	logged := false
	for _, p := range got {
		if _, ok := want[p.Msg]; ok {
			want[p.Msg] = true
		}
		logged = logged || slices.Contains(p.Log, "slow-trainer: working")
	}
	if !logged {
		t.Errorf("heartbeats %+v, want one carrying the trainer's log line %q", got, "slow-trainer: working")
	}
	if !want["half way"] || !want["all done"] {
		t.Errorf("heartbeats %+v, want the trainer's reports %q and %q", got, "half way", "all done")
	}
}

// oomRuntime is a runtime whose trainer is always killed for memory.
type oomRuntime struct{}

func (oomRuntime) Name() string { return containers.RuntimeProcess }
func (oomRuntime) Run(ctx context.Context, spec containers.RunSpec) (containers.Result, error) {
	return containers.Result{Runtime: containers.RuntimeProcess, ExitCode: 137, OOMKilled: true},
		&containers.RunError{Runtime: containers.RuntimeProcess, ExitCode: 137, OOMKilled: true, MemoryLimit: spec.MemoryBytes}
}
func (oomRuntime) Cleanup(context.Context, map[string]string) (int, error) { return 0, nil }
func (oomRuntime) Identify(context.Context, string) (string, error)        { return "sha256:oom", nil }
func (oomRuntime) Labels(context.Context, string) (map[string]string, error) {
	return nil, nil
}

// TestTrainOutOfMemory checks that a trainer killed for memory fails the
// step with a non-retryable OutOfMemory error naming the limit (the Docker
// runtime's OOM detection itself is tested in package containers).
func TestTrainOutOfMemory(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "oom"))
	c.must(step(t, spec, "ingest"))
	c.must(step(t, spec, "prep"))
	e.acts.Process = oomRuntime{}
	train := processTrain(t, spec, "train")
	train.Container.Memory = 64 * pipelines.MiB
	_, err := c.try(train)
	checkAppError(t, err, activities.ErrTypeOutOfMemory, "killed: out of memory, limit 64 MiB", "raise container.memory")
	if !errors.Is(err, containers.ErrOutOfMemory) {
		t.Errorf("error %v does not match containers.ErrOutOfMemory", err)
	}
}

// exitRuntime is a runtime whose trainer always exits with code.
type exitRuntime struct{ oomRuntime }

func (exitRuntime) Run(ctx context.Context, spec containers.RunSpec) (containers.Result, error) {
	return containers.Result{Runtime: containers.RuntimeProcess, ExitCode: 2},
		&containers.RunError{Runtime: containers.RuntimeProcess, ExitCode: 2, LogTail: "unknown parameter \"alpha\""}
}

// TestTrainBadInputNotRetried: a trainer exiting with the contract's
// bad-input code (2) fails the step with a non-retryable InvalidInput
// error naming the code and the trainer's message.
func TestTrainBadInputNotRetried(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "badinput"))
	c.must(step(t, spec, "ingest"))
	c.must(step(t, spec, "prep"))
	e.acts.Process = exitRuntime{}
	_, err := c.try(processTrain(t, spec, "train"))
	checkAppError(t, err, "InvalidInput", "exited with code 2", "not retried", "unknown parameter")
}

// TestTrainCSVInputs checks the io.kiln.inputs=csv contract: the trainer
// gets train.csv and valid.csv next to the Parquet files, with the features
// then the target, and values that read back exactly.
func TestTrainCSVInputs(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "csv"))
	c.must(step(t, spec, "ingest"))
	prep := c.must(step(t, spec, "prep")).Artifacts.Prepared

	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{name: "no label", want: false},
		{name: "csv", labels: map[string]string{containers.LabelInputs: "csv"}, want: true},
		{name: "list", labels: map[string]string{containers.LabelInputs: "parquet, CSV"}, want: true},
		{name: "other", labels: map[string]string{containers.LabelInputs: "parquet"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := &inputSpy{labels: tt.labels}
			e.acts.Process = seen
			train := processTrain(t, spec, "train")
			train.Container.Image = "kiln/spy:" + strings.ReplaceAll(tt.name, " ", "-")
			_, _ = c.try(train) // The spy writes no model: the step fails after the run.
			if seen.files == nil {
				t.Fatal("the runtime never ran")
			}
			_, hasTrain := seen.files["train.csv"]
			_, hasValid := seen.files["valid.csv"]
			if hasTrain != tt.want || hasValid != tt.want {
				t.Fatalf("inputs %v, want CSV files %v", keys(seen.files), tt.want)
			}
			if !tt.want {
				return
			}
			for _, split := range []struct{ name, uri string }{{"train", prep.TrainURI}, {"valid", prep.ValidURI}} {
				rec := readParquet(t, split.uri)
				lines := strings.Split(strings.TrimSuffix(seen.files[split.name+".csv"], "\n"), "\n")
				header := strings.Join(append(append([]string(nil), prep.Features...), prep.Target), ",")
				if lines[0] != header {
					t.Errorf("%s.csv header %q, want %q", split.name, lines[0], header)
				}
				if int64(len(lines)-1) != rec.NumRows() {
					t.Fatalf("%s.csv has %d rows, want %d", split.name, len(lines)-1, rec.NumRows())
				}
				// Spot-check the first feature and the target of every row.
				first, target := floats(t, rec, prep.Features[0]), floats(t, rec, prep.Target)
				for i, line := range lines[1:] {
					fields := strings.Split(line, ",")
					if fields[0] != formatFloat(first[i]) || fields[len(fields)-1] != formatFloat(target[i]) {
						t.Fatalf("%s.csv row %d = %q, want %s ... %s", split.name, i+1, line, formatFloat(first[i]), formatFloat(target[i]))
					}
				}
			}
		})
	}
}

// inputSpy is a runtime that records the files of its input directory and
// the labels it reports for every image.
type inputSpy struct {
	labels map[string]string
	files  map[string]string
}

func (s *inputSpy) Name() string { return containers.RuntimeProcess }
func (s *inputSpy) Run(ctx context.Context, spec containers.RunSpec) (containers.Result, error) {
	s.files = map[string]string{}
	entries, err := os.ReadDir(spec.InputDir)
	if err != nil {
		return containers.Result{}, err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(spec.InputDir, e.Name()))
		if err != nil {
			return containers.Result{}, err
		}
		s.files[e.Name()] = string(data)
	}
	return containers.Result{Runtime: containers.RuntimeProcess, ImageID: "sha256:spy", ExitCode: 0, Duration: time.Millisecond}, nil
}
func (s *inputSpy) Cleanup(context.Context, map[string]string) (int, error) { return 0, nil }
func (s *inputSpy) Identify(context.Context, string) (string, error)        { return "sha256:spy", nil }
func (s *inputSpy) Labels(context.Context, string) (map[string]string, error) {
	return s.labels, nil
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// formatFloat formats v as the CSV inputs do: the shortest form that
// reads back to the same float64.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
