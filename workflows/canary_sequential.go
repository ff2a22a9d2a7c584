package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/canary"
	"github.com/kiln-ml/kiln/pipelines"
)

// sequentialCanaryVersion marks rollouts judged by internal/canary's
// sequential analysis; histories recorded before it replay the per-step
// z-test (zTestRollout).
const sequentialCanaryVersion = "sequential-canary"

// Canary decisions a person can send to a paused rollout (kiln approve).
const (
	canaryWaitPaused   = "paused"
	canaryWaitApproval = "approval"
)

// canaryGate is a rollout's wait for a person: a pause (no data, or no
// verdict for too long) or require_approval before promotion.
type canaryGate struct {
	step     string
	waiting  string // "", canaryWaitPaused or canaryWaitApproval
	decision *activities.ApprovalRef
}

// register installs the approve Update on the canary workflow: the same
// Update, input and rules as an approval step (kiln approve canary/<model>
// STEP), accepted only while the rollout waits.
func (g *canaryGate) register(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove,
		func(ctx workflow.Context, in ApproveInput) (activities.ApprovalRef, error) {
			ref := &activities.ApprovalRef{Approved: in.Approve, By: in.Actor, Reason: in.Reason, At: workflow.Now(ctx), Decision: "rejected"}
			if in.Approve {
				ref.Decision = "approved"
			}
			g.decision = ref
			return *ref, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, in ApproveInput) error {
			switch {
			case in.Step != g.step:
				return fmt.Errorf("this canary belongs to step %q, not %q", g.step, in.Step)
			case g.waiting == "":
				return fmt.Errorf("the canary of step %q is not waiting for a decision", g.step)
			case strings.TrimSpace(in.Reason) == "":
				return errors.New("a reason is required (--reason)")
			case in.Actor == "":
				return errors.New("the decision needs an actor")
			}
			return nil
		}})
}

// wait blocks until someone decides.
func (g *canaryGate) wait(ctx workflow.Context, kind string) (activities.ApprovalRef, error) {
	g.waiting, g.decision = kind, nil
	defer func() { g.waiting = "" }()
	if err := workflow.Await(ctx, func() bool { return g.decision != nil }); err != nil {
		return activities.ApprovalRef{}, err
	}
	return *g.decision, nil
}

