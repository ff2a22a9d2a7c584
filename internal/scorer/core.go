package scorer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// The scoring pipeline, shared by the score step (one activity, or a
// fan-out of shards) and `kiln score`:
//
//	Parquet row group ─ScanRowGroup→ batch of batchRows rows (buffers reused)
//	  → check: every raw float input is finite (NaN/±Inf is an error)
//	  → transforms (the bundle's fitted preprocessing) → predictor
//	  → output row group: passthrough columns, prediction, model, model_version
//
// A multiclass model's prediction is the most probable class's name (a
// string), followed by one probability_<class> column per class, in the
// bundle's class order.
//
// Memory is bounded by batchRows rows of the columns read plus one page per
// column, whatever the size of the input's row groups or files.

// scoreBatchRows is how many rows the scorer reads, transforms, predicts and
// writes at a time; each batch becomes one row group of the output.
const scoreBatchRows = 1 << 16

// Output column names of a scored file, after the passthrough columns.
const (
	colPrediction   = "prediction"
	colModel        = "model"
	colModelVersion = "model_version"
	// colProbabilityPrefix starts the name of a multiclass model's
	// per-class probability columns: probability_<class>.
	colProbabilityPrefix = "probability_"
)

// scorer scores batches of raw rows with one model.
type scorer struct {
	m       *model.Model
	name    string
	version int64
	pass    []string
	cols    []string // columns read: the model's inputs, then passthrough extras
	out     dataset.Schema
	outA    *arrow.Schema
	floats  []int // indexes in cols of the Float64 inputs (checked for NaN/Inf)
	batch   int

	preds    []float64
	k        int         // classes of a multiclass model, else 0
	proba    []float64   // multiclass: batch×k probabilities, row-major
	probaT   [][]float64 // multiclass: k columns of batch probabilities
	identity bool        // the transforms pass Float64 inputs through unchanged
	matrix   transform.Matrix
	names    arrow.Array // batch copies of the model name, sliced per batch
	versions arrow.Array
}

// newScorer prepares scoring with m, registered as name:version, copying the
// passthrough columns to the output.
func newScorer(m *model.Model, name string, version int64, passthrough []string, batch int) (*scorer, error) {
	s := &scorer{m: m, name: name, version: version, pass: passthrough, batch: batch}
	seen := map[string]bool{}
	for _, f := range m.Manifest.Inputs {
		seen[f.Name] = true
		if f.Type == dataset.Float64 {
			s.floats = append(s.floats, len(s.cols))
		}
		s.cols = append(s.cols, f.Name)
	}
	passSeen := map[string]bool{}
	outCols := s.outputColumns()
	for _, c := range passthrough {
		switch {
		case slices.Contains(outCols, c):
			return nil, fmt.Errorf("passthrough column %q collides with an output column (%s)", c, strings.Join(outCols, ", "))
		case passSeen[c]:
			return nil, fmt.Errorf("passthrough column %q is listed twice", c)
		}
		passSeen[c] = true
		if !seen[c] {
			seen[c] = true
			s.cols = append(s.cols, c)
		}
	}
	s.preds = make([]float64, batch)
	if s.k = m.NumClass(); s.k > 0 {
		s.proba = make([]float64, batch*s.k)
		s.probaT = make([][]float64, s.k)
		for c := range s.probaT {
			s.probaT[c] = make([]float64, batch)
		}
	}
	s.identity = identityTransforms(m.Manifest.Transforms)
	names := make([]string, batch)
	versions := make([]int64, batch)
	for i := range names {
		names[i], versions[i] = name, version
	}
	s.names, s.versions = dataset.StringArray(names, nil), dataset.Int64Array(versions, nil)
	return s, nil
}

