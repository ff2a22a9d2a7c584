// Package suggest finds what a person probably meant: the known name closest
// to a misspelt one, for "did you mean ...?" hints in error messages.
package suggest

import "strings"

// Distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and adjacent transpositions of runes
// cost 1. Strings longer than 64 runes are never close to anything but
// themselves (their distance is the longer length), which keeps the cost
// bounded.
func Distance(a, b string) int {
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

// Closest returns the candidate nearest to name, ignoring case, when it is
// near enough to be a likely typo — at most 1 edit for candidates of up to 4
// runes, 2 up to 8, 3 beyond — or "" when none is. An exact match is not a
// suggestion.
func Closest(name string, candidates []string) string {
	best, bestDist := "", -1
	lname := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := Distance(lname, strings.ToLower(c))
		limit := 1
		switch n := len([]rune(c)); {
		case n > 8:
			limit = 3
		case n > 4:
			limit = 2
		}
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}
