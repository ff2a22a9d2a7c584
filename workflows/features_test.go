package workflows

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// runSpec executes a pipeline spec in the test environment and returns its
// status (from the result, or the status query when it failed).
func runSpec(t *testing.T, env *testsuite.TestWorkflowEnvironment, spec string, in PipelineInput) (RunStatus, error) {
	t.Helper()
	in.Spec = activities.ValidateInput{SpecText: spec}
	env.ExecuteWorkflow(PipelineWorkflow, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := env.GetWorkflowError()
	v, qerr := env.QueryWorkflow(QueryStatus)
	if qerr != nil {
		t.Fatal(qerr)
	}
	var st RunStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st, err
}

const noopChain = `apiVersion: kiln/v1
kind: Pipeline
name: chain
params: {go: false}
steps:
  - {name: a, uses: noop}
  - {name: b, uses: noop, needs: [a], when: "params.go"}
  - {name: c, uses: noop, needs: [b]}
`

func TestWhenFalseSkipsTheStepButNotItsDependents(t *testing.T) {
	env := newEnv(t, noopChain)
	var mu sync.Mutex
	var ran []string
	env.OnActivity(a.Noop, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StepInput) (activities.StepOutput, error) {
		mu.Lock()
		ran = append(ran, in.Step.Name)
		mu.Unlock()
		return activities.StepOutput{Summary: "noop"}, nil
	})
	st, err := runSpec(t, env, noopChain, PipelineInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ran, ","); got != "a,c" {
		t.Errorf("ran %s, want a,c", got)
	}
	b := st.Step("b")
	if b.Status != StatusSkipped || !strings.Contains(b.SkipReason, "params.go") {
		t.Errorf("b: %s (%q), want skipped with the condition as reason", b.Status, b.SkipReason)
	}
}

const refSpec = `apiVersion: kiln/v1
kind: Pipeline
name: refs
steps:
  - {name: ingest, uses: ingest, with: {source: data.csv}}
  - {name: prep, uses: preprocess, needs: [ingest], with: {target: y}}
  - {name: train, uses: train, needs: [prep], with: {algorithm: logistic}}
  - {name: register, uses: register, needs: [train]}
  - name: score
    uses: score
    needs: [register]
    with: {input: "${steps.ingest.dataset.uri}", output: "out/${steps.register.model.name}.parquet"}
    when: "steps.ingest.dataset.rows > 100"
`

func TestStepOutputReferencesAreSubstituted(t *testing.T) {
	env := newEnv(t, refSpec)
	r := &recorder{}
	mockSteps(env, r, nil)
	st, err := runSpec(t, env, refSpec, PipelineInput{})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Step("score"); s.Status != StatusCompleted {
		t.Fatalf("score: %s %s (%s)", s.Status, s.SkipReason, s.Error)
	}
	cfg := r.inputs["score"].Step.Score
	if cfg.Input != "file:///d" || cfg.Output != "out/demo.parquet" {
		t.Errorf("score config after substitution: input %q, output %q", cfg.Input, cfg.Output)
	}
}

const approvalSpec = `apiVersion: kiln/v1
kind: Pipeline
name: gated
steps:
  - {name: a, uses: noop}
  - name: ok
    uses: approval
    needs: [a]
    with: {message: "Ship it?", approvers: [ana, ben], timeout: 1h, on_timeout: %s}
  - {name: b, uses: noop, needs: [ok]}
`

