package schedule

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Run is what one firing of a schedule is about: its data interval and
// logical date.
type Run struct {
	// Nominal is the firing's nominal time: the time Temporal reports
	// (TemporalScheduledStartTime), or the instant of a manual trigger.
	Nominal time.Time `json:"nominal"`
	// IntervalStart and IntervalEnd are the data interval [start, end):
	// the previous firing and this one (for a manual run, the most recent
	// firing at or before the trigger).
	IntervalStart time.Time `json:"interval_start"`
	IntervalEnd   time.Time `json:"interval_end"`
	// LogicalDate is the local date of IntervalStart ("2006-01-02"), as in
	// Airflow: a daily 02:30 run firing on 2026-12-03 has the interval
	// [2026-12-02 02:30, 2026-12-03 02:30) and logical date 2026-12-02.
	LogicalDate string `json:"logical_date"`
	// LogicalTime is IntervalStart in the schedule's time zone, RFC 3339
	// with the offset ("2026-12-02T02:30:00+01:00").
	LogicalTime string `json:"logical_time"`
	// Key names the run in workflow IDs and dated outputs: the logical date
	// for schedules that fire at most once per local date (OncePerDay),
	// else the local logical time "2006-01-02T1504" ("2006-01-02T150405"
	// for intervals that are not whole minutes). The second occurrence of
	// a local time repeated by a DST fall-back, which only @every
	// schedules run, gets the offset too ("2026-11-01T0130-0500").
	Key string `json:"key"`
	// Skip is true when Temporal fired at Nominal but Kiln's rule does not
	// fire then (the second occurrence of a repeated local time, or a DST
	// artefact of Temporal's calendar): the launcher runs nothing.
	// SkipReason says why. The interval and key are then those of the run
	// Kiln did fire (or the most recent one), so that a launcher that
	// ignored Skip would collide with it instead of running twice.
	Skip       bool   `json:"skip,omitempty"`
	SkipReason string `json:"skip_reason,omitempty"`
	// Manual is true for the run of a manual trigger.
	Manual bool `json:"manual,omitempty"`
}

// Logical returns the run of a firing at nominal, the time Temporal
// reports as the firing's nominal time (never the wall clock at start).
//
// With manual false, nominal is expected to be a firing: the run's
// interval ends at it and starts at the previous firing. A nominal time
// that is not a firing of Kiln's rule but one Temporal fires (see Classify)
// gives a run with Skip set.
//
// With manual true (a trigger at an arbitrary instant), the run is the
// most recent complete interval: it ends at the latest firing at or before
// nominal.
func (c *Cron) Logical(nominal time.Time, manual bool) (Run, error) {
	if nominal.IsZero() {
		return Run{}, errors.New("no nominal time")
	}
	if manual {
		end := nominal
		if !c.IsFiring(end) {
			end = c.Prev(nominal)
		}
		r, err := c.runEnding(end)
		if err != nil {
			return Run{}, err
		}
		r.Nominal, r.Manual = nominal, true
		return r, nil
	}
	if c.IsFiring(nominal) {
		return c.runEnding(nominal)
	}
	local := c.format(nominal)
	if c.every == 0 && c.secondOccurrence(nominal) {
		first := c.resolve(c.naive(nominal)).at
		r, err := c.runEnding(first)
		if err != nil {
			return Run{}, err
		}
		r.Nominal, r.Skip = nominal, true
		r.SkipReason = fmt.Sprintf("%s is the second occurrence of %s in %s (clocks went back); Kiln runs each local time once, at its first occurrence (%s, run %s)",
			local, nominal.In(c.loc).Format("15:04"), c.loc, c.format(first), r.Key)
		return r, nil
	}
	r, err := c.runEnding(c.Prev(nominal))
	if err != nil {
		return Run{}, err
	}
	r.Nominal, r.Skip = nominal, true
	r.SkipReason = fmt.Sprintf("%s is not a firing of %q in %s under Kiln's rule (a DST artefact of Temporal's calendar, or not a time of this schedule); the latest firing is run %s",
		local, c.text, c.loc, r.Key)
	return r, nil
}

// format writes an instant as local date, time and zone abbreviation.
func (c *Cron) format(t time.Time) string {
	return t.In(c.loc).Format("2006-01-02 15:04 MST")
}

// runEnding is the run whose interval ends at the firing end.
func (c *Cron) runEnding(end time.Time) (Run, error) {
	if end.IsZero() {
		return Run{}, fmt.Errorf("%q in %s has no firing before that time", c.text, c.loc)
	}
	start := c.Prev(end)
	if start.IsZero() {
		return Run{}, fmt.Errorf("%q in %s has no firing before %s", c.text, c.loc, c.format(end))
	}
	return c.run(start, end), nil
}

// run is the run of the interval [start, end).
func (c *Cron) run(start, end time.Time) Run {
	l := start.In(c.loc)
	return Run{
		Nominal: end.In(c.loc), IntervalStart: l, IntervalEnd: end.In(c.loc),
		LogicalDate: l.Format(time.DateOnly), LogicalTime: l.Format(time.RFC3339), Key: c.key(start),
	}
}

