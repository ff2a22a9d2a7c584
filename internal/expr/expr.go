// Package expr implements the small expression language of Kiln's `when`
// conditions, such as
//
//	params.deploy && steps.evaluate.evaluation.metrics.auc >= 0.9
//	params.env == 'prod' || !(steps.check.approval.approved)
//	steps.ingest.dataset.rows / 1000 > params.min_thousands
//
// Values are numbers (float64), strings and booleans. Literals are numbers
// (3, 0.5, .5, 1e-3), strings in single or double quotes (with the escapes
// \\, \', \", \n and \t) and true and false. Identifiers are dotted paths
// whose segments match [A-Za-z_][A-Za-z0-9_-]*, e.g. params.deploy or
// steps.my-step.dataset.rows; their values come from a lookup function at
// evaluation time. Because a segment may contain dashes, subtraction after
// an identifier needs a space: "params.n - 1", not "params.n-1".
//
// Operators, from loosest to tightest binding:
//
//	||            boolean or (short-circuit)
//	&&            boolean and (short-circuit)
//	== != < <= > >=  comparisons (not chained)
//	+ -           addition and subtraction of numbers
//	* /           multiplication and division of numbers
//	! -  +        unary not (booleans), negation and plus (numbers)
//
// == and != compare two values of the same type; the ordering comparisons
// compare two numbers or two strings (byte-wise). Mixing types is an error,
// never a silent false.
//
// Parse checks the types that are known without the identifiers' values
// (so "1 && true" is a syntax error); Check repeats that with the
// identifiers' types when the caller knows some of them.
package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyntaxError is a problem found by Parse or Check.
type SyntaxError struct {
	// Pos is the 1-based column (in characters) of the problem in the
	// expression; for a multi-line expression it counts from its start.
	Pos int
	// Msg describes the problem.
	Msg string
}

// Error implements error.
func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Pos, e.Msg) }

// EvalError is a problem found while evaluating an expression: an unknown
// identifier, a value of the wrong type or a division by zero.
type EvalError struct {
	// Pos is the 1-based column (in characters) of the offending part.
	Pos int
	// Msg describes the problem.
	Msg string
}

// Error implements error.
func (e *EvalError) Error() string { return fmt.Sprintf("column %d: %s", e.Pos, e.Msg) }

// Type is the static type of an expression or identifier.
type Type int

// The types. Unknown stands for a value only known at evaluation time.
const (
	Unknown Type = iota
	Number
	String
	Bool
)

// String names the type as messages do.
func (t Type) String() string {
	switch t {
	case Number:
		return "number"
	case String:
		return "string"
	case Bool:
		return "bool"
	}
	return "unknown"
}

// Ident is one identifier occurrence in an expression.
type Ident struct {
	// Path is the identifier as written, e.g. "params.deploy".
	Path string
	// Pos is the 1-based column (in characters) of its first character.
	Pos int
}

// Expr is a parsed expression. It is immutable and safe for concurrent use.
type Expr struct {
	src    string
	root   *node
	idents []Ident
	typ    Type
}

// maxDepth bounds how deeply operators and parentheses may nest.
const maxDepth = 100

