package gate

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/internal/expr"
)

// sexpr renders a node as an S-expression so tests can check the tree shape.
func sexpr(n expr.Node) string {
	switch n.Kind() {
	case expr.LiteralNode:
		return strconv.FormatFloat(n.Value().(float64), 'g', -1, 64)
	case expr.IdentNode:
		return n.Path()
	case expr.UnaryNode:
		return "(" + n.Op() + " " + sexpr(n.X()) + ")"
	}
	return "(" + n.Op() + " " + sexpr(n.X()) + " " + sexpr(n.Y()) + ")"
}

func TestParse(t *testing.T) {
	tests := []struct {
		expr    string
		tree    string
		metrics []string
	}{
		{"auc >= 0.8", "(>= auc 0.8)", []string{"auc"}},
		{"auc >= 0.8 && logloss < 0.5", "(&& (>= auc 0.8) (< logloss 0.5))", []string{"auc", "logloss"}},
		{"auc >= champion.auc - 0.002 || accuracy > 0.99",
			"(|| (>= auc (- champion.auc 0.002)) (> accuracy 0.99))", []string{"accuracy", "auc", "champion.auc"}},
		{"!(f1 < 0.5)", "(! (< f1 0.5))", []string{"f1"}},
		{"!!(f1 < 0.5)", "(! (! (< f1 0.5)))", []string{"f1"}},
		{"f1 > 1 || f1 > 2 && f1 > 3", "(|| (> f1 1) (&& (> f1 2) (> f1 3)))", []string{"f1"}},
		{"(f1 > 1 || f1 > 2) && f1 > 3", "(&& (|| (> f1 1) (> f1 2)) (> f1 3))", []string{"f1"}},
		{"recall >= 1e-3", "(>= recall 0.001)", []string{"recall"}},
		{"recall >= 1E+2", "(>= recall 100)", []string{"recall"}},
		{"recall >= .5", "(>= recall 0.5)", []string{"recall"}},
		{"auc + 1 * 2 - 3 / 4 == 0", "(== (- (+ auc (* 1 2)) (/ 3 4)) 0)", []string{"auc"}},
		{"(auc + 1) * 2 != -auc", "(!= (* (+ auc 1) 2) (- auc))", []string{"auc"}},
		{"auc <= +1", "(<= auc (+ 1))", []string{"auc"}},
		{"auc - -1 > 0", "(> (- auc (- 1)) 0)", []string{"auc"}},
		{"((auc)) > (0.5)", "(> auc 0.5)", []string{"auc"}},
		{"auc > 0.5 && auc > champion.auc && champion.f1 <= f1", "(&& (&& (> auc 0.5) (> auc champion.auc)) (<= champion.f1 f1))",
			[]string{"auc", "champion.auc", "champion.f1", "f1"}},
		{"\tpositive_rate\n< 0.9 ", "(< positive_rate 0.9)", []string{"positive_rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			if got := sexpr(e.e.Root()); got != tt.tree {
				t.Errorf("tree = %s, want %s", got, tt.tree)
			}
			if got := e.Metrics(); !reflect.DeepEqual(got, tt.metrics) {
				t.Errorf("Metrics() = %q, want %q", got, tt.metrics)
			}
			if e.String() != tt.expr {
				t.Errorf("String() = %q, want the source", e.String())
			}
		})
	}
}

