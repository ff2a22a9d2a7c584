package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
)

// itemsPerChild is how many foreach items one ForeachWorkflow runs. It keeps
// every history far below Temporal's limits: a child's history grows by a
// few events per item, and the pipeline's by a few per child, so 10,000
// items are 20 children of about 3,000 events each.
const itemsPerChild = 500

// ForeachInput is one chunk of a foreach step's items.
type ForeachInput struct {
	// Template is the step's input; each item gets a copy with the item set
	// and ${item} substituted.
	Template activities.StepInput `json:"template"`
	Items    []activities.Item    `json:"items"`
	// Chunk numbers this chunk within the step (for its results file).
	Chunk int `json:"chunk"`
}

// ForeachResult is a chunk's outcome; the items' outputs are in ResultsURI.
type ForeachResult struct {
	ResultsURI string   `json:"results_uri"`
	Succeeded  int      `json:"succeeded"`
	Failed     int      `json:"failed"`
	Cached     int      `json:"cached"`
	Errors     []string `json:"errors,omitempty"`
}

// maxErrors bounds the item errors a chunk reports (all are in its results file).
const maxErrors = 5

// ForeachWorkflow runs one chunk of a foreach step: each item as its own
// activity, at most Template.Step.Foreach.Parallelism at once. Unless
// continue_on_error is set, the first failure stops new items from starting.
// The items' outputs are written to an artifact, and only counts return.
func ForeachWorkflow(ctx workflow.Context, in ForeachInput) (ForeachResult, error) {
	step := in.Template.Step
	fe := step.Foreach
	fn, err := stepActivity(step.Uses)
	if err != nil {
		return ForeachResult{}, err
	}
	parallel := max(fe.Parallelism, 1)
	results := make([]activities.ItemResult, len(in.Items))
	var res ForeachResult
	sel := workflow.NewSelector(ctx)
	running, next := 0, 0
	stop := false
	for next < len(in.Items) || running > 0 {
		for running < parallel && next < len(in.Items) && !stop && ctx.Err() == nil {
			i := next
			next++
			item := in.Items[i]
			results[i].Item = item
			input := in.Template
			input.Item = &item
			resolved, err := resolveStep(step, nil, &item, in.Template.Run.Logical)
			if err != nil {
				results[i].Error = err.Error()
				res.Failed++
				stop = stop || !fe.ContinueOnError
				continue
			}
			input.Step = resolved
			id := fmt.Sprintf("%s[%d]", step.Name, item.Index)
			actx := activityContext(ctx, resolved, id, fmt.Sprintf("%s (%s) item %d: %s", step.Name, step.Uses, item.Index, item.Value))
			running++
			sel.AddFuture(workflow.ExecuteActivity(actx, fn, input), func(f workflow.Future) {
				running--
				var out activities.StepOutput
				if err := f.Get(ctx, &out); err != nil {
					results[i].Error = errorMessage(err)
					res.Failed++
					stop = stop || !fe.ContinueOnError
					return
				}
				results[i].Output = &out
				res.Succeeded++
				if out.Cached || out.Reused {
					res.Cached++
				}
			})
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	for _, r := range results {
		if r.Error != "" && len(res.Errors) < maxErrors {
			res.Errors = append(res.Errors, fmt.Sprintf("item %d (%s): %s", r.Item.Index, r.Item.Value, r.Error))
		}
	}
	if ctx.Err() != nil {
		return res, temporal.NewCanceledError()
	}
	// Items never started (after a failure) are left out of the results.
	done := results[:0]
	for _, r := range results {
		if r.Output != nil || r.Error != "" {
			done = append(done, r)
		}
	}
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          fmt.Sprintf("%s-results-%d", step.Name, in.Chunk),
		Summary:             fmt.Sprintf("%s: results of items %d-%d", step.Name, in.Items[0].Index, in.Items[len(in.Items)-1].Index),
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var w activities.WriteItemResultsOutput
	if err := workflow.ExecuteActivity(wctx, a.WriteItemResults, activities.WriteItemResultsInput{
		Run: in.Template.Run, Step: step.Name, Chunk: in.Chunk, Results: done,
	}).Get(ctx, &w); err != nil {
		return res, err
	}
	res.ResultsURI = w.URI
	return res, nil
}

// foreachStep runs a foreach step: it lists the items (from the spec, or
// with the ExpandForeach activity for files and row groups), then runs them
// in chunks of itemsPerChild, one child workflow at a time, so that at most
// `parallelism` items run at once and no history grows large.
func foreachStep(ctx workflow.Context, step pipelines.Step, input activities.StepInput) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	fe := step.Foreach
	workflow.Go(ctx, func(ctx workflow.Context) {
		values := fe.Items
		if len(values) == 0 && (fe.Files != "" || fe.RowGroups) {
			ectx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				ActivityID:          step.Name + "-items",
				Summary:             step.Name + ": list foreach items",
				StartToCloseTimeout: 5 * time.Minute,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
			})
			var out activities.ExpandForeachOutput
			if err := workflow.ExecuteActivity(ectx, a.ExpandForeach, activities.ExpandForeachInput{
				Run: input.Run, Step: step.Name, Foreach: *fe, Inputs: input.Inputs,
			}).Get(ctx, &out); err != nil {
				set.Set(nil, err)
				return
			}
			values = out.Items
		}
		// The items travel once, in chunks; the step each item runs with
		// must not carry the whole list (with thousands of items, every
		// activity's input would, and a workflow task would outgrow gRPC's
		// message limit).
		tmpl := input
		lean := *fe
		lean.Items, lean.Files = nil, ""
		tmpl.Step.Foreach = &lean
		ref := &activities.ForeachRef{Items: len(values)}
		var errs []string
		for chunk, start := 0, 0; start < len(values); chunk, start = chunk+1, start+itemsPerChild {
			end := min(start+itemsPerChild, len(values))
			items := make([]activities.Item, 0, end-start)
			for i := start; i < end; i++ {
				items = append(items, activities.Item{Index: i, Value: values[i]})
			}
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:    fmt.Sprintf("%s/%s/%d", input.Run.WorkflowID, step.Name, chunk),
				StaticSummary: fmt.Sprintf("%s (%s): items %d-%d of %d", step.Name, step.Uses, start, end-1, len(values)),
			})
			var res ForeachResult
			// A chunk reports failed items in its result; an error means the
			// chunk itself broke (or was cancelled).
			if err := workflow.ExecuteChildWorkflow(cctx, ForeachWorkflow, ForeachInput{Template: tmpl, Items: items, Chunk: chunk}).Get(ctx, &res); err != nil {
				set.Set(nil, err)
				return
			}
			ref.Succeeded += res.Succeeded
			ref.Failed += res.Failed
			ref.Cached += res.Cached
			if res.ResultsURI != "" {
				ref.ResultsURIs = append(ref.ResultsURIs, res.ResultsURI)
			}
			errs = append(errs, res.Errors...)
			if res.Failed > 0 && !fe.ContinueOnError {
				break
			}
		}
		out := activities.StepOutput{
			Artifacts: activities.Artifacts{Foreach: ref},
			Summary:   fmt.Sprintf("%d items: %d succeeded, %d failed, %d cached", ref.Items, ref.Succeeded, ref.Failed, ref.Cached),
		}
		if ref.Failed > 0 {
			if len(errs) > maxErrors {
				errs = errs[:maxErrors]
			}
			set.Set(nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%d of %d items failed: %s", ref.Failed, ref.Items, strings.Join(errs, "; ")), "ItemsFailed", nil, out))
			return
		}
		set.Set(out, nil)
	})
	return f
}
