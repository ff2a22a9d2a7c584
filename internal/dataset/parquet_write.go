package dataset

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// WriterOptions configures CreateParquet.
type WriterOptions struct {
	// Compression is the page codec: "snappy" (the default when empty),
	// "zstd" or "none".
	Compression string
	// Required names columns declared REQUIRED (never null) instead of
	// OPTIONAL: they carry no definition levels, which makes them cheaper to
	// write and read. Write fails on a null in one of them.
	Required []string
}

// Info describes a written Parquet file.
type Info struct {
	// Schema is the file's schema.
	Schema Schema `json:"schema"`
	// Rows is the number of rows written.
	Rows int64 `json:"rows"`
	// RowGroups is the number of row groups written.
	RowGroups int `json:"row_groups"`
	// SHA256 is the hex SHA-256 of the file's bytes.
	SHA256 string `json:"sha256"`
	// Bytes is the file's size.
	Bytes int64 `json:"bytes"`
}

// Writer writes a Parquet file column by column, one row group per Write
// call. The data goes to a temporary file next to the destination, which
// Commit renames into place; until then the destination is untouched.
type Writer struct {
	path   string
	tmp    string
	file   *os.File
	out    *hashingWriter
	pw     *parquet.GenericWriter[any]
	schema Schema
	arrow  *arrow.Schema
	// required is parallel to schema.Fields: the column is REQUIRED.
	required []bool

	rows      int64
	rowGroups int
	scratch   [][]parquet.Value // per-worker value buffers
	err       error             // sticky error of a failed Write
	closed    bool              // committed or aborted
}

// writeChunk is how many values are handed to a column writer at once.
const writeChunk = 4096

// createdBy is the fixed writer identification stored in the file footer, so
// that a file's bytes depend only on its content (not on the build).
const createdBy = "kiln dataset writer 1"

// dictionaryMaxBytes bounds a String column's dictionary per row group; past
// it the column falls back to plain encoding (as pyarrow does at 1 MiB).
const dictionaryMaxBytes = 1 << 20

// CreateParquet starts writing a Parquet file at path with the given schema.
// Every column is OPTIONAL (nulls are stored as definition levels) unless
// opts.Required lists it; String columns are dictionary encoded. Call Commit to finish the file or Abort to
// discard it.
func CreateParquet(path string, schema Schema, opts WriterOptions) (*Writer, error) {
	if err := schema.Validate(); err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	if len(schema.Fields) == 0 {
		return nil, fmt.Errorf("creating %s: schema has no fields", path)
	}
	codec, err := codecOf(opts.Compression)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	required := make([]bool, len(schema.Fields))
	for _, name := range opts.Required {
		i := schema.Index(name)
		if i < 0 {
			return nil, fmt.Errorf("creating %s: required column %q is not in the schema", path, name)
		}
		required[i] = true
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	w := &Writer{
		path:     path,
		tmp:      f.Name(),
		file:     f,
		out:      newHashingWriter(f),
		schema:   Schema{Fields: append([]Field(nil), schema.Fields...)},
		arrow:    schema.Arrow(),
		required: required,
	}
	if err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("parquet writer: %v", r)
			}
		}()
		w.pw = parquet.NewGenericWriter[any](w.out,
			parquet.NewSchema("kiln", parquetRoot(schema, required)),
			parquet.Compression(codec),
			&parquet.WriterConfig{CreatedBy: createdBy},
			parquet.DictionaryMaxBytes(dictionaryMaxBytes),
			// Min/max stay in the column index and chunk statistics; the
			// deprecated copy in every page header costs a second pass.
			parquet.DataPageStatistics(false),
		)
		return nil
	}(); err != nil {
		f.Close()
		os.Remove(w.tmp)
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	return w, nil
}

// codecOf maps a WriterOptions.Compression name to its codec.
func codecOf(name string) (compress.Codec, error) {
	switch strings.ToLower(name) {
	case "", "snappy":
		return fastSnappy{}, nil
	case "zstd":
		return &parquet.Zstd, nil
	case "none", "uncompressed":
		return &parquet.Uncompressed, nil
	}
	return nil, fmt.Errorf("unknown compression %q (want snappy, zstd or none)", name)
}

// Schema returns the schema the writer was created with.
func (w *Writer) Schema() Schema { return w.schema }

