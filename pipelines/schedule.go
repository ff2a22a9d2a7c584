package pipelines

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/internal/schedule"
)

// Schedule is a spec's schedule block: how `kiln schedules create` runs the
// pipeline on a Temporal Schedule. YAML:
//
//	schedule:
//	  cron: "30 2 * * *"
//	  timezone: Europe/Paris
//	  deadline: 3h
//	  webhook: https://hooks.example.com/kiln
//
// Firing times follow Kiln's rule (internal/schedule): a local time skipped
// by a DST change runs shifted forward by the gap, a repeated one runs once,
// at its first occurrence.
type Schedule struct {
	// Cron is 5 fields ("minute hour day-of-month month day-of-week"), a
	// descriptor (@daily, @hourly, @weekly, @monthly, @yearly) or
	// "@every <duration>". Required. See internal/schedule for the dialect.
	Cron string `json:"cron" yaml:"cron"`
	// Timezone is the IANA time zone the cron reads local time in.
	// Default "UTC".
	Timezone string `json:"timezone" yaml:"timezone"`
	// CatchupWindow is how late a firing missed while Temporal was down
	// may still run; at least 10s (Temporal's minimum). Default 24h, so a
	// nightly run missed during an outage runs when Temporal is back, and
	// older ones are left to `kiln schedules backfill`.
	CatchupWindow Duration `json:"catchup_window" yaml:"catchup_window"`
	// Overlap is what a firing does while the previous run is still
	// running: "skip" (default), "buffer_one", "buffer_all",
	// "cancel_other" or "allow_all" (Temporal's overlap policies).
	Overlap string `json:"overlap" yaml:"overlap"`
	// PauseOnFailure pauses the schedule after a failed run.
	PauseOnFailure bool `json:"pause_on_failure,omitempty" yaml:"pause_on_failure"`
	// Jitter delays each run by a random time up to Jitter (the logical
	// date does not move); shorter than the shortest interval between
	// firings.
	Jitter Duration `json:"jitter,omitempty" yaml:"jitter"`
	// Start and End bound the firings, inclusively. YAML takes RFC 3339
	// times or dates; a date is read in Timezone: Start at 00:00, End at
	// the end of that day (23:59:59).
	Start *time.Time `json:"start,omitempty" yaml:"start"`
	End   *time.Time `json:"end,omitempty" yaml:"end"`
	// Deadline, when set, is how long after its nominal time a firing's
	// reports (those of the spec's report steps) must exist; a missing one
	// raises an alert. It must be shorter than the shortest interval
	// between firings.
	Deadline Duration `json:"deadline,omitempty" yaml:"deadline"`
	// Webhook is an http(s) URL the missing-report alert is POSTed to (as
	// JSON); it needs a Deadline.
	Webhook string `json:"webhook,omitempty" yaml:"webhook"`
}

// Schedule defaults and limits.
const (
	DefaultCatchupWindow = Duration(24 * time.Hour)
	MinCatchupWindow     = Duration(10 * time.Second)
	DefaultOverlap       = "skip"
)

// OverlapPolicies are the values of Schedule.Overlap.
var OverlapPolicies = []string{"skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"}

var scheduleKeys = []string{"cron", "timezone", "catchup_window", "overlap", "pause_on_failure", "jitter", "start", "end", "deadline", "webhook"}

// ParseCron parses the schedule's cron in its time zone (it does not fail
// for a schedule Parse accepted): Kiln's firing rule, logical dates and the
// Temporal schedule spec.
func (s *Schedule) ParseCron() (*schedule.Cron, error) {
	return schedule.Parse(s.Cron, s.Timezone)
}

