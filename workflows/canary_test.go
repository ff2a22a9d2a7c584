package workflows

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/canary"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/pipelines"
)

func canaryConfig() pipelines.DeployConfig {
	return pipelines.DeployConfig{
		Server: "http://srv", Alias: "production", Steps: []int{10, 50, 100},
		Interval: pipelines.Duration(30e9), MinRequests: 50, MaxErrorRateIncrease: 0.01, MaxWaits: 3,
	}
}

func TestAnalyze(t *testing.T) {
	cfg := canaryConfig()
	v := func(req, errs int64) activities.VariantStats {
		return activities.VariantStats{Requests: req, Errors: errs}
	}
	tests := []struct {
		name           string
		stable, canary activities.VariantStats
		want           string
	}{
		{"no canary traffic is inconclusive", v(1000, 0), v(0, 0), VerdictInconclusive},
		{"too few canary requests", v(1000, 0), v(49, 0), VerdictInconclusive},
		{"equal error rates pass", v(1000, 10), v(100, 1), VerdictPass},
		{"within the allowed increase", v(1000, 0), v(100, 1), VerdictPass},
		{"significantly worse fails", v(1000, 0), v(100, 20), VerdictFail},
		{"worse but not significant waits", v(60, 0), v(50, 2), VerdictInconclusive},
		{"no stable baseline, above threshold fails", v(0, 0), v(100, 5), VerdictFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Analyze(tt.stable, tt.canary, cfg)
			if got != tt.want {
				t.Errorf("Analyze = %s (%s), want %s", got, reason, tt.want)
			}
			if reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// fakeServer simulates a model server's counters: every GetStats call adds
// traffic split by the current canary percentage, with the given error rates.
type fakeServer struct {
	mu                   sync.Mutex
	pct                  int
	stable, canary       int64
	perCall              int64
	stableErr, canaryErr float64
	traffic              []activities.TrafficInput
	moves                []activities.MoveAliasInput
	moveErr              error
	// canaryLatency and canaryValue are the canary's request duration
	// (seconds) and prediction; stable's are 2ms and 0.3.
	canaryLatency, canaryValue float64
	by                         map[string]*fakeCounters
	statsCalls                 int
	// shadow is the version mirrored requests go to (all of stable's);
	// shadowAgree the share of rows it agrees on; it answers with the
	// canary's latency and value.
	shadow      int64
	shadowAgree float64
	// liveAcc is each version's accuracy on labelled predictions (half
	// of its requests get a label), for the live metric.
	liveAcc map[int64]float64
}

// fakeCounters are one server's cumulative counters per version.
type fakeCounters struct {
	reqs, errs map[int64]int64
	lat, vals  map[int64]serving.Histogram
	shadow     serving.ShadowStats
}

// observe adds n observations of v to h (cumulative buckets over bounds).
func observe(h serving.Histogram, bounds []float64, v float64, n int64) serving.Histogram {
	if h.Buckets == nil {
		for _, b := range bounds {
			h.Buckets = append(h.Buckets, serving.Bucket{UpperBound: b})
		}
	}
	h.Count += float64(n)
	h.Sum += v * float64(n)
	for i := range h.Buckets {
		if v <= h.Buckets[i].UpperBound {
			h.Buckets[i].Count += float64(n)
		}
	}
	return h
}

func (f *fakeServer) mock(env *testsuite.TestWorkflowEnvironment, current int64) {
	f.by = map[string]*fakeCounters{}
	if f.canaryLatency == 0 {
		f.canaryLatency = 2e-3
	}
	if f.canaryValue == 0 {
		f.canaryValue = 0.3
	}
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ResolveAlias, mock.Anything, mock.Anything).Return(activities.ResolveAliasOutput{Found: current > 0, Current: activities.VersionRef{Version: current}}, nil)
	env.OnActivity(a.SetTraffic, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TrafficInput) (activities.TrafficOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.traffic = append(f.traffic, in)
		f.stable, f.pct, f.canary, f.shadow = in.Stable.Version, in.CanaryPercent, 0, 0
		if in.Canary != nil {
			f.canary = in.Canary.Version
		}
		if in.Shadow != nil {
			f.shadow = in.Shadow.Version
		}
		return activities.TrafficOutput{Applied: true}, nil
	})
	env.OnActivity(a.GetStats, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StatsInput) (activities.StatsOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.statsCalls++
		cn := f.by[in.Server]
		if cn == nil {
			cn = &fakeCounters{reqs: map[int64]int64{}, errs: map[int64]int64{}, lat: map[int64]serving.Histogram{}, vals: map[int64]serving.Histogram{}}
			f.by[in.Server] = cn
		}
		c := f.perCall * int64(f.pct) / 100
		s := f.perCall - c
		cn.reqs[f.stable] += s
		cn.errs[f.stable] += int64(float64(s) * f.stableErr)
		cn.lat[f.stable] = observe(cn.lat[f.stable], serving.DurationBuckets, 2e-3, s)
		cn.vals[f.stable] = observe(cn.vals[f.stable], serving.PredictionBuckets, 0.3, s)
		if f.canary != 0 {
			cn.reqs[f.canary] += c
			cn.errs[f.canary] += int64(float64(c) * f.canaryErr)
			cn.lat[f.canary] = observe(cn.lat[f.canary], serving.DurationBuckets, f.canaryLatency, c)
			cn.vals[f.canary] = observe(cn.vals[f.canary], serving.PredictionBuckets, f.canaryValue, c)
		}
		var out activities.StatsOutput
		if f.shadow != 0 {
			sh := &cn.shadow
			sh.Version = f.shadow
			sh.Requests += s
			sh.Rows += s
			sh.Agreements += int64(float64(s) * f.shadowAgree)
			sh.Latency = observe(sh.Latency, serving.DurationBuckets, f.canaryLatency, s)
			sh.Values = observe(sh.Values, serving.PredictionBuckets, f.canaryValue, s)
			sh.LiveLatency = observe(sh.LiveLatency, serving.DurationBuckets, 2e-3, s)
			sh.LiveValues = observe(sh.LiveValues, serving.PredictionBuckets, 0.3, s)
		}
		if cn.shadow.Version != 0 {
			out.Shadows = []serving.ShadowStats{cn.shadow}
		}
		for _, v := range []int64{1, 2} {
			if cn.reqs[v] > 0 {
				out.Variants = append(out.Variants, activities.VariantStats{Version: v, Requests: cn.reqs[v], Errors: cn.errs[v], Latency: cn.lat[v], Values: cn.vals[v]})
			}
		}
		return out, nil
	})
	env.OnActivity(a.CanaryOutcomes, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CanaryOutcomesInput) (activities.CanaryOutcomesOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out activities.CanaryOutcomesOutput
		for _, v := range in.Versions {
			var n int64
			for _, cn := range f.by {
				n += cn.reqs[v] / 2
			}
			sum := float64(n) * f.liveAcc[v]
			out.ByVersion = append(out.ByVersion, activities.VersionOutcomes{Version: v, Outcomes: canary.Outcomes{N: n, Sum: sum, SumSq: sum}})
		}
		return out, nil
	})
	env.OnActivity(a.MoveAlias, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.MoveAliasInput) (activities.MoveAliasOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.moves = append(f.moves, in)
		if f.moveErr != nil {
			return activities.MoveAliasOutput{}, f.moveErr
		}
		return activities.MoveAliasOutput{EventID: 7}, nil
	})
}

