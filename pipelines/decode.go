package pipelines

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Parse decodes, resolves and validates a pipeline spec. file names the spec
// in messages (and is stored in Spec.File); overrides replace param defaults
// (as from `kiln run --param seed=7`) and are parsed into each param's type.
//
// Parse collects every problem instead of stopping at the first one. On
// failure it returns a nil *Spec and Problems, sorted by position.
func Parse(file string, src []byte, overrides map[string]string) (*Spec, error) {
	sum := sha256.Sum256(src)
	spec := &Spec{File: file, Hash: hex.EncodeToString(sum[:])}
	d := &decoder{file: file, src: src}
	if root := d.parseYAML(); root != nil {
		d.decodeSpec(root, spec, overrides)
	}
	if len(d.problems) > 0 {
		return nil, sortProblems(d.problems)
	}
	defaultChampions(spec)
	return spec, nil
}

// ParseFile reads and parses the spec at path. Spec.File is path and Spec.Dir
// the absolute directory holding it, against which relative paths in the spec
// resolve.
func ParseFile(path string, overrides map[string]string) (*Spec, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline spec: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve pipeline spec path %s: %w", path, err)
	}
	spec, err := Parse(path, src, overrides)
	if err != nil {
		return nil, err
	}
	spec.Dir = filepath.Dir(abs)
	return spec, nil
}

// maxAliases bounds how many YAML aliases the decoder follows, so that
// recursive or exponentially nested aliases cannot make it loop or explode.
const maxAliases = 1000

