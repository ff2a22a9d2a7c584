package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// checksPerRun bounds one monitor run's history; then it continues as new.
const checksPerRun = 200

// MonitorWorkflow watches one model (ID monitor/<model>). Every
// Config.Interval it compares the requests served in the last Config.Window
// with the training profile of the model's alias (PSI per feature). When a
// feature drifts and Config.Retrain is on, it signals retrain/<model> (starting
// it if needed), at most once per Config.Cooldown. A "config" signal replaces
// the request (thresholds, spec to retrain with); the state is kept. The
// workflow continues as new every checksPerRun checks.
func MonitorWorkflow(ctx workflow.Context, req activities.MonitorRequest) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (activities.MonitorRequest, error) { return req, nil }); err != nil {
		return err
	}
	logger := workflow.GetLogger(ctx)
	cfgCh := workflow.GetSignalChannel(ctx, activities.SignalMonitorConfig)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	for run := 0; run < checksPerRun; run++ {
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimerWithOptions(timerCtx, req.Config.Interval.D(), workflow.TimerOptions{Summary: "next drift check"})
		fired := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(f workflow.Future) { fired = f.Get(ctx, nil) == nil })
		sel.AddReceive(cfgCh, func(c workflow.ReceiveChannel, _ bool) {
			var next activities.MonitorRequest
			c.Receive(ctx, &next)
			next.State = req.State
			req = next
			cancelTimer()
			logger.Info("monitor reconfigured", "model", req.Model)
		})
		sel.Select(ctx)
		cancelTimer() // a no-op once fired; frees the timer after a config signal
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !fired {
			continue
		}
		var rep activities.DriftOutput
		in := activities.DriftInput{
			Model: req.Model, Alias: req.Alias, Window: req.Config.Window.D(),
			PSIThreshold: req.Config.PSIThreshold, MinRows: req.Config.MinRows,
		}
		if err := workflow.ExecuteActivity(withSummary(actx, "drift check "+req.Model), a.CheckDrift, in).Get(ctx, &rep); err != nil {
			logger.Error("drift check failed", "model", req.Model, "error", err)
			continue
		}
		req.State.Checks++
		req.State.LastReport = &rep
		if rep.Drifted && retrainEnabled(req) {
			now := workflow.Now(ctx)
			if cooled(req, now) {
				reason := driftReason(rep)
				tin := activities.TriggerRetrainInput{Model: req.Model, Pipeline: req.Pipeline, Reason: reason, Spec: req.Retrain}
				var out activities.TriggerRetrainOutput
				if err := workflow.ExecuteActivity(withSummary(actx, "retrain "+req.Model), a.TriggerRetrain, tin).Get(ctx, &out); err != nil {
					logger.Error("starting retrain failed", "model", req.Model, "error", err)
					continue
				}
				req.State.LastRetrainAt = now
				req.State.Retrains++
			} else {
				logger.Info("drift seen during cooldown", "model", req.Model, "last_retrain", req.State.LastRetrainAt)
			}
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	// Take any config signal that arrived so it is not lost across the new run.
	for {
		var next activities.MonitorRequest
		if !cfgCh.ReceiveAsync(&next) {
			break
		}
		next.State = req.State
		req = next
	}
	return workflow.NewContinueAsNewError(ctx, MonitorWorkflow, req)
}

func retrainEnabled(req activities.MonitorRequest) bool {
	return req.Config.Retrain == nil || *req.Config.Retrain
}

func cooled(req activities.MonitorRequest, now time.Time) bool {
	return req.State.LastRetrainAt.IsZero() || now.Sub(req.State.LastRetrainAt) >= req.Config.Cooldown.D()
}

func driftReason(rep activities.DriftOutput) string {
	var names []string
	for _, f := range rep.Features {
		if f.Drifted {
			names = append(names, fmt.Sprintf("%s (PSI %.3f)", f.Feature, f.PSI))
		}
	}
	return fmt.Sprintf("drift in %d served rows of v%d: %v", rep.Rows, rep.Version, names)
}
