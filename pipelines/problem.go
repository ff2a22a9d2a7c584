package pipelines

import (
	"fmt"
	"sort"
	"strings"

	namesuggest "github.com/kiln-ml/kiln/internal/suggest"
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

// suggest returns the candidate closest to name when it is close enough
// to be a likely typo (see suggest.Closest), or "".
func suggest(name string, candidates []string) string { return namesuggest.Closest(name, candidates) }

// didYouMean formats a suggestion suffix: `, did you mean "needs"?`, or ""
// when there is nothing close.
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf(", did you mean %q?", s)
	}
	return ""
}

// quoteList formats names as a comma-separated list.
func quoteList(names []string) string { return strings.Join(names, ", ") }
