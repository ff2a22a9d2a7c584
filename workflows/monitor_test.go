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
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// monitorEnv is a test environment whose MonitorWindow returns windows
// from next, recording each window and decision, and counting retrains.
type monitorEnv struct {
	env       *testsuite.TestWorkflowEnvironment
	recorded  atomic.Int64
	retrains  atomic.Int64
	decisions []monitor.Decision
	appended  []string
}

func newMonitorEnv(t *testing.T, next func(n int) monitor.Window) *monitorEnv {
	var s testsuite.WorkflowTestSuite
	m := &monitorEnv{env: s.NewTestWorkflowEnvironment()}
	env := m.env
	env.RegisterWorkflowWithOptions(MonitorWorkflow, workflow.RegisterOptions{Name: activities.WorkflowMonitor})
	env.RegisterActivity(&activities.Activities{})
	var n atomic.Int64
	env.OnActivity(a.MonitorWindow, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.MonitorWindowInput) (activities.MonitorWindowOutput, error) {
		w := next(int(n.Add(1)))
		w.Model, w.End = in.Model, in.End
		return activities.MonitorWindowOutput{Window: w}, nil
	})
	env.OnActivity(a.RecordMonitorWindow, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RecordMonitorWindowInput) (activities.RecordMonitorWindowOutput, error) {
		id := m.recorded.Add(1)
		m.decisions = append(m.decisions, in.Decision)
		return activities.RecordMonitorWindowOutput{Decision: registry.MonitorDecision{ID: id, Model: in.Window.Model, Action: in.Decision.Action, Reason: in.Decision.Reason}}, nil
	})
	env.OnActivity(a.PrepareRetrain, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PrepareRetrainInput) (activities.PrepareRetrainOutput, error) {
		return activities.PrepareRetrainOutput{Data: "file:///new-rows.parquet", Rows: 900, Trigger: "monitor decision test"}, nil
	})
	env.OnActivity(a.TriggerRetrain, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TriggerRetrainInput) (activities.TriggerRetrainOutput, error) {
		m.retrains.Add(1)
		if in.Model != "m" || in.Spec.SpecText != "spec" || in.Decision == 0 || in.Trigger == "" {
			t.Errorf("retrain input %+v", in)
		}
		m.appended = append(m.appended, in.AppendData...)
		return activities.TriggerRetrainOutput{WorkflowID: RetrainID(in.Model)}, nil
	})
	return m
}

func monitorRequest(cooldown time.Duration, metric *pipelines.MonitorMetric) activities.MonitorRequest {
	return activities.MonitorRequest{
		Model: "m", Alias: "production", Pipeline: "p", Retrain: activities.ValidateInput{SpecText: "spec"},
		Config: pipelines.MonitorConfig{Interval: pipelines.Duration(time.Minute), MinRows: 100, MinLabels: 500, DriftShare: 0.5,
			Window: pipelines.Duration(10 * time.Minute), Cooldown: pipelines.Duration(cooldown), Metric: metric},
	}
}

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
			m := newMonitorEnv(t, func(int) monitor.Window {
				return monitor.Window{Rows: 500, Features: 2, DriftShare: 1, Drift: []monitor.FeatureDrift{{Name: "x", Drifted: true}, {Name: "y", Drifted: true}}}
			})
			m.env.ExecuteWorkflow(MonitorWorkflow, monitorRequest(tt.cooldown, nil))
			if err := m.env.GetWorkflowError(); !isContinueAsNew(err) {
				t.Fatalf("monitor ended with %v, want continue-as-new", err)
			}
			if got := m.retrains.Load(); got != tt.want {
				t.Errorf("%d retrains, want %d", got, tt.want)
			}
			if got := m.recorded.Load(); got != checksPerRun {
				t.Errorf("%d windows recorded, want one per check (%d)", got, checksPerRun)
			}
		})
	}
}

func TestMonitorWithoutDriftNeverRetrains(t *testing.T) {
	m := newMonitorEnv(t, func(int) monitor.Window {
		return monitor.Window{Rows: 500, Features: 8, DriftShare: 0.125, Drift: []monitor.FeatureDrift{{Name: "x", Drifted: true}}}
	})
	m.env.ExecuteWorkflow(MonitorWorkflow, monitorRequest(time.Hour, nil))
	if err := m.env.GetWorkflowError(); !isContinueAsNew(err) {
		t.Fatalf("monitor ended with %v", err)
	}
	if n := m.retrains.Load(); n != 0 {
		t.Errorf("%d retrains on one drifted feature of eight", n)
	}
}

// TestMonitorRetrainsAfterKBadWindows: good windows, then the live metric
// below its threshold: exactly one retrain, after the third bad window, with
// the joined rows as its new data.
func TestMonitorRetrainsAfterKBadWindows(t *testing.T) {
	m := newMonitorEnv(t, func(n int) monitor.Window {
		auc := 0.85
		if n > 5 {
			auc = 0.66
		}
		return monitor.Window{Rows: 1000, Labeled: 800, Features: 8, Metrics: map[string]float64{"auc": auc}}
	})
	m.env.ExecuteWorkflow(MonitorWorkflow, monitorRequest(24*time.Hour, &pipelines.MonitorMetric{Name: "auc", Threshold: 0.75, Windows: 3}))
	if err := m.env.GetWorkflowError(); !isContinueAsNew(err) {
		t.Fatalf("monitor ended with %v", err)
	}
	if n := m.retrains.Load(); n != 1 {
		t.Fatalf("%d retrains, want 1", n)
	}
	for i, d := range m.decisions[:9] {
		want := monitor.ActionNone
		if i == 7 { // windows 6, 7, 8 are bad; the decision after the 8th retrains
			want = monitor.ActionRetrain
		}
		if d.Action != want {
			t.Errorf("decision %d: %s (%s), want %s", i+1, d.Action, d.Reason, want)
		}
	}
	if len(m.appended) != 1 || m.appended[0] != "file:///new-rows.parquet" {
		t.Errorf("retrain data %v", m.appended)
	}
}

func isContinueAsNew(err error) bool {
	return err != nil && workflow.IsContinueAsNewError(err)
}