func TestApproval(t *testing.T) {
	tests := []struct {
		name       string
		onTimeout  string
		decision   *ApproveInput
		wantStatus string // of the approval step
		wantB      string // of the step after it
		wantErr    bool
	}{
		{"approved", "fail", &ApproveInput{Step: "ok", Approve: true, Reason: "metrics look good", Actor: "ana"}, StatusCompleted, StatusCompleted, false},
		{"rejected", "fail", &ApproveInput{Step: "ok", Approve: false, Reason: "too risky", Actor: "ben"}, StatusFailed, StatusSkipped, true},
		{"timeout fails", "fail", nil, StatusFailed, StatusSkipped, true},
		{"timeout skips", "skip", nil, StatusSkipped, StatusCompleted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := fmt.Sprintf(approvalSpec, tt.onTimeout)
			env := newEnv(t, spec)
			env.OnActivity(a.Noop, mock.Anything, mock.Anything).Return(activities.StepOutput{Summary: "noop"}, nil)
			var rejected []string
			if tt.decision != nil {
				env.RegisterDelayedCallback(func() {
					// Invalid decisions first: each must be rejected by the validator.
					for _, bad := range []ApproveInput{
						{Step: "nope", Approve: true, Reason: "x", Actor: "ana"},
						{Step: "a", Approve: true, Reason: "x", Actor: "ana"},
						{Step: "ok", Approve: true, Reason: " ", Actor: "ana"},
						{Step: "ok", Approve: true, Reason: "x", Actor: "mallory"},
					} {
						env.UpdateWorkflow(UpdateApprove, "", &testsuite.TestUpdateCallback{
							OnReject:   func(err error) { rejected = append(rejected, err.Error()) },
							OnComplete: func(any, error) {},
						}, bad)
					}
					env.UpdateWorkflow(UpdateApprove, "", &testsuite.TestUpdateCallback{
						OnReject:   func(err error) { t.Errorf("valid decision rejected: %v", err) },
						OnComplete: func(any, error) {},
					}, *tt.decision)
				}, 10*time.Minute)
			}
			st, err := runSpec(t, env, spec, PipelineInput{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			ok := st.Step("ok")
			if ok.Status != tt.wantStatus || st.Step("b").Status != tt.wantB {
				t.Errorf("approval %s (%s%s), b %s; want %s, %s", ok.Status, ok.Error, ok.SkipReason, st.Step("b").Status, tt.wantStatus, tt.wantB)
			}
			if tt.decision != nil {
				if len(rejected) != 4 {
					t.Errorf("validator rejected %d invalid decisions, want 4: %v", len(rejected), rejected)
				}
				if tt.decision.Approve {
					got := ok.Artifacts.Approval
					if got == nil || got.By != "ana" || got.Reason != "metrics look good" || got.Decision != "approved" {
						t.Errorf("recorded approval %+v", got)
					}
				}
			}
		})
	}
}

func TestForeachRunsEveryItemInChunks(t *testing.T) {
	const n = 1234
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("i%d", i)
	}
	spec := fmt.Sprintf(`apiVersion: kiln/v1
kind: Pipeline
name: fan
steps:
  - name: each
    uses: noop
    foreach: {items: [%s], parallelism: 7}
`, strings.Join(items, ", "))
	env := newEnv(t, spec)
	env.RegisterWorkflowWithOptions(ForeachWorkflow, workflow.RegisterOptions{Name: activities.WorkflowForeach})
	var mu sync.Mutex
	seen := map[int]string{}
	env.OnActivity(a.Noop, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StepInput) (activities.StepOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		if in.Item == nil {
			return activities.StepOutput{}, fmt.Errorf("no item")
		}
		seen[in.Item.Index] = in.Item.Value
		return activities.StepOutput{Summary: "ok"}, nil
	})
	var chunks int
	env.OnActivity(a.WriteItemResults, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteItemResultsInput) (activities.WriteItemResultsOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		chunks++
		return activities.WriteItemResultsOutput{URI: fmt.Sprintf("file:///results/%d.jsonl", in.Chunk)}, nil
	})
	st, err := runSpec(t, env, spec, PipelineInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || seen[1233] != "i1233" {
		t.Errorf("%d distinct items ran, want %d", len(seen), n)
	}
	want := (n + itemsPerChild - 1) / itemsPerChild
	ref := st.Step("each").Artifacts.Foreach
	if chunks != want || ref == nil || ref.Items != n || ref.Succeeded != n || len(ref.ResultsURIs) != want {
		t.Errorf("%d chunks, foreach %+v; want %d chunks and %d items", chunks, ref, want, n)
	}
}

func TestForeachStopsAtTheFirstFailure(t *testing.T) {
	spec := `apiVersion: kiln/v1
kind: Pipeline
name: fan
steps:
  - {name: each, uses: noop, foreach: {items: [a, b, c, d, e, f], parallelism: 1}}
  - {name: after, uses: noop, needs: [each]}
`
	env := newEnv(t, spec)
	env.RegisterWorkflowWithOptions(ForeachWorkflow, workflow.RegisterOptions{Name: activities.WorkflowForeach})
	var mu sync.Mutex
	var ran []string
	env.OnActivity(a.Noop, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StepInput) (activities.StepOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, in.Step.Name+":"+in.Item.Value)
		if in.Item.Value == "c" {
			return activities.StepOutput{}, temporal.NewNonRetryableApplicationError("bad item c", ErrTypeInvalidInput, nil)
		}
		return activities.StepOutput{}, nil
	})
	env.OnActivity(a.WriteItemResults, mock.Anything, mock.Anything).Return(activities.WriteItemResultsOutput{URI: "file:///r.jsonl"}, nil)
	st, err := runSpec(t, env, spec, PipelineInput{})
	if err == nil || !strings.Contains(err.Error(), "1 of 6 items failed") || !strings.Contains(err.Error(), "bad item c") {
		t.Fatalf("err = %v, want the failed item named", err)
	}
	if got := strings.Join(ran, ","); got != "each:a,each:b,each:c" {
		t.Errorf("ran %s, want the items up to the failure only", got)
	}
	if st.Step("after").Status != StatusSkipped {
		t.Errorf("after: %s", st.Step("after").Status)
	}
}

func TestResumeHandsTheEarlierOutputToTheActivity(t *testing.T) {
	env := newEnv(t, fullSpec)
	r := &recorder{}
	mockSteps(env, r, nil)
	prev := activities.StepOutput{CacheKey: "k1", Summary: "earlier", Artifacts: activities.Artifacts{Dataset: &activities.DatasetRef{URI: "file:///old"}}}
	_, err := runSpec(t, env, fullSpec, PipelineInput{NoCache: true, Resume: &ResumeFrom{WorkflowID: "pipeline/demo/r0", Steps: map[string]activities.StepOutput{"ingest": prev}}})
	if err != nil {
		t.Fatal(err)
	}
	in := r.inputs["ingest"]
	if in.Reuse == nil || in.Reuse.CacheKey != "k1" || !in.NoCache {
		t.Errorf("ingest input: reuse %+v, no-cache %v", in.Reuse, in.NoCache)
	}
	if r.inputs["prep"].Reuse != nil {
		t.Error("prep got a reuse entry it did not have")
	}
}
