package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/schedule"
)

// Reprocess modes of kiln schedules backfill.
const (
	reprocessMissing = "missing"
	reprocessFailed  = "failed"
	reprocessAll     = "all"
)

// dateState is what a backfill knows about one logical date.
type dateState struct {
	Key     string    `json:"logical_date"`
	Nominal time.Time `json:"nominal"`
	// Report is true when every report step's report exists for the date.
	Report bool `json:"report"`
	// Status is the latest run's status ("" when the date never ran).
	Status     string `json:"status,omitempty"`
	WorkflowID string `json:"workflow_id"`
	// Run is true when the backfill runs the date; Why says why or why not.
	Run bool   `json:"run"`
	Why string `json:"why"`
}

func newSchedulesBackfillCmd(cfg *Config) *cobra.Command {
	var (
		from, to, reprocess string
		dryRun, wait        bool
		timeout             time.Duration
		last                int
	)
	cmd := &cobra.Command{
		Use:   "backfill NAME --from DATE --to DATE",
		Short: "Run a schedule for past logical dates (skipping dates already done)",
		Long: `Run schedule NAME for every logical date from --from to --to (inclusive,
dates in the schedule's time zone; logical times such as 2026-12-02T14:30 for
schedules that fire more often than daily), through Temporal's schedule
backfill. Each date runs as pipeline/<name>/<date> with its own logical date
and data interval, and is marked as a backfill (kiln runs list --trigger
backfill).

--reprocess decides which dates run:
  missing  (default) dates without a report (for pipelines without a report
           step: dates without a completed run)
  failed   only dates whose latest run failed, was canceled or timed out
  all      every date; outputs and reports are replaced atomically, and the
           step cache is bypassed so the work is done again
--dry-run lists the dates and what would happen, and runs nothing.
--last N instead of --from/--to backfills the N most recent complete dates.`,
		Example: `  kiln schedules backfill nightly-churn-report --from 2026-11-01 --to 2026-11-30 --dry-run
  kiln schedules backfill nightly-churn-report --from 2026-11-01 --to 2026-11-30 --wait
  kiln schedules backfill nightly-churn-report --from 2026-11-28 --to 2026-11-30 --reprocess all
  kiln schedules backfill nightly-churn-report --last 3 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			switch {
			case last > 0 && (from != "" || to != ""):
				return &exitError{code: 2, err: errors.New("give either --last N or --from and --to, not both")}
			case last < 0:
				return &exitError{code: 2, err: fmt.Errorf("--last must be positive, got %d", last)}
			case last == 0 && (from == "" || to == ""):
				return &exitError{code: 2, err: errors.New("backfill needs --from and --to (logical dates, inclusive), or --last N")}
			}
			switch reprocess {
			case reprocessMissing, reprocessFailed, reprocessAll:
			default:
				return &exitError{code: 2, err: fmt.Errorf("--reprocess %q: use missing, failed or all", reprocess)}
			}
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := readSchedule(ctx, c, name)
			if err != nil {
				return err
			}
			if last > 0 {
				if from, to, err = lastDates(st.cron, time.Now(), last); err != nil {
					return err
				}
			}
			runs, err := st.cron.Dates(from, to)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--from %s --to %s: %w", from, to, err)}
			}
			if len(runs) == 0 {
				return &exitError{code: 1, err: fmt.Errorf("schedule %s has no runs with logical dates from %s to %s", name, from, to)}
			}
			now := time.Now()
			if last := runs[len(runs)-1]; last.Nominal.After(now) {
				return &exitError{code: 1, err: fmt.Errorf("logical date %s of schedule %s runs at %s, in the future: a backfill runs past dates only (latest possible now: %s)",
					last.Key, name, last.Nominal.In(st.cron.Location()).Format("2006-01-02 15:04 MST"), lastCompleteKey(st.cron, now))}
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			states, err := dateStates(ctx, c, cfg, reg, st, runs)
			if err != nil {
				return err
			}
			var todo []dateState
			for i := range states {
				decideBackfill(&states[i], reprocess, len(st.input.Schedule.ReportSteps) > 0)
				if states[i].Run {
					todo = append(todo, states[i])
				}
			}
			if dryRun || len(todo) == 0 {
				return printBackfillPlan(cfg, name, reprocess, states, dryRun)
			}
			bf := registry.Backfill{Schedule: name, Reprocess: reprocess, RequestedBy: activities.CurrentUser()}
			var ranges []client.ScheduleBackfill
			for _, d := range todo {
				bf.RunKeys = append(bf.RunKeys, d.Key)
				bf.Nominals = append(bf.Nominals, d.Nominal)
				// Temporal runs the firings in (Start, End].
				ranges = append(ranges, client.ScheduleBackfill{Start: d.Nominal.Add(-time.Second), End: d.Nominal, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL})
			}
			// The runs that exist now are not the backfill's: --wait waits
			// for new ones.
			before, err := runIDs(ctx, c, cfg, todoIDs(todo))
			if err != nil {
				return err
			}
			if bf, err = reg.RecordBackfill(ctx, bf); err != nil {
				return err
			}
			if err := st.handle.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: ranges}); err != nil {
				return fmt.Errorf("backfilling schedule %s: %w", name, err)
			}
			if !cfg.JSON {
				fmt.Fprintf(cfg.stdout, "Backfill %d of schedule %s: %d of %d date(s) to run (--reprocess %s)\n", bf.ID, name, len(todo), len(states), reprocess)
				for _, d := range states {
					mark := "skip"
					if d.Run {
						mark = "run "
					}
					fmt.Fprintf(cfg.stdout, "  %s %s  %s\n", mark, d.Key, d.Why)
				}
			}
			if !wait {
				if cfg.JSON {
					return printJSON(cfg.stdout, map[string]any{"backfill": bf.ID, "schedule": name, "dates": states})
				}
				fmt.Fprintf(cfg.stdout, "Follow them with: kiln runs list --pipeline %s --trigger backfill\n", st.input.Schedule.Pipeline)
				return nil
			}
			results, err := waitBackfill(ctx, c, cfg, todo, before, timeout)
			if err != nil {
				return err
			}
			failed := 0
			for i := range states {
				if r, ok := results[states[i].WorkflowID]; ok {
					states[i].Status = r
					if r != "completed" {
						failed++
					}
				}
			}
			if cfg.JSON {
				if err := printJSON(cfg.stdout, map[string]any{"backfill": bf.ID, "schedule": name, "dates": states}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cfg.stdout, "Backfill %d finished: %d run(s), %d failed\n", bf.ID, len(todo), failed)
				for _, d := range states {
					if d.Run {
						fmt.Fprintf(cfg.stdout, "  %s  %-9s %s\n", d.Key, d.Status, d.WorkflowID)
					}
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d backfilled date(s) failed", failed, len(todo))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first logical date to run (inclusive), e.g. 2026-11-01")
	f.StringVar(&to, "to", "", "last logical date to run (inclusive)")
	f.StringVar(&reprocess, "reprocess", reprocessMissing, "which dates run: missing, failed or all")
	f.BoolVar(&dryRun, "dry-run", false, "list the dates and what would happen; run nothing")
	f.BoolVar(&wait, "wait", false, "wait for the backfilled runs to finish; exit non-zero if one fails")
	f.DurationVar(&timeout, "timeout", time.Hour, "with --wait, how long to wait")
	f.IntVar(&last, "last", 0, "backfill the N most recent complete logical dates (instead of --from/--to)")
	return cmd
}

// lastDates returns the first and last run keys of the schedule's n most
// recent complete runs at now.
func lastDates(c *schedule.Cron, now time.Time, n int) (from, to string, err error) {
	r, err := c.Logical(now, true)
	if err != nil {
		return "", "", err
	}
	to, from = r.Key, r.Key
	for i := 1; i < n; i++ {
		if r, err = c.Logical(r.IntervalStart, false); err != nil {
			return "", "", err
		}
		from = r.Key
	}
	return from, to, nil
}

// lastCompleteKey is the logical date of the schedule's latest firing at or
// before now.
func lastCompleteKey(c *schedule.Cron, now time.Time) string {
	r, err := c.Logical(now, true)
	if err != nil {
		return "?"
	}
	return r.Key
}

// decideBackfill sets whether the backfill runs a date and why.
func decideBackfill(d *dateState, reprocess string, hasReports bool) {
	failed := d.Status == "failed" || d.Status == "canceled" || d.Status == "terminated" || d.Status == "timedout"
	done := d.Report
	if !hasReports {
		done = d.Status == "completed"
	}
	switch {
	case d.Status == "running":
		d.Run, d.Why = false, "running now"
	case reprocess == reprocessAll:
		d.Run, d.Why = true, "--reprocess all"
		if done {
			d.Why = "done; --reprocess all replaces it"
		}
	case reprocess == reprocessFailed:
		d.Run = failed
		d.Why = map[bool]string{true: "latest run " + d.Status, false: "latest run not failed (" + dash(d.Status) + ")"}[failed]
	case done:
		d.Run, d.Why = false, "report exists"
		if !hasReports {
			d.Why = "completed"
		}
	default:
		d.Run = true
		switch {
		case d.Status == "":
			d.Why = "never ran"
		case hasReports:
			d.Why = "no report (latest run " + d.Status + ")"
		default:
			d.Why = "latest run " + d.Status
		}
	}
}

// dateStates looks up each date's report and latest run.
func dateStates(ctx context.Context, c client.Client, cfg *Config, reg *registry.Registry, st *scheduleState, runs []schedule.Run) ([]dateState, error) {
	conf := st.input.Schedule
	out := make([]dateState, len(runs))
	ids := make([]string, len(runs))
	for i, r := range runs {
		out[i] = dateState{Key: r.Key, Nominal: r.Nominal, WorkflowID: activities.PipelineID(conf.Pipeline, r.Key)}
		ids[i] = out[i].WorkflowID
	}
	if len(conf.ReportSteps) > 0 {
		have := map[string]int{}
		for _, step := range conf.ReportSteps {
			entries, err := reg.Reports(ctx, registry.ReportFilter{Pipeline: conf.Pipeline, Step: step, From: runs[0].Key, To: runs[len(runs)-1].Key})
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				have[e.RunKey]++
			}
		}
		for i := range out {
			out[i].Report = have[out[i].Key] == len(conf.ReportSteps)
		}
	}
	status, err := latestStatuses(ctx, c, cfg, ids, nil)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Status = status[out[i].WorkflowID].status
	}
	return out, nil
}

type runState struct {
	status  string
	started time.Time
	runID   string
}

func todoIDs(todo []dateState) []string {
	ids := make([]string, len(todo))
	for i, d := range todo {
		ids[i] = d.WorkflowID
	}
	return ids
}

// runIDs returns the run IDs of every execution of the workflow IDs.
func runIDs(ctx context.Context, c client.Client, cfg *Config, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := listExecutions(ctx, c, cfg, ids, func(id string, st runState) { out[st.runID] = true })
	return out, err
}

// latestStatuses returns the latest execution's status per workflow ID,
// leaving out the runs in skip.
func latestStatuses(ctx context.Context, c client.Client, cfg *Config, ids []string, skip map[string]bool) (map[string]runState, error) {
	out := map[string]runState{}
	err := listExecutions(ctx, c, cfg, ids, func(id string, st runState) {
		if skip[st.runID] {
			return
		}
		if prev, ok := out[id]; ok && !st.started.After(prev.started) {
			return
		}
		out[id] = st
	})
	return out, err
}

// listExecutions calls fn for every pipeline execution of the workflow IDs.
func listExecutions(ctx context.Context, c client.Client, cfg *Config, ids []string, fn func(id string, st runState)) error {
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		quoted := make([]string, len(chunk))
		for i, id := range chunk {
			quoted[i] = "'" + strings.ReplaceAll(id, "'", "") + "'"
		}
		q := fmt.Sprintf("WorkflowType = '%s' AND WorkflowId IN (%s)", activities.WorkflowPipeline, strings.Join(quoted, ", "))
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: cfg.Namespace, Query: q, PageSize: 1000, NextPageToken: token})
			if err != nil {
				return fmt.Errorf("looking up runs: %w", err)
			}
			for _, e := range resp.GetExecutions() {
				fn(e.GetExecution().GetWorkflowId(), runState{
					status:  strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
					started: e.GetStartTime().AsTime(), runID: e.GetExecution().GetRunId(),
				})
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	return nil
}

// waitBackfill waits until each date has a new run (not in before) that has
// closed, printing progress, and returns their statuses by workflow ID.
func waitBackfill(ctx context.Context, c client.Client, cfg *Config, todo []dateState, before map[string]bool, timeout time.Duration) (map[string]string, error) {
	ids := todoIDs(todo)
	deadline := time.Now().Add(timeout)
	lastDone := -1
	for {
		states, err := latestStatuses(ctx, c, cfg, ids, before)
		if err != nil {
			return nil, err
		}
		done := map[string]string{}
		for id, s := range states {
			if s.status != "running" {
				done[id] = s.status
			}
		}
		if len(done) != lastDone && !cfg.JSON {
			fmt.Fprintf(cfg.stderr, "  %d/%d backfilled runs finished\n", len(done), len(ids))
			lastDone = len(done)
		}
		if len(done) == len(ids) {
			return done, nil
		}
		if time.Now().After(deadline) {
			var missing []string
			for _, id := range ids {
				if _, ok := done[id]; !ok {
					missing = append(missing, id)
				}
			}
			sort.Strings(missing)
			return nil, fmt.Errorf("timed out after %s waiting for %d run(s): %s", timeout, len(missing), strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func printBackfillPlan(cfg *Config, name, reprocess string, states []dateState, dryRun bool) error {
	n := 0
	for _, d := range states {
		if d.Run {
			n++
		}
	}
	if cfg.JSON {
		return printJSON(cfg.stdout, map[string]any{"schedule": name, "reprocess": reprocess, "dry_run": dryRun, "to_run": n, "dates": states})
	}
	if dryRun {
		fmt.Fprintf(cfg.stdout, "Dry run: backfilling %s would run %d of %d date(s) (--reprocess %s)\n", name, n, len(states), reprocess)
	} else {
		fmt.Fprintf(cfg.stdout, "Nothing to backfill for %s: all %d date(s) are done (--reprocess %s; use --reprocess all to run them again)\n", name, len(states), reprocess)
	}
	t := newTable(cfg.stdout, "LOGICAL DATE", "NOMINAL (UTC)", "REPORT", "LATEST RUN", "ACTION", "WHY")
	for _, d := range states {
		action := "skip"
		if d.Run {
			action = "run"
		}
		t.row(d.Key, d.Nominal.UTC().Format("2006-01-02 15:04"), map[bool]string{true: "yes", false: "no"}[d.Report], dash(d.Status), action, d.Why)
	}
	return t.flush()
}
