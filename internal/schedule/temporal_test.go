package schedule

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	schedulepb "go.temporal.io/api/schedule/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/service/worker/scheduler"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The Temporal server's own schedule code (go.temporal.io/server, the
// version in go.mod) is the judge of what Temporal fires.

var specBuilder = scheduler.NewSpecBuilder(dynamicconfig.GetIntPropertyFn(0), dynamicconfig.GetIntPropertyFn(0))

// pbRanges converts SDK ranges as the SDK does (convertToPBRangeList).
func pbRanges(rs []client.ScheduleRange, def client.ScheduleRange) []*schedulepb.Range {
	if rs == nil {
		rs = []client.ScheduleRange{def}
	}
	var out []*schedulepb.Range
	for _, r := range rs {
		out = append(out, &schedulepb.Range{Start: int32(r.Start), End: int32(r.End), Step: int32(r.Step)})
	}
	return out
}

// serverSpec compiles an SDK spec with the server's code, converting it as
// the SDK does (convertToPBScheduleSpec, applyScheduleCalendarSpecDefault).
func serverSpec(t testing.TB, spec client.ScheduleSpec) *scheduler.CompiledSpec {
	t.Helper()
	pb := &schedulepb.ScheduleSpec{
		CronString:   spec.CronExpressions,
		Jitter:       durationpb.New(spec.Jitter),
		TimezoneName: spec.TimeZoneName,
	}
	for _, c := range spec.Calendars {
		year := []*schedulepb.Range{}
		for _, r := range c.Year {
			year = append(year, &schedulepb.Range{Start: int32(r.Start), End: int32(r.End), Step: int32(r.Step)})
		}
		pb.StructuredCalendar = append(pb.StructuredCalendar, &schedulepb.StructuredCalendarSpec{
			Second:     pbRanges(c.Second, client.ScheduleRange{Start: 0}),
			Minute:     pbRanges(c.Minute, client.ScheduleRange{Start: 0}),
			Hour:       pbRanges(c.Hour, client.ScheduleRange{Start: 0}),
			DayOfMonth: pbRanges(c.DayOfMonth, client.ScheduleRange{Start: 1, End: 31}),
			Month:      pbRanges(c.Month, client.ScheduleRange{Start: 1, End: 12}),
			DayOfWeek:  pbRanges(c.DayOfWeek, client.ScheduleRange{Start: 0, End: 6}),
			Year:       year,
			Comment:    c.Comment,
		})
	}
	for _, iv := range spec.Intervals {
		pb.Interval = append(pb.Interval, &schedulepb.IntervalSpec{Interval: durationpb.New(iv.Every), Phase: durationpb.New(iv.Offset)})
	}
	if !spec.StartAt.IsZero() {
		pb.StartTime = timestamppb.New(spec.StartAt)
	}
	if !spec.EndAt.IsZero() {
		pb.EndTime = timestamppb.New(spec.EndAt)
	}
	cs, err := specBuilder.NewCompiledSpec(pb)
	if err != nil {
		t.Fatalf("the server refuses the spec: %v", err)
	}
	return cs
}

// serverFirings lists the nominal times the server computes in [from, to).
func serverFirings(t testing.TB, cs *scheduler.CompiledSpec, from, to time.Time) []time.Time {
	t.Helper()
	var out []time.Time
	after := from.Add(-time.Second)
	for {
		r, err := cs.GetNextTime("", after)
		if err != nil {
			t.Fatal(err)
		}
		if r.Nominal.IsZero() || !r.Nominal.Before(to) {
			return out
		}
		out = append(out, r.Nominal)
		after = r.Nominal
	}
}

// kilnFirings lists the firings of Kiln's rule in [from, to).
func kilnFirings(c *Cron, from, to time.Time) []time.Time {
	var out []time.Time
	for t := c.Next(from.Add(-time.Nanosecond)); !t.IsZero() && t.Before(to); t = c.Next(t) {
		out = append(out, t)
	}
	return out
}

// perLocalDay counts firings per local date.
func perLocalDay(ts []time.Time, loc *time.Location) map[string]int {
	n := map[string]int{}
	for _, t := range ts {
		n[t.In(loc).Format(time.DateOnly)]++
	}
	return n
}

