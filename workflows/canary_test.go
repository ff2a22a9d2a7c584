package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ml/kiln/activities"
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
	reqs, errs           map[int64]int64
	perCall              int64
	stableErr, canaryErr float64
	traffic              []activities.TrafficInput
	moves                []activities.MoveAliasInput
	moveErr              error
}

func (f *fakeServer) mock(env *testsuite.TestWorkflowEnvironment, current int64) {
	f.reqs, f.errs = map[int64]int64{}, map[int64]int64{}
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ResolveAlias, mock.Anything, mock.Anything).Return(activities.ResolveAliasOutput{Found: current > 0, Current: activities.VersionRef{Version: current}}, nil)
	env.OnActivity(a.SetTraffic, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TrafficInput) (activities.TrafficOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.traffic = append(f.traffic, in)
		f.stable, f.pct, f.canary = in.Stable.Version, in.CanaryPercent, 0
		if in.Canary != nil {
			f.canary = in.Canary.Version
		}
		return activities.TrafficOutput{Applied: true}, nil
	})
	env.OnActivity(a.GetStats, mock.Anything, mock.Anything).Return(func(context.Context, activities.StatsInput) (activities.StatsOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.perCall * int64(f.pct) / 100
		s := f.perCall - c
		f.reqs[f.stable] += s
		f.errs[f.stable] += int64(float64(s) * f.stableErr)
		if f.canary != 0 {
			f.reqs[f.canary] += c
			f.errs[f.canary] += int64(float64(c) * f.canaryErr)
		}
		var out activities.StatsOutput
		for _, v := range []int64{1, 2} {
			out.Variants = append(out.Variants, activities.VariantStats{Version: v, Requests: f.reqs[v], Errors: f.errs[v]})
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

func TestCanaryWithoutTrafficIsNotPromoted(t *testing.T) {
	f := &fakeServer{perCall: 0}
	st := runCanary(t, f, 1)
	if st.Deployment.Promoted {
		t.Fatalf("promoted without any traffic: %+v", st.Deployment)
	}
	if !strings.Contains(st.Deployment.Reason, "inconclusive") {
		t.Errorf("reason %q", st.Deployment.Reason)
	}
	if n := len(st.Steps); n != canaryConfig().MaxWaits+1 {
		t.Errorf("%d analyses, want %d (MaxWaits+1)", n, canaryConfig().MaxWaits+1)
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