var (
	pipelineNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	stepNameRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	paramNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlLineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decoder walks the YAML node tree, filling a Spec and collecting problems.
type decoder struct {
	file     string
	src      []byte
	lines    []string
	problems Problems

	params     map[string]*Param
	paramNames []string
	// subst is true while decoding steps, where ${params.NAME} is substituted.
	subst bool
	// cur is the step being decoded: references to step outputs found in
	// its scalars are collected there, to be checked against the graph.
	cur *stepInfo
	// inWith is true while decoding a step's with, where ${steps....} (and,
	// in a foreach step, ${item}) are kept for the workflow; inWhen while
	// decoding its when.
	inWith, inWhen bool
	// colCache holds the source columns of scalars (see columns).
	colCache map[*yaml.Node][]int

	aliases        int
	aliasesReached bool

	// deadlineAt locates a valid schedule.deadline, which needs report steps.
	deadlineAt   *yaml.Node
	deadlinePath string
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	p := Problem{File: d.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
}

// parseYAML parses the source into a node tree and returns its root mapping,
// or nil after recording why there is none.
func (d *decoder) parseYAML() (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports errors by panicking internally and recovering; guard
		// against any input that escapes that.
		if r := recover(); r != nil {
			d.errorf(nil, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(d.src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(nil, "", "empty spec: expected a mapping with apiVersion, kind, name and steps")
		} else {
			d.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		if n := documentContent(&extra); n != nil && !(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
			d.errorf(n, "", "a spec file holds one YAML document; remove the second one (after ---)")
		}
	case !errors.Is(err, io.EOF):
		d.yamlError(err)
	}
	root = d.deref(documentContent(&doc))
	switch {
	case root == nil || root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		d.errorf(nil, "", "empty spec: expected a mapping with apiVersion, kind, name and steps")
		return nil
	case root.Kind != yaml.MappingNode:
		d.errorf(root, "", "a spec is a mapping with apiVersion, kind, name and steps, found %s", describeNode(root))
		return nil
	}
	return root
}

func documentContent(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return doc.Content[0]
	}
	return doc
}

// yamlError records a YAML syntax error, recovering its position: yaml.v3
// gives the line in the message (and leaves it out on line 1), never the column.
func (d *decoder) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// Parser errors (as opposed to scanner errors) report a 0-based line,
	// and no line at all on the first line.
	if isParserError(msg) {
		line++
	}
	// Errors at the end of the stream may name the line after the last.
	d.line(1)
	line = min(line, len(d.lines))
	p := Problem{File: d.file, Line: line, Message: "invalid YAML: " + msg}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		p.Line, p.Column = d.find("*" + m[1])
	} else if line == 0 {
		if l, c, ok := d.badCharacter(); ok {
			p.Line, p.Column = l, c
		} else {
			p.Line = 1
		}
	}
	if text, ok := d.line(p.Line); ok && strings.HasPrefix(msg, "did not find expected ',' or") && unquotedRefRE.MatchString(text) {
		p.Message += `; inside { } or [ ], quote references: "${params.NAME}"`
	}
	if strings.Contains(msg, "found character that cannot start any token") {
		if text, ok := d.line(p.Line); ok {
			indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
			if i := strings.IndexByte(indent, '\t'); i >= 0 {
				p.Column = i + 1
				p.Message = "invalid YAML: tab character in indentation; YAML indents with spaces only"
			}
		}
	}
	d.problems = append(d.problems, p)
}

var (
	unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	unquotedRefRE   = regexp.MustCompile(`[\[{,:]\s*\$\{`)
)

// isParserError tells yaml.v3's parser errors from its scanner errors.
func isParserError(msg string) bool {
	for _, prefix := range []string{"did not find expected", "found undefined tag handle", "found duplicate %", "found incompatible YAML document"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// find returns the 1-based line and column of the first occurrence of s
// that is not followed by a name character, or 0, 0.
func (d *decoder) find(s string) (line, col int) {
	for i := 1; ; i++ {
		text, ok := d.line(i)
		if !ok {
			return 0, 0
		}
		for off := 0; ; {
			j := strings.Index(text[off:], s)
			if j < 0 {
				break
			}
			end := off + j + len(s)
			if end == len(text) || strings.IndexByte(" \t,]}", text[end]) >= 0 {
				return i, utf8.RuneCountInString(text[:off+j]) + 1
			}
			off = end
		}
	}
}

// line returns the 1-based line n of the source, without its line break.
func (d *decoder) line(n int) (string, bool) {
	if d.lines == nil {
		d.lines = splitLines(string(d.src))
	}
	if n < 1 || n > len(d.lines) {
		return "", false
	}
	return d.lines[n-1], true
}

// splitLines splits s at YAML line breaks: CR LF, CR, LF, NEL, LS and PS.
func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\r':
			lines = append(lines, s[start:i])
			if i+1 < len(s) && s[i+1] == '\n' {
				size = 2
			}
			start = i + size
		case '\n', '\u0085', '\u2028', '\u2029':
			lines = append(lines, s[start:i])
			start = i + size
		}
		i += size
	}
	return append(lines, s[start:])
}

// badCharacter finds the first character YAML does not accept (invalid
// UTF-8 or a control character) and returns its 1-based line and column.
func (d *decoder) badCharacter() (line, col int, ok bool) {
	line, col = 1, 1
	for i, s := 0, d.src; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		bad := r == utf8.RuneError && size <= 1 ||
			r < 0x20 && r != '\t' && r != '\n' && r != '\r' ||
			r >= 0x7f && r <= 0x9f && r != 0x85 ||
			r >= 0xd800 && r <= 0xdfff || r == 0xfffe || r == 0xffff ||
			r == 0xfeff && i > 0
		if bad {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 0, 0, false
}

// deref follows aliases, within the alias budget.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliases {
			if !d.aliasesReached {
				d.aliasesReached = true
				d.errorf(n, "", "too many YAML alias expansions (more than %d); is an alias recursive?", maxAliases)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or a YAML null.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describeNode names what a node holds, for "expected X, found Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "float " + n.Value
		case "!!bool":
			return "bool " + n.Value
		}
		return "string " + strconv.Quote(n.Value)
	}
	return "an alias"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// pair is one key/value of a mapping, after merge keys are expanded.
