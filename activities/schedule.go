package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/schedule"
)

// Triggers: what started a pipeline run (the KilnTrigger search attribute and
// LogicalRun.Trigger).
const (
	TriggerCLI   = "cli"
	TriggerDrift = "drift"
	// TriggerPerformance is a retrain started by a live metric.
	TriggerPerformance = "performance"
	TriggerSchedule    = "schedule"
	TriggerBackfill    = "backfill"
	// TriggerManual is a run started by `kiln schedules trigger`.
	TriggerManual = "trigger"
)

// LogicalRun is what a run is about in time: its logical date and data
// interval, never the wall clock. Scheduled runs take it from their nominal
// time, backfills from the date they fill, manual runs from their start (or
// kiln run --logical-date). Steps read it as ${run.logical_date} and friends.
type LogicalRun struct {
	// Key is the run key: the logical date ("2026-12-02"), or the logical
	// time ("2026-12-02T1430") for schedules firing more often than daily.
	// Dated outputs and reports are named by it.
	Key string `json:"key"`
	// LogicalDate is the local date of the data interval's start.
	LogicalDate string `json:"logical_date"`
	// LogicalTime is the interval's start in the schedule's time zone (RFC 3339).
	LogicalTime string `json:"logical_time"`
	// IntervalStart and IntervalEnd are the data interval [start, end).
	IntervalStart time.Time `json:"interval_start"`
	IntervalEnd   time.Time `json:"interval_end"`
	// Nominal is the schedule's nominal firing time (zero for manual runs).
	Nominal time.Time `json:"nominal,omitzero"`
	// Trigger is TriggerSchedule, TriggerBackfill, TriggerManual or TriggerCLI.
	Trigger string `json:"trigger"`
	// Schedule names the schedule ("" for kiln run).
	Schedule string `json:"schedule,omitempty"`
	// Backfill is the backfill request's number, for backfilled runs.
	Backfill int64 `json:"backfill,omitempty"`
}

// Ref returns the value of ${run.<name>}, and false for an unknown name.
func (l *LogicalRun) Ref(name string) (string, bool) {
	if l == nil {
		return "", false
	}
	switch name {
	case "logical_date":
		return l.LogicalDate, true
	case "logical_time":
		return l.LogicalTime, true
	case "data_interval_start":
		return l.IntervalStart.UTC().Format(time.RFC3339), true
	case "data_interval_end":
		return l.IntervalEnd.UTC().Format(time.RFC3339), true
	case "nominal_time":
		if l.Nominal.IsZero() {
			return l.IntervalEnd.UTC().Format(time.RFC3339), true
		}
		return l.Nominal.UTC().Format(time.RFC3339), true
	case "key":
		return l.Key, true
	case "trigger":
		return l.Trigger, true
	case "schedule":
		return l.Schedule, true
	}
	return "", false
}

// ManualLogicalRun is the logical run of a run started by hand (kiln run):
// the day holding at, in loc, as a one-day interval.
func ManualLogicalRun(at time.Time, loc *time.Location) LogicalRun {
	if loc == nil {
		loc = time.UTC
	}
	local := at.In(loc)
	start := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	date := start.Format(time.DateOnly)
	return LogicalRun{
		Key: date, LogicalDate: date, LogicalTime: start.Format(time.RFC3339),
		IntervalStart: start.UTC(), IntervalEnd: start.AddDate(0, 0, 1).UTC(), Trigger: TriggerCLI,
	}
}

// ScheduleConfig is what the workflows of a schedule need to know about it:
// its name, the pipeline it runs, and its firing rule.
type ScheduleConfig struct {
	// Name is the schedule's ID in Temporal.
	Name string `json:"name"`
	// Pipeline is the spec's name.
	Pipeline string `json:"pipeline"`
	// Cron and Timezone are the spec's schedule.cron and schedule.timezone.
	Cron     string `json:"cron"`
	Timezone string `json:"timezone"`
	// Deadline, when set, is how long after its nominal time a run's report
	// must exist; Webhook receives the missing-report alert.
	Deadline time.Duration `json:"deadline,omitempty"`
	Webhook  string        `json:"webhook,omitempty"`
	// ReportSteps are the names of the spec's report steps (the deadline
	// watches their reports).
	ReportSteps []string `json:"report_steps,omitempty"`
}

// ResolveScheduledRunInput asks what a run started by a schedule is about.
type ResolveScheduledRunInput struct {
	Schedule ScheduleConfig `json:"schedule"`
	// Nominal is the run's TemporalScheduledStartTime.
	Nominal time.Time `json:"nominal"`
	// Started is when the run's workflow started.
	Started time.Time `json:"started"`
}

