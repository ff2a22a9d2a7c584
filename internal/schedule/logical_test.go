package schedule

import (
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func at(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	// "2006-01-02 15:04 MST": the zone abbreviation picks the occurrence.
	date, rest, _ := strings.Cut(s, " ")
	clock, abbr, _ := strings.Cut(rest, " ")
	w, err := time.Parse("2006-01-02 15:04", date+" "+clock)
	if err != nil {
		t.Fatal(err)
	}
	for _, shift := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, 0, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		for off := -14; off <= 14; off++ {
			cand := w.Add(-time.Duration(off) * time.Hour).Add(shift)
			l := cand.In(loc)
			if name, _ := l.Zone(); name == abbr && l.Format("2006-01-02 15:04") == date+" "+clock {
				return l
			}
		}
	}
	t.Fatalf("no instant %s in %s", s, loc)
	return time.Time{}
}

func TestLogical(t *testing.T) {
	tests := []struct {
		name, cron, tz, nominal string
		manual                  bool
		// want: interval start and end (local), logical date, key, skip.
		start, end, date, key string
		skip                  bool
		hours                 float64
	}{
		{name: "normal", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-12-03 02:30 CET",
			start: "2026-12-02 02:30 CET", end: "2026-12-03 02:30 CET", date: "2026-12-02", key: "2026-12-02", hours: 24},
		{name: "gap day: 02:30 runs at 03:30", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2027-03-28 03:30 CEST",
			start: "2027-03-27 02:30 CET", end: "2027-03-28 03:30 CEST", date: "2027-03-27", key: "2027-03-27", hours: 24},
		{name: "after the gap day", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2027-03-29 02:30 CEST",
			start: "2027-03-28 03:30 CEST", end: "2027-03-29 02:30 CEST", date: "2027-03-28", key: "2027-03-28", hours: 23},
		{name: "overlap: the first occurrence runs", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-10-25 02:30 CEST",
			start: "2026-10-24 02:30 CEST", end: "2026-10-25 02:30 CEST", date: "2026-10-24", key: "2026-10-24", hours: 24},
		{name: "overlap: the second occurrence is skipped", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-10-25 02:30 CET",
			start: "2026-10-24 02:30 CEST", end: "2026-10-25 02:30 CEST", date: "2026-10-24", key: "2026-10-24", skip: true, hours: 24},
		{name: "after the overlap day", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-10-26 02:30 CET",
			start: "2026-10-25 02:30 CEST", end: "2026-10-26 02:30 CET", date: "2026-10-25", key: "2026-10-25", hours: 25},
		{name: "west of UTC: the second 01:30 is skipped", cron: "30 1 * * *", tz: "America/New_York", nominal: "2026-11-01 01:30 EST",
			start: "2026-10-31 01:30 EDT", end: "2026-11-01 01:30 EDT", date: "2026-10-31", key: "2026-10-31", skip: true, hours: 24},
		{name: "Temporal's spurious firing is skipped", cron: "30 1 * * *", tz: "Europe/Paris", nominal: "2026-10-25 02:30 CEST",
			start: "2026-10-24 01:30 CEST", end: "2026-10-25 01:30 CEST", date: "2026-10-24", key: "2026-10-24", skip: true, hours: 24},
		{name: "hourly across the gap", cron: "0 * * * *", tz: "America/New_York", nominal: "2026-03-08 03:00 EDT",
			start: "2026-03-08 01:00 EST", end: "2026-03-08 03:00 EDT", date: "2026-03-08", key: "2026-03-08T0100", hours: 1},
		{name: "manual: the most recent complete interval", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-12-03 14:37 CET", manual: true,
			start: "2026-12-02 02:30 CET", end: "2026-12-03 02:30 CET", date: "2026-12-02", key: "2026-12-02", hours: 24},
		{name: "manual at a firing", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-12-03 02:30 CET", manual: true,
			start: "2026-12-02 02:30 CET", end: "2026-12-03 02:30 CET", date: "2026-12-02", key: "2026-12-02", hours: 24},
		{name: "manual before the first firing of the day", cron: "30 2 * * *", tz: "Europe/Paris", nominal: "2026-12-03 01:00 CET", manual: true,
			start: "2026-12-01 02:30 CET", end: "2026-12-02 02:30 CET", date: "2026-12-01", key: "2026-12-01", hours: 24},
		{name: "@every 6h", cron: "@every 6h", tz: "UTC", nominal: "2026-12-03 12:00 UTC",
			start: "2026-12-03 06:00 UTC", end: "2026-12-03 12:00 UTC", date: "2026-12-03", key: "2026-12-03T0600", hours: 6},
		{name: "@every 1h ignores DST: the second 01:00", cron: "@every 1h", tz: "America/New_York", nominal: "2026-11-01 02:00 EST",
			start: "2026-11-01 01:00 EST", end: "2026-11-01 02:00 EST", date: "2026-11-01", key: "2026-11-01T0100-0500", hours: 1},
		{name: "@every 1h ignores DST: the first 01:00", cron: "@every 1h", tz: "America/New_York", nominal: "2026-11-01 01:00 EST",
			start: "2026-11-01 01:00 EDT", end: "2026-11-01 01:00 EST", date: "2026-11-01", key: "2026-11-01T0100", hours: 1},
		{name: "@every 24h is daily", cron: "@every 24h", tz: "UTC", nominal: "2026-12-03 00:00 UTC",
			start: "2026-12-02 00:00 UTC", end: "2026-12-03 00:00 UTC", date: "2026-12-02", key: "2026-12-02", hours: 24},
		{name: "@every 30s", cron: "@every 30s", tz: "UTC", nominal: "2026-12-03 12:00 UTC",
			start: "2026-12-03 11:59 UTC", end: "2026-12-03 12:00 UTC", date: "2026-12-03", key: "2026-12-03T115930", hours: 30.0 / 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.cron, tt.tz)
			loc := c.Location()
			nominal := at(t, loc, tt.nominal)
			run, err := c.Logical(nominal, tt.manual)
			if err != nil {
				t.Fatal(err)
			}
			wantStart, wantEnd := at(t, loc, tt.start), at(t, loc, tt.end)
			if tt.cron == "@every 30s" {
				wantStart = wantStart.Add(30 * time.Second)
			}
			if !run.IntervalStart.Equal(wantStart) || !run.IntervalEnd.Equal(wantEnd) {
				t.Errorf("interval = [%s, %s), want [%s, %s)", c.format(run.IntervalStart), c.format(run.IntervalEnd), tt.start, tt.end)
			}
			if run.LogicalDate != tt.date || run.Key != tt.key || run.Skip != tt.skip || run.Manual != tt.manual {
				t.Errorf("run = %+v; want date %s key %s skip %v", run, tt.date, tt.key, tt.skip)
			}
			if run.Skip != (run.SkipReason != "") {
				t.Errorf("Skip %v with reason %q", run.Skip, run.SkipReason)
			}
			if h := run.IntervalEnd.Sub(run.IntervalStart).Hours(); h != tt.hours {
				t.Errorf("interval of %gh, want %gh", h, tt.hours)
			}
			if !run.Nominal.Equal(nominal) {
				t.Errorf("Nominal = %s, want %s", run.Nominal, nominal)
			}
			if lt, err := time.Parse(time.RFC3339, run.LogicalTime); err != nil || !lt.Equal(run.IntervalStart) || lt.Format("-07:00") != run.IntervalStart.Format("-07:00") {
				t.Errorf("LogicalTime = %q, want the interval start with its offset", run.LogicalTime)
			}
		})
	}
	c := mustParse(t, "30 2 * * *", "Europe/Paris")
	if run, _ := c.Logical(at(t, c.Location(), "2026-10-25 02:30 CET"), false); !strings.Contains(run.SkipReason, "second occurrence") {
		t.Errorf("SkipReason = %q", run.SkipReason)
	}
	if _, err := c.Logical(time.Time{}, false); err == nil {
		t.Error("Logical(zero) succeeded")
	}
}

