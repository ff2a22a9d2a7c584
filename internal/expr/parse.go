package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokNumber
	tokString
	tokBool
	tokIdent
	tokOp
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string // source text
	pos  int    // byte offset of the first character
	end  int    // byte offset after the last character
	val  value  // literal value
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokNumber:
		return "number " + t.text
	case tokString:
		return "string " + t.text
	case tokBool:
		return t.text
	case tokIdent:
		return "identifier " + strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

func (p *parser) errAt(off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: column(p.src, off), Msg: fmt.Sprintf(format, args...)}
}

func isLetter(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// isSegmentChar reports whether c may continue an identifier segment.
func isSegmentChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '-' }

// operators, longest first so that ">=" wins over ">".
var operators = []string{">=", "<=", "==", "!=", "&&", "||", ">", "<", "!", "+", "-", "*", "/"}

// lex splits the source into tokens.
func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
			j, err := p.number(i)
			if err != nil {
				return err
			}
			i = j
		case c == '\'' || c == '"':
			j, err := p.str(i)
			if err != nil {
				return err
			}
			i = j
		case isLetter(c):
			j, err := p.ident(i)
			if err != nil {
				return err
			}
			i = j
		case c == '(':
			p.toks = append(p.toks, token{kind: tokLParen, text: "(", pos: i, end: i + 1})
			i++
		case c == ')':
			p.toks = append(p.toks, token{kind: tokRParen, text: ")", pos: i, end: i + 1})
			i++
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(s[i:])
				msg := fmt.Sprintf("unexpected character %q", r)
				switch {
				case c == '&':
					msg += `; did you mean "&&"?`
				case c == '|':
					msg += `; did you mean "||"?`
				case c == '=':
					msg += `; did you mean "=="?`
				case strings.HasPrefix(s[i:], "${"):
					msg += `; write identifiers without "${" and "}", e.g. params.deploy`
				}
				return p.errAt(i, "%s", msg)
			}
			p.toks = append(p.toks, token{kind: tokOp, text: op, pos: i, end: i + len(op)})
			i += len(op)
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s), end: len(s)})
	return nil
}

// number lexes the number starting at i and returns the offset after it.
func (p *parser) number(i int) (int, error) {
	s := p.src
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k >= len(s) || !isDigit(s[k]) {
			return 0, p.errAt(i, "malformed number %q: the exponent needs digits", s[i:k])
		}
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		j = k
	}
	if j < len(s) && (isLetter(s[j]) || s[j] == '.' || isDigit(s[j])) {
		k := j
		for k < len(s) && (isSegmentChar(s[k]) && s[k] != '-' || s[k] == '.') {
			k++
		}
		return 0, p.errAt(i, "malformed number %q", s[i:k])
	}
	v, err := strconv.ParseFloat(s[i:j], 64)
	if err != nil {
		return 0, p.errAt(i, "number %q is out of range", s[i:j])
	}
	p.toks = append(p.toks, token{kind: tokNumber, text: s[i:j], pos: i, end: j, val: value{t: Number, f: v}})
	return j, nil
}

// str lexes the quoted string starting at i.
func (p *parser) str(i int) (int, error) {
	s := p.src
	quote := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); {
		c := s[j]
		switch c {
		case quote:
			p.toks = append(p.toks, token{kind: tokString, text: s[i : j+1], pos: i, end: j + 1, val: value{t: String, s: b.String()}})
			return j + 1, nil
		case '\\':
			if j+1 >= len(s) {
				return 0, p.errAt(i, "unterminated string; close it with %c", quote)
			}
			switch e := s[j+1]; e {
			case '\\', '\'', '"':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				r, _ := utf8.DecodeRuneInString(s[j+1:])
				return 0, p.errAt(j, `unknown escape "\%c" in string; the escapes are \\, \', \", \n and \t`, r)
			}
			j += 2
		default:
			b.WriteByte(c)
			j++
		}
	}
	return 0, p.errAt(i, "unterminated string; close it with %c", quote)
}

