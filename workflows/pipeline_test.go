package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
)

const fullSpec = `apiVersion: kiln/v1
kind: Pipeline
name: demo
steps:
  - name: ingest
    uses: ingest
    with: {source: data.csv}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with: {target: y}
  - name: train
    uses: train
    needs: [prep]
    with: {algorithm: logistic}
  - name: evaluate
    uses: evaluate
    needs: [train]
  - name: register
    uses: register
    needs: [evaluate]
    with: {model: demo}
  - name: score
    uses: score
    needs: [register]
  - name: deploy
    uses: deploy
    needs: [register]
    with: {server: "http://127.0.0.1:1", interval: 1s}
  - name: monitor
    uses: monitor
    needs: [deploy]
`

// newEnv returns a test environment with Kiln's workflows registered and a
// Validate mock that parses spec for real.
func newEnv(t *testing.T, spec string) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(PipelineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPipeline})
	env.RegisterWorkflowWithOptions(ScoreWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScore})
	env.RegisterWorkflowWithOptions(CanaryWorkflow, workflow.RegisterOptions{Name: activities.WorkflowCanary})
	env.RegisterActivityWithOptions(&activities.Activities{}, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	parsed, err := pipelines.Parse("test.yaml", []byte(spec), nil)
	if err != nil {
		t.Fatalf("test spec: %v", err)
	}
	env.OnActivity(a.Validate, mock.Anything, mock.Anything).Return(activities.ValidateOutput{Spec: *parsed}, nil)
	return env
}

// recorder keeps the order steps started in and the inputs they saw.
type recorder struct {
	mu     sync.Mutex
	order  []string
	inputs map[string]activities.StepInput
}

func (r *recorder) step(art activities.Artifacts) func(context.Context, activities.StepInput) (activities.StepOutput, error) {
	return func(_ context.Context, in activities.StepInput) (activities.StepOutput, error) {
		r.mu.Lock()
		r.order = append(r.order, in.Step.Name)
		if r.inputs == nil {
			r.inputs = map[string]activities.StepInput{}
		}
		r.inputs[in.Step.Name] = in
		r.mu.Unlock()
		return activities.StepOutput{Artifacts: art, Summary: in.Step.Name + " done"}, nil
	}
}

// mockSteps makes every step activity succeed with the artifact its type produces.
// A non-nil trainErr makes the train step fail with it.
func mockSteps(env *testsuite.TestWorkflowEnvironment, r *recorder, trainErr error) {
	env.OnActivity(a.Ingest, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Dataset: &activities.DatasetRef{URI: "file:///d", SHA256: "abc", Rows: 1000}}))
	env.OnActivity(a.Preprocess, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Prepared: &activities.PreparedRef{TrainURI: "file:///t"}}))
	if trainErr != nil {
		env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(activities.StepOutput{}, trainErr)
	} else {
		env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Bundle: &activities.BundleRef{URI: "file:///b"}}))
	}
	env.OnActivity(a.Evaluate, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Evaluation: &activities.EvaluationRef{Passed: true}}))
	env.OnActivity(a.Register, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Model: &activities.ModelRef{Name: "demo", Version: 1, BundleURI: "file:///b"}}))
	env.OnActivity(a.Score, mock.Anything, mock.Anything).Return(r.step(activities.Artifacts{Scored: &activities.ScoredRef{URI: "file:///s", Rows: 10}}))
	scored := r.step(activities.Artifacts{Scored: &activities.ScoredRef{URI: "file:///s", Rows: 10}})
	env.OnWorkflow(ScoreWorkflow, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in activities.StepInput) (activities.StepOutput, error) {
		return scored(context.Background(), in)
	})
	// Canary: no stable version yet, so the rollout is a first deployment.
	env.OnActivity(a.ResolveAlias, mock.Anything, mock.Anything).Return(activities.ResolveAliasOutput{}, nil)
	env.OnActivity(a.SetTraffic, mock.Anything, mock.Anything).Return(activities.TrafficOutput{Applied: true}, nil)
	env.OnActivity(a.MoveAlias, mock.Anything, mock.Anything).Return(activities.MoveAliasOutput{EventID: 1}, nil)
	env.OnActivity(a.StartMonitor, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StartMonitorInput) (activities.StartMonitorOutput, error) {
			r.mu.Lock()
			r.order = append(r.order, "monitor")
			r.mu.Unlock()
			return activities.StartMonitorOutput{WorkflowID: MonitorID(in.Monitor.Model)}, nil
		})
}