// ResolveScheduledRunOutput is the run's logical run, or why it is skipped.
type ResolveScheduledRunOutput struct {
	Run LogicalRun `json:"run"`
	// Skip is true for a firing Kiln's DST policy drops (the second
	// occurrence of a repeated local time); SkipReason says so.
	Skip       bool   `json:"skip,omitempty"`
	SkipReason string `json:"skip_reason,omitempty"`
	// NoCache is true for a backfill that reprocesses dates (--reprocess
	// failed or all): the work is done again, not taken from the cache.
	NoCache bool `json:"no_cache,omitempty"`
}

// ResolveScheduledRun works out a scheduled run's logical date from its
// nominal time and the schedule's firing rule. A nominal time on the rule's
// grid is a regular (or backfilled, when a recorded backfill asked for it)
// run of the interval ending then; any other instant is a manual trigger,
// which runs the most recent complete interval; the second occurrence of a
// repeated local time (Temporal fires it on DST fall-back nights) is skipped.
func (a *Activities) ResolveScheduledRun(ctx context.Context, in ResolveScheduledRunInput) (ResolveScheduledRunOutput, error) {
	c, err := schedule.Parse(in.Schedule.Cron, in.Schedule.Timezone)
	if err != nil {
		return ResolveScheduledRunOutput{}, invalid("schedule %s: %v", in.Schedule.Name, err)
	}
	nominal := in.Nominal.UTC()
	kind, err := c.Classify(nominal)
	if err != nil {
		return ResolveScheduledRunOutput{}, invalid("schedule %s: %v", in.Schedule.Name, err)
	}
	run, err := c.Logical(nominal, kind == schedule.OffGrid)
	if err != nil {
		return ResolveScheduledRunOutput{}, invalid("schedule %s: %v", in.Schedule.Name, err)
	}
	if kind == schedule.Repeated || run.Skip {
		reason := run.SkipReason
		if reason == "" {
			reason = fmt.Sprintf("%s is not a firing of Kiln's rule for %q in %s (a DST artefact of Temporal's calendar)",
				nominal.In(c.Location()).Format("2006-01-02 15:04 MST"), in.Schedule.Cron, c.Location())
		}
		return ResolveScheduledRunOutput{Skip: true, SkipReason: reason}, nil
	}
	out := LogicalRun{
		Key: run.Key, LogicalDate: run.LogicalDate, LogicalTime: run.LogicalTime,
		IntervalStart: run.IntervalStart.UTC(), IntervalEnd: run.IntervalEnd.UTC(), Nominal: nominal,
		Trigger: TriggerSchedule, Schedule: in.Schedule.Name,
	}
	if kind == schedule.OffGrid {
		out.Trigger = TriggerManual
		return ResolveScheduledRunOutput{Run: out}, nil
	}
	if a.Registry != nil {
		bf, ok, err := a.Registry.BackfillFor(ctx, in.Schedule.Name, nominal, in.Started)
		if err != nil {
			return ResolveScheduledRunOutput{}, err
		}
		if ok {
			out.Trigger, out.Backfill = TriggerBackfill, bf.ID
			return ResolveScheduledRunOutput{Run: out, NoCache: bf.Reprocess != "" && bf.Reprocess != "missing"}, nil
		}
	}
	return ResolveScheduledRunOutput{Run: out}, nil
}

// NextDeadlineInput asks for a schedule's next firing after a time.
type NextDeadlineInput struct {
	Schedule ScheduleConfig `json:"schedule"`
	After    time.Time      `json:"after"`
}

// NextDeadlineOutput is the next firing, its run and when its report is due.
type NextDeadlineOutput struct {
	Nominal time.Time `json:"nominal"`
	RunKey  string    `json:"run_key"`
	Due     time.Time `json:"due"`
	// None is true when the schedule never fires again.
	None bool `json:"none,omitempty"`
}

// NextDeadline returns the schedule's first firing after in.After (by
// Kiln's rule) and the time its report is due.
func (a *Activities) NextDeadline(ctx context.Context, in NextDeadlineInput) (NextDeadlineOutput, error) {
	c, err := schedule.Parse(in.Schedule.Cron, in.Schedule.Timezone)
	if err != nil {
		return NextDeadlineOutput{}, invalid("schedule %s: %v", in.Schedule.Name, err)
	}
	next := c.Next(in.After)
	if next.IsZero() {
		return NextDeadlineOutput{None: true}, nil
	}
	run, err := c.Logical(next, false)
	if err != nil {
		return NextDeadlineOutput{}, invalid("schedule %s: %v", in.Schedule.Name, err)
	}
	return NextDeadlineOutput{Nominal: next.UTC(), RunKey: run.Key, Due: next.Add(in.Schedule.Deadline).UTC()}, nil
}

// CheckDeadlineInput asks whether a firing's report exists by its deadline.
type CheckDeadlineInput struct {
	Schedule ScheduleConfig `json:"schedule"`
	Nominal  time.Time      `json:"nominal"`
	RunKey   string         `json:"run_key"`
	Due      time.Time      `json:"due"`
}

