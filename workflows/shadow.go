package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/canary"
	"github.com/kiln-ml/kiln/internal/serving"
)

// shadowPhase mirrors the live traffic to the candidate on every server
// (stable keeps answering all of it) and analyses the mirrored requests
// every interval (canary.AnalyzeShadow) until the candidate agrees with
// the live version and matches its prediction distribution and latency on
// enough traffic, or is shown not to. It returns "" to go on to the
// canary, or why the candidate is refused. Without mirrored traffic for
// max_waits intervals, or a verdict after max_intervals, it pauses for a
// person like the canary does (approving looks again).
func shadowPhase(ctx, actx workflow.Context, in CanaryInput, st *CanaryStatus, stable activities.VersionRef,
	pause func(string) (bool, error)) (string, error) {
	cfg := in.Config
	servers := cfg.AllServers()
	scfg := cfg.Shadow.WithDefaults()
	cand := in.Version
	if err := setSplitAll(actx, servers, in, activities.TrafficInput{Stable: stable, Shadow: &cand}); err != nil {
		return "", err
	}
	base, err := statsAll(actx, servers, in.Model)
	if err != nil {
		return "", err
	}
	var last int64
	idle, looks := 0, 0
	for {
		if err := workflow.NewTimer(ctx, cfg.Interval.D()).Get(ctx, nil); err != nil {
			return "", err
		}
		looks++
		st.ShadowLooks++
		now, err := statsAll(actx, servers, in.Model)
		if err != nil {
			return "", err
		}
		arms := shadowArmsSince(now, base, cand.Version)
		an := canary.AnalyzeShadow(scfg, arms)
		st.Shadow, st.Deployment.Shadow = &an, &an
		switch an.Decision {
		case canary.Promote:
			return "", nil
		case canary.Rollback:
			return fmt.Sprintf("shadow, after %d intervals: %s", st.ShadowLooks, an.Reason), nil
		}
		if arms.Shadow.Requests > last {
			idle = 0
		} else {
			idle++
		}
		last = arms.Shadow.Requests
		var why string
		switch {
		case idle > cfg.MaxWaits:
			why = fmt.Sprintf("shadow: no mirrored traffic for %d intervals: %s", idle, an.Reason)
		case looks >= maxIntervals(cfg):
			why = fmt.Sprintf("shadow: no verdict after %d intervals: %s", looks, an.Reason)
		}
		if why == "" {
			continue
		}
		goOn, err := pause(why)
		if err != nil {
			return "", err
		}
		if !goOn {
			d := st.Decisions[len(st.Decisions)-1]
			return fmt.Sprintf("%s; rejected by %s: %s", why, d.By, d.Reason), nil
		}
		idle, looks = 0, 0
	}
}

// shadowArmsSince sums, over the servers, the mirrored traffic of the
// shadow version since base (a server whose counters went down restarted:
// all it counted since is new).
func shadowArmsSince(now, base []activities.StatsOutput, version int64) canary.ShadowArms {
	var total canary.ShadowArms
	for i := range now {
		n := shadowOf(now[i], version)
		var b serving.ShadowStats
		if i < len(base) {
			b = shadowOf(base[i], version)
		}
		if n.Requests < b.Requests || n.Rows < b.Rows {
			b = serving.ShadowStats{}
		}
		live := canary.Arm{Requests: n.Requests - b.Requests}
		shadow := canary.Arm{Requests: n.Requests - b.Requests, Errors: n.Errors - b.Errors}
		live.Latency, live.LatencyBounds = n.LiveLatency.Sub(b.LiveLatency).Bins()
		live.Predictions, _ = n.LiveValues.Sub(b.LiveValues).Bins()
		shadow.Latency, shadow.LatencyBounds = n.Latency.Sub(b.Latency).Bins()
		shadow.Predictions, _ = n.Values.Sub(b.Values).Bins()
		total.Live = addArms(total.Live, live)
		total.Shadow = addArms(total.Shadow, shadow)
		total.Rows += n.Rows - b.Rows
		total.Agreements += n.Agreements - b.Agreements
		total.Dropped += n.Dropped - b.Dropped
	}
	return total
}

// shadowOf returns the shadow counters of version in s (zero without).
func shadowOf(s activities.StatsOutput, version int64) serving.ShadowStats {
	for _, sh := range s.Shadows {
		if sh.Version == version {
			return sh
		}
	}
	return serving.ShadowStats{}
}
