package dataset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"unsafe"

	"github.com/klauspost/compress/snappy"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// plainChunkReads enables the direct decoding of PLAIN DOUBLE/INT64 column
// chunks (tests turn it off to compare with the general path).
var plainChunkReads = true

// plainChunk decodes a column chunk whose pages are all PLAIN-encoded DOUBLE
// or INT64 values (what Kiln's writer and many others write for numbers)
// without the general page machinery: a page is read once from the file and
// its values are decompressed straight into the column builder, with no
// intermediate page buffer or per-value work. Chunks it cannot handle
// (dictionaries, other codecs or encodings, encryption) use the general
// path; see plainChunkOf.
type plainChunk struct {
	br    *bufio.Reader
	dec   *thrift.Decoder
	codec format.CompressionCodec
	hdr   format.PageHeader
	raw   []byte   // the current page's bytes as stored
	tmp   []uint64 // decompressed values (pages with nulls, V1 pages)
	defs  []byte   // decoded definition levels
}

// plainChunkOf returns a plainChunk reading column col of row group rg, or
// nil when the chunk needs the general path.
func (r *Reader) plainChunkOf(rg int, col readColumn) *plainChunk {
	if !plainChunkReads || col.maxDef > 1 {
		return nil
	}
	md := r.pf.Metadata()
	if rg >= len(md.RowGroups) || col.leaf >= len(md.RowGroups[rg].Columns) {
		return nil
	}
	cc := &md.RowGroups[rg].Columns[col.leaf]
	if cc.FilePath != "" || cc.CryptoMetadata.Value != nil || len(cc.EncryptedColumnMetadata) > 0 {
		return nil
	}
	m := &cc.MetaData
	switch {
	case col.typ == Float64 && m.Type == format.Double:
	case col.typ == Int64 && m.Type == format.Int64 && !col.unsigned:
	default:
		return nil
	}
	if m.Codec != format.Uncompressed && m.Codec != format.Snappy {
		return nil
	}
	if m.DictionaryPageOffset != 0 || m.DataPageOffset <= 0 || m.TotalCompressedSize <= 0 {
		return nil
	}
	for _, e := range m.Encoding {
		if e != format.Plain && e != format.RLE && e != format.BitPacked {
			return nil
		}
	}
	sec := io.NewSectionReader(r.file, m.DataPageOffset, m.TotalCompressedSize)
	br := bufio.NewReaderSize(sec, readBufferSize)
	return &plainChunk{
		br:    br,
		dec:   thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(br)),
		codec: m.Codec,
	}
}

// next appends the values of the chunk's next data page to d's builder. It
// returns false at the end of the chunk.
func (p *plainChunk) next(d *columnDecoder) (bool, error) {
	for {
		if _, err := p.br.Peek(1); err == io.EOF {
			return false, nil
		}
		p.hdr = format.PageHeader{}
		if err := p.dec.Decode(&p.hdr); err != nil {
			return false, fmt.Errorf("reading page header: %w", err)
		}
		size := int(p.hdr.CompressedPageSize)
		if size < 0 || p.hdr.UncompressedPageSize < 0 {
			return false, fmt.Errorf("page of negative size %d", size)
		}
		switch p.hdr.Type {
		case format.DataPageV2:
			if !p.hdr.DataPageHeaderV2.Valid {
				return false, errors.New("data page v2 without its header")
			}
			return true, p.pageV2(d, size)
		case format.DataPage:
			if !p.hdr.DataPageHeader.Valid {
				return false, errors.New("data page without its header")
			}
			return true, p.pageV1(d, size)
		case format.DictionaryPage:
			return false, errors.New("dictionary page in a column chunk listed without a dictionary")
		default: // index pages and future page types carry no values
			if _, err := p.br.Discard(size); err != nil {
				return false, fmt.Errorf("skipping %s page: %w", p.hdr.Type, err)
			}
		}
	}
}

// readRaw reads the current page's size bytes and checks its CRC.
func (p *plainChunk) readRaw(size int) error {
	p.raw = slices.Grow(p.raw[:0], size)[:size]
	if _, err := io.ReadFull(p.br, p.raw); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading page of %d bytes: %w", size, err)
	}
	if p.hdr.CRC != 0 {
		if got := crc32.ChecksumIEEE(p.raw); got != uint32(p.hdr.CRC) {
			return fmt.Errorf("page checksum mismatch: header says 0x%08X, data has 0x%08X", uint32(p.hdr.CRC), got)
		}
	}
	return nil
}

// pageV2 decodes a DataPageV2 page: levels stored uncompressed, then the
// (possibly compressed) values.
func (p *plainChunk) pageV2(d *columnDecoder, size int) error {
	h := &p.hdr.DataPageHeaderV2.V
	if h.Encoding != format.Plain {
		return fmt.Errorf("page encoding %s in a chunk listed as PLAIN", h.Encoding)
	}
	n, nulls := int(h.NumValues), int(h.NumNulls)
	defLen, repLen := int(h.DefinitionLevelsByteLength), int(h.RepetitionLevelsByteLength)
	if n < 0 || nulls < 0 || nulls > n || defLen < 0 || repLen != 0 || defLen > size {
		return fmt.Errorf("invalid page header: %d values, %d nulls, %d/%d level bytes, %d bytes", n, nulls, defLen, repLen, size)
	}
	if nulls > 0 && d.col.maxDef == 0 {
		return fmt.Errorf("page of a required column has %d nulls", nulls)
	}
	if err := p.readRaw(size); err != nil {
		return err
	}
	levels, data := p.raw[:defLen], p.raw[defLen:]
	compressed := p.codec == format.Snappy && (!h.IsCompressed.Valid || h.IsCompressed.V)
	nonNull := n - nulls
	if nulls == 0 {
		// The common case: decode straight into the builder.
		dst := d.b.growNumbers(nonNull)
		if err := decodeValues(dst, data, compressed); err != nil {
			return err
		}
		d.b.n += nonNull
		d.b.markValid(nonNull)
		return nil
	}
	defs, err := p.levels(levels, n)
	if err != nil {
		return err
	}
	if got := n - bytes.Count(defs, []byte{1}); got != nulls {
		return fmt.Errorf("page header says %d nulls, its definition levels %d", nulls, got)
	}
	return p.appendTmp(d, data, compressed, nonNull, defs)
}

