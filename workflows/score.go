package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// shardsPerChild is how many shards one ScoreShardsWorkflow runs: a few
// events per shard keep its history far below Temporal's limits, and the
// score workflow's history grows by a few events per child, so 10,000
// shards are 20 children.
const shardsPerChild = 500

// defaultScoreParallelism is how many shards run at once by default.
const defaultScoreParallelism = 4

// shardHeartbeat is the heartbeat timeout of a shard activity: how soon a
// shard whose worker died is retried elsewhere. Shards heartbeat every few
// seconds while they work.
const shardHeartbeat = 20 * time.Second

// minShardAttempts is the least number of attempts a shard gets, whatever
// the step's retry policy: a killed worker must not fail the job.
const minShardAttempts = 5

// hostWait is how long a shard waits on the planning worker's own queue
// (activities.ScorePlanOutput.Queue) for that worker before the job is
// planned again elsewhere (at most maxReplans times): a worker restarted
// on the same home within it resumes its shards.
const hostWait = 10 * time.Minute

// maxReplans bounds the plans a score job makes after losing workers.
const maxReplans = 2

// replanVersion marks runs whose score steps plan again when the planning
// worker is lost.
const replanVersion = "score-replan"

// fanoutVersion marks runs whose score steps fan out (ScoreWorkflow) rather
// than run as one Score activity; histories recorded before keep replaying.
const fanoutVersion = "score-fanout"

// ScoreShardsInput is one chunk of a score job's shards.
type ScoreShardsInput struct {
	Step    pipelines.Step `json:"step"`
	Staging string         `json:"staging"`
	// From and To select shards [From, To).
	From int `json:"from"`
	To   int `json:"to"`
	// Queue, when set, overrides the step's queue: the planning worker's
	// own queue (activities.ScorePlanOutput.Queue).
	Queue string `json:"queue,omitempty"`
}

// ScoreShardsResult counts a chunk's work.
type ScoreShardsResult struct {
	Shards  int   `json:"shards"`
	Parts   int   `json:"parts"`
	Skipped int   `json:"skipped"`
	Rows    int64 `json:"rows"`
}

// ScoreWorkflow runs a score step as a fan-out: the ScorePlan activity
// plans the shards (or returns the cached result), chunks of at most
// shardsPerChild shards run in ScoreShardsWorkflow children (each shard one
// ScoreShard activity, `parallelism` at a time), and ScoreCommit publishes
// the output. When a shard fails for good, ScoreAbort removes the staging
// directory, so no partial output survives. Its ID is <run>/<step> inside a
// pipeline.
func ScoreWorkflow(ctx workflow.Context, in activities.StepInput) (activities.StepOutput, error) {
	step := in.Step
	if step.Score == nil {
		return activities.StepOutput{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("step %q has no score config", step.Name), ErrTypeInvalidInput, nil)
	}
	var queue string
	small := func(id, summary string) workflow.Context {
		return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			ActivityID:          id,
			Summary:             summary,
			TaskQueue:           queue,
			StartToCloseTimeout: 30 * time.Minute,
			HeartbeatTimeout:    time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
		})
	}
	for replan := 0; ; replan++ {
		suffix := ""
		if replan > 0 {
			suffix = fmt.Sprintf("-replan-%d", replan)
		}
		queue = step.Queue
		var plan activities.ScorePlanOutput
		if err := workflow.ExecuteActivity(small(step.Name+"-plan"+suffix, step.Name+": plan shards"), a.ScorePlan, in).Get(ctx, &plan); err != nil {
			return activities.StepOutput{}, err
		}
		if plan.Cached != nil {
			return *plan.Cached, nil
		}
		if plan.Queue != "" {
			// The staging directory is on the planning worker's disk.
			queue = plan.Queue
		}
		var total ScoreShardsResult
		var err error
		for chunk, from := 0, 0; from < plan.Shards; chunk, from = chunk+1, from+shardsPerChild {
			to := min(from+shardsPerChild, plan.Shards)
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:    fmt.Sprintf("%s/shards%s-%d", workflow.GetInfo(ctx).WorkflowExecution.ID, suffix, chunk),
				StaticSummary: fmt.Sprintf("%s: shards %d-%d of %d", step.Name, from, to-1, plan.Shards),
			})
			var res ScoreShardsResult
			if err = workflow.ExecuteChildWorkflow(cctx, ScoreShardsWorkflow, ScoreShardsInput{Step: step, Staging: plan.Staging, From: from, To: to, Queue: plan.Queue}).Get(ctx, &res); err != nil {
				break
			}
			total.Shards += res.Shards
			total.Parts += res.Parts
			total.Skipped += res.Skipped
			total.Rows += res.Rows
		}
		if err != nil {
			if plan.Queue != "" && hostLost(err) && replan < maxReplans &&
				workflow.GetVersion(ctx, replanVersion, workflow.DefaultVersion, 1) == 1 {
				// The planning worker is gone (no worker polled its queue
				// for hostWait): plan again, on whichever worker of the
				// step's queue takes it. What the lost disk held is lost.
				workflow.GetLogger(ctx).Warn("the worker holding the score step's staging is gone: planning again", "step", step.Name, "queue", plan.Queue)
				continue
			}
			if ctx.Err() == nil && !hostLost(err) { // a cancelled run keeps its parts for a resume
				actx := small(step.Name+"-abort"+suffix, step.Name+": remove the partial output")
				_ = workflow.ExecuteActivity(actx, a.ScoreAbort, activities.ScoreAbortInput{Staging: plan.Staging}).Get(ctx, nil)
			}
			return activities.StepOutput{}, err
		}
		var out activities.StepOutput
		err = workflow.ExecuteActivity(small(step.Name+"-commit"+suffix, step.Name+": commit the output"), a.ScoreCommit,
			activities.ScoreCommitInput{Step: in, Staging: plan.Staging, Key: plan.Key}).Get(ctx, &out)
		return out, err
	}
}

