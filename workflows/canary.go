package workflows

import (
	"fmt"
	"math"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/canary"
	"github.com/kiln-ml/kiln/pipelines"
)

// CanaryInput starts a canary rollout of one model version.
type CanaryInput struct {
	Model   string                 `json:"model"`
	Version activities.VersionRef  `json:"version"`
	Config  pipelines.DeployConfig `json:"config"`
	// RunID is the pipeline run that asked for the rollout (recorded with the alias move).
	RunID string `json:"run_id"`
	// Actor is who started that run.
	Actor string `json:"actor"`
	// Step is the deploy step's name (kiln approve canary/<model> STEP
	// decides a paused rollout).
	Step string `json:"step,omitempty"`
}

// Canary verdicts of one analysis.
const (
	VerdictPass         = "pass"
	VerdictFail         = "fail"
	VerdictInconclusive = "inconclusive"
)

// CanaryStep records the analysis of one traffic step.
type CanaryStep struct {
	Percent int                     `json:"percent"`
	Stable  activities.VariantStats `json:"stable"`
	Canary  activities.VariantStats `json:"canary"`
	Verdict string                  `json:"verdict"`
	Reason  string                  `json:"reason"`
	At      time.Time               `json:"at"`
	// Analysis is the sequential analysis of this look: every metric's
	// effect, always-valid interval and samples (nil in rollouts recorded
	// before it).
	Analysis *canary.Analysis `json:"analysis,omitempty"`
}

// CanaryStatus is the rollout's state (status query) and result.
type CanaryStatus struct {
	Model      string                   `json:"model"`
	Stable     int64                    `json:"stable"`
	Canary     int64                    `json:"canary"`
	Percent    int                      `json:"percent"`
	Steps      []CanaryStep             `json:"steps"`
	Done       bool                     `json:"done"`
	Deployment activities.DeploymentRef `json:"deployment"`
	// Analysis is the latest look's analysis.
	Analysis *canary.Analysis `json:"analysis,omitempty"`
	// Paused says why the rollout waits for a person (kiln approve), while
	// it does.
	Paused string `json:"paused,omitempty"`
	// Decisions are the people's decisions on pauses and on promotion.
	Decisions []activities.ApprovalRef `json:"decisions,omitempty"`
	// Baseline is the stable version the canary was compared with.
	Baseline int64 `json:"baseline,omitempty"`
	// RunID and Step are the pipeline run and deploy step that started the
	// rollout.
	RunID string `json:"run_id,omitempty"`
	Step  string `json:"step,omitempty"`
	// Shadow is the shadow phase's latest analysis and ShadowLooks how
	// many it took, when the deploy step has a shadow phase.
	Shadow      *canary.ShadowAnalysis `json:"shadow,omitempty"`
	ShadowLooks int                    `json:"shadow_looks,omitempty"`
}

