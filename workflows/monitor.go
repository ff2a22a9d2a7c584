package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// checksPerRun bounds one monitor run's history; then it continues as new.
const checksPerRun = 200

// monitorHeartbeat is the heartbeat timeout of the monitor's activities.
const monitorHeartbeat = 20 * time.Second

// windowsVersion marks monitor runs that measure windows (drift with
// Evidently's tests, live metrics from late labels, serving health) and
// decide with internal/monitor; runs recorded before keep the PSI-only loop.
const windowsVersion = "monitor-windows"

// MonitorWorkflow watches one model (ID monitor/<model>). Every
// Config.Interval it measures the last Config.Window of served traffic
// (activities.MonitorWindow: drift of every feature and of the predictions,
// live metrics over the late labels that joined, the model servers'
// health), decides with the spec's rules (internal/monitor.Decide: a live
// metric beyond its threshold for K windows, or drift when labels are too
// few), records the window and the decision in the registry, and on a
// retrain decision signals retrain/<model> (starting it if needed) with the
// served rows whose labels joined as new training data. A "config" signal
// replaces the request (rules, spec to retrain with); the state is kept. The
// workflow continues as new every checksPerRun checks.
func MonitorWorkflow(ctx workflow.Context, req activities.MonitorRequest) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (activities.MonitorRequest, error) { return req, nil }); err != nil {
		return err
	}
	if workflow.GetVersion(ctx, windowsVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return monitorPSI(ctx, req)
	}
	logger := workflow.GetLogger(ctx)
	cfgCh := workflow.GetSignalChannel(ctx, activities.SignalMonitorConfig)
	// Monitor activities heartbeat every few seconds while they work: a
	// window whose worker died is retried within monitorHeartbeat.
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    monitorHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	for run := 0; run < checksPerRun; run++ {
		fired, err := waitInterval(ctx, &req, cfgCh)
		if err != nil {
			return err
		}
		if !fired {
			continue
		}
		now := workflow.Now(ctx)
		var out activities.MonitorWindowOutput
		in := activities.MonitorWindowInput{
			Model: req.Model, Alias: req.Alias, Config: req.Config, SpecDir: req.Retrain.SpecDir,
			End: now, Servers: req.Servers, Prev: req.State.Health, Accounted: req.State.LabelsAccounted,
		}
		if err := workflow.ExecuteActivity(withSummary(actx, "monitor window "+req.Model), a.MonitorWindow, in).Get(ctx, &out); err != nil {
			logger.Error("monitor window failed", "model", req.Model, "error", err)
			continue
		}
		req.State.Checks++
		req.State.Health, req.State.LabelsAccounted = out.Health, out.Accounted
		w := out.Window
		rules := activities.MonitorRules(req.Config)
		d := monitor.Decide(w, rules, &req.State.Judgement, now)
		var rec activities.RecordMonitorWindowOutput
		if err := workflow.ExecuteActivity(withSummary(actx, "record window "+req.Model), a.RecordMonitorWindow,
			activities.RecordMonitorWindowInput{Window: w, Decision: d}).Get(ctx, &rec); err != nil {
			logger.Error("recording the monitor window failed", "model", req.Model, "error", err)
		}
		req.State.LastWindow, req.State.LastDecision = &w, &rec.Decision
		if d.Action == monitor.ActionRetrain {
			req.State.LastRetrainAt = now
			req.State.Retrains++
			if err := startRetrain(ctx, actx, req, rec.Decision, d); err != nil {
				logger.Error("starting retrain failed", "model", req.Model, "error", err)
			}
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	drainConfig(ctx, &req, cfgCh)
	return workflow.NewContinueAsNewError(ctx, MonitorWorkflow, req)
}

// startRetrain prepares a retrain's new data (the served rows whose labels
// joined) and signals retrain/<model> with it and the decision.
func startRetrain(ctx, actx workflow.Context, req activities.MonitorRequest, rec registry.MonitorDecision, d monitor.Decision) error {
	since := pipelines.DefaultLabelWindow.D()
	if l := req.Config.Labels; l != nil && l.Window > 0 {
		since = l.Window.D()
	}
	var prep activities.PrepareRetrainOutput
	if err := workflow.ExecuteActivity(withSummary(actx, "retrain data "+req.Model), a.PrepareRetrain, activities.PrepareRetrainInput{
		Model: req.Model, Alias: req.Alias, End: workflow.Now(ctx), Since: since, Decision: rec,
	}).Get(ctx, &prep); err != nil {
		return err
	}
	kind := activities.TriggerDrift
	if d.Trigger == monitor.TriggerPerformance {
		kind = activities.TriggerPerformance
	}
	tin := activities.TriggerRetrainInput{
		Model: req.Model, Pipeline: req.Pipeline, Reason: d.Reason, Spec: req.Retrain,
		Kind: kind, Decision: rec.ID, Trigger: prep.Trigger,
	}
	if prep.Data != "" {
		tin.AppendData = []string{prep.Data}
	}
	var out activities.TriggerRetrainOutput
	return workflow.ExecuteActivity(withSummary(actx, "retrain "+req.Model), a.TriggerRetrain, tin).Get(ctx, &out)
}

// waitInterval waits one interval, applying config signals that arrive
// meanwhile (they restart the wait); it reports whether the interval ended.
func waitInterval(ctx workflow.Context, req *activities.MonitorRequest, cfgCh workflow.ReceiveChannel) (bool, error) {
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimerWithOptions(timerCtx, req.Config.Interval.D(), workflow.TimerOptions{Summary: "next monitor window"})
	fired := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(f workflow.Future) { fired = f.Get(ctx, nil) == nil })
	sel.AddReceive(cfgCh, func(c workflow.ReceiveChannel, _ bool) {
		var next activities.MonitorRequest
		c.Receive(ctx, &next)
		next.State = req.State
		*req = next
		workflow.GetLogger(ctx).Info("monitor reconfigured", "model", req.Model)
	})
	sel.Select(ctx)
	return fired, ctx.Err()
}

// drainConfig applies config signals that arrived, so none is lost across
// continue-as-new.
func drainConfig(ctx workflow.Context, req *activities.MonitorRequest, cfgCh workflow.ReceiveChannel) {
	for {
		var next activities.MonitorRequest
		if !cfgCh.ReceiveAsync(&next) {
			return
		}
		next.State = req.State
		*req = next
	}
}

// monitorPSI is the monitor of runs recorded before windowsVersion: PSI per
// feature against the training profile, a retrain on any drifted feature.
func monitorPSI(ctx workflow.Context, req activities.MonitorRequest) error {
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
