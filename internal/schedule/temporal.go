package schedule

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// Memo keys of a Kiln schedule: Temporal's Describe returns the spec only as
// structured calendars, so the schedule's source is kept in its memo.
const (
	// MemoCron holds the spec's schedule.cron, as written.
	MemoCron = "kiln_cron"
	// MemoTimezone holds the time zone name.
	MemoTimezone = "kiln_timezone"
	// MemoHorizon holds the end (RFC 3339) of the window TemporalSpec added
	// DST fix-ups for; the schedule must be updated before then.
	MemoHorizon = "kiln_dst_until"
)

// SpecOptions are the parts of a Temporal schedule spec that do not come
// from the cron.
type SpecOptions struct {
	// Jitter delays each action by a random time up to Jitter (the nominal
	// time, and so the logical date, does not change).
	Jitter time.Duration
	// Start and End bound the firings (inclusive); zero means unbounded.
	Start, End time.Time
}

// TemporalSpec returns the Temporal schedule spec that makes Temporal fire
// at every firing of Kiln's rule from from to years years later: the cron as
// one StructuredCalendarSpec in the schedule's time zone, plus fix-ups for
// the DST transitions in that window, where Temporal's calendar would miss
// a firing: a one-off StructuredCalendarSpec (year, month, day, hour,
// minute) for each shifted time of a gap day, and a one-off interval (every
// N seconds since the epoch, N the firing's Unix time, so it fires at the
// firing and next at twice that, around 2080) for the first occurrence of a
// repeated time that no calendar in the zone can name (zones east of UTC).
//
// Temporal may fire more than Kiln's rule: second occurrences of repeated
// times, and artefacts of its DST handling. The launcher skips those
// (Classify, Logical). After the window Temporal's own behaviour resumes:
// update the schedule (with a new from) before the horizon (Memo).
//
// An @every schedule becomes an interval spec, with no fix-ups (intervals
// ignore DST in both Kiln and Temporal).
//
// opts (at most one is used) sets the spec's jitter and bounds; they can
// also be set on the result.
func (c *Cron) TemporalSpec(from time.Time, years int, opts ...SpecOptions) client.ScheduleSpec {
	var opt SpecOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
	spec := client.ScheduleSpec{TimeZoneName: c.loc.String(), Jitter: opt.Jitter, StartAt: opt.Start, EndAt: opt.End}
	if c.every > 0 {
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: c.every}}
		return spec
	}
	spec.Calendars = []client.ScheduleCalendarSpec{c.mainCalendar()}
	to := from.AddDate(max(years, 0), 0, 0)
	main := c.modelOf(spec)
	missing, _ := c.temporalDiff(main, from, to, false)
	if len(missing) == 0 {
		return spec
	}
	// Shifted times of gap days are unambiguous local times: one calendar
	// per local hour. The rest get one-off intervals.
	useInterval := map[int64]bool{}
	for range 3 {
		fixed := spec
		fixed.Calendars = append([]client.ScheduleCalendarSpec(nil), spec.Calendars...)
		type hourKey struct{ y, m, d, h int }
		minutes := map[hourKey]uint64{}
		var order []hourKey
		for _, k := range missing {
			r := c.resolve(c.naive(k))
			if y := k.In(c.loc).Year(); useInterval[k.Unix()] || r.kind != wallUnique || y < 2000 || y > maxCalendarYear {
				fixed.Intervals = append(fixed.Intervals, client.ScheduleIntervalSpec{Every: time.Duration(k.Unix()) * time.Second})
				continue
			}
			l := k.In(c.loc)
			hk := hourKey{l.Year(), int(l.Month()), l.Day(), l.Hour()}
			if _, ok := minutes[hk]; !ok {
				order = append(order, hk)
			}
			minutes[hk] |= 1 << l.Minute()
		}
		for _, hk := range order {
			fixed.Calendars = append(fixed.Calendars, client.ScheduleCalendarSpec{
				Second:     []client.ScheduleRange{{Start: 0}},
				Minute:     rangesOf(minutes[hk], 0, 59),
				Hour:       []client.ScheduleRange{{Start: hk.h}},
				DayOfMonth: []client.ScheduleRange{{Start: hk.d}},
				Month:      []client.ScheduleRange{{Start: hk.m}},
				Year:       []client.ScheduleRange{{Start: hk.y}},
				DayOfWeek:  []client.ScheduleRange{{Start: 0, End: 6}},
				Comment: fmt.Sprintf("kiln: runs of local times skipped by the DST change in %s on %04d-%02d-%02d, shifted forward",
					c.loc, hk.y, hk.m, hk.d),
			})
		}
		// Check the whole spec against Kiln's rule; a calendar that does not
		// fire as expected becomes an interval.
		still, _ := c.temporalDiff(c.modelOf(fixed), from, to, true)
		if len(still) == 0 {
			return fixed
		}
		for _, k := range still {
			useInterval[k.Unix()] = true
		}
		missing = uniqueTimes(append(missing, still...))
	}
	for _, k := range missing {
		spec.Intervals = append(spec.Intervals, client.ScheduleIntervalSpec{Every: time.Duration(k.Unix()) * time.Second})
	}
	return spec
}