func runCanary(t *testing.T, f *fakeServer, current int64) CanaryStatus {
	t.Helper()
	st, err := execCanary(t, f, current)
	if err != nil {
		t.Fatalf("canary failed: %v", err)
	}
	return st
}

func execCanary(t *testing.T, f *fakeServer, current int64) (CanaryStatus, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(CanaryWorkflow)
	f.mock(env, current)
	env.ExecuteWorkflow(CanaryWorkflow, CanaryInput{Model: "m", Version: activities.VersionRef{Version: 2, BundleURI: "file:///v2"}, Config: canaryConfig(), RunID: "pipeline/m/r1", Actor: "test"})
	if err := env.GetWorkflowError(); err != nil {
		return CanaryStatus{}, err
	}
	var st CanaryStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st, nil
}

// A rollout that fails without a verdict (here: the alias moved under it)
// must not leave the unpromoted version serving.
func TestCanaryFailureRestoresStableTraffic(t *testing.T) {
	f := &fakeServer{perCall: 1000, moveErr: temporal.NewNonRetryableApplicationError("alias moved: expected v1, found v3", ErrTypeInvalidInput, nil)}
	if _, err := execCanary(t, f, 1); err == nil {
		t.Fatal("canary succeeded although the alias move failed")
	}
	last := f.traffic[len(f.traffic)-1]
	if last.Stable.Version != 1 || last.Canary != nil {
		t.Errorf("after the failure traffic is %+v, want all on stable v1", last)
	}
}

