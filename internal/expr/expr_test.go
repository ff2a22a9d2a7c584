package expr

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// vars is the lookup used by the evaluation tests.
var vars = map[string]any{
	"params.deploy":                         true,
	"params.dry_run":                        false,
	"params.env":                            "prod",
	"params.n":                              int64(3),
	"params.small":                          int(2),
	"params.u":                              uint8(7),
	"params.f32":                            float32(0.5),
	"params.json":                           json.Number("12.5"),
	"params.nan":                            math.NaN(),
	"params.zero":                           0.0,
	"steps.evaluate.evaluation.metrics.auc": 0.93,
	"steps.my-step.dataset.rows":            int64(1200),
	"steps.gate.approval.approved":          true,
	"steps.gate.approval.by":                "ana",
	"steps.ingest.dataset":                  map[string]any{"rows": 1},
	"steps.ingest.dataset.columns":          []string{"a"},
	"steps.ingest.dataset.source":           nil,
	"steps.x.ptr":                           ptr(4.0),
	"steps.x.nilptr":                        (*float64)(nil),
	"steps.x.named":                         myString("named"),
	"steps.x.chan":                          make(chan int),
}

type myString string

func ptr[T any](v T) *T { return &v }

func lookup(path string) (any, bool) {
	v, ok := vars[path]
	return v, ok
}

func TestEval(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{"true", true},
		{"false", false},
		{"1", 1.0},
		{"1e-3", 0.001},
		{"2.5E+2", 250.0},
		{".5", 0.5},
		{`'a\'b'`, "a'b"},
		{`"a\"b\\c\n\t"`, "a\"b\\c\n\t"},
		{`"single ' inside"`, "single ' inside"},
		{"1 + 2 * 3", 7.0},
		{"(1 + 2) * 3", 9.0},
		{"10 / 4", 2.5},
		{"10 - 4 - 3", 3.0},
		{"8 / 4 / 2", 1.0},
		{"-2 * -3", 6.0},
		{"+2", 2.0},
		{"- -2", 2.0},
		{"!true", false},
		{"!!true", true},
		{"1 < 2", true},
		{"2 <= 2", true},
		{"3 > 4", false},
		{"3 >= 4", false},
		{"1 == 1.0", true},
		{"1 != 1", false},
		{"'a' < 'b'", true},
		{"'b' >= 'a'", true},
		{"'a' == \"a\"", true},
		{"true == false", false},
		{"true != false", true},
		{"true || false && false", true},
		{"(true || false) && false", false},
		{"!true || true", true},
		{"!(1 > 2)", true},
		{"params.deploy", true},
		{"params.deploy && !params.dry_run", true},
		{"params.env == 'prod'", true},
		{"params.n * 2", 6.0},
		{"params.small + params.u", 9.0},
		{"params.f32 == 0.5", true},
		{"params.json > 12", true},
		{"steps.evaluate.evaluation.metrics.auc > 0.9 && params.deploy", true},
		{"steps.my-step.dataset.rows / 1000 > 1", true},
		{"steps.gate.approval.approved && steps.gate.approval.by != 'bob'", true},
		{"steps.x.ptr == 4", true},
		{"steps.x.named == 'named'", true},
		{"params.nan == params.nan", false},
		{"params.nan != params.nan", true},
		{"params.nan < 1 || params.nan >= 1", false},
		// Short-circuit: the right side is not evaluated.
		{"false && steps.missing.x.y", false},
		{"true || steps.missing.x.y", true},
		{"params.dry_run && 1 / params.zero > 0", false},
		// Multi-line expressions (YAML block scalars).
		{"params.deploy\n  && params.n > 2", true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := e.Eval(lookup)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval = %#v, want %#v", got, tt.want)
			}
			if e.String() != tt.src {
				t.Errorf("String() = %q, want the source", e.String())
			}
		})
	}
}

