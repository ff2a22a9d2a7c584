package dataset

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// typeOfArrow maps an Arrow data type to a column type.
func typeOfArrow(dt arrow.DataType) (Type, bool) {
	switch dt.ID() {
	case arrow.FLOAT64:
		return Float64, true
	case arrow.INT64:
		return Int64, true
	case arrow.STRING:
		return String, true
	case arrow.BOOL:
		return Bool, true
	}
	return "", false
}

// SchemaFromArrow converts an Arrow schema whose fields are float64, int64,
// utf8 or boolean into a Schema. Any other field type is an error.
func SchemaFromArrow(as *arrow.Schema) (Schema, error) {
	if as == nil {
		return Schema{}, errors.New("converting arrow schema: nil schema")
	}
	s := Schema{Fields: make([]Field, as.NumFields())}
	for i, f := range as.Fields() {
		t, ok := typeOfArrow(f.Type)
		if !ok {
			return Schema{}, fmt.Errorf("converting arrow schema: field %q has unsupported type %s", f.Name, f.Type)
		}
		s.Fields[i] = Field{Name: f.Name, Type: t}
	}
	if err := s.Validate(); err != nil {
		return Schema{}, fmt.Errorf("converting arrow schema: %w", err)
	}
	return s, nil
}

// column returns the column of rec with the given name.
func column(rec arrow.Record, name string) (arrow.Array, error) {
	if rec == nil {
		return nil, fmt.Errorf("column %q: nil record", name)
	}
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, fmt.Errorf("no column %q in record", name)
	}
	return rec.Column(idx[0]), nil
}

// Float64s returns the named column of rec as float64 values, nulls as NaN.
// Int64 columns are converted, Bool columns become 1 and 0; a missing or
// String column is an error naming the column.
func Float64s(rec arrow.Record, name string) ([]float64, error) {
	col, err := column(rec, name)
	if err != nil {
		return nil, err
	}
	out := make([]float64, col.Len())
	switch a := col.(type) {
	case *array.Float64:
		copy(out, a.Float64Values())
	case *array.Int64:
		for i, v := range a.Int64Values() {
			out[i] = float64(v)
		}
	case *array.Boolean:
		for i := range out {
			if a.Value(i) {
				out[i] = 1
			}
		}
	case *array.String:
		return nil, fmt.Errorf("column %q is a string column, not numeric", name)
	default:
		return nil, fmt.Errorf("column %q has unsupported type %s", name, col.DataType())
	}
	if col.NullN() > 0 {
		nan := math.NaN()
		for i := range out {
			if col.IsNull(i) {
				out[i] = nan
			}
		}
	}
	return out, nil
}

