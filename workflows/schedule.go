package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// ScheduledRunInput is the argument a Kiln schedule's action starts
// ScheduledRunWorkflow with (fixed when the schedule is created or updated).
type ScheduledRunInput struct {
	Schedule activities.ScheduleConfig `json:"schedule"`
	// Spec is the pipeline spec the runs execute (text, file, directory,
	// parameter overrides).
	Spec activities.ValidateInput `json:"spec"`
	// CreatedBy is who created (or last updated) the schedule.
	CreatedBy string `json:"created_by"`
	// Git is the spec's work tree when the schedule was created.
	Git *activities.GitInfo `json:"git,omitempty"`
	// Nominal overrides the nominal time read from the run's
	// TemporalScheduledStartTime (tests and hand-started runs).
	Nominal time.Time `json:"nominal,omitzero"`
}

// ScheduledRunResult is what a scheduled run did.
type ScheduledRunResult struct {
	// Run is the logical run the firing resolved to.
	Run activities.LogicalRun `json:"run"`
	// Skipped explains a firing that ran nothing.
	Skipped string `json:"skipped,omitempty"`
	// WorkflowID is the pipeline run's ID, pipeline/<name>/<run key>.
	WorkflowID string `json:"workflow_id,omitempty"`
	// Status is the pipeline run's final status.
	Status *RunStatus `json:"status,omitempty"`
}

// ErrTypeAlreadyRunning marks a scheduled run whose logical date is being
// run by another run right now.
const ErrTypeAlreadyRunning = "AlreadyRunning"

// ScheduledRunWorkflow is what a Kiln schedule starts at each firing
// (workflow ID schedule/<name>-<nominal time>, as Temporal names scheduled
// runs). It resolves the firing's logical date from its nominal time — never
// the wall clock — then runs the pipeline as the child
// pipeline/<pipeline>/<run key>: one workflow ID per logical date, so a date
// never runs twice at once, and re-running a date (backfill --reprocess)
// starts a new run of the same ID. The firing fails when the pipeline run
// fails, so the schedule's pause_on_failure applies.
func ScheduledRunWorkflow(ctx workflow.Context, in ScheduledRunInput) (ScheduledRunResult, error) {
	info := workflow.GetInfo(ctx)
	nominal := in.Nominal
	if nominal.IsZero() {
		if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(activities.AttrScheduledStartTime); ok {
			nominal = t
		} else {
			nominal = info.WorkflowStartTime
		}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          "resolve",
		Summary:             "resolve the logical date",
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
	})
	var res activities.ResolveScheduledRunOutput
	err := workflow.ExecuteActivity(actx, a.ResolveScheduledRun, activities.ResolveScheduledRunInput{
		Schedule: in.Schedule, Nominal: nominal, Started: info.WorkflowStartTime,
	}).Get(ctx, &res)
	if err != nil {
		return ScheduledRunResult{}, err
	}
	out := ScheduledRunResult{Run: res.Run}
	if res.Skip {
		workflow.GetLogger(ctx).Info("firing skipped", "reason", res.SkipReason)
		out.Skipped = res.SkipReason
		return out, nil
	}
	run := res.Run
	upsert(ctx, AttrLogicalDate.ValueSet(run.Key), AttrTrigger.ValueSet(run.Trigger))
	out.WorkflowID = activities.PipelineID(in.Schedule.Pipeline, run.Key)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            out.WorkflowID,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		StaticSummary:         fmt.Sprintf("%s %s (%s of schedule %s)", in.Schedule.Pipeline, run.Key, run.Trigger, in.Schedule.Name),
		Memo:                  map[string]any{"spec": in.Spec.SpecText, "spec_file": in.Spec.SpecFile, "params": in.Spec.Overrides, "schedule": in.Schedule.Name},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrPipeline.ValueSet(in.Schedule.Pipeline), AttrTrigger.ValueSet(run.Trigger),
			AttrSchedule.ValueSet(in.Schedule.Name), AttrLogicalDate.ValueSet(run.Key)),
	})
	pin := PipelineInput{
		Spec: in.Spec, CreatedBy: in.CreatedBy, TriggeredBy: run.Trigger, Git: in.Git, Logical: &run, NoCache: res.NoCache,
	}
	var status RunStatus
	err = workflow.ExecuteChildWorkflow(cctx, PipelineWorkflow, pin).Get(ctx, &status)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	switch {
	case errors.As(err, &started):
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s is already running: a logical date runs once at a time (this firing at %s was not run)",
				out.WorkflowID, nominal.UTC().Format(time.RFC3339)), ErrTypeAlreadyRunning, nil)
	case err != nil:
		return out, fmt.Errorf("%s failed: %w", out.WorkflowID, err)
	}
	out.Status = &status
	return out, nil
}

