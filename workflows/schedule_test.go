package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
)

var testSchedule = activities.ScheduleConfig{
	Name: "nightly", Pipeline: "nightly", Cron: "30 2 * * *", Timezone: "Europe/Paris",
	Deadline: 6 * time.Hour, ReportSteps: []string{"report"},
}

// TestScheduledRunUsesTheNominalTime checks the launcher: the logical run
// comes from the nominal time (never the wall clock), the pipeline runs as
// the child pipeline/<name>/<run key> with that logical run, and a skipped
// firing runs nothing.
func TestScheduledRunUsesTheNominalTime(t *testing.T) {
	nominal := time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC)
	run := activities.LogicalRun{Key: "2026-12-02", LogicalDate: "2026-12-02", Nominal: nominal, Trigger: activities.TriggerBackfill, Schedule: "nightly"}
	tests := []struct {
		name     string
		resolved activities.ResolveScheduledRunOutput
		childErr error
		wantErr  string
		wantRun  bool
	}{
		{name: "runs the date", resolved: activities.ResolveScheduledRunOutput{Run: run, NoCache: true}, wantRun: true},
		{name: "skipped firing", resolved: activities.ResolveScheduledRunOutput{Skip: true, SkipReason: "second occurrence"}},
		{name: "failed run fails the firing", resolved: activities.ResolveScheduledRunOutput{Run: run},
			childErr: temporal.NewNonRetryableApplicationError("boom", "x", nil), wantErr: "pipeline/nightly/2026-12-02 failed", wantRun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) // a wall clock far from the nominal time
			env.RegisterWorkflowWithOptions(ScheduledRunWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScheduledRun})
			env.RegisterWorkflowWithOptions(PipelineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPipeline})
			env.RegisterActivity(&activities.Activities{})
			env.OnActivity(a.ResolveScheduledRun, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.ResolveScheduledRunInput) (activities.ResolveScheduledRunOutput, error) {
					if !in.Nominal.Equal(nominal) || in.Schedule.Name != "nightly" {
						t.Errorf("resolve input %+v", in)
					}
					return tt.resolved, nil
				})
			var mu sync.Mutex
			var child *PipelineInput
			var childID string
			env.OnWorkflow(PipelineWorkflow, mock.Anything, mock.Anything).Return(
				func(ctx workflow.Context, in PipelineInput) (RunStatus, error) {
					mu.Lock()
					child, childID = &in, workflow.GetInfo(ctx).WorkflowExecution.ID
					mu.Unlock()
					return RunStatus{Status: StatusCompleted, LogicalDate: in.Logical.Key}, tt.childErr
				})
			env.ExecuteWorkflow(ScheduledRunWorkflow, ScheduledRunInput{Schedule: testSchedule, Nominal: nominal,
				Spec: activities.ValidateInput{SpecText: "spec"}})
			err := env.GetWorkflowError()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if (child != nil) != tt.wantRun {
				t.Fatalf("pipeline started: %v, want %v", child != nil, tt.wantRun)
			}
			if !tt.wantRun {
				var res ScheduledRunResult
				if err := env.GetWorkflowResult(&res); err != nil || res.Skipped != "second occurrence" {
					t.Errorf("result %+v, %v", res, err)
				}
				return
			}
			if childID != "pipeline/nightly/2026-12-02" {
				t.Errorf("child ID %q", childID)
			}
			if child.Logical == nil || child.Logical.Key != "2026-12-02" || child.TriggeredBy != activities.TriggerBackfill || child.Spec.SpecText != "spec" {
				t.Errorf("child input %+v", child)
			}
			if child.NoCache != tt.resolved.NoCache {
				t.Errorf("NoCache = %v, want %v", child.NoCache, tt.resolved.NoCache)
			}
		})
	}
}

// TestDeadlineWatcher runs the watcher over firings whose reports are
// present, missing, or whose check fails: it checks each firing at its
// nominal time plus the deadline, counts the alerts, survives a failing
// check and continues as new after deadlineChecksPerRun firings.
func TestDeadlineWatcher(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	env.RegisterWorkflowWithOptions(DeadlineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowDeadline})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.NextDeadline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NextDeadlineInput) (activities.NextDeadlineOutput, error) {
			next := in.After.Truncate(24 * time.Hour).Add(24*time.Hour + 90*time.Minute)
			return activities.NextDeadlineOutput{Nominal: next, RunKey: next.AddDate(0, 0, -1).Format(time.DateOnly), Due: next.Add(in.Schedule.Deadline)}, nil
		})
	var mu sync.Mutex
	checked := map[string]time.Time{}
	env.OnActivity(a.CheckDeadline, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.CheckDeadlineInput) (activities.CheckDeadlineOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			checked[in.RunKey] = in.Due
			switch day := len(checked); {
			case day%3 == 0:
				return activities.CheckDeadlineOutput{Present: true}, nil
			case day == 5:
				return activities.CheckDeadlineOutput{}, temporal.NewNonRetryableApplicationError("webhook down", ErrTypeInvalidInput, nil)
			}
			return activities.CheckDeadlineOutput{Missing: []string{"report"}, Alert: &registry.Alert{RunKey: in.RunKey}}, nil
		})
	env.ExecuteWorkflow(DeadlineWorkflow, DeadlineInput{Schedule: testSchedule})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("watcher ended with %v, want continue-as-new", err)
	}
	if len(checked) != deadlineChecksPerRun {
		t.Fatalf("%d firings checked, want %d", len(checked), deadlineChecksPerRun)
	}
	first := start.Truncate(24 * time.Hour).Add(24*time.Hour + 90*time.Minute)
	if due := checked[first.AddDate(0, 0, -1).Format(time.DateOnly)]; !due.Equal(first.Add(6 * time.Hour)) {
		t.Errorf("first firing due %s, want %s", due, first.Add(6*time.Hour))
	}
}
