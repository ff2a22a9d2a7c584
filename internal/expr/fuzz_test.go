package expr

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse parses arbitrary text and evaluates what parses. Neither may
// panic; errors must be the documented types with a column inside the
// expression; identifiers must be found where Idents says; a statically
// typed expression must evaluate to its type; and evaluation must be
// deterministic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"params.deploy && steps.evaluate.evaluation.metrics.auc > 0.9",
		"!(params.n >= 1e-3) || params.env == 'prod'",
		`"a\"b" < 'c' && -params.n * (2 + 3) / 4 != .5`,
		"steps.my-step.dataset.rows - 1 > 0 && true != false",
		"a < b < c", "(((a)", "1 && 2", "'unterminated", "a = b", "${params.x}",
	} {
		f.Add(seed)
	}
	values := []any{true, 2.5, "s", int64(0), nil, map[string]any{}}
	lookup := func(path string) (any, bool) {
		if strings.HasPrefix(path, "missing") {
			return nil, false
		}
		return values[len(path)%len(values)], true
	}
	f.Fuzz(func(t *testing.T, src string) {
		width := utf8.RuneCountInString(src) + 1
		e, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Msg == "" || se.Pos < 1 || se.Pos > width {
				t.Fatalf("Parse(%q) error %#v is not a located *SyntaxError", src, err)
			}
			return
		}
		runes := []rune(src)
		for _, id := range e.Idents() {
			if id.Pos < 1 || id.Pos > width || !strings.HasPrefix(string(runes[id.Pos-1:]), id.Path) {
				t.Fatalf("Parse(%q): ident %+v is not at its position", src, id)
			}
		}
		v, err := e.Eval(lookup)
		v2, err2 := e.Eval(lookup)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || !sameValue(v, v2) {
			t.Fatalf("Eval(%q) is not deterministic: %v, %v / %v, %v", src, v, err, v2, err2)
		}
		if err != nil {
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Msg == "" || ee.Pos < 1 || ee.Pos > width {
				t.Fatalf("Eval(%q) error %#v is not a located *EvalError", src, err)
			}
			return
		}
		var got Type
		switch v.(type) {
		case float64:
			got = Number
		case string:
			got = String
		case bool:
			got = Bool
		default:
			t.Fatalf("Eval(%q) = %#v (%T), want a float64, string or bool", src, v, v)
		}
		if e.Type() != Unknown && e.Type() != got {
			t.Fatalf("Eval(%q) = %#v, but its static type is %v", src, v, e.Type())
		}
	})
}

// sameValue compares results, treating NaN as equal to itself.
func sameValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && (fa == fb || fa != fa && fb != fb)
	}
	return a == b
}
