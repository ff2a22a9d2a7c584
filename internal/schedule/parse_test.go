package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParse is the dialect table: what Kiln accepts, and what it refuses
// with the offset of the offending part and a fragment of the reason.
func TestParse(t *testing.T) {
	accept := []struct {
		cron string
		// want: the fields as sets, written as lists ("" for all values).
		minute, hour, dom, month, dow string
	}{
		{"30 2 * * *", "30", "2", "", "", ""},
		{"*/15 * * * *", "0,15,30,45", "", "", "", ""},
		{"0 9-17/2 * * 1-5", "0", "9,11,13,15,17", "", "", "1,2,3,4,5"},
		{"0 0 1,15 * *", "0", "0", "1,15", "", ""},
		{"5 4 * jan-mar,DEC *", "5", "4", "", "1,2,3,12", ""},
		{"0 6 * * mon,wed,FRI", "0", "6", "", "", "1,3,5"},
		{"0 6 * * sun", "0", "6", "", "", "0"},
		{"0 6 * * 0-6", "0", "6", "", "", ""},
		{"0 6 * * */2", "0", "6", "", "", "0,2,4,6"},
		{"0 6 * * 1-6/2", "0", "6", "", "", "1,3,5"},
		{"0 6 5/10 * *", "0", "6", "5,15,25", "", ""},
		{"  0 6 * * *  ", "0", "6", "", "", ""},
		{"0\t6 * * *", "0", "6", "", "", ""},
		{"0 0 29 2 *", "0", "0", "29", "2", ""},
		{"0 0 */1 * 1", "0", "0", "", "", "1"},
		{"@daily", "0", "0", "", "", ""},
		{"@midnight", "0", "0", "", "", ""},
		{"@hourly", "0", "", "", "", ""},
		{"@weekly", "0", "0", "", "", "0"},
		{"@monthly", "0", "0", "1", "", ""},
		{"@yearly", "0", "0", "1", "1", ""},
		{"@annually", "0", "0", "1", "1", ""},
	}
	for _, tt := range accept {
		c, err := Parse(tt.cron, "")
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.cron, err)
			continue
		}
		for i, want := range []string{tt.minute, tt.hour, tt.dom, tt.month, tt.dow} {
			f := fieldDefs[i]
			got := []uint64{c.minute, c.hour, c.dom, c.month, c.dow}[i]
			wantSet := uint64(0)
			if want == "" {
				for v := f.min; v <= f.max; v++ {
					wantSet |= 1 << v
				}
			} else {
				for _, v := range strings.Split(want, ",") {
					n := 0
					for _, r := range v {
						n = n*10 + int(r-'0')
					}
					wantSet |= 1 << n
				}
			}
			if got != wantSet {
				t.Errorf("Parse(%q) %s = %s, want %s", tt.cron, f.name, describeSet(f, got), describeSet(f, wantSet))
			}
		}
	}

	every := []struct {
		cron string
		want time.Duration
	}{
		{"@every 1s", time.Second},
		{"@every 90s", 90 * time.Second},
		{"@every 1h30m", 90 * time.Minute},
		{"@every 24h", 24 * time.Hour},
	}
	for _, tt := range every {
		c, err := Parse(tt.cron, "Europe/Paris")
		if err != nil || c.Every() != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want every %v", tt.cron, c, err, tt.want)
		}
	}

	refuse := []struct {
		cron   string
		offset int
		field  string
		msg    string
	}{
		{"", 0, "cron", "empty cron expression"},
		{"   ", 0, "cron", "empty cron expression"},
		{"0 3 1 * 1", 8, "day-of-week", "both restricted"},
		{"0 3 1-31 * 0-6", 11, "day-of-week", "EITHER matches"},
		{"0 3 */2 * mon", 10, "day-of-week", `use "*" for one of them`},
		{"0 30 2 * * *", 11, "cron", "robfig/cron reads a sixth field as seconds"},
		{"30 2 * * * 2027", 11, "cron", "as a year"},
		{"0 30 2 * * * 2027", 11, "cron", "7 fields"},
		{"30 2 * *", 0, "cron", "4 field(s)"},
		{"1 2 3 4 5 6 7 8", 10, "cron", "8 fields"},
		{"CRON_TZ=Europe/Paris 30 2 * * *", 0, "cron", "timezone: Europe/Paris"},
		{"TZ=UTC 30 2 * * *", 0, "cron", "time zone prefix"},
		{"30 2 * * 7", 9, "day-of-week", "write 0 (or sun)"},
		{"30 2 * * 5-7", 11, "day-of-week", "Temporal reads 7 as Sunday"},
		{"30 2 ? * *", 5, "day-of-month", `robfig/cron reads "?" as "*"`},
		{"30 2 * * ?", 9, "day-of-week", `write "*"`},
		{"30 2 L * *", 5, "day-of-month", "Quartz's L and W"},
		{"30 2 15W * *", 5, "day-of-month", "Quartz's L and W"},
		{"30 2 * * 5L", 9, "day-of-week", "Quartz's L and W"},
		{"30 2 * * mon#1", 9, "day-of-week", "nth weekday"},
		{"30 2 * * * # nightly", 11, "cron", "comment"},
		{"30 2 * * monday", 9, "day-of-week", `three-letter name "mon"`},
		{"30 2 * january *", 7, "month", `three-letter name "jan"`},
		{"30 2 * * 1/2", 9, "day-of-week", "read day-of-week \"1/2\" differently"},
		{"30 2 * * fri-mon", 9, "day-of-week", "reversed"},
		{"1,,2 * * * *", 2, "minute", "empty item"},
		{"60 * * * *", 0, "minute", "out of range 0-59"},
		{"0 24 * * *", 2, "hour", "out of range 0-23"},
		{"0 0 0 * *", 4, "day-of-month", "out of range 1-31"},
		{"0 0 * 13 *", 6, "month", "out of range 1-12"},
		{"*/0 * * * *", 0, "minute", "step 0"},
		{"5-1 * * * *", 0, "minute", "reversed"},
		{"1-2-3 * * * *", 0, "minute", "more than one"},
		{"*/5/2 * * * *", 0, "minute", "more than one"},
		{"x * * * *", 0, "minute", "invalid minute"},
		{"*-5 * * * *", 0, "minute", "invalid minute"},
		{"0 0 30 2 *", 4, "day-of-month", "never fires"},
		{"0 0,1x * * *", 4, "hour", "invalid hour"},
		{"@reboot", 0, "cron", "unknown descriptor"},
		{"@dialy", 0, "cron", `did you mean "@daily"?`},
		{"@daily 5", 7, "cron", "takes nothing after it"},
		{"@every", 0, "cron", "needs a duration"},
		{"@every 1d", 7, "cron", "no day unit"},
		{"@every 14h/3h", 7, "cron", "phase"},
		{"@every 500ms", 7, "cron", "minimum interval, 1s"},
		{"@every 1500ms", 7, "cron", "whole number of seconds"},
		{"@every  5m", 0, "cron", "one space"},
		{"0 0 * * *\u00e9", 8, "day-of-week", "invalid day-of-week"},
		{"é 0 * * *", 0, "minute", "invalid minute"},
		{"0 é * * *", 2, "hour", "invalid hour"},
	}
	for _, tt := range refuse {
		_, err := Parse(tt.cron, "UTC")
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) error = %v, want *Error", tt.cron, err)
			continue
		}
		if e.Offset != tt.offset || e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("Parse(%q) = offset %d field %q: %s\nwant offset %d field %q: ...%s...", tt.cron, e.Offset, e.Field, e.Msg, tt.offset, tt.field, tt.msg)
		}
	}
}

