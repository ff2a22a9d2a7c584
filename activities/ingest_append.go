package activities

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// appendRows writes base's rows followed by the rows of extras into out,
// with one more column, pipelines.SourceColumn: SourceTraining for base's
// rows and SourceAppended for the others (a retrain's new labelled rows,
// which evaluate's holdout: recent selects). Extra rows are aligned to
// base's schema by column name: a column they lack is null, a column base
// lacks is dropped, numbers convert between int64 and float64 (a
// non-integral float into an int64 column is null), booleans read as 1/0
// or "true"/"false". base must not already have the source column.
func appendRows(ctx context.Context, base string, extras []string, out string) (dataset.Info, error) {
	r, err := dataset.OpenParquet(base)
	if err != nil {
		return dataset.Info{}, err
	}
	defer r.Close()
	schema := r.Schema()
	if schema.Index(pipelines.SourceColumn) >= 0 {
		return dataset.Info{}, fmt.Errorf("the dataset already has a %s column: it was appended to before", pipelines.SourceColumn)
	}
	outSchema := dataset.Schema{Fields: append(append([]dataset.Field(nil), schema.Fields...), dataset.Field{Name: pipelines.SourceColumn, Type: dataset.String})}
	w, err := dataset.CreateParquet(out, outSchema, dataset.WriterOptions{})
	if err != nil {
		return dataset.Info{}, err
	}
	defer w.Abort()
	write := func(rec arrow.Record, source string) error {
		n := int(rec.NumRows())
		src := make([]string, n)
		for i := range src {
			src[i] = source
		}
		cols := make([]arrow.Array, 0, len(outSchema.Fields))
		for i := range schema.Fields {
			c := rec.Column(i)
			c.Retain()
			cols = append(cols, c)
		}
		cols = append(cols, dataset.StringArray(src, nil))
		defer func() {
			for _, c := range cols {
				c.Release()
			}
		}()
		out, err := dataset.NewRecord(outSchema, cols)
		if err != nil {
			return err
		}
		defer out.Release()
		return w.Write(out)
	}
	for g := 0; g < r.NumRowGroups(); g++ {
		if err := r.ScanRowGroup(ctx, g, nil, dataset.DefaultBatchRows, func(rec arrow.Record) error {
			return write(rec, pipelines.SourceTraining)
		}); err != nil {
			return dataset.Info{}, err
		}
	}
	for _, path := range extras {
		er, err := dataset.OpenParquet(path)
		if err != nil {
			return dataset.Info{}, fmt.Errorf("appended data %s: %w", path, err)
		}
		esch := er.Schema()
		var read []string
		for _, f := range schema.Fields {
			if esch.Index(f.Name) >= 0 {
				read = append(read, f.Name)
			}
		}
		for g := 0; g < er.NumRowGroups(); g++ {
			err := er.ScanRowGroup(ctx, g, read, dataset.DefaultBatchRows, func(rec arrow.Record) error {
				aligned, err := alignRecord(rec, schema)
				if err != nil {
					return fmt.Errorf("appended data %s: %w", path, err)
				}
				defer aligned.Release()
				return write(aligned, pipelines.SourceAppended)
			})
			if err != nil {
				er.Close()
				return dataset.Info{}, err
			}
		}
		er.Close()
	}
	return w.Commit()
}

// alignRecord returns rec's columns in schema's order and types (see
// appendRows).
func alignRecord(rec arrow.Record, schema dataset.Schema) (arrow.Record, error) {
	n := int(rec.NumRows())
	idx := map[string]int{}
	for i, f := range rec.Schema().Fields() {
		idx[f.Name] = i
	}
	cols := make([]arrow.Array, 0, len(schema.Fields))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, f := range schema.Fields {
		i, ok := idx[f.Name]
		var src arrow.Array
		if ok {
			src = rec.Column(i)
		}
		c, err := convertColumn(src, f, n)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return dataset.NewRecord(schema, cols)
}

// convertColumn converts src (nil: all null) to a column of f's type.
func convertColumn(src arrow.Array, f dataset.Field, n int) (arrow.Array, error) {
	valid := make([]bool, n)
	switch f.Type {
	case dataset.Float64:
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = math.NaN()
		}
		if src != nil {
			for i := 0; i < n; i++ {
				if v, ok := numberAt(src, i); ok {
					vals[i] = v
				}
			}
		}
		return dataset.Float64ArrayNullNaN(vals), nil
	case dataset.Int64:
		vals := make([]int64, n)
		if src != nil {
			for i := 0; i < n; i++ {
				if v, ok := numberAt(src, i); ok && v == math.Trunc(v) && math.Abs(v) < 1<<62 {
					vals[i], valid[i] = int64(v), true
				}
			}
		}
		return dataset.Int64Array(vals, valid), nil
	case dataset.Bool:
		vals := make([]bool, n)
		if src != nil {
			for i := 0; i < n; i++ {
				if b, ok := src.(*array.Boolean); ok {
					if b.IsValid(i) {
						vals[i], valid[i] = b.Value(i), true
					}
					continue
				}
				if s, ok := src.(*array.String); ok && s.IsValid(i) {
					if v, err := strconv.ParseBool(s.Value(i)); err == nil {
						vals[i], valid[i] = v, true
					}
					continue
				}
				if v, ok := numberAt(src, i); ok {
					vals[i], valid[i] = v != 0, true
				}
			}
		}
		return dataset.BoolArray(vals, valid), nil
	case dataset.String:
		vals := make([]string, n)
		if src != nil {
			for i := 0; i < n; i++ {
				if !src.IsValid(i) {
					continue
				}
				valid[i] = true
				switch c := src.(type) {
				case *array.String:
					vals[i] = c.Value(i)
				case *array.Int64:
					vals[i] = strconv.FormatInt(c.Value(i), 10)
				case *array.Float64:
					vals[i] = strconv.FormatFloat(c.Value(i), 'g', -1, 64)
				case *array.Boolean:
					vals[i] = strconv.FormatBool(c.Value(i))
				default:
					valid[i] = false
				}
			}
		}
		return dataset.StringArray(vals, valid), nil
	}
	return nil, fmt.Errorf("column %s: unsupported type %s", f.Name, f.Type)
}

// numberAt reads row i of a numeric or boolean column as a float64.
func numberAt(a arrow.Array, i int) (float64, bool) {
	if !a.IsValid(i) {
		return 0, false
	}
	switch c := a.(type) {
	case *array.Float64:
		v := c.Value(i)
		return v, !math.IsNaN(v)
	case *array.Int64:
		return float64(c.Value(i)), true
	case *array.Boolean:
		if c.Value(i) {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