type pair struct {
	key, value *yaml.Node
	merged     bool
}

// pairs returns n's key/value pairs with "<<" merge keys expanded: explicit
// keys come first and win over merged ones; earlier merge sources win over
// later ones.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			src := d.deref(v)
			var sources []*yaml.Node
			switch {
			case src == nil:
			case src.Kind == yaml.MappingNode:
				sources = append(sources, src)
			case src.Kind == yaml.SequenceNode:
				for _, s := range src.Content {
					if s = d.deref(s); s != nil && s.Kind == yaml.MappingNode {
						sources = append(sources, s)
					} else if s != nil {
						d.errorf(s, joinPath(path, "<<"), "a merge key takes a mapping or a list of mappings, found %s", describeNode(s))
					}
				}
			default:
				d.errorf(src, joinPath(path, "<<"), "a merge key takes a mapping or a list of mappings, found %s", describeNode(src))
			}
			for _, s := range sources {
				for _, p := range d.pairs(s, path) {
					p.merged = true
					merged = append(merged, p)
				}
			}
			continue
		}
		out = append(out, pair{key: k, value: v})
	}
	seen := map[string]bool{}
	for _, p := range out {
		if p.key.Kind == yaml.ScalarNode {
			seen[p.key.Value] = true
		}
	}
	for _, p := range merged {
		if p.key.Kind == yaml.ScalarNode && !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

// object is a decoded YAML mapping with known keys.
type object struct {
	d *decoder
	// at is where problems about the object as a whole point: the mapping
	// itself, or its parent when the mapping is absent.
	at   *yaml.Node
	path string
	vals map[string]*yaml.Node
	keys map[string]*yaml.Node
	// ok is false when the node was not a mapping (already reported).
	ok bool
	// size counts the keys written, known or not; unknown the unknown ones.
	size, unknown int
}

// object checks that n (which may be nil or null: an empty object) is a
// mapping whose keys are all in known, reporting unknown and duplicate keys.
func (d *decoder) object(n, parent *yaml.Node, path string, known []string) *object {
	o := &object{d: d, at: parent, path: path, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}, ok: true}
	n = d.deref(n)
	if isNull(n) {
		if n != nil {
			o.at = n
		}
		return o
	}
	o.at = n
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, found %s", describeNode(n))
		o.ok = false
		return o
	}
	for _, p := range d.pairs(n, path) {
		o.size++
		k := d.deref(p.key)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings, found %s", describeNode(k))
			continue
		}
		name := k.Value
		if !contains(known, name) {
			o.unknown++
			if hint := didYouMean(name, known); hint != "" {
				d.errorf(k, joinPath(path, name), "unknown key %q%s", name, hint)
			} else {
				d.errorf(k, joinPath(path, name), "unknown key %q (known keys: %s)", name, quoteList(known))
			}
			continue
		}
		if first, dup := o.keys[name]; dup {
			if !p.merged {
				d.errorf(k, joinPath(path, name), "duplicate key %q (first at line %d)", name, first.Line)
			}
			continue
		}
		o.keys[name] = k
		o.vals[name] = d.deref(p.value)
	}
	return o
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// get returns the value of key when it is present and not null.
func (o *object) get(key string) (*yaml.Node, string, bool) {
	n := o.vals[key]
	if isNull(n) {
		return nil, joinPath(o.path, key), false
	}
	return n, joinPath(o.path, key), true
}

// has reports whether key is present with a non-null value.
func (o *object) has(key string) bool {
	_, _, ok := o.get(key)
	return ok
}

// where returns the node and path to report a problem about key's value: the
// value when present, else the object.
func (o *object) where(key string) (*yaml.Node, string) {
	if n, path, ok := o.get(key); ok {
		return n, path
	}
	if k, ok := o.keys[key]; ok {
		return k, joinPath(o.path, key)
	}
	return o.at, joinPath(o.path, key)
}

