package dataset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
)

// JSONLOptions configures JSONLToParquet.
type JSONLOptions struct {
	// Types overrides the inferred type of the named columns.
	Types map[string]Type
	// BatchRows is the number of rows per Parquet row group (default 65536).
	BatchRows int
}

// JSONLToParquet converts the JSON Lines file src (one flat JSON object per
// line; optionally gzip-compressed, see openSource) into the Parquet file
// dst and returns its description.
//
// Columns are the objects' keys in order of first appearance; a key missing
// from an object, or null, is a null. Values must be strings, numbers,
// booleans or null: a nested object or array is an error naming the line and
// the key. Blank lines are skipped. A first pass infers each column's type:
// Int64 if every value is an integral number that fits, else Float64 if
// every value is a number, else Bool if every value is a boolean, else
// String (numbers and booleans mixed with strings keep their JSON text); a
// column without values is Float64. opts.Types overrides the inference: an
// overridden column also accepts strings holding a value of its type ("42"
// for int64, "true" for bool, 1 and 0 for bool). Unlike CSV, "" is an empty
// string, not a null. A second pass writes one row group per
// opts.BatchRows rows, holding one batch in memory.
//
// Errors name the file and the 1-based line, as in
// "events.jsonl:17: column age: value "x" is not an int64". The output is
// written atomically and depends only on the data and options (not on the
// compression), so its SHA256 identifies the dataset.
func JSONLToParquet(ctx context.Context, src, dst string, opts JSONLOptions) (Info, error) {
	if opts.BatchRows == 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.BatchRows < 0 {
		return Info{}, fmt.Errorf("converting %s: negative BatchRows %d", src, opts.BatchRows)
	}
	inf, err := inferJSONL(ctx, src, opts)
	if err != nil {
		return Info{}, err
	}
	w, err := CreateParquet(dst, inf.schema, WriterOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("converting %s: %w", src, err)
	}
	if err := convertJSONL(ctx, src, w, inf, opts); err != nil {
		w.Abort()
		return Info{}, err
	}
	info, err := w.Commit()
	if err != nil {
		return Info{}, fmt.Errorf("converting %s: %w", src, err)
	}
	return info, nil
}

// jsonKind is the JSON type of a scalar value.
type jsonKind uint8

const (
	jNull jsonKind = iota
	jString
	jInt
	jFloat
	jBool
)

// jsonField is one key/value pair of a line. raw is the value's text: the
// decoded string for jString, the JSON text otherwise. Both alias the line
// buffer (or a scratch buffer) and are valid until the next line.
type jsonField struct {
	key  []byte
	kind jsonKind
	raw  []byte
	b    bool
}

// jsonlFile reads a JSON Lines source line by line.
type jsonlFile struct {
	src    string
	r      *bufio.Reader
	c      io.Closer
	line   int
	buf    []byte // a line longer than the reader's buffer
	fields []jsonField
	unq    []byte // scratch for unescaped strings
}

func openJSONL(src string) (*jsonlFile, error) {
	rd, c, err := openSource(src)
	if err != nil {
		return nil, err
	}
	return &jsonlFile{src: src, r: bufio.NewReaderSize(rd, sourceBuffer), c: c}, nil
}

// next parses the next non-blank line into j.fields. It returns io.EOF at
// the end of the file.
func (j *jsonlFile) next() error {
	for {
		line, err := j.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			j.buf = append(j.buf[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = j.r.ReadSlice('\n')
				j.buf = append(j.buf, line...)
			}
			line = j.buf
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading %s: %w", j.src, err)
		}
		if len(line) == 0 && err != nil {
			return io.EOF
		}
		j.line++
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return io.EOF
			}
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if perr := j.parse(line); perr != nil {
			return fmt.Errorf("%s:%d: %w", j.src, j.line, perr)
		}
		return nil
	}
}