func TestPipelineRunsTheGraphInOrder(t *testing.T) {
	env := newEnv(t, fullSpec)
	r := &recorder{}
	mockSteps(env, r, nil)
	env.ExecuteWorkflow(PipelineWorkflow, PipelineInput{Spec: activities.ValidateInput{SpecText: fullSpec}, CreatedBy: "test"})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var st RunStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusCompleted || len(st.Steps) != 8 {
		t.Fatalf("status %s with %d steps", st.Status, len(st.Steps))
	}
	for _, s := range st.Steps {
		if s.Status != StatusCompleted {
			t.Errorf("step %s: %s (%s)", s.Name, s.Status, s.Error)
		}
	}
	pos := func(name string) int { return slices.Index(r.order, name) }
	for _, edge := range [][2]string{{"ingest", "prep"}, {"prep", "train"}, {"train", "evaluate"}, {"evaluate", "register"}, {"register", "score"}, {"register", "monitor"}} {
		if pos(edge[0]) < 0 || pos(edge[1]) < 0 || pos(edge[0]) > pos(edge[1]) {
			t.Errorf("%s must run before %s; order %v", edge[0], edge[1], r.order)
		}
	}
	// Ancestors' artifacts flow down, nearest first.
	ev := r.inputs["evaluate"].Inputs
	if ev.Bundle == nil || ev.Prepared == nil || ev.Dataset == nil {
		t.Errorf("evaluate did not receive its ancestors' artifacts: %+v", ev)
	}
	if r.inputs["score"].Inputs.Model == nil {
		t.Error("score did not receive the registered model")
	}
	dep := st.Artifacts().Deployment
	if dep == nil || !dep.Promoted || dep.Outcome != "first deployment" {
		t.Errorf("deployment = %+v", dep)
	}
}

func TestPipelineFailureNamesTheStepAndSkipsDownstream(t *testing.T) {
	env := newEnv(t, fullSpec)
	r := &recorder{}
	mockSteps(env, r, temporal.NewNonRetryableApplicationError("trainer exited with code 2: column x has NaN", ErrTypeInvalidInput, nil))
	env.ExecuteWorkflow(PipelineWorkflow, PipelineInput{Spec: activities.ValidateInput{SpecText: fullSpec}})
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("workflow succeeded; want the train failure")
	}
	if !strings.Contains(err.Error(), `step "train" (train) failed`) || !strings.Contains(err.Error(), "column x has NaN") {
		t.Errorf("error %q does not name the step and the cause", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Errorf("error %T is not an application error", err)
	}
	val, qerr := env.QueryWorkflow(QueryStatus)
	if qerr != nil {
		t.Fatal(qerr)
	}
	var st RunStatus
	if err := val.Get(&st); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ingest": StatusCompleted, "prep": StatusCompleted, "train": StatusFailed,
		"evaluate": StatusSkipped, "register": StatusSkipped, "score": StatusSkipped, "deploy": StatusSkipped, "monitor": StatusSkipped}
	for _, s := range st.Steps {
		if s.Status != want[s.Name] {
			t.Errorf("step %s: %s, want %s", s.Name, s.Status, want[s.Name])
		}
	}
	if st.Step("train").Error == "" {
		t.Error("the failed step has no error message")
	}
}

func TestPipelineRunsIndependentStepsInParallel(t *testing.T) {
	const spec = `apiVersion: kiln/v1
kind: Pipeline
name: fan
steps:
  - {name: a, uses: ingest, with: {source: a.csv}}
  - {name: b, uses: ingest, with: {source: b.csv}}
`
	env := newEnv(t, spec)
	// Each ingest waits until both have started: run one after the other,
	// the first would time out.
	var mu sync.Mutex
	started := 0
	both := make(chan struct{})
	env.OnActivity(a.Ingest, mock.Anything, mock.Anything).Return(func(context.Context, activities.StepInput) (activities.StepOutput, error) {
		mu.Lock()
		started++
		if started == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
			return activities.StepOutput{Summary: "ok"}, nil
		case <-time.After(5 * time.Second):
			return activities.StepOutput{}, temporal.NewNonRetryableApplicationError("the other step never started", "Serial", nil)
		}
	})
	env.ExecuteWorkflow(PipelineWorkflow, PipelineInput{Spec: activities.ValidateInput{SpecText: spec}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("independent steps did not run in parallel: %v", err)
	}
}
