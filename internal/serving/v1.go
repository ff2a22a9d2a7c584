package serving

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// v1Rows turns the instances of a KServe v1 predict request into rows. An
// instance is an object of column → value, or (as KServe's v1 examples
// send tabular rows) an array of the model's input values in the order of
// its inputs (the stable version's); null is an empty row.
func v1Rows(m *served, instances []any) ([]map[string]any, error) {
	rows := make([]map[string]any, len(instances))
	for i, inst := range instances {
		switch x := inst.(type) {
		case map[string]any:
			rows[i] = x
		case nil:
			rows[i] = map[string]any{}
		case []any:
			l := m.cur.Load()
			if l == nil {
				return nil, fmt.Errorf("model %q is not ready: it has no deployment", m.name)
			}
			inputs := l.stable.Manifest.Inputs
			if len(x) != len(inputs) {
				return nil, fmt.Errorf("instances[%d] has %d values but the model has %d inputs: %s", i, len(x), len(inputs), strings.Join(fieldNames(inputs), ", "))
			}
			row := newRowMap(len(x))
			for j, f := range inputs {
				row[f.Name] = x[j]
			}
			rows[i] = row
		default:
			return nil, fmt.Errorf("decoding request body: instances[%d] is %s: want an object {\"column\": value, ...} or an array of the model's inputs in order", i, describeJSON(inst))
		}
	}
	return rows, nil
}

// handleLiveV1 is KServe v1's liveness route, GET /.
func (s *Server) handleLiveV1(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// v1Request is the body of a v1 predict request.
type v1Request struct {
	// Instances are objects (column → value) or arrays of the model's
	// inputs in order (v1Rows).
	Instances []any `json:"instances"`
	// IDs are the client's prediction IDs, parallel to Instances.
	IDs []string `json:"ids"`
}

// bodyBufs recycles request body buffers.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeV1Request decodes the body of a v1 predict request for m into req
// with the same result, and the same errors, as decodeBody(r, req).
// encoding/json's reflection into interfaces took about half of the CPU
// time of a one-row request, so the usual body (an object of "instances":
// objects, arrays or nulls of numbers, plain strings, booleans and nulls;
// and "ids": plain strings) is parsed by hand (parseV1Request), each
// instance's map sized for m's inputs. Anything else (escapes or non-ASCII
// in strings, nested values, other keys, a syntax error, a body over
// maxBodyBytes or a failed read) is decoded by decodeBody.
//
// handlePredictV1 (server.go) is meant to call it in place of decodeBody:
// in BenchmarkPredictHandlerGBDT that took a one-row request from ~37 µs to
// ~18 µs (BENCHMARKS.md, "Serving one row per request").
func decodeV1Request(r *http.Request, m *served, req *v1Request) error {
	buf, err := readV1Body(r)
	defer releaseBody(buf)
	return decodeV1Read(r, m, req, buf, err)
}

// readV1Body reads up to maxBodyBytes+1 bytes of r's body into a recycled
// buffer (releaseBody), with the read's error.
func readV1Body(r *http.Request) (*bytes.Buffer, error) {
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(io.LimitReader(r.Body, maxBodyBytes+1))
	return buf, err
}

// releaseBody recycles a readV1Body buffer.
func releaseBody(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		buf.Reset()
		bodyBufs.Put(buf)
	}
}

// decodeV1Read is decodeV1Request once readV1Body has read buf (with err).
func decodeV1Read(r *http.Request, m *served, req *v1Request, buf *bytes.Buffer, err error) error {
	if err == nil && buf.Len() <= maxBodyBytes {
		var names map[string]string
		if l := m.cur.Load(); l != nil {
			names = l.names
		}
		if parseV1Request(buf.Bytes(), names, req) {
			return nil
		}
		*req = v1Request{}
	}
	// encoding/json reads what was read, then the rest of the body.
	r2 := *r
	r2.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body))
	return decodeBody(&r2, req)
}

// parseV1Request parses body into req and reports whether it could: false
// for anything but the usual body (see decodeV1Request), which
// encoding/json then decodes (or rejects). When it returns true, req holds
// what json.Unmarshal would store in a zero v1Request: float64 numbers,
// non-nil empty slices and maps for [] and {}, strings of their own. The
// instances' keys that are in names (the model's inputs, each its own key
// and value) are names' strings instead of new ones, and the instances'
// maps come from rowMaps, sized for names.
func parseV1Request(body []byte, names map[string]string, req *v1Request) bool {
	p := v1Parser{b: body, names: names}
	ids, _, ok := p.body(func() bool {
		if p.lit("null") {
			return true
		}
		if !p.next('[') {
			return false
		}
		req.Instances = []any{}
		if p.ws(); p.next(']') {
			return true
		}
		for {
			p.ws()
			inst, ok := p.instance()
			if !ok {
				return false
			}
			req.Instances = append(req.Instances, inst)
			if !p.more(']') {
				return !p.err
			}
		}
	})
	req.IDs = ids
	return ok
}