// key is the run key of the interval starting at start.
func (c *Cron) key(start time.Time) string {
	l := start.In(c.loc)
	if c.oncePerDay {
		return l.Format(time.DateOnly)
	}
	layout := "2006-01-02T1504"
	if c.every%time.Minute != 0 {
		layout = "2006-01-02T150405"
	}
	k := l.Format(layout)
	if c.every > 0 {
		if r := c.resolve(c.naive(start)); r.kind == wallRepeated && r.second.Equal(start) {
			k += l.Format("-0700")
		}
	}
	return k
}

// maxDates bounds the runs Dates returns.
const maxDates = 100_000

// Dates returns the runs whose logical dates (or, for schedules firing
// more than once a day, logical times) are in [from, to], in order: what a
// backfill of that range runs. from and to are local dates "2006-01-02" in
// the schedule's time zone (to includes the whole day), local times
// "2006-01-02T15:04" (or "2006-01-02T1504", with optional seconds), or
// RFC 3339 instants.
func (c *Cron) Dates(from, to string) ([]Run, error) {
	lo, _, err := c.bound(from, false)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	hi, exclusive, err := c.bound(to, true)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if hi.Before(lo) {
		return nil, fmt.Errorf("from %s is after to %s", from, to)
	}
	inRange := func(t time.Time) bool {
		if exclusive {
			return t.Before(hi)
		}
		return !t.After(hi)
	}
	s := lo
	if !c.IsFiring(s) {
		s = c.Next(lo)
	}
	var out []Run
	for !s.IsZero() && inRange(s) {
		e := c.Next(s)
		if e.IsZero() {
			break
		}
		if len(out) == maxDates {
			return nil, fmt.Errorf("more than %d runs from %s to %s; backfill a shorter range", maxDates, from, to)
		}
		out = append(out, c.run(s, e))
		s = e
	}
	return out, nil
}

var localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T150405", "2006-01-02T1504"}

// bound reads a Dates bound. A date as an upper bound covers the whole
// day: the result is the next day's start, exclusive.
func (c *Cron) bound(s string, upper bool) (time.Time, bool, error) {
	s = strings.TrimSpace(s)
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if upper {
			d = d.AddDate(0, 0, 1)
		}
		return c.resolve(d).at, upper, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, false, nil
	}
	for _, layout := range localLayouts {
		if w, err := time.Parse(layout, s); err == nil {
			return c.resolve(w).at, false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date (2006-01-02), a local time (2006-01-02T15:04) or an RFC 3339 time", s)
}

// MinInterval returns the shortest time between two consecutive firings
// over the coming year (DST transitions included: a daily schedule in a
// zone with DST has a 23-hour interval on the spring-forward day).
func (c *Cron) MinInterval() time.Duration {
	gap, _ := c.MinIntervalIn(time.Now(), time.Now().AddDate(1, 0, 0))
	return gap
}

// MinIntervalIn returns the shortest time between two consecutive firings
// starting in [from, to), and the firing that ends it; 0 when fewer than two
// firings start there.
func (c *Cron) MinIntervalIn(from, to time.Time) (time.Duration, time.Time) {
	if c.every > 0 {
		return c.every, c.Next(from)
	}
	var best time.Duration
	var at time.Time
	consider := func(s, e time.Time) {
		if s.Before(from) || !s.Before(to) {
			return
		}
		if gap := e.Sub(s); best == 0 || gap < best || gap == best && e.Before(at) {
			best, at = gap, e
		}
	}
	// Near DST transitions, measure Kiln's firings.
	const near = 48 * time.Hour
	trs := c.transitions(from.Add(-near), to.Add(near))
	for _, tr := range trs {
		s := c.Prev(tr.Add(-near - time.Hour))
		if s.IsZero() {
			s = c.Next(tr.Add(-near - time.Hour))
		}
		for !s.IsZero() && !s.After(tr.Add(near+time.Hour)) && s.Before(to) && best != time.Minute {
			e := c.Next(s)
			if e.IsZero() {
				break
			}
			consider(s, e)
			s = e
		}
	}
	// Elsewhere wall-clock times map one to one to instants with one
	// offset: measure the gaps between matching wall-clock times.
	isNear := func(t time.Time) bool {
		i := sort.Search(len(trs), func(i int) bool { return !trs[i].Before(t.Add(-near)) })
		return i < len(trs) && trs[i].Before(t.Add(near))
	}
	var prev time.Time
	for w := c.nextWall(c.naive(from), true, searchYears); !w.IsZero() && best != time.Minute; w = c.nextWall(w, false, searchYears) {
		t := w.Add(-time.Duration(c.offsetAt(w)) * time.Second)
		if !t.Before(to) {
			break
		}
		if isNear(t) {
			prev = time.Time{}
			continue
		}
		if !prev.IsZero() {
			consider(prev, t)
		}
		prev = t
	}
	return best, at
}
