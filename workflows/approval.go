package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
)

// UpdateApprove is the Update that decides an approval step (kiln approve).
const UpdateApprove = "approve"

// ApproveInput decides one approval step.
type ApproveInput struct {
	// Step names the approval step.
	Step string `json:"step"`
	// Approve is true to approve, false to reject.
	Approve bool `json:"approve"`
	// Reason is required: it is kept in the history and shown by kiln runs show.
	Reason string `json:"reason"`
	// Actor is who decides; it must be one of the step's approvers when the
	// spec lists any.
	Actor string `json:"actor"`
}

// approvals holds a run's approval steps: which wait, and the decisions.
// Workflow code only looks entries up; it never ranges over the maps.
type approvals struct {
	spec      *pipelines.Spec
	waiting   map[string]bool
	decisions map[string]*activities.ApprovalRef
}

// register installs the approve Update. Its validator rejects, before
// anything is written to history, a decision for an unknown step, a step not
// waiting, a missing reason or an actor who is not an approver; accepted
// decisions are kept in history with who decided, when and why.
func (ap *approvals) register(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove,
		func(ctx workflow.Context, in ApproveInput) (activities.ApprovalRef, error) {
			ref := &activities.ApprovalRef{Approved: in.Approve, By: in.Actor, Reason: in.Reason, At: workflow.Now(ctx), Decision: "rejected"}
			if in.Approve {
				ref.Decision = "approved"
			}
			ap.decisions[in.Step] = ref
			return *ref, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, in ApproveInput) error {
			st := ap.spec.Step(in.Step)
			switch {
			case st == nil:
				return fmt.Errorf("this run has no step %q", in.Step)
			case st.Uses != pipelines.StepApproval:
				return fmt.Errorf("step %q is a %s step, not an approval", in.Step, st.Uses)
			case !ap.waiting[in.Step]:
				return fmt.Errorf("step %q is not waiting for a decision", in.Step)
			case strings.TrimSpace(in.Reason) == "":
				return errors.New("a reason is required (--reason)")
			case in.Actor == "":
				return errors.New("the decision needs an actor")
			}
			if list := st.Approval.Approvers; len(list) > 0 && !slices.Contains(list, in.Actor) {
				return fmt.Errorf("%s may not decide step %q (approvers: %s)", in.Actor, in.Step, strings.Join(list, ", "))
			}
			return nil
		}})
}

// wait returns a future of the approval step's output: set when someone
// decides, or when the step's timeout passes. A rejection fails the step; a
// timeout fails it or, with on_timeout: skip, skips it (errSkipped).
func (ap *approvals) wait(ctx workflow.Context, step pipelines.Step) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	cfg := step.Approval
	ap.waiting[step.Name] = true
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { ap.waiting[step.Name] = false }()
		decided := func() bool { return ap.decisions[step.Name] != nil }
		if cfg.Timeout > 0 {
			ok, err := workflow.AwaitWithTimeout(ctx, cfg.Timeout.D(), decided)
			if err != nil {
				set.Set(nil, err)
				return
			}
			if !ok {
				if cfg.OnTimeout == "skip" {
					set.Set(nil, &skipError{reason: fmt.Sprintf("no decision within %s", cfg.Timeout.D())})
					return
				}
				set.Set(nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no decision within %s", cfg.Timeout.D()), "ApprovalTimeout", nil))
				return
			}
		} else if err := workflow.Await(ctx, decided); err != nil {
			set.Set(nil, err)
			return
		}
		d := ap.decisions[step.Name]
		out := activities.StepOutput{Artifacts: activities.Artifacts{Approval: d}}
		if !d.Approved {
			set.Set(nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("rejected by %s: %s", d.By, d.Reason), "Rejected", nil))
			return
		}
		out.Summary = fmt.Sprintf("approved by %s: %s", d.By, d.Reason)
		set.Set(out, nil)
	})
	return f
}

// skipError ends a step as skipped rather than failed.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }
