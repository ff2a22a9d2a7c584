// Package gate implements Kiln's evaluation gates: boolean formulas over
// model metrics that decide whether a trained model may be registered, such
// as
//
//	auc >= 0.8 && logloss < 0.5
//	auc >= champion.auc - 0.002 || accuracy > 0.99
//	!(f1 < 0.5)
//
// A gate is an internal/expr expression (the language of `when`
// conditions: one grammar, one set of error messages) that must be true or
// false, whose identifiers are metrics of the candidate model ("auc") or,
// with the prefix "champion.", the same metric of the model currently
// holding the alias ("champion.auc"), and whose values are numbers. What
// gates add is their evaluation: every comparison is evaluated (no
// short-circuit) and recorded as a Check with both sides' values, so that a
// rejected model's report says by how much it fell short, and comparisons
// with the champion are skipped while there is none.
package gate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/internal/expr"
	"github.com/kiln-ml/kiln/internal/metrics"
)

// KnownMetrics are the metric names the evaluate step computes, for any task
// (metrics.BinaryNames, then the multiclass names binary lacks, then
// metrics.RegressionNames). The pipeline validator rejects gates that use
// any other name, or a name of another task.
var KnownMetrics = knownMetrics()

func knownMetrics() []string {
	names := slices.Clone(metrics.BinaryNames)
	for _, n := range metrics.MulticlassNames {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return append(names, metrics.RegressionNames...)
}

// ChampionPrefix marks an identifier as a metric of the current champion model.
const ChampionPrefix = "champion."

// SyntaxError is a problem in a gate expression: expr's, with the
// 1-based column (in characters) of the problem.
type SyntaxError = expr.SyntaxError

// Expr is a parsed gate expression. Its top level is always boolean.
type Expr struct {
	src  string
	e    *expr.Expr
	refs []Ref
}

// Ref is one identifier occurrence in an expression.
type Ref struct {
	// Name is the identifier as written: "auc" or "champion.auc".
	Name string
	// Metric is the metric name without the champion prefix.
	Metric string
	// Champion is true for "champion." identifiers.
	Champion bool
	// Pos is the 1-based column (in characters) of the identifier.
	Pos int
}

// Check records one comparison evaluated by Eval.
type Check struct {
	// Expr is the source text of the comparison, e.g. "auc >= 0.8".
	Expr string `json:"expr"`
	// Left and Right are the values of the two sides. For a skipped check a
	// side that refers to the champion is 0.
	Left  float64 `json:"left"`
	Right float64 `json:"right"`
	// Op is the comparison operator.
	Op string `json:"op"`
	// LeftExpr and RightExpr are the source text of the two sides, e.g. "auc"
	// and "champion.auc + 0.002".
	LeftExpr  string `json:"left_expr,omitempty"`
	RightExpr string `json:"right_expr,omitempty"`
	// Pass is the comparison's own truth value (a check under ! may fail while
	// the gate passes). Skipped checks pass.
	Pass bool `json:"pass"`
	// Skipped is true when the comparison refers to the champion and there is
	// no champion yet.
	Skipped bool `json:"skipped,omitempty"`
}

// String formats c for logs, e.g. `auc >= 0.8 (0.912 >= 0.8): pass`.
func (c Check) String() string {
	if c.Skipped {
		return c.Expr + ": skipped (no champion)"
	}
	verdict := "fail"
	if c.Pass {
		verdict = "pass"
	}
	return fmt.Sprintf("%s (%g %s %g): %s", c.Expr, c.Left, c.Op, c.Right, verdict)
}

// Margin is how far the comparison is from flipping: for >= and > it is
// Left - Right, for <= and < Right - Left, for != |Left - Right| and for ==
// -|Left - Right|. A failed check's margin is negative or zero: it fell short
// by -Margin.
func (c Check) Margin() float64 {
	switch c.Op {
	case ">=", ">":
		return c.Left - c.Right
	case "<=", "<":
		return c.Right - c.Left
	case "!=":
		return math.Abs(c.Left - c.Right)
	}
	return -math.Abs(c.Left - c.Right)
}

// negated maps each comparison to the one that holds when it fails.
var negated = map[string]string{">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "=="}

// Report formats c for people, with the relation that actually holds, the
// values of non-literal sides and the margin, e.g.
//
//	auc 0.912 < champion.auc + 0.002 = 0.931: short by 0.019
//	auc 0.95 >= 0.8: passes by 0.15
//	auc >= champion.auc: skipped (no champion)
func (c Check) Report() string {
	if c.Skipped {
		return c.Expr + ": skipped (no champion)"
	}
	if c.LeftExpr == "" && c.RightExpr == "" { // a check from before sides were recorded
		return c.String()
	}
	op, verdict := c.Op, ""
	switch m := c.Margin(); {
	case c.Pass && c.Op == "==":
		verdict = "holds exactly"
	case c.Pass:
		verdict = "passes by " + fmtValue(m)
	case c.Op == "!=":
		op, verdict = negated[c.Op], "fails: the values are equal"
	default:
		op, verdict = negated[c.Op], "short by "+fmtValue(-m)
	}
	return fmt.Sprintf("%s %s %s: %s", side(c.LeftExpr, c.Left), op, side(c.RightExpr, c.Right), verdict)
}

// side formats one side of a comparison: a literal as written, a metric as
// "auc 0.912", anything else as "champion.auc + 0.002 = 0.931".
func side(expr string, v float64) string {
	if _, err := strconv.ParseFloat(expr, 64); err == nil {
		return expr
	}
	if isIdent(expr) {
		return expr + " " + fmtValue(v)
	}
	return expr + " = " + fmtValue(v)
}

// isIdent reports whether s is a single identifier such as auc or champion.auc.
func isIdent(s string) bool {
	name, _ := strings.CutPrefix(s, ChampionPrefix)
	return isMetricName(name)
}

// isMetricName reports whether s is a metric name: a letter or underscore,
// then letters, digits and underscores.
func isMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// fmtValue formats a metric value or margin with 4 significant digits.
func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// Parse parses a gate expression. Errors are *SyntaxError: expr's syntax
// and type errors, and an expression that is not a condition ("auc + 1"),
// names something other than a metric ("params.x", "champion.a.b") or has
// a string or bool literal.
func Parse(src string) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &SyntaxError{Pos: 1, Msg: "empty gate expression; write a comparison such as auc >= 0.8"}
	}
	e, err := expr.Parse(src)
	var se *SyntaxError
	if errors.As(err, &se) && strings.Contains(se.Msg, `found bool "!`) {
		// Gates once read "!auc > 0.5" as "!(auc > 0.5)"; say how to write it now.
		return nil, &SyntaxError{Pos: se.Pos, Msg: se.Msg + "; ! applies to what follows it, so negate a comparison in parentheses: !(auc > 0.5)"}
	}
	if err != nil {
		return nil, err
	}
	g := &Expr{src: src, e: e}
	for _, id := range e.Idents() {
		name, champion := strings.CutPrefix(id.Path, ChampionPrefix)
		if !isMetricName(name) {
			msg := fmt.Sprintf("%q is not a metric: a gate names the candidate's metrics (auc) and the champion's (champion.auc)", id.Path)
			if strings.Contains(id.Path, "-") {
				msg += fmt.Sprintf("; put spaces around a minus sign (%s)", strings.ReplaceAll(id.Path, "-", " - "))
			}
			return nil, &SyntaxError{Pos: id.Pos, Msg: msg}
		}
		g.refs = append(g.refs, Ref{Name: id.Path, Metric: name, Champion: champion, Pos: id.Pos})
	}
	if err := literalsAreNumbers(e.Root()); err != nil {
		return nil, err
	}
	if err := comparesNumbers(e.Root()); err != nil {
		return nil, err
	}
	typ, err := e.Check(func(string) expr.Type { return expr.Number })
	if err != nil {
		return nil, err
	}
	if typ != expr.Bool {
		root := e.Root()
		return nil, &SyntaxError{Pos: root.Pos(), Msg: fmt.Sprintf("a gate must be a comparison such as auc >= 0.8, found the number expression %q", root.Text())}
	}
	return g, nil
}

