// Package pack writes a model payload into a prebuilt Kiln predictor
// runtime (package edge), which is how `kiln export` makes a standalone
// predictor without a compiler: for an executable the payload is appended
// after the program with a trailer; for a WASI module it is added as an
// active data segment over the slot the runtime reserves.
//
// It is apart from package edge so the runtime does not carry the code
// (or the marker bytes) that writes runtimes.
package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kiln-ml/kiln/internal/edge"
)

// Executable returns runtime (a native predictor executable) with payload
// appended, as edge reads it back.
func Executable(runtime, payload []byte) ([]byte, error) {
	if bytes.HasSuffix(runtime, []byte(edge.TrailerMagic)) {
		return nil, errors.New("the runtime already carries a model: export from a bare runtime")
	}
	out := make([]byte, 0, len(runtime)+len(payload)+16)
	out = append(out, runtime...)
	out = append(out, payload...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(payload)))
	return append(out, edge.TrailerMagic...), nil
}

// slotMarker is the 16 bytes the WASI runtime's slot starts with; built
// here so the bytes themselves appear in no module.
func slotMarker() []byte {
	return []byte{'K', 'I', 'L', 'N', '-', 'W', 'A', 'S', 'M', '-', 'S', 'L', 'O', 'T', ':', '1'}
}

// WebAssembly section IDs.
const (
	sectionData      = 11
	sectionDataCount = 12
)