func TestClassify(t *testing.T) {
	ny := mustParse(t, "30 1 * * *", "America/New_York")
	paris := mustParse(t, "30 1 * * *", "Europe/Paris")
	tests := []struct {
		c    *Cron
		at   string
		want Kind
	}{
		{ny, "2026-12-03 01:30 EST", OnGrid},
		{ny, "2026-11-01 01:30 EDT", OnGrid},
		{ny, "2026-11-01 01:30 EST", Repeated},
		{ny, "2026-12-03 14:37 EST", OffGrid},
		{paris, "2026-10-25 01:30 CEST", OnGrid},
		{paris, "2026-10-25 02:30 CEST", Repeated},
		{paris, "2026-10-25 02:30 CET", OffGrid},
	}
	for _, tt := range tests {
		got, err := tt.c.Classify(at(t, tt.c.Location(), tt.at))
		if err != nil || got != tt.want {
			t.Errorf("%q in %s: Classify(%s) = %v, %v; want %v", tt.c, tt.c.Location(), tt.at, got, err, tt.want)
		}
	}
	// The one-off interval for Paris's first 02:30 (CEST) on 2026-10-25
	// fires again at twice its Unix time.
	p2 := mustParse(t, "30 2 * * *", "Europe/Paris")
	first := at(t, p2.Location(), "2026-10-25 02:30 CEST")
	if k, _ := p2.Classify(time.Unix(2*first.Unix(), 0)); k != Repeated {
		t.Errorf("the one-off interval's echo: %v", k)
	}
	if k, _ := ny.Classify(at(t, ny.Location(), "2026-12-03 01:30 EST").Add(time.Second)); k != OffGrid {
		t.Errorf("a second after a firing: %v", k)
	}
}

