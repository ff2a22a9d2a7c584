package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/workflows"
)

// approveTimeout bounds the wait for a run to accept or refuse a decision: a
// worker must be up to run the workflow's Update handler.
const approveTimeout = time.Minute

func newApproveCmd(cfg *Config) *cobra.Command {
	var (
		reason string
		reject bool
		actor  string
	)
	cmd := &cobra.Command{
		Use:   "approve RUN STEP --reason REASON",
		Short: "Approve (or --reject) an approval step that is waiting for a decision",
		Long: `Decide an approval step of a running pipeline. RUN is the workflow ID printed
by kiln run (pipeline/<name>/<run>), with or without the "pipeline/" prefix;
STEP is the approval step, shown as "waiting" by kiln runs show.

The decision is sent to the run as a Temporal Update and kept in its history
with who decided, when and why (kiln runs show prints it). Approving lets the
steps after STEP run; --reject fails STEP and so the run.

The run refuses a decision, and kiln approve exits with code 1, when STEP is
not a step of RUN, is not an approval step, is not waiting for a decision, or
when you are not one of the step's approvers (its "approvers" list in the
spec; an empty list lets anyone decide). --reason is required. You decide as
the local user unless --as names someone else.

A canary rollout that pauses (no canary traffic for max_waits intervals, no
verdict after max_intervals, or require_approval before promotion) waits for
the same decision on its own workflow: RUN is canary/<model> and STEP the
deploy step (kiln runs show prints the command). Approving a pause looks
again; approving a passed canary promotes it; --reject rolls it back.`,
		Example: `  kiln approve churn/20261125-104512-a1b2 gate --reason "AUC up 2 points, drift checks clean"
  kiln approve pipeline/churn/20261125-104512-a1b2 gate --reject --reason "holdout too small"
  kiln approve churn/20261125-104512-a1b2 gate --reason "on call" --as ana --json
  kiln approve canary/churn deploy --reason "quiet night, traffic resumes at 8"
  kiln approve canary/churn deploy --reject --reason "p99 too close to the SLO"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return &exitError{code: 2, err: errors.New(`--reason is required: say why you decide (it is kept in the run's history), e.g. --reason "metrics reviewed"`)}
			}
			if actor == "" {
				actor = activities.CurrentUser()
			}
			step := args[1]
			in := workflows.ApproveInput{Step: step, Approve: !reject, Reason: reason, Actor: actor}
			ctx := cmd.Context()
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			wid, err := resolveRun(ctx, cfg, c, args[0])
			if err != nil {
				return err
			}
			ref, err := sendApproval(ctx, c, wid, in)
			if err != nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{"workflow_id": wid, "step": step, "approval": ref})
			}
			verb := "Approved"
			if !ref.Approved {
				verb = "Rejected"
			}
			fmt.Fprintf(cfg.stdout, "%s step %s of %s\n  By:     %s at %s\n  Reason: %s\n", verb, step, wid, ref.By, when(ref.At), ref.Reason)
			if ref.Approved {
				fmt.Fprintf(cfg.stdout, "  Follow: kiln runs show %s\n", wid)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why you decide, kept in the run's history (required)")
	f.BoolVar(&reject, "reject", false, "reject instead of approving: the step, and so the run, fails")
	f.StringVar(&actor, "as", "", "who decides (default: the local user); must be one of the step's approvers")
	return cmd
}

// sendApproval sends the decision to the run and waits for the run to apply
// it. A decision the run refuses (its Update validator) is an exit code 1
// error that says why.
func sendApproval(ctx context.Context, c client.Client, wid string, in workflows.ApproveInput) (activities.ApprovalRef, error) {
	var ref activities.ApprovalRef
	uctx, cancel := context.WithTimeout(ctx, approveTimeout)
	defer cancel()
	h, err := c.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID:   wid,
		UpdateName:   workflows.UpdateApprove,
		Args:         []any{in},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(uctx, &ref)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return ref, nil
	case errors.As(err, &appErr):
		return ref, &exitError{code: 1, err: fmt.Errorf("%s refused the decision on step %q: %s", wid, in.Step, appErr.Message())}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return ref, &exitError{code: 1, err: fmt.Errorf("%s did not answer within %s: is a worker running? Start `kiln dev` or `kiln worker`", wid, approveTimeout)}
	}
	return ref, &exitError{code: 1, err: fmt.Errorf("deciding step %q of %s: %w", in.Step, wid, err)}
}