func TestCanaryPromotesAHealthyVersion(t *testing.T) {
	f := &fakeServer{perCall: 1000, stableErr: 0.01, canaryErr: 0.01}
	st := runCanary(t, f, 1)
	if !st.Deployment.Promoted || st.Deployment.Outcome != "promoted" || st.Stable != 2 {
		t.Fatalf("deployment %+v, stable v%d", st.Deployment, st.Stable)
	}
	var pcts []int
	for _, tr := range f.traffic {
		pcts = append(pcts, tr.CanaryPercent)
	}
	if want := []int{10, 50, 0}; !equalInts(pcts, want) {
		t.Errorf("traffic steps %v, want %v", pcts, want)
	}
	if last := f.traffic[len(f.traffic)-1]; last.Stable.Version != 2 || last.Canary != nil {
		t.Errorf("final traffic %+v, want all on v2", last)
	}
	if len(f.moves) != 1 || f.moves[0].From != 1 || f.moves[0].To != 2 || f.moves[0].RunID != "pipeline/m/r1" {
		t.Errorf("alias moves %+v", f.moves)
	}
}

func TestCanaryRollsBackAWorseVersion(t *testing.T) {
	f := &fakeServer{perCall: 1000, stableErr: 0.0, canaryErr: 0.3}
	st := runCanary(t, f, 1)
	if st.Deployment.Promoted || st.Deployment.Outcome != "rolled back" {
		t.Fatalf("deployment %+v", st.Deployment)
	}
	if !strings.Contains(st.Deployment.Reason, "at 10%") {
		t.Errorf("reason %q does not say at which step", st.Deployment.Reason)
	}
	if last := f.traffic[len(f.traffic)-1]; last.Stable.Version != 1 || last.Canary != nil {
		t.Errorf("after rollback traffic is %+v, want all on v1", last)
	}
	if len(f.moves) != 0 {
		t.Errorf("alias moved on rollback: %+v", f.moves)
	}
}

