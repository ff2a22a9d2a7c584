package pack

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/edge"
)

// module builds a WebAssembly module with a custom section, a data count
// section and a data section whose segments are (offset, bytes).
func module(t *testing.T, segs ...[2]any) []byte {
	t.Helper()
	out := []byte("\x00asm\x01\x00\x00\x00")
	custom := append(appendUleb(nil, 4), "name"...)
	out = append(append(append(out, 0), appendUleb(nil, uint64(len(custom)))...), custom...)
	dc := appendUleb(nil, uint64(len(segs)))
	out = append(append(append(out, sectionDataCount), appendUleb(nil, uint64(len(dc)))...), dc...)
	body := appendUleb(nil, uint64(len(segs)))
	for _, s := range segs {
		data := s[1].([]byte)
		body = append(body, 0, 0x41)
		body = appendSleb(body, int64(s[0].(int)))
		body = append(body, 0x0b)
		body = appendUleb(body, uint64(len(data)))
		body = append(body, data...)
	}
	return append(append(append(out, sectionData), appendUleb(nil, uint64(len(body)))...), body...)
}

// segments parses the data section of m: offset → bytes, in order.
func segments(t *testing.T, m []byte) (offsets []int64, datas [][]byte, dataCount uint64) {
	t.Helper()
	for pos := 8; pos < len(m); {
		id := m[pos]
		size, n, err := uleb(m, pos+1)
		if err != nil {
			t.Fatal(err)
		}
		body := m[pos+1+n : pos+1+n+int(size)]
		switch id {
		case sectionDataCount:
			dataCount, _, _ = uleb(body, 0)
		case sectionData:
			count, p, _ := uleb(body, 0)
			for range count {
				p++ // flags 0
				p++ // i32.const
				v, k, err := sleb(body, p)
				if err != nil {
					t.Fatal(err)
				}
				p += k + 1
				l, k, _ := uleb(body, p)
				p += k
				offsets = append(offsets, v)
				datas = append(datas, body[p:p+int(l)])
				p += int(l)
			}
		}
		pos += 1 + n + int(size)
	}
	return offsets, datas, dataCount
}

// TestWasm adds the payload as a segment right after the slot's marker,
// keeps the other sections, and counts the new segment.
func TestWasm(t *testing.T) {
	slot := binary.LittleEndian.AppendUint64(append([]byte("ab"), slotMarker()...), 0x123456)
	m := module(t, [2]any{1024, []byte("runtime data")}, [2]any{70000, slot})
	payload := bytes.Repeat([]byte("model"), 1000)
	out, err := Wasm(m, payload)
	if err != nil {
		t.Fatal(err)
	}
	offs, datas, dc := segments(t, out)
	if len(offs) != 3 || dc != 3 {
		t.Fatalf("%d segments, data count %d; want 3", len(offs), dc)
	}
	if offs[2] != 0x123456 {
		t.Errorf("payload segment at %#x, want the slot's address 0x123456", offs[2])
	}
	if n := binary.LittleEndian.Uint64(datas[2]); n != uint64(len(payload)) || !bytes.Equal(datas[2][8:], payload) {
		t.Errorf("payload segment holds length %d and %d bytes", n, len(datas[2])-8)
	}
	if !bytes.Contains(out, []byte("name")) || !bytes.Equal(datas[0], []byte("runtime data")) {
		t.Error("the other sections and segments changed")
	}
}

func TestWasmRefuses(t *testing.T) {
	withAddr := binary.LittleEndian.AppendUint64(slotMarker(), 0x1000)
	twice := append(append([]byte{}, withAddr...), withAddr...)
	for _, tc := range []struct {
		name    string
		module  []byte
		payload int
		want    string
	}{
		{"not wasm", []byte("\x7fELF...."), 1, "not a WebAssembly module"},
		{"no slot", module(t, [2]any{1024, []byte("runtime data")}), 1, "no payload slot"},
		{"no address", module(t, [2]any{1024, slotMarker()}), 1, "not in 32-bit memory"},
		{"two slots", module(t, [2]any{1024, twice}), 1, "appears twice"},
		{"too big", module(t, [2]any{1024, withAddr}), edge.WasmSlotSize, "at most"},
		{"truncated", module(t, [2]any{1024, withAddr})[:20], 1, "runs past the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Wasm(tc.module, make([]byte, tc.payload))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestWasmSegmentLimit: a module with as many segments as browsers accept
// keeps that many, two close segments merged with the zeros between them.
func TestWasmSegmentLimit(t *testing.T) {
	segs := make([][2]any, 0, maxSegments)
	for i := range maxSegments - 1 {
		gap := 100
		if i == 500 {
			gap = 9 // the closest pair: segments 499 and 500, 106 bytes apart
		}
		segs = append(segs, [2]any{4096 + i*200 + gap, []byte{byte(i), 1, 2}})
	}
	segs = append(segs, [2]any{1 << 26, binary.LittleEndian.AppendUint64(slotMarker(), 1<<27)})
	out, err := Wasm(module(t, segs...), []byte("model"))
	if err != nil {
		t.Fatal(err)
	}
	offs, datas, dc := segments(t, out)
	if len(offs) != maxSegments || dc != maxSegments {
		t.Fatalf("%d segments (data count %d), want %d", len(offs), dc, maxSegments)
	}
	m := datas[499]
	want := append(append([]byte{243, 1, 2}, make([]byte, 106)...), 244, 1, 2)
	if offs[499] != int64(4096+499*200+100) || !bytes.Equal(m, want) {
		t.Errorf("merged segment at %d: %v", offs[499], m)
	}
}

// TestExecutable appends the payload with a trailer edge reads back, and
// refuses a runtime that already carries one.
func TestExecutable(t *testing.T) {
	rt := []byte("\x7fELF runtime")
	out, err := Executable(rt, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, rt) || !bytes.HasSuffix(out, []byte(edge.TrailerMagic)) {
		t.Fatalf("layout %q", out)
	}
	if _, err := Executable(out, []byte("again")); err == nil {
		t.Error("a runtime with a model inside was accepted")
	}
}

func TestLEB128(t *testing.T) {
	for _, v := range []int64{0, 1, 63, 64, -1, -64, -65, 1 << 20, -(1 << 31), 1<<31 - 1} {
		got, n, err := sleb(appendSleb(nil, v), 0)
		if err != nil || got != v || n != len(appendSleb(nil, v)) {
			t.Errorf("sleb(%d) round trip: %d, %v", v, got, err)
		}
	}
	for _, v := range []uint64{0, 127, 128, 1 << 32} {
		got, _, err := uleb(appendUleb(nil, v), 0)
		if err != nil || got != v {
			t.Errorf("uleb(%d) round trip: %d, %v", v, got, err)
		}
	}
}

// FuzzWasm feeds arbitrary modules to the payload writer: it must return
// an error or a module, never panic or loop.
func FuzzWasm(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add(append([]byte("\x00asm\x01\x00\x00\x00\x0b\x20\x01\x00\x41\x80\x08\x0b\x18"), binary.LittleEndian.AppendUint64(slotMarker(), 0x10000)...))
	f.Fuzz(func(t *testing.T, m []byte) {
		_, _ = Wasm(m, []byte("payload"))
	})
}
