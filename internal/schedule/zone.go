package schedule

import (
	"fmt"
	"strings"
	"time"
	// The time zone database is compiled in, so that schedules work the
	// same on machines without /usr/share/zoneinfo (containers, Windows).
	_ "time/tzdata"
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
		d := distance(key, lz)
		limit := max(1, len(key)/5)
		if d > limit {
			// A city without its region ("paris"), or a misspelt city.
			zc := lz
			if i := strings.LastIndexByte(lz, '/'); i >= 0 {
				zc = lz[i+1:]
			}
			cd := distance(city, zc)
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

// distance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and adjacent transpositions).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
