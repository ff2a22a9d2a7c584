package cexport

import (
	"math"
	"strconv"
	"strings"
)

// dbl is the exact C literal of v: a hexadecimal floating constant (C99),
// so no decimal rounding by the compiler is involved, or NAN / INFINITY
// from <math.h>.
func dbl(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NAN"
	case math.IsInf(v, 1):
		return "INFINITY"
	case math.IsInf(v, -1):
		return "(-INFINITY)"
	}
	return strconv.FormatFloat(v, 'x', -1, 64)
}

// flt is the exact C literal of the float v.
func flt(v float32) string {
	switch f := float64(v); {
	case math.IsNaN(f):
		return "NAN"
	case math.IsInf(f, 1):
		return "INFINITY"
	case math.IsInf(f, -1):
		return "(-INFINITY)"
	}
	return strconv.FormatFloat(float64(v), 'x', -1, 32) + "f"
}

// dec is v in decimal, for comments next to dbl literals.
func dec(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// cstr is the C string literal of s: printable ASCII as is except the
// quote, backslash and question mark (trigraphs), everything else as
// octal escapes. s must not contain NUL bytes.
func cstr(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '?':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + c>>3&7)
			b.WriteByte('0' + c&7)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// comment quotes s (a name from the model) for a C comment: Go-quoted
// ASCII, with comment delimiters and trigraphs broken up.
func comment(s string) string {
	q := strconv.QuoteToASCII(s)
	q = strings.ReplaceAll(q, "*/", `*\/`)
	q = strings.ReplaceAll(q, "/*", `/\*`)
	if strings.Contains(q, "??") {
		q = strings.ReplaceAll(q, "?", `\x3f`)
	}
	return q
}
