package edge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// TrailerMagic ends an executable that carries a payload: the executable's
// bytes, the payload, the payload's length (8 bytes, little endian), then
// these 8 bytes. (Executables of every format tolerate data after their
// last section.)
const TrailerMagic = "KILNPAY1"

// WasmSlotSize is the room the WASI runtime reserves for its payload (see
// self_wasip1.go): the largest bundle a wasm export can hold.
const WasmSlotSize = 32 << 20

// ErrNoPayload means the running program carries no model: it is a bare
// runtime, not the output of kiln export.
var ErrNoPayload = errors.New("no model inside: this is a bare Kiln predictor runtime; make one with `kiln export MODEL --target OS/ARCH -o FILE`")

// readAppended reads the payload appended to the file at path.
func readAppended(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the model inside %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return payloadAt(f, st.Size())
}

// payloadAt finds the payload at the end of r (size bytes).
func payloadAt(r io.ReaderAt, size int64) ([]byte, error) {
	if size < 16 {
		return nil, ErrNoPayload
	}
	var tail [16]byte
	if _, err := r.ReadAt(tail[:], size-16); err != nil {
		return nil, err
	}
	if string(tail[8:]) != TrailerMagic {
		return nil, ErrNoPayload
	}
	n := binary.LittleEndian.Uint64(tail[:8])
	if n > uint64(size-16) {
		return nil, errors.New("the payload length is past the start of the file: the executable is damaged")
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, size-16-int64(n)); err != nil {
		return nil, err
	}
	return b, nil
}

// Load reads and decodes the payload of the running program.
func Load() (*Payload, error) {
	b, err := embedded()
	if err != nil {
		return nil, err
	}
	return Decode(b)
}
