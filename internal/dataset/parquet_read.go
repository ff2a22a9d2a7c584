package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// Reader reads a Parquet file column by column into Arrow records. It reads
// files written by other tools (pyarrow, pandas, Spark...): top-level columns
// of physical type INT32/INT64 (plain or any integer logical type) become
// Int64, FLOAT/DOUBLE become Float64, BYTE_ARRAY (plain, string, enum or
// json) becomes String and BOOLEAN becomes Bool, whether REQUIRED or
// OPTIONAL. Other columns (nested, repeated, decimal, temporal, ...) are left
// out of Schema and listed by Unsupported.
//
// A Reader may be used by several goroutines at once.
type Reader struct {
	path        string
	file        *os.File
	pf          *parquet.File
	schema      Schema
	cols        []readColumn // parallel to schema.Fields
	unsupported []string
	unsupType   map[string]string
}

// readColumn locates a supported column in the file.
type readColumn struct {
	name     string
	typ      Type
	leaf     int  // index of the column chunk within a row group
	unsigned bool // integer logical type is unsigned
	maxDef   int
}

// readBufferSize is the buffered read size for column chunk pages. It is
// small on purpose: a page larger than the buffer is read straight into the
// page's own memory instead of being copied through the buffer.
const readBufferSize = 32 << 10

// OpenParquet opens the Parquet file at path and reads its footer. A file that
// is not valid Parquet (corrupt, truncated, or with an unreadable schema)
// gives an error naming the file.
func OpenParquet(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r := &Reader{path: path, file: f, unsupType: map[string]string{}}
	if err := r.open(st.Size()); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return r, nil
}

// open parses the footer and classifies the columns.
func (r *Reader) open(size int64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet file: %v", p)
		}
	}()
	pf, err := parquet.OpenFile(r.file, size,
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(readBufferSize),
	)
	if err != nil {
		return fmt.Errorf("not a readable parquet file: %w", err)
	}
	r.pf = pf
	seen := map[string]bool{}
	for _, c := range pf.Root().Columns() {
		name := c.Name()
		if seen[name] {
			return fmt.Errorf("duplicate column name %q", name)
		}
		seen[name] = true
		typ, why := classify(c)
		if typ == "" {
			r.unsupported = append(r.unsupported, name)
			r.unsupType[name] = why
			continue
		}
		lt := c.Type().LogicalType()
		unsigned := false
		if lt != nil {
			if it, ok := lt.Value.(*format.IntType); ok {
				unsigned = !it.IsSigned
			}
		}
		r.schema.Fields = append(r.schema.Fields, Field{Name: name, Type: typ})
		r.cols = append(r.cols, readColumn{
			name:     name,
			typ:      typ,
			leaf:     c.Index(),
			unsigned: unsigned,
			maxDef:   c.MaxDefinitionLevel(),
		})
	}
	nleaves := len(pf.Schema().Columns())
	for i, rg := range pf.RowGroups() {
		if got := len(rg.ColumnChunks()); got != nleaves {
			return fmt.Errorf("row group %d has %d column chunks, schema has %d leaf columns", i, got, nleaves)
		}
		if rg.NumRows() < 0 {
			return fmt.Errorf("row group %d has a negative row count", i)
		}
	}
	return nil
}

// classify maps a top-level parquet column to a column type, or returns ""
// and a description of its unsupported type.
func classify(c *parquet.Column) (Type, string) {
	if !c.Leaf() {
		if lt := c.Type().LogicalType(); lt != nil && lt.Value != nil {
			return "", lt.String()
		}
		return "", "group"
	}
	t := c.Type()
	desc := t.String()
	if c.Repeated() {
		return "", "repeated " + desc
	}
	var lt format.LogicalTypeValue
	if l := t.LogicalType(); l != nil {
		lt = l.Value
	}
	switch t.Kind() {
	case parquet.Boolean:
		if lt == nil {
			return Bool, ""
		}
	case parquet.Int32, parquet.Int64:
		if _, isInt := lt.(*format.IntType); lt == nil || isInt {
			return Int64, ""
		}
	case parquet.Float, parquet.Double:
		if lt == nil {
			return Float64, ""
		}
	case parquet.ByteArray:
		switch lt.(type) {
		case nil, *format.StringType, *format.EnumType, *format.JsonType:
			return String, ""
		}
	}
	return "", desc
}

