//go:build wasip1

package edge

import (
	"encoding/binary"
	"errors"
)

// slot is where `kiln export --target wasm` writes the payload: its length
// (8 bytes, little endian), then the payload. It is zero in the runtime,
// so the Go linker puts it in BSS and it costs no bytes in the module; the
// exporter (package edge/pack) adds an active data segment over it, which
// the WebAssembly engine copies into memory on start.
var slot [WasmSlotSize]byte

// slotInfo is how the exporter finds slot: 16 marker bytes (spelled as
// numbers here, so the marker appears once in the module) followed by
// slot's address, both static data.
var slotInfo = struct {
	marker [16]byte
	addr   *[WasmSlotSize]byte
}{[16]byte{75, 73, 76, 78, 45, 87, 65, 83, 77, 45, 83, 76, 79, 84, 58, 49}, &slot}

// embedded returns the payload in slot.
func embedded() ([]byte, error) {
	s := slotInfo.addr
	n := binary.LittleEndian.Uint64(s[:8])
	if n == 0 {
		return nil, ErrNoPayload
	}
	if n > uint64(len(s)-8) {
		return nil, errors.New("the payload length is past the end of its slot: the module is damaged")
	}
	return s[8 : 8+n], nil
}
