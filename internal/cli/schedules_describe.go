package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/workflows"
)

// scheduleView is what `kiln schedules describe` shows (and prints with --json).
type scheduleView struct {
	Name           string                   `json:"name"`
	Pipeline       string                   `json:"pipeline"`
	SpecFile       string                   `json:"spec_file"`
	Cron           string                   `json:"cron"`
	Timezone       string                   `json:"timezone"`
	Paused         bool                     `json:"paused"`
	Note           string                   `json:"note,omitempty"`
	Overlap        string                   `json:"overlap"`
	CatchupWindow  string                   `json:"catchup_window"`
	PauseOnFailure bool                     `json:"pause_on_failure"`
	Jitter         string                   `json:"jitter,omitempty"`
	Start          time.Time                `json:"start,omitzero"`
	End            time.Time                `json:"end,omitzero"`
	Deadline       string                   `json:"deadline,omitempty"`
	Webhook        bool                     `json:"webhook,omitempty"`
	Actions        int                      `json:"actions"`
	Created        time.Time                `json:"created,omitzero"`
	Updated        time.Time                `json:"updated,omitzero"`
	Next           []firing                 `json:"next"`
	DST            []string                 `json:"dst,omitempty"`
	Runs           []scheduleRun            `json:"runs"`
	Alerts         []registry.Alert         `json:"alerts,omitempty"`
	Watcher        *workflows.DeadlineState `json:"watcher,omitempty"`
	UI             string                   `json:"ui"`
}

