package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/schedule"
	"github.com/kiln-ml/kiln/pipelines"
	"github.com/kiln-ml/kiln/workflows"
)

func newSchedulesCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schedules",
		Aliases: []string{"schedule"},
		Short:   "Run pipelines on Temporal Schedules: nightly scoring and reports, backfills",
		Long: `A pipeline spec with a schedule: block runs on a Temporal Schedule, visible on
the Schedules page of the Temporal web UI. Each firing runs the pipeline for
one logical date — the start of the run's data interval, taken from the
firing's nominal time, never the wall clock — as pipeline/<name>/<date>, so a
date never runs twice at once and re-running a date replaces its outputs.
Steps read it as ${run.logical_date}.

Daylight saving time: a local time that does not exist on a spring-forward
day runs once, shifted by the gap (02:30 → 03:30); a local time that occurs
twice on a fall-back night runs once, at its first occurrence. So a daily
schedule runs exactly once per local day (kiln schedules describe warns about
upcoming transitions).`,
	}
	cmd.AddCommand(newSchedulesCreateCmd(cfg), newSchedulesUpdateCmd(cfg), newSchedulesListCmd(cfg),
		newSchedulesDescribeCmd(cfg), newSchedulesPauseCmd(cfg, true), newSchedulesPauseCmd(cfg, false),
		newSchedulesTriggerCmd(cfg), newSchedulesBackfillCmd(cfg), newSchedulesDeleteCmd(cfg))
	return cmd
}

// Memo keys of a Kiln schedule beside schedule.MemoCron, MemoTimezone and
// MemoHorizon. Temporal's Describe returns only structured calendars, so the
// spec's cron text is kept in the memo (and in the action's input, which
// `update` keeps current).
const (
	memoCron     = schedule.MemoCron
	memoTimezone = schedule.MemoTimezone
	memoPipeline = "kiln_pipeline"
	memoSpecFile = "kiln_spec_file"
	memoDeadline = "kiln_deadline"
)

// scheduleYears is how many years ahead, and scheduleYearsBack how many
// years back (for backfills), Kiln writes the one-off DST fix-ups into a
// schedule's spec; `kiln schedules update` renews them.
const (
	scheduleYears     = 5
	scheduleYearsBack = 2
)

// scheduleSource is a spec with a schedule block, ready to become a schedule.
type scheduleSource struct {
	spec *pipelines.Spec
	src  activities.ValidateInput
	cron *schedule.Cron
	conf activities.ScheduleConfig
}

// loadScheduleSource reads and validates the spec at path (with -p
// overrides) and checks that it has a schedule block.
func loadScheduleSource(path string, overrides map[string]string, name string) (*scheduleSource, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	spec, err := pipelines.Parse(path, text, overrides)
	if err != nil {
		return nil, &exitError{code: 1, err: fmt.Errorf("invalid spec:\n%w", err)}
	}
	if spec.Schedule == nil {
		return nil, &exitError{code: 1, err: fmt.Errorf("%s has no schedule: block; add one, e.g.\n  schedule:\n    cron: \"30 2 * * *\"\n    timezone: Europe/Paris", path)}
	}
	absDir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	absFile, _ := filepath.Abs(path)
	sch := spec.Schedule
	c, err := schedule.Parse(sch.Cron, sch.Timezone)
	if err != nil { // the validator already checked it
		return nil, fmt.Errorf("%s: schedule.cron: %w", path, err)
	}
	if name == "" {
		name = spec.Name
	}
	s := &scheduleSource{
		spec: spec, cron: c,
		src: activities.ValidateInput{SpecText: string(text), SpecFile: absFile, SpecDir: absDir, Overrides: overrides},
		conf: activities.ScheduleConfig{
			Name: name, Pipeline: spec.Name, Cron: sch.Cron, Timezone: c.Location().String(),
			Deadline: sch.Deadline.D(), Webhook: sch.Webhook,
		},
	}
	for _, st := range spec.Steps {
		if st.Uses == pipelines.StepReport {
			s.conf.ReportSteps = append(s.conf.ReportSteps, st.Name)
		}
	}
	if s.conf.Deadline > 0 && len(s.conf.ReportSteps) == 0 {
		return nil, &exitError{code: 1, err: fmt.Errorf("%s: schedule.deadline watches the reports of report steps, and the spec has none; add a report step or remove the deadline", path)}
	}
	return s, nil
}