func TestLoadLocation(t *testing.T) {
	for _, name := range []string{"", "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"} {
		if _, err := LoadLocation(name); err != nil {
			t.Errorf("LoadLocation(%q): %v", name, err)
		}
	}
	tests := []struct{ name, want string }{
		{"Europe/Pari", `did you mean "Europe/Paris"?`},
		{"europe/paris", `did you mean "Europe/Paris"?`},
		{"America/New York", `did you mean "America/New_York"?`},
		{"Paris", `did you mean "Europe/Paris"?`},
		{"America/Los_Angles", `did you mean "America/Los_Angeles"?`},
		{"PST", `did you mean "America/Los_Angeles"?`},
		{"Mars/Olympus_Mons", "use an IANA time zone name"},
		{"Local", "depends on the machine"},
		{" UTC", "unknown time zone"},
	}
	for _, tt := range tests {
		_, err := LoadLocation(tt.name)
		var e *Error
		if !errors.As(err, &e) || e.Field != "timezone" || e.Offset != -1 || !strings.Contains(e.Msg, tt.want) {
			t.Errorf("LoadLocation(%q) = %v, want an *Error with ...%s...", tt.name, err, tt.want)
		}
	}
	if _, err := Parse("0 0 * * *", "Europe/Pari"); err == nil || !strings.Contains(err.Error(), "Europe/Paris") {
		t.Errorf("Parse with a bad zone: %v", err)
	}
}

func TestOncePerDay(t *testing.T) {
	tests := []struct {
		cron, tz string
		want     bool
	}{
		{"30 2 * * *", "Europe/Paris", true},
		{"@daily", "UTC", true},
		{"0 6 * * 1", "UTC", true},
		{"0 6,18 * * *", "UTC", false},
		{"@hourly", "UTC", false},
		{"@every 24h", "UTC", true},
		{"@every 24h", "Europe/Paris", true},
		{"@every 36h", "America/New_York", true},
		{"@every 12h", "UTC", false},
	}
	for _, tt := range tests {
		c, err := Parse(tt.cron, tt.tz)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.OncePerDay(); got != tt.want {
			t.Errorf("%q in %s: OncePerDay = %v, want %v", tt.cron, tt.tz, got, tt.want)
		}
	}
}