// CanaryWorkflow rolls a new model version out to its model servers. With no
// stable version (or the same one) it deploys directly. Otherwise it sends
// Config.Steps percent of the traffic to the canary and analyses it every
// Config.Interval with sequential tests that stay valid at every look
// (sequentialRollout, internal/canary): a canary worse than its margins
// rolls back, one within them on enough traffic moves to the next step, and
// a rollout without traffic or verdict pauses for a person instead of
// passing. At 100% the canary becomes stable and the registry alias moves to
// it (compare-and-swap) in the same workflow. Cancelling the workflow
// restores the stable version's traffic. Rollouts recorded before the
// sequential analysis replay the per-step z-test (Analyze).
func CanaryWorkflow(ctx workflow.Context, in CanaryInput) (CanaryStatus, error) {
	cfg := in.Config
	st := &CanaryStatus{Model: in.Model, Canary: in.Version.Version, RunID: in.RunID, Step: in.Step}
	dep := &st.Deployment
	*dep = activities.DeploymentRef{Server: cfg.Server, Model: in.Model, Version: in.Version.Version, Alias: cfg.Alias}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (CanaryStatus, error) { return *st, nil }); err != nil {
		return *st, err
	}
	sequential := workflow.GetVersion(ctx, sequentialCanaryVersion, workflow.DefaultVersion, 1) == 1
	gate := &canaryGate{step: in.Step}
	if sequential {
		if err := gate.register(ctx); err != nil {
			return *st, err
		}
	}
	servers := []string{cfg.Server}
	if sequential {
		servers = cfg.AllServers()
		dep.Servers = servers
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
		// On cancellation, let an in-flight traffic change finish before the
		// rollback below is sent, so the rollback is the last word.
		WaitForCancellation: true,
	})

	var cur activities.ResolveAliasOutput
	if err := workflow.ExecuteActivity(withSummary(actx, "resolve "+cfg.Alias), a.ResolveAlias, activities.ResolveAliasInput{Model: in.Model, Alias: cfg.Alias}).Get(ctx, &cur); err != nil {
		return *st, err
	}
	if !cur.Found || cur.Current.Version == in.Version.Version || cfg.NoAnalysis {
		if sequential {
			if err := setTrafficAll(actx, servers, in, in.Version, nil, 0); err != nil {
				return *st, err
			}
		} else if err := setTraffic(actx, cfg.Server, in.Model, in.Version, nil, 0); err != nil {
			return *st, err
		}
		reason, outcome := "no stable version to compare with", "first deployment"
		switch {
		case cur.Found && cur.Current.Version == in.Version.Version:
			reason = "version already stable"
		case cfg.NoAnalysis && cur.Found:
			reason, outcome = fmt.Sprintf("analysis: none: replaced v%d at once, with no canary", cur.Current.Version), "deployed without analysis"
		}
		if err := moveAlias(actx, in, cur, reason); err != nil {
			return *st, err
		}
		st.Stable, st.Percent, st.Done = in.Version.Version, 100, true
		dep.Promoted, dep.Outcome, dep.Reason = true, outcome, reason
		return *st, nil
	}

	stable := cur.Current
	st.Stable = stable.Version
	// From here on, however the rollout ends without a verdict (cancelled, an
	// activity out of retries, an alias conflict), all traffic goes back to
	// stable: no version the registry did not promote keeps serving.
	defer func() {
		if !st.Done {
			dctx, _ := workflow.NewDisconnectedContext(actx)
			var err error
			if sequential {
				err = setTrafficAll(dctx, servers, in, stable, nil, 0)
			} else {
				err = setTraffic(dctx, cfg.Server, in.Model, stable, nil, 0)
			}
			if err != nil {
				workflow.GetLogger(ctx).Error("restoring stable traffic", "model", in.Model, "error", err)
			}
		}
	}()

	rollback := func(reason string) (CanaryStatus, error) {
		var err error
		if sequential {
			err = setTrafficAll(actx, servers, in, stable, nil, 0)
		} else {
			err = setTraffic(actx, cfg.Server, in.Model, stable, nil, 0)
		}
		if err != nil {
			return *st, err
		}
		st.Percent, st.Done = 0, true
		dep.Promoted, dep.Outcome, dep.Reason, dep.Evidence = false, "rolled back", reason, st.Analysis
		return *st, nil
	}
	if sequential {
		return sequentialRollout(ctx, actx, in, st, stable, cur, rollback, gate)
	}

	for _, pct := range cfg.Steps {
		if pct >= 100 {
			break
		}
		canary := in.Version
		if err := setTraffic(actx, cfg.Server, in.Model, stable, &canary, pct); err != nil {
			return *st, err
		}
		st.Percent = pct
		base, err := stats(actx, cfg.Server, in.Model)
		if err != nil {
			return *st, err
		}
		for wait := 0; ; wait++ {
			if err := workflow.NewTimer(ctx, cfg.Interval.D()).Get(ctx, nil); err != nil {
				return *st, err
			}
			now, err := stats(actx, cfg.Server, in.Model)
			if err != nil {
				return *st, err
			}
			s := delta(now, base, stable.Version)
			c := delta(now, base, in.Version.Version)
			verdict, reason := Analyze(s, c, cfg)
			st.Steps = append(st.Steps, CanaryStep{Percent: pct, Stable: s, Canary: c, Verdict: verdict, Reason: reason, At: workflow.Now(ctx)})
			if verdict == VerdictPass {
				break
			}
			if verdict == VerdictFail {
				return rollback(fmt.Sprintf("at %d%%: %s", pct, reason))
			}
			if wait >= cfg.MaxWaits {
				return rollback(fmt.Sprintf("at %d%%: still inconclusive after %d intervals: %s", pct, wait+1, reason))
			}
		}
	}

	if err := setTraffic(actx, cfg.Server, in.Model, in.Version, nil, 0); err != nil {
		return *st, err
	}
	reason := fmt.Sprintf("canary passed %d analysis steps", len(st.Steps))
	if err := moveAlias(actx, in, cur, reason); err != nil {
		return *st, err
	}
	st.Stable, st.Percent, st.Done = in.Version.Version, 100, true
	dep.Promoted, dep.Outcome, dep.Reason = true, "promoted", reason
	return *st, nil
}