// body parses a v1 predict body: an object with "instances", whose value
// instances parses, and "ids" (ids), each at most once, and nothing after
// it. seenInstances reports whether "instances" was there.
func (p *v1Parser) body(instances func() bool) (ids []string, seenInstances, ok bool) {
	if p.ws(); !p.next('{') {
		return nil, false, false
	}
	var seenIDs bool
	if p.ws(); !p.next('}') {
		for {
			p.ws()
			switch {
			case p.key(`"instances"`) && !seenInstances:
				seenInstances = true
				p.ws()
				if !instances() {
					return nil, false, false
				}
			case p.key(`"ids"`) && !seenIDs:
				seenIDs = true
				if ids, ok = p.ids(); !ok {
					return nil, false, false
				}
			default:
				return nil, false, false
			}
			if !p.more('}') {
				if p.err {
					return nil, false, false
				}
				break
			}
		}
	}
	p.ws()
	return ids, seenInstances, p.i == len(p.b)
}

// ids parses the value of "ids": null (nil), or an array of plain strings
// (non-nil, empty for []).
func (p *v1Parser) ids() ([]string, bool) {
	p.ws()
	if p.lit("null") {
		return nil, true
	}
	if !p.next('[') {
		return nil, false
	}
	ids := []string{}
	if p.ws(); p.next(']') {
		return ids, true
	}
	for {
		p.ws()
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		ids = append(ids, s)
		if !p.more(']') {
			return ids, !p.err
		}
	}
}

// v1Parser is parseV1Request's cursor over the body.
type v1Parser struct {
	b     []byte
	i     int
	err   bool              // set by more on a byte that is neither ',' nor the closer
	names map[string]string // the model's input names (parseV1Request)
}

// ws skips JSON whitespace.
func (p *v1Parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next consumes c if it comes next.
func (p *v1Parser) next(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// lit consumes s if it comes next.
func (p *v1Parser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// key consumes the quoted object key k and the colon after it.
func (p *v1Parser) key(k string) bool {
	i := p.i
	if !p.lit(k) {
		return false
	}
	if p.ws(); !p.next(':') {
		p.i = i
		return false
	}
	return true
}

// more consumes the separator after a value: true after ',' (another value
// follows), false after closer (the list ends), false with p.err set after
// anything else.
func (p *v1Parser) more(closer byte) bool {
	p.ws()
	switch {
	case p.next(','):
		return true
	case p.next(closer):
		return false
	}
	p.err = true
	return false
}

// instance parses one element of "instances": an object or an array of
// scalars, or a scalar.
func (p *v1Parser) instance() (any, bool) {
	switch {
	case p.next('{'):
		m := newRowMap(len(p.names))
		if p.ws(); p.next('}') {
			return m, true
		}
		for {
			p.ws()
			k, ok := p.name()
			if !ok {
				return nil, false
			}
			if p.ws(); !p.next(':') {
				return nil, false
			}
			p.ws()
			v, ok := p.scalar()
			if !ok {
				return nil, false
			}
			m[k] = v
			if !p.more('}') {
				return m, !p.err
			}
		}
	case p.next('['):
		a := []any{}
		if p.ws(); p.next(']') {
			return a, true
		}
		for {
			p.ws()
			v, ok := p.scalar()
			if !ok {
				return nil, false
			}
			a = append(a, v)
			if !p.more(']') {
				return a, !p.err
			}
		}
	}
	return p.scalar()
}

// scalar parses a number (as float64), a plain string, true, false or null.
func (p *v1Parser) scalar() (any, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.lit("null"):
		return nil, true
	case p.lit("true"):
		return true, true
	case p.lit("false"):
		return false, true
	}
	return nil, false
}

// str parses a string of printable ASCII without escapes.
func (p *v1Parser) str() (string, bool) {
	b, ok := p.strBytes()
	return string(b), ok
}

// name parses an instance's key as str does, as the model's own string
// when it is one of the model's input names (no allocation).
func (p *v1Parser) name() (string, bool) {
	b, ok := p.strBytes()
	if !ok {
		return "", false
	}
	if s, ok := p.names[string(b)]; ok {
		return s, true
	}
	return string(b), true
}

// strBytes parses what str parses and returns its bytes in the body.
func (p *v1Parser) strBytes() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	for j := p.i; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			b := p.b[p.i:j]
			p.i = j + 1
			return b, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// rowMaps recycles the maps of request rows (newRowMap, releaseRows).
// Building a one-row request's map of 30 inputs was a third of the bytes a
// request allocated (BenchmarkPredictHandlerGBDT), and so of the garbage
// collections that stall a one-core server.
var rowMaps sync.Pool

// newRowMap returns an empty map for a request row, recycled when one is
// free, else sized for hint keys.
func newRowMap(hint int) map[string]any {
	if m, ok := rowMaps.Get().(map[string]any); ok {
		return m
	}
	return make(map[string]any, hint)
}

// releaseRows recycles the maps of rows that nothing holds any more. Maps
// of more than maxRecycledKeys keys are left to the garbage collector.
func releaseRows(rows []map[string]any) {
	for _, m := range rows {
		if len(m) <= maxRecycledKeys {
			clear(m)
			rowMaps.Put(m)
		}
	}
}

// maxRecycledKeys bounds the maps rowMaps keeps.
const maxRecycledKeys = 1024

// number parses a JSON number as encoding/json does into an interface
// (strconv.ParseFloat); false for bad syntax or a value out of range.
func (p *v1Parser) number() (any, bool) {
	f, ok := p.float()
	if !ok {
		return nil, false
	}
	return f, true
}

// float is number without boxing the value.
func (p *v1Parser) float() (float64, bool) {
	b, i := p.b, p.i
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(unsafe.String(&b[p.i], i-p.i), 64)
	if err != nil {
		return 0, false
	}
	p.i = i
	return f, true
}
