package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
)

// startStep starts one step and returns a future of its activities.StepOutput.
func startStep(ctx workflow.Context, in PipelineInput, step pipelines.Step, input activities.StepInput, ap *approvals) workflow.Future {
	summary := fmt.Sprintf("%s (%s)", step.Name, step.Uses)
	switch {
	case step.Uses == pipelines.StepDeploy:
		return deployStep(ctx, input, summary)
	case step.Uses == pipelines.StepApproval:
		return ap.wait(ctx, step)
	case step.Foreach != nil:
		return foreachStep(ctx, step, input)
	case step.Uses == pipelines.StepScore && step.Score != nil && step.Score.RowGroups == "" &&
		workflow.GetVersion(ctx, fanoutVersion, workflow.DefaultVersion, 1) == 1:
		// Whole inputs fan out into shards; a row_groups selection (a
		// file output) and runs recorded before stay one activity.
		return scoreStep(ctx, step, input)
	case step.Uses == pipelines.StepMonitor:
		return monitorStep(activityContext(ctx, step, step.Name, summary), in, input)
	}
	fn, err := stepActivity(step.Uses)
	if err != nil {
		f, set := workflow.NewFuture(ctx)
		set.Set(nil, err)
		return f
	}
	return workflow.ExecuteActivity(activityContext(ctx, step, step.Name, summary), fn, input)
}

// stepActivity is the activity that runs a step type.
func stepActivity(t pipelines.StepType) (any, error) {
	switch t {
	case pipelines.StepIngest:
		return a.Ingest, nil
	case pipelines.StepPreprocess:
		return a.Preprocess, nil
	case pipelines.StepTrain:
		return a.Train, nil
	case pipelines.StepEvaluate:
		return a.Evaluate, nil
	case pipelines.StepRegister:
		return a.Register, nil
	case pipelines.StepScore:
		return a.Score, nil
	case pipelines.StepNoop:
		return a.Noop, nil
	case pipelines.StepReport:
		return a.Report, nil
	}
	return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("step type %q is not supported by this worker", t), ErrTypeInvalidInput, nil)
}

// activityContext sets the activity options of a step: its timeouts, its
// retry policy, and the ID and summary that name it in the Temporal UI.
func activityContext(ctx workflow.Context, step pipelines.Step, id, summary string) workflow.Context {
	d := stepDefaults[step.Uses]
	timeout := d.timeout
	if step.Uses == pipelines.StepTrain {
		// The container's own limit, plus room to stage inputs and publish
		// the bundle, so the container's clearer timeout error comes first.
		ctr := pipelines.DefaultContainer()
		if step.Container != nil && step.Container.Timeout > 0 {
			ctr = *step.Container
		}
		timeout = ctr.Timeout.D() + 5*time.Minute
	}
	if step.Timeout > 0 {
		timeout = step.Timeout.D()
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          id,
		Summary:             summary,
		TaskQueue:           step.Queue,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    d.heartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumAttempts:        int32(max(step.Retry.MaxAttempts, 1)),
			InitialInterval:        max(step.Retry.Backoff.D(), time.Second),
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{ErrTypeInvalidInput, ErrTypeGateFailed},
		},
		WaitForCancellation: true,
	})
}