// Path returns the path the reader was opened with.
func (r *Reader) Path() string { return r.path }

// Schema returns the supported columns, in file order.
func (r *Reader) Schema() Schema { return r.schema }

// Unsupported returns the names of the columns left out of Schema because of
// their type, in file order.
func (r *Reader) Unsupported() []string { return append([]string(nil), r.unsupported...) }

// NumRows returns the number of rows in the file.
func (r *Reader) NumRows() int64 { return r.pf.NumRows() }

// NumRowGroups returns the number of row groups.
func (r *Reader) NumRowGroups() int { return len(r.pf.RowGroups()) }

// RowGroupRows returns the number of rows of row group i, or -1 if i is out
// of range.
func (r *Reader) RowGroupRows(i int) int64 {
	rgs := r.pf.RowGroups()
	if i < 0 || i >= len(rgs) {
		return -1
	}
	return rgs[i].NumRows()
}

// Close closes the file.
func (r *Reader) Close() error {
	if err := r.file.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", r.path, err)
	}
	return nil
}

// resolve maps column names to the reader's columns; nil means all.
func (r *Reader) resolve(columns []string) (Schema, []readColumn, error) {
	if columns == nil {
		return r.schema, r.cols, nil
	}
	s := Schema{Fields: make([]Field, 0, len(columns))}
	cols := make([]readColumn, 0, len(columns))
	seen := map[string]bool{}
	for _, name := range columns {
		if seen[name] {
			return Schema{}, nil, fmt.Errorf("column %q requested twice", name)
		}
		seen[name] = true
		i := r.schema.Index(name)
		if i < 0 {
			if t, ok := r.unsupType[name]; ok {
				return Schema{}, nil, fmt.Errorf("column %q has unsupported type %s", name, t)
			}
			return Schema{}, nil, fmt.Errorf("no column %q", name)
		}
		s.Fields = append(s.Fields, r.schema.Fields[i])
		cols = append(cols, r.cols[i])
	}
	return s, cols, nil
}

// ReadRowGroup reads row group i into a record holding the named columns in
// that order (nil means all supported columns). The caller releases the
// record.
func (r *Reader) ReadRowGroup(ctx context.Context, i int, columns []string) (arrow.Record, error) {
	if i < 0 || i >= r.NumRowGroups() {
		return nil, fmt.Errorf("reading %s: row group %d out of range [0, %d)", r.path, i, r.NumRowGroups())
	}
	rec, err := r.read(ctx, []int{i}, columns)
	if err != nil {
		return nil, fmt.Errorf("reading %s row group %d: %w", r.path, i, err)
	}
	return rec, nil
}

// ReadAll reads every row group into a single record holding the named
// columns in that order (nil means all supported columns). It is meant for
// files that fit in memory. The caller releases the record.
func (r *Reader) ReadAll(ctx context.Context, columns []string) (arrow.Record, error) {
	groups := make([]int, r.NumRowGroups())
	for i := range groups {
		groups[i] = i
	}
	rec, err := r.read(ctx, groups, columns)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", r.path, err)
	}
	return rec, nil
}

// read decodes the given row groups of the named columns, one column per
// worker goroutine at a time.
func (r *Reader) read(ctx context.Context, groups []int, columns []string) (arrow.Record, error) {
	schema, cols, err := r.resolve(columns)
	if err != nil {
		return nil, err
	}
	var rows int64
	for _, g := range groups {
		rows += r.pf.RowGroups()[g].NumRows()
	}
	if rows > math.MaxInt {
		return nil, fmt.Errorf("%d rows do not fit in memory", rows)
	}
	arrays := make([]arrow.Array, len(cols))
	errs := make([]error, len(cols))
	next := make(chan int)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(cols))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := ctx.Err(); err != nil {
					errs[c] = err
					continue
				}
				arrays[c], errs[c] = r.readColumn(groups, cols[c], int(rows))
			}
		}()
	}
	for c := range cols {
		next <- c
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return array.NewRecord(schema.Arrow(), arrays, rows), nil
}

