package edge

import (
	"bytes"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/model"
)

// FuzzDecode feeds arbitrary bytes to the payload decoder (what a damaged
// or hand-made executable carries): it must return an error or a payload
// whose bundle matches its hash, never panic.
func FuzzDecode(f *testing.F) {
	files := map[string][]byte{"manifest.json": []byte(`{"format_version":1}`), "model.json": []byte(`{}`)}
	p := Payload{Files: files, Header: Header{Model: "m", Version: 1, BundleSHA256: model.HashFiles(files), ExportedAt: time.Unix(0, 0).UTC()}}
	good, err := p.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := Decode(b)
		if err != nil {
			return
		}
		if model.HashFiles(q.Files) != q.Header.BundleSHA256 {
			t.Fatalf("decoded a payload whose files do not match its hash")
		}
		_, _ = q.Model() // may fail; must not panic
	})
}

// FuzzPayloadAt reads trailers from arbitrary file ends.
func FuzzPayloadAt(f *testing.F) {
	f.Add([]byte("program" + "\x05\x00\x00\x00\x00\x00\x00\x00" + TrailerMagic))
	f.Add([]byte(TrailerMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := payloadAt(bytes.NewReader(b), int64(len(b)))
		if err == nil && len(p) > len(b) {
			t.Fatalf("payload of %d bytes from a file of %d", len(p), len(b))
		}
	})
}