func mustParse(t testing.TB, cron, tz string) *Cron {
	t.Helper()
	c, err := Parse(cron, tz)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// days lists the local dates in [from, to).
func days(from, to time.Time, loc *time.Location) []string {
	var out []string
	for d := from.In(loc); d.Before(to); d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

func fmtTimes(ts []time.Time, loc *time.Location) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.In(loc).Format("2006-01-02 15:04 MST"))
	}
	return strings.Join(parts, ", ")
}

// TestDSTOneRunPerLocalDay is the must-show: a daily 02:30 schedule in New
// York and in Paris, from 2025-01-01 to 2027-12-31, runs exactly once per
// local day under Kiln's rule — and so does Temporal running the spec Kiln
// sends, once the launcher drops the firings Logical marks Skip. (A daily
// 01:30 too, where Temporal fires twice on fall-back days.)
func TestDSTOneRunPerLocalDay(t *testing.T) {
	for _, tc := range [][2]string{{"30 2 * * *", "America/New_York"}, {"30 2 * * *", "Europe/Paris"}, {"30 1 * * *", "America/New_York"}, {"30 1 * * *", "Europe/Paris"}} {
		cron, tz := tc[0], tc[1]
		t.Run(strings.ReplaceAll(cron+" "+tz, "/", "_"), func(t *testing.T) {
			c := mustParse(t, cron, tz)
			loc := c.Location()
			from := time.Date(2025, 1, 1, 0, 0, 0, 0, loc)
			to := time.Date(2028, 1, 1, 0, 0, 0, 0, loc)
			all := days(from, to, loc)
			if len(all) != 1095 {
				t.Fatalf("%d days", len(all))
			}

			kiln := kilnFirings(c, from, to)
			counts := perLocalDay(kiln, loc)
			for _, d := range all {
				if counts[d] != 1 {
					t.Errorf("Kiln: %d runs on %s", counts[d], d)
				}
			}
			if len(kiln) != len(all) {
				t.Errorf("Kiln: %d runs over %d days", len(kiln), len(all))
			}
			// The spring-forward days run at 03:30, the fall-back days at
			// the first 02:30 (Paris) or the only one (New York).
			for _, tr := range c.transitions(from, to) {
				day := tr.In(loc)
				run := kiln[slices.IndexFunc(kiln, func(k time.Time) bool { return k.In(loc).Format(time.DateOnly) == day.Format(time.DateOnly) })]
				_, offBefore := tr.Add(-time.Second).In(loc).Zone()
				_, offAfter := tr.In(loc).Zone()
				if offAfter > offBefore && cron == "30 2 * * *" {
					if got := run.In(loc).Format("15:04"); got != "03:30" {
						t.Errorf("spring-forward day %s runs at %s, want 03:30", day.Format(time.DateOnly), got)
					}
				} else if _, off := run.In(loc).Zone(); offAfter < offBefore && off != offBefore && c.secondOccurrence(run) {
					t.Errorf("fall-back day %s runs at %s, want the first 02:30", day.Format(time.DateOnly), c.format(run))
				}
			}

			spec := c.TemporalSpec(from, 3, SpecOptions{})
			fired := serverFirings(t, serverSpec(t, spec), from, to)
			var kept, skipped []time.Time
			for _, n := range fired {
				run, err := c.Logical(n, false)
				if err != nil {
					t.Fatalf("Logical(%s): %v", n, err)
				}
				if run.Skip {
					skipped = append(skipped, n)
					continue
				}
				kept = append(kept, n)
			}
			counts = perLocalDay(kept, loc)
			for _, d := range all {
				if counts[d] != 1 {
					t.Errorf("Temporal: %d runs on %s", counts[d], d)
				}
			}
			if !slices.EqualFunc(kept, kiln, time.Time.Equal) {
				t.Errorf("Temporal's kept firings differ from Kiln's rule:\n%s\nwant\n%s", fmtTimes(kept, loc), fmtTimes(kiln, loc))
			}
			t.Logf("%q %s: %d calendars, %d intervals; Temporal fired %d times, the launcher skips %d (%s)",
				cron, tz, len(spec.Calendars), len(spec.Intervals), len(fired), len(skipped), fmtTimes(skipped, loc))
		})
	}
}

