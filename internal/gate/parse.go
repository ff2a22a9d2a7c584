package gate

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
	tokIdent
	tokOp
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset of the first character
	end  int // byte offset after the last character
	num  float64
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokNumber:
		return "number " + t.text
	case tokIdent:
		return "identifier " + strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

type nodeKind int

const (
	nodeNumber nodeKind = iota
	nodeIdent
	nodeUnary  // "!" (boolean), "-" or "+" (numeric)
	nodeBinary // && || (boolean), comparisons (boolean), + - * / (numeric)
)

type node struct {
	kind     nodeKind
	op       string
	num      float64
	name     string // identifier as written
	metric   string // identifier without the champion prefix
	champion bool
	x, y     *node
	start    int // byte offsets into the source, without enclosing parentheses
	end      int
	ostart   int // span including enclosing parentheses
	oend     int
	isBool   bool
}

// spanned sets n's outer span to its inner span and returns n.
func spanned(n *node) *node {
	n.ostart, n.oend = n.start, n.end
	return n
}

func (n *node) usesChampion() bool {
	if n == nil {
		return false
	}
	if n.kind == nodeIdent {
		return n.champion
	}
	return n.x.usesChampion() || n.y.usesChampion()
}

var comparisons = map[string]bool{">=": true, "<=": true, ">": true, "<": true, "==": true, "!=": true}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) errAt(off int, msg string) *SyntaxError {
	return &SyntaxError{Pos: column(p.src, off), Msg: msg}
}

func (p *parser) text(n *node) string { return strings.TrimSpace(p.src[n.start:n.end]) }

func isLetter(c byte) bool { return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// lex splits the source into tokens.
func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
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
					return p.errAt(i, fmt.Sprintf("malformed number %q: the exponent needs digits", s[i:k]))
				}
				for k < len(s) && isDigit(s[k]) {
					k++
				}
				j = k
			}
			if j < len(s) && (isLetter(s[j]) || s[j] == '.') {
				k := j
				for k < len(s) && (isLetter(s[k]) || isDigit(s[k]) || s[k] == '.') {
					k++
				}
				return p.errAt(i, fmt.Sprintf("malformed number %q", s[i:k]))
			}
			v, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return p.errAt(i, fmt.Sprintf("number %q is out of range", s[i:j]))
			}
			p.toks = append(p.toks, token{kind: tokNumber, text: s[i:j], pos: i, end: j, num: v})
			i = j
		case isLetter(c):
			j := i
			for j < len(s) && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '.') {
				j++
			}
			name := s[i:j]
			if strings.Contains(name, ".") {
				metric, ok := strings.CutPrefix(name, ChampionPrefix)
				if !ok {
					prefix, _, _ := strings.Cut(name, ".")
					return p.errAt(i, fmt.Sprintf("unknown prefix %q in %q; only %s<metric> may be qualified", prefix+".", name, ChampionPrefix))
				}
				if metric == "" || strings.Contains(metric, ".") || !isLetter(metric[0]) {
					return p.errAt(i, fmt.Sprintf("malformed identifier %q; write %s<metric>, e.g. champion.auc", name, ChampionPrefix))
				}
			}
			switch name {
			case "and", "or", "not":
				op := map[string]string{"and": "&&", "or": "||", "not": "!"}[name]
				return p.errAt(i, fmt.Sprintf("unexpected %q; use %q", name, op))
			}
			p.toks = append(p.toks, token{kind: tokIdent, text: name, pos: i, end: j})
			i = j
		case c == '(':
			p.toks = append(p.toks, token{kind: tokLParen, text: "(", pos: i, end: i + 1})
			i++
		case c == ')':
			p.toks = append(p.toks, token{kind: tokRParen, text: ")", pos: i, end: i + 1})
			i++
		default:
			op := ""
			for _, o := range []string{">=", "<=", "==", "!=", "&&", "||", ">", "<", "!", "+", "-", "*", "/"} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(s[i:])
				msg := fmt.Sprintf("unexpected character %q", r)
				switch c {
				case '&':
					msg += `; did you mean "&&"?`
				case '|':
					msg += `; did you mean "||"?`
				case '=':
					msg += `; did you mean "=="?`
				}
				return p.errAt(i, msg)
			}
			p.toks = append(p.toks, token{kind: tokOp, text: op, pos: i, end: i + len(op)})
			i += len(op)
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s), end: len(s)})
	return nil
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

