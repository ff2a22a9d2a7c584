package workflows

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
)

func TestMonitorRetrainsOncePerCooldown(t *testing.T) {
	tests := []struct {
		name     string
		cooldown time.Duration
		want     int64
	}{
		// checksPerRun checks of one minute each fit in one cooldown of a day: one retrain.
		{"long cooldown", 24 * time.Hour, 1},
		// A 50-minute cooldown lets a retrain through every 50 checks.
		{"short cooldown", 50 * time.Minute, (checksPerRun + 49) / 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(MonitorWorkflow, workflow.RegisterOptions{Name: activities.WorkflowMonitor})
			env.RegisterActivity(&activities.Activities{})
			env.OnActivity(a.CheckDrift, mock.Anything, mock.Anything).Return(activities.DriftOutput{
				Version: 1, Rows: 500, Drifted: true, MaxPSI: 0.9,
				Features: []activities.FeatureDrift{{Feature: "x", PSI: 0.9, Rows: 500, Drifted: true}},
			}, nil)
			var retrains atomic.Int64
			env.OnActivity(a.TriggerRetrain, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TriggerRetrainInput) (activities.TriggerRetrainOutput, error) {
				retrains.Add(1)
				if in.Model != "m" || in.Spec.SpecText != "spec" {
					t.Errorf("retrain input %+v", in)
				}
				return activities.TriggerRetrainOutput{WorkflowID: RetrainID(in.Model)}, nil
			})
			req := activities.MonitorRequest{
				Model: "m", Alias: "production", Pipeline: "p", Retrain: activities.ValidateInput{SpecText: "spec"},
				Config: pipelines.MonitorConfig{Interval: pipelines.Duration(time.Minute), PSIThreshold: 0.2, MinRows: 100,
					Window: pipelines.Duration(10 * time.Minute), Cooldown: pipelines.Duration(tt.cooldown)},
			}
			env.ExecuteWorkflow(MonitorWorkflow, req)
			if !env.IsWorkflowCompleted() {
				t.Fatal("monitor did not reach continue-as-new")
			}
			if err := env.GetWorkflowError(); !isContinueAsNew(err) {
				t.Fatalf("monitor ended with %v, want continue-as-new", err)
			}
			if got := retrains.Load(); got != tt.want {
				t.Errorf("%d retrains, want %d", got, tt.want)
			}
		})
	}
}

func TestMonitorWithoutDriftNeverRetrains(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MonitorWorkflow, workflow.RegisterOptions{Name: activities.WorkflowMonitor})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.CheckDrift, mock.Anything, mock.Anything).Return(activities.DriftOutput{Version: 1, Rows: 500, MaxPSI: 0.01}, nil)
	env.ExecuteWorkflow(MonitorWorkflow, activities.MonitorRequest{Model: "m", Alias: "production",
		Config: pipelines.MonitorConfig{Interval: pipelines.Duration(time.Minute), Cooldown: pipelines.Duration(time.Hour)}})
	if err := env.GetWorkflowError(); !isContinueAsNew(err) {
		t.Fatalf("monitor ended with %v", err)
	}
}

func isContinueAsNew(err error) bool {
	return err != nil && workflow.IsContinueAsNewError(err)
}
