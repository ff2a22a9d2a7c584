package workflows

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
)

// promoteEnv is a test workflow environment running PromoteWorkflow with the
// real activities on a fresh SQLite registry holding versions.
func promoteEnv(t *testing.T, versions ...registry.Version) (*testsuite.TestWorkflowEnvironment, *registry.Registry) {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	for _, v := range versions {
		if _, _, err := reg.Register(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(PromoteWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPromote})
	env.RegisterActivity(&activities.Activities{Registry: reg})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PromoteID("churn", "production")})
	return env, reg
}

func ready(bundle string, approval ...string) registry.Version {
	return registry.Version{Model: "churn", BundleURI: bundle, RequireApproval: approval}
}

func TestPromoteWorkflow(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		versions []registry.Version
		// before are alias moves made before the workflow starts.
		before []int64
		in     PromoteInput
		// approve, if set, is sent as an Update while the workflow waits.
		approve *ApproveInput
		want    int64 // production afterwards (0: unset)
		wantErr string
		moves   int // alias events afterwards
	}{
		{name: "promote", versions: []registry.Version{ready("b1"), ready("b2")}, before: []int64{1},
			in: PromoteInput{To: 2}, want: 2, moves: 2},
		{name: "first promotion", versions: []registry.Version{ready("b1")},
			in: PromoteInput{To: 1}, want: 1, moves: 1},
		{name: "already there is a no-op", versions: []registry.Version{ready("b1")}, before: []int64{1},
			in: PromoteInput{To: 1}, want: 1, moves: 1},
		{name: "rejected version", versions: []registry.Version{ready("b1"), {Model: "churn", BundleURI: "b2", Status: registry.StatusRejected}}, before: []int64{1},
			in: PromoteInput{To: 2}, want: 1, moves: 1, wantErr: "rejected"},
		{name: "missing version", versions: []registry.Version{ready("b1")},
			in: PromoteInput{To: 7}, want: 0, wantErr: "not found"},
		{name: "rollback", versions: []registry.Version{ready("b1"), ready("b2"), ready("b3")}, before: []int64{1, 2, 3},
			in: PromoteInput{Rollback: true}, want: 2, moves: 4},
		{name: "rollback with nothing before", versions: []registry.Version{ready("b1")}, before: []int64{1},
			in: PromoteInput{Rollback: true}, want: 1, moves: 1, wantErr: "no earlier version"},
		{name: "approved", versions: []registry.Version{ready("b1"), ready("b2", "production")}, before: []int64{1},
			in: PromoteInput{To: 2}, approve: &ApproveInput{Step: PromoteStep, Approve: true, Reason: "reviewed", Actor: "ana"}, want: 2, moves: 2},
		{name: "approval rejected", versions: []registry.Version{ready("b1"), ready("b2", "production")}, before: []int64{1},
			in: PromoteInput{To: 2}, approve: &ApproveInput{Step: PromoteStep, Approve: false, Reason: "holdout too small", Actor: "ana"}, want: 1, moves: 1, wantErr: "rejected by ana"},
		{name: "approval times out", versions: []registry.Version{ready("b1"), ready("b2", "production")}, before: []int64{1},
			in: PromoteInput{To: 2, ApprovalTimeout: time.Hour}, want: 1, moves: 1, wantErr: "no decision"},
		{name: "staging needs no approval", versions: []registry.Version{ready("b1", "production")},
			in: PromoteInput{To: 1, Alias: "staging"}, moves: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, reg := promoteEnv(t, tt.versions...)
			for _, v := range tt.before {
				if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: "churn", Alias: "production", To: v}); err != nil {
					t.Fatal(err)
				}
			}
			in := tt.in
			in.Model, in.Reason, in.Actor = "churn", "test", "bob"
			if in.Alias == "" {
				in.Alias = "production"
			}
			if tt.approve != nil {
				// A decision for another step is refused first.
				env.RegisterDelayedCallback(func() {
					env.UpdateWorkflow(UpdateApprove, "bad", &testsuite.TestUpdateCallback{
						OnReject:   func(error) {},
						OnAccept:   func() { t.Error("a decision for step \"sign-off\" was accepted") },
						OnComplete: func(any, error) {},
					}, ApproveInput{Step: "sign-off", Approve: true, Reason: "x", Actor: "ana"})
					env.UpdateWorkflow(UpdateApprove, "decide", &testsuite.TestUpdateCallback{
						OnReject: func(err error) { t.Errorf("decision refused: %v", err) },
						OnAccept: func() {}, OnComplete: func(any, error) {},
					}, *tt.approve)
				}, time.Minute)
			}
			env.ExecuteWorkflow(activities.WorkflowPromote, in)
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := env.GetWorkflowError()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				var app *temporal.ApplicationError
				if !errors.As(err, &app) || !app.NonRetryable() {
					t.Errorf("error %v is retryable", err)
				}
			} else if err != nil {
				t.Fatalf("workflow: %v", err)
			}
			cur, _, err := reg.Alias(ctx, "churn", in.Alias)
			if err != nil {
				t.Fatal(err)
			}
			if in.Alias == "production" && cur != tt.want {
				t.Errorf("production = v%d, want v%d", cur, tt.want)
			}
			h, err := reg.AliasHistory(ctx, "churn", "")
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				t.Fatal(err)
			}
			if len(h) != tt.moves {
				t.Errorf("%d alias moves, want %d: %+v", len(h), tt.moves, h)
			}
			if tt.wantErr == "" && tt.moves > len(tt.before) {
				last := h[len(h)-1]
				if last.RunID != PromoteID("churn", "production") || last.Actor != "bob" || !strings.HasPrefix(last.Reason, "test") {
					t.Errorf("last move %+v does not name the workflow, actor and reason", last)
				}
				if tt.approve != nil && !strings.Contains(last.Reason, "approved by ana: reviewed") {
					t.Errorf("last move's reason %q does not carry the approval", last.Reason)
				}
			}
		})
	}
}