// Strings returns the named column of rec as strings with their validity
// (valid[i] is false for a null, whose value is ""). Bool values are formatted
// as "true"/"false", Int64 and Float64 values with strconv (shortest
// representation, NaN as "NaN"). A missing column is an error.
func Strings(rec arrow.Record, name string) (vals []string, valid []bool, err error) {
	col, err := column(rec, name)
	if err != nil {
		return nil, nil, err
	}
	n := col.Len()
	vals = make([]string, n)
	valid = make([]bool, n)
	for i := range valid {
		valid[i] = col.IsValid(i)
	}
	switch a := col.(type) {
	case *array.String:
		for i := range vals {
			if valid[i] {
				vals[i] = a.Value(i)
			}
		}
	case *array.Boolean:
		for i := range vals {
			if valid[i] {
				vals[i] = strconv.FormatBool(a.Value(i))
			}
		}
	case *array.Int64:
		for i, v := range a.Int64Values() {
			if valid[i] {
				vals[i] = strconv.FormatInt(v, 10)
			}
		}
	case *array.Float64:
		for i, v := range a.Float64Values() {
			if valid[i] {
				vals[i] = strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
	default:
		return nil, nil, fmt.Errorf("column %q has unsupported type %s", name, col.DataType())
	}
	return vals, valid, nil
}

// Float64Array returns a Float64 array holding a copy of vals, without nulls:
// NaN is kept as a value.
func Float64Array(vals []float64) arrow.Array {
	var b columnBuilder
	b.reset(Float64, len(vals))
	b.f64 = append(b.f64, vals...)
	b.n = len(vals)
	return b.finish()
}

// Float64ArrayNullNaN returns a Float64 array holding a copy of vals, with
// every NaN stored as a null.
func Float64ArrayNullNaN(vals []float64) arrow.Array {
	var b columnBuilder
	b.reset(Float64, len(vals))
	for _, v := range vals {
		if math.IsNaN(v) {
			b.appendNull()
		} else {
			b.appendFloat(v)
		}
	}
	return b.finish()
}

// checkValid panics if a validity slice does not match its values; a length
// mismatch is a programming error, like an out-of-range index.
func checkValid(what string, n int, valid []bool) {
	if valid != nil && len(valid) != n {
		panic(fmt.Sprintf("dataset.%s: %d values but %d validity flags", what, n, len(valid)))
	}
}

// Int64Array returns an Int64 array holding a copy of vals; valid[i] false
// makes row i null, and a nil valid means every value is valid. It panics if
// valid is non-nil and of a different length than vals.
func Int64Array(vals []int64, valid []bool) arrow.Array {
	return nullableArray("Int64Array", Int64, vals, valid, (*columnBuilder).appendInt)
}

// StringArray returns a String array of vals; valid[i] false makes row i
// null, and a nil valid means every value is valid. It panics if valid is
// non-nil and of a different length than vals.
func StringArray(vals []string, valid []bool) arrow.Array {
	return nullableArray("StringArray", String, vals, valid, (*columnBuilder).appendString)
}

// BoolArray returns a Bool array of vals; valid[i] false makes row i null,
// and a nil valid means every value is valid. It panics if valid is non-nil
// and of a different length than vals.
func BoolArray(vals []bool, valid []bool) arrow.Array {
	return nullableArray("BoolArray", Bool, vals, valid, (*columnBuilder).appendBool)
}

// nullableArray builds an array of type t from vals and valid (nil: all
// valid) with the builder method add.
func nullableArray[T any](fn string, t Type, vals []T, valid []bool, add func(*columnBuilder, T)) arrow.Array {
	checkValid(fn, len(vals), valid)
	var b columnBuilder
	b.reset(t, len(vals))
	for i, v := range vals {
		if valid != nil && !valid[i] {
			b.appendNull()
		} else {
			add(&b, v)
		}
	}
	return b.finish()
}

// NewRecord assembles cols into a record of the given schema, checking that
// there is one column per field, of the field's type, and that all columns
// have the same length. The record holds its own references to cols; the
// caller releases it.
func NewRecord(schema Schema, cols []arrow.Array) (arrow.Record, error) {
	if err := schema.Validate(); err != nil {
		return nil, fmt.Errorf("building record: %w", err)
	}
	if len(cols) != len(schema.Fields) {
		return nil, fmt.Errorf("building record: %d columns for %d schema fields", len(cols), len(schema.Fields))
	}
	rows := -1
	for i, c := range cols {
		f := schema.Fields[i]
		if c == nil {
			return nil, fmt.Errorf("building record: column %q is nil", f.Name)
		}
		if t, ok := typeOfArrow(c.DataType()); !ok || t != f.Type {
			return nil, fmt.Errorf("building record: column %q is %s, schema says %s", f.Name, c.DataType(), f.Type)
		}
		if rows >= 0 && c.Len() != rows {
			return nil, fmt.Errorf("building record: column %q has %d rows, column %q has %d",
				f.Name, c.Len(), schema.Fields[0].Name, rows)
		}
		rows = c.Len()
	}
	if rows < 0 {
		rows = 0
	}
	return array.NewRecord(schema.Arrow(), cols, int64(rows)), nil
}

// columnBuilder accumulates one column's values in plain Go slices and turns
// them into an Arrow array without copying. The validity bitmap is only
// allocated once a null appears.
type columnBuilder struct {
	typ     Type
	n       int
	capHint int // expected number of rows
	nulls   int
	valid   []byte // validity bitmap (1 = valid); nil while there are no nulls

	f64     []float64
	i64     []int64
	bits    []byte  // Bool values, bit-packed
	strData []byte  // String bytes
	strOff  []int32 // String offsets, len n+1
}

// reset prepares b for a column of type typ expecting about capacity rows.
// It reuses b's slices when their capacity allows.
func (b *columnBuilder) reset(typ Type, capacity int) {
	b.typ = typ
	b.n = 0
	b.capHint = capacity
	b.nulls = 0
	b.valid = nil
	b.f64, b.i64, b.bits, b.strData, b.strOff = b.f64[:0], b.i64[:0], b.bits[:0], b.strData[:0], b.strOff[:0]
	switch typ {
	case Float64:
		b.f64 = grow(b.f64, capacity)
	case Int64:
		b.i64 = grow(b.i64, capacity)
	case Bool:
		b.bits = grow(b.bits, (capacity+7)/8)
	case String:
		b.strOff = append(grow(b.strOff, capacity+1), 0)
	}
}

// grow returns s with room for at least n elements.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s
}

// bitmapLen is the number of bytes holding n bits.
func bitmapLen(n int) int { return (n + 7) / 8 }

// extendBitmap returns bm long enough for n bits, new bits cleared.
func extendBitmap(bm []byte, n int) []byte {
	need := bitmapLen(n)
	for len(bm) < need {
		bm = append(bm, 0)
	}
	return bm
}

// markValid records that rows [b.n-k, b.n) are valid.
func (b *columnBuilder) markValid(k int) {
	if b.valid == nil {
		return
	}
	b.valid = extendBitmap(b.valid, b.n)
	bitutil.SetBitsTo(b.valid, int64(b.n-k), int64(k), true)
}

// appendNull appends a null.
func (b *columnBuilder) appendNull() {
	if b.valid == nil {
		b.valid = make([]byte, bitmapLen(b.n+1), max(bitmapLen(b.n+1), bitmapLen(b.capHint)))
		bitutil.SetBitsTo(b.valid, 0, int64(b.n), true)
	}
	switch b.typ {
	case Float64:
		b.f64 = append(b.f64, 0)
	case Int64:
		b.i64 = append(b.i64, 0)
	case Bool:
		b.bits = extendBitmap(b.bits, b.n+1)
	case String:
		b.strOff = append(b.strOff, int32(len(b.strData)))
	}
	b.n++
	b.nulls++
	b.valid = extendBitmap(b.valid, b.n)
}

// appendFloat appends a valid Float64 value.
func (b *columnBuilder) appendFloat(v float64) {
	b.f64 = append(b.f64, v)
	b.n++
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		bitutil.SetBit(b.valid, b.n-1)
	}
}