// Write appends rec as one row group. rec must have exactly the writer's
// fields, in order and of the same types. An empty record writes nothing.
// After a failed Write the writer only accepts Abort.
func (w *Writer) Write(rec arrow.Record) error {
	if w.closed {
		return fmt.Errorf("writing %s: writer already closed", w.path)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.checkRecord(rec); err != nil {
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	if rec.NumRows() == 0 {
		return nil
	}
	if err := w.writeRecord(rec); err != nil {
		w.err = fmt.Errorf("writing %s: %w", w.path, err)
		return w.err
	}
	w.rows += rec.NumRows()
	w.rowGroups++
	return nil
}

// checkRecord verifies that rec matches the writer's schema.
func (w *Writer) checkRecord(rec arrow.Record) error {
	if rec == nil {
		return errors.New("nil record")
	}
	if int(rec.NumCols()) != len(w.schema.Fields) {
		return fmt.Errorf("record has %d columns, schema has %d", rec.NumCols(), len(w.schema.Fields))
	}
	for i, f := range w.schema.Fields {
		if name := rec.ColumnName(i); name != f.Name {
			return fmt.Errorf("record column %d is %q, schema says %q", i+1, name, f.Name)
		}
		col := rec.Column(i)
		if t, ok := typeOfArrow(col.DataType()); !ok || t != f.Type {
			return fmt.Errorf("record column %q is %s, schema says %s", f.Name, col.DataType(), f.Type)
		}
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("record column %q has %d rows, record has %d", f.Name, col.Len(), rec.NumRows())
		}
	}
	return nil
}

// writeRecord hands every column of rec to its column writer and flushes the
// row group. Columns are encoded in parallel: each column writer only touches
// its own buffers until the row group is flushed, which then writes the
// columns to the file in schema order, so the output does not depend on
// scheduling.
func (w *Writer) writeRecord(rec arrow.Record) error {
	cws := w.pw.ColumnWriters()
	if len(cws) != len(w.schema.Fields) {
		return fmt.Errorf("parquet writer has %d columns, schema has %d", len(cws), len(w.schema.Fields))
	}
	workers := min(runtime.GOMAXPROCS(0), len(cws))
	for len(w.scratch) < workers {
		w.scratch = append(w.scratch, make([]parquet.Value, writeChunk))
	}
	errs := make([]error, len(cws))
	next := make(chan int)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func(vals []parquet.Value) {
			defer wg.Done()
			defer clear(vals) // drop references to the record's memory
			for i := range next {
				// A panic here would kill the process: nothing up the
				// goroutine's stack can recover it.
				if err := catchPanic(func() error { return writeColumn(cws[i], i, rec.Column(i), w.required[i], vals) }); err != nil {
					errs[i] = fmt.Errorf("column %q: %w", w.schema.Fields[i].Name, err)
				}
			}
		}(w.scratch[k])
	}
	for i := range cws {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return catchPanic(w.pw.Flush)
}

// catchPanic runs f, turning a panic (of the parquet library, or on an
// invalid Arrow array) into an error.
func catchPanic(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquet writer: %v", r)
		}
	}()
	return f()
}

// writeColumn converts col to parquet values (definition level 1 for a value,
// 0 for a null; always 0 in a required column, which rejects nulls) in
// chunks of len(scratch) and writes them to cw.
func writeColumn(cw *parquet.ColumnWriter, idx int, col arrow.Array, required bool, scratch []parquet.Value) error {
	n := col.Len()
	hasNulls := col.NullN() > 0
	if required && hasNulls {
		return fmt.Errorf("column is required but holds %d nulls", col.NullN())
	}
	def := 1
	if required {
		def = 0
	}
	null := parquet.NullValue().Level(0, 0, idx)
	for start := 0; start < n; start += len(scratch) {
		end := min(start+len(scratch), n)
		vals := scratch[:end-start]
		switch a := col.(type) {
		case *array.Float64:
			for j, v := range a.Float64Values()[start:end] {
				vals[j] = parquet.DoubleValue(v)
			}
		case *array.Int64:
			for j, v := range a.Int64Values()[start:end] {
				vals[j] = parquet.Int64Value(v)
			}
		case *array.Boolean:
			for j := range vals {
				vals[j] = parquet.BooleanValue(a.Value(start + j))
			}
		case *array.String:
			for j := range vals {
				s := a.Value(start + j)
				vals[j] = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
			}
		default:
			return fmt.Errorf("unsupported arrow type %s", col.DataType())
		}
		for j := range vals {
			vals[j].SetDefinitionLevel(def)
			vals[j].SetColumnIndex(idx)
		}
		if hasNulls {
			for j := range vals {
				if col.IsNull(start + j) {
					vals[j] = null
				}
			}
		}
		if err := catchPanic(func() error {
			_, err := cw.WriteRowValues(vals)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// Commit writes the footer, syncs the file to disk and renames it onto the
// destination path. It returns the file's description and hash. On error the
// temporary file is removed.
func (w *Writer) Commit() (Info, error) {
	if w.closed {
		return Info{}, fmt.Errorf("committing %s: writer already closed", w.path)
	}
	if w.err != nil {
		w.Abort()
		return Info{}, w.err
	}
	fail := func(err error) (Info, error) {
		w.Abort()
		return Info{}, fmt.Errorf("committing %s: %w", w.path, err)
	}
	if err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("parquet writer: %v", r)
			}
		}()
		return w.pw.Close()
	}(); err != nil {
		return fail(err)
	}
	if err := w.out.Flush(); err != nil {
		return fail(err)
	}
	if err := w.file.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := w.file.Sync(); err != nil {
		return fail(err)
	}
	if err := w.file.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(w.path))
	w.closed = true
	return Info{
		Schema:    w.Schema(),
		Rows:      w.rows,
		RowGroups: w.rowGroups,
		SHA256:    w.out.Sum(),
		Bytes:     w.out.n,
	}, nil
}