// TestPromoteAliasRetryMovesOnce: the activity's first attempt moves the
// alias and the worker dies before reporting; the retry finds the alias
// already moved and records nothing.
func TestPromoteAliasRetryMovesOnce(t *testing.T) {
	ctx := context.Background()
	_, reg := promoteEnv(t, ready("b1"), ready("b2"), ready("b3"))
	if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: "churn", Alias: "production", To: 1}); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Registry: reg}
	in := activities.PromoteAliasInput{Model: "churn", Alias: "production", From: 1, To: 2, Actor: "bob", Reason: "r", WorkflowID: "promote/churn/production"}
	first, err := acts.PromoteAlias(ctx, in)
	if err != nil || first.Noop {
		t.Fatalf("first attempt = %+v, %v", first, err)
	}
	retry, err := acts.PromoteAlias(ctx, in)
	if err != nil || !retry.Noop {
		t.Fatalf("retry = %+v, %v; want a no-op", retry, err)
	}
	h, _ := reg.AliasHistory(ctx, "churn", "production")
	if len(h) != 2 {
		t.Errorf("%d moves, want 2 (the retry must not add one)", len(h))
	}
	// Someone else moved it meanwhile: a stale plan is refused, not forced.
	if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: "churn", Alias: "production", To: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.PromoteAlias(ctx, in); err == nil || !strings.Contains(err.Error(), "moved while this promotion ran") {
		t.Errorf("stale move = %v, want a refusal", err)
	}
}

func TestPreviousVersion(t *testing.T) {
	ev := func(from, to int64) registry.AliasEvent { return registry.AliasEvent{From: from, To: to} }
	tests := []struct {
		name    string
		history []registry.AliasEvent
		want    int64
		ok      bool
	}{
		{"empty", nil, 0, false},
		{"one version", []registry.AliasEvent{ev(0, 1)}, 0, false},
		{"two", []registry.AliasEvent{ev(0, 1), ev(1, 2)}, 1, true},
		{"after a rollback, the one before", []registry.AliasEvent{ev(0, 1), ev(1, 2), ev(2, 3), ev(3, 2)}, 1, true},
		{"removed then set", []registry.AliasEvent{ev(0, 1), ev(1, 2), ev(2, 0), ev(0, 3)}, 0, false},
		{"skip ahead", []registry.AliasEvent{ev(0, 1), ev(1, 3), ev(3, 2)}, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := activities.PreviousVersion(tt.history)
			if got != tt.want || ok != tt.ok {
				t.Errorf("PreviousVersion = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
