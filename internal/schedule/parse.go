package schedule

import (
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/robfig/cron/v3"

	"github.com/kiln-ml/kiln/internal/suggest"
)

// Error is a problem with a schedule's cron expression or time zone.
type Error struct {
	// Offset is the offset, in characters from the start of the cron
	// string as given, of the part the error is about (a field, or an item
	// of a list); -1 for time zone errors.
	Offset int
	// Field names the part: "minute", "hour", "day-of-month", "month",
	// "day-of-week", "cron" (the expression as a whole) or "timezone".
	Field string
	// Text is the offending text.
	Text string
	// Msg says what is wrong, why, and how to fix it.
	Msg string
}

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

// Cron is a parsed schedule: a cron expression (or an @every interval) in a
// time zone. Its methods implement Kiln's firing rule (see the package
// documentation). A Cron is immutable and safe for concurrent use.
type Cron struct {
	text string
	loc  *time.Location
	// every is the interval of "@every"; 0 for calendar expressions.
	every time.Duration
	// Bit i is set when the field matches i (day-of-week 0 is Sunday).
	minute, hour, dom, month, dow uint64
	// oncePerDay is true when no two firings fall on the same local date.
	oncePerDay bool
}

// String returns the cron expression as written.
func (c *Cron) String() string { return c.text }

// Location returns the schedule's time zone.
func (c *Cron) Location() *time.Location { return c.loc }

// Timezone returns the time zone's name.
func (c *Cron) Timezone() string { return c.loc.String() }

// Every returns the interval of an "@every" schedule, or 0.
func (c *Cron) Every() time.Duration { return c.every }

// OncePerDay reports whether the schedule fires at most once per local date
// (one time of day, or an interval of a day or more that never puts two
// firings on one date); run keys are then logical dates.
func (c *Cron) OncePerDay() bool { return c.oncePerDay }

// Parse parses a cron expression in an IANA time zone ("" means UTC). See
// the package documentation for the dialect. Errors are *Error.
func Parse(expr, timezone string) (*Cron, error) {
	loc, err := LoadLocation(timezone)
	if err != nil {
		return nil, err
	}
	return ParseIn(expr, loc)
}

// ParseIn is Parse with a loaded time zone.
func ParseIn(expr string, loc *time.Location) (*Cron, error) {
	if loc == nil {
		loc = time.UTC
	}
	p := parser{text: expr}
	c, err := p.parse()
	if err != nil {
		return nil, err
	}
	c.text, c.loc = expr, loc
	if c.every > 0 {
		c.oncePerDay = c.intervalOncePerDay()
	} else {
		c.oncePerDay = bits.OnesCount64(c.hour) == 1 && bits.OnesCount64(c.minute) == 1
	}
	return c, nil
}

// The fields of a 5-field cron.
const (
	fMinute = iota
	fHour
	fDom
	fMonth
	fDow
)

type fieldDef struct {
	name     string
	min, max int
	// names are the three-letter names of the values from min (months,
	// days of the week); full the full names, for messages.
	names, full []string
}

var fieldDefs = [5]fieldDef{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12,
		names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
		full:  []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}},
	{name: "day-of-week", min: 0, max: 6,
		names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"},
		full:  []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}},
}

// descriptors maps the @ shorthands to their 5-field form (robfig/cron and
// Temporal agree on all of them).
var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

var descriptorNames = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every"}

// token is a whitespace-separated part of the expression; off is its byte
// offset in the expression.
type token struct {
	text string
	off  int
}

type parser struct {
	text string
}

// errAt returns an *Error about the text at byte offset off.
func (p *parser) errAt(off int, field, text, format string, args ...any) *Error {
	return &Error{Offset: utf8.RuneCountInString(p.text[:off]), Field: field, Text: text, Msg: fmt.Sprintf(format, args...)}
}

func tokens(s string) []token {
	var out []token
	start := -1
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				out = append(out, token{s[start:i], start})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, token{s[start:], start})
	}
	return out
}

const fieldsHelp = "minute hour day-of-month month day-of-week"