// Abort discards the file being written. It is a no-op after Commit or a
// previous Abort.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.file.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("aborting %s: %w", w.path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable. Errors are ignored: some file
// systems do not support syncing directories, and the rename itself succeeded.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// hashingWriter buffers writes to a file while hashing and counting them.
type hashingWriter struct {
	buf *bufio.Writer
	h   hash.Hash
	n   int64
}

func newHashingWriter(w io.Writer) *hashingWriter {
	h := sha256.New()
	return &hashingWriter{buf: bufio.NewWriterSize(io.MultiWriter(w, h), 1<<20), h: h}
}

// Write implements io.Writer.
func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.buf.Write(p)
	hw.n += int64(n)
	return n, err
}

// Flush writes buffered data to the file.
func (hw *hashingWriter) Flush() error { return hw.buf.Flush() }

// Sum returns the hex SHA-256 of everything written (after Flush).
func (hw *hashingWriter) Sum() string { return hex.EncodeToString(hw.h.Sum(nil)) }

// HashFile returns the hex SHA-256 of the file at path.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parquetRoot builds the file's root group with the fields in schema order
// (parquet.Group would sort them by name); required[i] makes field i
// REQUIRED rather than OPTIONAL.
func parquetRoot(schema Schema, required []bool) parquet.Node {
	g := make(orderedGroup, len(schema.Fields))
	for i, f := range schema.Fields {
		var leaf parquet.Node
		switch f.Type {
		case Float64:
			leaf = parquet.Leaf(parquet.DoubleType)
		case Int64:
			leaf = parquet.Leaf(parquet.Int64Type)
		case Bool:
			leaf = parquet.Leaf(parquet.BooleanType)
		case String:
			leaf = parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
		}
		if !required[i] {
			leaf = parquet.Optional(leaf)
		}
		g[i] = &orderedField{Node: leaf, name: f.Name}
	}
	return g
}

// orderedGroup is a parquet group node whose fields keep their given order.
type orderedGroup []parquet.Field

// ID implements parquet.Node.
func (g orderedGroup) ID() int { return 0 }

// String implements parquet.Node.
func (g orderedGroup) String() string {
	var sb strings.Builder
	sb.WriteString("group {")
	for i, f := range g {
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "%s %s", f.Name(), f.Type())
	}
	sb.WriteString("}")
	return sb.String()
}

// Type implements parquet.Node.
func (g orderedGroup) Type() parquet.Type { return parquet.Group(nil).Type() }

// Optional implements parquet.Node.
func (g orderedGroup) Optional() bool { return false }

// Repeated implements parquet.Node.
func (g orderedGroup) Repeated() bool { return false }

// Required implements parquet.Node.
func (g orderedGroup) Required() bool { return true }

// Leaf implements parquet.Node.
func (g orderedGroup) Leaf() bool { return false }

// Fields implements parquet.Node.
func (g orderedGroup) Fields() []parquet.Field { return g }

// Encoding implements parquet.Node.
func (g orderedGroup) Encoding() encoding.Encoding { return nil }

// Compression implements parquet.Node.
func (g orderedGroup) Compression() compress.Codec { return nil }

// GoType implements parquet.Node. Rows are never built from Go values here,
// so a generic map type is enough.
func (g orderedGroup) GoType() reflect.Type { return reflect.TypeFor[map[string]any]() }

// orderedField names a node inside an orderedGroup.
type orderedField struct {
	parquet.Node
	name string
}

// Name implements parquet.Field.
func (f *orderedField) Name() string { return f.name }

// Value implements parquet.Field for map-shaped rows.
func (f *orderedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Interface {
		base = base.Elem()
	}
	if base.Kind() != reflect.Map {
		return reflect.Value{}
	}
	return base.MapIndex(reflect.ValueOf(f.name))
}

// fastSnappy is the SNAPPY page codec compressing with the fast block encoder
// (parquet.Snappy uses the slower "better" mode, which gains little on
// numeric pages). Its output is standard Snappy, readable by any reader.
type fastSnappy struct{}

// String implements compress.Codec.
func (fastSnappy) String() string { return "SNAPPY" }

// CompressionCodec implements compress.Codec.
func (fastSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }

// Encode implements compress.Codec.
func (fastSnappy) Encode(dst, src []byte) ([]byte, error) { return s2.EncodeSnappy(dst[:0], src), nil }

// Decode implements compress.Codec.
func (fastSnappy) Decode(dst, src []byte) ([]byte, error) { return parquet.Snappy.Decode(dst, src) }
