package labels

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// ErrNoRows is returned (wrapped) by JoinRows when no label joined a
// prediction in range: there is nothing to write.
var ErrNoRows = errors.New("no joined rows")

// JoinRowsInput says what to join and where to write the rows.
type JoinRowsInput struct {
	JoinInput
	// Target is the name of the label column written (the model's target,
	// e.g. "churned"); it must not be an input column's name.
	Target string
	// Output is the Parquet file to write. It is written to a temporary
	// file beside it and renamed, so it is either absent or whole.
	Output string
	// Features are the request log columns to write, in this order. Empty
	// means every column not starting with LogColumnPrefix (the model's
	// inputs), in order of first appearance over the files read.
	Features []string
	// Classes, for a multiclass model, are its classes: labels are class
	// indexes (see PushInput.Classes) and the target column is written as
	// the class names, a string column as the training data's target. A
	// label that is no class index is an error.
	Classes []string
}

// JoinRowsResult is the join and the dataset written.
type JoinRowsResult struct {
	JoinResult
	// Dataset describes the file written; Dataset.SHA256 identifies it.
	Dataset dataset.Info `json:"dataset"`
}

// errDone stops a row group scan early.
var errDone = errors.New("done")

// want is one request log row to write, with its label.
type want struct {
	row   int64
	id    string
	label float64
}

// JoinRows joins as Join does and writes the joined rows whose predictions
// are in [From, To) — each prediction's input features as the request log
// recorded them, plus its label as in.Target — to the Parquet file
// in.Output: "the served rows whose labels joined", ready for a retrain.
//
// Rows are written in request log order (in.RequestLogs, then row order),
// in row groups of a fixed size, so the file's bytes, and its SHA-256,
// depend only on the inputs: publish it content-addressed like any
// dataset. A feature missing from a request log file (one written by a
// version with other inputs) is null in that file's rows; a column whose
// type differs between files is an error. When no row joined, nothing is
// written and the error wraps ErrNoRows (the result still holds the
// counts).
func JoinRows(ctx context.Context, in JoinRowsInput) (JoinRowsResult, error) {
	if in.Target == "" || in.Output == "" {
		return JoinRowsResult{}, errors.New("join rows: a target column name and an output path are required")
	}
	if strings.HasPrefix(in.Target, LogColumnPrefix) {
		return JoinRowsResult{}, fmt.Errorf("join rows: target %q must not start with %q", in.Target, LogColumnPrefix)
	}
	j, err := join(ctx, in.JoinInput)
	if err != nil {
		return JoinRowsResult{}, err
	}
	res := JoinRowsResult{JoinResult: j.res}
	byFile := map[int][]want{}
	for i := range j.entries {
		if e := &j.entries[i]; e.keep {
			byFile[int(e.file)] = append(byFile[int(e.file)], want{row: e.row, id: e.id, label: e.label})
		}
	}
	if len(byFile) == 0 {
		return res, fmt.Errorf("join rows into %s: %w (%d labels: %d joined in range)", in.Output, ErrNoRows, j.res.Counts.Total, len(j.res.Pairs))
	}
	files := make([]int, 0, len(byFile))
	for f, ws := range byFile {
		files = append(files, f)
		slices.SortFunc(ws, func(a, b want) int { return cmp.Compare(a.row, b.row) })
	}
	slices.Sort(files)

	schema, err := rowsSchema(in, files)
	if err != nil {
		return res, err
	}
	w, err := dataset.CreateParquet(in.Output, schema, dataset.WriterOptions{Required: []string{in.Target}})
	if err != nil {
		return res, fmt.Errorf("join rows: %w", err)
	}
	defer w.Abort()
	out := newRowsBuilder(schema, w)
	out.classes = in.Classes
	for _, f := range files {
		if err := out.copyRows(ctx, in.RequestLogs[f], byFile[f]); err != nil {
			return res, err
		}
	}
	if err := out.flush(); err != nil {
		return res, err
	}
	info, err := w.Commit()
	if err != nil {
		return res, fmt.Errorf("join rows: %w", err)
	}
	res.Dataset = info
	return res, nil
}