// sequentialRollout moves traffic to the canary step by step and analyses
// it at every interval with internal/canary, on everything both arms served
// since the rollout began, summed over the model servers:
//
//   - a metric whose always-valid interval lies beyond its margin rolls
//     back at once (at the look that shows it);
//   - a step passes when every metric's interval lies below its min_effect,
//     the canary has the sample the analysis needs (and min_requests), and
//     the step brought new canary traffic;
//   - no new canary traffic is "not yet": after max_waits such intervals in
//     a row, or max_intervals without a verdict, the rollout pauses, raises
//     an alert and waits for kiln approve (approve: go on; reject: roll
//     back); it never passes for lack of data.
//
// With require_approval, a passed canary also waits for approval before
// promotion. Every look's analysis is kept in the status (the history has
// each stats reading and the result).
func sequentialRollout(ctx, actx workflow.Context, in CanaryInput, st *CanaryStatus, stable activities.VersionRef, cur activities.ResolveAliasOutput,
	rollback func(string) (CanaryStatus, error), gate *canaryGate) (CanaryStatus, error) {
	cfg := in.Config
	servers := cfg.AllServers()
	acfg := cfg.CanaryConfig()
	dep := &st.Deployment
	var base []activities.StatsOutput
	var since time.Time // when the canary first got traffic (the live metric's start)
	st.Baseline = stable.Version
	pause := func(why string) (bool, error) {
		st.Paused = why
		alert := activities.CanaryAlertInput{WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Key: fmt.Sprintf("%s/%s/%d", in.RunID, in.Step, len(st.Steps)), Message: why}
		if err := workflow.ExecuteActivity(withSummary(actx, "alert: canary paused"), a.RaiseCanaryAlert, alert).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("raising the canary alert", "error", err)
		}
		ref, err := gate.wait(ctx, canaryWaitPaused)
		st.Paused = ""
		if err != nil {
			return false, err
		}
		st.Decisions = append(st.Decisions, ref)
		return ref.Approved, nil
	}
	if cfg.Shadow != nil {
		refused, err := shadowPhase(ctx, actx, in, st, stable, pause)
		if err != nil {
			return *st, err
		}
		if refused != "" {
			return rollback(refused)
		}
	}
	for i, pct := range cfg.Steps {
		if pct >= 100 {
			break
		}
		canaryRef := in.Version
		if err := setTrafficAll(actx, servers, in, stable, &canaryRef, pct); err != nil {
			return *st, err
		}
		st.Percent = pct
		now, err := statsAll(actx, servers, in.Model)
		if err != nil {
			return *st, err
		}
		if i == 0 {
			base = now
			since = workflow.Now(ctx)
		}
		stepStart := armsSince(now, base, in.Version.Version).Requests
		last := stepStart
		idle, looks := 0, 0
		for {
			if err := workflow.NewTimer(ctx, cfg.Interval.D()).Get(ctx, nil); err != nil {
				return *st, err
			}
			looks++
			now, err := statsAll(actx, servers, in.Model)
			if err != nil {
				return *st, err
			}
			s, c := armsSince(now, base, stable.Version), armsSince(now, base, in.Version.Version)
			if acfg.Live != nil {
				var lo activities.CanaryOutcomesOutput
				oin := activities.CanaryOutcomesInput{Model: in.Model, Since: since, Metric: acfg.Live.Metric, Versions: []int64{stable.Version, in.Version.Version}}
				if err := workflow.ExecuteActivity(withSummary(actx, "labelled outcomes of "+in.Model), a.CanaryOutcomes, oin).Get(ctx, &lo); err != nil {
					return *st, err
				}
				s.Outcomes, c.Outcomes = lo.ByVersion[0].Outcomes, lo.ByVersion[1].Outcomes
			}
			an := canary.Analyze(acfg, s, c, pct)
			newCanary := c.Requests - stepStart
			verdict, reason := an.Decision, an.Reason
			if verdict == canary.Promote && newCanary < int64(max(cfg.MinRequests, 1)) {
				verdict, reason = canary.Wait, fmt.Sprintf("%d canary requests at %d%%, need %d at this step", newCanary, pct, max(cfg.MinRequests, 1))
			}
			stepVerdict := map[string]string{canary.Promote: VerdictPass, canary.Rollback: VerdictFail, canary.Wait: VerdictInconclusive}[verdict]
			stepRec := CanaryStep{Percent: pct, Stable: toVariant(stable.Version, s), Canary: toVariant(in.Version.Version, c), Verdict: stepVerdict, Reason: reason, At: workflow.Now(ctx), Analysis: &an}
			st.Steps = append(st.Steps, stepRec)
			st.Analysis = &an
			switch verdict {
			case canary.Rollback:
				return rollback(fmt.Sprintf("at %d%% after %d intervals: %s", pct, looks, reason))
			case canary.Promote:
			default:
				if c.Requests > last {
					idle = 0
				} else {
					idle++
				}
				last = c.Requests
				var why string
				switch {
				case idle > cfg.MaxWaits:
					why = fmt.Sprintf("no new canary traffic at %d%% for %d intervals: %s. Requests must reach the model servers (%s) for the canary to be judged: send some (kiln replay %s DATA.csv), or approve to look again; a first deployment with no live users can use analysis: none",
						pct, idle, reason, strings.Join(servers, ", "), in.Model)
				case looks >= maxIntervals(cfg):
					why = fmt.Sprintf("no verdict at %d%% after %d intervals: %s", pct, looks, reason)
				}
				if why == "" {
					continue
				}
				goOn, err := pause(why)
				if err != nil {
					return *st, err
				}
				if !goOn {
					return rollback(fmt.Sprintf("at %d%%: paused (%s), then rolled back by %s: %s", pct, why, st.Decisions[len(st.Decisions)-1].By, st.Decisions[len(st.Decisions)-1].Reason))
				}
				idle, looks = 0, 0
				continue
			}
			break
		}
	}

	reason := fmt.Sprintf("canary passed %d analyses", len(st.Steps))
	if st.Analysis != nil {
		reason += ": " + st.Analysis.Reason
	}
	if cfg.RequireApproval {
		st.Paused = "passed; waiting for approval to promote"
		ref, err := gate.wait(ctx, canaryWaitApproval)
		st.Paused = ""
		if err != nil {
			return *st, err
		}
		st.Decisions = append(st.Decisions, ref)
		if !ref.Approved {
			return rollback(fmt.Sprintf("passed, but promotion rejected by %s: %s", ref.By, ref.Reason))
		}
		reason += fmt.Sprintf("; approved by %s: %s", ref.By, ref.Reason)
	}
	if err := setTrafficAll(actx, servers, in, in.Version, nil, 0); err != nil {
		return *st, err
	}
	if err := moveAlias(actx, in, cur, reason); err != nil {
		return *st, err
	}
	st.Stable, st.Percent, st.Done = in.Version.Version, 100, true
	dep.Promoted, dep.Outcome, dep.Reason, dep.Evidence = true, "promoted", reason, st.Analysis
	return *st, nil
}

