package dataset

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Take returns a new record with rec's rows at the given indices, in that
// order (indices may repeat). The caller releases it.
func Take(rec arrow.Record, idx []int) (arrow.Record, error) {
	n := int(rec.NumRows())
	for _, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("take: row %d out of range [0, %d)", i, n)
		}
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	mem := memory.DefaultAllocator
	for j := range cols {
		switch c := rec.Column(j).(type) {
		case *array.Float64:
			cols[j] = take(array.NewFloat64Builder(mem), c, idx)
		case *array.Int64:
			cols[j] = take(array.NewInt64Builder(mem), c, idx)
		case *array.Boolean:
			cols[j] = take(array.NewBooleanBuilder(mem), c, idx)
		case *array.String:
			cols[j] = take(array.NewStringBuilder(mem), c, idx)
		default:
			return nil, fmt.Errorf("take: column %s has unsupported type %s", rec.ColumnName(j), c.DataType())
		}
	}
	return array.NewRecord(rec.Schema(), cols, int64(len(idx))), nil
}

// valueBuilder is an Arrow builder of values of type T.
type valueBuilder[T any] interface {
	array.Builder
	Append(T)
}

// take copies src's values at idx (nulls stay null) with b.
func take[T any, B valueBuilder[T]](b B, src interface {
	arrow.Array
	Value(int) T
}, idx []int) arrow.Array {
	defer b.Release()
	b.Reserve(len(idx))
	for _, i := range idx {
		if src.IsNull(i) {
			b.AppendNull()
		} else {
			b.Append(src.Value(i))
		}
	}
	return b.NewArray()
}