// readColumn decodes one column across the given row groups. A panic in the
// parquet library (which may happen on corrupt data) becomes an error.
func (r *Reader) readColumn(groups []int, col readColumn, rows int) (arr arrow.Array, err error) {
	defer func() {
		if p := recover(); p != nil {
			arr, err = nil, fmt.Errorf("column %q: corrupt data: %v", col.name, p)
		}
	}()
	d := columnDecoder{col: col}
	d.b.reset(col.typ, rows)
	for _, g := range groups {
		rg := r.pf.RowGroups()[g]
		var err error
		if pc := r.plainChunkOf(g, col); pc != nil {
			err = d.readPlainChunk(pc, rg.NumRows())
		} else {
			err = d.readChunk(rg.ColumnChunks()[col.leaf], rg.NumRows())
		}
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", col.name, err)
		}
	}
	if d.b.n != rows {
		return nil, fmt.Errorf("column %q: decoded %d values, expected %d", col.name, d.b.n, rows)
	}
	return d.b.finish(), nil
}

// columnDecoder appends the pages of a column's chunks to a builder.
type columnDecoder struct {
	col readColumn
	b   columnBuilder

	// dictionary cache: the dictionary of the current chunk and its values.
	dict    parquet.Dictionary
	dictF64 []float64
	dictI64 []int64
	dictStr [][]byte
	idx     []int32 // scratch for dense values of a dictionary page
	conv    []int64 // scratch for converted integers
	convF   []float64
}

// readChunk decodes every page of one column chunk holding rows rows.
func (d *columnDecoder) readChunk(chunk parquet.ColumnChunk, rows int64) error {
	pages := chunk.Pages()
	defer pages.Close()
	d.dict = nil // dictionaries are per chunk
	start := d.b.n
	for {
		page, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		err = d.page(page)
		parquet.Release(page)
		if err != nil {
			return err
		}
		if int64(d.b.n-start) > rows {
			return fmt.Errorf("column chunk holds more than the row group's %d rows", rows)
		}
	}
	if got := int64(d.b.n - start); got != rows {
		return fmt.Errorf("column chunk holds %d values, row group has %d rows", got, rows)
	}
	if d.col.typ == String && d.b.stringOverflow() {
		return errors.New("string data exceeds 2 GiB; read fewer row groups at a time")
	}
	return nil
}

// readPlainChunk decodes every page of a column chunk read directly (see
// plainChunk) holding rows rows.
func (d *columnDecoder) readPlainChunk(pc *plainChunk, rows int64) error {
	start := d.b.n
	for {
		more, err := pc.next(d)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if int64(d.b.n-start) > rows {
			return fmt.Errorf("column chunk holds more than the row group's %d rows", rows)
		}
	}
	if got := int64(d.b.n - start); got != rows {
		return fmt.Errorf("column chunk holds %d values, row group has %d rows", got, rows)
	}
	return nil
}

// page appends the values of one data page.
func (d *columnDecoder) page(page parquet.Page) error {
	n := int(page.NumValues())
	defs := page.DefinitionLevels()
	nonNull := n
	if len(defs) > 0 {
		if len(defs) != n {
			return fmt.Errorf("page has %d definition levels for %d values", len(defs), n)
		}
		nonNull = bytes.Count(defs, []byte{byte(d.col.maxDef)}) // vectorized
	} else if d.col.maxDef > 0 && n > 0 {
		return errors.New("optional column page without definition levels")
	}
	data := page.Data()
	if dict := page.Dictionary(); dict != nil {
		if data.Kind() != encoding.Int32 {
			return fmt.Errorf("dictionary page indexes of kind %s", data.Kind())
		}
		if err := d.loadDictionary(dict); err != nil {
			return err
		}
		return d.dictionaryValues(data.Int32(), nonNull, defs)
	}
	return d.plainValues(&data, nonNull, defs)
}