// maxIntervals is a step's intervals without a verdict before a pause:
// cfg.MaxIntervals, 120 when unset.
func maxIntervals(cfg pipelines.DeployConfig) int {
	if cfg.MaxIntervals > 0 {
		return cfg.MaxIntervals
	}
	return 120
}

// setTrafficAll sends one split to every server, in parallel.
func setTrafficAll(ctx workflow.Context, servers []string, in CanaryInput, stable activities.VersionRef, canaryRef *activities.VersionRef, pct int) error {
	return setSplitAll(ctx, servers, in, activities.TrafficInput{Stable: stable, Canary: canaryRef, CanaryPercent: pct})
}

// setSplitAll sends split (its Server, Model and RunID filled in here) to
// every server, in parallel.
func setSplitAll(ctx workflow.Context, servers []string, in CanaryInput, split activities.TrafficInput) error {
	futures := make([]workflow.Future, len(servers))
	for i, srv := range servers {
		summary := fmt.Sprintf("%s: v%d 100%%", in.Model, split.Stable.Version)
		if split.Canary != nil {
			summary = fmt.Sprintf("%s: v%d %d%%, canary v%d %d%%", in.Model, split.Stable.Version, 100-split.CanaryPercent, split.Canary.Version, split.CanaryPercent)
		}
		if split.Shadow != nil {
			summary += fmt.Sprintf(", shadow v%d", split.Shadow.Version)
		}
		if len(servers) > 1 {
			summary += " on " + srv
		}
		ti := split
		ti.Server, ti.Model, ti.RunID = srv, in.Model, workflow.GetInfo(ctx).WorkflowExecution.ID
		futures[i] = workflow.ExecuteActivity(withSummary(ctx, summary), a.SetTraffic, ti)
	}
	var first error
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// statsAll reads every server's counters, in the order of servers.
func statsAll(ctx workflow.Context, servers []string, model string) ([]activities.StatsOutput, error) {
	futures := make([]workflow.Future, len(servers))
	for i, srv := range servers {
		futures[i] = workflow.ExecuteActivity(withSummary(ctx, "stats "+model+" on "+srv), a.GetStats, activities.StatsInput{Server: srv, Model: model})
	}
	out := make([]activities.StatsOutput, len(servers))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// armsSince sums, over the servers, version's traffic in now since base
// (both per server). A server whose counters went down restarted: all it
// counted since is new (as Prometheus's rate() treats a counter reset).
func armsSince(now, base []activities.StatsOutput, version int64) canary.Arm {
	var total canary.Arm
	for i := range now {
		var b activities.StatsOutput
		if i < len(base) {
			b = base[i]
		}
		total = addArms(total, arm(now[i], b, version))
	}
	return total
}

// addArms adds two arms' counts (bins of the same histograms).
func addArms(x, y canary.Arm) canary.Arm {
	out := canary.Arm{Requests: x.Requests + y.Requests, Errors: x.Errors + y.Errors, LatencyBounds: x.LatencyBounds}
	if out.LatencyBounds == nil {
		out.LatencyBounds = y.LatencyBounds
	}
	out.Latency = addBins(x.Latency, y.Latency)
	out.Predictions = addBins(x.Predictions, y.Predictions)
	return out
}

func addBins(x, y []float64) []float64 {
	switch {
	case len(x) == 0:
		return append([]float64(nil), y...)
	case len(y) == 0 || len(x) != len(y):
		return append([]float64(nil), x...)
	}
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] + y[i]
	}
	return out
}

// arm is version's traffic in now since base, as internal/canary reads it.
func arm(now, base activities.StatsOutput, version int64) canary.Arm {
	n, b := variantOf(now, version), variantOf(base, version)
	if n.Requests < b.Requests || n.Latency.Count < b.Latency.Count {
		b = activities.VariantStats{} // the server restarted since base
	}
	lat := n.Latency.Sub(b.Latency)
	vals := n.Values.Sub(b.Values)
	out := canary.Arm{Requests: n.Requests - b.Requests, Errors: n.Errors - b.Errors}
	if lat.Count > 0 || len(lat.Buckets) > 0 {
		out.Latency, out.LatencyBounds = lat.Bins()
	}
	if vals.Count > 0 || len(vals.Buckets) > 0 {
		out.Predictions, _ = vals.Bins()
	}
	return out
}

// toVariant summarises an arm for the step record.
func toVariant(version int64, a canary.Arm) activities.VariantStats {
	return activities.VariantStats{Version: version, Requests: a.Requests, Errors: a.Errors}
}
