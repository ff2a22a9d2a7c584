package schedule

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
)

// Note is a warning about one firing near a DST transition, for `kiln
// schedules describe`.
type Note struct {
	// At is the instant the note is about: when Kiln runs (gap, overlap,
	// shift) or when Temporal fires in vain (temporal).
	At time.Time `json:"at"`
	// Local is the local date and wall-clock time the cron names
	// ("2027-03-28 02:30").
	Local string `json:"local"`
	// Kind is "gap" (the local time does not exist), "overlap" (it occurs
	// twice), "temporal" (Temporal fires a time Kiln skips) or "shift"
	// (an @every schedule's local times move with the clocks).
	Kind string `json:"kind"`
	// Message says what happens, e.g. "2027-03-28 02:30 does not exist in
	// Europe/Paris (clocks jump 02:00→03:00): Kiln runs at 03:30 CEST".
	Message string `json:"message"`
}

// Notes returns warnings about the next n firings after from: firings whose
// local time falls in a DST gap or overlap, and the extra firings Temporal
// makes in that window that Kiln's launcher skips, each saying what Kiln
// does.
func (c *Cron) Notes(from time.Time, n int) []Note {
	if n <= 0 {
		return nil
	}
	last := from
	for i := 0; i < n; i++ {
		t := c.Next(last)
		if t.IsZero() {
			break
		}
		last = t
	}
	return c.NotesBetween(from, last)
}

// NotesBetween is Notes for the firings in (from, to].
func (c *Cron) NotesBetween(from, to time.Time) []Note {
	last := to
	if !last.After(from) {
		return nil
	}
	if c.every > 0 {
		return c.shiftNotes(from, last)
	}
	var notes []Note
	main := c.modelOf(client.ScheduleSpec{TimeZoneName: c.loc.String(), Calendars: []client.ScheduleCalendarSpec{c.mainCalendar()}})
	_, extras := c.temporalDiff(main, from, last.Add(time.Nanosecond), false)
	noted := map[int64]bool{}
	for _, tr := range c.transitions(from.Add(-diffWindow), last.Add(diffWindow)) {
		before, after := c.naive(tr.Add(-time.Second)).Add(time.Second), c.naive(tr)
		clocks := fmt.Sprintf("%s→%s", before.Format("15:04"), after.Format("15:04"))
		lo, hi := before, after
		if hi.Before(lo) {
			lo, hi = hi, lo
		}
		// The matching wall-clock times between the two readings of the
		// transition are in the gap or the overlap.
		for w := c.nextWall(lo, true, 1); !w.IsZero() && w.Before(hi); w = c.nextWall(w, false, 1) {
			r := c.resolve(w)
			if r.at.Before(from) || r.at.After(last) {
				continue
			}
			local := w.Format("2006-01-02 15:04")
			switch r.kind {
			case wallGap:
				msg := fmt.Sprintf("%s does not exist in %s (clocks jump %s): Kiln runs at %s", local, c.loc, clocks, r.at.Format("15:04 MST"))
				if c.wallMatches(c.naive(r.at)) {
					msg = fmt.Sprintf("%s does not exist in %s (clocks jump %s): its run would move to %s, which is already a run, so Kiln runs once then",
						local, c.loc, clocks, r.at.Format("15:04 MST"))
				}
				notes = append(notes, Note{At: r.at, Local: local, Kind: "gap", Message: msg})
			case wallRepeated:
				msg := fmt.Sprintf("%s occurs twice in %s (clocks go back %s): Kiln runs once, at the first occurrence (%s)",
					local, c.loc, clocks, r.at.Format("15:04 MST"))
				if containsTime(extras, r.second) {
					msg += fmt.Sprintf("; Temporal also fires the second (%s), which Kiln skips", r.second.Format("15:04 MST"))
					noted[r.second.Unix()] = true
				}
				notes = append(notes, Note{At: r.at, Local: local, Kind: "overlap", Message: msg})
			}
		}
	}
	for _, x := range extras {
		if noted[x.Unix()] || x.Before(from) || x.After(last) {
			continue
		}
		l := x.In(c.loc)
		notes = append(notes, Note{At: l, Local: l.Format("2006-01-02 15:04"), Kind: "temporal",
			Message: fmt.Sprintf("Temporal's calendar also fires at %s (a DST artefact, temporalio/temporal#8205); Kiln's launcher skips that firing", c.format(x))})
	}
	sort.SliceStable(notes, func(i, j int) bool { return notes[i].At.Before(notes[j].At) })
	return notes
}

// shiftNotes tells, for an @every schedule, where its local times move
// with the clocks.
func (c *Cron) shiftNotes(from, last time.Time) []Note {
	var notes []Note
	for _, tr := range c.transitions(from, last) {
		t := c.Next(tr.Add(-time.Nanosecond))
		if t.IsZero() || t.After(last) {
			continue
		}
		d := time.Duration(c.offsetAt(tr)-c.offsetAt(tr.Add(-time.Second))) * time.Second
		l := t.In(c.loc)
		notes = append(notes, Note{At: l, Local: l.Format("2006-01-02 15:04"), Kind: "shift",
			Message: fmt.Sprintf("clocks change in %s on %s: %q keeps its spacing in absolute time, so local run times move by %s from %s",
				c.loc, l.Format(time.DateOnly), c.text, short(d), c.format(t))})
	}
	return notes
}

func containsTime(ts []time.Time, t time.Time) bool {
	for _, x := range ts {
		if x.Equal(t) {
			return true
		}
	}
	return false
}

// short formats a duration without zero units, with a sign: "+1h", "-30m".
func short(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return sign + s
}