// execCanaryWith runs a canary with cfg; at each look where the rollout
// waits for a person, decide (if not nil) answers with an approve Update.
func execCanaryWith(t *testing.T, f *fakeServer, cfg pipelines.DeployConfig, decide func(st CanaryStatus) *ApproveInput) (CanaryStatus, []CanaryStatus, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(CanaryWorkflow)
	f.mock(env, 1)
	var seen []CanaryStatus
	var poll func()
	poll = func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			var st CanaryStatus
			if v.Get(&st) == nil && st.Paused != "" {
				seen = append(seen, st)
				if in := decide(st); in != nil {
					env.UpdateWorkflow(UpdateApprove, "u"+strconv.Itoa(len(seen)), &testsuite.TestUpdateCallback{
						OnReject: func(err error) { t.Errorf("update rejected: %v", err) },
						OnAccept: func() {}, OnComplete: func(any, error) {},
					}, *in)
				}
			}
		}
		env.RegisterDelayedCallback(poll, cfg.Interval.D()/2)
	}
	env.RegisterDelayedCallback(poll, cfg.Interval.D()/2)
	env.ExecuteWorkflow(CanaryWorkflow, CanaryInput{Model: "m", Version: activities.VersionRef{Version: 2, BundleURI: "file:///v2"}, Config: cfg, RunID: "pipeline/m/r1", Actor: "test", Step: "deploy"})
	if err := env.GetWorkflowError(); err != nil {
		return CanaryStatus{}, seen, err
	}
	var st CanaryStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st, seen, nil
}