// require reports key as missing when it is absent or null.
func (o *object) require(key string) {
	if !o.ok || o.has(key) {
		return
	}
	if k, ok := o.keys[key]; ok {
		o.d.errorf(k, joinPath(o.path, key), "required field %q has no value", key)
		return
	}
	o.d.errorf(o.at, o.path, "missing required field %q", key)
}

// requiredString reads a required string field that must not be empty.
func (o *object) requiredString(key string, dst *string) {
	o.require(key)
	if o.str(key, dst) && *dst == "" {
		n, path := o.where(key)
		o.d.errorf(n, path, "must not be empty")
	}
}

func (o *object) str(key string, dst *string) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := o.d.scalar(n, path, wantString)
	if !ok {
		return false
	}
	v, ok := o.d.asString(s, path)
	if ok {
		*dst = v
	}
	return ok
}

func (o *object) int64(key string, dst *int64) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := o.d.scalar(n, path, wantInt)
	if !ok {
		return false
	}
	v, ok := o.d.asInt(s, path)
	if ok {
		*dst = v
	}
	return ok
}

func (o *object) int(key string, dst *int) bool {
	var v int64
	if !o.int64(key, &v) {
		return false
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		n, path := o.where(key)
		o.d.errorf(n, path, "integer %d is out of range", v)
		return false
	}
	*dst = int(v)
	return true
}

func (o *object) float(key string, dst *float64) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := o.d.scalar(n, path, wantNumber)
	if !ok {
		return false
	}
	v, ok := o.d.asFloat(s, path)
	if ok {
		*dst = v
	}
	return ok
}

func (o *object) bool(key string, dst *bool) bool {
	var v *bool
	if !o.boolPtr(key, &v) {
		return false
	}
	*dst = *v
	return true
}

func (o *object) boolPtr(key string, dst **bool) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := o.d.scalar(n, path, wantBool)
	if !ok {
		return false
	}
	if s.tag != "!!bool" {
		o.d.typeError(s, path, wantBool)
		return false
	}
	v := s.b
	*dst = &v
	return true
}

func (o *object) duration(key string, dst *Duration) bool {
	return o.durationFrom(key, dst, false)
}

// durationFrom reads a duration that must be positive, or with allowZero
// not negative.
func (o *object) durationFrom(key string, dst *Duration, allowZero bool) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := o.d.scalar(n, path, wantDuration)
	if !ok {
		return false
	}
	if s.tag != "!!str" {
		o.d.typeError(s, path, wantDuration)
		return false
	}
	v, err := time.ParseDuration(s.str)
	if err != nil {
		o.d.errorf(n, path, "invalid duration %q%s: use a number with a unit: ms, s, m or h, e.g. 30s or 1h30m%s", s.str, s.origin(), s.refHint())
		return false
	}
	switch {
	case v < 0 && allowZero:
		o.d.errorf(n, path, "duration %s must not be negative", s.str)
		return false
	case v <= 0 && !allowZero:
		o.d.errorf(n, path, "duration %s must be positive", s.str)
		return false
	}
	*dst = Duration(v)
	return true
}

func (o *object) bytes(key string, dst *ByteSize) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	s, ok := o.d.scalar(n, path, wantBytes)
	if !ok {
		return false
	}
	var v ByteSize
	switch s.tag {
	case "!!int":
		if s.i < 0 {
			o.d.errorf(n, path, "byte size %d must not be negative", s.i)
			return false
		}
		v = ByteSize(s.i)
	case "!!str":
		var err error
		if v, err = ParseByteSize(s.str); err != nil {
			o.d.errorf(n, path, "%v%s%s", err, s.origin(), s.refHint())
			return false
		}
	default:
		o.d.typeError(s, path, wantBytes)
		return false
	}
	*dst = v
	return true
}

