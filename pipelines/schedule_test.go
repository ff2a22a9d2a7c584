package pipelines

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// scheduleSpec is a valid pipeline with the given schedule block (indented
// under "schedule:" from line 5).
func scheduleSpec(block string) string {
	return "apiVersion: kiln/v1\nkind: Pipeline\nname: s\nschedule:\n" + block +
		"steps:\n  - {name: score, uses: score, with: {model: churn@production, input: landing/}}\n" +
		"  - {name: report, uses: report, needs: [score]}\n"
}

func problemsOf(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse("s.yaml", []byte(src), nil)
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %T: %v", err, err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, strings.TrimPrefix(p.Error(), "s.yaml:"))
	}
	return out
}

func TestScheduleProblems(t *testing.T) {
	tests := []struct {
		name, block string
		want        string // "line:col: path: message" fragment; "" for valid
	}{
		{"plain cron points at the field", "  cron: 30 2 * * 8\n", `5:18: schedule.cron: day-of-week 8 is out of range 0-6`},
		{"double-quoted cron with an escape", "  cron: \"30\\t2 * * 8\"\n", `5:20: schedule.cron: day-of-week 8 is out of range 0-6`},
		{"single-quoted cron", "  cron: '30 2 ? * *'\n", `5:15: schedule.cron: "?" in day-of-month`},
		{"flow mapping", "  {cron: \"61 * * * *\"}\n", ""},
		{"block scalar points at the scalar", "  cron: >-\n    30 2 * * 8\n", `5:9: schedule.cron: day-of-week 8 is out of range 0-6`},
		{"cron is not a string", "  cron: [30, 2]\n", `5:9: schedule.cron: expected a string, found a list`},
		{"schedule is not a mapping", "  - cron\n", `5:3: schedule: expected a mapping, found a list`},
		{"empty timezone means UTC", "  cron: \"@daily\"\n  timezone: \"\"\n", ""},
		{"timezone Local", "  cron: \"@daily\"\n  timezone: Local\n", `6:13: schedule.timezone: time zone "Local" depends on the machine`},
		{"a bad zone does not also fail the cron", "  cron: \"30 2 * * *\"\n  timezone: Mars/Base\n  deadline: 30h\n", `6:13: schedule.timezone: unknown time zone "Mars/Base"`},
		{"deadline in a zone with DST", "  cron: \"30 2 * * *\"\n  timezone: Europe/Paris\n  deadline: 23h30m\n",
			`7:13: schedule.deadline: deadline 23h30m must be shorter than the 23h between runs (the run ending `},
		{"deadline of a weekly schedule", "  cron: \"0 6 * * mon\"\n  deadline: 48h\n", ""},
		{"webhook secrets are not repeated", "  cron: \"@daily\"\n  deadline: 1h\n  webhook: \"mailto:ops@example.com?token=abc\"\n",
			`7:12: schedule.webhook: webhook must be an http:// or https:// URL, found "mailto:ops@example.com"`},
		{"references are not substituted", "  cron: \"${params.cron}\"\n", `5:9: schedule.cron: cron is read as written: ${...} references (params, run) are not substituted in the schedule block`},
		{"start is not a string", "  cron: \"@daily\"\n  start: 2027\n", `6:10: schedule.start: expected a date (2006-01-02) or an RFC 3339 time, found integer 2027`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, scheduleSpec(tt.block))
			switch {
			case tt.want == "" && tt.name == "flow mapping":
				if len(got) != 1 || !strings.HasPrefix(got[0], "5:11: schedule.cron: minute 61") {
					t.Errorf("got %q", got)
				}
			case tt.want == "":
				if len(got) != 0 {
					t.Errorf("got %q, want no problems", got)
				}
			case len(got) != 1 || !strings.HasPrefix(got[0], tt.want):
				t.Errorf("got %q\nwant one problem starting %q", got, tt.want)
			}
		})
	}
}

