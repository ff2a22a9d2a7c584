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
	for j := range cols {
		src := rec.Column(j)
		switch c := src.(type) {
		case *array.Float64:
			b := array.NewFloat64Builder(memory.DefaultAllocator)
			b.Reserve(len(idx))
			for _, i := range idx {
				if c.IsNull(i) {
					b.AppendNull()
				} else {
					b.UnsafeAppend(c.Value(i))
				}
			}
			cols[j] = b.NewArray()
			b.Release()
		case *array.Int64:
			b := array.NewInt64Builder(memory.DefaultAllocator)
			b.Reserve(len(idx))
			for _, i := range idx {
				if c.IsNull(i) {
					b.AppendNull()
				} else {
					b.UnsafeAppend(c.Value(i))
				}
			}
			cols[j] = b.NewArray()
			b.Release()
		case *array.Boolean:
			b := array.NewBooleanBuilder(memory.DefaultAllocator)
			b.Reserve(len(idx))
			for _, i := range idx {
				if c.IsNull(i) {
					b.AppendNull()
				} else {
					b.UnsafeAppend(c.Value(i))
				}
			}
			cols[j] = b.NewArray()
			b.Release()
		case *array.String:
			b := array.NewStringBuilder(memory.DefaultAllocator)
			b.Reserve(len(idx))
			for _, i := range idx {
				if c.IsNull(i) {
					b.AppendNull()
				} else {
					b.Append(c.Value(i))
				}
			}
			cols[j] = b.NewArray()
			b.Release()
		default:
			return nil, fmt.Errorf("take: column %s has unsupported type %s", rec.ColumnName(j), src.DataType())
		}
	}
	out := array.NewRecord(rec.Schema(), cols, int64(len(idx)))
	return out, nil
}
