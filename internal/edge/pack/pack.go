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
// slot: it finds the slot's marker in an active data segment, and appends
// a data segment that writes the payload's length and bytes after it.
func Wasm(module, payload []byte) ([]byte, error) {
	if len(module) < 8 || string(module[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module")
	}
	if len(payload) > edge.WasmSlotSize-24 {
		return nil, fmt.Errorf("the model is %d bytes; a wasm export holds at most %d", len(payload), edge.WasmSlotSize-24)
	}
	out := append([]byte{}, module[:8]...)
	found := false
	for pos := 8; pos < len(module); {
		id := module[pos]
		size, n, err := uleb(module, pos+1)
		if err != nil {
			return nil, fmt.Errorf("section at byte %d: %w", pos, err)
		}
		start := pos + 1 + n
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
		case sectionDataCount:
			c, _, err := uleb(body, 0)
			if err != nil {
				return nil, fmt.Errorf("data count section: %w", err)
			}
			body = appendUleb(nil, c+1)
		}
		out = append(out, id)
		out = appendUleb(out, uint64(len(body)))
		out = append(out, body...)
		pos = end
	}
	if !found {
		return nil, errors.New("the module has no data section: not a Kiln predictor runtime")
	}
	return out, nil
}

// addSegment returns the data section body with a segment holding the
// payload after the slot's marker.
func addSegment(body, payload []byte) ([]byte, error) {
	count, n, err := uleb(body, 0)
	if err != nil {
		return nil, fmt.Errorf("data section: %w", err)
	}
	marker := slotMarker()
	pos := n
	var addr int64 = -1
	for i := uint64(0); i < count; i++ {
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
		if pos+int(size) > len(body) {
			return nil, fmt.Errorf("data segment %d runs past the section", i)
		}
		data := body[pos : pos+int(size)]
		if j := bytes.Index(data, marker); j >= 0 && offset >= 0 {
			if addr >= 0 {
				return nil, errors.New("the payload slot's marker appears twice")
			}
			addr = offset + int64(j)
		}
		pos += int(size)
	}
	if addr < 0 {
		return nil, errors.New("no payload slot in the module: not a Kiln predictor runtime")
	}
	seg := appendUleb(nil, 0)
	seg = append(seg, 0x41)
	seg = appendSleb(seg, int64(int32(uint32(addr+16))))
	seg = append(seg, 0x0b)
	seg = appendUleb(seg, uint64(8+len(payload)))
	seg = binary.LittleEndian.AppendUint64(seg, uint64(len(payload)))
	seg = append(seg, payload...)
	out := appendUleb(nil, count+1)
	out = append(out, body[n:]...)
	return append(out, seg...), nil
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