// TestTemporalCronStringDST documents the bug Kiln's spec works around:
// the same cron given to Temporal as a CronString (server v1.32.1) does not
// fire once per local day around DST changes.
func TestTemporalCronStringDST(t *testing.T) {
	tests := []struct {
		cron, tz string
		// spring and fall are the firings on the spring-forward and the
		// fall-back days; fall lists their local times.
		spring int
		fall   []string
	}{
		// A time in the gap never fires; a time that is not repeated fires once.
		{"30 2 * * *", "America/New_York", 0, []string{"02:30 EST"}},
		// A repeated time fires twice west of UTC...
		{"30 1 * * *", "America/New_York", 1, []string{"01:30 EDT", "01:30 EST"}},
		// ...only at its second occurrence east of UTC...
		{"30 2 * * *", "Europe/Paris", 0, []string{"02:30 CET"}},
		// ...and a time just before the repeated hour gets a spurious
		// second firing an hour later.
		{"30 1 * * *", "Europe/Paris", 1, []string{"01:30 CEST", "02:30 CEST"}},
	}
	for _, tt := range tests {
		c := mustParse(t, tt.cron, tt.tz)
		loc := c.Location()
		from := time.Date(2025, 1, 1, 0, 0, 0, 0, loc)
		to := time.Date(2028, 1, 1, 0, 0, 0, 0, loc)
		fired := serverFirings(t, serverSpec(t, client.ScheduleSpec{CronExpressions: []string{tt.cron}, TimeZoneName: tt.tz}), from, to)
		counts := perLocalDay(fired, loc)
		trs := c.transitions(from, to)
		if len(trs) != 6 {
			t.Fatalf("%d transitions", len(trs))
		}
		special := map[string]bool{}
		for _, tr := range trs {
			day := tr.In(loc).Format(time.DateOnly)
			special[day] = true
			_, before := tr.Add(-time.Second).In(loc).Zone()
			_, after := tr.In(loc).Zone()
			var on []string
			for _, f := range fired {
				if f.In(loc).Format(time.DateOnly) == day {
					on = append(on, f.In(loc).Format("15:04 MST"))
				}
			}
			if after > before && counts[day] != tt.spring {
				t.Errorf("%q %s: %d firings on the spring-forward day %s (%v), want %d", tt.cron, tt.tz, counts[day], day, on, tt.spring)
			}
			if after < before && !slices.Equal(on, tt.fall) {
				t.Errorf("%q %s: firings on the fall-back day %s = %v, want %v", tt.cron, tt.tz, day, on, tt.fall)
			}
		}
		for _, d := range days(from, to, loc) {
			if !special[d] && counts[d] != 1 {
				t.Errorf("%q %s: %d firings on %s", tt.cron, tt.tz, counts[d], d)
			}
		}
	}
}

