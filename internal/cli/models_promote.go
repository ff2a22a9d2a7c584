package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/workflows"
)

// promoteFlags are the flags promote and rollback share.
type promoteFlags struct {
	reason, actor string
	wait          bool
	timeout       time.Duration
}

func (p *promoteFlags) add(cmd *cobra.Command, reasonRequired bool) {
	f := cmd.Flags()
	help := "why, kept in the alias history"
	if reasonRequired {
		help += " (required)"
	}
	f.StringVar(&p.reason, "reason", "", help)
	f.StringVar(&p.actor, "as", "", "who promotes (default: the local user)")
	f.BoolVar(&p.wait, "wait", true, "wait for the workflow to finish (--wait=false returns once it started)")
	f.DurationVar(&p.timeout, "approval-timeout", 0, "fail the promotion if no approval comes within this time (0: wait forever)")
}

func newModelsPromoteCmd(cfg *Config) *cobra.Command {
	var (
		to string
		pf promoteFlags
	)
	cmd := &cobra.Command{
		Use:   "promote NAME VERSION --to ALIAS --reason REASON",
		Short: "Point an alias (e.g. production) at a version, through a promote workflow",
		Long: `Promote a model version: start the workflow promote/NAME/ALIAS, which checks
the version (it must exist and not be rejected), waits for an approval if the
version's spec lists ALIAS under register.require_approval, then moves the
alias by compare-and-swap. The move is kept in the alias history with who,
when, why and the workflow (kiln models history NAME --alias ALIAS).

One promotion runs per model and alias at a time: while one runs (for example
waiting for its approval) another is refused; approve it with
  kiln approve promote/NAME/ALIAS promote --reason "..."
or cancel it in the Temporal UI. A worker must be running (kiln dev or kiln worker).`,
		Example: `  kiln models promote churn 3 --to production --reason "AUC +2 points, drift clean"
  kiln models promote churn 3 --to staging --reason "try it" --wait=false --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || v < 1 {
				return &exitError{code: 2, err: fmt.Errorf("VERSION must be a positive number, not %q", args[1])}
			}
			if to == "" {
				return &exitError{code: 2, err: errors.New("--to ALIAS is required, e.g. --to production")}
			}
			if strings.TrimSpace(pf.reason) == "" {
				return &exitError{code: 2, err: errors.New(`--reason is required: say why (it is kept in the alias history), e.g. --reason "metrics reviewed"`)}
			}
			return startPromotion(cmd.Context(), cfg, pf, workflows.PromoteInput{Model: args[0], Alias: to, To: v})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the alias to move (required), e.g. production")
	pf.add(cmd, true)
	return cmd
}

func newModelsRollbackCmd(cfg *Config) *cobra.Command {
	var (
		alias string
		pf    promoteFlags
	)
	cmd := &cobra.Command{
		Use:   "rollback NAME --alias ALIAS",
		Short: "Move an alias back to the version it held before, through a promote workflow",
		Long: `Roll an alias back: start the workflow promote/NAME/ALIAS, which moves the
alias back to the version it pointed at before the current one (undoing the
latest promotion; rolling back twice steps back twice). Rollbacks need no
approval: the version was live before. The move is kept in the alias history.`,
		Example: `  kiln models rollback churn --alias production --reason "error rate up since v4"
  kiln models rollback churn --alias production --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pf.reason == "" {
				pf.reason = "rollback"
			}
			return startPromotion(cmd.Context(), cfg, pf, workflows.PromoteInput{Model: args[0], Alias: alias, Rollback: true})
		},
	}
	cmd.Flags().StringVar(&alias, "alias", "production", "the alias to roll back")
	pf.add(cmd, false)
	return cmd
}

// startPromotion starts the promote workflow and, with --wait, waits for it.
func startPromotion(ctx context.Context, cfg *Config, pf promoteFlags, in workflows.PromoteInput) error {
	if _, err := registry.ParseRef(in.Model + "@" + in.Alias); err != nil {
		return &exitError{code: 2, err: err}
	}
	in.Reason, in.Actor, in.ApprovalTimeout = pf.reason, pf.actor, pf.timeout
	if in.Actor == "" {
		in.Actor = activities.CurrentUser()
	}
	c, err := cfg.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	wid := workflows.PromoteID(in.Model, in.Alias)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: wid, TaskQueue: cfg.TaskQueue,
		// A second promotion of the same alias while one runs is refused.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, activities.WorkflowPromote, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return &exitError{code: 1, err: fmt.Errorf("a promotion of %s@%s is already running (workflow %s); wait for it, approve it with\n  kiln approve %s %s --reason \"...\"\nor cancel it in the Temporal UI: %s",
			in.Model, in.Alias, wid, wid, workflows.PromoteStep, cfg.workflowURL(wid, ""))}
	}
	if err != nil {
		return fmt.Errorf("starting %s: %w", wid, err)
	}
	if !pf.wait {
		if cfg.JSON {
			return printJSON(cfg.stdout, map[string]any{"workflow_id": wid, "run_id": run.GetRunID()})
		}
		fmt.Fprintf(cfg.stdout, "Started %s\n  Follow: %s\n", wid, cfg.workflowURL(wid, run.GetRunID()))
		return nil
	}
	if !cfg.JSON {
		fmt.Fprintf(cfg.stdout, "Started %s (an approval, if the version needs one: kiln approve %s %s --reason \"...\")\n", wid, wid, workflows.PromoteStep)
	}
	var st workflows.PromoteStatus
	if err := run.Get(ctx, &st); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s failed: %w", wid, err)}
	}
	if cfg.JSON {
		return printJSON(cfg.stdout, map[string]any{"workflow_id": wid, "run_id": run.GetRunID(), "result": st})
	}
	verb := "Promoted"
	if st.Rollback {
		verb = "Rolled back"
	}
	if st.Event != nil && st.Event.Noop {
		fmt.Fprintf(cfg.stdout, "%s@%s already pointed at version %d; nothing moved\n", st.Model, st.Alias, st.To)
		return nil
	}
	fmt.Fprintf(cfg.stdout, "%s %s@%s: %s → %s\n", verb, st.Model, st.Alias, version(st.From), version(st.To))
	if st.Approval != nil {
		fmt.Fprintf(cfg.stdout, "  Approved by %s: %s\n", st.Approval.By, st.Approval.Reason)
	}
	return nil
}