func TestDates(t *testing.T) {
	c := mustParse(t, "30 2 * * *", "Europe/Paris")
	runs, err := c.Dates("2026-12-01", "2026-12-30")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 30 {
		t.Fatalf("%d runs, want 30", len(runs))
	}
	for i, r := range runs {
		want := time.Date(2026, 12, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		if r.LogicalDate != want || r.Key != want || r.Skip {
			t.Errorf("run %d = %+v, want logical date %s", i, r, want)
		}
		if got := c.format(r.IntervalEnd); got != time.Date(2026, 12, 2+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)+" 02:30 CET" {
			t.Errorf("run %d ends at %s", i, got)
		}
		if one, err := c.Logical(r.IntervalEnd, false); err != nil || one != r {
			t.Errorf("run %d = %+v; Logical of its end = %+v, %v", i, r, one, err)
		}
	}
	// Across the spring-forward day.
	runs, err = c.Dates("2027-03-27", "2027-03-29")
	if err != nil || len(runs) != 3 || c.format(runs[0].IntervalEnd) != "2027-03-28 03:30 CEST" || runs[1].LogicalDate != "2027-03-28" {
		t.Errorf("spring-forward dates = %+v, %v", runs, err)
	}

	hourly := mustParse(t, "0 * * * *", "Europe/Paris")
	if runs, err := hourly.Dates("2026-12-01", "2026-12-01"); err != nil || len(runs) != 24 || runs[0].Key != "2026-12-01T0000" || runs[23].Key != "2026-12-01T2300" {
		t.Errorf("hourly dates: %d runs, %v", len(runs), err)
	}
	if runs, err := hourly.Dates("2026-12-01T10:00", "2026-12-01T1200"); err != nil || len(runs) != 3 || runs[0].Key != "2026-12-01T1000" {
		t.Errorf("hourly times: %+v, %v", runs, err)
	}
	// The spring-forward day has 23 hourly slots, the fall-back day 25
	// hours but 24 slots (the repeated hour runs once).
	if runs, _ := hourly.Dates("2027-03-28", "2027-03-28"); len(runs) != 23 {
		t.Errorf("spring-forward day: %d hourly runs, want 23", len(runs))
	}
	if runs, _ := hourly.Dates("2026-10-25", "2026-10-25"); len(runs) != 24 {
		t.Errorf("fall-back day: %d hourly runs, want 24", len(runs))
	}
	for _, bad := range [][2]string{{"2026-12-31", "2026-12-01"}, {"yesterday", "2026-12-01"}, {"2026-12-01", "2026-13-01"}} {
		if _, err := c.Dates(bad[0], bad[1]); err == nil {
			t.Errorf("Dates(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

func TestMinInterval(t *testing.T) {
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	tests := []struct {
		cron, tz string
		want     time.Duration
		at       string
	}{
		{"30 2 * * *", "UTC", 24 * time.Hour, ""},
		{"30 2 * * *", "Europe/Paris", 23 * time.Hour, "2027-03-29 02:30 CEST"},
		{"0,45 1,3 * * *", "America/New_York", 15 * time.Minute, "2027-03-14 03:00 EDT"},
		{"*/15 * * * *", "UTC", 15 * time.Minute, ""},
		{"0 0 1 * *", "UTC", 28 * 24 * time.Hour, "2027-03-01 00:00 UTC"},
		{"@every 90m", "Europe/Paris", 90 * time.Minute, ""},
		{"0 9 * * 1-5", "UTC", 24 * time.Hour, ""},
	}
	for _, tt := range tests {
		c := mustParse(t, tt.cron, tt.tz)
		gap, end := c.MinIntervalIn(from, to)
		if gap != tt.want || tt.at != "" && c.format(end) != tt.at {
			t.Errorf("%q in %s: MinIntervalIn = %v at %s, want %v at %s", tt.cron, tt.tz, gap, c.format(end), tt.want, tt.at)
		}
	}
	if got := mustParse(t, "@hourly", "UTC").MinInterval(); got != time.Hour {
		t.Errorf("MinInterval(@hourly) = %v", got)
	}
}

func TestNotes(t *testing.T) {
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		cron, tz string
		n        int
		want     []string
	}{
		{"30 2 * * *", "Europe/Paris", 365, []string{
			"2027-03-28 02:30 does not exist in Europe/Paris (clocks jump 02:00→03:00): Kiln runs at 03:30 CEST",
			"2027-10-31 02:30 occurs twice in Europe/Paris (clocks go back 03:00→02:00): Kiln runs once, at the first occurrence (02:30 CEST)",
		}},
		{"30 1 * * *", "America/New_York", 365, []string{
			"2027-11-07 01:30 occurs twice in America/New_York (clocks go back 02:00→01:00): Kiln runs once, at the first occurrence (01:30 EDT); Temporal also fires the second (01:30 EST), which Kiln skips",
		}},
		{"30 1 * * *", "Europe/Paris", 365, []string{
			"Temporal's calendar also fires at 2027-10-31 02:30 CEST (a DST artefact, temporalio/temporal#8205); Kiln's launcher skips that firing",
		}},
		{"0 * * * *", "America/New_York", 24 * 80, []string{
			"2027-03-14 02:00 does not exist in America/New_York (clocks jump 02:00→03:00): its run would move to 03:00 EDT, which is already a run, so Kiln runs once then",
		}},
		{"30 2 * * *", "UTC", 365, nil},
		{"30 2 * * *", "Europe/Paris", 30, nil},
		{"@every 6h", "Europe/Paris", 4 * 100, []string{
			`clocks change in Europe/Paris on 2027-03-28: "@every 6h" keeps its spacing in absolute time, so local run times move by +1h from 2027-03-28 08:00 CEST`,
		}},
	}
	for _, tt := range tests {
		c := mustParse(t, tt.cron, tt.tz)
		var got []string
		for _, n := range c.Notes(from, tt.n) {
			got = append(got, n.Message)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%q in %s: Notes =\n%s\nwant\n%s", tt.cron, tt.tz, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestNotesBetween(t *testing.T) {
	c := mustParse(t, "30 2 * * *", "Europe/Paris")
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := c.Notes(from, 365), c.NotesBetween(from, from.AddDate(1, 0, 0))
	if len(a) != 2 || len(b) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Errorf("Notes = %+v\nNotesBetween = %+v", a, b)
	}
	if n := c.NotesBetween(from, from); n != nil {
		t.Errorf("empty window: %+v", n)
	}
}

func TestMemo(t *testing.T) {
	c := mustParse(t, "30 2 * * 1-5", "Europe/Paris")
	horizon := time.Date(2028, 12, 3, 0, 0, 0, 0, time.UTC)
	dc := converter.GetDefaultDataConverter()
	memo := &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
	for k, v := range c.Memo(horizon) {
		p, err := dc.ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		memo.Fields[k] = p
	}
	cron, tz, h, ok, err := ReadMemo(memo)
	if err != nil || !ok || cron != "30 2 * * 1-5" || tz != "Europe/Paris" || !h.Equal(horizon) {
		t.Errorf("ReadMemo = %q, %q, %v, %v, %v", cron, tz, h, ok, err)
	}
	back, err := FromMemo(memo)
	if err != nil || back.String() != c.String() || back.Location().String() != "Europe/Paris" {
		t.Errorf("FromMemo = %v, %v", back, err)
	}
	if _, _, _, ok, err := ReadMemo(&commonpb.Memo{}); ok || err != nil {
		t.Errorf("ReadMemo(empty) = %v, %v", ok, err)
	}
	if _, err := FromMemo(nil); err == nil {
		t.Error("FromMemo(nil) succeeded")
	}
}

func TestNextPrev(t *testing.T) {
	c := mustParse(t, "*/20 * * * *", "America/New_York")
	loc := c.Location()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	to := from.AddDate(1, 0, 0)
	fs := kilnFirings(c, from, to)
	for i := 1; i < len(fs); i++ {
		if p := c.Prev(fs[i]); !p.Equal(fs[i-1]) {
			t.Fatalf("Prev(%s) = %s, want %s", c.format(fs[i]), c.format(p), c.format(fs[i-1]))
		}
		if mid := fs[i-1].Add(fs[i].Sub(fs[i-1]) / 2); !c.Next(mid).Equal(fs[i]) || !c.Prev(mid).Equal(fs[i-1]) {
			t.Fatalf("Next/Prev around %s", c.format(mid))
		}
	}
	// 3 slots a hour; the spring-forward day loses 3, the fall-back day none.
	if want := 365*24*3 - 3; len(fs) != want {
		t.Errorf("%d firings in 2026, want %d", len(fs), want)
	}
	e := mustParse(t, "@every 90m", "UTC")
	if n := e.Next(time.Unix(0, 0)); n.Unix() != 5400 {
		t.Errorf("@every 90m: Next(epoch) = %v", n)
	}
	if p := e.Prev(time.Unix(5400, 0)); p.Unix() != 0 {
		t.Errorf("@every 90m: Prev = %v", p)
	}
	if p := e.Prev(time.Unix(5401, 0)); p.Unix() != 5400 {
		t.Errorf("@every 90m: Prev = %v", p)
	}
}