// parse splits one line holding a flat JSON object into j.fields.
func (j *jsonlFile) parse(line []byte) error {
	j.fields = j.fields[:0]
	j.unq = j.unq[:0]
	p := &jsonScanner{s: line}
	p.ws()
	if !p.eat('{') {
		return fmt.Errorf("expected a JSON object, found %s", p.what())
	}
	p.ws()
	if p.eat('}') {
		return p.end()
	}
	for {
		p.ws()
		if p.peek() != '"' {
			return fmt.Errorf("expected a quoted key at column %d, found %s", p.i+1, p.what())
		}
		key, err := j.str(p)
		if err != nil {
			return err
		}
		for _, f := range j.fields {
			if bytes.Equal(f.key, key) {
				return fmt.Errorf("duplicate key %q", key)
			}
		}
		p.ws()
		if !p.eat(':') {
			return fmt.Errorf("key %q: expected ':' at column %d, found %s", key, p.i+1, p.what())
		}
		p.ws()
		f := jsonField{key: key}
		switch c := p.peek(); {
		case c == '"':
			if f.raw, err = j.str(p); err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			f.kind = jString
		case c == '{' || c == '[':
			return fmt.Errorf("key %q: nested objects and arrays are not supported; flatten the data first", key)
		case c == '-' || (c >= '0' && c <= '9'):
			start, float := p.i, false
			for p.i < len(p.s) {
				c := p.s[p.i]
				if c == '.' || c == 'e' || c == 'E' {
					float = true
				} else if !(c == '-' || c == '+' || (c >= '0' && c <= '9')) {
					break
				}
				p.i++
			}
			f.raw = p.s[start:p.i]
			if _, err := strconv.ParseFloat(string(f.raw), 64); err != nil {
				return fmt.Errorf("key %q: invalid number %s", key, f.raw)
			}
			f.kind = jFloat
			if !float {
				if _, err := strconv.ParseInt(string(f.raw), 10, 64); err == nil {
					f.kind = jInt
				}
			}
		case p.lit("true"):
			f.kind, f.b, f.raw = jBool, true, p.s[p.i-4:p.i]
		case p.lit("false"):
			f.kind, f.b, f.raw = jBool, false, p.s[p.i-5:p.i]
		case p.lit("null"):
			f.kind = jNull
		default:
			return fmt.Errorf("key %q: invalid value at column %d: %s", key, p.i+1, p.what())
		}
		j.fields = append(j.fields, f)
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return p.end()
		}
		return fmt.Errorf("expected ',' or '}' at column %d, found %s", p.i+1, p.what())
	}
}

// str reads a JSON string at p, unescaping it into j.unq when needed.
func (j *jsonlFile) str(p *jsonScanner) ([]byte, error) {
	start := p.i
	p.i++ // the opening quote
	escaped := false
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '\\':
			escaped = true
			p.i += 2
			continue
		case c == '"':
			p.i++
			raw := p.s[start:p.i]
			if !escaped {
				return raw[1 : len(raw)-1], nil
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("invalid string at column %d: %v", start+1, err)
			}
			off := len(j.unq)
			j.unq = append(j.unq, v...)
			return j.unq[off:len(j.unq):len(j.unq)], nil
		case c < 0x20:
			return nil, fmt.Errorf("control character in string at column %d", p.i+1)
		}
		p.i++
	}
	return nil, fmt.Errorf("unterminated string at column %d", start+1)
}

// jsonScanner walks one line.
type jsonScanner struct {
	s []byte
	i int
}