// comparesNumbers rejects a comparison of conditions, such as
// "(auc > 0.8) == (f1 > 0.5)": a gate's comparisons compare numbers (and
// are what its report explains); && and || combine conditions.
func comparesNumbers(n expr.Node) error {
	switch n.Kind() {
	case expr.UnaryNode:
		return comparesNumbers(n.X())
	case expr.BinaryNode:
		if comparison[n.Op()] {
			for _, side := range []expr.Node{n.X(), n.Y()} {
				if isCondition(side) {
					return &SyntaxError{Pos: side.Pos(), Msg: fmt.Sprintf("operator %q compares numbers in a gate, found the condition %q; combine conditions with && and ||", n.Op(), side.Text())}
				}
			}
		}
		if err := comparesNumbers(n.X()); err != nil {
			return err
		}
		return comparesNumbers(n.Y())
	}
	return nil
}

// comparison lists the comparison operators.
var comparison = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

// isCondition reports whether n is boolean: a comparison, && or ||, or !.
func isCondition(n expr.Node) bool {
	switch n.Kind() {
	case expr.UnaryNode:
		return n.Op() == "!"
	case expr.BinaryNode:
		return comparison[n.Op()] || n.Op() == "&&" || n.Op() == "||"
	}
	return false
}

// literalsAreNumbers rejects string and bool literals: gates compare
// numbers.
func literalsAreNumbers(n expr.Node) error {
	switch n.Kind() {
	case expr.LiteralNode:
		if _, ok := n.Value().(float64); !ok {
			return &SyntaxError{Pos: n.Pos(), Msg: fmt.Sprintf("a gate compares numbers; %s is not one", n.Text())}
		}
	case expr.UnaryNode:
		return literalsAreNumbers(n.X())
	case expr.BinaryNode:
		if err := literalsAreNumbers(n.X()); err != nil {
			return err
		}
		return literalsAreNumbers(n.Y())
	}
	return nil
}