// overlapPolicies maps the spec's overlap names to Temporal's policies.
var overlapPolicies = map[string]enumspb.ScheduleOverlapPolicy{
	"skip":         enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	"buffer_one":   enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	"buffer_all":   enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	"cancel_other": enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
	"allow_all":    enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
}

// scheduleSpec is the Temporal spec of s: Kiln's calendars (see
// schedule.Cron.TemporalSpec) plus the block's jitter, start and end.
func (s *scheduleSource) scheduleSpec(now time.Time) client.ScheduleSpec {
	sch := s.spec.Schedule
	opts := schedule.SpecOptions{Jitter: sch.Jitter.D()}
	if sch.Start != nil {
		opts.Start = *sch.Start
	}
	if sch.End != nil {
		opts.End = *sch.End
	}
	return s.cron.TemporalSpec(now.AddDate(-scheduleYearsBack, 0, 0), scheduleYears+scheduleYearsBack, opts)
}

// action is what each firing starts.
func (s *scheduleSource) action(cfg *Config, createdBy string, git *activities.GitInfo) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:        activities.ScheduleActionID(s.conf.Name),
		Workflow:  activities.WorkflowScheduledRun,
		Args:      []any{workflows.ScheduledRunInput{Schedule: s.conf, Spec: s.src, CreatedBy: createdBy, Git: git}},
		TaskQueue: cfg.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrPipeline.ValueSet(s.conf.Pipeline), workflows.AttrSchedule.ValueSet(s.conf.Name)),
		StaticSummary: fmt.Sprintf("firing of schedule %s (pipeline %s)", s.conf.Name, s.conf.Pipeline),
	}
}

func (s *scheduleSource) memo(now time.Time) map[string]any {
	m := s.cron.Memo(now.AddDate(scheduleYears, 0, 0))
	m[memoPipeline], m[memoSpecFile] = s.conf.Pipeline, s.src.SpecFile
	if s.conf.Deadline > 0 {
		m[memoDeadline] = s.conf.Deadline.String()
	}
	return m
}

func (s *scheduleSource) policies() *client.SchedulePolicies {
	sch := s.spec.Schedule
	return &client.SchedulePolicies{
		Overlap: overlapPolicies[sch.Overlap], CatchupWindow: sch.CatchupWindow.D(), PauseOnFailure: sch.PauseOnFailure,
	}
}

// scheduleURL links to a schedule in the Temporal web UI.
func (c *Config) scheduleURL(id string) string {
	return strings.TrimRight(c.UIURL, "/") + "/namespaces/" + c.Namespace + "/schedules/" + urlPathEscape(id)
}