// mainCalendar is the cron as a Temporal calendar spec.
func (c *Cron) mainCalendar() client.ScheduleCalendarSpec {
	return client.ScheduleCalendarSpec{
		Second:     []client.ScheduleRange{{Start: 0}},
		Minute:     rangesOf(c.minute, 0, 59),
		Hour:       rangesOf(c.hour, 0, 23),
		DayOfMonth: rangesOf(c.dom, 1, 31),
		Month:      rangesOf(c.month, 1, 12),
		DayOfWeek:  rangesOf(c.dow, 0, 6),
		Comment:    truncate(fmt.Sprintf("kiln cron %q", c.text), 200),
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// rangesOf writes a set of values as Temporal ranges: one range when the
// values are an arithmetic progression, else maximal runs.
func rangesOf(set uint64, lo, hi int) []client.ScheduleRange {
	var vals []int
	for v := lo; v <= hi; v++ {
		if set&(1<<v) != 0 {
			vals = append(vals, v)
		}
	}
	if len(vals) >= 3 {
		step := vals[1] - vals[0]
		progression := true
		for i := 2; i < len(vals); i++ {
			progression = progression && vals[i]-vals[i-1] == step
		}
		if progression {
			r := client.ScheduleRange{Start: vals[0], End: vals[len(vals)-1]}
			if step > 1 {
				r.Step = step
			}
			return []client.ScheduleRange{r}
		}
	}
	var out []client.ScheduleRange
	for _, r := range runs(set) {
		out = append(out, client.ScheduleRange{Start: r[0], End: r[1]})
	}
	return out
}

// uniqueTimes sorts ts and removes repeats.
func uniqueTimes(ts []time.Time) []time.Time {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	out := ts[:0]
	for i, t := range ts {
		if i == 0 || !t.Equal(ts[i-1]) {
			out = append(out, t)
		}
	}
	return out
}

// transitions returns the instants in [from, to) at which the zone's
// offset changes.
func (c *Cron) transitions(from, to time.Time) []time.Time {
	var out []time.Time
	const step = 6 * time.Hour
	prev := c.offsetAt(from)
	for t := from; t.Before(to); t = t.Add(step) {
		next := t.Add(step)
		o := c.offsetAt(next)
		if o == prev {
			continue
		}
		lo, hi := t, next // offsetAt(lo) == prev, offsetAt(hi) != prev
		for hi.Sub(lo) > time.Second {
			mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
			if !mid.After(lo) {
				break
			}
			if c.offsetAt(mid) == prev {
				lo = mid
			} else {
				hi = mid
			}
		}
		if !hi.Before(from) && hi.Before(to) {
			out = append(out, hi)
		}
		prev = o
	}
	return out
}

// diffWindow is how far around a DST transition Temporal's firings are
// compared with Kiln's.
const diffWindow = 36 * time.Hour

// temporalDiff compares the firings of the Temporal model m with Kiln's
// rule around each DST transition in [from, to). It returns Kiln's firings
// that Temporal would miss and Temporal's firings that are not Kiln's
// (extras). Unless exact, m is assumed to be extended with a fix-up for
// each missed firing (which then fires), as TemporalSpec does.
func (c *Cron) temporalDiff(m *tmodel, from, to time.Time, exact bool) (missing, extras []time.Time) {
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, tr := range c.transitions(from.Add(-diffWindow), to.Add(diffWindow)) {
		end := tr.Add(diffWindow)
		x := c.Prev(tr.Add(-diffWindow))
		if x.IsZero() {
			x = tr.Add(-diffWindow)
		}
		for range 1_000_000 {
			n, k := m.next(x), c.Next(x)
			var step time.Time
			switch {
			case n.IsZero() && k.IsZero():
			case !n.IsZero() && n.Equal(k):
				step = k
			case !k.IsZero() && (n.IsZero() || k.Before(n)):
				// Temporal would not fire k.
				if in(k) {
					missing = append(missing, k)
				}
				step = k
				if exact {
					// Temporal goes on from n; k is lost.
					step = n
					if !n.IsZero() && in(n) && !c.IsFiring(n) {
						extras = append(extras, n)
					}
				}
			default:
				// Temporal fires n, which is not a firing of Kiln's rule.
				if in(n) {
					extras = append(extras, n)
				}
				step = n
			}
			if step.IsZero() || step.After(end) {
				break
			}
			x = step
		}
	}
	return uniqueTimes(missing), uniqueTimes(extras)
}

// Kind classifies an instant Temporal reports as a schedule's nominal time.
type Kind int

const (
	// OnGrid: a firing under Kiln's rule; run it.
	OnGrid Kind = iota
	// Repeated: Temporal fires it for Kiln's spec but Kiln's rule does not
	// (the second occurrence of a local time repeated by a DST fall-back,
	// or another DST artefact of Temporal's calendar); skip it.
	Repeated
	// OffGrid: not a time the schedule fires at all: a manual trigger
	// (kiln schedules trigger, Temporal's TriggerImmediately).
	OffGrid
)

func (k Kind) String() string {
	switch k {
	case OnGrid:
		return "on-grid"
	case Repeated:
		return "repeated"
	}
	return "off-grid"
}

// Classify says what a nominal time Temporal reports for this schedule is.
func (c *Cron) Classify(t time.Time) (Kind, error) {
	if t.IsZero() {
		return OffGrid, errors.New("no nominal time")
	}
	switch {
	case c.IsFiring(t):
		return OnGrid, nil
	case c.every > 0:
		return OffGrid, nil
	case c.secondOccurrence(t) || c.temporalFires(t) || c.helperEcho(t):
		return Repeated, nil
	}
	return OffGrid, nil
}

// helperEcho reports whether t is the second firing of a one-off interval
// TemporalSpec adds for a first occurrence F (every F seconds since the
// epoch: it fires again at 2F, decades later).
func (c *Cron) helperEcho(t time.Time) bool {
	if c.every > 0 || t.Unix()%2 != 0 {
		return false
	}
	f := time.Unix(t.Unix()/2, 0)
	w := c.naive(f)
	if !c.wallMatches(w) {
		return false
	}
	r := c.resolve(w)
	return r.kind == wallRepeated && r.at.Equal(f)
}

// secondOccurrence reports whether t is the second occurrence of a local
// time the cron matches.
func (c *Cron) secondOccurrence(t time.Time) bool {
	w := c.naive(t)
	if !c.wallMatches(w) {
		return false
	}
	r := c.resolve(w)
	return r.kind == wallRepeated && r.second.Equal(t)
}

// temporalFires reports whether Temporal, running the spec TemporalSpec
// builds, fires at t (simulated from Kiln's previous firing).
func (c *Cron) temporalFires(t time.Time) bool {
	if c.every > 0 {
		return false
	}
	x := c.Prev(t)
	if x.IsZero() {
		return false
	}
	m := c.modelOf(client.ScheduleSpec{TimeZoneName: c.loc.String(), Calendars: []client.ScheduleCalendarSpec{c.mainCalendar()}})
	for range 100_000 {
		n, k := m.next(x), c.Next(x)
		if n.IsZero() || !k.IsZero() && k.Before(n) {
			n = k
		}
		if n.IsZero() || n.After(t) {
			return false
		}
		if n.Equal(t) {
			return true
		}
		x = n
	}
	return false
}

// Memo returns the memo fields a Kiln schedule carries: the cron, the time
// zone and the end of the DST fix-ups (the from+years of TemporalSpec).
func (c *Cron) Memo(horizon time.Time) map[string]any {
	m := map[string]any{MemoCron: c.text, MemoTimezone: c.loc.String()}
	if !horizon.IsZero() {
		m[MemoHorizon] = horizon.UTC().Format(time.RFC3339)
	}
	return m
}

// ReadMemo reads a schedule's memo (from Describe or List): the cron text,
// the time zone and the DST fix-up horizon (zero when absent). ok is false
// when the memo has no kiln_cron (not a Kiln schedule).
func ReadMemo(memo *commonpb.Memo) (cron, timezone string, horizon time.Time, ok bool, err error) {
	fields := memo.GetFields()
	dc := converter.GetDefaultDataConverter()
	read := func(key string, dst *string) (bool, error) {
		p, found := fields[key]
		if !found {
			return false, nil
		}
		if err := dc.FromPayload(p, dst); err != nil {
			return false, fmt.Errorf("schedule memo %s: %w", key, err)
		}
		return true, nil
	}
	if ok, err = read(MemoCron, &cron); err != nil || !ok {
		return "", "", time.Time{}, false, err
	}
	if _, err = read(MemoTimezone, &timezone); err != nil {
		return "", "", time.Time{}, false, err
	}
	var h string
	if found, err := read(MemoHorizon, &h); err != nil {
		return "", "", time.Time{}, false, err
	} else if found {
		if horizon, err = time.Parse(time.RFC3339, h); err != nil {
			return "", "", time.Time{}, false, fmt.Errorf("schedule memo %s: %w", MemoHorizon, err)
		}
	}
	return cron, timezone, horizon, true, nil
}

// FromMemo parses the cron a schedule's memo holds (see ReadMemo).
func FromMemo(memo *commonpb.Memo) (*Cron, error) {
	cron, tz, _, ok, err := ReadMemo(memo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("the schedule's memo has no %s: it was not created by Kiln", MemoCron)
	}
	return Parse(cron, tz)
}

// A model of the Temporal server's schedule spec matching (go.temporal.io/
// server v1.32.1, service/worker/scheduler: compiledCalendar.next in
// calendar.go, CompiledSpec.rawNextTime and nextIntervalTime in spec.go),
// so that Kiln can tell, without a server, what Temporal will fire. The
// tests compare it with the server's code.

// tcal is a compiled calendar.
type tcal struct {
	loc                                   *time.Location
	years                                 []int // empty: every year
	month, dom, dow, hour, minute, second uint64
}

// tinterval is an interval spec, in seconds.
type tinterval struct{ every, phase int64 }

// tmodel is a compiled schedule spec (without excludes, start and end).
type tmodel struct {
	cals      []*tcal
	intervals []tinterval
}

// modelOf compiles spec, applying the SDK's defaults for missing fields.
func (c *Cron) modelOf(spec client.ScheduleSpec) *tmodel {
	loc := c.loc
	if spec.TimeZoneName != "" {
		if l, err := time.LoadLocation(spec.TimeZoneName); err == nil {
			loc = l
		}
	}
	m := &tmodel{}
	for _, cal := range spec.Calendars {
		tc := &tcal{loc: loc}
		set := func(r []client.ScheduleRange, def client.ScheduleRange) uint64 {
			if r == nil {
				r = []client.ScheduleRange{def}
			}
			var b uint64
			iterateRanges(r, func(v int) {
				if v >= 0 && v < 64 {
					b |= 1 << v
				}
			})
			return b
		}
		tc.second = set(cal.Second, client.ScheduleRange{Start: 0})
		tc.minute = set(cal.Minute, client.ScheduleRange{Start: 0})
		tc.hour = set(cal.Hour, client.ScheduleRange{Start: 0})
		tc.dom = set(cal.DayOfMonth, client.ScheduleRange{Start: 1, End: 31})
		tc.month = set(cal.Month, client.ScheduleRange{Start: 1, End: 12})
		tc.dow = set(cal.DayOfWeek, client.ScheduleRange{Start: 0, End: 6})
		iterateRanges(cal.Year, func(v int) { tc.years = append(tc.years, v) })
		m.cals = append(m.cals, tc)
	}
	for _, iv := range spec.Intervals {
		m.intervals = append(m.intervals, tinterval{every: max(int64(iv.Every/time.Second), 1), phase: max(int64(iv.Offset/time.Second), 0)})
	}
	return m
}

func iterateRanges(ranges []client.ScheduleRange, f func(int)) {
	for _, r := range ranges {
		start, end, step := r.Start, r.End, r.Step
		if step == 0 {
			step = 1
		}
		if end < start {
			end = start
		}
		for ; start <= end; start += step {
			f(start)
		}
	}
}

// next is rawNextTime: the earliest time any calendar or interval matches
// after after, to the second; zero when none does.
func (m *tmodel) next(after time.Time) time.Time {
	best := int64(math.MaxInt64)
	for _, cal := range m.cals {
		if n := cal.next(after); !n.IsZero() && n.Unix() < best {
			best = n.Unix()
		}
	}
	ts := after.Unix()
	for _, iv := range m.intervals {
		if n := ((ts-iv.phase)/iv.every+1)*iv.every + iv.phase; n < best {
			best = n
		}
	}
	if best == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(best, 0).UTC()
}

const maxCalendarYear = 2100

func has(set uint64, v int) bool { return v >= 0 && v < 64 && set&(1<<v) != 0 }

func (cc *tcal) yearMatches(y int) bool {
	if len(cc.years) == 0 {
		return true
	}
	for _, v := range cc.years {
		if v == y {
			return true
		}
	}
	return false
}

func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// next is compiledCalendar.next, line for line: the earliest time after ts
// that matches, matching local wall-clock fields, with the server's
// handling of DST (it re-runs an hour whose successor starts more than an
// hour later, with a one-hour offset, and skips wall times time.Date
// normalises to another hour).
func (cc *tcal) next(ts time.Time) time.Time {
	ts = ts.In(cc.loc)
	y, mo, d := ts.Date()
	h, m, s := ts.Clock()
	dstoffset := time.Duration(0)
	if ts.Add(-time.Hour).Hour() == h {
		dstoffset = time.Hour
	}
	s++
Outer:
	for {
		if s >= 60 {
			m, s = m+1, 0
		}
		if m >= 60 {
			prev := time.Date(y, mo, d, h, 0, 0, 0, cc.loc)
			h, m = h+1, 0
			next := time.Date(y, mo, d, h, 0, 0, 0, cc.loc)
			if dstoffset == 0 && next.Sub(prev) > time.Hour {
				h = h - 1
				dstoffset = time.Hour
			} else {
				dstoffset = 0
			}
		}
		if h >= 24 {
			d, h = d+1, 0
		}
		if d > daysIn(mo, y) {
			mo, d = mo+1, 1
		}
		if mo > time.December {
			y, mo = y+1, time.January
		}
		if y > maxCalendarYear {
			break Outer
		}
		if !cc.yearMatches(y) {
			y, mo, d, h, m, s = y+1, time.January, 1, 0, 0, 0
			dstoffset = 0
			continue Outer
		}
		for !has(cc.month, int(mo)) {
			mo, d, h, m, s = mo+1, 1, 0, 0, 0
			dstoffset = 0
			if mo > time.December {
				continue Outer
			}
		}
		for !has(cc.dom, d) || !has(cc.dow, int(time.Date(y, mo, d, h, m, s, 0, cc.loc).Weekday())) {
			d, h, m, s = d+1, 0, 0, 0
			dstoffset = 0
			if d > daysIn(mo, y) {
				continue Outer
			}
		}
		for !has(cc.hour, h) {
			h, m, s = h+1, 0, 0
			dstoffset = 0
			if h >= 24 {
				continue Outer
			}
		}
		for !has(cc.minute, m) {
			m, s = m+1, 0
			if m >= 60 {
				continue Outer
			}
		}
		for !has(cc.second, s) {
			s = s + 1
			if s >= 60 {
				continue Outer
			}
		}
		nextTs := time.Date(y, mo, d, h, m, s, 0, cc.loc)
		if nextTs.Hour() != h {
			h, m, s = h+1, 0, 0
			continue Outer
		}
		return nextTs.Add(dstoffset)
	}
	return time.Time{}
}