// needBool reports an error when n, an operand of op, is not boolean.
func (p *parser) needBool(n *node, op string) error {
	if n.isBool {
		return nil
	}
	return p.errAt(n.start, fmt.Sprintf("operand of %q must be a comparison, found the number expression %q", op, p.text(n)))
}

// needNumber reports an error when n, an operand of op, is not numeric.
func (p *parser) needNumber(n *node, op string) error {
	if !n.isBool {
		return nil
	}
	return p.errAt(n.start, fmt.Sprintf("operand of %q must be a number, found the condition %q", op, p.text(n)))
}

func (p *parser) binary(op string, x, y *node, isBool bool) *node {
	return spanned(&node{kind: nodeBinary, op: op, x: x, y: y, start: x.ostart, end: y.oend, isBool: isBool})
}

func (p *parser) parseOr() (*node, error) {
	x, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isOp("||") {
		p.next()
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if err := p.needBool(x, "||"); err != nil {
			return nil, err
		}
		if err := p.needBool(y, "||"); err != nil {
			return nil, err
		}
		x = p.binary("||", x, y, true)
	}
	return x, nil
}

func (p *parser) parseAnd() (*node, error) {
	x, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isOp("&&") {
		p.next()
		y, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		if err := p.needBool(x, "&&"); err != nil {
			return nil, err
		}
		if err := p.needBool(y, "&&"); err != nil {
			return nil, err
		}
		x = p.binary("&&", x, y, true)
	}
	return x, nil
}

func (p *parser) parseNot() (*node, error) {
	if p.isOp("!") {
		t := p.next()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		if err := p.needBool(x, "!"); err != nil {
			return nil, err
		}
		return spanned(&node{kind: nodeUnary, op: "!", x: x, start: t.pos, end: x.oend, isBool: true}), nil
	}
	return p.parseComparison()
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
	if err := p.needNumber(x, t.text); err != nil {
		return nil, err
	}
	if err := p.needNumber(y, t.text); err != nil {
		return nil, err
	}
	if u := p.peek(); u.kind == tokOp && comparisons[u.text] {
		return nil, p.errAt(u.pos, fmt.Sprintf("comparisons cannot be chained; write %q && ... instead", p.src[x.ostart:y.oend]))
	}
	return p.binary(t.text, x, y, true), nil
}

func (p *parser) parseSum() (*node, error) {
	x, err := p.parseProduct()
	if err != nil {
		return nil, err
	}
	for p.isOp("+", "-") {
		op := p.next().text
		y, err := p.parseProduct()
		if err != nil {
			return nil, err
		}
		if err := p.needNumber(x, op); err != nil {
			return nil, err
		}
		if err := p.needNumber(y, op); err != nil {
			return nil, err
		}
		x = p.binary(op, x, y, false)
	}
	return x, nil
}

func (p *parser) parseProduct() (*node, error) {
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isOp("*", "/") {
		op := p.next().text
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if err := p.needNumber(x, op); err != nil {
			return nil, err
		}
		if err := p.needNumber(y, op); err != nil {
			return nil, err
		}
		x = p.binary(op, x, y, false)
	}
	return x, nil
}

func (p *parser) parseUnary() (*node, error) {
	if p.isOp("-", "+") {
		t := p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if err := p.needNumber(x, t.text); err != nil {
			return nil, err
		}
		return spanned(&node{kind: nodeUnary, op: t.text, x: x, start: t.pos, end: x.oend}), nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (*node, error) {
	t := p.next()
	switch t.kind {
	case tokNumber:
		return spanned(&node{kind: nodeNumber, num: t.num, start: t.pos, end: t.end}), nil
	case tokIdent:
		metric, champion := strings.CutPrefix(t.text, ChampionPrefix)
		return spanned(&node{kind: nodeIdent, name: t.text, metric: metric, champion: champion, start: t.pos, end: t.end}), nil
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
			return nil, p.errAt(c.pos, fmt.Sprintf(`expected ")", found %s`, c.describe()))
		}
		// The parenthesised node keeps its kind and inner span; only its
		// outer span grows to cover the parentheses.
		w := *x
		w.ostart, w.oend = t.pos, c.end
		return &w, nil
	case tokEOF:
		return nil, p.errAt(t.pos, "unexpected end of expression; expected a number, a metric or \"(\"")
	}
	return nil, p.errAt(t.pos, fmt.Sprintf("unexpected %s; expected a number, a metric or \"(\"", t.describe()))
}
