package schedule

import (
	"fmt"
	"strings"
	"time"
	// The time zone database is compiled in, so that schedules work the
	// same on machines without /usr/share/zoneinfo (containers, Windows).
	_ "time/tzdata"

	"github.com/kiln-ml/kiln/internal/suggest"
)

// DefaultTimezone is the time zone of a schedule that names none.
const DefaultTimezone = "UTC"

// LoadLocation loads an IANA time zone ("Europe/Paris"); "" means UTC.
// "Local" is refused (it depends on the machine). The error of an unknown
// name suggests a close one when there is one ("Europe/Pari" → "Europe/Paris").
// Errors are *Error with Field "timezone".
func LoadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" || strings.TrimSpace(name) != name || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, zoneError(name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, zoneError(name)
	}
	return loc, nil
}

func zoneError(name string) *Error {
	msg := fmt.Sprintf("unknown time zone %q", name)
	switch {
	case name == "Local":
		msg = `time zone "Local" depends on the machine that runs the schedule; name an IANA time zone such as "Europe/Paris" or "UTC"`
	case SuggestZone(name) != "":
		msg += fmt.Sprintf(`, did you mean %q?`, SuggestZone(name))
	default:
		msg += `: use an IANA time zone name such as "Europe/Paris", "America/New_York" or "UTC"`
	}
	return &Error{Offset: -1, Field: "timezone", Text: name, Msg: msg}
}

// zoneAbbreviations maps common abbreviations, which are not zone names, to
// a representative zone.
var zoneAbbreviations = map[string]string{
	"PST": "America/Los_Angeles", "PDT": "America/Los_Angeles", "PT": "America/Los_Angeles",
	"MDT": "America/Denver", "MT": "America/Denver",
	"CDT": "America/Chicago", "CT": "America/Chicago",
	"EDT": "America/New_York", "ET": "America/New_York",
	"BST": "Europe/London", "CEST": "Europe/Paris", "EEST": "Europe/Athens",
	"IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "KST": "Asia/Seoul",
	"AEST": "Australia/Sydney", "AEDT": "Australia/Sydney",
}

// SuggestZone returns the known time zone name closest to name (a different
// case, spaces for underscores, a typo, a city without its region, a common
// abbreviation), or "" when none is close.
func SuggestZone(name string) string {
	n := strings.TrimSpace(name)
	if n == "" {
		return ""
	}
	if z, ok := zoneAbbreviations[strings.ToUpper(n)]; ok {
		return z
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "_")) }
	key := norm(n)
	city := key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		city = key[i+1:]
	}
	best, bestScore := "", 1<<30
	for _, z := range zoneNames {
		if z == n {
			continue
		}
		lz := strings.ToLower(z)
		if lz == key {
			return z
		}
		d := suggest.Distance(key, lz)
		limit := max(1, len(key)/5)
		if d > limit {
			// A city without its region ("paris"), or a misspelt city.
			zc := lz
			if i := strings.LastIndexByte(lz, '/'); i >= 0 {
				zc = lz[i+1:]
			}
			cd := suggest.Distance(city, zc)
			if cd > max(1, len(zc)/5) {
				continue
			}
			// Prefer full-name matches over city matches.
			d = 100 + cd
		}
		// Prefer Region/City names over old aliases ("Europe/Paris" over "Poland").
		score := d * 2
		if !strings.Contains(z, "/") {
			score++
		}
		if score < bestScore {
			best, bestScore = z, score
		}
	}
	return best
}