// scheduleRun is one of a schedule's recent pipeline runs.
type scheduleRun struct {
	LogicalDate string    `json:"logical_date"`
	Trigger     string    `json:"trigger"`
	Status      string    `json:"status"`
	WorkflowID  string    `json:"workflow_id"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Report      bool      `json:"report"`
}

func newSchedulesDescribeCmd(cfg *Config) *cobra.Command {
	var next, last int
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a schedule: its rule, next firings, DST warnings, last runs and alerts",
		Long: `Describe schedule NAME: its cron and time zone (from the spec), state and
policies; the next firings in the schedule's time zone with the logical date
each will run; warnings for firings that fall in a DST gap or overlap in the
coming year and what Kiln does about them; the last runs with their status
and whether their report exists; and open missing-report alerts.`,
		Example: "  kiln schedules describe nightly-churn-report\n  kiln schedules describe nightly-churn-report --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return cfg.onSchedule(ctx, args[0], func(c client.Client, st *scheduleState) error {
				reg, err := cfg.openRegistry(cmd)
				if err != nil {
					return err
				}
				defer reg.Close()
				v, err := describeSchedule(ctx, c, cfg, reg, st, next, last)
				if err != nil {
					return err
				}
				if cfg.JSON {
					return printJSON(cfg.stdout, v)
				}
				printScheduleView(cfg, v, st.cron.Location())
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&next, "next", 10, "how many upcoming firings to list")
	cmd.Flags().IntVar(&last, "last", 10, "how many recent runs to list")
	return cmd
}

// describeSchedule gathers a schedule's view.
func describeSchedule(ctx context.Context, c client.Client, cfg *Config, reg *registry.Registry, st *scheduleState, nNext, nLast int) (*scheduleView, error) {
	conf := st.input.Schedule
	d := st.desc
	v := &scheduleView{
		Name: conf.Name, Pipeline: conf.Pipeline, SpecFile: st.input.Spec.SpecFile, Cron: conf.Cron, Timezone: conf.Timezone,
		Actions: d.Info.NumActions, Created: d.Info.CreatedAt, Updated: d.Info.LastUpdateAt, UI: cfg.scheduleURL(conf.Name),
		Webhook: conf.Webhook != "",
	}
	if s := d.Schedule.State; s != nil {
		v.Paused, v.Note = s.Paused, s.Note
	}
	if p := d.Schedule.Policy; p != nil {
		v.Overlap = strings.ToLower(strings.TrimPrefix(p.Overlap.String(), "SCHEDULE_OVERLAP_POLICY_"))
		v.CatchupWindow = shortDuration(p.CatchupWindow)
		v.PauseOnFailure = p.PauseOnFailure
	}
	if s := d.Schedule.Spec; s != nil {
		if s.Jitter > 0 {
			v.Jitter = shortDuration(s.Jitter)
		}
		v.Start, v.End = s.StartAt, s.EndAt
	}
	if conf.Deadline > 0 {
		v.Deadline = shortDuration(conf.Deadline)
	}
	now := time.Now()
	v.Next = nextFirings(st.cron, now, nNext)
	if !v.End.IsZero() {
		kept := v.Next[:0]
		for _, f := range v.Next {
			if !f.Nominal.After(v.End) {
				kept = append(kept, f)
			}
		}
		v.Next = kept
	}
	for _, n := range st.cron.NotesBetween(now, now.AddDate(1, 0, 0)) {
		v.DST = append(v.DST, n.Message)
	}
	runs, err := recentScheduleRuns(ctx, c, cfg, conf.Name, nLast)
	if err != nil {
		return nil, err
	}
	if len(conf.ReportSteps) > 0 && len(runs) > 0 {
		have := map[string]int{}
		for _, step := range conf.ReportSteps {
			entries, err := reg.Reports(ctx, registry.ReportFilter{Pipeline: conf.Pipeline, Step: step, Schedule: conf.Name})
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				have[e.RunKey]++
			}
		}
		for i := range runs {
			runs[i].Report = have[runs[i].LogicalDate] == len(conf.ReportSteps)
		}
	}
	v.Runs = runs
	if v.Alerts, err = reg.Alerts(ctx, conf.Name, true, 20); err != nil {
		return nil, err
	}
	if conf.Deadline > 0 {
		if resp, err := c.QueryWorkflow(ctx, activities.DeadlineID(conf.Name), "", workflows.QueryStatus); err == nil {
			var ws workflows.DeadlineState
			if resp.Get(&ws) == nil {
				v.Watcher = &ws
			}
		} else {
			var nf *serviceerror.NotFound
			if !errors.As(err, &nf) {
				v.Watcher = &workflows.DeadlineState{Schedule: conf.Name}
			}
		}
	}
	return v, nil
}

// recentScheduleRuns lists the schedule's latest pipeline runs, newest first.
func recentScheduleRuns(ctx context.Context, c client.Client, cfg *Config, name string, n int) ([]scheduleRun, error) {
	if n <= 0 {
		return nil, nil
	}
	q := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", activities.WorkflowPipeline, workflows.AttrSchedule.GetName(), strings.ReplaceAll(name, "'", ""))
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: cfg.Namespace, Query: q, PageSize: int32(n)})
	if err != nil {
		return nil, fmt.Errorf("listing the runs of schedule %s: %w", name, err)
	}
	var out []scheduleRun
	for _, e := range resp.GetExecutions() {
		attrs := e.GetSearchAttributes().GetIndexedFields()
		r := scheduleRun{
			LogicalDate: payloadString(attrs[workflows.AttrLogicalDate.GetName()]),
			Trigger:     payloadString(attrs[workflows.AttrTrigger.GetName()]),
			Status:      strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
			WorkflowID:  e.GetExecution().GetWorkflowId(),
			Started:     e.GetStartTime().AsTime(),
		}
		if e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && e.GetCloseTime() != nil {
			r.Ended = e.GetCloseTime().AsTime()
		}
		out = append(out, r)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

func printScheduleView(cfg *Config, v *scheduleView, loc *time.Location) {
	out := cfg.stdout
	state := "active"
	if v.Paused {
		state = "PAUSED"
	}
	fmt.Fprintf(out, "Schedule %s (%s)\n", v.Name, state)
	if v.Note != "" {
		fmt.Fprintf(out, "  note:        %s\n", v.Note)
	}
	fmt.Fprintf(out, "  pipeline:    %s (%s)\n", v.Pipeline, v.SpecFile)
	fmt.Fprintf(out, "  cron:        %q in %s\n", v.Cron, v.Timezone)
	fmt.Fprintf(out, "  policies:    overlap %s, catch-up window %s, pause on failure %v", v.Overlap, v.CatchupWindow, v.PauseOnFailure)
	if v.Jitter != "" {
		fmt.Fprintf(out, ", jitter %s", v.Jitter)
	}
	fmt.Fprintln(out)
	if !v.Start.IsZero() || !v.End.IsZero() {
		fmt.Fprintf(out, "  active:      %s → %s\n", when(v.Start), when(v.End))
	}
	if v.Deadline != "" {
		hook := ""
		if v.Webhook {
			hook = ", alerts POSTed to the webhook"
		}
		fmt.Fprintf(out, "  deadline:    report due %s after each firing%s\n", v.Deadline, hook)
	}
	fmt.Fprintf(out, "  runs so far: %d   %s\n", v.Actions, v.UI)
	fmt.Fprintf(out, "\nNext %d firings (%s):\n", len(v.Next), loc)
	for _, f := range v.Next {
		fmt.Fprintf(out, "  %s   logical date %s\n", f.Nominal.In(loc).Format("Mon 2006-01-02 15:04 MST"), f.Key)
	}
	if len(v.DST) > 0 {
		fmt.Fprintln(out, "\nDaylight saving time in the coming year:")
		for _, m := range v.DST {
			fmt.Fprintf(out, "  warning: %s\n", m)
		}
	}
	fmt.Fprintf(out, "\nLast %d runs:\n", len(v.Runs))
	if len(v.Runs) == 0 {
		fmt.Fprintln(out, "  none yet (kiln schedules trigger or backfill run one now)")
	} else {
		t := newTable(out, "  LOGICAL DATE", "TRIGGER", "STATUS", "STARTED", "DURATION", "REPORT", "RUN")
		for _, r := range v.Runs {
			d := "-"
			if !r.Ended.IsZero() {
				d = duration(r.Ended.Sub(r.Started))
			}
			t.row("  "+dash(r.LogicalDate), dash(r.Trigger), r.Status, when(r.Started), d, map[bool]string{true: "yes", false: "no"}[r.Report], r.WorkflowID)
		}
		t.flush()
	}
	if len(v.Alerts) > 0 {
		fmt.Fprintf(out, "\nOpen alerts (%d):\n", len(v.Alerts))
		for _, a := range v.Alerts {
			fmt.Fprintf(out, "  #%d %s %s: %s", a.ID, a.Kind, a.RunKey, a.Message)
			if a.Delivery != "" {
				fmt.Fprintf(out, " [webhook: %s]", a.Delivery)
			}
			fmt.Fprintln(out)
		}
	}
	if w := v.Watcher; w != nil && !w.Due.IsZero() {
		fmt.Fprintf(out, "\nDeadline watcher: waiting for the report of %s (due %s); %d firing(s) checked, %d alert(s)\n",
			w.NextKey, w.Due.In(loc).Format("2006-01-02 15:04 MST"), w.Checked, w.Alerts)
	}
}