// strings reads a list of strings; a single string is accepted as a list of one.
func (o *object) strings(key string, dst *[]string) bool {
	n, path, ok := o.get(key)
	if !ok {
		return false
	}
	items, itemPaths, ok := o.d.list(n, path, true)
	if !ok {
		return false
	}
	out := make([]string, 0, len(items))
	good := true
	for i, item := range items {
		s, ok := o.d.scalar(item, itemPaths[i], wantString)
		if !ok {
			good = false
			continue
		}
		v, ok := o.d.asString(s, itemPaths[i])
		if !ok {
			good = false
			continue
		}
		out = append(out, v)
	}
	if good {
		*dst = out
	}
	return good
}

// list returns the items of a sequence with their paths. With single, a
// scalar counts as a list of one.
func (d *decoder) list(n *yaml.Node, path string, single bool) ([]*yaml.Node, []string, bool) {
	if single && n.Kind == yaml.ScalarNode {
		return []*yaml.Node{n}, []string{path}, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, found %s", describeNode(n))
		return nil, nil, false
	}
	var items []*yaml.Node
	var paths []string
	for i, item := range n.Content {
		if item = d.deref(item); item != nil {
			items = append(items, item)
			paths = append(paths, indexPath(path, i))
		}
	}
	return items, paths, true
}

// Descriptions of expected values, for "expected X, found Y" messages.
const (
	wantString   = "a string"
	wantInt      = "an integer"
	wantNumber   = "a number"
	wantBool     = "a boolean (true or false)"
	wantDuration = `a duration such as "30s", "10m" or "1h30m"`
	wantBytes    = `a byte size such as "512MiB" or "1G"`
)

// scalar is a resolved scalar value, after ${params.NAME} substitution.
type scalar struct {
	node *yaml.Node
	// tag is !!str, !!int, !!float, !!bool or !!null.
	tag string
	str string // the string, or the source text of other values
	i   int64
	f   float64
	b   bool
	// param is the param that provided the whole value, if any.
	param string
	// interpolated is true when a param was substituted into a longer
	// string, so that str no longer matches the source text.
	interpolated bool
	// stepRefs, itemRefs and runRefs are true when str holds
	// ${steps....}, ${item} or ${run....} references, kept for the
	// workflow to substitute.
	stepRefs, itemRefs, runRefs bool
}

// refHint explains, after a type error, that references kept for run time
// only fit string fields.
func (s scalar) refHint() string {
	switch {
	case s.stepRefs:
		return "; references to step outputs are only allowed in string fields"
	case s.itemRefs:
		return "; ${item} and ${item.index} are only allowed in string fields"
	case s.runRefs:
		return "; ${run.*} references are only allowed in string fields"
	}
	return ""
}

// origin explains where a substituted value came from, for messages.
func (s scalar) origin() string {
	if s.param != "" {
		return fmt.Sprintf(" (from ${params.%s})", s.param)
	}
	return ""
}

func (s scalar) describe() string {
	switch s.tag {
	case "!!null":
		return "null"
	case "!!int":
		return "integer " + s.str
	case "!!float":
		return "float " + s.str
	case "!!bool":
		return "bool " + s.str
	}
	return "string " + strconv.Quote(s.str)
}

func (d *decoder) typeError(s scalar, path, want string) {
	d.errorf(s.node, path, "expected %s, found %s%s%s", want, s.describe(), s.origin(), s.refHint())
}

// scalar resolves a scalar node's value, substituting params when decoding
// steps. It reports non-scalars, unsupported tags and bad references.
func (d *decoder) scalar(n *yaml.Node, path, want string) (scalar, bool) {
	s := scalar{node: n, str: n.Value}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, found %s", want, describeNode(n))
		return s, false
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp", "!!merge":
		s.tag = "!!str"
	case "!!null":
		s.tag = tag
	case "!!int":
		s.tag = tag
		if err := n.Decode(&s.i); err != nil {
			d.errorf(n, path, "integer %s is out of range", n.Value)
			return s, false
		}
	case "!!float":
		s.tag = tag
		if err := n.Decode(&s.f); err != nil {
			d.errorf(n, path, "invalid number %q", n.Value)
			return s, false
		}
	case "!!bool":
		s.tag = tag
		if err := n.Decode(&s.b); err != nil {
			d.errorf(n, path, "invalid boolean %q", n.Value)
			return s, false
		}
	default:
		d.errorf(n, path, "unsupported YAML tag %s", tag)
		return s, false
	}
	if d.subst && s.tag == "!!str" && strings.Contains(s.str, "${") {
		return d.substitute(s, path)
	}
	return s, true
}