func newSchedulesCreateCmd(cfg *Config) *cobra.Command {
	var (
		params []string
		name   string
		paused bool
	)
	cmd := &cobra.Command{
		Use:   "create SPEC",
		Short: "Create a Temporal Schedule from a spec's schedule: block",
		Long: `Validate SPEC and create a Temporal Schedule that runs it at each firing of
its schedule.cron in schedule.timezone. The schedule is named after the
pipeline (--name to choose). When the block has a deadline, a watcher
(deadline/<name>) raises a missing-report alert for every firing whose report
does not exist by its nominal time plus the deadline.`,
		Example: `  kiln schedules create pipelines/nightly_churn_report.yaml
  kiln schedules create pipelines/nightly_churn_report.yaml --paused
  kiln schedules create report.yaml --name churn-eu -p region=eu`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			src, err := loadScheduleSource(args[0], overrides, name)
			if err != nil {
				return err
			}
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			id := src.conf.Name
			opts := client.ScheduleOptions{
				ID: id, Spec: src.scheduleSpec(time.Now()), Action: src.action(cfg, activities.CurrentUser(), gitInfo(ctx, src.src.SpecDir)),
				Paused: paused, Memo: src.memo(time.Now()),
				TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrPipeline.ValueSet(src.conf.Pipeline)),
			}
			pol := src.policies()
			opts.Overlap, opts.CatchupWindow, opts.PauseOnFailure = pol.Overlap, pol.CatchupWindow, pol.PauseOnFailure
			if paused {
				opts.Note = "created paused by " + activities.CurrentUser()
			}
			if _, err := c.ScheduleClient().Create(ctx, opts); err != nil {
				if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
					return &exitError{code: 1, err: fmt.Errorf("schedule %s already exists: use kiln schedules update %s %s", id, id, args[0])}
				}
				return fmt.Errorf("creating schedule %s: %w", id, err)
			}
			if err := startDeadlineWatcher(ctx, c, cfg, src.conf); err != nil {
				return err
			}
			return printScheduleCreated(cfg, src, "created", paused)
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "override a pipeline parameter: name=value (repeatable)")
	cmd.Flags().StringVar(&name, "name", "", "schedule name (default: the pipeline's name)")
	cmd.Flags().BoolVar(&paused, "paused", false, "create the schedule paused")
	return cmd
}

// printScheduleCreated reports a created or updated schedule with its next firings.
func printScheduleCreated(cfg *Config, src *scheduleSource, verb string, paused bool) error {
	next := nextFirings(src.cron, time.Now(), 3)
	if cfg.JSON {
		return printJSON(cfg.stdout, map[string]any{
			"schedule": src.conf.Name, "pipeline": src.conf.Pipeline, "cron": src.conf.Cron, "timezone": src.conf.Timezone,
			"paused": paused, "next": next, "ui": cfg.scheduleURL(src.conf.Name),
		})
	}
	out := cfg.stdout
	fmt.Fprintf(out, "Schedule %s %s: %q in %s runs pipeline %s\n", src.conf.Name, verb, src.conf.Cron, src.conf.Timezone, src.conf.Pipeline)
	if paused {
		fmt.Fprintln(out, "  paused: kiln schedules unpause", src.conf.Name)
	}
	for _, r := range next {
		fmt.Fprintf(out, "  next: %s  (logical date %s)\n", r.Nominal.In(src.cron.Location()).Format("2006-01-02 15:04 MST"), r.Key)
	}
	if src.conf.Deadline > 0 {
		fmt.Fprintf(out, "  deadline: each report is due %s after its run's nominal time (watcher %s)\n", shortDuration(src.conf.Deadline), activities.DeadlineID(src.conf.Name))
	}
	fmt.Fprintf(out, "  %s\n", cfg.scheduleURL(src.conf.Name))
	return nil
}

// shortDuration formats d without zero units: 6h, 1h30m, 45s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// firing is one upcoming run of a schedule.
type firing struct {
	Nominal time.Time `json:"nominal"`
	Key     string    `json:"logical_date"`
}

// nextFirings lists the schedule's next n firings after from, by Kiln's rule.
func nextFirings(c *schedule.Cron, from time.Time, n int) []firing {
	var out []firing
	t := from
	for len(out) < n {
		t = c.Next(t)
		if t.IsZero() {
			break
		}
		f := firing{Nominal: t}
		if r, err := c.Logical(t, false); err == nil {
			f.Key = r.Key
		}
		out = append(out, f)
	}
	return out
}

// startDeadlineWatcher starts deadline/<name> when the schedule has a
// deadline, replacing a watcher of an earlier configuration.
func startDeadlineWatcher(ctx context.Context, c client.Client, cfg *Config, conf activities.ScheduleConfig) error {
	id := activities.DeadlineID(conf.Name)
	stopDeadlineWatcher(ctx, c, conf.Name, "schedule reconfigured")
	if conf.Deadline <= 0 {
		return nil
	}
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: cfg.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.AttrPipeline.ValueSet(conf.Pipeline), workflows.AttrSchedule.ValueSet(conf.Name)),
		StaticSummary:            fmt.Sprintf("report deadline of schedule %s: %s after each firing", conf.Name, conf.Deadline),
	}, activities.WorkflowDeadline, workflows.DeadlineInput{Schedule: conf})
	if err != nil {
		return fmt.Errorf("starting the deadline watcher %s: %w", id, err)
	}
	return nil
}

