package pipelines

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a spec, located in the spec file.
type Problem struct {
	// File is the spec's path as given to Parse.
	File string `json:"file"`
	// Line and Column are 1-based; 0 when the problem has no position (for
	// example an override of an unknown param). Column is 0 when only the
	// line is known.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Path locates the offending node in the YAML structure, e.g.
	// "steps[2].with.split.test" or "params.seed"; empty for file-level problems.
	Path string `json:"path,omitempty"`
	// Message says what is wrong and, where possible, how to fix it.
	Message string `json:"message"`
}

// Error formats the problem as "file:line:col: path: message"; the position
// and path are left out when unknown.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a spec, sorted by position. Problems
// without a position come first.
type Problems []Problem

// Error prints one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sortProblems sorts ps by position, then path and message, and removes
// exact duplicates.
func sortProblems(ps Problems) Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// suggest returns the candidate closest to name by edit distance (with
// transpositions, ignoring case) when it is close enough to be a likely
// typo, or "" when none is.
func suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	lname := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := editDistance(lname, strings.ToLower(c))
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

// didYouMean formats a suggestion suffix: `, did you mean "needs"?`, or ""
// when there is nothing close.
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf(", did you mean %q?", s)
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and adjacent transpositions cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Long strings are never typos of short names; avoid quadratic work.
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

// quoteList formats names as a comma-separated list.
func quoteList(names []string) string { return strings.Join(names, ", ") }