// CheckDeadlineOutput says what the check found and did.
type CheckDeadlineOutput struct {
	// Present is true when every report step's report exists.
	Present bool `json:"present"`
	// Missing names the report steps whose report is missing.
	Missing []string `json:"missing,omitempty"`
	// Alert is the alert raised (or found raised earlier), when missing.
	Alert *registry.Alert `json:"alert,omitempty"`
	// Delivery is how the webhook delivery went ("" without a webhook).
	Delivery string `json:"delivery,omitempty"`
}

// MissingReportAlert is the JSON body POSTed to a schedule's webhook when a
// report is missing at its deadline.
type MissingReportAlert struct {
	Kind     string    `json:"kind"`
	Schedule string    `json:"schedule"`
	Pipeline string    `json:"pipeline"`
	RunKey   string    `json:"run_key"`
	Nominal  time.Time `json:"nominal"`
	Due      time.Time `json:"due"`
	Missing  []string  `json:"missing"`
	Message  string    `json:"message"`
	AlertID  int64     `json:"alert_id"`
}

// CheckDeadline checks, at a firing's deadline, that the reports of the
// schedule's report steps exist for its run key. When one is missing — the
// run failed, never started or the schedule was paused — it records a
// missing-report alert (once per run key) and POSTs it to the schedule's
// webhook; a failed delivery is retried with the activity.
func (a *Activities) CheckDeadline(ctx context.Context, in CheckDeadlineInput) (CheckDeadlineOutput, error) {
	s := in.Schedule
	var missing []string
	for _, step := range s.ReportSteps {
		_, err := a.Registry.Report(ctx, s.Pipeline, step, in.RunKey)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			missing = append(missing, step)
		case err != nil:
			return CheckDeadlineOutput{}, err
		}
	}
	if len(missing) == 0 {
		if _, err := a.Registry.ResolveAlerts(ctx, s.Name, in.RunKey); err != nil {
			return CheckDeadlineOutput{}, err
		}
		return CheckDeadlineOutput{Present: true}, nil
	}
	msg := fmt.Sprintf("no report for %s %s (run at %s) by its deadline %s: missing %v",
		s.Pipeline, in.RunKey, in.Nominal.UTC().Format(time.RFC3339), in.Due.UTC().Format(time.RFC3339), missing)
	alert, created, err := a.Registry.RaiseAlert(ctx, registry.Alert{
		Schedule: s.Name, RunKey: in.RunKey, Kind: registry.AlertMissingReport, Message: msg, Due: in.Due,
	})
	if err != nil {
		return CheckDeadlineOutput{}, err
	}
	if created {
		a.logger(ctx).Warn("missing report", "schedule", s.Name, "run_key", in.RunKey, "due", in.Due)
	}
	out := CheckDeadlineOutput{Missing: missing, Alert: &alert}
	if s.Webhook == "" || (!created && strings.HasPrefix(alert.Delivery, "delivered")) {
		out.Delivery = alert.Delivery
		return out, nil
	}
	body, err := json.Marshal(MissingReportAlert{
		Kind: registry.AlertMissingReport, Schedule: s.Name, Pipeline: s.Pipeline, RunKey: in.RunKey,
		Nominal: in.Nominal.UTC(), Due: in.Due.UTC(), Missing: missing, Message: msg, AlertID: alert.ID,
	})
	if err != nil {
		return CheckDeadlineOutput{}, err
	}
	delivery, derr := a.postWebhook(ctx, s.Webhook, body)
	if err := a.Registry.SetAlertDelivery(ctx, alert.ID, delivery); err != nil {
		return CheckDeadlineOutput{}, err
	}
	if derr != nil {
		// Retried by the activity's retry policy; the alert stays recorded.
		return CheckDeadlineOutput{}, derr
	}
	out.Delivery = delivery
	return out, nil
}

// postWebhook POSTs body to url and describes the outcome.
func (a *Activities) postWebhook(ctx context.Context, url string, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "failed: " + err.Error(), invalid("alert webhook: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kiln-alerts")
	if activity.IsActivity(ctx) {
		req.Header.Set("Idempotency-Key", activity.GetInfo(ctx).WorkflowExecution.ID+"/"+activity.GetInfo(ctx).ActivityID)
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		return "failed: " + redactURLError(err), fmt.Errorf("alert webhook: %s", redactURLError(err))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Sprintf("failed (HTTP %d)", resp.StatusCode), fmt.Errorf("alert webhook answered HTTP %d", resp.StatusCode)
	}
	return fmt.Sprintf("delivered (HTTP %d)", resp.StatusCode), nil
}

// redactURLError drops the URL from an HTTP client error: webhook URLs often
// carry a secret (Slack's do).
func redactURLError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return "request failed"
}