// rowsSchema is the output schema: the features, typed from the request
// logs that contribute rows, then the target.
func rowsSchema(in JoinRowsInput, files []int) (dataset.Schema, error) {
	var fields []dataset.Field
	typeOf := map[string]dataset.Type{}
	from := map[string]string{}
	for _, f := range files {
		path := in.RequestLogs[f]
		r, err := dataset.OpenParquet(path)
		if err != nil {
			return dataset.Schema{}, fmt.Errorf("request log %s: %w", path, err)
		}
		schema := r.Schema()
		r.Close()
		for _, fld := range schema.Fields {
			if t, ok := typeOf[fld.Name]; ok {
				if t != fld.Type {
					return dataset.Schema{}, fmt.Errorf("join rows: column %q is %s in %s but %s in %s", fld.Name, t, from[fld.Name], fld.Type, path)
				}
				continue
			}
			typeOf[fld.Name], from[fld.Name] = fld.Type, path
			if len(in.Features) == 0 && !strings.HasPrefix(fld.Name, LogColumnPrefix) {
				fields = append(fields, fld)
			}
		}
	}
	if len(in.Features) > 0 {
		for _, name := range in.Features {
			t, ok := typeOf[name]
			if !ok {
				return dataset.Schema{}, fmt.Errorf("join rows: feature %q is in none of the request logs with joined rows", name)
			}
			fields = append(fields, dataset.Field{Name: name, Type: t})
		}
	}
	for _, f := range fields {
		if f.Name == in.Target {
			return dataset.Schema{}, fmt.Errorf("join rows: target %q is also an input column; name the label column otherwise", in.Target)
		}
	}
	target := dataset.Field{Name: in.Target, Type: dataset.Float64}
	if len(in.Classes) > 0 {
		target.Type = dataset.String
	}
	fields = append(fields, target)
	s := dataset.Schema{Fields: fields}
	if err := s.Validate(); err != nil {
		return dataset.Schema{}, fmt.Errorf("join rows: %w", err)
	}
	return s, nil
}

// column accumulates one output column.
type column struct {
	typ   dataset.Type
	f64   []float64 // NaN is null
	i64   []int64
	str   []string
	b     []bool
	valid []bool
}

func (c *column) appendNull() {
	switch c.typ {
	case dataset.Float64:
		c.f64 = append(c.f64, math.NaN())
		return
	case dataset.Int64:
		c.i64 = append(c.i64, 0)
	case dataset.String:
		c.str = append(c.str, "")
	case dataset.Bool:
		c.b = append(c.b, false)
	}
	c.valid = append(c.valid, false)
}

// appendFrom appends value i of a (of the column's type).
func (c *column) appendFrom(a arrow.Array, i int) {
	if a.IsNull(i) {
		c.appendNull()
		return
	}
	switch a := a.(type) {
	case *array.Float64:
		c.f64 = append(c.f64, a.Value(i))
		return
	case *array.Int64:
		c.i64 = append(c.i64, a.Value(i))
	case *array.String:
		c.str = append(c.str, strings.Clone(a.Value(i)))
	case *array.Boolean:
		c.b = append(c.b, a.Value(i))
	}
	c.valid = append(c.valid, true)
}

func (c *column) array() arrow.Array {
	switch c.typ {
	case dataset.Float64:
		return dataset.Float64ArrayNullNaN(c.f64)
	case dataset.Int64:
		return dataset.Int64Array(c.i64, c.valid)
	case dataset.String:
		return dataset.StringArray(c.str, c.valid)
	}
	return dataset.BoolArray(c.b, c.valid)
}

func (c *column) reset() {
	c.f64, c.i64, c.str, c.b, c.valid = c.f64[:0], c.i64[:0], c.str[:0], c.b[:0], c.valid[:0]
}