// TestTemporalSpecMatchesKiln runs Kiln's Temporal spec through the server
// for many crons and zones: every firing the server makes must be
// classified (a firing of Kiln's rule, or one to skip, never a "manual"
// one), and the firings kept must be exactly Kiln's.
func TestTemporalSpecMatchesKiln(t *testing.T) {
	zones := []string{"America/New_York", "Europe/Paris", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe",
		"America/Santiago", "America/Havana", "Pacific/Chatham", "Asia/Tokyo", "UTC"}
	crons := []string{"30 2 * * *", "30 1 * * *", "0 2 * * *", "0 3 * * *", "0 0 * * *", "30 0 * * *", "59 1 * * *",
		"0 * * * *", "*/20 * * * *", "0,30 2,3 * * *", "45 1 * * 0", "0 1-3 * * *", "15 2 * 3,4,9,10,11 *",
		"@daily", "@hourly", "@every 1h", "@every 90m"}
	if testing.Short() {
		zones, crons = zones[:3], crons[:6]
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(2, 0, 0)
	for _, tz := range zones {
		for _, cr := range crons {
			c := mustParse(t, cr, tz)
			loc := c.Location()
			spec := c.TemporalSpec(from, 2, SpecOptions{})
			fired := serverFirings(t, serverSpec(t, spec), from, to)
			var kept []time.Time
			bad := 0
			for _, n := range fired {
				kind, err := c.Classify(n)
				if err != nil {
					t.Fatal(err)
				}
				run, err := c.Logical(n, false)
				if err != nil {
					t.Fatalf("%q %s: Logical(%s): %v", cr, tz, c.format(n), err)
				}
				if run.Skip != (kind != OnGrid) {
					t.Errorf("%q %s: %s: Classify %v but Logical Skip %v", cr, tz, c.format(n), kind, run.Skip)
				}
				if kind == OffGrid && bad < 5 {
					bad++
					t.Errorf("%q %s: the server fires at %s, which Classify calls off-grid (a manual trigger)", cr, tz, c.format(n))
				}
				if kind == OnGrid {
					kept = append(kept, n)
				}
			}
			want := kilnFirings(c, from, to)
			if !slices.EqualFunc(kept, want, time.Time.Equal) {
				missing, extra := diff(want, kept)
				t.Errorf("%q %s: the server's kept firings differ from Kiln's rule: missing %s; extra %s",
					cr, tz, fmtTimes(first(missing, 6), loc), fmtTimes(first(extra, 6), loc))
			}
		}
	}
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// diff returns what is in a and not in b, and what is in b and not in a.
func diff(a, b []time.Time) (onlyA, onlyB []time.Time) {
	in := func(ts []time.Time) map[int64]bool {
		m := map[int64]bool{}
		for _, t := range ts {
			m[t.UnixNano()] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	for _, t := range a {
		if !mb[t.UnixNano()] {
			onlyA = append(onlyA, t)
		}
	}
	for _, t := range b {
		if !ma[t.UnixNano()] {
			onlyB = append(onlyB, t)
		}
	}
	return onlyA, onlyB
}

// TestModelMatchesServer checks Kiln's model of the server's calendar on
// plain calendars (no fix-ups), DST quirks included.
func TestModelMatchesServer(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	for _, tz := range []string{"America/New_York", "Europe/Paris", "Australia/Lord_Howe", "America/Havana"} {
		for _, cr := range []string{"30 2 * * *", "30 1 * * *", "*/30 * * * *", "0 0-3 * * *", "0 1 * * 0"} {
			c := mustParse(t, cr, tz)
			spec := client.ScheduleSpec{TimeZoneName: tz, Calendars: []client.ScheduleCalendarSpec{c.mainCalendar()}}
			server := serverFirings(t, serverSpec(t, spec), from, to)
			m := c.modelOf(spec)
			var model []time.Time
			for x := from.Add(-time.Second); ; {
				n := m.next(x)
				if n.IsZero() || !n.Before(to) {
					break
				}
				model = append(model, n)
				x = n
			}
			if !slices.EqualFunc(model, server, time.Time.Equal) {
				a, b := diff(model, server)
				t.Errorf("%q %s: model differs from the server: model only %s; server only %s", cr, tz,
					fmtTimes(first(a, 5), c.Location()), fmtTimes(first(b, 5), c.Location()))
			}
		}
	}
}

// TestTemporalReadsCronAlike compiles every cron Parse accepts as a
// Temporal cron string and checks the server reads the same sets.
func TestTemporalReadsCronAlike(t *testing.T) {
	for _, cr := range []string{"30 2 * * *", "*/15 * * * *", "0 9-17/2 * * 1-5", "0 0 1,15 * *", "5 4 * jan-mar,DEC *",
		"0 6 * * mon,wed,FRI", "0 6 * * sun", "0 6 * * 0-6", "0 6 * * */2", "0 6 * * 1-6/2", "0 6 5/10 * *", "0 6 * * */3",
		"0 0 29 2 *", "@daily", "@hourly", "@weekly", "@monthly", "@yearly", "0 12 * * mon-wed,fri"} {
		c := mustParse(t, cr, "UTC")
		cs := serverSpec(t, client.ScheduleSpec{CronExpressions: []string{cr}})
		cals := cs.CanonicalForm().StructuredCalendar
		if len(cals) != 1 {
			t.Fatalf("%q: %d calendars", cr, len(cals))
		}
		bitsOf := func(rs []*schedulepb.Range) uint64 {
			var b uint64
			for _, r := range rs {
				start, end, step := int(r.Start), int(r.End), int(r.Step)
				if step == 0 {
					step = 1
				}
				if end < start {
					end = start
				}
				for v := start; v <= end; v += step {
					b |= 1 << v
				}
			}
			return b
		}
		cal := cals[0]
		got := []uint64{bitsOf(cal.Minute), bitsOf(cal.Hour), bitsOf(cal.DayOfMonth), bitsOf(cal.Month), bitsOf(cal.DayOfWeek)}
		want := []uint64{c.minute, c.hour, c.dom, c.month, c.dow}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: Temporal reads %s as %s, Kiln as %s", cr, fieldDefs[i].name, describeSet(fieldDefs[i], got[i]), describeSet(fieldDefs[i], want[i]))
			}
		}
	}
}

// TestTemporalSpecShape checks what the spec holds: the cron as a
// structured calendar in the zone, one-off calendars for gap days, one-off
// intervals for first occurrences east of UTC, jitter and bounds.
func TestTemporalSpecShape(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	c := mustParse(t, "30 2 * * *", "Europe/Paris")
	spec := c.TemporalSpec(start, 2, SpecOptions{Jitter: time.Minute, Start: start, End: end})
	if spec.TimeZoneName != "Europe/Paris" || spec.Jitter != time.Minute || !spec.StartAt.Equal(start) || !spec.EndAt.Equal(end) || len(spec.CronExpressions) != 0 {
		t.Errorf("spec = %+v", spec)
	}
	main := spec.Calendars[0]
	if fmt.Sprint(main.Minute, main.Hour, main.DayOfMonth, main.Month, main.DayOfWeek) != "[{30 30 0}] [{2 2 0}] [{1 31 0}] [{1 12 0}] [{0 6 0}]" {
		t.Errorf("main calendar = %+v", main)
	}
	// Two spring-forward days (2026-03-29, 2027-03-28): 03:30 one-offs.
	var oneOffs []string
	for _, cal := range spec.Calendars[1:] {
		oneOffs = append(oneOffs, fmt.Sprintf("%d-%02d-%02d %02d:%02d", cal.Year[0].Start, cal.Month[0].Start, cal.DayOfMonth[0].Start, cal.Hour[0].Start, cal.Minute[0].Start))
	}
	if want := []string{"2026-03-29 03:30", "2027-03-28 03:30"}; !slices.Equal(oneOffs, want) {
		t.Errorf("one-off calendars = %v, want %v", oneOffs, want)
	}
	// Two fall-back days: the first 02:30 (CEST) as one-off intervals.
	var ivs []string
	for _, iv := range spec.Intervals {
		ivs = append(ivs, c.format(time.Unix(int64(iv.Every/time.Second), 0)))
	}
	if want := []string{"2026-10-25 02:30 CEST", "2027-10-31 02:30 CEST"}; !slices.Equal(ivs, want) {
		t.Errorf("one-off intervals = %v, want %v", ivs, want)
	}

	ny := mustParse(t, "30 2 * * *", "America/New_York").TemporalSpec(start, 2, SpecOptions{})
	if len(ny.Calendars) != 3 || len(ny.Intervals) != 0 {
		t.Errorf("New York: %d calendars, %d intervals; want the cron and two gap days", len(ny.Calendars), len(ny.Intervals))
	}
	utc := mustParse(t, "*/5 * * * *", "UTC").TemporalSpec(start, 2, SpecOptions{})
	if len(utc.Calendars) != 1 || len(utc.Intervals) != 0 || fmt.Sprint(utc.Calendars[0].Minute) != "[{0 55 5}]" {
		t.Errorf("UTC: %+v", utc)
	}
	every := mustParse(t, "@every 90m", "Europe/Paris").TemporalSpec(start, 2, SpecOptions{})
	if len(every.Calendars) != 0 || len(every.Intervals) != 1 || every.Intervals[0].Every != 90*time.Minute {
		t.Errorf("@every: %+v", every)
	}
}
