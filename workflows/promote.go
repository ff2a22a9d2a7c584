package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
)

// PromoteID is the workflow ID of a model alias's promotion or rollback,
// promote/<model>/<alias>: one runs at a time per model and alias, and
// starting a second while one runs is refused.
var PromoteID = activities.PromoteID

// PromoteStep is the step name the promote workflow's approval goes by:
// kiln approve promote/<model>/<alias> promote --reason "...".
const PromoteStep = "promote"

// PromoteInput asks to point an alias at a version, or to roll it back.
type PromoteInput struct {
	Model string `json:"model"`
	Alias string `json:"alias"`
	// To is the version to promote; ignored when Rollback is set.
	To int64 `json:"to,omitempty"`
	// Rollback moves the alias back to the version it held before the
	// current one (activities.PreviousVersion). Rollbacks need no approval.
	Rollback bool `json:"rollback,omitempty"`
	// Reason and Actor go into the alias history.
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
	// ApprovalTimeout bounds the wait for an approval; 0 waits forever.
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
}

// PromoteStatus is the promote workflow's state (query "status") and result.
type PromoteStatus struct {
	Model    string `json:"model"`
	Alias    string `json:"alias"`
	Rollback bool   `json:"rollback,omitempty"`
	// From and To are the alias's version before and the target (0: none).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// State is "planning", "waiting" (for an approval), "moving", "done"
	// or "failed".
	State string `json:"state"`
	// Approval is the decision, when the target required one.
	Approval *activities.ApprovalRef `json:"approval,omitempty"`
	// Event is the alias history entry of the move (Noop: nothing moved).
	Event *activities.PromoteAliasOutput `json:"event,omitempty"`
}

// PromoteWorkflow moves a registry alias to a version (or back, for a
// rollback) as a durable, auditable operation: it plans the move (the target
// must exist and not be rejected), waits for an approval when the version's
// spec listed the alias under register.require_approval (the "approve"
// Update, as kiln approve sends it, with step PromoteStep), then moves the
// alias by compare-and-swap on the version it planned from, so a retried
// activity never moves it twice and a concurrent move is refused, not lost.
func PromoteWorkflow(ctx workflow.Context, in PromoteInput) (PromoteStatus, error) {
	st := &PromoteStatus{Model: in.Model, Alias: in.Alias, Rollback: in.Rollback, To: in.To, State: "planning"}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (PromoteStatus, error) { return *st, nil }); err != nil {
		return *st, err
	}
	fail := func(err error) (PromoteStatus, error) {
		st.State = "failed"
		return *st, err
	}
	if strings.TrimSpace(in.Reason) == "" || in.Actor == "" {
		return fail(temporal.NewNonRetryableApplicationError("a promotion needs a reason and an actor", ErrTypeInvalidInput, nil))
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
	})
	var plan activities.PlanPromotionOutput
	if err := workflow.ExecuteActivity(withSummary(actx, "plan "+in.Model+"@"+in.Alias), a.PlanPromotion,
		activities.PlanPromotionInput{Model: in.Model, Alias: in.Alias, To: in.To, Rollback: in.Rollback}).Get(ctx, &plan); err != nil {
		return fail(err)
	}
	st.From, st.To = plan.Current, plan.To

	if plan.NeedsApproval {
		st.State = "waiting"
		if err := awaitPromoteApproval(ctx, in, st); err != nil {
			return fail(err)
		}
	}

	st.State = "moving"
	reason := in.Reason
	if st.Approval != nil {
		reason = fmt.Sprintf("%s (approved by %s: %s)", in.Reason, st.Approval.By, st.Approval.Reason)
	}
	var moved activities.PromoteAliasOutput
	if err := workflow.ExecuteActivity(withSummary(actx, fmt.Sprintf("%s@%s → v%d", in.Model, in.Alias, plan.To)), a.PromoteAlias,
		activities.PromoteAliasInput{
			Model: in.Model, Alias: in.Alias, From: plan.Current, To: plan.To,
			Actor: in.Actor, Reason: reason, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		}).Get(ctx, &moved); err != nil {
		return fail(err)
	}
	st.Event, st.State = &moved, "done"
	return *st, nil
}

// awaitPromoteApproval installs the approve Update and waits for a decision
// (or in.ApprovalTimeout). A rejection or a timeout is a non-retryable
// failure; the alias does not move.
func awaitPromoteApproval(ctx workflow.Context, in PromoteInput, st *PromoteStatus) error {
	var decision *activities.ApprovalRef
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove,
		func(ctx workflow.Context, d ApproveInput) (activities.ApprovalRef, error) {
			ref := &activities.ApprovalRef{Approved: d.Approve, By: d.Actor, Reason: d.Reason, At: workflow.Now(ctx), Decision: "rejected"}
			if d.Approve {
				ref.Decision = "approved"
			}
			decision = ref
			st.Approval = ref
			return *ref, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d ApproveInput) error {
			switch {
			case d.Step != PromoteStep:
				return fmt.Errorf("this promotion has no step %q; its approval step is %q", d.Step, PromoteStep)
			case decision != nil:
				return fmt.Errorf("the promotion was already %s by %s", decision.Decision, decision.By)
			case strings.TrimSpace(d.Reason) == "":
				return errors.New("a reason is required (--reason)")
			case d.Actor == "":
				return errors.New("the decision needs an actor")
			}
			return nil
		}})
	if err != nil {
		return err
	}
	decided := func() bool { return decision != nil }
	if in.ApprovalTimeout > 0 {
		ok, err := workflow.AwaitWithTimeout(ctx, in.ApprovalTimeout, decided)
		if err != nil {
			return err
		}
		if !ok {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("no decision within %s", in.ApprovalTimeout), "ApprovalTimeout", nil)
		}
	} else if err := workflow.Await(ctx, decided); err != nil {
		return err
	}
	if !decision.Approved {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("rejected by %s: %s", decision.By, decision.Reason), "Rejected", nil)
	}
	return nil
}