// String returns the expression's source text.
func (e *Expr) String() string { return e.src }

// Metrics returns the identifiers used, sorted and without duplicates; champion
// metrics are listed with their prefix, e.g. "champion.auc".
func (e *Expr) Metrics() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range e.refs {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Refs returns every identifier occurrence in source order.
func (e *Expr) Refs() []Ref { return append([]Ref(nil), e.refs...) }

// Eval evaluates the gate against the candidate's metrics and the champion's.
// It evaluates every comparison (no short-circuit) and returns them in source
// order. A nil champion means there is no champion yet: every comparison that
// refers to champion.* is skipped and counts as satisfied (under ! it counts
// as whatever makes the gate pass). An identifier missing from metrics (or
// from a non-nil champion) is an error naming it, as is division by zero.
// So is a NaN value (such as the AUC of a holdout with a single class): every
// comparison with NaN is false, so "!(auc < 0.8)" would pass.
func (e *Expr) Eval(metrics, champion map[string]float64) (bool, []Check, error) {
	ev := &evaluator{metrics: metrics, champion: champion}
	ok, err := ev.boolean(e.e.Root(), true)
	if err != nil {
		return false, ev.checks, fmt.Errorf("gate %q: %w", e.src, err)
	}
	return ok, ev.checks, nil
}

type evaluator struct {
	metrics  map[string]float64
	champion map[string]float64
	checks   []Check
}

// boolean evaluates a boolean node. positive tells whether the node sits under
// an even number of ! operators; a skipped comparison evaluates to positive so
// that it never makes the gate fail.
func (ev *evaluator) boolean(n expr.Node, positive bool) (bool, error) {
	switch n.Kind() {
	case expr.UnaryNode: // Parse's type check leaves only ! here
		v, err := ev.boolean(n.X(), !positive)
		return !v, err
	case expr.BinaryNode:
		if n.Op() == "&&" || n.Op() == "||" {
			l, err := ev.boolean(n.X(), positive)
			if err != nil {
				return false, err
			}
			r, err := ev.boolean(n.Y(), positive)
			if err != nil {
				return false, err
			}
			if n.Op() == "&&" {
				return l && r, nil
			}
			return l || r, nil
		}
		return ev.compare(n, positive)
	}
	return false, fmt.Errorf("internal error: %q is not boolean", n.Text())
}

// usesChampion reports whether n refers to a champion metric.
func usesChampion(n expr.Node) bool {
	switch n.Kind() {
	case expr.IdentNode:
		return strings.HasPrefix(n.Path(), ChampionPrefix)
	case expr.UnaryNode:
		return usesChampion(n.X())
	case expr.BinaryNode:
		return usesChampion(n.X()) || usesChampion(n.Y())
	}
	return false
}

func (ev *evaluator) compare(n expr.Node, positive bool) (bool, error) {
	x, y := n.X(), n.Y()
	c := Check{Expr: strings.TrimSpace(n.Text()), Op: n.Op(),
		LeftExpr: strings.TrimSpace(x.OuterText()), RightExpr: strings.TrimSpace(y.OuterText())}
	if ev.champion == nil && (usesChampion(x) || usesChampion(y)) {
		var err error
		if !usesChampion(x) {
			if c.Left, err = ev.number(x); err != nil {
				return false, err
			}
		}
		if !usesChampion(y) {
			if c.Right, err = ev.number(y); err != nil {
				return false, err
			}
		}
		c.Pass, c.Skipped = true, true
		ev.checks = append(ev.checks, c)
		return positive, nil
	}
	var err error
	if c.Left, err = ev.number(x); err != nil {
		return false, err
	}
	if c.Right, err = ev.number(y); err != nil {
		return false, err
	}
	if math.IsNaN(c.Left) || math.IsNaN(c.Right) { // from arithmetic, e.g. Inf - Inf
		return false, fmt.Errorf("comparison %q has a NaN side (%g %s %g)", c.Expr, c.Left, c.Op, c.Right)
	}
	switch c.Op {
	case ">=":
		c.Pass = c.Left >= c.Right
	case "<=":
		c.Pass = c.Left <= c.Right
	case ">":
		c.Pass = c.Left > c.Right
	case "<":
		c.Pass = c.Left < c.Right
	case "==":
		c.Pass = c.Left == c.Right
	case "!=":
		c.Pass = c.Left != c.Right
	}
	ev.checks = append(ev.checks, c)
	return c.Pass, nil
}

func (ev *evaluator) number(n expr.Node) (float64, error) {
	switch n.Kind() {
	case expr.LiteralNode:
		return n.Value().(float64), nil // Parse refuses other literals
	case expr.IdentNode:
		name, champion := strings.CutPrefix(n.Path(), ChampionPrefix)
		if champion {
			v, ok := ev.champion[name]
			if !ok {
				return 0, fmt.Errorf("the champion has no metric %q (needed by %s)", name, n.Path())
			}
			if math.IsNaN(v) {
				return 0, fmt.Errorf("the champion's metric %s is NaN (e.g. the holdout has one class; needed by %s)", name, n.Path())
			}
			return v, nil
		}
		v, ok := ev.metrics[name]
		if !ok {
			return 0, fmt.Errorf("metric %q is missing from the evaluation results", name)
		}
		if math.IsNaN(v) {
			return 0, fmt.Errorf("metric %s is NaN (e.g. the holdout has one class)", name)
		}
		return v, nil
	case expr.UnaryNode: // unary minus or plus
		v, err := ev.number(n.X())
		if n.Op() == "-" {
			v = -v
		}
		return v, err
	case expr.BinaryNode:
		l, err := ev.number(n.X())
		if err != nil {
			return 0, err
		}
		r, err := ev.number(n.Y())
		if err != nil {
			return 0, err
		}
		switch n.Op() {
		case "+":
			return l + r, nil
		case "-":
			return l - r, nil
		case "*":
			return l * r, nil
		case "/":
			if r == 0 {
				return 0, fmt.Errorf("division by zero in %q", strings.TrimSpace(n.Text()))
			}
			return l / r, nil
		}
	}
	return 0, fmt.Errorf("internal error: %q is not numeric", n.Text())
}
