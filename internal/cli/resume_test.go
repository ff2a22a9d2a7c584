package cli_test

import (
	"reflect"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/workflows"
)

// TestResumeFrom checks which steps of an earlier run a resumed run may
// reuse: the completed ones (cached and reused included), with their keys.
func TestResumeFrom(t *testing.T) {
	ds := &activities.DatasetRef{URI: "file:///a/datasets/x.parquet", SHA256: "x"}
	st := workflows.RunStatus{WorkflowID: "pipeline/churn/r1", Status: workflows.StatusFailed, Steps: []workflows.StepStatus{
		{Name: "ingest", Status: workflows.StatusCompleted, CacheKey: "k1", Summary: "10 rows", Artifacts: activities.Artifacts{Dataset: ds}},
		{Name: "prep", Status: workflows.StatusCompleted, CacheKey: "k2", Cached: true},
		{Name: "train", Status: workflows.StatusCompleted, CacheKey: "k3", Reused: true},
		{Name: "evaluate", Status: workflows.StatusFailed, Error: "gate failed"},
		{Name: "gate", Status: workflows.StatusWaiting},
		{Name: "score", Status: workflows.StatusCanceled},
		{Name: "deploy", Status: workflows.StatusSkipped, SkipReason: "an earlier step failed"},
		{Name: "monitor", Status: workflows.StatusPending},
	}}
	got := cli.ResumeFrom("pipeline/churn/r1", st)
	want := workflows.ResumeFrom{WorkflowID: "pipeline/churn/r1", Steps: map[string]activities.StepOutput{
		"ingest": {CacheKey: "k1", Summary: "10 rows", Artifacts: activities.Artifacts{Dataset: ds}},
		"prep":   {CacheKey: "k2", Cached: true},
		"train":  {CacheKey: "k3", Reused: true},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ResumeFrom = %+v\nwant %+v", got, want)
	}
}

// TestResumeSpec checks that -p given with --resume replaces the earlier
// run's value of the same parameter and keeps the others.
func TestResumeSpec(t *testing.T) {
	prev := activities.ValidateInput{SpecText: "name: x", SpecFile: "pipelines/x.yaml", SpecDir: "/repo/pipelines", Overrides: map[string]string{"seed": "1", "l2": "0.1"}}
	tests := []struct {
		name      string
		prev      map[string]string
		overrides map[string]string
		want      map[string]string
	}{
		{name: "none given", prev: prev.Overrides, want: map[string]string{"seed": "1", "l2": "0.1"}},
		{name: "one replaced, one added", prev: prev.Overrides, overrides: map[string]string{"l2": "0.5", "epochs": "3"}, want: map[string]string{"seed": "1", "l2": "0.5", "epochs": "3"}},
		{name: "earlier run had none", overrides: map[string]string{"seed": "2"}, want: map[string]string{"seed": "2"}},
		{name: "neither", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := prev
			in.Overrides = tt.prev
			var before map[string]string
			if tt.prev != nil {
				before = map[string]string{}
				for k, v := range tt.prev {
					before[k] = v
				}
			}
			got := cli.ResumeSpec(in, tt.overrides)
			if !reflect.DeepEqual(got.Overrides, tt.want) {
				t.Errorf("overrides %v, want %v", got.Overrides, tt.want)
			}
			if got.SpecText != prev.SpecText || got.SpecFile != prev.SpecFile || got.SpecDir != prev.SpecDir {
				t.Errorf("spec %+v, want the earlier run's text, file and directory", got)
			}
			if !reflect.DeepEqual(in.Overrides, before) {
				t.Errorf("the earlier run's overrides changed to %v", in.Overrides)
			}
		})
	}
}

// TestStartInput decodes a pipeline run's start input from its first
// history event, as kiln run --resume does without a SPEC.
func TestStartInput(t *testing.T) {
	in := workflows.PipelineInput{
		Spec:      activities.ValidateInput{SpecText: "apiVersion: kiln/v1", SpecFile: "pipelines/churn.yaml", SpecDir: "/repo/pipelines", Overrides: map[string]string{"seed": "7"}},
		CreatedBy: "ana", TriggeredBy: "cli", NoCache: true,
	}
	payloads := func(v any) *commonpb.Payloads {
		p, err := converter.GetDefaultDataConverter().ToPayloads(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	started := func(wfType string, input *commonpb.Payloads) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{
			EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: wfType}, Input: input,
			}},
		}
	}
	noText := in
	noText.Spec.SpecText = ""
	tests := []struct {
		name string
		ev   *historypb.HistoryEvent
		err  string
	}{
		{name: "pipeline run", ev: started(activities.WorkflowPipeline, payloads(in))},
		{name: "not a pipeline run", ev: started(activities.WorkflowCanary, payloads(in)), err: "CanaryWorkflow, not a pipeline run"},
		{name: "no input", ev: started(activities.WorkflowPipeline, nil), err: "holds no input"},
		{name: "no spec text", ev: started(activities.WorkflowPipeline, payloads(noText)), err: "pass the SPEC"},
		{name: "not a start event", ev: &historypb.HistoryEvent{EventType: enums.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED}, err: "not its start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cli.StartInput(tt.ev)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, in) {
				t.Errorf("StartInput = %+v, %v; want %+v", got, err, in)
			}
		})
	}
}