func TestScheduleDecoded(t *testing.T) {
	spec, err := Parse("s.yaml", []byte(scheduleSpec("  cron: \"30 2 * * *\"\n  timezone: America/New_York\n  start: 2027-01-01\n  end: 2027-03-31\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := spec.Schedule
	ny, _ := time.LoadLocation("America/New_York")
	if s.Timezone != "America/New_York" || s.CatchupWindow != DefaultCatchupWindow || s.Overlap != "skip" || s.Jitter != 0 || s.Deadline != 0 {
		t.Errorf("schedule = %+v", s)
	}
	if s.Start == nil || s.End == nil || !s.Start.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, ny)) || !s.End.Equal(time.Date(2027, 3, 31, 23, 59, 59, 0, ny)) {
		t.Errorf("start, end = %s, %s", s.Start, s.End)
	}
	c, err := s.ParseCron()
	if err != nil {
		t.Fatal(err)
	}
	// Kiln's rule: the 2027-03-14 run (no 02:30 that day) is at 03:30.
	if got := c.Next(time.Date(2027, 3, 13, 12, 0, 0, 0, ny)); got.In(ny).Format("2006-01-02 15:04 MST") != "2027-03-14 03:30 EDT" {
		t.Errorf("Next = %s", got.In(ny))
	}
	spec, err = Parse("s.yaml", []byte(scheduleSpec("  cron: \"@daily\"\n")), nil)
	if err != nil || spec.Schedule.Timezone != "UTC" {
		t.Errorf("default timezone: %+v, %v", spec.Schedule, err)
	}
	spec, err = Parse("s.yaml", []byte("apiVersion: kiln/v1\nkind: Pipeline\nname: s\nsteps: [{name: n, uses: noop}]\n"), nil)
	if err != nil || spec.Schedule != nil {
		t.Errorf("no schedule: %+v, %v", spec, err)
	}
}

func TestRunRefsAndLocations(t *testing.T) {
	head := "apiVersion: kiln/v1\nkind: Pipeline\nname: r\nsteps:\n"
	tests := []struct {
		name, steps, want string
	}{
		{"run references in an unscheduled pipeline", "  - {name: s, uses: score, with: {model: churn, input: \"in/${run.logical_date}/\", output: \"out/${run.key}\"}}\n", ""},
		{"every run reference", "  - {name: n, uses: ingest, with: {source: \"${run.logical_date}${run.logical_time}${run.data_interval_start}${run.data_interval_end}${run.nominal_time}${run.key}${run.trigger}${run.schedule}.csv\"}}\n", ""},
		{"object store with a reference: the bucket is still checked", "  - {name: s, uses: score, with: {model: churn, input: \"s3:///${run.key}\"}}\n",
			`5:56: steps[0].with.input: s3:// URL without a bucket: want s3://bucket/key, found "s3:///${run.key}"`},
		{"object store source with a reference must name an object", "  - {name: i, uses: ingest, with: {source: \"s3://lake/${run.key}/\", format: csv}}\n",
			`5:44: steps[0].with.source: s3:// sources name one object: s3://bucket/key, found "s3://lake/${run.key}/"`},
		{"a reference in the scheme is left for run time", "  - {name: s, uses: score, with: {model: churn, input: \"${run.schedule}://x\"}}\n", ""},
		{"run reference in a name", "  - {name: s, uses: score, with: {model: \"churn@${run.trigger}\"}}\n",
			`5:42: steps[0].with.model: invalid model "churn@${run.trigger}"`},
		{"run reference in a step's timeout", "  - {name: s, uses: noop, timeout: \"${run.key}\"}\n",
			`5:37: steps[0].timeout: ${run.key}: run references are only allowed in the string fields of a step's with`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, head+tt.steps)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("got %q, want no problems", got)
			case tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.want)):
				t.Errorf("got %q\nwant one problem starting %q", got, tt.want)
			}
		})
	}
	if got := problemsOf(t, "apiVersion: kiln/v1\nkind: Pipeline\nname: r\ndescription: \"${run.key}\"\nsteps: [{name: n, uses: noop}]\n"); len(got) != 0 {
		t.Errorf("a description is free text: %q", got)
	}
}

func TestRequiredUpstream(t *testing.T) {
	tests := []struct {
		step Step
		want StepType
		ok   bool
	}{
		{Step{Uses: StepScore, Score: &ScoreConfig{}}, StepRegister, true},
		{Step{Uses: StepScore, Score: &ScoreConfig{Model: "churn@production"}}, "", false},
		{Step{Uses: StepReport, Report: &ReportConfig{}}, StepScore, true},
		{Step{Uses: StepReport, Report: &ReportConfig{Input: "scores/"}}, "", false},
		{Step{Uses: StepTrain}, StepPreprocess, true},
		{Step{Uses: StepNoop}, "", false},
	}
	for _, tt := range tests {
		if got, ok := RequiredUpstream(&tt.step); got != tt.want || ok != tt.ok {
			t.Errorf("RequiredUpstream(%s) = %q, %v; want %q, %v", tt.step.Uses, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReportDefaults(t *testing.T) {
	spec, err := Parse("r.yaml", []byte(scheduleSpec("  cron: \"@daily\"\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := spec.Step("report").Report
	want := ReportConfig{Threshold: 0.5, Trend: 14, Drift: ReportDrift{SmallReference: 1000, DatasetShare: 0.5}}
	if got.Threshold != want.Threshold || got.Trend != want.Trend || got.Drift.SmallReference != 1000 || got.Drift.DatasetShare != 0.5 ||
		got.Drift.Method != nil || got.Drift.Thresholds != (DriftThresholds{}) || got.Labels != nil || got.Input != "" || got.Columns != nil {
		t.Errorf("report = %+v, want %+v", got, want)
	}
	if OutputKind(spec.Step("report")) != "report" {
		t.Errorf("OutputKind(report) = %q", OutputKind(spec.Step("report")))
	}
}
