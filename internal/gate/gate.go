// Package gate implements Kiln's evaluation gate expressions: small boolean
// formulas over model metrics that decide whether a trained model may be
// registered, such as
//
//	auc >= 0.8 && logloss < 0.5
//	auc >= champion.auc - 0.002 || accuracy > 0.99
//	!(f1 < 0.5)
//
// An expression combines comparisons (>= <= > < == !=) with && || ! and
// parentheses. Each side of a comparison is arithmetic (+ - * / and unary
// minus) over numbers (1, 0.5, 1e-3) and identifiers. An identifier is a
// metric of the candidate model ("auc") or, with the prefix "champion.", the
// same metric of the model currently holding the alias ("champion.auc").
//
// Precedence, from loosest to tightest: ||, &&, !, comparisons, + -, * /,
// unary minus. The ! operator negates the comparison or parenthesised
// expression that follows it, so "!auc > 0.5" means "!(auc > 0.5)".
package gate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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

// SyntaxError is a problem in a gate expression.
type SyntaxError struct {
	// Pos is the 1-based column (in characters) of the problem in the expression.
	Pos int
	// Msg describes the problem.
	Msg string
}

// Error implements error.
func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Pos, e.Msg) }

// Expr is a parsed gate expression. Its top level is always boolean.
type Expr struct {
	src  string
	root *node
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
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '.' {
			return false
		}
	}
	return true
}

