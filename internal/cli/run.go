package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
	"github.com/kiln-ml/kiln/workflows"
)

func newRunCmd(cfg *Config) *cobra.Command {
	var (
		params []string
		wait   bool
		runID  string
	)
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Start a pipeline run (validate first; --wait to follow it)",
		Long: `Validate SPEC locally, then start it as the durable workflow
pipeline/<name>/<run> on the Kiln workers. Prints the run ID and its link in
the Temporal web UI. With --wait, follows the run step by step (Ctrl-C stops
following; the run goes on) and exits non-zero if the run fails.`,
		Example: `  kiln run pipelines/churn.yaml --wait
  kiln run pipelines/churn.yaml -p seed=7 -p l2=0.01
  kiln run pipelines/breast_cancer.yaml --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			path := args[0]
			text, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("reading spec: %w", err)
			}
			spec, err := pipelines.Parse(path, text, overrides)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("invalid spec:\n%w", err)}
			}
			absDir, err := filepath.Abs(filepath.Dir(path))
			if err != nil {
				return err
			}
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if runID == "" {
				runID = newRunID(time.Now())
			}
			wid := activities.PipelineID(spec.Name, runID)
			opts := client.StartWorkflowOptions{
				ID:        wid,
				TaskQueue: cfg.TaskQueue,
				Memo:      map[string]any{"spec": string(text), "spec_file": path, "params": overrides},
				TypedSearchAttributes: temporal.NewSearchAttributes(
					workflows.AttrPipeline.ValueSet(spec.Name), workflows.AttrSpecHash.ValueSet(spec.Hash), workflows.AttrTrigger.ValueSet("cli")),
				StaticSummary: fmt.Sprintf("pipeline %s from %s", spec.Name, filepath.Base(path)),
				StaticDetails: spec.Description,
			}
			in := workflows.PipelineInput{
				Spec:      activities.ValidateInput{SpecText: string(text), SpecFile: path, SpecDir: absDir, Overrides: overrides},
				CreatedBy: activities.CurrentUser(), TriggeredBy: "cli",
			}
			run, err := c.ExecuteWorkflow(ctx, opts, activities.WorkflowPipeline, in)
			if err != nil {
				return fmt.Errorf("starting %s: %w", wid, err)
			}
			link := cfg.workflowURL(wid, run.GetRunID())
			if !wait {
				if cfg.JSON {
					return printJSON(cfg.stdout, map[string]string{"workflow_id": wid, "run_id": run.GetRunID(), "ui": link})
				}
				fmt.Fprintf(cfg.stdout, "Started %s\n  UI:     %s\n  Follow: kiln runs show %s\n", wid, link, wid)
				return nil
			}
			if !cfg.JSON {
				fmt.Fprintf(cfg.stdout, "Started %s\n  UI: %s\n\n", wid, link)
			}
			st, err := follow(ctx, cfg, c, wid, run.GetRunID())
			if ctx.Err() != nil {
				fmt.Fprintf(cfg.stderr, "\nStopped following; the run goes on. See: kiln runs show %s\n", wid)
				if cfg.JSON {
					return printJSON(cfg.stdout, st) // the last status seen
				}
				return nil
			}
			if cfg.JSON {
				if perr := printJSON(cfg.stdout, st); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintln(cfg.stdout)
				printRun(cfg, st, link)
			}
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("run %s %s", wid, st.Status)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&params, "param", "p", nil, "override a pipeline parameter, name=value (repeatable)")
	f.BoolVarP(&wait, "wait", "w", false, "follow the run until it ends, printing each step")
	f.StringVar(&runID, "run-id", "", "the <run> part of the workflow ID (default: time-based)")
	return cmd
}

// newRunID is time-ordered and unique enough for humans: 20261125-104512-a1b2.
func newRunID(now time.Time) string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// follow polls a run's status query, printing step transitions and the
// progress heartbeats of running steps, until the run ends.
func follow(ctx context.Context, cfg *Config, c client.Client, wid, runID string) (workflows.RunStatus, error) {
	done := make(chan error, 1)
	var final, last workflows.RunStatus
	last.WorkflowID, last.Status = wid, workflows.StatusRunning
	go func() { done <- c.GetWorkflow(ctx, wid, runID).Get(ctx, &final) }()
	seen := map[string]string{}
	progress := map[string]string{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	report := func(st workflows.RunStatus) {
		if cfg.JSON {
			return
		}
		for _, s := range st.Steps {
			if seen[s.Name] == s.Status {
				continue
			}
			seen[s.Name] = s.Status
			switch s.Status {
			case workflows.StatusRunning:
				fmt.Fprintf(cfg.stdout, "  ▶ %-12s running\n", s.Name)
			case workflows.StatusCompleted:
				fmt.Fprintf(cfg.stdout, "  ✓ %-12s %-7s %s\n", s.Name, duration(s.Ended.Sub(s.Started)), s.Summary)
			case workflows.StatusFailed, workflows.StatusCanceled:
				fmt.Fprintf(cfg.stdout, "  ✗ %-12s %s: %s\n", s.Name, s.Status, s.Error)
			case workflows.StatusSkipped:
				fmt.Fprintf(cfg.stdout, "  - %-12s skipped\n", s.Name)
			}
		}
	}
	for {
		select {
		case err := <-done:
			if st, qerr := queryStatus(context.WithoutCancel(ctx), c, wid, runID); qerr == nil {
				final = st
			}
			report(final)
			return final, err
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
			st, err := queryStatus(ctx, c, wid, runID)
			if err != nil {
				continue
			}
			last = st
			report(st)
			if cfg.JSON {
				continue
			}
			live := pendingProgress(ctx, c, wid, runID)
			for _, s := range st.Steps {
				if s.Uses != pipelines.StepDeploy || s.Status != workflows.StatusRunning {
					continue
				}
				if m := st.Artifacts().Model; m != nil {
					if msg := canaryProgress(ctx, c, m.Name); msg != "" {
						live[s.Name] = msg
					}
				}
			}
			for name, p := range live {
				if progress[name] != p {
					progress[name] = p
					fmt.Fprintf(cfg.stdout, "    %-12s %s\n", name, p)
				}
			}
		}
	}
}

func queryStatus(ctx context.Context, c client.Client, wid, runID string) (workflows.RunStatus, error) {
	var st workflows.RunStatus
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, wid, runID, workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	err = v.Get(&st)
	return st, err
}

// canaryProgress describes a running canary rollout.
func canaryProgress(ctx context.Context, c client.Client, model string) string {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, activities.CanaryID(model), "", workflows.QueryStatus)
	if err != nil {
		return ""
	}
	var cs workflows.CanaryStatus
	if v.Get(&cs) != nil || cs.Done || cs.Stable == 0 {
		return ""
	}
	msg := fmt.Sprintf("canary v%d at %d%% (stable v%d)", cs.Canary, cs.Percent, cs.Stable)
	if n := len(cs.Steps); n > 0 {
		last := cs.Steps[n-1]
		msg += fmt.Sprintf(", last analysis %s: %s", last.Verdict, last.Reason)
	}
	return msg
}

// pendingProgress reads the latest heartbeat of each running activity.
func pendingProgress(ctx context.Context, c client.Client, wid, runID string) map[string]string {
	out := map[string]string{}
	d, err := c.DescribeWorkflowExecution(ctx, wid, runID)
	if err != nil {
		return out
	}
	dc := converter.GetDefaultDataConverter()
	for _, pa := range d.GetPendingActivities() {
		var p activities.Progress
		msg := ""
		if hd := pa.GetHeartbeatDetails(); hd != nil && len(hd.GetPayloads()) > 0 {
			if err := dc.FromPayload(hd.GetPayloads()[0], &p); err == nil {
				msg = p.Msg
				if p.Pct > 0 {
					msg = fmt.Sprintf("%3.0f%% %s", p.Pct, p.Msg)
				}
			}
		}
		if pa.GetAttempt() > 1 {
			msg = fmt.Sprintf("attempt %d: %s", pa.GetAttempt(), msg)
			if f := pa.GetLastFailure(); f != nil {
				msg += " (last failure: " + f.GetMessage() + ")"
			}
		}
		if msg != "" {
			out[pa.GetActivityId()] = msg
		}
	}
	return out
}