// Parse parses src. Errors are *SyntaxError.
func Parse(src string) (*Expr, error) {
	p := &parser{src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if p.peek().kind == tokEOF {
		return nil, p.errAt(len(src), "empty expression")
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		if t.kind == tokRParen {
			return nil, p.errAt(t.pos, `unmatched ")"`)
		}
		return nil, p.errAt(t.pos, "unexpected %s after a complete expression; join conditions with && or ||", t.describe())
	}
	e := &Expr{src: src, root: root}
	collectIdents(root, &e.idents)
	// Identifiers come in source order: count characters incrementally.
	off, col := 0, 1
	for i := range e.idents {
		start := e.idents[i].Pos // a byte offset until now
		col += utf8.RuneCountInString(src[off:start])
		off = start
		e.idents[i].Pos = col
	}
	typ, err := e.Check(nil)
	if err != nil {
		return nil, err
	}
	e.typ = typ
	return e, nil
}

// String returns the expression's source text.
func (e *Expr) String() string { return e.src }

// Idents returns every identifier occurrence, in source order.
func (e *Expr) Idents() []Ident { return append([]Ident(nil), e.idents...) }

// Type is the expression's static type when no identifier's type is known:
// Bool for "a > 1", Number for "a + 1", Unknown for "a".
func (e *Expr) Type() Type { return e.typ }

// Check type-checks the expression with the identifiers' types given by
// typeOf (nil, or Unknown for a path, means unknown) and returns the
// expression's type. Errors are *SyntaxError.
func (e *Expr) Check(typeOf func(path string) Type) (Type, error) {
	return check(e.src, e.root, typeOf)
}

// Eval evaluates the expression. lookup returns an identifier's value:
// float64, float32, any Go integer type (converted to float64),
// json.Number, string or bool; false means the identifier is unknown.
// The result is a float64, a string or a bool. Errors are *EvalError.
func (e *Expr) Eval(lookup func(path string) (any, bool)) (any, error) {
	v, err := (&evaluator{src: e.src, lookup: lookup}).eval(e.root)
	if err != nil {
		return nil, err
	}
	return v.any(), nil
}

// EvalBool evaluates the expression, which must yield a bool.
func (e *Expr) EvalBool(lookup func(path string) (any, bool)) (bool, error) {
	ev := &evaluator{src: e.src, lookup: lookup}
	v, err := ev.eval(e.root)
	if err != nil {
		return false, err
	}
	if v.t != Bool {
		return false, &EvalError{Pos: column(e.src, e.root.start), Msg: fmt.Sprintf("the condition is %s, not true or false", ev.describe(e.root, v))}
	}
	return v.b, nil
}

type nodeKind int

const (
	nodeLiteral nodeKind = iota
	nodeIdent
	nodeUnary
	nodeBinary
)

type node struct {
	kind nodeKind
	op   string // operator (unary and binary nodes)
	val  value  // literal value
	path string // identifier
	x, y *node
	// start and end are byte offsets of the node's text, without
	// enclosing parentheses; ostart and oend include them; opPos is the
	// operator's offset.
	start, end, ostart, oend, opPos int
}

var comparisons = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

// collectIdents appends n's identifiers in source order, with their byte
// offsets as Pos.
func collectIdents(n *node, out *[]Ident) {
	switch n.kind {
	case nodeIdent:
		*out = append(*out, Ident{Path: n.path, Pos: n.start})
	case nodeUnary:
		collectIdents(n.x, out)
	case nodeBinary:
		collectIdents(n.x, out)
		collectIdents(n.y, out)
	}
}

// column converts a byte offset of s to a 1-based column in characters.
func column(s string, off int) int {
	off = min(max(off, 0), len(s))
	return utf8.RuneCountInString(s[:off]) + 1
}

// check infers n's type, reporting operands whose known types do not fit.
func check(src string, n *node, typeOf func(string) Type) (Type, error) {
	errAt := func(off int, format string, args ...any) error {
		return &SyntaxError{Pos: column(src, off), Msg: fmt.Sprintf(format, args...)}
	}
	switch n.kind {
	case nodeLiteral:
		return n.val.t, nil
	case nodeIdent:
		if typeOf == nil {
			return Unknown, nil
		}
		return typeOf(n.path), nil
	case nodeUnary:
		t, err := check(src, n.x, typeOf)
		if err != nil {
			return Unknown, err
		}
		want := Number
		if n.op == "!" {
			want = Bool
		}
		if t != Unknown && t != want {
			return Unknown, errAt(n.x.start, "operator %q needs a %s operand, found %s %s", n.op, want, t, quoteText(src, n.x))
		}
		return want, nil
	}
	tx, err := check(src, n.x, typeOf)
	if err != nil {
		return Unknown, err
	}
	ty, err := check(src, n.y, typeOf)
	if err != nil {
		return Unknown, err
	}
	switch n.op {
	case "&&", "||":
		for _, o := range []struct {
			t Type
			n *node
		}{{tx, n.x}, {ty, n.y}} {
			if o.t != Unknown && o.t != Bool {
				return Unknown, errAt(o.n.start, "operator %q needs bool operands, found %s %s", n.op, o.t, quoteText(src, o.n))
			}
		}
		return Bool, nil
	case "==", "!=":
		if tx != Unknown && ty != Unknown && tx != ty {
			return Unknown, errAt(n.opPos, "operator %q needs operands of the same type, found %s and %s", n.op, tx, ty)
		}
		return Bool, nil
	case "<", "<=", ">", ">=":
		for _, o := range []struct {
			t Type
			n *node
		}{{tx, n.x}, {ty, n.y}} {
			if o.t == Bool {
				return Unknown, errAt(o.n.start, "operator %q needs two numbers or two strings, found bool %s", n.op, quoteText(src, o.n))
			}
		}
		if tx != Unknown && ty != Unknown && tx != ty {
			return Unknown, errAt(n.opPos, "operator %q needs two numbers or two strings, found %s and %s", n.op, tx, ty)
		}
		return Bool, nil
	}
	// + - * /
	for _, o := range []struct {
		t Type
		n *node
	}{{tx, n.x}, {ty, n.y}} {
		if o.t != Unknown && o.t != Number {
			return Unknown, errAt(o.n.start, "operator %q needs number operands, found %s %s", n.op, o.t, quoteText(src, o.n))
		}
	}
	return Number, nil
}

// quoteText quotes n's source text for messages.
func quoteText(src string, n *node) string { return strconv.Quote(src[n.start:n.end]) }

// value is a runtime value.
type value struct {
	t Type
	f float64
	s string
	b bool
}

func (v value) any() any {
	switch v.t {
	case Number:
		return v.f
	case String:
		return v.s
	}
	return v.b
}

func (v value) String() string {
	switch v.t {
	case Number:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case String:
		return strconv.Quote(v.s)
	}
	return strconv.FormatBool(v.b)
}

type evaluator struct {
	src    string
	lookup func(string) (any, bool)
}

func (ev *evaluator) errAt(off int, format string, args ...any) error {
	return &EvalError{Pos: column(ev.src, off), Msg: fmt.Sprintf(format, args...)}
}

// describe names v's type, and for an identifier or a longer expression
// also its text and value: `number steps.a.b (= 3)`.
func (ev *evaluator) describe(n *node, v value) string {
	if n.kind == nodeLiteral {
		return fmt.Sprintf("%s %s", v.t, ev.src[n.start:n.end])
	}
	return fmt.Sprintf("%s %s (= %s)", v.t, ev.src[n.start:n.end], v)
}

func (ev *evaluator) eval(n *node) (value, error) {
	switch n.kind {
	case nodeLiteral:
		return n.val, nil
	case nodeIdent:
		return ev.ident(n)
	case nodeUnary:
		x, err := ev.eval(n.x)
		if err != nil {
			return value{}, err
		}
		switch {
		case n.op == "!" && x.t == Bool:
			return value{t: Bool, b: !x.b}, nil
		case n.op == "-" && x.t == Number:
			return value{t: Number, f: -x.f}, nil
		case n.op == "+" && x.t == Number:
			return x, nil
		}
		want := Number
		if n.op == "!" {
			want = Bool
		}
		return value{}, ev.errAt(n.x.start, "operator %q needs a %s operand, found %s", n.op, want, ev.describe(n.x, x))
	}
	x, err := ev.eval(n.x)
	if err != nil {
		return value{}, err
	}
	if n.op == "&&" || n.op == "||" {
		if x.t != Bool {
			return value{}, ev.errAt(n.x.start, "operator %q needs bool operands, found %s", n.op, ev.describe(n.x, x))
		}
		if x.b == (n.op == "||") {
			return x, nil
		}
		y, err := ev.eval(n.y)
		if err != nil {
			return value{}, err
		}
		if y.t != Bool {
			return value{}, ev.errAt(n.y.start, "operator %q needs bool operands, found %s", n.op, ev.describe(n.y, y))
		}
		return y, nil
	}
	y, err := ev.eval(n.y)
	if err != nil {
		return value{}, err
	}
	switch n.op {
	case "==", "!=":
		if x.t != y.t {
			return value{}, ev.errAt(n.opPos, "operator %q needs operands of the same type, found %s and %s", n.op, ev.describe(n.x, x), ev.describe(n.y, y))
		}
		eq := x == y
		if x.t == Number {
			eq = x.f == y.f // NaN != NaN; -0 == 0
		}
		return value{t: Bool, b: eq == (n.op == "==")}, nil
	case "<", "<=", ">", ">=":
		var c int
		switch {
		case x.t == Number && y.t == Number:
			if math.IsNaN(x.f) || math.IsNaN(y.f) {
				return value{t: Bool}, nil
			}
			c = cmp(x.f, y.f)
		case x.t == String && y.t == String:
			c = strings.Compare(x.s, y.s)
		default:
			return value{}, ev.errAt(n.opPos, "operator %q needs two numbers or two strings, found %s and %s", n.op, ev.describe(n.x, x), ev.describe(n.y, y))
		}
		var b bool
		switch n.op {
		case "<":
			b = c < 0
		case "<=":
			b = c <= 0
		case ">":
			b = c > 0
		default:
			b = c >= 0
		}
		return value{t: Bool, b: b}, nil
	}
	for _, o := range []struct {
		n *node
		v value
	}{{n.x, x}, {n.y, y}} {
		if o.v.t != Number {
			return value{}, ev.errAt(o.n.start, "operator %q needs number operands, found %s", n.op, ev.describe(o.n, o.v))
		}
	}
	switch n.op {
	case "+":
		return value{t: Number, f: x.f + y.f}, nil
	case "-":
		return value{t: Number, f: x.f - y.f}, nil
	case "*":
		return value{t: Number, f: x.f * y.f}, nil
	}
	if y.f == 0 {
		return value{}, ev.errAt(n.opPos, "division by zero: %s is 0", ev.describe(n.y, y))
	}
	return value{t: Number, f: x.f / y.f}, nil
}

func cmp(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ident looks an identifier up and converts its value.
func (ev *evaluator) ident(n *node) (value, error) {
	if ev.lookup == nil {
		return value{}, ev.errAt(n.start, "unknown identifier %q", n.path)
	}
	raw, ok := ev.lookup(n.path)
	if !ok {
		return value{}, ev.errAt(n.start, "unknown identifier %q", n.path)
	}
	v, err := convert(raw)
	if err != nil {
		return value{}, ev.errAt(n.start, "%s %v", n.path, err)
	}
	return v, nil
}

// convert turns a looked-up Go value into a value.
func convert(raw any) (value, error) {
	switch x := raw.(type) {
	case nil:
		return value{}, errors.New("is null; a condition reads numbers, strings and booleans")
	case bool:
		return value{t: Bool, b: x}, nil
	case string:
		return value{t: String, s: x}, nil
	case float64:
		return value{t: Number, f: x}, nil
	case float32:
		return value{t: Number, f: float64(x)}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return value{}, fmt.Errorf("is the malformed number %q", string(x))
		}
		return value{t: Number, f: f}, nil
	}
	rv := reflect.ValueOf(raw)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return value{t: Number, f: float64(rv.Int())}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return value{t: Number, f: float64(rv.Uint())}, nil
	case reflect.Float32, reflect.Float64:
		return value{t: Number, f: rv.Float()}, nil
	case reflect.String:
		return value{t: String, s: rv.String()}, nil
	case reflect.Bool:
		return value{t: Bool, b: rv.Bool()}, nil
	case reflect.Map, reflect.Struct:
		return value{}, errors.New("is an object, not a number, string or bool; name one of its fields")
	case reflect.Slice, reflect.Array:
		return value{}, errors.New("is a list, not a number, string or bool")
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return value{}, errors.New("is null; a condition reads numbers, strings and booleans")
		}
		return convert(rv.Elem().Interface())
	}
	return value{}, fmt.Errorf("has the unsupported type %T; a condition reads numbers, strings and booleans", raw)
}