func (p *parser) parse() (*Cron, error) {
	toks := tokens(p.text)
	if len(toks) == 0 {
		return nil, p.errAt(0, "cron", p.text, `empty cron expression: write 5 fields (%s), e.g. "30 2 * * *" for 02:30 every day`, fieldsHelp)
	}
	first := toks[0]
	if strings.HasPrefix(first.text, "CRON_TZ=") || strings.HasPrefix(first.text, "TZ=") {
		_, zone, _ := strings.Cut(first.text, "=")
		return nil, p.errAt(first.off, "cron", first.text,
			"%s: a time zone prefix is not part of a Kiln cron; put the zone in the schedule's timezone field (timezone: %s) and remove the prefix", first.text, zone)
	}
	if i := strings.IndexByte(p.text, '#'); i >= 0 {
		if i == 0 || unicode.IsSpace(rune(p.text[i-1])) {
			return nil, p.errAt(i, "cron", p.text[i:],
				"%q: Temporal reads \"#\" as the start of a comment and robfig/cron as part of a field; remove the comment (describe the schedule in the spec's description)", p.text[i:])
		}
	}
	if strings.HasPrefix(first.text, "@") {
		return p.descriptor(toks)
	}
	switch n := len(toks); {
	case n == 6:
		return nil, p.errAt(toks[5].off, "cron", toks[5].text,
			"6 fields: robfig/cron reads a sixth field as seconds (before the minute) and Temporal as a year (after the day of the week), so they disagree; Kiln schedules have minute resolution and 5 fields (%s): remove a field", fieldsHelp)
	case n == 7:
		return nil, p.errAt(toks[5].off, "cron", toks[5].text,
			"7 fields: seconds and years are not part of a Kiln cron, which has minute resolution and 5 fields (%s); remove the seconds and the year", fieldsHelp)
	case n < 5:
		return nil, p.errAt(first.off, "cron", p.text,
			"%d field(s): a cron has 5 (%s), e.g. \"30 2 * * *\" for 02:30 every day", n, fieldsHelp)
	case n > 7:
		return nil, p.errAt(toks[5].off, "cron", toks[5].text,
			"%d fields: a cron has 5 (%s)", n, fieldsHelp)
	}
	c := &Cron{}
	var stars [5]bool
	var sets [5]uint64
	for i, t := range toks {
		set, star, err := p.field(fieldDefs[i], t)
		if err != nil {
			return nil, err
		}
		sets[i], stars[i] = set, star
	}
	if !stars[fDom] && !stars[fDow] {
		return nil, p.errAt(toks[fDow].off, "day-of-week", toks[fDow].text,
			"day-of-month %q and day-of-week %q are both restricted: Vixie cron and robfig/cron then fire when EITHER matches, Temporal only when BOTH match; use \"*\" for one of them (or write two schedules)",
			toks[fDom].text, toks[fDow].text)
	}
	c.minute, c.hour, c.dom, c.month, c.dow = sets[0], sets[1], sets[2], sets[3], sets[4]
	if err := p.crossCheck(toks, sets); err != nil {
		return nil, err
	}
	if c.nextWall(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), true, 30).IsZero() {
		return nil, p.errAt(toks[fDom].off, "day-of-month", toks[fDom].text,
			"%q never fires: no date has day-of-month %q in month %q; check the day and the month", p.text, toks[fDom].text, toks[fMonth].text)
	}
	return c, nil
}