func TestRefs(t *testing.T) {
	e, err := Parse("auc >= champion.auc - 0.01 && f1 > 0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{Name: "auc", Metric: "auc", Pos: 1},
		{Name: "champion.auc", Metric: "auc", Champion: true, Pos: 8},
		{Name: "f1", Metric: "f1", Pos: 31},
	}
	if got := e.Refs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Refs() = %+v, want %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr string
		pos  int
		msg  string
	}{
		{"", 1, "empty gate expression; write a comparison such as auc >= 0.8"},
		{"   ", 1, "empty gate expression; write a comparison such as auc >= 0.8"},
		{"auc + 1", 1, `a gate must be a comparison such as auc >= 0.8, found the number expression "auc + 1"`},
		{"auc", 1, `a gate must be a comparison such as auc >= 0.8, found the number expression "auc"`},
		{"(auc)", 2, `a gate must be a comparison such as auc >= 0.8, found the number expression "auc"`},
		{"auc >=", 7, `unexpected end of expression; expected a value, an identifier or "("`},
		{"auc >= 0.8 &&", 14, `unexpected end of expression; expected a value, an identifier or "("`},
		{"auc >= 0.8 & f1 > 0", 12, `unexpected character '&'; did you mean "&&"?`},
		{"auc >= 0.8 | f1 > 0", 12, `unexpected character '|'; did you mean "||"?`},
		{"auc = 0.8", 5, `unexpected character '='; did you mean "=="?`},
		{"auc >= 0.8 and f1 > 0", 12, `unexpected "and"; use "&&"`},
		{"auc >= 0.8 or f1 > 0", 12, `unexpected "or"; use "||"`},
		{"not auc >= 0.8", 1, `unexpected "not"; use "!"`},
		{"auc >= 0.8 f1", 12, `unexpected identifier "f1" after a complete expression; join conditions with && or ||`},
		{"auc >= 0.8)", 11, `unmatched ")"`},
		{"(auc >= 0.8", 1, `unclosed "("`},
		{"(auc >= 0.8 f1", 13, `expected ")", found identifier "f1"`},
		{"0.1 < auc < 0.9", 11, `comparisons cannot be chained; write "0.1 < auc" && ... instead`},
		{"auc >= 1e", 8, `malformed number "1e": the exponent needs digits`},
		{"auc >= 1.2.3", 8, `malformed number "1.2.3"`},
		{"auc >= 2x", 8, `malformed number "2x"`},
		{"auc >= 1e999", 8, `number "1e999" is out of range`},
		{"model.auc > 0", 1, `"model.auc" is not a metric: a gate names the candidate's metrics (auc) and the champion's (champion.auc)`},
		{"champion. > 0", 1, `malformed identifier "champion.": each part after a dot must start with a letter or _`},
		{"champion.a.b > 0", 1, `"champion.a.b" is not a metric: a gate names the candidate's metrics (auc) and the champion's (champion.auc)`},
		{"auc && f1 > 0", 1, `operator "&&" needs bool operands, found number "auc"`},
		{"f1 > 0 || auc", 11, `operator "||" needs bool operands, found number "auc"`},
		{"!auc", 2, `operator "!" needs a bool operand, found number "auc"`},
		{"(auc > 0) + 1 > 2", 2, `operator "+" needs number operands, found bool "auc > 0"`},
		{"-(auc > 0) > 2", 3, `operator "-" needs a number operand, found bool "auc > 0"`},
		{"(auc > 0) == (f1 > 0)", 2, `operator "==" compares numbers in a gate, found the condition "auc > 0"; combine conditions with && and ||`},
		{"!f1 < 0.5", 1, `operator "<" needs two numbers or two strings, found bool "!f1"; ! applies to what follows it, so negate a comparison in parentheses: !(auc > 0.5)`},
		{"auc >= champion.auc-0.01", 8, `malformed identifier "champion.auc-0.01": each part after a dot must start with a letter or _; to subtract, put spaces around "-"`},
		{"auc-f1 > 0", 1, `"auc-f1" is not a metric: a gate names the candidate's metrics (auc) and the champion's (champion.auc); put spaces around a minus sign (auc - f1)`},
		{"auc >= 'high'", 8, `a gate compares numbers; 'high' is not one`},
		{"auc > 0.5 && true", 14, `a gate compares numbers; true is not one`},
		{"params.min_auc < auc", 1, `"params.min_auc" is not a metric: a gate names the candidate's metrics (auc) and the champion's (champion.auc)`},
		{"auc >= é", 8, `unexpected character 'é'`},
		{"é < auc >= ", 1, `unexpected character 'é'`},
		{"auc > 0 && é", 12, `unexpected character 'é'`},
		{"auc > )", 7, `unexpected ")"; expected a value, an identifier or "("`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := Parse(tt.expr)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v, want a *SyntaxError", tt.expr, err)
			}
			if se.Pos != tt.pos || se.Msg != tt.msg {
				t.Errorf("Parse(%q) = column %d: %s\nwant column %d: %s", tt.expr, se.Pos, se.Msg, tt.pos, tt.msg)
			}
			if want := fmt.Sprintf("column %d: %s", tt.pos, tt.msg); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestEval(t *testing.T) {
	metrics := map[string]float64{"auc": 0.91, "accuracy": 0.85, "f1": 0.6, "logloss": 0.3, "recall": 0.7}
	champion := map[string]float64{"auc": 0.92, "f1": 0.5}
	f1 := metrics["f1"] // float64 arithmetic, not exact constant arithmetic
	tests := []struct {
		name     string
		expr     string
		champion map[string]float64
		want     bool
		checks   []Check
	}{
		{"single pass", "auc >= 0.8", nil, true, []Check{{Expr: "auc >= 0.8", Left: 0.91, Right: 0.8, Op: ">=", Pass: true}}},
		{"single fail", "auc > 0.95", nil, false, []Check{{Expr: "auc > 0.95", Left: 0.91, Right: 0.95, Op: ">"}}},
		{"and evaluates every side", "auc > 0.95 && logloss < 0.5", nil, false, []Check{
			{Expr: "auc > 0.95", Left: 0.91, Right: 0.95, Op: ">"},
			{Expr: "logloss < 0.5", Left: 0.3, Right: 0.5, Op: "<", Pass: true},
		}},
		{"or", "auc > 0.95 || accuracy >= 0.85", nil, true, []Check{
			{Expr: "auc > 0.95", Left: 0.91, Right: 0.95, Op: ">"},
			{Expr: "accuracy >= 0.85", Left: 0.85, Right: 0.85, Op: ">=", Pass: true},
		}},
		{"not", "!(f1 < 0.5)", nil, true, []Check{{Expr: "f1 < 0.5", Left: 0.6, Right: 0.5, Op: "<"}}},
		{"equality", "recall == 0.7 && recall != 0.8 && recall <= 0.7", nil, true, []Check{
			{Expr: "recall == 0.7", Left: 0.7, Right: 0.7, Op: "==", Pass: true},
			{Expr: "recall != 0.8", Left: 0.7, Right: 0.8, Op: "!=", Pass: true},
			{Expr: "recall <= 0.7", Left: 0.7, Right: 0.7, Op: "<=", Pass: true},
		}},
		{"arithmetic", "f1 * 2 - 0.2 / 2 > -(-1)", nil, true, []Check{
			{Expr: "f1 * 2 - 0.2 / 2 > -(-1)", Left: f1*2 - 0.2/2, Right: 1, Op: ">", Pass: true},
		}},
		{"champion present, fails", "auc >= champion.auc - 0.005", champion, false, []Check{
			{Expr: "auc >= champion.auc - 0.005", Left: 0.91, Right: champion["auc"] - 0.005, Op: ">="},
		}},
		{"champion present, passes", "f1 > champion.f1", champion, true, []Check{
			{Expr: "f1 > champion.f1", Left: 0.6, Right: 0.5, Op: ">", Pass: true},
		}},
		{"no champion skips", "auc >= 0.8 && auc >= champion.auc - 0.01", nil, true, []Check{
			{Expr: "auc >= 0.8", Left: 0.91, Right: 0.8, Op: ">=", Pass: true},
			{Expr: "auc >= champion.auc - 0.01", Left: 0.91, Op: ">=", Pass: true, Skipped: true},
		}},
		{"no champion still applies other conditions", "auc >= 0.95 && auc >= champion.auc", nil, false, []Check{
			{Expr: "auc >= 0.95", Left: 0.91, Right: 0.95, Op: ">="},
			{Expr: "auc >= champion.auc", Left: 0.91, Op: ">=", Pass: true, Skipped: true},
		}},
		{"no champion under not", "!(auc < champion.auc)", nil, true, []Check{
			{Expr: "auc < champion.auc", Left: 0.91, Op: "<", Pass: true, Skipped: true},
		}},
		{"no champion in or", "auc >= champion.auc || accuracy > 0.99", nil, true, []Check{
			{Expr: "auc >= champion.auc", Left: 0.91, Op: ">=", Pass: true, Skipped: true},
			{Expr: "accuracy > 0.99", Left: 0.85, Right: 0.99, Op: ">"},
		}},
		{"empty champion map is a champion", "f1 > 0", map[string]float64{}, true, []Check{
			{Expr: "f1 > 0", Left: 0.6, Op: ">", Pass: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, checks, err := e.Eval(metrics, tt.champion)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
			// The sides' texts are checked by TestReport.
			for i := range checks {
				checks[i].LeftExpr, checks[i].RightExpr = "", ""
			}
			if !reflect.DeepEqual(checks, tt.checks) {
				t.Errorf("checks:\n got %+v\nwant %+v", checks, tt.checks)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		expr     string
		metrics  map[string]float64 // nil: {"auc": 0.9}
		champion map[string]float64
		want     string
	}{
		{"precision > 0.5", nil, nil, `gate "precision > 0.5": metric "precision" is missing from the evaluation results`},
		{"auc > champion.auc && precision > 0", nil, nil, `gate "auc > champion.auc && precision > 0": metric "precision" is missing from the evaluation results`},
		{"precision > champion.auc", nil, nil, `gate "precision > champion.auc": metric "precision" is missing from the evaluation results`},
		{"auc > champion.f1", nil, map[string]float64{"auc": 1}, `gate "auc > champion.f1": the champion has no metric "f1" (needed by champion.f1)`},
		{"auc / (auc - auc) > 1", nil, nil, `gate "auc / (auc - auc) > 1": division by zero in "auc / (auc - auc)"`},
		// NaN compares false both ways: it must neither pass nor fail a gate.
		{"auc >= 0.8", map[string]float64{"auc": nan}, nil, `gate "auc >= 0.8": metric auc is NaN (e.g. the holdout has one class)`},
		{"!(auc < 0.8)", map[string]float64{"auc": nan}, nil, `gate "!(auc < 0.8)": metric auc is NaN (e.g. the holdout has one class)`},
		{"f1 > 0 || auc - 0.1 > 0.8", map[string]float64{"auc": nan, "f1": 1}, nil, `gate "f1 > 0 || auc - 0.1 > 0.8": metric auc is NaN (e.g. the holdout has one class)`},
		{"auc >= champion.auc", map[string]float64{"auc": nan}, nil, `gate "auc >= champion.auc": metric auc is NaN (e.g. the holdout has one class)`},
		{"auc >= champion.auc", nil, map[string]float64{"auc": nan}, `gate "auc >= champion.auc": the champion's metric auc is NaN (e.g. the holdout has one class; needed by champion.auc)`},
		{"logloss - logloss < 1", map[string]float64{"logloss": inf}, nil, `gate "logloss - logloss < 1": comparison "logloss - logloss < 1" has a NaN side (NaN < 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			metrics := tt.metrics
			if metrics == nil {
				metrics = map[string]float64{"auc": 0.9}
			}
			_, _, err = e.Eval(metrics, tt.champion)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Eval error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestCheckString(t *testing.T) {
	tests := []struct {
		c    Check
		want string
	}{
		{Check{Expr: "auc >= 0.8", Left: 0.9, Right: 0.8, Op: ">=", Pass: true}, "auc >= 0.8 (0.9 >= 0.8): pass"},
		{Check{Expr: "auc >= 0.8", Left: 0.7, Right: 0.8, Op: ">="}, "auc >= 0.8 (0.7 >= 0.8): fail"},
		{Check{Expr: "auc >= champion.auc", Op: ">=", Pass: true, Skipped: true}, "auc >= champion.auc: skipped (no champion)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestReport(t *testing.T) {
	metrics := map[string]float64{"auc": 0.912, "logloss": 0.41, "f1": 0.6, "r2": 0.8, "rmse": 1.5}
	champion := map[string]float64{"auc": 0.929, "logloss": 0.4, "r2": 0.8, "rmse": 1.2}
	tests := []struct {
		expr     string
		champion map[string]float64
		want     []string
		margins  []float64
	}{
		{"auc >= 0.8 && auc >= champion.auc + 0.002", champion,
			[]string{"auc 0.912 >= 0.8: passes by 0.112", "auc 0.912 < champion.auc + 0.002 = 0.931: short by 0.019"},
			[]float64{0.112, -0.019}},
		{"logloss <= champion.logloss", champion,
			[]string{"logloss 0.41 > champion.logloss 0.4: short by 0.01"}, []float64{-0.01}},
		{"(f1 * 2) > 1", nil, []string{"(f1 * 2) = 1.2 > 1: passes by 0.2"}, []float64{0.2}},
		{"r2 == champion.r2 || r2 != champion.r2", champion,
			[]string{"r2 0.8 == champion.r2 0.8: holds exactly", "r2 0.8 == champion.r2 0.8: fails: the values are equal"},
			[]float64{0, 0}},
		{"rmse < champion.rmse", champion, []string{"rmse 1.5 >= champion.rmse 1.2: short by 0.3"}, []float64{-0.3}},
		{"rmse < champion.rmse", nil, []string{"rmse < champion.rmse: skipped (no champion)"}, []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			_, checks, err := e.Eval(metrics, tt.champion)
			if err != nil {
				t.Fatal(err)
			}
			if len(checks) != len(tt.want) {
				t.Fatalf("%d checks, want %d", len(checks), len(tt.want))
			}
			for i, c := range checks {
				if got := c.Report(); got != tt.want[i] {
					t.Errorf("Report() = %q, want %q", got, tt.want[i])
				}
				if !c.Skipped && math.Abs(c.Margin()-tt.margins[i]) > 1e-12 {
					t.Errorf("Margin() = %v, want %v", c.Margin(), tt.margins[i])
				}
			}
		})
	}
	// A check without sides (stored before they were recorded) falls back to String.
	old := Check{Expr: "auc >= 0.8", Left: 0.7, Right: 0.8, Op: ">="}
	if got := old.Report(); got != old.String() {
		t.Errorf("Report() = %q, want %q", got, old.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"auc >= 0.8 && logloss < 0.5", "auc >= champion.auc - 0.002 || accuracy > 0.99", "!(f1 < 0.5)",
		"(auc + 1) * 2 != -auc", "0.1 < auc < 0.9", "auc >= 1e-3", "champion.", "((", "é",
	} {
		f.Add(s)
	}
	metrics := map[string]float64{}
	for _, m := range KnownMetrics {
		metrics[m] = 0.5
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Pos < 1 || se.Pos > utf8.RuneCountInString(s)+1 {
				t.Fatalf("position %d outside %q", se.Pos, s)
			}
			return
		}
		for _, r := range e.Refs() {
			metrics[r.Metric] = 0.5
		}
		// Arithmetic may divide by zero, or overflow to Inf and then NaN.
		arithmetic := func(err error) bool {
			return strings.Contains(err.Error(), "division by zero") || strings.Contains(err.Error(), "has a NaN side")
		}
		if _, _, err := e.Eval(metrics, nil); err != nil && !arithmetic(err) {
			t.Fatalf("Eval without champion: %v", err)
		}
		if _, _, err := e.Eval(metrics, metrics); err != nil && !arithmetic(err) {
			t.Fatalf("Eval with champion: %v", err)
		}
	})
}