// substitute replaces ${params.NAME} references in s. A string that is
// exactly one reference takes the param's type and value. Under a step's
// with, references to step outputs (${steps.STEP.KIND.FIELD}), run
// references (${run.NAME}) and, in a foreach step, ${item} and
// ${item.index} are checked and kept as written: the workflow substitutes
// them at run time (see ExpandRefs).
func (d *decoder) substitute(s scalar, path string) (scalar, bool) {
	var b strings.Builder
	rest, ok := s.str, true
	var whole *Param
	substituted := false
	// consumed counts the characters of s.str before rest, so that each
	// reference's offset (in characters) costs only its own length.
	consumed := 0
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			d.errorf(s.node, path, "unterminated reference %q: write ${params.NAME}", rest[i:])
			return s, false
		}
		ref := rest[i : i+j+1]
		off := consumed + utf8.RuneCountInString(rest[:i])
		consumed = off + utf8.RuneCountInString(ref)
		inner := ref[2 : len(ref)-1]
		name, isParam := strings.CutPrefix(inner, "params.")
		switch {
		case isItemRef(inner):
			if d.checkItemRef(s, path, off, ref) {
				b.WriteString(ref)
				s.itemRefs = true
			} else {
				ok = false
			}
		case strings.HasPrefix(inner, "steps."):
			if d.checkStepRef(s, path, off, ref) {
				b.WriteString(ref)
				s.stepRefs = true
			} else {
				ok = false
			}
		case inner == "run" || strings.HasPrefix(inner, "run."):
			if d.checkRunRef(s, path, off, ref) {
				b.WriteString(ref)
				s.runRefs = true
			} else {
				ok = false
			}
		case strings.HasPrefix(inner, "item."):
			d.refError(s, path, off, fmt.Sprintf("invalid reference %q: write ${item} or ${item.index}", ref))
			ok = false
		case !isParam || !paramNameRE.MatchString(name):
			d.errorf(s.node, path, "invalid reference %q: write ${params.NAME}", ref)
			ok = false
		case d.params[name] == nil:
			d.errorf(s.node, path, "unknown param %q in %q%s", name, ref, d.knownParams(name))
			ok = false
		default:
			p := d.params[name]
			v := formatParam(p.Value)
			if strings.Contains(v, "${") {
				// Decoded steps hold "${" only in the references checked
				// here, which the workflow substitutes; a param must not
				// smuggle in others.
				d.refError(s, path, off, fmt.Sprintf(`the value of param %q, %q, contains "${", which a param cannot pass on to a step`, name, v))
				ok = false
				break
			}
			if i == 0 && i+j+1 == len(rest) && b.Len() == 0 {
				whole = p
			}
			b.WriteString(v)
			substituted = true
		}
		rest = rest[i+j+1:]
	}
	if !ok {
		return s, false
	}
	if whole != nil {
		out := scalar{node: s.node, str: formatParam(whole.Value), param: whole.Name}
		switch v := whole.Value.(type) {
		case int64:
			out.tag, out.i = "!!int", v
		case float64:
			out.tag, out.f = "!!float", v
		case bool:
			out.tag, out.b = "!!bool", v
		default:
			out.tag = "!!str"
		}
		return out, true
	}
	s.str, s.interpolated = b.String(), substituted
	return s, true
}

