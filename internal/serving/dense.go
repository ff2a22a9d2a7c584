package serving

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// A v1 predict request for a numeric model can skip the row maps: when
// every version a deployment may answer with takes the same Float64
// inputs with identity transforms (GBDT bundles do) and nothing reads the
// rows by name (no experiment, no shadow), the usual body (objects of
// numbers and nulls keyed by input names) is parsed straight into a
// row-major matrix, predicted from its columns and logged from it. Building,
// reading and recycling the maps took about a tenth of kiln serve's CPU per
// one-row request (hashing 30 keys to store them, 60 more lookups to read
// them back for the model and the log). Anything else in a body (an unknown
// key, a string or boolean value, array instances) falls back to the maps;
// TestDenseMatchesRows checks the answers and the logs are the same.

// denseLayout is the input layout a deployment's dense requests use.
type denseLayout struct {
	names []string       // the inputs, in order
	index map[string]int // name -> position in names
}

// newDenseLayout returns the layout shared by models, or nil when they do
// not all take the same Float64 inputs through identity transforms or one
// of them is multiclass.
func newDenseLayout(models ...*model.Model) *denseLayout {
	var names []string
	for _, m := range models {
		if m == nil {
			continue
		}
		t := m.Manifest.Transforms
		if t == nil || len(t.Steps) != 0 || m.NumClass() != 0 || !slices.Equal(t.Inputs, m.Manifest.Inputs) {
			return nil
		}
		in := make([]string, len(t.Inputs))
		for j, f := range t.Inputs {
			if f.Type != dataset.Float64 || j >= len(t.Features) || t.Features[j] != f.Name {
				return nil
			}
			in[j] = f.Name
		}
		if len(t.Features) != len(in) || names != nil && !slices.Equal(in, names) {
			return nil
		}
		names = in
	}
	if len(names) == 0 {
		return nil
	}
	d := &denseLayout{names: names, index: make(map[string]int, len(names))}
	for j, n := range names {
		d.index[n] = j
	}
	return d
}

// v1Dense is a v1 predict request parsed into a dense matrix.
type v1Dense struct {
	vals []float64 // n rows of len(layout.names) values, NaN for null or absent
	n    int
	ids  []string
}

var denseBufs = sync.Pool{New: func() any { return new(v1Dense) }}

// releaseDense recycles d unless it grew large.
func releaseDense(d *v1Dense) {
	if cap(d.vals) <= 1<<16 {
		d.ids = nil
		denseBufs.Put(d)
	}
}

// parseV1Dense parses body into req for layout and reports whether it
// could: false for anything but instances that are objects of the
// layout's names with numbers or nulls (and "ids" as parseV1Request reads
// them), which the row maps then handle.
func parseV1Dense(body []byte, layout *denseLayout, req *v1Dense) bool {
	k := len(layout.names)
	p := v1Parser{b: body}
	req.vals, req.n = req.vals[:0], 0
	ids, seenInstances, ok := p.body(func() bool {
		if !p.next('[') {
			return false
		}
		if p.ws(); p.next(']') {
			return false // no instances: the row maps' answer
		}
		for {
			p.ws()
			if !p.next('{') {
				return false
			}
			row := len(req.vals)
			for range k {
				req.vals = append(req.vals, math.NaN())
			}
			req.n++
			if p.ws(); !p.next('}') {
				for {
					p.ws()
					key, ok := p.strBytes()
					if !ok {
						return false
					}
					j, ok := layout.index[string(key)]
					if !ok {
						return false
					}
					if p.ws(); !p.next(':') {
						return false
					}
					p.ws()
					v := math.NaN() // null
					if !p.lit("null") {
						if v, ok = p.float(); !ok {
							return false
						}
					}
					req.vals[row+j] = v // the last of a repeated key, as in a map
					if !p.more('}') {
						if p.err {
							return false
						}
						break
					}
				}
			}
			if !p.more(']') {
				return !p.err
			}
		}
	})
	req.ids = ids
	return ok && seenInstances
}

// denseMatrix returns req's rows as the column-major matrix models take,
// in s's storage.
func denseMatrix(req *v1Dense, layout *denseLayout, s *denseScratch) *model.Matrix {
	n, k := req.n, len(layout.names)
	if cap(s.cols) < k {
		s.cols = make([][]float64, k)
	}
	cols := s.cols[:k]
	if n == 1 {
		for j := range cols {
			cols[j] = req.vals[j : j+1 : j+1]
		}
	} else {
		if cap(s.t) < n*k {
			s.t = make([]float64, n*k)
		}
		t := s.t[:n*k]
		for j := range cols {
			c := t[j*n : (j+1)*n : (j+1)*n]
			for i := range c {
				c[i] = req.vals[i*k+j]
			}
			cols[j] = c
		}
	}
	s.x = model.Matrix{Rows: n, Features: layout.names, Cols: cols}
	return &s.x
}

// denseScratch is the storage of a dense request's matrix.
type denseScratch struct {
	x    model.Matrix
	cols [][]float64
	t    []float64
}

// addDense logs n dense rows of k = len(m's inputs) values each, as add
// logs the same rows as maps.
func (l *requestLog) addDense(name string, version int64, variant string, m *model.Model, vals []float64, n int, preds []float64, ids []string, el time.Duration, at time.Time) {
	key, b := l.buffer(name, version, m)
	k := len(b.inputs)
	latency := float64(el) / 1e6 / float64(n)
	ms := at.UnixMilli()
	for i := range n {
		c := b.chunk()
		for j := range k {
			c.floats[j] = append(c.floats[j], vals[i*k+j])
		}
		c.appendMeta(preds[i], version, variant, latency, ms, ids[i])
	}
	l.filled(key, b, n)
}

// denseRows returns req's rows as maps (for a deployment that changed
// under the request).
func denseRows(req *v1Dense, layout *denseLayout) []map[string]any {
	k := len(layout.names)
	rows := make([]map[string]any, req.n)
	for i := range rows {
		rows[i] = make(map[string]any, k)
		for j, n := range layout.names {
			if v := req.vals[i*k+j]; !math.IsNaN(v) {
				rows[i][n] = v
			}
		}
	}
	return rows
}

// denseScratches recycles denseScratch values.
var denseScratches = sync.Pool{New: func() any { return new(denseScratch) }}

// score predicts in's dense rows with mdl.
func (in predictInput) score(mdl *model.Model) (model.Scores, error) {
	sc := denseScratches.Get().(*denseScratch)
	defer denseScratches.Put(sc)
	x := denseMatrix(in.dense, in.layout, sc)
	out := make([]float64, in.dense.n)
	err := mdl.PredictMatrix(x, out)
	sc.x = model.Matrix{}
	return model.Scores{Values: out}, err
}