// decodeSchedule reads the schedule block.
func (d *decoder) decodeSchedule(n, parent *yaml.Node) *Schedule {
	o := d.object(n, parent, "schedule", scheduleKeys)
	if !o.ok {
		return nil
	}
	s := &Schedule{Timezone: schedule.DefaultTimezone, CatchupWindow: DefaultCatchupWindow, Overlap: DefaultOverlap}
	o.requiredString("cron", &s.Cron)
	// The schedule is read as written, once for all runs.
	for _, key := range []string{"cron", "timezone", "webhook"} {
		if n, p, ok := o.get(key); ok && n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			d.errorf(n, p, "%s is read as written: ${...} references (params, run) are not substituted in the schedule block", key)
			switch key {
			case "cron":
				s.Cron = ""
			case "timezone":
				delete(o.vals, "timezone")
			case "webhook":
				delete(o.vals, "webhook")
			}
		}
	}

	loc := time.UTC
	zoneOK := true
	if o.str("timezone", &s.Timezone) {
		if s.Timezone == "" {
			s.Timezone = schedule.DefaultTimezone
		}
		l, err := schedule.LoadLocation(s.Timezone)
		if err != nil {
			n, p := o.where("timezone")
			d.errorf(n, p, "%v", err)
			zoneOK = false
		} else {
			loc = l
		}
	}
	var cron *schedule.Cron
	if s.Cron != "" {
		c, err := schedule.ParseIn(s.Cron, loc)
		if err != nil {
			n, p := o.where("cron")
			if se, ok := err.(*schedule.Error); ok && se.Offset >= 0 {
				line, col := n.Line, n.Column
				if c, ok := d.scalarColumn(n, se.Offset); ok {
					col = c
				}
				d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Path: p, Message: se.Msg})
			} else {
				d.errorf(n, p, "%v", err)
			}
		} else if zoneOK {
			cron = c
		}
	}

	if o.duration("catchup_window", &s.CatchupWindow) && s.CatchupWindow < MinCatchupWindow {
		n, p := o.where("catchup_window")
		d.errorf(n, p, "catchup_window must be at least 10s (Temporal's minimum), found %s", s.CatchupWindow.D())
	}
	if o.str("overlap", &s.Overlap) {
		o.oneOf("overlap", s.Overlap, "overlap policy", OverlapPolicies)
	}
	o.bool("pause_on_failure", &s.PauseOnFailure)
	jitterOK := o.duration("jitter", &s.Jitter)
	startOK := d.scheduleTime(o, "start", loc, false, &s.Start)
	endOK := d.scheduleTime(o, "end", loc, true, &s.End)
	if startOK && endOK && !s.End.After(*s.Start) {
		n, p := o.where("end")
		d.errorf(n, p, "end (%s) must be after start (%s)", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	}
	deadlineOK := o.duration("deadline", &s.Deadline)
	if o.str("webhook", &s.Webhook) {
		n, p := o.where("webhook")
		u, err := url.Parse(s.Webhook)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			d.errorf(n, p, "webhook must be an http:// or https:// URL, found %q", redactURL(s.Webhook))
		case !o.has("deadline"):
			d.errorf(n, p, "a webhook receives the missing-report alert of the deadline; set schedule.deadline (e.g. deadline: 3h) or remove the webhook")
		}
	}

	if cron != nil && (jitterOK || deadlineOK) {
		now := time.Now()
		gap, at := cron.MinIntervalIn(now, now.AddDate(1, 0, 0))
		where := ""
		if utc, err := schedule.ParseIn(s.Cron, time.UTC); err == nil && cron.Every() == 0 && loc != time.UTC {
			if plain, _ := utc.MinIntervalIn(now, now.AddDate(1, 0, 0)); gap < plain {
				where = fmt.Sprintf(" (the run ending %s follows a DST change in %s)", at.In(loc).Format("2006-01-02 15:04 MST"), loc)
			}
		}
		if jitterOK && gap > 0 && s.Jitter.D() >= gap {
			n, p := o.where("jitter")
			d.errorf(n, p, "jitter %s must be shorter than the %s between runs%s", fmtGap(s.Jitter.D()), fmtGap(gap), where)
		}
		if deadlineOK && gap > 0 && s.Deadline.D() >= gap {
			n, p := o.where("deadline")
			d.errorf(n, p, "deadline %s must be shorter than the %s between runs%s: a run's report is due before the next run", fmtGap(s.Deadline.D()), fmtGap(gap), where)
		}
	}
	if deadlineOK {
		d.deadlineAt, d.deadlinePath = o.where("deadline")
	}
	return s
}

// scheduleTime reads start or end: an RFC 3339 time, or a date in loc (the
// start of the day, or for end its last second).
func (d *decoder) scheduleTime(o *object, key string, loc *time.Location, end bool, dst **time.Time) bool {
	n, p, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := d.scalar(n, p, "a date (2006-01-02) or an RFC 3339 time")
	if !ok {
		return false
	}
	text := strings.TrimSpace(s.str)
	if s.tag != "!!str" {
		d.typeError(s, p, "a date (2006-01-02) or an RFC 3339 time")
		return false
	}
	if t, err := time.Parse(time.RFC3339, text); err == nil {
		*dst = &t
		return true
	}
	if t, err := time.ParseInLocation(time.DateOnly, text, loc); err == nil {
		if end {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc).Add(-time.Second)
		}
		*dst = &t
		return true
	}
	d.errorf(n, p, "invalid %s %q: write a date (2027-01-31, in the schedule's time zone) or an RFC 3339 time (2027-01-31T18:00:00+01:00)", key, text)
	return false
}

// fmtGap writes a duration without zero units: "24h", "23h30m", "15m".
func fmtGap(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// redactURL drops a URL's user information and query, which may hold
// secrets, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		s, _, _ = strings.Cut(s, "?")
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			s = s[i+1:]
		}
		return s
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}