// knownParams formats a hint listing the params, for unknown-param messages.
func (d *decoder) knownParams(name string) string {
	if len(d.paramNames) == 0 {
		return " (the spec defines no params)"
	}
	return fmt.Sprintf("%s (known params: %s)", didYouMean(name, d.paramNames), quoteList(d.paramNames))
}

func formatParam(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

func (d *decoder) asString(s scalar, path string) (string, bool) {
	switch s.tag {
	case "!!str", "!!int", "!!float":
		return s.str, true
	}
	d.typeError(s, path, wantString)
	return "", false
}

func (d *decoder) asInt(s scalar, path string) (int64, bool) {
	if s.tag != "!!int" {
		d.typeError(s, path, wantInt)
		return 0, false
	}
	return s.i, true
}

func (d *decoder) asFloat(s scalar, path string) (float64, bool) {
	var v float64
	switch s.tag {
	case "!!int":
		v = float64(s.i)
	case "!!float":
		v = s.f
	default:
		d.typeError(s, path, wantNumber)
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(s.node, path, "expected a finite number, found %s%s", s.str, s.origin())
		return 0, false
	}
	return v, true
}

// value converts any YAML node to plain Go values (map[string]any, []any,
// int64, float64, bool, string, nil), substituting params in steps.
func (d *decoder) value(n *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		ok := true
		lines := map[string]int{}
		for _, p := range d.pairs(n, path) {
			k := d.deref(p.key)
			if k == nil {
				ok = false
				continue
			}
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "mapping keys must be strings, found %s", describeNode(k))
				ok = false
				continue
			}
			if first, dup := lines[k.Value]; dup {
				if !p.merged {
					d.errorf(k, joinPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first)
					ok = false
				}
				continue
			}
			lines[k.Value] = k.Line
			v := d.deref(p.value)
			if v == nil {
				ok = false
				continue
			}
			x, good := d.value(v, joinPath(path, k.Value))
			ok = ok && good
			out[k.Value] = x
		}
		return out, ok
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			if item = d.deref(item); item == nil {
				ok = false
				continue
			}
			x, good := d.value(item, indexPath(path, i))
			ok = ok && good
			out = append(out, x)
		}
		return out, ok
	}
	s, ok := d.scalar(n, path, "a single value")
	if !ok {
		return nil, false
	}
	switch s.tag {
	case "!!null":
		return nil, true
	case "!!int":
		return s.i, true
	case "!!float":
		return d.asFloat(s, path)
	case "!!bool":
		return s.b, true
	}
	return s.str, true
}

// decodeSpec fills spec from the root mapping.
func (d *decoder) decodeSpec(root *yaml.Node, spec *Spec, overrides map[string]string) {
	o := d.object(root, root, "", []string{"apiVersion", "kind", "name", "description", "params", "schedule", "steps"})
	d.decodeParams(o, spec, overrides)

	o.require("apiVersion")
	if o.str("apiVersion", &spec.APIVersion) && spec.APIVersion != APIVersion {
		n, path := o.where("apiVersion")
		d.errorf(n, path, "unsupported apiVersion %q; supported versions: %s", spec.APIVersion, APIVersion)
	}
	o.require("kind")
	if o.str("kind", &spec.Kind) && spec.Kind != "Pipeline" {
		n, path := o.where("kind")
		d.errorf(n, path, "unsupported kind %q; expected Pipeline", spec.Kind)
	}
	o.require("name")
	if o.str("name", &spec.Name) && !pipelineNameRE.MatchString(spec.Name) {
		n, path := o.where("name")
		d.errorf(n, path, "invalid pipeline name %q: use 1 to 63 lowercase letters, digits and dashes, starting with a letter", spec.Name)
	}
	o.str("description", &spec.Description)
	if k, ok := o.keys["schedule"]; ok {
		spec.Schedule = d.decodeSchedule(o.vals["schedule"], k)
	}

	o.require("steps")
	n, path, ok := o.get("steps")
	if !ok {
		return
	}
	items, paths, ok := d.list(n, path, false)
	if !ok {
		return
	}
	if len(items) == 0 {
		d.errorf(n, path, "a pipeline needs at least one step")
		return
	}
	d.subst = true
	infos := make([]*stepInfo, len(items))
	spec.Steps = make([]Step, len(items))
	for i, item := range items {
		infos[i] = d.decodeStep(item, paths[i], spec, &spec.Steps[i])
	}
	d.subst = false
	d.validateGraph(spec, infos)
	if d.deadlineAt != nil && !slices.ContainsFunc(spec.Steps, func(st Step) bool { return st.Uses == StepReport }) {
		d.errorf(d.deadlineAt, d.deadlinePath, "no report step: the deadline is when the reports of the pipeline's report steps are due; add a report step (uses: report) or remove the deadline")
	}
}