// descriptor parses @daily and friends, and @every.
func (p *parser) descriptor(toks []token) (*Cron, error) {
	first := toks[0]
	if first.text == "@every" {
		rest := strings.TrimSpace(p.text[first.off+len(first.text):])
		if len(toks) == 1 {
			return nil, p.errAt(first.off, "cron", p.text, `@every needs a duration: write "@every <duration>", e.g. "@every 15m"`)
		}
		if len(toks) != 2 || p.text[first.off:toks[1].off] != "@every " {
			at := first.off
			if len(toks) > 2 {
				at = toks[2].off
			}
			return nil, p.errAt(at, "cron", p.text, `write "@every <duration>" with one space, e.g. "@every 15m"`)
		}
		d, err := time.ParseDuration(rest)
		if err != nil {
			hint := ""
			if strings.Contains(rest, "/") {
				hint = "; a phase (\"/3h\") is Temporal's and robfig/cron does not read it"
			} else if strings.ContainsAny(rest, "dDwW") {
				hint = "; there is no day unit: write 24h for a day"
			}
			return nil, p.errAt(toks[1].off, "cron", rest, "invalid duration %q after @every: write a Go duration such as 90s, 15m or 6h%s", rest, hint)
		}
		switch {
		case d < time.Second:
			return nil, p.errAt(toks[1].off, "cron", rest, "@every %s is shorter than the minimum interval, 1s", rest)
		case d%time.Second != 0:
			return nil, p.errAt(toks[1].off, "cron", rest, "@every %s is not a whole number of seconds: Temporal counts intervals in seconds (robfig/cron rounds down); write e.g. %s", rest, d.Truncate(time.Second))
		}
		return &Cron{every: d}, nil
	}
	five, ok := descriptors[first.text]
	if !ok {
		hint := ""
		if s := closest(first.text, descriptorNames); s != "" {
			hint = fmt.Sprintf(", did you mean %q?", s)
		}
		return nil, p.errAt(first.off, "cron", first.text, "unknown descriptor %q%s (known: %s <duration>)", first.text, hint, strings.Join(descriptorNames, ", "))
	}
	if len(toks) > 1 {
		return nil, p.errAt(toks[1].off, "cron", toks[1].text, "%s takes nothing after it; remove %q", first.text, p.text[toks[1].off:])
	}
	c := &Cron{}
	var sets [5]uint64
	for i, t := range tokens(five) {
		sets[i], _, _ = (&parser{text: five}).field(fieldDefs[i], t)
	}
	c.minute, c.hour, c.dom, c.month, c.dow = sets[0], sets[1], sets[2], sets[3], sets[4]
	return c, nil
}

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	// quartzRE matches Quartz's L, W and LW day specials ("L", "5L", "L-3", "15W", "LW").
	quartzRE = regexp.MustCompile(`(?i)^([0-9]*L(-[0-9]+)?|[0-9]+W|LW)$`)
)

