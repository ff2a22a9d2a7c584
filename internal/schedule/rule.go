package schedule

import (
	"slices"
	"time"
)

// Kiln's firing rule. Wall-clock times are handled as "naive" times: a
// time.Time in UTC whose fields are the local wall clock.

// searchYears bounds the search for the next or previous matching wall
// time (a 29 February on a Monday can be 28 years away).
const searchYears = 30

// naive returns the local wall clock of instant t as a naive time.
func (c *Cron) naive(t time.Time) time.Time {
	_, off := t.In(c.loc).Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// offsetAt returns the zone offset, in seconds, in effect at instant t.
func (c *Cron) offsetAt(t time.Time) int {
	_, off := t.In(c.loc).Zone()
	return off
}

// offsetsNear returns the smallest and largest zone offsets in effect
// within 26 hours of t.
func (c *Cron) offsetsNear(t time.Time) (lo, hi time.Duration) {
	a, b, m := c.offsetAt(t.Add(-26*time.Hour)), c.offsetAt(t.Add(26*time.Hour)), c.offsetAt(t)
	return time.Duration(min(a, b, m)) * time.Second, time.Duration(max(a, b, m)) * time.Second
}

// dateMatches reports whether the cron matches the naive time's date.
func (c *Cron) dateMatches(t time.Time) bool {
	return c.month&(1<<int(t.Month())) != 0 && c.dom&(1<<t.Day()) != 0 && c.dow&(1<<int(t.Weekday())) != 0
}

// wallMatches reports whether the cron matches the naive time (to the minute).
func (c *Cron) wallMatches(t time.Time) bool {
	return t.Second() == 0 && t.Nanosecond() == 0 && c.dateMatches(t) && c.hour&(1<<t.Hour()) != 0 && c.minute&(1<<t.Minute()) != 0
}

// nextWall returns the first naive time at or after w (after w unless
// inclusive) that the cron matches, searching at most years years; zero
// when there is none.
func (c *Cron) nextWall(w time.Time, inclusive bool, years int) time.Time {
	t := w.Truncate(time.Minute)
	if t.Before(w) || !inclusive && t.Equal(w) {
		t = t.Add(time.Minute)
	}
	limit := t.Year() + years
	for t.Year() <= limit {
		y, m, d := t.Date()
		switch {
		case c.month&(1<<int(m)) == 0:
			t = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		case c.dom&(1<<d) == 0 || c.dow&(1<<int(t.Weekday())) == 0:
			t = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		case c.hour&(1<<t.Hour()) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case c.minute&(1<<t.Minute()) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}

// prevWall returns the last naive time at or before w (before w unless
// inclusive) that the cron matches, searching at most years years back;
// zero when there is none.
func (c *Cron) prevWall(w time.Time, inclusive bool, years int) time.Time {
	t := w.Truncate(time.Minute)
	if !inclusive && t.Equal(w) {
		t = t.Add(-time.Minute)
	}
	limit := t.Year() - years
	for t.Year() >= limit {
		y, m, d := t.Date()
		switch {
		case c.month&(1<<int(m)) == 0:
			t = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		case c.dom&(1<<d) == 0 || c.dow&(1<<int(t.Weekday())) == 0:
			t = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		case c.hour&(1<<t.Hour()) == 0:
			t = t.Truncate(time.Hour).Add(-time.Minute)
		case c.minute&(1<<t.Minute()) == 0:
			t = t.Add(-time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}

// wallKind says how a local wall-clock time maps to instants.
type wallKind int

const (
	wallUnique   wallKind = iota // exactly one instant
	wallRepeated                 // two instants (DST fall-back)
	wallGap                      // none (DST spring-forward)
)

// resolution is where a naive wall-clock time happens.
type resolution struct {
	kind wallKind
	// at is the instant Kiln fires a matching wall time at: the instant
	// itself, the first of two, or (in a gap) the wall time read with the
	// offset in effect before the gap, i.e. shifted forward by the gap.
	at time.Time
	// second is the second occurrence of a repeated time.
	second time.Time
	// shift is the gap's length (wallGap), or how far the clocks went back
	// (wallRepeated).
	shift time.Duration
}

// resolve maps a naive wall-clock time to instants in the cron's zone.
func (c *Cron) resolve(w time.Time) resolution {
	before := c.offsetAt(w.Add(-26 * time.Hour))
	after := c.offsetAt(w.Add(26 * time.Hour))
	mid := c.offsetAt(w)
	offs := []int{before}
	for _, o := range []int{mid, after} {
		if !slices.Contains(offs, o) {
			offs = append(offs, o)
		}
	}
	var sols []time.Time
	for _, o := range offs {
		t := w.Add(-time.Duration(o) * time.Second)
		if c.offsetAt(t) == o && !slices.ContainsFunc(sols, t.Equal) {
			sols = append(sols, t)
		}
	}
	slices.SortFunc(sols, func(a, b time.Time) int { return a.Compare(b) })
	switch len(sols) {
	case 0:
		return resolution{kind: wallGap, at: w.Add(-time.Duration(before) * time.Second).In(c.loc), shift: time.Duration(after-before) * time.Second}
	case 1:
		return resolution{kind: wallUnique, at: sols[0].In(c.loc)}
	}
	first, second := sols[0], sols[1]
	return resolution{kind: wallRepeated, at: first.In(c.loc), second: second.In(c.loc), shift: second.Sub(first)}
}

// Next returns the first firing strictly after after, under Kiln's rule, in
// the schedule's time zone; zero when the schedule never fires again.
func (c *Cron) Next(after time.Time) time.Time {
	if c.every > 0 {
		p := int64(c.every)
		k := floorDiv(after.UnixNano(), p) + 1
		return time.Unix(0, k*p).In(c.loc)
	}
	lo, hi := c.offsetsNear(after)
	w := c.nextWall(c.naive(after).Add(-(hi - lo)), true, searchYears)
	var best time.Time
	for !w.IsZero() {
		t := c.resolve(w).at
		if t.After(after) && (best.IsZero() || t.Before(best)) {
			best = t
		}
		if !best.IsZero() {
			// Every later wall time resolves at or after w+1m minus the
			// largest offset near best.
			_, omax := c.offsetsNear(best)
			if w.Add(time.Minute).Add(-omax).After(best) {
				break
			}
		}
		w = c.nextWall(w, false, searchYears)
	}
	return best
}

// Prev returns the last firing strictly before before, under Kiln's rule;
// zero when there is none.
func (c *Cron) Prev(before time.Time) time.Time {
	if c.every > 0 {
		p := int64(c.every)
		k := -floorDiv(-before.UnixNano(), p) - 1 // ceil(before/p) - 1
		return time.Unix(0, k*p).In(c.loc)
	}
	lo, hi := c.offsetsNear(before)
	w := c.prevWall(c.naive(before).Add(hi-lo), true, searchYears)
	var best time.Time
	for !w.IsZero() {
		t := c.resolve(w).at
		if t.Before(before) && (best.IsZero() || t.After(best)) {
			best = t
		}
		if !best.IsZero() {
			omin, _ := c.offsetsNear(best)
			if w.Add(-time.Minute).Add(-omin).Before(best) {
				break
			}
		}
		w = c.prevWall(w, false, searchYears)
	}
	return best
}

// IsFiring reports whether t is a firing under Kiln's rule.
func (c *Cron) IsFiring(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	if c.every > 0 {
		return t.UnixNano()%int64(c.every) == 0
	}
	if t.Second() != 0 || t.Nanosecond() != 0 {
		return false
	}
	return c.Next(t.Add(-time.Nanosecond)).Equal(t)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// intervalOncePerDay reports whether an @every schedule puts at most one
// firing on each local date: an interval of 25 hours or more always does,
// one of 24 hours or more does unless a local day is longer than it (checked
// over the next two years).
func (c *Cron) intervalOncePerDay() bool {
	switch {
	case c.every >= 25*time.Hour:
		return true
	case c.every < 24*time.Hour:
		return false
	}
	t := c.Next(time.Now())
	end := t.AddDate(2, 0, 0)
	for prev := ""; t.Before(end); t = c.Next(t) {
		d := t.In(c.loc).Format(time.DateOnly)
		if d == prev {
			return false
		}
		prev = d
	}
	return true
}
