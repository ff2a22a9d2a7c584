package cli

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
	"github.com/kiln-ml/kiln/workflows"
)

func newRunsCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, inspect and cancel pipeline runs",
	}
	cmd.AddCommand(newRunsListCmd(cfg), newRunsShowCmd(cfg), newRunsCancelCmd(cfg), newRunsCompareCmd(cfg))
	return cmd
}

// runRow is one line of `kiln runs list`.
type runRow struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Pipeline   string    `json:"pipeline"`
	Status     string    `json:"status"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Model      string    `json:"model,omitempty"`
	// Metrics are the run's evaluation metrics (runs list --metrics).
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

var statusQuery = map[string]string{
	"running": "Running", "completed": "Completed", "failed": "Failed",
	"canceled": "Canceled", "terminated": "Terminated", "timedout": "TimedOut",
}

func newRunsListCmd(cfg *Config) *cobra.Command {
	var pipeline, status, trigger, since string
	var limit int
	var withMetrics bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pipeline runs, newest first (a Temporal visibility query)",
		Example: `  kiln runs list
  kiln runs list --pipeline churn --status failed
  kiln runs list --trigger drift --since 1h
  kiln runs list --json --limit 100
  kiln runs list --pipeline churn --metrics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if limit <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--limit must be positive, got %d", limit)}
			}
			q := fmt.Sprintf("WorkflowType = '%s'", activities.WorkflowPipeline)
			if pipeline != "" {
				q += fmt.Sprintf(" AND %s = '%s'", workflows.AttrPipeline.GetName(), strings.ReplaceAll(pipeline, "'", ""))
			}
			if status != "" {
				s, ok := statusQuery[strings.ToLower(status)]
				if !ok {
					return &exitError{code: 2, err: fmt.Errorf("--status %q: use running, completed, failed, canceled, terminated or timedout", status)}
				}
				q += " AND ExecutionStatus = '" + s + "'"
			}
			if trigger != "" {
				q += fmt.Sprintf(" AND %s = '%s'", workflows.AttrTrigger.GetName(), strings.ReplaceAll(trigger, "'", ""))
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				q += " AND StartTime >= '" + t.UTC().Format(time.RFC3339Nano) + "'"
			}
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			var rows []runRow
			var token []byte
			for len(rows) < limit {
				resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
					Namespace: cfg.Namespace, Query: q, PageSize: int32(min(limit-len(rows), 1000)), NextPageToken: token,
				})
				if err != nil {
					return fmt.Errorf("listing runs: %w", err)
				}
				for _, e := range resp.GetExecutions() {
					r := runRow{
						WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
						Status:  strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
						Started: e.GetStartTime().AsTime(),
					}
					if e.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING && e.GetCloseTime() != nil {
						r.Ended = e.GetCloseTime().AsTime()
					}
					attrs := e.GetSearchAttributes().GetIndexedFields()
					r.Pipeline = payloadString(attrs[workflows.AttrPipeline.GetName()])
					r.Trigger = payloadString(attrs[workflows.AttrTrigger.GetName()])
					if m := payloadString(attrs[workflows.AttrModel.GetName()]); m != "" {
						r.Model = m
						if v := payloadInt(attrs[workflows.AttrModelVersion.GetName()]); v > 0 {
							r.Model = fmt.Sprintf("%s:%d", m, v)
						}
					}
					rows = append(rows, r)
				}
				token = resp.GetNextPageToken()
				if len(token) == 0 {
					break
				}
			}
			if withMetrics {
				// Each run's evaluation metrics, from its status (a query,
				// or a closed run's result).
				for i := range rows {
					if st, _, _, err := readRunStatus(ctx, c, rows[i].WorkflowID); err == nil {
						if ev := st.Artifacts().Evaluation; ev != nil {
							rows[i].Metrics = ev.Metrics
						}
					}
				}
			}
			if cfg.JSON {
				if rows == nil {
					rows = []runRow{}
				}
				return printJSON(cfg.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cfg.stdout, "No runs. Start one with: kiln run pipelines/churn.yaml")
				return nil
			}
			var cols []string
			if withMetrics {
				cols = runMetricColumns(rows)
			}
			t := newTable(cfg.stdout, append([]string{"RUN", "STATUS", "STARTED", "DURATION", "TRIGGER", "MODEL"}, upper(cols)...)...)
			for _, r := range rows {
				end := r.Ended
				if end.IsZero() {
					end = time.Now()
				}
				row := []string{r.WorkflowID, r.Status, when(r.Started), duration(end.Sub(r.Started)), r.Trigger, r.Model}
				for _, c := range cols {
					row = append(row, metric(r.Metrics, c))
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&pipeline, "pipeline", "", "only runs of this pipeline")
	f.StringVar(&status, "status", "", "only runs in this state: running, completed, failed, canceled, terminated, timedout")
	f.StringVar(&trigger, "trigger", "", "only runs started this way: cli or drift")
	f.StringVar(&since, "since", "", "only runs started after this: a duration back from now (10m, 7d), an RFC 3339 time or a date")
	f.IntVar(&limit, "limit", 20, "at most this many runs")
	f.BoolVar(&withMetrics, "metrics", false, "add each run's evaluation metrics (AUC, accuracy, F1, or RMSE, MAE, R²); reads every listed run")
	return cmd
}