// Wasm returns module (the WASI predictor runtime) with payload in its
// slot: it finds the slot's marker in an active data segment, reads the
// slot's address after it, and appends a data segment that writes the
// payload's length and bytes there (the data count section, if any, is
// updated).
func Wasm(module, payload []byte) ([]byte, error) {
	if len(module) < 8 || string(module[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module")
	}
	if len(payload) > edge.WasmSlotSize-8 {
		return nil, fmt.Errorf("the model is %d bytes; a wasm export holds at most %d", len(payload), edge.WasmSlotSize-8)
	}
	out := append([]byte{}, module[:8]...)
	found := false
	var segCount uint64
	dataCountAt := -1
	for pos := 8; pos < len(module); {
		id := module[pos]
		size, n, err := uleb(module, pos+1)
		if err != nil {
			return nil, fmt.Errorf("section at byte %d: %w", pos, err)
		}
		start := pos + 1 + n
		if size > uint64(len(module)) {
			return nil, fmt.Errorf("section at byte %d runs past the end", pos)
		}
		end := start + int(size)
		if end > len(module) {
			return nil, fmt.Errorf("section at byte %d runs past the end", pos)
		}
		body := module[start:end]
		switch id {
		case sectionData:
			nb, err := addSegment(body, payload)
			if err != nil {
				return nil, err
			}
			body, found = nb, true
			segCount, _, _ = uleb(nb, 0)
		case sectionDataCount:
			dataCountAt = len(out)
		}
		out = append(out, id)
		out = appendUleb(out, uint64(len(body)))
		out = append(out, body...)
		pos = end
	}
	if !found {
		return nil, errors.New("the module has no data section: not a Kiln predictor runtime")
	}
	if dataCountAt >= 0 { // it precedes the data section: rewrite it now
		count := appendUleb(nil, segCount)
		sec := append([]byte{sectionDataCount}, appendUleb(nil, uint64(len(count)))...)
		out = spliceDataCount(out, dataCountAt, append(sec, count...))
	}
	return out, nil
}

// maxSegments is the most data segments a module may have for V8 (and
// so browsers) to load it; Go's linker emits up to this many.
const maxSegments = 100000

// segment is one data segment: active ones (flags 0 or 2, an i32.const
// offset) have an offset >= 0; raw is the segment's encoding.
type segment struct {
	offset int64
	data   []byte
	raw    []byte
}

// addSegment returns the data section body with a segment holding the
// payload's length and bytes at the slot's address, which follows the
// slot's marker in the runtime's static data (see edge's self_wasip1.go).
// When the section already holds maxSegments segments, the two active
// segments closest in memory are merged first (the gap between them is
// zeros either way), so the count stays within what browsers accept.
func addSegment(body, payload []byte) ([]byte, error) {
	segs, err := parseSegments(body)
	if err != nil {
		return nil, err
	}
	marker := slotMarker()
	addr := int64(-1)
	for i, sg := range segs {
		j := bytes.Index(sg.data, marker)
		if j < 0 || sg.offset < 0 {
			continue
		}
		if addr >= 0 || bytes.Contains(sg.data[j+1:], marker) {
			return nil, errors.New("the payload slot's marker appears twice")
		}
		// The slot's address follows the marker; the linker drops runs of
		// zero bytes between segments, so bytes past the segment are 0.
		var a [8]byte
		copy(a[:], sg.data[j+len(marker):])
		addr = int64(binary.LittleEndian.Uint64(a[:]))
		if addr <= 0 || addr > 1<<32-int64(edge.WasmSlotSize) {
			return nil, fmt.Errorf("data segment %d: the payload slot's address %#x is not in 32-bit memory", i, addr)
		}
	}
	if addr < 0 {
		return nil, errors.New("no payload slot in the module: not a Kiln predictor runtime")
	}
	if len(segs) >= maxSegments {
		if segs, err = mergeClosest(segs); err != nil {
			return nil, err
		}
	}
	data := binary.LittleEndian.AppendUint64(nil, uint64(len(payload)))
	segs = append(segs, activeSegment(addr, append(data, payload...)))
	out := appendUleb(nil, uint64(len(segs)))
	for _, sg := range segs {
		out = append(out, sg.raw...)
	}
	return out, nil
}

// activeSegment encodes an active segment of memory 0 at offset.
func activeSegment(offset int64, data []byte) segment {
	raw := appendUleb(nil, 0)
	raw = append(raw, 0x41)
	raw = appendSleb(raw, int64(int32(uint32(offset))))
	raw = append(raw, 0x0b)
	raw = appendUleb(raw, uint64(len(data)))
	raw = append(raw, data...)
	return segment{offset: offset, data: data, raw: raw}
}

// mergeClosest merges the two consecutive active segments with the
// smallest gap between them into one, the gap filled with zeros.
func mergeClosest(segs []segment) ([]segment, error) {
	best, gap := -1, int64(1<<62)
	for i := 0; i+1 < len(segs); i++ {
		a, b := segs[i], segs[i+1]
		if a.offset < 0 || b.offset < 0 {
			continue
		}
		if g := b.offset - (a.offset + int64(len(a.data))); g >= 0 && g < gap {
			best, gap = i, g
		}
	}
	if best < 0 || gap > 1<<20 {
		return nil, fmt.Errorf("the module has %d data segments and none can be merged", len(segs))
	}
	a, b := segs[best], segs[best+1]
	data := make([]byte, 0, len(a.data)+int(gap)+len(b.data))
	data = append(append(append(data, a.data...), make([]byte, gap)...), b.data...)
	merged := activeSegment(a.offset, data)
	return append(append(segs[:best:best], merged), segs[best+2:]...), nil
}

// parseSegments reads the segments of a data section body.
func parseSegments(body []byte) ([]segment, error) {
	count, n, err := uleb(body, 0)
	if err != nil {
		return nil, fmt.Errorf("data section: %w", err)
	}
	pos := n
	if count > uint64(len(body)) { // every segment takes at least one byte
		return nil, fmt.Errorf("data section: %d segments in %d bytes", count, len(body))
	}
	segs := make([]segment, 0, count+1)
	for i := uint64(0); i < count; i++ {
		start := pos
		flags, n, err := uleb(body, pos)
		if err != nil {
			return nil, fmt.Errorf("data segment %d: %w", i, err)
		}
		pos += n
		offset := int64(-1)
		if flags == 2 {
			if _, n, err = uleb(body, pos); err != nil { // memory index
				return nil, fmt.Errorf("data segment %d: %w", i, err)
			}
			pos += n
		}
		if flags == 0 || flags == 2 {
			if pos >= len(body) || body[pos] != 0x41 { // i32.const
				return nil, fmt.Errorf("data segment %d: offset is not an i32.const", i)
			}
			v, n, err := sleb(body, pos+1)
			if err != nil {
				return nil, fmt.Errorf("data segment %d: %w", i, err)
			}
			pos += 1 + n
			if pos >= len(body) || body[pos] != 0x0b {
				return nil, fmt.Errorf("data segment %d: offset expression is not one constant", i)
			}
			pos++
			offset = int64(uint32(int32(v)))
		}
		size, n, err := uleb(body, pos)
		if err != nil {
			return nil, fmt.Errorf("data segment %d: %w", i, err)
		}
		pos += n
		if size > uint64(len(body)) || pos+int(size) > len(body) {
			return nil, fmt.Errorf("data segment %d runs past the section", i)
		}
		segs = append(segs, segment{offset: offset, data: body[pos : pos+int(size)], raw: body[start : pos+int(size)]})
		pos += int(size)
	}
	return segs, nil
}

// spliceDataCount replaces the data count section at pos of m with sec.
func spliceDataCount(m []byte, pos int, sec []byte) []byte {
	size, n, _ := uleb(m, pos+1)
	end := pos + 1 + n + int(size)
	out := append([]byte{}, m[:pos]...)
	out = append(out, sec...)
	return append(out, m[end:]...)
}

// uleb reads an unsigned LEB128 number at b[pos:], returning it and its length.
func uleb(b []byte, pos int) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if pos+i >= len(b) {
			return 0, 0, errors.New("truncated number")
		}
		c := b[pos+i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("number too long")
}

// sleb reads a signed LEB128 number at b[pos:].
func sleb(b []byte, pos int) (int64, int, error) {
	var v int64
	var shift uint
	for i := 0; i < 10; i++ {
		if pos+i >= len(b) {
			return 0, 0, errors.New("truncated number")
		}
		c := b[pos+i]
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("number too long")
}

func appendUleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func appendSleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