func TestEvalBool(t *testing.T) {
	tests := []struct {
		src     string
		want    bool
		wantErr string
	}{
		{"params.deploy", true, ""},
		{"params.n > 5", false, ""},
		{"params.n", false, "column 1: the condition is number params.n (= 3), not true or false"},
		{"params.env", false, `column 1: the condition is string params.env (= "prod"), not true or false`},
		{"steps.nope.x.y", false, `column 1: unknown identifier "steps.nope.x.y"`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.EvalBool(lookup)
			if tt.wantErr != "" {
				var ee *EvalError
				if !errors.As(err, &ee) || err.Error() != tt.wantErr {
					t.Fatalf("EvalBool error = %v, want *EvalError %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("EvalBool = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"steps.evaluate.evaluation.metrics.f1 > 0.5", `column 1: unknown identifier "steps.evaluate.evaluation.metrics.f1"`},
		{"params.deploy && params.missing", `column 18: unknown identifier "params.missing"`},
		{"params.n == 'x'", `column 10: operator "==" needs operands of the same type, found number params.n (= 3) and string 'x'`},
		{"params.env != 3", `column 12: operator "!=" needs operands of the same type, found string params.env (= "prod") and number 3`},
		{"params.env < params.n", `column 12: operator "<" needs two numbers or two strings, found string params.env (= "prod") and number params.n (= 3)`},
		{"params.deploy > params.dry_run", `column 15: operator ">" needs two numbers or two strings, found bool params.deploy (= true) and bool params.dry_run (= false)`},
		{"params.n && true", `column 1: operator "&&" needs bool operands, found number params.n (= 3)`},
		{"false || true && params.env", `column 18: operator "&&" needs bool operands, found string params.env (= "prod")`},
		{"params.deploy || params.env", ""}, // short-circuit: true || anything
		{"params.dry_run || params.env", `column 19: operator "||" needs bool operands, found string params.env (= "prod")`},
		{"!params.n", `column 2: operator "!" needs a bool operand, found number params.n (= 3)`},
		{"-params.env == 1", `column 2: operator "-" needs a number operand, found string params.env (= "prod")`},
		{"params.env + params.n > 0", `column 1: operator "+" needs number operands, found string params.env (= "prod")`},
		{"params.n * params.deploy > 1", `column 12: operator "*" needs number operands, found bool params.deploy (= true)`},
		{"params.n / params.zero > 1", `column 10: division by zero: number params.zero (= 0) is 0`},
		{"params.n / (params.n - 3) > 1", `column 10: division by zero: number params.n - 3 (= 0) is 0`},
		{"steps.ingest.dataset.source == 'x'", "column 1: steps.ingest.dataset.source is null; a condition reads numbers, strings and booleans"},
		{"steps.ingest.dataset == 'x'", "column 1: steps.ingest.dataset is an object, not a number, string or bool; name one of its fields"},
		{"steps.ingest.dataset.columns == 'x'", "column 1: steps.ingest.dataset.columns is a list, not a number, string or bool"},
		{"steps.x.nilptr == 1", "column 1: steps.x.nilptr is null; a condition reads numbers, strings and booleans"},
		{"steps.x.chan == 1", "column 1: steps.x.chan has the unsupported type chan int; a condition reads numbers, strings and booleans"},
		{"'é' == 'é' && params.nope", `column 15: unknown identifier "params.nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, err = e.Eval(lookup)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Eval error = %v, want none", err)
				}
				return
			}
			var ee *EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("Eval error = %v (%T), want *EvalError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("Eval error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
	// A nil lookup knows no identifier.
	e, _ := Parse("params.x")
	if _, err := e.Eval(nil); err == nil || !strings.Contains(err.Error(), `unknown identifier "params.x"`) {
		t.Errorf("Eval(nil) error = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"", "column 1: empty expression"},
		{"   ", "column 4: empty expression"},
		{"a &", `column 3: unexpected character '&'; did you mean "&&"?`},
		{"a | b", `column 3: unexpected character '|'; did you mean "||"?`},
		{"a = 1", `column 3: unexpected character '='; did you mean "=="?`},
		{"${params.x}", `column 1: unexpected character '$'; write identifiers without "${" and "}", e.g. params.deploy`},
		{"a # b", `column 3: unexpected character '#'`},
		{"a >", `column 4: unexpected end of expression; expected a value, an identifier or "("`},
		{"(a > 1", `column 1: unclosed "("`},
		{"(a > 1 b", `column 8: expected ")", found identifier "b"`},
		{"a > 1)", `column 6: unmatched ")"`},
		{"'it''s'", `column 5: unexpected string 's' after a complete expression; join conditions with && or ||`},
		{"a b", `column 3: unexpected identifier "b" after a complete expression; join conditions with && or ||`},
		{"1 < a < 3", `column 7: comparisons cannot be chained; write "1 < a" && ... instead`},
		{"a == b != c", `column 8: comparisons cannot be chained; write "a == b" && ... instead`},
		{"a and b", `column 3: unexpected "and"; use "&&"`},
		{"not a", `column 1: unexpected "not"; use "!"`},
		{"a.", `column 1: malformed identifier "a.": each part after a dot must start with a letter or _`},
		{"steps.x.1", `column 1: malformed identifier "steps.x.1": each part after a dot must start with a letter or _`},
		{"params.n-0.5 > 1", `column 1: malformed identifier "params.n-0.5": each part after a dot must start with a letter or _; to subtract, put spaces around "-"`},
		{"1e", `column 1: malformed number "1e": the exponent needs digits`},
		{"1e+", `column 1: malformed number "1e+": the exponent needs digits`},
		{"12abc", `column 1: malformed number "12abc"`},
		{"1.2.3", `column 1: malformed number "1.2.3"`},
		{"1e999 > 0", `column 1: number "1e999" is out of range`},
		{"'abc", `column 1: unterminated string; close it with '`},
		{`"abc\`, `column 1: unterminated string; close it with "`},
		{`'a\qb'`, `column 3: unknown escape "\q" in string; the escapes are \\, \', \", \n and \t`},
		{"'é' == 'é' &", `column 12: unexpected character '&'; did you mean "&&"?`},
		{"* 2", `column 1: unexpected "*"; expected a value, an identifier or "("`},
		{"()", `column 2: unexpected ")"; expected a value, an identifier or "("`},
		// Static type errors.
		{"1 && true", `column 1: operator "&&" needs bool operands, found number "1"`},
		{"(1 + 2) * 3 && true", `column 1: operator "&&" needs bool operands, found number "(1 + 2) * 3"`},
		{"true || -(1 + 2)", `column 9: operator "||" needs bool operands, found number "-(1 + 2)"`},
		{"true || 'x'", `column 9: operator "||" needs bool operands, found string "'x'"`},
		{"!1", `column 2: operator "!" needs a bool operand, found number "1"`},
		{"-true", `column 2: operator "-" needs a number operand, found bool "true"`},
		{"'a' + 1 > 0", `column 1: operator "+" needs number operands, found string "'a'"`},
		{"a * (b > 1)", `column 6: operator "*" needs number operands, found bool "b > 1"`},
		{"1 == 'x'", `column 3: operator "==" needs operands of the same type, found number and string`},
		{"true < false", `column 1: operator "<" needs two numbers or two strings, found bool "true"`},
		{"1 < 'a'", `column 3: operator "<" needs two numbers or two strings, found number and string`},
		{"!a > 1", `column 1: operator ">" needs two numbers or two strings, found bool "!a"`},
		{"(a > 1) + 2 > 0", `column 2: operator "+" needs number operands, found bool "a > 1"`},
		{strings.Repeat("(", 101) + "a" + strings.Repeat(")", 101), "column 101: expression nested too deeply (more than 100 levels)"},
		{strings.Repeat("!", 101) + "a", "column 100: expression nested too deeply (more than 100 levels)"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, %v; want a *SyntaxError", tt.src, e, err)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
	// Nesting up to the limit is fine.
	if _, err := Parse(strings.Repeat("(", 99) + "a" + strings.Repeat(")", 99)); err != nil {
		t.Errorf("99 levels: %v", err)
	}
}

func TestIdents(t *testing.T) {
	e, err := Parse("params.deploy && steps.my-step.dataset.rows > 1 || 'é' == params._x9 && params.deploy")
	if err != nil {
		t.Fatal(err)
	}
	want := []Ident{
		{Path: "params.deploy", Pos: 1},
		{Path: "steps.my-step.dataset.rows", Pos: 18},
		{Path: "params._x9", Pos: 59},
		{Path: "params.deploy", Pos: 73},
	}
	if got := e.Idents(); !reflect.DeepEqual(got, want) {
		t.Errorf("Idents() = %+v, want %+v", got, want)
	}
	// The result is a copy.
	e.Idents()[0].Path = "changed"
	if e.Idents()[0].Path != "params.deploy" {
		t.Errorf("Idents() shares its slice")
	}
	lit, _ := Parse("1 < 2")
	if got := lit.Idents(); len(got) != 0 {
		t.Errorf("Idents() of a literal expression = %v", got)
	}
	// Dashes belong to identifiers: subtraction after one needs a space.
	sub, _ := Parse("params.n-1 > 0")
	if got := sub.Idents(); len(got) != 1 || got[0].Path != "params.n-1" {
		t.Errorf("Idents() of params.n-1 = %v", got)
	}
}

func TestCheck(t *testing.T) {
	types := map[string]Type{"params.deploy": Bool, "params.n": Number, "params.env": String}
	typeOf := func(path string) Type { return types[path] }
	tests := []struct {
		src      string
		static   Type
		want     Type
		checkErr string
	}{
		{"params.deploy", Unknown, Bool, ""},
		{"params.n + 1", Number, Number, ""},
		{"params.env", Unknown, String, ""},
		{"params.n > 1 && params.deploy", Bool, Bool, ""},
		{"steps.a.b.c", Unknown, Unknown, ""},
		{"steps.a.b.c == params.n", Bool, Bool, ""},
		{"params.deploy == 'yes'", Bool, Unknown, `column 15: operator "==" needs operands of the same type, found bool and string`},
		{"params.env > 3", Bool, Unknown, `column 12: operator ">" needs two numbers or two strings, found string and number`},
		{"params.n && params.deploy", Bool, Unknown, `column 1: operator "&&" needs bool operands, found number "params.n"`},
		{"!params.env", Bool, Unknown, `column 2: operator "!" needs a bool operand, found string "params.env"`},
		{"params.deploy * 2 > 1", Bool, Unknown, `column 1: operator "*" needs number operands, found bool "params.deploy"`},
		{"params.deploy < params.n", Bool, Unknown, `column 1: operator "<" needs two numbers or two strings, found bool "params.deploy"`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if e.Type() != tt.static {
				t.Errorf("Type() = %v, want %v", e.Type(), tt.static)
			}
			got, err := e.Check(typeOf)
			if tt.checkErr != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || err.Error() != tt.checkErr {
					t.Fatalf("Check error = %v, want *SyntaxError %q", err, tt.checkErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Check = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{Unknown: "unknown", Number: "number", String: "string", Bool: "bool"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", typ, got, want)
		}
	}
}