// hostLost reports whether err says a shard was never picked up from its
// host queue within hostWait: the worker that planned it is gone.
func hostLost(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// ScoreShardsWorkflow scores shards [From, To) of a plan, each as one
// ScoreShard activity, at most the step's parallelism at once. The first
// failure stops new shards from starting; the running ones finish.
func ScoreShardsWorkflow(ctx workflow.Context, in ScoreShardsInput) (ScoreShardsResult, error) {
	step := in.Step
	parallel := defaultScoreParallelism
	if step.Score != nil && step.Score.Parallelism > 0 {
		parallel = step.Score.Parallelism
	}
	timeout := stepDefaults[pipelines.StepScore].timeout
	if step.Timeout > 0 {
		timeout = step.Timeout.D()
	}
	queue := step.Queue
	var scheduleToStart time.Duration
	if in.Queue != "" {
		queue, scheduleToStart = in.Queue, hostWait
	}
	var res ScoreShardsResult
	var firstErr error
	sel := workflow.NewSelector(ctx)
	running, next := 0, in.From
	for next < in.To || running > 0 {
		for running < parallel && next < in.To && firstErr == nil && ctx.Err() == nil {
			i := next
			next++
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				ActivityID:             fmt.Sprintf("%s-shard-%d", step.Name, i),
				Summary:                fmt.Sprintf("%s: shard %d", step.Name, i),
				TaskQueue:              queue,
				ScheduleToStartTimeout: scheduleToStart,
				StartToCloseTimeout:    timeout,
				HeartbeatTimeout:       shardHeartbeat,
				RetryPolicy: &temporal.RetryPolicy{
					MaximumAttempts:        int32(max(step.Retry.MaxAttempts, minShardAttempts)),
					InitialInterval:        max(step.Retry.Backoff.D(), time.Second),
					BackoffCoefficient:     2,
					MaximumInterval:        time.Minute,
					NonRetryableErrorTypes: []string{ErrTypeInvalidInput},
				},
				WaitForCancellation: true,
			})
			running++
			sel.AddFuture(workflow.ExecuteActivity(actx, a.ScoreShard, activities.ScoreShardInput{Step: step.Name, Staging: in.Staging, Shard: i}), func(f workflow.Future) {
				running--
				var r scorer.ShardResult
				if err := f.Get(ctx, &r); err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				res.Shards++
				res.Parts += r.Parts
				res.Skipped += r.Skipped
				res.Rows += r.Rows
			})
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	if firstErr != nil {
		return res, firstErr
	}
	if ctx.Err() != nil {
		return res, temporal.NewCanceledError()
	}
	return res, nil
}

// scoreStep runs a score step that is not a foreach item as a
// ScoreWorkflow child with ID <run>/<step>.
func scoreStep(ctx workflow.Context, step pipelines.Step, input activities.StepInput) workflow.Future {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    fmt.Sprintf("%s/%s", input.Run.WorkflowID, step.Name),
		StaticSummary: fmt.Sprintf("%s (score): batch scoring fan-out", step.Name),
	})
	return workflow.ExecuteChildWorkflow(cctx, ScoreWorkflow, input)
}
