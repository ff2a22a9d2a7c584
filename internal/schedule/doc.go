// Package schedule is Kiln's schedule arithmetic: it parses a pipeline
// spec's schedule (a cron expression and an IANA time zone), says when the
// schedule fires under Kiln's rule, what each firing is about (its logical
// date and data interval) and what Temporal Schedule spec makes Temporal fire
// exactly then.
//
// # The cron dialect
//
// A cron is 5 fields, "minute hour day-of-month month day-of-week", or one of
// @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly, or
// "@every <duration>" (a Go duration, whole seconds, at least 1s). The
// expression is parsed with github.com/robfig/cron/v3 and also read the way
// the Temporal server reads a cron string; Parse accepts only what both read
// the same and refuses the rest, naming the reason and the fix:
//
//   - day-of-month and day-of-week both restricted ("0 3 1 * 1"): Vixie cron
//     and robfig/cron fire when EITHER matches, Temporal only when BOTH do;
//     use "*" for one of them, or two schedules;
//   - a sixth or seventh field: robfig/cron reads a sixth field as seconds
//     (first), Temporal as a year (last); Kiln schedules have minute
//     resolution, so remove it;
//   - a CRON_TZ= or TZ= prefix: the time zone goes in the spec's timezone;
//   - day-of-week 7 (Temporal: Sunday, robfig/cron: an error): write 0;
//   - "?" (robfig/cron: "*", Temporal: an error), Quartz's L, W and #, and
//     "#" comments (Temporal strips them, robfig/cron does not);
//   - names other than the three-letter month and day names (Temporal
//     accepts any prefix, robfig/cron only "jan" and "mon");
//   - a day-of-week "N/step" that Temporal runs up to 7, so that it may add
//     Sunday where robfig/cron stops at 6 ("1/2");
//   - an empty list item ("1,,2"), which robfig/cron ignores and Temporal
//     rejects, and any expression that never fires ("0 0 30 2 *").
//
// Errors are *Error values carrying the character offset of the offending
// field in the cron string, so that a spec error can point at the field.
//
// # Kiln's firing rule and daylight saving time
//
// A cron fires at the local wall-clock times it matches in its time zone,
// with this DST policy (Cron.Next and Cron.Prev implement it; it is the
// reference the Temporal spec is checked against):
//
//   - A local time that does not exist (it falls in a DST gap: clocks jump
//     from 02:00 to 03:00) fires once, shifted forward by the gap: 02:30 on a
//     spring-forward day fires at 03:30 local time — unless that instant is
//     already a firing (an hourly "0 * * * *" fires once at 03:00, not twice).
//   - A local time that occurs twice (fall-back: 01:00-02:00 in New York,
//     02:00-03:00 in Paris) fires once, at its FIRST occurrence.
//
// So a schedule with one time of day fires exactly once per local day, and
// each local wall-clock time fires at most once, which also makes run keys
// unique. Runs whose intervals straddle a transition are 23 or 25 hours long
// (daily) and a run after a gap may cover two wall-clock slots (hourly):
// data intervals stay contiguous, nothing is lost or read twice.
//
// Why not Temporal's own behaviour: Temporal matches calendar specs against
// local wall-clock time with no DST handling (temporalio/temporal#8205). The
// server (v1.32, service/worker/scheduler/calendar.go, compiledCalendar.next)
// never fires a time that falls in a gap, so a daily 02:30 does not run on the
// spring-forward day; on fall-back days it fires a repeated time twice in
// zones west of UTC (New York: 01:30 EDT and 01:30 EST), only the SECOND
// occurrence in zones east of UTC (Paris: 02:30 CET, never 02:30 CEST,
// because Go's time.Date resolves an ambiguous time to the later occurrence
// there), and adds a spurious firing one hour after a time just before the
// repeated hour (a daily 01:30 in Paris also fires at 02:30 CEST).
// robfig/cron's own scheduler has had similar bugs (robfig/cron#541 lost a
// 02:00 run). Kiln therefore computes the firings itself.
//
// "@every" intervals follow Temporal's interval semantics — the instants
// that are multiples of the interval since the Unix epoch (UTC), not
// robfig/cron's "every d after the previous run" — and ignore DST: their
// local clock times move when the clocks do.
//
// # Temporal
//
// Cron.TemporalSpec builds the client.ScheduleSpec Kiln sends: the cron as a
// StructuredCalendarSpec (never a cron string, so Kiln controls the reading)
// in the schedule's time zone, plus, for the DST transitions of the next
// years, the firings that calendar would miss: one-off
// StructuredCalendarSpecs (year, month, day, hour, minute) for the shifted
// times of gap days, and one-off intervals for first occurrences of repeated
// times that a calendar cannot name (zones east of UTC). What Temporal then
// fires is a superset of Kiln's firings; Cron.Classify and Cron.Logical tell
// the launcher which firings to skip (second occurrences and Temporal's DST
// artefacts). The model of the server's calendar used for this is tested
// against the server's own code.
//
// # Logical dates
//
// Each firing is about a data interval: [previous firing, this firing).
// Following Airflow, the logical date is the local date of the interval's
// START: a daily 02:30 run firing on 2026-12-03 covers [2026-12-02 02:30,
// 2026-12-03 02:30) and has logical date 2026-12-02. See Cron.Logical.
//
// # Memo
//
// Temporal's Describe returns only structured calendars, so Kiln keeps the
// schedule's source in the schedule memo: MemoCron ("kiln_cron") holds the
// cron text, MemoTimezone ("kiln_timezone") the time zone name and
// MemoHorizon ("kiln_dst_until") the end of the DST fix-ups (RFC 3339); see
// Cron.Memo and FromMemo.
package schedule