// Analyze judges one canary step from the requests each variant served during
// it. Fewer than cfg.MinRequests canary requests is inconclusive, never a pass.
// The canary fails when its error rate exceeds stable's by more than
// cfg.MaxErrorRateIncrease and a one-sided two-proportion z-test finds the
// difference significant (p < 0.05); without a stable baseline the threshold
// alone decides. A large but not yet significant difference is inconclusive.
func Analyze(stable, canary activities.VariantStats, cfg pipelines.DeployConfig) (verdict, reason string) {
	if canary.Requests < int64(cfg.MinRequests) {
		return VerdictInconclusive, fmt.Sprintf("%d canary requests, need %d", canary.Requests, cfg.MinRequests)
	}
	cr := rate(canary)
	sr := rate(stable)
	desc := fmt.Sprintf("canary error rate %.4f (%d/%d), stable %.4f (%d/%d)", cr, canary.Errors, canary.Requests, sr, stable.Errors, stable.Requests)
	if cr-sr <= cfg.MaxErrorRateIncrease {
		return VerdictPass, desc
	}
	if stable.Requests < int64(cfg.MinRequests) {
		return VerdictFail, desc + fmt.Sprintf("; above the allowed increase %.4f", cfg.MaxErrorRateIncrease)
	}
	p := oneSidedPValue(canary.Errors, canary.Requests, stable.Errors, stable.Requests)
	if p < 0.05 {
		return VerdictFail, desc + fmt.Sprintf("; worse with p=%.3g", p)
	}
	return VerdictInconclusive, desc + fmt.Sprintf("; not yet significant (p=%.3g)", p)
}

func rate(v activities.VariantStats) float64 {
	if v.Requests == 0 {
		return 0
	}
	return float64(v.Errors) / float64(v.Requests)
}

// oneSidedPValue tests H1: p1 > p2 with the pooled two-proportion z-test.
func oneSidedPValue(x1, n1, x2, n2 int64) float64 {
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	pool := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		if p1 > p2 {
			return 0
		}
		return 1
	}
	z := (p1 - p2) / se
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// variantOf returns version's counters in s (zero when it has none).
func variantOf(s activities.StatsOutput, version int64) activities.VariantStats {
	for _, v := range s.Variants {
		if v.Version == version {
			return v
		}
	}
	return activities.VariantStats{}
}

// delta returns version's counters in now minus those in base.
func delta(now, base activities.StatsOutput, version int64) activities.VariantStats {
	n, b := variantOf(now, version), variantOf(base, version)
	out := activities.VariantStats{Version: version, Requests: n.Requests - b.Requests, Errors: n.Errors - b.Errors}
	if out.Requests > 0 {
		out.MeanMs = (n.MeanMs*float64(n.Requests) - b.MeanMs*float64(b.Requests)) / float64(out.Requests)
	}
	return out
}

func withSummary(ctx workflow.Context, summary string) workflow.Context {
	opts := workflow.GetActivityOptions(ctx)
	opts.Summary = summary
	return workflow.WithActivityOptions(ctx, opts)
}

func setTraffic(ctx workflow.Context, server, model string, stable activities.VersionRef, canary *activities.VersionRef, pct int) error {
	summary := fmt.Sprintf("%s: v%d 100%%", model, stable.Version)
	if canary != nil {
		summary = fmt.Sprintf("%s: v%d %d%%, canary v%d %d%%", model, stable.Version, 100-pct, canary.Version, pct)
	}
	in := activities.TrafficInput{Server: server, Model: model, Stable: stable, Canary: canary, CanaryPercent: pct}
	return workflow.ExecuteActivity(withSummary(ctx, summary), a.SetTraffic, in).Get(ctx, nil)
}

func stats(ctx workflow.Context, server, model string) (activities.StatsOutput, error) {
	var out activities.StatsOutput
	err := workflow.ExecuteActivity(withSummary(ctx, "stats "+model), a.GetStats, activities.StatsInput{Server: server, Model: model}).Get(ctx, &out)
	return out, err
}

func moveAlias(ctx workflow.Context, in CanaryInput, cur activities.ResolveAliasOutput, reason string) error {
	mv := activities.MoveAliasInput{
		Model: in.Model, Alias: in.Config.Alias, To: in.Version.Version,
		Reason: reason, RunID: in.RunID, Actor: in.Actor,
	}
	if cur.Found {
		mv.From = cur.Current.Version
	}
	summary := fmt.Sprintf("%s@%s → v%d", in.Model, in.Config.Alias, in.Version.Version)
	return workflow.ExecuteActivity(withSummary(ctx, summary), a.MoveAlias, mv).Get(ctx, nil)
}