// stopDeadlineWatcher terminates deadline/<name> if it runs.
func stopDeadlineWatcher(ctx context.Context, c client.Client, name, reason string) {
	err := c.TerminateWorkflow(ctx, activities.DeadlineID(name), "", reason)
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		fmt.Fprintf(os.Stderr, "warning: stopping %s: %v\n", activities.DeadlineID(name), err)
	}
}

// scheduleState is what `describe`, `backfill` and `trigger` read back from
// a schedule: the action's input (authoritative: update keeps it current)
// and the description.
type scheduleState struct {
	desc   *client.ScheduleDescription
	input  workflows.ScheduledRunInput
	cron   *schedule.Cron
	handle client.ScheduleHandle
}

// readSchedule describes the schedule name and decodes its action's input.
func readSchedule(ctx context.Context, c client.Client, name string) (*scheduleState, error) {
	h := c.ScheduleClient().GetHandle(ctx, name)
	desc, err := h.Describe(ctx)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, &exitError{code: 1, err: fmt.Errorf("no schedule %q (kiln schedules list shows them)", name)}
		}
		return nil, fmt.Errorf("describing schedule %s: %w", name, err)
	}
	st := &scheduleState{desc: desc, handle: h}
	act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != activities.WorkflowScheduledRun || len(act.Args) != 1 {
		return nil, &exitError{code: 1, err: fmt.Errorf("schedule %s was not created by Kiln (its action is not %s)", name, activities.WorkflowScheduledRun)}
	}
	if err := decodeArg(act.Args[0], &st.input); err != nil {
		return nil, fmt.Errorf("schedule %s: reading its action's input: %w", name, err)
	}
	if st.cron, err = schedule.Parse(st.input.Schedule.Cron, st.input.Schedule.Timezone); err != nil {
		return nil, fmt.Errorf("schedule %s: cron %q: %w", name, st.input.Schedule.Cron, err)
	}
	return st, nil
}

// decodeArg decodes a described schedule action's argument (a payload).
func decodeArg(arg any, into any) error {
	p, ok := arg.(*commonpb.Payload)
	if !ok {
		return fmt.Errorf("unexpected argument type %T", arg)
	}
	return converter.GetDefaultDataConverter().FromPayload(p, into)
}

