package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// RetrainResult is what a retrain produced.
type RetrainResult struct {
	Pipeline string    `json:"pipeline"`
	Reason   string    `json:"reason"`
	Run      RunStatus `json:"run"`
	// Signals counts the drift signals received while the retrain ran.
	Signals int `json:"signals"`
}

// RetrainWorkflow (ID retrain/<model>) runs the model's pipeline again as a
// child pipeline/<name>/retrain-<time>. It is started by signal-with-start, so
// drift signals that arrive while it runs join this run instead of starting
// another.
func RetrainWorkflow(ctx workflow.Context, in activities.TriggerRetrainInput) (RetrainResult, error) {
	res := RetrainResult{Pipeline: in.Pipeline, Reason: in.Reason}
	drift := workflow.GetSignalChannel(ctx, activities.SignalDrift)
	drain := func() {
		for drift.ReceiveAsync(nil) {
			res.Signals++
		}
	}
	drain()
	runID := "retrain-" + workflow.Now(ctx).UTC().Format("20060102-150405")
	kind := in.Kind
	if kind == "" {
		kind = activities.TriggerDrift
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            PipelineID(in.Pipeline, runID),
		StaticSummary:         fmt.Sprintf("retrain %s: %s", in.Model, in.Reason),
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrPipeline.ValueSet(in.Pipeline), AttrTrigger.ValueSet(kind)),
	})
	err := workflow.ExecuteChildWorkflow(cctx, PipelineWorkflow, PipelineInput{
		Spec: in.Spec, CreatedBy: "kiln-monitor", TriggeredBy: kind, AppendData: in.AppendData, Trigger: in.Trigger,
	}).Get(ctx, &res.Run)
	drain()
	return res, err
}