// loadDictionary converts a chunk's dictionary once.
func (d *columnDecoder) loadDictionary(dict parquet.Dictionary) error {
	if dict == d.dict {
		return nil
	}
	d.dict = dict
	d.dictF64, d.dictI64, d.dictStr = nil, nil, nil
	data := dict.Page().Data()
	switch d.col.typ {
	case Float64:
		switch data.Kind() {
		case encoding.Double:
			d.dictF64 = data.Double()
		case encoding.Float:
			d.dictF64 = make([]float64, 0, dict.Len())
			for _, v := range data.Float() {
				d.dictF64 = append(d.dictF64, float64(v))
			}
		default:
			return fmt.Errorf("float dictionary of kind %s", data.Kind())
		}
	case Int64:
		vals, err := d.ints(&data, dict.Len())
		if err != nil {
			return err
		}
		d.dictI64 = append([]int64(nil), vals...)
	case String:
		if data.Kind() != encoding.ByteArray {
			return fmt.Errorf("string dictionary of kind %s", data.Kind())
		}
		buf, off := data.ByteArray()
		if len(off) < dict.Len()+1 {
			return fmt.Errorf("string dictionary has %d offsets for %d values", len(off), dict.Len())
		}
		d.dictStr = make([][]byte, dict.Len())
		for i := range d.dictStr {
			lo, hi := off[i], off[i+1]
			if lo > hi || int(hi) > len(buf) {
				return errors.New("string dictionary offsets out of range")
			}
			d.dictStr[i] = buf[lo:hi]
		}
	default:
		return fmt.Errorf("dictionary encoding for %s column", d.col.typ)
	}
	return nil
}

// ints returns the first n integers of data as int64, honouring the column's
// signedness.
func (d *columnDecoder) ints(data *encoding.Values, n int) ([]int64, error) {
	d.conv = d.conv[:0]
	switch data.Kind() {
	case encoding.Int32:
		v := data.Int32()
		if len(v) < n {
			return nil, fmt.Errorf("page has %d values, expected %d", len(v), n)
		}
		for _, x := range v[:n] {
			if d.col.unsigned {
				d.conv = append(d.conv, int64(uint32(x)))
			} else {
				d.conv = append(d.conv, int64(x))
			}
		}
		return d.conv, nil
	case encoding.Int64:
		v := data.Int64()
		if len(v) < n {
			return nil, fmt.Errorf("page has %d values, expected %d", len(v), n)
		}
		if d.col.unsigned {
			for _, x := range v[:n] {
				if x < 0 {
					return nil, fmt.Errorf("unsigned value %d overflows int64", uint64(x))
				}
			}
		}
		return v[:n], nil
	}
	return nil, fmt.Errorf("integer page of kind %s", data.Kind())
}

// dictionaryValues appends a dictionary-encoded page: idx are the dense
// indexes of its non-null values.
func (d *columnDecoder) dictionaryValues(idx []int32, nonNull int, defs []byte) error {
	if len(idx) < nonNull {
		return fmt.Errorf("page has %d dictionary indexes for %d values", len(idx), nonNull)
	}
	idx = idx[:nonNull]
	size := d.dict.Len()
	for _, i := range idx {
		if i < 0 || int(i) >= size {
			return fmt.Errorf("dictionary index %d out of range [0, %d)", i, size)
		}
	}
	switch d.col.typ {
	case Float64:
		d.convF = d.convF[:0]
		for _, i := range idx {
			d.convF = append(d.convF, d.dictF64[i])
		}
		d.appendFloats(d.convF, defs)
	case Int64:
		d.conv = d.conv[:0]
		for _, i := range idx {
			d.conv = append(d.conv, d.dictI64[i])
		}
		d.appendInts(d.conv, defs)
	case String:
		k := 0
		d.forEach(len(idx), defs, func() {
			d.b.appendBytes(d.dictStr[idx[k]])
			k++
		})
	default:
		return fmt.Errorf("dictionary encoding for %s column", d.col.typ)
	}
	return nil
}