// DeadlineInput starts (or continues) a schedule's deadline watcher.
type DeadlineInput struct {
	Schedule activities.ScheduleConfig `json:"schedule"`
	// After is the nominal time of the last firing checked (zero: start
	// from the workflow's start).
	After time.Time `json:"after,omitzero"`
	// Checked counts the firings checked so far, across continue-as-new.
	Checked int `json:"checked"`
	// Alerts counts the missing-report alerts raised so far.
	Alerts int `json:"alerts"`
}

// DeadlineState is what the watcher's status query answers.
type DeadlineState struct {
	Schedule string `json:"schedule"`
	// Next is the firing being waited for, its run key and when its report
	// is due.
	Next    time.Time `json:"next,omitzero"`
	NextKey string    `json:"next_key,omitempty"`
	Due     time.Time `json:"due,omitzero"`
	Checked int       `json:"checked"`
	Alerts  int       `json:"alerts"`
	// Last is the outcome of the latest check.
	Last *activities.CheckDeadlineOutput `json:"last,omitempty"`
}

// deadlineChecksPerRun bounds the firings one DeadlineWorkflow run checks
// before it continues as new (a few events per firing).
const deadlineChecksPerRun = 200

// DeadlineWorkflow watches a schedule's deadline (deadline/<schedule>): for
// each firing of the schedule (by Kiln's firing rule, whether or not the
// schedule ran it), it sleeps on a durable timer until the nominal time plus
// the deadline, then checks that the firing's reports exist and raises a
// missing-report alert when one does not — also when the run failed, never
// started or the schedule was paused, since no run is needed to notice.
func DeadlineWorkflow(ctx workflow.Context, in DeadlineInput) (DeadlineState, error) {
	state := DeadlineState{Schedule: in.Schedule.Name, Checked: in.Checked, Alerts: in.Alerts}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (DeadlineState, error) { return state, nil }); err != nil {
		return state, err
	}
	after := in.After
	if after.IsZero() {
		after = workflow.Now(ctx)
	}
	small := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{ErrTypeInvalidInput},
		},
	})
	for i := 0; i < deadlineChecksPerRun; i++ {
		var next activities.NextDeadlineOutput
		if err := workflow.ExecuteActivity(small, a.NextDeadline, activities.NextDeadlineInput{Schedule: in.Schedule, After: after}).Get(ctx, &next); err != nil {
			return state, err
		}
		if next.None {
			return state, nil
		}
		state.Next, state.NextKey, state.Due = next.Nominal, next.RunKey, next.Due
		if wait := next.Due.Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return state, err
			}
		}
		var out activities.CheckDeadlineOutput
		cctx := workflow.WithActivityOptions(small, workflow.ActivityOptions{
			ActivityID:          "check-" + next.RunKey,
			Summary:             "check the report of " + next.RunKey,
			StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
				MaximumAttempts: 20, NonRetryableErrorTypes: []string{ErrTypeInvalidInput},
			},
		})
		if err := workflow.ExecuteActivity(cctx, a.CheckDeadline, activities.CheckDeadlineInput{
			Schedule: in.Schedule, Nominal: next.Nominal, RunKey: next.RunKey, Due: next.Due,
		}).Get(ctx, &out); err != nil {
			// A webhook that stays down must not stop the watcher: the
			// alert is recorded; go on to the next firing.
			workflow.GetLogger(ctx).Warn("deadline check failed", "run_key", next.RunKey, "error", err)
			out = activities.CheckDeadlineOutput{Delivery: "failed: " + errorMessage(err)}
		}
		state.Checked++
		if !out.Present && out.Alert != nil {
			state.Alerts++
		}
		state.Last = &out
		after = next.Nominal
	}
	return state, workflow.NewContinueAsNewError(ctx, DeadlineWorkflow, DeadlineInput{
		Schedule: in.Schedule, After: after, Checked: state.Checked, Alerts: state.Alerts,
	})
}