func newSchedulesUpdateCmd(cfg *Config) *cobra.Command {
	var params []string
	cmd := &cobra.Command{
		Use:   "update NAME SPEC",
		Short: "Replace a schedule's spec, firing rule and policies (keeps its paused state)",
		Long: `Re-read SPEC and update schedule NAME: the pipeline each firing runs, the
cron, time zone, jitter, start/end, overlap, catch-up window and
pause-on-failure, and the deadline watcher. The paused state is kept. The
one-off DST calendar entries are renewed for the next five years.

Temporal cannot change a schedule's memo, where Kiln keeps the cron text:
when the cron or time zone changes, the schedule is deleted and created again
under the same name (its earlier runs stay listed by kiln runs list).`,
		Example: `  kiln schedules update nightly-churn-report pipelines/nightly_churn_report.yaml`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			name := args[0]
			src, err := loadScheduleSource(args[1], overrides, name)
			if err != nil {
				return err
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
			paused := st.desc.Schedule.State != nil && st.desc.Schedule.State.Paused
			git := gitInfo(ctx, src.src.SpecDir)
			if st.input.Schedule.Cron != src.conf.Cron || st.input.Schedule.Timezone != src.conf.Timezone {
				if err := st.handle.Delete(ctx); err != nil {
					return fmt.Errorf("replacing schedule %s: %w", name, err)
				}
				opts := client.ScheduleOptions{
					ID: name, Spec: src.scheduleSpec(time.Now()), Action: src.action(cfg, activities.CurrentUser(), git),
					Paused: paused, Memo: src.memo(time.Now()),
					TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrPipeline.ValueSet(src.conf.Pipeline)),
				}
				pol := src.policies()
				opts.Overlap, opts.CatchupWindow, opts.PauseOnFailure = pol.Overlap, pol.CatchupWindow, pol.PauseOnFailure
				if _, err := c.ScheduleClient().Create(ctx, opts); err != nil {
					return fmt.Errorf("re-creating schedule %s (it was deleted; run kiln schedules create %s): %w", name, args[1], err)
				}
			} else {
				err = st.handle.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
					s := in.Description.Schedule
					spec := src.scheduleSpec(time.Now())
					s.Spec = &spec
					s.Action = src.action(cfg, activities.CurrentUser(), git)
					s.Policy = src.policies()
					return &client.ScheduleUpdate{Schedule: &s}, nil
				}})
				if err != nil {
					return fmt.Errorf("updating schedule %s: %w", name, err)
				}
			}
			if err := startDeadlineWatcher(ctx, c, cfg, src.conf); err != nil {
				return err
			}
			return printScheduleCreated(cfg, src, "updated", paused)
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "override a pipeline parameter: name=value (repeatable)")
	return cmd
}

func newSchedulesListCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List schedules with their cron, state and next run",
		Example: "  kiln schedules list\n  kiln schedules list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
			if err != nil {
				return fmt.Errorf("listing schedules: %w", err)
			}
			type row struct {
				Name     string    `json:"name"`
				Pipeline string    `json:"pipeline,omitempty"`
				Cron     string    `json:"cron,omitempty"`
				Timezone string    `json:"timezone,omitempty"`
				Paused   bool      `json:"paused"`
				Note     string    `json:"note,omitempty"`
				Next     time.Time `json:"next,omitzero"`
				Last     time.Time `json:"last,omitzero"`
			}
			var rows []row
			dc := converter.GetDefaultDataConverter()
			for it.HasNext() {
				e, err := it.Next()
				if err != nil {
					return fmt.Errorf("listing schedules: %w", err)
				}
				r := row{Name: e.ID, Paused: e.Paused, Note: e.Note}
				if e.Memo != nil {
					for key, dst := range map[string]*string{memoCron: &r.Cron, memoTimezone: &r.Timezone, memoPipeline: &r.Pipeline} {
						if p, ok := e.Memo.GetFields()[key]; ok {
							_ = dc.FromPayload(p, dst)
						}
					}
				}
				if len(e.NextActionTimes) > 0 {
					r.Next = e.NextActionTimes[0]
				}
				if n := len(e.RecentActions); n > 0 {
					r.Last = e.RecentActions[n-1].ScheduleTime
				}
				rows = append(rows, r)
			}
			if cfg.JSON {
				if rows == nil {
					rows = []row{}
				}
				return printJSON(cfg.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cfg.stdout, "No schedules yet. Create one from a spec with a schedule: block: kiln schedules create SPEC")
				return nil
			}
			t := newTable(cfg.stdout, "NAME", "PIPELINE", "CRON", "TIMEZONE", "STATE", "NEXT", "LAST")
			for _, r := range rows {
				state := "active"
				if r.Paused {
					state = "paused"
				}
				t.row(r.Name, dash(r.Pipeline), dash(r.Cron), dash(r.Timezone), state, when(r.Next), when(r.Last))
			}
			return t.flush()
		},
	}
}

