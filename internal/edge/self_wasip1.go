//go:build wasip1

package edge

import (
	"encoding/binary"
	"errors"
)

// slot is where `kiln export --target wasm` writes the payload: 16 marker
// bytes (spelled as numbers here, so the marker appears once in the
// module), the payload's length (8 bytes, little endian) and the payload.
// The Go linker stores only its non-zero bytes, so the module stays small;
// the exporter adds an active data segment over the rest (package
// edge/pack), which the WebAssembly engine copies into memory on start.
var slot = [WasmSlotSize]byte{75, 73, 76, 78, 45, 87, 65, 83, 77, 45, 83, 76, 79, 84, 58, 49}

// embedded returns the payload in slot.
func embedded() ([]byte, error) {
	n := binary.LittleEndian.Uint64(slot[16:24])
	if n == 0 {
		return nil, ErrNoPayload
	}
	if n > uint64(len(slot)-24) {
		return nil, errors.New("the payload length is past the end of its slot: the module is damaged")
	}
	return slot[24 : 24+n], nil
}