// pageV1 decodes a DataPage (v1) page: levels and values compressed
// together.
func (p *plainChunk) pageV1(d *columnDecoder, size int) error {
	h := &p.hdr.DataPageHeader.V
	if h.Encoding != format.Plain {
		return fmt.Errorf("page encoding %s in a chunk listed as PLAIN", h.Encoding)
	}
	n := int(h.NumValues)
	if n < 0 {
		return fmt.Errorf("page of %d values", n)
	}
	if err := p.readRaw(size); err != nil {
		return err
	}
	body := p.raw
	if p.codec == format.Snappy {
		ln, err := snappy.DecodedLen(p.raw)
		if err != nil {
			return fmt.Errorf("decompressing page: %w", err)
		}
		buf := make([]byte, ln)
		if body, err = snappy.Decode(buf, p.raw); err != nil {
			return fmt.Errorf("decompressing page: %w", err)
		}
	}
	var defs []byte
	nonNull := n
	if d.col.maxDef > 0 {
		if h.DefinitionLevelEncoding != format.RLE {
			return fmt.Errorf("definition levels encoded as %s", h.DefinitionLevelEncoding)
		}
		if len(body) < 4 {
			return errors.New("page too short for its definition levels")
		}
		ln := int(binary.LittleEndian.Uint32(body))
		if ln < 0 || ln > len(body)-4 {
			return fmt.Errorf("definition levels of %d bytes in a page of %d", ln, len(body))
		}
		var err error
		if defs, err = p.levels(body[4:4+ln], n); err != nil {
			return err
		}
		body = body[4+ln:]
		nonNull = bytes.Count(defs, []byte{1})
		if nonNull == n {
			defs = nil
		}
	}
	return p.appendTmp(d, body, false, nonNull, defs)
}

// levels decodes n definition levels (RLE/bit-packed hybrid, bit width 1).
func (p *plainChunk) levels(src []byte, n int) ([]byte, error) {
	defs, err := (&rle.Encoding{BitWidth: 1}).DecodeLevels(p.defs[:0], src)
	p.defs = defs
	if err != nil {
		return nil, fmt.Errorf("decoding definition levels: %w", err)
	}
	if len(defs) < n {
		return nil, fmt.Errorf("page has %d definition levels for %d values", len(defs), n)
	}
	defs = defs[:n]
	for _, l := range defs {
		if l > 1 {
			return nil, fmt.Errorf("definition level %d out of range", l)
		}
	}
	return defs, nil
}

// appendTmp decodes nonNull values of data into scratch and appends them
// spread over the nulls of defs (nil means none).
func (p *plainChunk) appendTmp(d *columnDecoder, data []byte, compressed bool, nonNull int, defs []byte) error {
	p.tmp = slices.Grow(p.tmp[:0], nonNull)[:nonNull]
	dst := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(p.tmp))), 8*nonNull)
	if !compressed && len(data) > len(dst) {
		data = data[:len(dst)] // a v1 page's values may be followed by padding
	}
	if err := decodeValues(dst, data, compressed); err != nil {
		return err
	}
	if d.col.typ == Float64 {
		d.appendFloats(unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(p.tmp))), nonNull), defs)
	} else {
		d.appendInts(unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(p.tmp))), nonNull), defs)
	}
	return nil
}

// decodeValues fills dst with the PLAIN values of data, decompressing them
// when compressed (Snappy); their size must be exactly len(dst).
func decodeValues(dst, data []byte, compressed bool) error {
	if !compressed {
		if len(data) != len(dst) {
			return fmt.Errorf("page holds %d bytes of values, expected %d", len(data), len(dst))
		}
		copy(dst, data)
		return nil
	}
	ln, err := snappy.DecodedLen(data)
	if err != nil {
		return fmt.Errorf("decompressing page: %w", err)
	}
	if ln != len(dst) {
		return fmt.Errorf("page holds %d bytes of values, expected %d", ln, len(dst))
	}
	out, err := snappy.Decode(dst, data)
	if err != nil {
		return fmt.Errorf("decompressing page: %w", err)
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return errors.New("decompressing page: output size mismatch")
	}
	return nil
}

// growNumbers extends a Float64 or Int64 builder's values by k (without
// counting them in n) and returns the new values' bytes.
func (b *columnBuilder) growNumbers(k int) []byte {
	switch b.typ {
	case Float64:
		l := len(b.f64)
		b.f64 = slices.Grow(b.f64, k)[:l+k]
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b.f64[l:]))), 8*k)
	case Int64:
		l := len(b.i64)
		b.i64 = slices.Grow(b.i64, k)[:l+k]
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b.i64[l:]))), 8*k)
	}
	panic(fmt.Sprintf("dataset: numeric values for a %s column", b.typ))
}