// rowsBuilder writes the output in row groups of batchRows rows.
type rowsBuilder struct {
	schema dataset.Schema
	w      *dataset.Writer
	cols   []column // features, then the target
	n      int
	// classes name a multiclass target's class indexes (JoinRowsInput).
	classes []string
}

func newRowsBuilder(schema dataset.Schema, w *dataset.Writer) *rowsBuilder {
	b := &rowsBuilder{schema: schema, w: w, cols: make([]column, len(schema.Fields))}
	for i, f := range schema.Fields {
		b.cols[i].typ = f.Type
	}
	return b
}

func (b *rowsBuilder) flush() error {
	if b.n == 0 {
		return nil
	}
	arrs := make([]arrow.Array, len(b.cols))
	for i := range b.cols {
		arrs[i] = b.cols[i].array()
	}
	rec, err := dataset.NewRecord(b.schema, arrs)
	for _, a := range arrs {
		a.Release()
	}
	if err != nil {
		return fmt.Errorf("join rows: %w", err)
	}
	defer rec.Release()
	if err := b.w.Write(rec); err != nil {
		return fmt.Errorf("join rows: %w", err)
	}
	for i := range b.cols {
		b.cols[i].reset()
	}
	b.n = 0
	return nil
}

// copyRows appends the wanted rows (sorted by row) of one request log.
func (b *rowsBuilder) copyRows(ctx context.Context, path string, rows []want) error {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return fmt.Errorf("request log %s: %w", path, err)
	}
	defer r.Close()
	schema := r.Schema()
	features := b.schema.Fields[:len(b.schema.Fields)-1]
	names := []string{LogPredictionID}
	src := make([]int, len(features)) // record column of each feature, or -1
	for i, f := range features {
		src[i] = -1
		if schema.Index(f.Name) >= 0 {
			src[i] = len(names)
			names = append(names, f.Name)
		}
	}
	k := 0
	var start int64
	for g := 0; g < r.NumRowGroups() && k < len(rows); g++ {
		n := r.RowGroupRows(g)
		if rows[k].row >= start+n {
			start += n
			continue
		}
		batchStart := start
		err := r.ScanRowGroup(ctx, g, names, batchRows, func(rec arrow.Record) error {
			end := batchStart + rec.NumRows()
			ids := rec.Column(0).(*array.String)
			for ; k < len(rows) && rows[k].row < end; k++ {
				i := int(rows[k].row - batchStart)
				if ids.IsNull(i) || ids.Value(i) != rows[k].id {
					return fmt.Errorf("request log %s: row %d changed during the join (prediction ID %q expected)", path, rows[k].row+1, rows[k].id)
				}
				for c := range features {
					if src[c] < 0 {
						b.cols[c].appendNull()
					} else {
						b.cols[c].appendFrom(rec.Column(src[c]), i)
					}
				}
				t := &b.cols[len(b.cols)-1]
				if len(b.classes) > 0 {
					l := rows[k].label
					c := int(l)
					if float64(c) != l || c < 0 || c >= len(b.classes) {
						return fmt.Errorf("label %v of prediction %q is not a class index of the model's %d classes", l, rows[k].id, len(b.classes))
					}
					t.str, t.valid = append(t.str, b.classes[c]), append(t.valid, true)
				} else {
					t.f64 = append(t.f64, rows[k].label)
				}
				if b.n++; b.n == batchRows {
					if err := b.flush(); err != nil {
						return err
					}
				}
			}
			batchStart = end
			if k == len(rows) || rows[k].row >= start+n {
				return errDone // the rest of the row group is not wanted
			}
			return nil
		})
		if err != nil && err != errDone {
			return err
		}
		start += n
	}
	if k < len(rows) {
		return fmt.Errorf("request log %s: has fewer rows than during the join", path)
	}
	return nil
}