// runMetricColumns are the metric columns of runs list --metrics, picked
// as models show picks them.
func runMetricColumns(rows []runRow) []string {
	vs := make([]registry.Version, len(rows))
	for i, r := range rows {
		vs[i].Metrics = r.Metrics
	}
	return metricColumns(vs)
}

// sinceFlag reads an optional --since (zero time when empty); a bad value
// is a usage error (exit code 2).
func sinceFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseSince(s, time.Now())
	if err != nil {
		return t, &exitError{code: 2, err: err}
	}
	return t, nil
}

// parseSince reads --since: a duration before now (Go's, or whole days
// as 7d), an RFC 3339 time, or a local date.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration (10m, 2h, 7d), an RFC 3339 time (2026-11-25T10:00:00Z) or a date (2026-11-25)", s)
}

func payloadString(p *commonpb.Payload) string {
	var s string
	if p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	}
	return s
}

func payloadInt(p *commonpb.Payload) int64 {
	var n int64
	if p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &n)
	}
	return n
}

// runWorkflowID accepts a workflow ID, or <pipeline>/<run> without the prefix.
func runWorkflowID(arg string) string {
	if strings.HasPrefix(arg, "pipeline/") || strings.HasPrefix(arg, "promote/") || strings.HasPrefix(arg, "canary/") {
		return arg
	}
	return "pipeline/" + arg
}

// bareRunID matches a run ID without its pipeline: 20261203-074909-bee2.
var bareRunID = regexp.MustCompile(`^\d{8}-\d{6}-[0-9a-z]+$`)

// resolveRun turns what a user typed for a run into its workflow ID: a
// full ID, one without "pipeline/", or a bare run ID (found among the
// pipeline runs, newest first). A child workflow's ID (a foreach chunk or a
// scoring shard, as the Temporal UI lists them) resolves to its run, with
// a note on stderr saying so.
func resolveRun(ctx context.Context, cfg *Config, c client.Client, arg string) (string, error) {
	wid := runWorkflowID(arg)
	if !strings.HasPrefix(wid, "pipeline/") {
		return wid, nil
	}
	parts := strings.Split(strings.TrimPrefix(wid, "pipeline/"), "/")
	switch {
	case len(parts) == 1 && bareRunID.MatchString(parts[0]):
		q := fmt.Sprintf("WorkflowType = '%s'", activities.WorkflowPipeline)
		var token []byte
		for seen := 0; seen < 10000; {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: cfg.Namespace, Query: q, PageSize: 1000, NextPageToken: token})
			if err != nil {
				return "", fmt.Errorf("looking up run %s: %w", parts[0], err)
			}
			for _, e := range resp.GetExecutions() {
				if id := e.GetExecution().GetWorkflowId(); strings.HasSuffix(id, "/"+parts[0]) {
					return id, nil
				}
			}
			seen += len(resp.GetExecutions())
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		return "", &exitError{code: 1, err: fmt.Errorf("no pipeline run has the ID %s (kiln runs list shows the runs)", parts[0])}
	case len(parts) > 2 && bareRunID.MatchString(parts[1]):
		run := "pipeline/" + parts[0] + "/" + parts[1]
		fmt.Fprintf(cfg.stderr, "note: %s is a child workflow of run %s (its %s step); showing the run. The Temporal UI shows the child: %s\n",
			wid, run, parts[2], cfg.workflowURL(wid, ""))
		return run, nil
	}
	return wid, nil
}

func newRunsShowCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run's steps: status, duration and outputs",
		Long: `Show a pipeline run: its status, then one line per step with its status,
duration and outputs (rows, metrics, model version, scored file). RUN is the
workflow ID printed by kiln run (pipeline/<name>/<run>), with or without the
"pipeline/" prefix, or the bare run ID (20261125-104512-a1b2). A child
workflow's ID copied from the Temporal UI (.../<run>/<step>/...) shows its run.`,
		Example: `  kiln runs show pipeline/churn/20261125-104512-a1b2
  kiln runs show churn/20261125-104512-a1b2 --json
  kiln runs show 20261125-104512-a1b2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			st, runID, _, err := readRunStatus(ctx, c, wid)
			if err != nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, st)
			}
			printRun(cfg, st, cfg.workflowURL(wid, runID))
			printCanaryEvidence(ctx, cfg, c, st)
			return nil
		},
	}
	return cmd
}

// readRunStatus reads a run's status. A closed run is read from its
// history, with no worker: a completed run's result, or the final status a
// failed or canceled run keeps in its memo (workflows.MemoStatus). An open
// run (or one recorded before the memo) answers the status query, which
// needs a worker. running tells whether the run is still open.
func readRunStatus(ctx context.Context, c client.Client, wid string) (st workflows.RunStatus, runID string, running bool, err error) {
	d, err := c.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		return st, "", false, fmt.Errorf("run %s: %w", wid, err)
	}
	info := d.GetWorkflowExecutionInfo()
	runID = info.GetExecution().GetRunId()
	running = info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	if !running {
		if p := info.GetMemo().GetFields()[workflows.MemoStatus]; p != nil {
			if derr := converter.GetDefaultDataConverter().FromPayload(p, &st); derr == nil && st.WorkflowID != "" {
				return st, runID, running, nil
			}
		}
		if info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			if gerr := c.GetWorkflow(ctx, wid, runID).Get(ctx, &st); gerr == nil && st.WorkflowID != "" {
				return st, runID, running, nil
			}
		}
	}
	st, qerr := queryStatus(ctx, c, wid, runID)
	if qerr == nil {
		return st, runID, running, nil
	}
	if !running {
		if gerr := c.GetWorkflow(ctx, wid, runID).Get(ctx, &st); gerr == nil || st.WorkflowID != "" {
			return st, runID, running, nil
		}
	}
	return st, runID, running, fmt.Errorf("run %s: no worker answered its status query (%v); start `kiln dev` or `kiln worker`", wid, qerr)
}

// stepLabel is a step's STATUS: its status, but "cached" or "reused" for a
// completed step whose result came from the step cache or a resumed run.
func stepLabel(s workflows.StepStatus) string {
	switch {
	case s.Status != workflows.StatusCompleted:
		return s.Status
	case s.Reused:
		return "reused"
	case s.Cached:
		return "cached"
	}
	return s.Status
}

// stepOutput is a step's OUTPUT: its error, why it was skipped, the
// approval decision (who, when, why), the foreach counts, or its summary.
func stepOutput(wid string, s workflows.StepStatus) string {
	switch {
	case s.Error != "":
		if s.Uses == pipelines.StepApproval && !s.Ended.IsZero() {
			return fmt.Sprintf("%s (at %s)", s.Error, when(s.Ended))
		}
		return s.Error
	case s.Status == workflows.StatusSkipped && s.SkipReason != "":
		return s.SkipReason
	case s.Status == workflows.StatusWaiting:
		return fmt.Sprintf("waiting for a decision: kiln approve %s %s --reason ... [--reject]", wid, s.Name)
	}
	if ap := s.Artifacts.Approval; ap != nil {
		msg := fmt.Sprintf("%s by %s at %s", ap.Decision, ap.By, when(ap.At))
		if ap.Reason != "" {
			msg += ": " + ap.Reason
		}
		return msg
	}
	if fe := s.Artifacts.Foreach; fe != nil {
		return fmt.Sprintf("%d items: %d succeeded, %d failed, %d cached", fe.Items, fe.Succeeded, fe.Failed, fe.Cached)
	}
	return s.Summary
}

// printRun prints a run's header, its step table and its main outputs.
func printRun(cfg *Config, st workflows.RunStatus, link string) {
	out := cfg.stdout
	end := st.Ended
	if end.IsZero() {
		end = time.Now()
	}
	fmt.Fprintf(out, "Run      %s\n", st.WorkflowID)
	fmt.Fprintf(out, "Status   %s after %s (started %s)\n", st.Status, duration(end.Sub(st.Started)), when(st.Started))
	if st.TriggeredBy != "" {
		fmt.Fprintf(out, "Trigger  %s\n", st.TriggeredBy)
	}
	if st.LogicalDate != "" {
		fmt.Fprintf(out, "Date     %s (logical date: what the run is about)\n", st.LogicalDate)
	}
	if st.SpecHash != "" {
		fmt.Fprintf(out, "Spec     sha256 %s\n", st.SpecHash[:min(12, len(st.SpecHash))])
	}
	fmt.Fprintf(out, "UI       %s\n\n", link)
	t := newTable(out, "STEP", "USES", "STATUS", "DURATION", "OUTPUT")
	for _, s := range st.Steps {
		d := "-"
		if !s.Started.IsZero() {
			e := s.Ended
			if e.IsZero() {
				e = time.Now()
			}
			d = duration(e.Sub(s.Started))
		}
		t.row(s.Name, string(s.Uses), stepLabel(s), d, stepOutput(st.WorkflowID, s))
	}
	_ = t.flush()
	a := st.Artifacts()
	fmt.Fprintln(out)
	if a.Model != nil {
		if a.Model.Rejected {
			fmt.Fprintf(out, "Model    %s:%d (rejected: kept for the record, no alias)\n", a.Model.Name, a.Model.Version)
		} else {
			fmt.Fprintf(out, "Model    %s:%d\n", a.Model.Name, a.Model.Version)
		}
	}
	if ev := a.Evaluation; ev != nil && ev.Report != "" {
		verdict := "passed"
		if !ev.Passed {
			verdict = "REJECTED"
		}
		fmt.Fprintf(out, "Evaluation %s\n", verdict)
		for _, line := range strings.Split(ev.Report, "\n") {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
	if a.Scored != nil {
		fmt.Fprintf(out, "Scored   %s (%d rows)\n", a.Scored.URI, a.Scored.Rows)
	}
	if r := a.Report; r != nil {
		fmt.Fprintf(out, "Report   %s (%d/%d features drifted; kiln reports show %s %s)\n", r.HTML, r.DriftedColumns, r.Columns, st.Pipeline, r.RunKey)
	}
	if a.Deployment != nil {
		where := a.Deployment.Server
		if len(a.Deployment.Servers) > 1 {
			where = strings.Join(a.Deployment.Servers, ", ")
		}
		fmt.Fprintf(out, "Deployed %s v%d to %s: %s (%s)\n", a.Deployment.Model, a.Deployment.Version, where, a.Deployment.Outcome, a.Deployment.Reason)
	}
	if st.Error != "" {
		fmt.Fprintf(out, "Error    %s\n", st.Error)
	}
}

func newRunsCancelCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a running pipeline; running containers are stopped and removed",
		Example: `  kiln runs cancel pipeline/churn/20261125-104512-a1b2
  kiln runs cancel churn/20261125-104512-a1b2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			if err := c.CancelWorkflow(ctx, wid, ""); err != nil {
				return fmt.Errorf("canceling %s: %w", wid, err)
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{"workflow_id": wid, "cancel_requested": true})
			}
			fmt.Fprintf(cfg.stdout, "Cancellation requested for %s\n", wid)
			return nil
		},
	}
}