// ident lexes the identifier (or keyword) starting at i.
func (p *parser) ident(i int) (int, error) {
	s := p.src
	j := i
	for {
		for j < len(s) && isSegmentChar(s[j]) {
			j++
		}
		if j >= len(s) || s[j] != '.' {
			break
		}
		if j+1 >= len(s) || !isLetter(s[j+1]) {
			k := j + 1
			for k < len(s) && (isSegmentChar(s[k]) || s[k] == '.') {
				k++
			}
			msg := fmt.Sprintf("malformed identifier %q: each part after a dot must start with a letter or _", s[i:k])
			if strings.Contains(s[i:k], "-") {
				msg += `; to subtract, put spaces around "-"`
			}
			return 0, p.errAt(i, "%s", msg)
		}
		j++
	}
	name := s[i:j]
	switch name {
	case "true", "false":
		p.toks = append(p.toks, token{kind: tokBool, text: name, pos: i, end: j, val: value{t: Bool, b: name == "true"}})
		return j, nil
	case "and", "or", "not":
		op := map[string]string{"and": "&&", "or": "||", "not": "!"}[name]
		return 0, p.errAt(i, "unexpected %q; use %q", name, op)
	}
	p.toks = append(p.toks, token{kind: tokIdent, text: name, pos: i, end: j})
	return j, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(ops ...string) bool {
	t := p.peek()
	if t.kind != tokOp {
		return false
	}
	for _, o := range ops {
		if t.text == o {
			return true
		}
	}
	return false
}

// enter bounds the nesting depth, so that deeply nested input cannot
// exhaust the stack.
func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(p.peek().pos, "expression nested too deeply (more than %d levels)", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// spanned sets a new node's outer span to its span.
func spanned(n *node) *node {
	n.ostart, n.oend = n.start, n.end
	return n
}

func binary(op string, opPos int, x, y *node) *node {
	return spanned(&node{kind: nodeBinary, op: op, opPos: opPos, x: x, y: y, start: x.ostart, end: y.oend})
}

func (p *parser) parseOr() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	x, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isOp("||") {
		t := p.next()
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		x = binary(t.text, t.pos, x, y)
	}
	return x, nil
}

func (p *parser) parseAnd() (*node, error) {
	x, err := p.parseComparison()
	if err != nil {
		return nil, err
	}
	for p.isOp("&&") {
		t := p.next()
		y, err := p.parseComparison()
		if err != nil {
			return nil, err
		}
		x = binary(t.text, t.pos, x, y)
	}
	return x, nil
}

func (p *parser) parseComparison() (*node, error) {
	x, err := p.parseSum()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind != tokOp || !comparisons[t.text] {
		return x, nil
	}
	p.next()
	y, err := p.parseSum()
	if err != nil {
		return nil, err
	}
	if u := p.peek(); u.kind == tokOp && comparisons[u.text] {
		return nil, p.errAt(u.pos, "comparisons cannot be chained; write %q && ... instead", p.src[x.ostart:y.oend])
	}
	return binary(t.text, t.pos, x, y), nil
}

func (p *parser) parseSum() (*node, error) {
	x, err := p.parseProduct()
	if err != nil {
		return nil, err
	}
	for p.isOp("+", "-") {
		t := p.next()
		y, err := p.parseProduct()
		if err != nil {
			return nil, err
		}
		x = binary(t.text, t.pos, x, y)
	}
	return x, nil
}

func (p *parser) parseProduct() (*node, error) {
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isOp("*", "/") {
		t := p.next()
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		x = binary(t.text, t.pos, x, y)
	}
	return x, nil
}

func (p *parser) parseUnary() (*node, error) {
	if !p.isOp("!", "-", "+") {
		return p.parsePrimary()
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.next()
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	return spanned(&node{kind: nodeUnary, op: t.text, opPos: t.pos, x: x, start: t.pos, end: x.oend}), nil
}

func (p *parser) parsePrimary() (*node, error) {
	t := p.next()
	switch t.kind {
	case tokNumber, tokString, tokBool:
		return spanned(&node{kind: nodeLiteral, val: t.val, start: t.pos, end: t.end}), nil
	case tokIdent:
		return spanned(&node{kind: nodeIdent, path: t.text, start: t.pos, end: t.end}), nil
	case tokLParen:
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c := p.next()
		if c.kind != tokRParen {
			if c.kind == tokEOF {
				return nil, p.errAt(t.pos, `unclosed "("`)
			}
			return nil, p.errAt(c.pos, `expected ")", found %s`, c.describe())
		}
		// The node keeps its inner span (messages quote the expression
		// without its parentheses) and widens its outer span, which the
		// spans of the operators around it start and end at.
		x.ostart, x.oend = t.pos, c.end
		return x, nil
	case tokEOF:
		return nil, p.errAt(t.pos, `unexpected end of expression; expected a value, an identifier or "("`)
	}
	return nil, p.errAt(t.pos, `unexpected %s; expected a value, an identifier or "("`, t.describe())
}