// fmtValue formats a metric value or margin with 4 significant digits.
func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// Parse parses a gate expression. Errors are *SyntaxError. An expression whose
// top level is not boolean (e.g. "auc + 1") is an error.
func Parse(expr string) (*Expr, error) {
	p := &parser{src: expr}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if p.peek().kind == tokEOF {
		return nil, p.errAt(0, "empty gate expression; write a comparison such as auc >= 0.8")
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		if t.kind == tokRParen {
			return nil, p.errAt(t.pos, `unexpected ")" without a matching "("`)
		}
		return nil, p.errAt(t.pos, fmt.Sprintf("unexpected %s after a complete expression; combine conditions with && or ||", t.describe()))
	}
	if !root.isBool {
		return nil, p.errAt(root.start, fmt.Sprintf("gate must be a comparison such as auc >= 0.8, found the number expression %q", p.text(root)))
	}
	e := &Expr{src: expr, root: root}
	e.collectRefs(root)
	return e, nil
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

func (e *Expr) collectRefs(n *node) {
	if n == nil {
		return
	}
	if n.kind == nodeIdent {
		e.refs = append(e.refs, Ref{Name: n.name, Metric: n.metric, Champion: n.champion, Pos: column(e.src, n.start)})
		return
	}
	e.collectRefs(n.x)
	e.collectRefs(n.y)
}

// Eval evaluates the gate against the candidate's metrics and the champion's.
// It evaluates every comparison (no short-circuit) and returns them in source
// order. A nil champion means there is no champion yet: every comparison that
// refers to champion.* is skipped and counts as satisfied (under ! it counts
// as whatever makes the gate pass). An identifier missing from metrics (or
// from a non-nil champion) is an error naming it, as is division by zero.
// So is a NaN value (such as the AUC of a holdout with a single class): every
// comparison with NaN is false, so "!(auc < 0.8)" would pass.
func (e *Expr) Eval(metrics, champion map[string]float64) (bool, []Check, error) {
	ev := &evaluator{src: e.src, metrics: metrics, champion: champion}
	ok, err := ev.boolean(e.root, true)
	if err != nil {
		return false, ev.checks, fmt.Errorf("gate %q: %w", e.src, err)
	}
	return ok, ev.checks, nil
}

type evaluator struct {
	src      string
	metrics  map[string]float64
	champion map[string]float64
	checks   []Check
}

// boolean evaluates a boolean node. positive tells whether the node sits under
// an even number of ! operators; a skipped comparison evaluates to positive so
// that it never makes the gate fail.
func (ev *evaluator) boolean(n *node, positive bool) (bool, error) {
	switch n.kind {
	case nodeUnary: // only ! is boolean
		v, err := ev.boolean(n.x, !positive)
		return !v, err
	case nodeBinary:
		if n.op == "&&" || n.op == "||" {
			l, err := ev.boolean(n.x, positive)
			if err != nil {
				return false, err
			}
			r, err := ev.boolean(n.y, positive)
			if err != nil {
				return false, err
			}
			if n.op == "&&" {
				return l && r, nil
			}
			return l || r, nil
		}
		return ev.compare(n, positive)
	}
	return false, fmt.Errorf("internal error: %q is not boolean", ev.src[n.start:n.end])
}

func (ev *evaluator) compare(n *node, positive bool) (bool, error) {
	c := Check{Expr: strings.TrimSpace(ev.src[n.start:n.end]), Op: n.op,
		LeftExpr: strings.TrimSpace(ev.src[n.x.ostart:n.x.oend]), RightExpr: strings.TrimSpace(ev.src[n.y.ostart:n.y.oend])}
	if ev.champion == nil && (n.x.usesChampion() || n.y.usesChampion()) {
		var err error
		if !n.x.usesChampion() {
			if c.Left, err = ev.number(n.x); err != nil {
				return false, err
			}
		}
		if !n.y.usesChampion() {
			if c.Right, err = ev.number(n.y); err != nil {
				return false, err
			}
		}
		c.Pass, c.Skipped = true, true
		ev.checks = append(ev.checks, c)
		return positive, nil
	}
	var err error
	if c.Left, err = ev.number(n.x); err != nil {
		return false, err
	}
	if c.Right, err = ev.number(n.y); err != nil {
		return false, err
	}
	if math.IsNaN(c.Left) || math.IsNaN(c.Right) { // from arithmetic, e.g. Inf - Inf
		return false, fmt.Errorf("comparison %q has a NaN side (%g %s %g)", c.Expr, c.Left, c.Op, c.Right)
	}
	switch n.op {
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

func (ev *evaluator) number(n *node) (float64, error) {
	switch n.kind {
	case nodeNumber:
		return n.num, nil
	case nodeIdent:
		if n.champion {
			v, ok := ev.champion[n.metric]
			if !ok {
				return 0, fmt.Errorf("the champion has no metric %q (needed by %s)", n.metric, n.name)
			}
			if math.IsNaN(v) {
				return 0, fmt.Errorf("the champion's metric %s is NaN (e.g. the holdout has one class; needed by %s)", n.metric, n.name)
			}
			return v, nil
		}
		v, ok := ev.metrics[n.metric]
		if !ok {
			return 0, fmt.Errorf("metric %q is missing from the evaluation results", n.metric)
		}
		if math.IsNaN(v) {
			return 0, fmt.Errorf("metric %s is NaN (e.g. the holdout has one class)", n.metric)
		}
		return v, nil
	case nodeUnary: // unary minus or plus
		v, err := ev.number(n.x)
		if n.op == "-" {
			v = -v
		}
		return v, err
	case nodeBinary:
		l, err := ev.number(n.x)
		if err != nil {
			return 0, err
		}
		r, err := ev.number(n.y)
		if err != nil {
			return 0, err
		}
		switch n.op {
		case "+":
			return l + r, nil
		case "-":
			return l - r, nil
		case "*":
			return l * r, nil
		case "/":
			if r == 0 {
				return 0, fmt.Errorf("division by zero in %q", strings.TrimSpace(ev.src[n.start:n.end]))
			}
			return l / r, nil
		}
	}
	return 0, fmt.Errorf("internal error: %q is not numeric", ev.src[n.start:n.end])
}

// column converts a byte offset in s to a 1-based character column.
func column(s string, off int) int {
	if off > len(s) {
		off = len(s)
	}
	return utf8.RuneCountInString(s[:off]) + 1
}