func newSchedulesPauseCmd(cfg *Config, pause bool) *cobra.Command {
	var reason string
	verb, short := "pause", "Pause a schedule: no firing runs until it is unpaused (the deadline watcher keeps watching)"
	if !pause {
		verb, short = "unpause", "Unpause a schedule (missed firings within its catch-up window run)"
	}
	cmd := &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: fmt.Sprintf("  kiln schedules %s nightly-churn-report --reason \"data source migration\"", verb),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return cfg.onSchedule(ctx, args[0], func(c client.Client, st *scheduleState) error {
				return pauseSchedule(ctx, cfg, st, args[0], verb, reason, pause)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the schedule's note)")
	return cmd
}

// pauseSchedule pauses or unpauses a schedule with a note saying who and why.
func pauseSchedule(ctx context.Context, cfg *Config, st *scheduleState, name, verb, reason string, pause bool) error {
	note := fmt.Sprintf("%sd by %s", verb, activities.CurrentUser())
	if reason != "" {
		note += ": " + reason
	}
	var err error
	if pause {
		err = st.handle.Pause(ctx, client.SchedulePauseOptions{Note: note})
	} else {
		err = st.handle.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	}
	if err != nil {
		return fmt.Errorf("%s schedule %s: %w", verb, name, err)
	}
	if cfg.JSON {
		return printJSON(cfg.stdout, map[string]any{"schedule": name, "paused": pause, "note": note})
	}
	fmt.Fprintf(cfg.stdout, "Schedule %s %sd (%s)\n", name, verb, note)
	return nil
}

// onSchedule dials Temporal, reads the schedule name (a clear error when it
// does not exist or is not Kiln's) and calls fn with both.
func (c *Config) onSchedule(ctx context.Context, name string, fn func(cl client.Client, st *scheduleState) error) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := readSchedule(ctx, cl, name)
	if err != nil {
		return err
	}
	return fn(cl, st)
}

func newSchedulesTriggerCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "trigger NAME",
		Short: "Run a schedule now, for its most recent complete interval",
		Long: `Fire schedule NAME now. The run covers the schedule's most recent complete
data interval — the same logical date as the last regular firing — so it
re-runs that date (as pipeline/<name>/<date>, replacing its outputs), never
"today" by the wall clock. To run other dates, use kiln schedules backfill.`,
		Example: "  kiln schedules trigger nightly-churn-report",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return cfg.onSchedule(ctx, args[0], func(c client.Client, st *scheduleState) error {
				return triggerSchedule(ctx, cfg, st, args[0])
			})
		},
	}
}

// triggerSchedule fires a schedule now and says which date it runs.
func triggerSchedule(ctx context.Context, cfg *Config, st *scheduleState, name string) error {
	run, err := st.cron.Logical(time.Now(), true)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	if err := st.handle.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		return fmt.Errorf("triggering schedule %s: %w", name, err)
	}
	wid := activities.PipelineID(st.input.Schedule.Pipeline, run.Key)
	if cfg.JSON {
		return printJSON(cfg.stdout, map[string]any{"schedule": name, "logical_date": run.Key, "workflow_id": wid, "ui": cfg.workflowURL(wid, "")})
	}
	loc := st.cron.Location()
	fmt.Fprintf(cfg.stdout, "Triggered %s: logical date %s (interval %s → %s) runs as %s\n  %s\n", name, run.Key,
		run.IntervalStart.In(loc).Format("2006-01-02 15:04 MST"), run.IntervalEnd.In(loc).Format("2006-01-02 15:04 MST"),
		wid, cfg.workflowURL(wid, ""))
	return nil
}

func newSchedulesDeleteCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a schedule and its deadline watcher (runs, outputs and reports stay)",
		Example: "  kiln schedules delete nightly-churn-report",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return cfg.onSchedule(ctx, args[0], func(c client.Client, st *scheduleState) error {
				if err := st.handle.Delete(ctx); err != nil {
					return fmt.Errorf("deleting schedule %s: %w", args[0], err)
				}
				stopDeadlineWatcher(ctx, c, args[0], "schedule deleted")
				if cfg.JSON {
					return printJSON(cfg.stdout, map[string]any{"schedule": args[0], "deleted": true})
				}
				fmt.Fprintf(cfg.stdout, "Schedule %s deleted (its runs, outputs and reports are kept)\n", args[0])
				return nil
			})
		},
	}
}