// A canary with no traffic is never promoted: after max_waits intervals
// without canary requests the rollout pauses (with an alert) and waits for
// a person; rejecting rolls back, approving looks again.
func TestCanaryWithoutTrafficPauses(t *testing.T) {
	cfg := canaryConfig()
	f := &fakeServer{perCall: 0}
	decisions := 0
	st, seen, err := execCanaryWith(t, f, cfg, func(st CanaryStatus) *ApproveInput {
		decisions++
		if decisions == 1 {
			return &ApproveInput{Step: "deploy", Approve: true, Reason: "traffic is coming", Actor: "ana"}
		}
		return &ApproveInput{Step: "deploy", Approve: false, Reason: "no traffic today", Actor: "ana"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Deployment.Promoted || st.Deployment.Outcome != "rolled back" {
		t.Fatalf("deployment %+v", st.Deployment)
	}
	if len(seen) < 2 || !strings.Contains(seen[0].Paused, "no new canary traffic") || !strings.Contains(seen[0].Paused, "kiln replay m DATA.csv") {
		t.Fatalf("pauses seen: %+v", seen)
	}
	if !strings.Contains(st.Deployment.Reason, "no traffic today") || len(st.Decisions) != 2 || st.Decisions[0].By != "ana" || !st.Decisions[0].Approved {
		t.Errorf("reason %q, decisions %+v", st.Deployment.Reason, st.Decisions)
	}
	// Each pause came after MaxWaits+1 idle looks, plus the first look.
	if n := len(st.Steps); n != 2*(cfg.MaxWaits+1)+1 && n != 2*(cfg.MaxWaits+1) {
		t.Errorf("%d analyses before the two pauses, want about %d", n, 2*(cfg.MaxWaits+1))
	}
	for _, step := range st.Steps {
		if step.Verdict == VerdictPass {
			t.Fatalf("a look without traffic passed: %+v", step)
		}
	}
}

func TestCanarySequentialVerdicts(t *testing.T) {
	withPredictions := canaryConfig()
	withPredictions.Analysis = &canary.Config{
		ErrorRate:   &canary.Threshold{MinEffect: 0.02, Margin: 0.01},
		Latency:     &canary.Threshold{MinEffect: 0.1},
		Predictions: &canary.Threshold{MinEffect: 0.1, Margin: 0.05},
	}
	tests := []struct {
		name    string
		f       *fakeServer
		cfg     pipelines.DeployConfig
		promote bool
		metric  string
	}{
		{"slower canary rolls back", &fakeServer{perCall: 1000, canaryLatency: 20e-3}, canaryConfig(), false, canary.MetricLatency},
		{"shifted predictions roll back", &fakeServer{perCall: 1000, canaryValue: 0.9}, withPredictions, false, canary.MetricPredictions},
		{"same predictions promote", &fakeServer{perCall: 1000}, withPredictions, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _, err := execCanaryWith(t, tt.f, tt.cfg, func(CanaryStatus) *ApproveInput { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if st.Deployment.Promoted != tt.promote {
				t.Fatalf("promoted %v, want %v: %s", st.Deployment.Promoted, tt.promote, st.Deployment.Reason)
			}
			ev := st.Deployment.Evidence
			if ev == nil || len(ev.Metrics) == 0 {
				t.Fatalf("no evidence in %+v", st.Deployment)
			}
			if !tt.promote {
				if !strings.Contains(st.Deployment.Reason, tt.metric+" worse") {
					t.Errorf("reason %q does not name %s", st.Deployment.Reason, tt.metric)
				}
				for _, m := range ev.Metrics {
					if m.Metric == tt.metric && !(m.Lower > m.Margin || m.Upper < -m.Margin) {
						t.Errorf("%s evidence %+v does not exclude the margin", m.Metric, m)
					}
				}
			}
		})
	}
}

// require_approval: a passed canary waits for a person before promotion.
func TestCanaryRequireApproval(t *testing.T) {
	cfg := canaryConfig()
	cfg.RequireApproval = true
	f := &fakeServer{perCall: 1000}
	st, seen, err := execCanaryWith(t, f, cfg, func(st CanaryStatus) *ApproveInput {
		return &ApproveInput{Step: "deploy", Approve: true, Reason: "looks good", Actor: "ana"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Deployment.Promoted || len(seen) == 0 || !strings.Contains(seen[0].Paused, "approval") || !strings.Contains(st.Deployment.Reason, "approved by ana") {
		t.Fatalf("deployment %+v, pauses %+v", st.Deployment, seen)
	}
	if len(f.moves) != 1 {
		t.Errorf("alias moves %+v", f.moves)
	}
}

// Several replicas get the same split, and the analysis sums their traffic.
func TestCanaryReplicas(t *testing.T) {
	cfg := canaryConfig()
	cfg.Servers = []string{"http://a", "http://b"}
	f := &fakeServer{perCall: 500}
	st, _, err := execCanaryWith(t, f, cfg, func(CanaryStatus) *ApproveInput { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !st.Deployment.Promoted {
		t.Fatalf("deployment %+v", st.Deployment)
	}
	byServer := map[string][]int{}
	for _, tr := range f.traffic {
		byServer[tr.Server] = append(byServer[tr.Server], tr.CanaryPercent)
	}
	if !equalInts(byServer["http://a"], []int{10, 50, 0}) || !equalInts(byServer["http://b"], []int{10, 50, 0}) {
		t.Errorf("splits per server %v", byServer)
	}
	// Each look reads both servers; each fake server serves perCall
	// requests between reads, so the analysis sees twice one server's.
	first := st.Steps[0]
	if got := first.Stable.Requests + first.Canary.Requests; got != 2*500 {
		t.Errorf("first look summed %d requests, want %d", got, 2*500)
	}
}

// analysis: none replaces the stable version at once, with no canary.
func TestCanaryNoAnalysis(t *testing.T) {
	cfg := canaryConfig()
	cfg.NoAnalysis = true
	f := &fakeServer{perCall: 1000}
	st, _, err := execCanaryWith(t, f, cfg, func(CanaryStatus) *ApproveInput { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !st.Deployment.Promoted || st.Deployment.Outcome != "deployed without analysis" || len(st.Steps) != 0 {
		t.Fatalf("deployment %+v, %d analyses", st.Deployment, len(st.Steps))
	}
	if len(f.traffic) != 1 || f.traffic[0].Canary != nil || f.traffic[0].Stable.Version != 2 || len(f.moves) != 1 {
		t.Errorf("traffic %+v, moves %+v: want v2 at once and one alias move", f.traffic, f.moves)
	}
}

func TestCanaryFirstDeployment(t *testing.T) {
	f := &fakeServer{}
	st := runCanary(t, f, 0)
	if !st.Deployment.Promoted || st.Deployment.Outcome != "first deployment" {
		t.Fatalf("deployment %+v", st.Deployment)
	}
	if len(f.moves) != 1 || f.moves[0].From != 0 {
		t.Errorf("alias moves %+v, want one from none", f.moves)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A shadow phase runs before the canary: a candidate that agrees and
// predicts alike goes on to the canary steps; one that disagrees is
// refused before it answers a single request.
func TestCanaryShadowPhase(t *testing.T) {
	tests := []struct {
		name    string
		f       *fakeServer
		promote bool
		reason  string
	}{
		{"faithful candidate goes on to the canary", &fakeServer{perCall: 1000, shadowAgree: 0.99}, true, "canary passed"},
		{"disagreeing candidate is refused", &fakeServer{perCall: 1000, shadowAgree: 0.5}, false, "shadow, after"},
		{"shifted candidate is refused", &fakeServer{perCall: 1000, shadowAgree: 0.97, canaryValue: 0.9}, false, "predictions worse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := canaryConfig()
			cfg.Servers = []string{"http://a", "http://b"}
			cfg.Shadow = &canary.ShadowConfig{MinAgreement: 0.9}
			st, _, err := execCanaryWith(t, tt.f, cfg, func(CanaryStatus) *ApproveInput { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if st.Deployment.Promoted != tt.promote || !strings.Contains(st.Deployment.Reason, tt.reason) {
				t.Fatalf("promoted %v (%s), want %v naming %q", st.Deployment.Promoted, st.Deployment.Reason, tt.promote, tt.reason)
			}
			if st.Deployment.Shadow == nil || st.ShadowLooks == 0 {
				t.Fatalf("no shadow evidence in %+v", st)
			}
			// The first split on each server is the shadow, with no
			// canary traffic.
			first := tt.f.traffic[0]
			if first.Shadow == nil || first.Shadow.Version != 2 || first.Canary != nil {
				t.Errorf("first split %+v, want stable with shadow v2", first)
			}
			canaried := false
			for _, tr := range tt.f.traffic {
				canaried = canaried || tr.Canary != nil
			}
			if canaried != tt.promote {
				t.Errorf("canary traffic sent: %v, want %v", canaried, tt.promote)
			}
			last := tt.f.traffic[len(tt.f.traffic)-1]
			if last.Shadow != nil || last.Canary != nil {
				t.Errorf("last split %+v still mirrors or splits", last)
			}
		})
	}
}

// The live metric: labels joined to each arm's predictions. A canary whose
// labelled accuracy is lower rolls back naming it; one as accurate passes.
func TestCanaryLiveMetric(t *testing.T) {
	tests := []struct {
		name    string
		acc     map[int64]float64
		promote bool
	}{
		{"less accurate canary rolls back", map[int64]float64{1: 0.9, 2: 0.7}, false},
		{"as accurate canary promotes", map[int64]float64{1: 0.9, 2: 0.9}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := canaryConfig()
			cfg.Analysis = &canary.Config{
				ErrorRate: &canary.Threshold{MinEffect: 0.02},
				Live:      &canary.LiveThreshold{Metric: canary.LiveAccuracy, Threshold: canary.Threshold{MinEffect: 0.05, Margin: 0.01}},
			}
			f := &fakeServer{perCall: 2000, liveAcc: tt.acc}
			st, _, err := execCanaryWith(t, f, cfg, func(CanaryStatus) *ApproveInput { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if st.Deployment.Promoted != tt.promote {
				t.Fatalf("promoted %v, want %v: %s", st.Deployment.Promoted, tt.promote, st.Deployment.Reason)
			}
			if !tt.promote && !strings.Contains(st.Deployment.Reason, "live worse") {
				t.Errorf("reason %q does not name the live metric", st.Deployment.Reason)
			}
			found := false
			for _, m := range st.Deployment.Evidence.Metrics {
				found = found || (m.Metric == canary.MetricLive && m.Canary > 0)
			}
			if !found {
				t.Errorf("no live evidence in %+v", st.Deployment.Evidence)
			}
		})
	}
}