// field parses one field of a 5-field cron into the set of values it
// matches, and reports whether it is unrestricted ("*" or "*/1", which
// robfig/cron marks with its star bit).
func (p *parser) field(f fieldDef, t token) (set uint64, star bool, err *Error) {
	if strings.ContainsRune(t.text, '?') {
		i := strings.IndexByte(t.text, '?')
		return 0, false, p.errAt(t.off+i, f.name, t.text, "%q in %s: robfig/cron reads \"?\" as \"*\" and Temporal rejects it; write \"*\"", t.text, f.name)
	}
	if i := strings.IndexByte(t.text, '#'); i >= 0 {
		return 0, false, p.errAt(t.off, f.name, t.text,
			"%q in %s: \"#\" (Quartz's \"nth weekday of the month\") is read by neither robfig/cron nor Temporal; Kiln cannot express it in one cron", t.text, f.name)
	}
	off := 0
	for _, item := range strings.Split(t.text, ",") {
		at := t.off + off
		off += len(item) + 1
		if item == "" {
			return 0, false, p.errAt(at, f.name, t.text, "empty item in %s %q: robfig/cron skips it and Temporal rejects it; remove the extra comma", f.name, t.text)
		}
		base, stepText, hasStep := strings.Cut(item, "/")
		if strings.Contains(stepText, "/") {
			return 0, false, p.errAt(at, f.name, item, "%s %q has more than one \"/\": write start-end/step, e.g. 0-30/10", f.name, item)
		}
		step := 1
		if hasStep {
			if !digitsRE.MatchString(stepText) || len(stepText) > 3 {
				return 0, false, p.errAt(at, f.name, item, "invalid step %q in %s %q: a step is a whole number, e.g. */15", stepText, f.name, item)
			}
			step, _ = strconv.Atoi(stepText)
			if step < 1 {
				return 0, false, p.errAt(at, f.name, item, "step 0 in %s %q: a step must be at least 1", f.name, item)
			}
		}
		var lo, hi int
		if base == "*" {
			lo, hi = f.min, f.max
			if step == 1 {
				star = true
			}
		} else {
			a, b, isRange := strings.Cut(base, "-")
			if strings.Contains(b, "-") {
				return 0, false, p.errAt(at, f.name, item, "%s %q has more than one \"-\": a range is start-end", f.name, item)
			}
			var e *Error
			if lo, e = p.value(f, a, at, item); e != nil {
				return 0, false, e
			}
			switch {
			case isRange:
				if hi, e = p.value(f, b, at+len(a)+1, item); e != nil {
					return 0, false, e
				}
				if lo > hi {
					fix := fmt.Sprintf("%s-%d,%d-%s", a, f.max, f.min, b)
					if f.names != nil {
						fix = fmt.Sprintf("%s-%s,%s-%s", a, f.names[f.max-f.min], f.names[0], b)
					}
					return 0, false, p.errAt(at, f.name, item, "%s range %q is reversed: ranges do not wrap around; write %s", f.name, item, fix)
				}
			case hasStep:
				hi = f.max
			default:
				hi = lo
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, star, nil
}

// value parses one value of field f: a number, or a three-letter name.
func (p *parser) value(f fieldDef, s string, at int, item string) (int, *Error) {
	if digitsRE.MatchString(s) {
		n, err := strconv.Atoi(s)
		if err != nil || len(s) > 4 {
			n = 1 << 20
		}
		if f.name == "day-of-week" && n == 7 {
			return 0, p.errAt(at, f.name, item, "day-of-week 7 in %q: Temporal reads 7 as Sunday and robfig/cron rejects it; write 0 (or sun) for Sunday", item)
		}
		if n < f.min || n > f.max {
			return 0, p.errAt(at, f.name, item, "%s %s is out of range %d-%d", f.name, s, f.min, f.max)
		}
		return n, nil
	}
	lower := strings.ToLower(s)
	for i, name := range f.names {
		if lower == name {
			return f.min + i, nil
		}
	}
	if s == "" {
		return 0, p.errAt(at, f.name, item, "invalid %s %q: a value is missing around \"-\"", f.name, item)
	}
	if len(lower) >= 2 {
		for i, full := range f.full {
			if strings.HasPrefix(full, lower) {
				return 0, p.errAt(at, f.name, item, "%s %q: write the three-letter name %q (or %d); Temporal accepts any prefix of a name, robfig/cron only three letters", f.name, s, f.names[i], f.min+i)
			}
		}
	}
	if (f.name == "day-of-month" || f.name == "day-of-week") && quartzRE.MatchString(s) {
		return 0, p.errAt(at, f.name, item, "%s %q: Quartz's L and W (last day, nearest weekday) are read by neither robfig/cron nor Temporal; list the days instead", f.name, s)
	}
	if f.names != nil {
		return 0, p.errAt(at, f.name, item, "invalid %s %q: use %d-%d or a three-letter name (%s-%s)", f.name, s, f.min, f.max, f.names[0], f.names[len(f.names)-1])
	}
	return 0, p.errAt(at, f.name, item, "invalid %s %q: use a number from %d to %d, *, a list (1,15), a range (1-5) or a step (*/15)", f.name, s, f.min, f.max)
}

// crossCheck parses the fields with robfig/cron and with a model of
// Temporal's cron string parser, and refuses what either reads otherwise.
func (p *parser) crossCheck(toks []token, sets [5]uint64) *Error {
	texts := make([]string, len(toks))
	for i, t := range toks {
		texts[i] = t.text
	}
	sched, err := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow).Parse(strings.Join(texts, " "))
	if err != nil {
		return p.errAt(toks[0].off, "cron", p.text, "robfig/cron cannot read %q: %v", p.text, err)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return p.errAt(toks[0].off, "cron", p.text, "robfig/cron reads %q as an interval", p.text)
	}
	const starBit = 1 << 63
	robfig := [5]uint64{spec.Minute, spec.Hour, spec.Dom, spec.Month, spec.Dow}
	for i, t := range toks {
		f := fieldDefs[i]
		r := robfig[i] &^ starBit
		tm, terr := temporalField(f, t.text)
		switch {
		case r != sets[i]:
			return p.errAt(t.off, f.name, t.text, "robfig/cron reads %s %q as %s, not %s; write the values out", f.name, t.text, describeSet(f, r), describeSet(f, sets[i]))
		case terr != nil:
			return p.errAt(t.off, f.name, t.text, "Temporal cannot read %s %q (%v); write it as a list or range of numbers", f.name, t.text, terr)
		case tm != sets[i]:
			return p.errAt(t.off, f.name, t.text,
				"robfig/cron and Temporal read %s %q differently (robfig/cron: %s; Temporal: %s); write the values out, e.g. %s",
				f.name, t.text, describeSet(f, sets[i]), describeSet(f, tm), listSet(sets[i]))
		}
	}
	return nil
}

// describeSet lists the values of a set for messages, with names where the
// field has them.
func describeSet(f fieldDef, set uint64) string {
	var parts []string
	for v := f.min; v <= f.max+1 && v < 64; v++ {
		if set&(1<<v) == 0 {
			continue
		}
		if f.names != nil && v-f.min < len(f.names) {
			parts = append(parts, f.names[v-f.min])
		} else {
			parts = append(parts, strconv.Itoa(v))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ",")
}

// listSet writes a set as a cron list of numbers and ranges.
func listSet(set uint64) string {
	var parts []string
	for _, r := range runs(set) {
		if r[0] == r[1] {
			parts = append(parts, strconv.Itoa(r[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, ",")
}

// runs returns the maximal runs of consecutive values of a set, as [first, last].
func runs(set uint64) [][2]int {
	var out [][2]int
	for v := 0; v < 64; v++ {
		if set&(1<<v) == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1][1] == v-1 {
			out[n-1][1] = v
		} else {
			out = append(out, [2]int{v, v})
		}
	}
	return out
}

// closest returns the candidate within edit distance 2 of s, or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := suggest.Distance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// temporalField reads a cron field the way the Temporal server's cron string
// parser does (v1.32 service/worker/scheduler/calendar.go: makeRange,
// parseValue, with day-of-week running 0-7 and 7 folded into Sunday), and
// returns the set of values it matches.
func temporalField(f fieldDef, s string) (uint64, error) {
	maxVal := f.max
	mode := 0 // int
	switch f.name {
	case "month":
		mode = 1
	case "day-of-week":
		mode, maxVal = 2, 7
	}
	var set uint64
	for part := range strings.SplitSeq(s, ",") {
		step, hasStep := 1, false
		switch strings.Count(part, "/") {
		case 0:
		case 1:
			sp := strings.SplitN(part, "/", 2)
			if sp[1] == "" {
				return 0, fmt.Errorf("missing step value")
			}
			n, err := strconv.Atoi(sp[1])
			if err != nil {
				return 0, err
			}
			if n < 1 {
				return 0, fmt.Errorf("invalid step")
			}
			part, step, hasStep = sp[0], n, true
		default:
			return 0, fmt.Errorf("too many slashes")
		}
		start, end := f.min, maxVal
		if part != "*" {
			if strings.Contains(part, "-") {
				if strings.Count(part, "-") > 1 {
					return 0, fmt.Errorf("too many dashes")
				}
				rp := strings.SplitN(part, "-", 2)
				var err error
				if start, err = temporalValue(rp[0], f.min, maxVal, mode); err != nil {
					return 0, fmt.Errorf("start not in range")
				}
				if end, err = temporalValue(rp[1], start, maxVal, mode); err != nil {
					return 0, fmt.Errorf("end before start or not in range")
				}
			} else {
				var err error
				if start, err = temporalValue(part, f.min, maxVal, mode); err != nil {
					return 0, fmt.Errorf("not in range")
				}
				if !hasStep {
					end = start
				}
			}
		}
		for v := start; v <= end; v += step {
			if mode == 2 && v == 7 {
				set |= 1
				continue
			}
			set |= 1 << v
		}
	}
	return set, nil
}

// temporalValue is the Temporal server's parseValue.
func temporalValue(s string, lo, hi, mode int) (int, error) {
	names := []string(nil)
	minLen := 0
	switch mode {
	case 1:
		names, minLen = fieldDefs[fMonth].full, 3
	case 2:
		names, minLen = fieldDefs[fDow].full, 2
	}
	if names != nil && len(s) >= minLen {
		ls := strings.ToLower(s)
		for i, n := range names {
			if strings.HasPrefix(n, ls) {
				v := i
				if mode == 1 {
					v++
				}
				if v < lo || v > hi {
					return v, fmt.Errorf("out of range")
				}
				return v, nil
			}
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return v, err
	}
	if v < lo || v > hi {
		return v, fmt.Errorf("out of range")
	}
	return v, nil
}