// plainValues appends a page whose dense non-null values are in data.
func (d *columnDecoder) plainValues(data *encoding.Values, nonNull int, defs []byte) error {
	switch d.col.typ {
	case Float64:
		switch data.Kind() {
		case encoding.Double:
			v := data.Double()
			if len(v) < nonNull {
				return fmt.Errorf("page has %d values, expected %d", len(v), nonNull)
			}
			d.appendFloats(v[:nonNull], defs)
		case encoding.Float:
			v := data.Float()
			if len(v) < nonNull {
				return fmt.Errorf("page has %d values, expected %d", len(v), nonNull)
			}
			d.convF = d.convF[:0]
			for _, x := range v[:nonNull] {
				d.convF = append(d.convF, float64(x))
			}
			d.appendFloats(d.convF, defs)
		default:
			return fmt.Errorf("float page of kind %s", data.Kind())
		}
	case Int64:
		v, err := d.ints(data, nonNull)
		if err != nil {
			return err
		}
		d.appendInts(v, defs)
	case Bool:
		if data.Kind() != encoding.Boolean {
			return fmt.Errorf("boolean page of kind %s", data.Kind())
		}
		bits := data.Boolean()
		if len(bits)*8 < nonNull {
			return fmt.Errorf("page has %d boolean bits, expected %d", len(bits)*8, nonNull)
		}
		k := 0
		d.forEach(nonNull, defs, func() {
			d.b.appendBool(bitutil.BitIsSet(bits, k))
			k++
		})
	case String:
		if data.Kind() != encoding.ByteArray {
			return fmt.Errorf("string page of kind %s", data.Kind())
		}
		buf, off := data.ByteArray()
		if len(off) < nonNull+1 && nonNull > 0 {
			return fmt.Errorf("page has %d string offsets for %d values", len(off), nonNull)
		}
		for k := 0; k < nonNull; k++ {
			if off[k] > off[k+1] || int(off[k+1]) > len(buf) {
				return errors.New("string offsets out of range")
			}
		}
		k := 0
		d.forEach(nonNull, defs, func() {
			d.b.appendBytes(buf[off[k]:off[k+1]])
			k++
		})
	}
	return nil
}

// appendFloats appends dense non-null values, spread over the nulls given by
// defs (nil means no nulls).
func (d *columnDecoder) appendFloats(v []float64, defs []byte) {
	if len(defs) == 0 || len(v) == len(defs) {
		d.b.f64 = append(d.b.f64, v...)
		d.b.n += len(v)
		d.b.markValid(len(v))
		return
	}
	k := 0
	md := byte(d.col.maxDef)
	for _, l := range defs {
		if l == md {
			d.b.appendFloat(v[k])
			k++
		} else {
			d.b.appendNull()
		}
	}
}

// appendInts is appendFloats for Int64 columns.
func (d *columnDecoder) appendInts(v []int64, defs []byte) {
	if len(defs) == 0 || len(v) == len(defs) {
		d.b.i64 = append(d.b.i64, v...)
		d.b.n += len(v)
		d.b.markValid(len(v))
		return
	}
	k := 0
	md := byte(d.col.maxDef)
	for _, l := range defs {
		if l == md {
			d.b.appendInt(v[k])
			k++
		} else {
			d.b.appendNull()
		}
	}
}

// forEach calls value for each of n non-null values and appends a null for
// each other definition level in defs (nil means no nulls).
func (d *columnDecoder) forEach(n int, defs []byte, value func()) {
	if len(defs) == 0 {
		for range n {
			value()
		}
		return
	}
	md := byte(d.col.maxDef)
	for _, l := range defs {
		if l == md {
			value()
		} else {
			d.b.appendNull()
		}
	}
}
