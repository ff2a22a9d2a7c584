package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// ScanRowGroup reads row group i in batches of at most batchRows rows (the
// last batch of the row group may be shorter) and calls fn with each, a
// record holding the named columns in that order (nil means all supported
// columns). Unlike ReadRowGroup it never holds the whole row group: each
// column decodes pages only until it has a batch, so memory stays near
// batchRows rows plus one page per column, whatever the row group's size.
//
// The record and its arrays are only valid during fn: their memory is reused
// for the next batch. fn must not retain or release them. An error from fn
// stops the scan and is returned as it is; decoding errors name the file,
// row group and column.
func (r *Reader) ScanRowGroup(ctx context.Context, i int, columns []string, batchRows int, fn func(arrow.Record) error) error {
	if i < 0 || i >= r.NumRowGroups() {
		return fmt.Errorf("reading %s: row group %d out of range [0, %d)", r.path, i, r.NumRowGroups())
	}
	if batchRows <= 0 {
		return fmt.Errorf("reading %s: batch of %d rows", r.path, batchRows)
	}
	schema, cols, err := r.resolve(columns)
	if err != nil {
		return fmt.Errorf("reading %s row group %d: %w", r.path, i, err)
	}
	rg := r.pf.RowGroups()[i]
	total := rg.NumRows()
	scanners := make([]*columnScanner, len(cols))
	defer func() {
		for _, s := range scanners {
			if s != nil && s.pages != nil {
				s.pages.Close()
			}
		}
	}()
	for c, col := range cols {
		s := &columnScanner{columnDecoder: columnDecoder{col: col}}
		if s.plain = r.plainChunkOf(i, col); s.plain == nil {
			s.pages = rg.ColumnChunks()[col.leaf].Pages()
		}
		s.b.reset(col.typ, batchRows)
		scanners[c] = s
	}
	as := schema.Arrow()
	arrays := make([]arrow.Array, len(cols))
	for done := int64(0); done < total; {
		if err := ctx.Err(); err != nil {
			return err
		}
		want := int(min(int64(batchRows), total-done))
		for c, s := range scanners {
			if err := s.fill(want); err != nil {
				return fmt.Errorf("reading %s row group %d: column %q: %w", r.path, i, cols[c].name, err)
			}
			if s.b.n < want {
				return fmt.Errorf("reading %s row group %d: column %q: column chunk holds %d values, row group has %d rows",
					r.path, i, cols[c].name, done+int64(s.b.n), total)
			}
			arrays[c] = s.b.view(want)
		}
		rec := array.NewRecord(as, arrays, int64(want))
		err := fn(rec)
		rec.Release()
		for c, s := range scanners {
			arrays[c].Release()
			s.b.dropFront(want)
		}
		if err != nil {
			return err
		}
		done += int64(want)
	}
	for c, s := range scanners {
		if err := s.fill(1); err != nil {
			return fmt.Errorf("reading %s row group %d: column %q: %w", r.path, i, cols[c].name, err)
		}
		if s.b.n > 0 || !s.eof {
			return fmt.Errorf("reading %s row group %d: column %q: column chunk holds more than the row group's %d rows", r.path, i, cols[c].name, total)
		}
	}
	return nil
}

// columnScanner decodes one column chunk page by page into its builder,
// through plain when the chunk allows it, else through pages.
type columnScanner struct {
	columnDecoder
	plain *plainChunk
	pages parquet.Pages
	eof   bool
}

// fill decodes pages until the builder holds at least n values or the chunk
// ends. A panic of the parquet library (corrupt data) becomes an error.
func (s *columnScanner) fill(n int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt data: %v", p)
		}
	}()
	for s.b.n < n && !s.eof {
		if s.plain != nil {
			more, err := s.plain.next(&s.columnDecoder)
			if err != nil {
				return err
			}
			s.eof = !more
			continue
		}
		page, err := s.pages.ReadPage()
		if err == io.EOF {
			s.eof = true
			break
		}
		if err != nil {
			return err
		}
		err = s.page(page)
		parquet.Release(page)
		if err != nil {
			return err
		}
		if s.col.typ == String && s.b.stringOverflow() {
			return errors.New("string data exceeds 2 GiB")
		}
	}
	return nil
}

// view returns an array of the builder's first k values that shares its
// memory: it is valid until the builder changes.
func (b *columnBuilder) view(k int) arrow.Array {
	nulls := 0
	var validBuf *memory.Buffer
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		nulls = k - bitutil.CountSetBits(b.valid, 0, k)
		if nulls > 0 {
			validBuf = memory.NewBufferBytes(b.valid[:bitmapLen(k)])
		}
	}
	var buffers []*memory.Buffer
	switch b.typ {
	case Float64:
		buffers = []*memory.Buffer{validBuf, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(b.f64[:k]))}
	case Int64:
		buffers = []*memory.Buffer{validBuf, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(b.i64[:k]))}
	case Bool:
		b.bits = extendBitmap(b.bits, b.n)
		buffers = []*memory.Buffer{validBuf, memory.NewBufferBytes(b.bits[:bitmapLen(k)])}
	case String:
		buffers = []*memory.Buffer{validBuf,
			memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(b.strOff[:k+1])),
			memory.NewBufferBytes(b.strData[:b.strOff[k]])}
	default:
		panic(fmt.Sprintf("dataset: column builder of invalid type %q", b.typ))
	}
	data := array.NewData(b.typ.ArrowType(), k, buffers, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// dropFront removes the builder's first k values, moving the rest (at most
// about a page) to the front of its buffers, which it keeps for reuse.
func (b *columnBuilder) dropFront(k int) {
	rest := b.n - k
	if b.valid != nil {
		b.valid = extendBitmap(b.valid, b.n)
		nv := make([]byte, bitmapLen(rest))
		bitutil.CopyBitmap(b.valid, k, rest, nv, 0)
		b.valid = append(b.valid[:0], nv...)
		b.nulls = rest - bitutil.CountSetBits(b.valid, 0, rest)
		if b.nulls == 0 {
			b.valid = nil
		}
	}
	switch b.typ {
	case Float64:
		b.f64 = b.f64[:copy(b.f64, b.f64[k:b.n])]
	case Int64:
		b.i64 = b.i64[:copy(b.i64, b.i64[k:b.n])]
	case Bool:
		b.bits = extendBitmap(b.bits, b.n)
		nb := make([]byte, bitmapLen(rest))
		bitutil.CopyBitmap(b.bits, k, rest, nb, 0)
		b.bits = append(b.bits[:0], nb...)
	case String:
		base := b.strOff[k]
		b.strData = b.strData[:copy(b.strData, b.strData[base:])]
		off := b.strOff[:copy(b.strOff, b.strOff[k:b.n+1])]
		for j := range off {
			off[j] -= base
		}
		b.strOff = off
	}
	b.n = rest
}
