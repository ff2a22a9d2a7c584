package workflows

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// TestScoreWorkflowFanOut runs 1,234 shards through ScoreWorkflow with
// mocked activities: every shard runs exactly once, in chunks of
// shardsPerChild child workflows, at most `parallelism` at once, then the
// commit; a failing shard stops the job, removes the staging directory and
// never commits.
func TestScoreWorkflowFanOut(t *testing.T) {
	const shards = 1234
	for _, failAt := range []int{-1, 700} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(ScoreWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScore})
		env.RegisterWorkflowWithOptions(ScoreShardsWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScoreShards})
		env.OnActivity(a.ScorePlan, mock.Anything, mock.Anything).Return(activities.ScorePlanOutput{Staging: "/x/.out.staging", Key: "k", Shards: shards, Rows: shards * 10}, nil)
		var mu sync.Mutex
		seen := map[int]int{}
		running, peak := 0, 0
		env.OnActivity(a.ScoreShard, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScoreShardInput) (scorer.ShardResult, error) {
			mu.Lock()
			seen[in.Shard]++
			running++
			peak = max(peak, running)
			mu.Unlock()
			defer func() { mu.Lock(); running--; mu.Unlock() }()
			if in.Shard == failAt {
				return scorer.ShardResult{}, temporal.NewNonRetryableApplicationError("bad row", ErrTypeInvalidInput, nil)
			}
			return scorer.ShardResult{Shard: in.Shard, Parts: 1, Rows: 10}, nil
		})
		committed, aborted := false, false
		env.OnActivity(a.ScoreCommit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScoreCommitInput) (activities.StepOutput, error) {
			committed = true
			return activities.StepOutput{Artifacts: activities.Artifacts{Scored: &activities.ScoredRef{URI: "file:///x/out", Rows: shards * 10}}}, nil
		})
		env.OnActivity(a.ScoreAbort, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScoreAbortInput) error {
			aborted = in.Staging == "/x/.out.staging"
			return nil
		})
		step := pipelines.Step{Name: "score", Uses: pipelines.StepScore, Score: &pipelines.ScoreConfig{Parallelism: 3}}
		env.ExecuteWorkflow(ScoreWorkflow, activities.StepInput{Run: activities.RunInfo{WorkflowID: "pipeline/p/r"}, Step: step})
		err := env.GetWorkflowError()
		if failAt < 0 {
			if err != nil {
				t.Fatal(err)
			}
			var out activities.StepOutput
			if err := env.GetWorkflowResult(&out); err != nil || out.Artifacts.Scored.Rows != shards*10 {
				t.Fatalf("result %+v, %v", out, err)
			}
			if len(seen) != shards {
				t.Errorf("%d distinct shards ran, want %d", len(seen), shards)
			}
			for i, n := range seen {
				if n != 1 {
					t.Errorf("shard %d ran %d times", i, n)
				}
			}
			if !committed || aborted {
				t.Errorf("committed %v, aborted %v; want committed only", committed, aborted)
			}
		} else {
			if err == nil {
				t.Fatal("a failed shard did not fail the job")
			}
			if committed || !aborted {
				t.Errorf("committed %v, aborted %v; want aborted only", committed, aborted)
			}
			if len(seen) >= shards {
				t.Errorf("all %d shards ran after shard %d failed", len(seen), failAt)
			}
		}
		if peak > 3 {
			t.Errorf("%d shards ran at once, parallelism is 3", peak)
		}
	}
}

// TestScoreWorkflowReplansWhenHostLost: shards wait on the planning
// worker's own queue; when it never comes back (a schedule-to-start
// timeout), the job is planned again, on another worker, and committed
// from that plan; the lost staging is not aborted (nobody could).
func TestScoreWorkflowReplansWhenHostLost(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ScoreWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScore})
	env.RegisterWorkflowWithOptions(ScoreShardsWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScoreShards})
	plans := 0
	env.OnActivity(a.ScorePlan, mock.Anything, mock.Anything).Return(func(context.Context, activities.StepInput) (activities.ScorePlanOutput, error) {
		plans++
		host := []string{"a", "b"}[min(plans-1, 1)]
		return activities.ScorePlanOutput{Staging: "/" + host + "/.out.staging", Key: "k", Shards: 3, Rows: 30, Queue: "kiln-host-" + host}, nil
	})
	env.OnActivity(a.ScoreShard, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScoreShardInput) (scorer.ShardResult, error) {
		if in.Staging == "/a/.out.staging" {
			return scorer.ShardResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
		}
		return scorer.ShardResult{Shard: in.Shard, Parts: 1, Rows: 10}, nil
	})
	var committed []string
	env.OnActivity(a.ScoreCommit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScoreCommitInput) (activities.StepOutput, error) {
		committed = append(committed, in.Staging)
		return activities.StepOutput{Artifacts: activities.Artifacts{Scored: &activities.ScoredRef{URI: "s3://b/out", Rows: 30}}}, nil
	})
	aborted := false
	env.OnActivity(a.ScoreAbort, mock.Anything, mock.Anything).Return(func(context.Context, activities.ScoreAbortInput) error {
		aborted = true
		return nil
	})
	step := pipelines.Step{Name: "score", Uses: pipelines.StepScore, Score: &pipelines.ScoreConfig{}}
	env.ExecuteWorkflow(ScoreWorkflow, activities.StepInput{Run: activities.RunInfo{WorkflowID: "pipeline/p/r"}, Step: step})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if plans != 2 || len(committed) != 1 || committed[0] != "/b/.out.staging" || aborted {
		t.Fatalf("%d plans, committed %v, aborted %v; want 2 plans, the second committed, no abort", plans, committed, aborted)
	}
}