// check verifies that a file's schema has what the scorer reads, and sets
// the output schema from it. Errors name the file and the column.
func (s *scorer) check(path string, r *dataset.Reader) error {
	schema := r.Schema()
	for _, in := range s.m.Manifest.Inputs {
		i := schema.Index(in.Name)
		if i < 0 {
			if slices.Contains(r.Unsupported(), in.Name) {
				return fmt.Errorf("%s: column %q has a type Kiln cannot read; the model needs %s", path, in.Name, in.Type)
			}
			return fmt.Errorf("%s: the model needs column %q (%s), which the file lacks (columns: %v)", path, in.Name, in.Type, schema.Names())
		}
		if got := schema.Fields[i].Type; !compatible(in.Type, got) {
			return fmt.Errorf("%s: column %q is %s, the model needs %s", path, in.Name, got, in.Type)
		}
	}
	var fields []dataset.Field
	for _, c := range s.pass {
		i := schema.Index(c)
		if i < 0 {
			return fmt.Errorf("%s: passthrough column %q not found (columns: %v)", path, c, schema.Names())
		}
		fields = append(fields, schema.Fields[i])
	}
	out := dataset.Schema{Fields: fields}
	for _, c := range s.outputColumns() {
		f := dataset.Field{Name: c, Type: dataset.Float64}
		switch {
		case c == colModel || c == colPrediction && s.k > 0:
			f.Type = dataset.String
		case c == colModelVersion:
			f.Type = dataset.Int64
		}
		out.Fields = append(out.Fields, f)
	}
	if s.outA != nil && !slices.Equal(out.Fields, s.out.Fields) {
		return fmt.Errorf("%s: passthrough columns have types %v, other input files have %v", path, fields, s.out.Fields[:len(fields)])
	}
	s.out, s.outA = out, out.Arrow()
	return nil
}

// writerOptions configures the writer of a scored output: the columns the
// scorer adds are never null, so they are declared REQUIRED (no definition
// levels to write or read).
func (s *scorer) writerOptions() dataset.WriterOptions {
	return dataset.WriterOptions{Required: s.outputColumns()}
}

// outputColumns names the columns the scorer adds after the passthrough
// columns: prediction, a multiclass model's probability_<class> columns,
// model and model_version.
func (s *scorer) outputColumns() []string {
	cols := []string{colPrediction}
	for _, c := range s.m.Manifest.Classes {
		if s.m.Manifest.Task == model.TaskMulticlass {
			cols = append(cols, colProbabilityPrefix+c)
		}
	}
	return append(cols, colModel, colModelVersion)
}

// compatible reports whether a file column of type got can feed a model
// input of type want (the transforms read integers as numbers).
func compatible(want, got dataset.Type) bool {
	return want == got || (want == dataset.Float64 && got == dataset.Int64)
}

// scoreRowGroup scores row group g of r (checked with check) into w, one
// output row group per batch, and returns the rows written. A problem with
// the data is an error naming the file, the row group, the column and the
// row (counted from 0 within the file).
func (s *scorer) scoreRowGroup(ctx context.Context, r *dataset.Reader, g int, first int64, w *dataset.Writer) (int64, error) {
	var done int64
	err := r.ScanRowGroup(ctx, g, s.cols, s.batch, func(rec arrow.Record) error {
		fused := s.predictChecksFinite(rec)
		if !fused {
			if err := s.checkFinite(rec, first+done); err != nil {
				return &dataError{err}
			}
		}
		out, err := s.scoreBatch(rec)
		if err != nil {
			if fused { // name the column and file row as checkFinite does
				if ferr := s.checkFinite(rec, first+done); ferr != nil {
					return &dataError{ferr}
				}
			}
			return &dataError{fmt.Errorf("rows %d-%d: %w", first+done, first+done+rec.NumRows()-1, err)}
		}
		err = w.Write(out)
		out.Release()
		if err != nil {
			return err
		}
		done += rec.NumRows()
		return nil
	})
	var de *dataError
	if errors.As(err, &de) {
		return done, &dataError{fmt.Errorf("%s, row group %d: %w", r.Path(), g, de.err)}
	}
	return done, err
}

// dataError marks a problem with the scored data (as opposed to I/O).
type dataError struct{ err error }

func (e *dataError) Error() string { return e.err.Error() }
func (e *dataError) Unwrap() error { return e.err }

// checkFinite rejects NaN and ±Inf in the raw float inputs: Parquet marks
// a missing value as null (which the transforms impute or the estimator
// handles), and NaN or an infinity would otherwise turn into a silently
// wrong prediction. row0 is the file row of rec's first row.
func (s *scorer) checkFinite(rec arrow.Record, row0 int64) error {
	for _, c := range s.floats {
		a, ok := rec.Column(c).(*array.Float64)
		if !ok {
			continue // an Int64 column feeding a float input
		}
		vals := a.Float64Values()
		if allFinite(vals) {
			continue
		}
		for i, v := range vals {
			if (math.IsNaN(v) || math.IsInf(v, 0)) && a.IsValid(i) {
				return fmt.Errorf("column %q, row %d: %v is not a valid feature value (store missing values as null)", s.cols[c], row0+int64(i), v)
			}
		}
	}
	return nil
}