// appendInt appends a valid Int64 value.
func (b *columnBuilder) appendInt(v int64) {
	b.i64 = append(b.i64, v)
	b.n++
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		bitutil.SetBit(b.valid, b.n-1)
	}
}

// appendBool appends a valid Bool value.
func (b *columnBuilder) appendBool(v bool) {
	b.bits = extendBitmap(b.bits, b.n+1)
	if v {
		bitutil.SetBit(b.bits, b.n)
	}
	b.n++
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		bitutil.SetBit(b.valid, b.n-1)
	}
}

// appendString appends a valid String value.
func (b *columnBuilder) appendString(v string) {
	b.strData = append(b.strData, v...)
	b.strOff = append(b.strOff, int32(len(b.strData)))
	b.n++
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		bitutil.SetBit(b.valid, b.n-1)
	}
}

// appendBytes appends a valid String value given as bytes.
func (b *columnBuilder) appendBytes(v []byte) {
	b.strData = append(b.strData, v...)
	b.strOff = append(b.strOff, int32(len(b.strData)))
	b.n++
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		bitutil.SetBit(b.valid, b.n-1)
	}
}

// maxStringData is the most String bytes a column builder may hold: Arrow's
// 32-bit offsets cannot address more. Tests lower it.
var maxStringData = math.MaxInt32

// stringOverflow reports whether the String data no longer fits Arrow's
// 32-bit offsets. The offsets appended since it was exceeded are invalid, so
// the builder must then be discarded.
func (b *columnBuilder) stringOverflow() bool { return len(b.strData) > maxStringData }

// finish returns the built array. The array shares b's slices, so b must be
// reset (which reallocates) or discarded afterwards; the builder's slices are
// detached so a later reset cannot overwrite the array's memory.
func (b *columnBuilder) finish() arrow.Array {
	var validBuf *memory.Buffer
	if b.nulls > 0 {
		validBuf = memory.NewBufferBytes(b.valid[:bitmapLen(b.n)])
	}
	var buffers []*memory.Buffer
	switch b.typ {
	case Float64:
		buffers = []*memory.Buffer{validBuf, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(b.f64[:b.n]))}
	case Int64:
		buffers = []*memory.Buffer{validBuf, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(b.i64[:b.n]))}
	case Bool:
		b.bits = extendBitmap(b.bits, b.n)
		buffers = []*memory.Buffer{validBuf, memory.NewBufferBytes(b.bits[:bitmapLen(b.n)])}
	case String:
		buffers = []*memory.Buffer{validBuf,
			memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(b.strOff[:b.n+1])),
			memory.NewBufferBytes(b.strData)}
	default:
		panic(fmt.Sprintf("dataset: column builder of invalid type %q", b.typ))
	}
	data := array.NewData(b.typ.ArrowType(), b.n, buffers, nil, b.nulls, 0)
	defer data.Release()
	arr := array.MakeFromData(data)
	*b = columnBuilder{typ: b.typ}
	return arr
}

// Value returns row i of col as a Go value: float64, int64, string or bool
// by the column's type, nil for a null. ok is false for a column type
// Kiln does not read.
func Value(col arrow.Array, i int) (v any, ok bool) {
	if col.IsNull(i) {
		return nil, true
	}
	switch c := col.(type) {
	case *array.Float64:
		return c.Value(i), true
	case *array.Int64:
		return c.Value(i), true
	case *array.String:
		return c.Value(i), true
	case *array.Boolean:
		return c.Value(i), true
	}
	return nil, false
}