func (p *jsonScanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *jsonScanner) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) lit(word string) bool {
	if bytes.HasPrefix(p.s[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

// what describes the text at p for error messages.
func (p *jsonScanner) what() string {
	if p.i >= len(bytes.TrimRight(p.s, " \t\r\n")) {
		return "the end of the line"
	}
	rest := p.s[p.i:]
	if len(rest) > 20 {
		rest = rest[:20]
	}
	return strconv.Quote(string(rest))
}

// end checks that nothing but white space follows the object.
func (p *jsonScanner) end() error {
	p.ws()
	if p.i < len(p.s) {
		return fmt.Errorf("unexpected text after the object at column %d: %s", p.i+1, p.what())
	}
	return nil
}

// jsonlInference is the result of the first pass.
type jsonlInference struct {
	schema     Schema
	index      map[string]int
	overridden []bool
	rows       int64
}

// inferJSONL is the first pass: columns and their types.
func inferJSONL(ctx context.Context, src string, opts JSONLOptions) (*jsonlInference, error) {
	j, err := openJSONL(src)
	if err != nil {
		return nil, err
	}
	defer j.c.Close()
	type state struct{ str, integer, float, boolean bool }
	var names []string
	var st []state
	index := map[string]int{}
	var rows int64
	for {
		err := j.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rows++
		if rows%ctxCheckRows == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("reading %s: %w", src, err)
			}
		}
		for _, f := range j.fields {
			k, ok := index[string(f.key)]
			if !ok {
				k = len(names)
				index[string(f.key)] = k
				names = append(names, string(f.key))
				st = append(st, state{})
			}
			s := &st[k]
			switch f.kind {
			case jString:
				s.str = true
			case jInt:
				s.integer = true
			case jFloat:
				s.float = true
			case jBool:
				s.boolean = true
			}
		}
	}
	if rows == 0 {
		return nil, fmt.Errorf("%s: no JSON objects", src)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: every object is empty; no columns", src)
	}
	for name, t := range opts.Types {
		if _, ok := index[name]; !ok {
			return nil, fmt.Errorf("%s: type override for unknown column %q", src, name)
		}
		if !t.Valid() {
			return nil, fmt.Errorf("%s: column %s: invalid type override %q", src, name, t)
		}
	}
	inf := &jsonlInference{index: index, rows: rows, overridden: make([]bool, len(names))}
	for k, name := range names {
		s := st[k]
		var t Type
		switch {
		case s.str || (s.boolean && (s.integer || s.float)):
			t = String
		case s.boolean:
			t = Bool
		case s.float:
			t = Float64
		case s.integer:
			t = Int64
		default:
			t = Float64
		}
		if o, ok := opts.Types[name]; ok {
			t = o
			inf.overridden[k] = true
		}
		inf.schema.Fields = append(inf.schema.Fields, Field{Name: name, Type: t})
	}
	return inf, nil
}

// convertJSONL is the second pass: parse each batch and write it to w.
func convertJSONL(ctx context.Context, src string, w *Writer, inf *jsonlInference, opts JSONLOptions) error {
	j, err := openJSONL(src)
	if err != nil {
		return err
	}
	defer j.c.Close()
	fields := inf.schema.Fields
	builders := make([]columnBuilder, len(fields))
	set := make([]bool, len(fields))
	batch := 0
	reset := func() {
		for i := range builders {
			builders[i].reset(fields[i].Type, opts.BatchRows)
		}
		batch = 0
	}
	flush := func() error {
		if batch == 0 {
			return nil
		}
		cols := make([]arrow.Array, len(builders))
		for i := range builders {
			cols[i] = builders[i].finish()
		}
		rec, err := NewRecord(inf.schema, cols)
		if err != nil {
			return fmt.Errorf("converting %s: %w", src, err)
		}
		defer rec.Release()
		if err := w.Write(rec); err != nil {
			return fmt.Errorf("converting %s: %w", src, err)
		}
		reset()
		return nil
	}
	reset()
	var rows int64
	for {
		err := j.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rows++
		if rows%ctxCheckRows == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("converting %s: %w", src, err)
			}
		}
		clear(set)
		for _, f := range j.fields {
			k, ok := inf.index[string(f.key)]
			if !ok {
				return fmt.Errorf("%s: file changed during conversion (new key %q at line %d)", src, f.key, j.line)
			}
			set[k] = true
			if err := appendJSONField(&builders[k], f); err != nil {
				suffix := ""
				if inf.overridden[k] {
					suffix = " (type overridden)"
				}
				return fmt.Errorf("%s:%d: column %s: %w%s", src, j.line, fields[k].Name, err, suffix)
			}
			if fields[k].Type == String && builders[k].stringOverflow() {
				return fmt.Errorf("%s:%d: column %s: more than 2 GiB of text in one batch of %d rows; lower BatchRows",
					src, j.line, fields[k].Name, opts.BatchRows)
			}
		}
		for k, ok := range set {
			if !ok {
				builders[k].appendNull()
			}
		}
		batch++
		if batch == opts.BatchRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if rows != inf.rows {
		return fmt.Errorf("%s: file changed during conversion (%d rows, then %d)", src, inf.rows, rows)
	}
	return nil
}

// appendJSONField converts one value into b according to b's type.
func appendJSONField(b *columnBuilder, f jsonField) error {
	if f.kind == jNull {
		b.appendNull()
		return nil
	}
	bad := func() error {
		v := string(f.raw)
		if f.kind == jString {
			v = strconv.Quote(v)
		}
		if len(v) > 60 {
			v = v[:60] + "..."
		}
		return fmt.Errorf("value %s is not %s", v, article(b.typ))
	}
	switch b.typ {
	case Int64:
		if f.kind != jInt && f.kind != jString {
			return bad()
		}
		x, err := strconv.ParseInt(string(bytes.TrimSpace(f.raw)), 10, 64)
		if err != nil {
			return bad()
		}
		b.appendInt(x)
	case Float64:
		if f.kind == jBool {
			return bad()
		}
		x, err := strconv.ParseFloat(string(bytes.TrimSpace(f.raw)), 64)
		if err != nil {
			return bad()
		}
		b.appendFloat(x)
	case Bool:
		switch f.kind {
		case jBool:
			b.appendBool(f.b)
		case jString, jInt:
			x, ok := parseBool(string(bytes.TrimSpace(f.raw)), true)
			if !ok {
				return bad()
			}
			b.appendBool(x)
		default:
			return bad()
		}
	case String:
		b.appendBytes(f.raw)
	}
	return nil
}

// article names a type with its article: "an int64", "a float64".
func article(t Type) string {
	if t == Int64 {
		return "an int64"
	}
	return "a " + string(t)
}