// predictChecksFinite reports whether predicting rec rejects every NaN or
// ±Inf raw float input by itself, so checkFinite need only run when the
// prediction fails: the estimator checks (model.ChecksFinite) and the
// feature matrix is the raw inputs themselves (see features).
func (s *scorer) predictChecksFinite(rec arrow.Record) bool {
	if !s.identity || !s.m.ChecksFinite() {
		return false
	}
	for j := range s.m.Manifest.Transforms.Inputs {
		if a, ok := rec.Column(j).(*array.Float64); !ok || a.NullN() > 0 {
			return false
		}
	}
	return true
}

// scoreBatch predicts one batch and builds its output record. The record
// shares the scorer's buffers: write it before scoring the next batch.
func (s *scorer) scoreBatch(rec arrow.Record) (arrow.Record, error) {
	n := int(rec.NumRows())
	x, err := s.features(rec)
	if err != nil {
		return nil, err
	}
	if n > len(s.preds) {
		return nil, fmt.Errorf("batch of %d rows, scorer holds %d", n, len(s.preds))
	}
	preds := s.preds[:n]
	cols := make([]arrow.Array, 0, len(s.out.Fields))
	for _, c := range s.pass {
		cols = append(cols, rec.Column(slices.Index(s.cols, c)))
	}
	var made []arrow.Array // released once the record holds them
	if s.k == 0 {
		if err := s.m.PredictMatrix(x, preds); err != nil {
			return nil, err
		}
		made = append(made, float64Array(preds))
	} else {
		proba := s.proba[:n*s.k]
		if err := s.m.PredictProbaMatrix(x, proba); err != nil {
			return nil, err
		}
		model.Argmax(proba, s.k, preds)
		labels := make([]string, n)
		for i, p := range preds {
			labels[i] = s.m.Manifest.Classes[int(p)]
		}
		made = append(made, dataset.StringArray(labels, nil))
		for c, col := range s.probaT {
			col = col[:n]
			for i := range col {
				col[i] = proba[i*s.k+c]
			}
			made = append(made, float64Array(col))
		}
	}
	made = append(made, array.NewSlice(s.names, 0, int64(n)), array.NewSlice(s.versions, 0, int64(n)))
	cols = append(cols, made...)
	out := array.NewRecord(s.outA, cols, int64(n))
	for _, a := range made {
		a.Release()
	}
	return out, nil
}

// float64Array wraps vals (not copied) as an Arrow array without nulls.
func float64Array(vals []float64) arrow.Array {
	d := array.NewData(arrow.PrimitiveTypes.Float64, len(vals),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vals))}, nil, 0, 0)
	a := array.NewFloat64Data(d)
	d.Release()
	return a
}

// identityTransforms reports whether f has no steps and its features are
// its inputs, all Float64, in order: the feature matrix is then the input
// columns themselves.
func identityTransforms(f *transform.Fitted) bool {
	if f == nil || len(f.Steps) > 0 || len(f.Features) != len(f.Inputs) {
		return false
	}
	for i, in := range f.Inputs {
		if in.Type != dataset.Float64 || f.Features[i] != in.Name {
			return false
		}
	}
	return true
}

// features builds the feature matrix of a batch: with identity transforms
// and no nulls, the input columns' values themselves (no copy; the columns
// are the first len(Inputs) of rec, see newScorer); otherwise the bundle's
// transforms. Both give the same values: transforms copy a Float64 column
// as it is, with NaN for nulls.
func (s *scorer) features(rec arrow.Record) (*transform.Matrix, error) {
	if s.identity {
		ins := s.m.Manifest.Transforms.Inputs
		cols := s.matrix.Cols[:0]
		for j := range ins {
			a, ok := rec.Column(j).(*array.Float64)
			if !ok || a.NullN() > 0 {
				cols = nil
				break
			}
			cols = append(cols, a.Float64Values())
		}
		if cols != nil {
			s.matrix = transform.Matrix{Rows: int(rec.NumRows()), Features: s.m.Manifest.Transforms.Features, Cols: cols}
			return &s.matrix, nil
		}
	}
	return s.m.Manifest.Transforms.Apply(rec)
}

// allFinite reports whether no value of vals is NaN or ±Inf: v*0 is 0 for a
// finite v and NaN otherwise, and NaN survives the sums. Four independent
// accumulators and no branch per value keep it near memory speed.
func allFinite(vals []float64) bool {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(vals); i += 4 {
		v := vals[i : i+4 : i+4]
		a0 += v[0] * 0
		a1 += v[1] * 0
		a2 += v[2] * 0
		a3 += v[3] * 0
	}
	for ; i < len(vals); i++ {
		a0 += vals[i] * 0
	}
	return a0+a1+a2+a3 == 0
}