// decodeParams reads the params mapping and applies overrides.
func (d *decoder) decodeParams(o *object, spec *Spec, overrides map[string]string) {
	d.params = map[string]*Param{}
	n, path, present := o.get("params")
	if present {
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping of param names to default values, found %s", describeNode(n))
		} else {
			seen := map[string]int{}
			for _, p := range d.pairs(n, path) {
				k, v := d.deref(p.key), d.deref(p.value)
				if k == nil || v == nil {
					continue
				}
				if k.Kind != yaml.ScalarNode {
					d.errorf(k, path, "param names must be strings, found %s", describeNode(k))
					continue
				}
				name, ppath := k.Value, joinPath(path, k.Value)
				if !paramNameRE.MatchString(name) {
					d.errorf(k, ppath, "invalid param name %q: use letters, digits and underscores, starting with a letter or underscore", name)
					continue
				}
				if first, dup := seen[name]; dup {
					if !p.merged {
						d.errorf(k, ppath, "duplicate param %q (first at line %d)", name, first)
					}
					continue
				}
				seen[name] = k.Line
				if v.Kind != yaml.ScalarNode {
					d.errorf(v, ppath, "a param's default must be a single value (its type comes from it), found %s", describeNode(v))
					continue
				}
				s, ok := d.scalar(v, ppath, "a single value")
				if !ok {
					continue
				}
				param := Param{Name: name}
				switch s.tag {
				case "!!int":
					param.Type, param.Value = ParamInt, s.i
				case "!!float":
					f, ok := d.asFloat(s, ppath)
					if !ok {
						continue
					}
					param.Type, param.Value = ParamFloat, f
				case "!!bool":
					param.Type, param.Value = ParamBool, s.b
				case "!!null":
					d.errorf(v, ppath, "param %q needs a default value; its type comes from the default", name)
					continue
				default:
					param.Type, param.Value = ParamString, s.str
				}
				spec.Params = append(spec.Params, param)
			}
		}
	}
	for i := range spec.Params {
		d.params[spec.Params[i].Name] = &spec.Params[i]
		d.paramNames = append(d.paramNames, spec.Params[i].Name)
	}

	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := d.params[name]
		if p == nil {
			d.errorf(nil, joinPath("params", name), "cannot override unknown param %q%s", name, d.knownParams(name))
			continue
		}
		v, ok := parseParamValue(p.Type, overrides[name])
		if !ok {
			d.errorf(nil, joinPath("params", name), "override %q is not a valid %s (the type of the param's default)", overrides[name], p.Type)
			continue
		}
		p.Value, p.Overridden = v, true
	}
}

// parseParamValue parses an override into a param's type.
func parseParamValue(t ParamType, s string) (any, bool) {
	trimmed := strings.TrimSpace(s)
	switch t {
	case ParamInt:
		v, err := strconv.ParseInt(trimmed, 10, 64)
		return v, err == nil
	case ParamFloat:
		v, err := strconv.ParseFloat(trimmed, 64)
		return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
	case ParamBool:
		v, err := strconv.ParseBool(trimmed)
		return v, err == nil
	}
	return s, true
}
