// Package edge is the runtime of an exported model: a predictor executable
// (or WASI module) with one model bundle inside, built by `kiln export`
// (package edge/pack writes the bundle into a prebuilt runtime). It reads
// rows as CSV, JSON Lines or Parquet from a file or stdin and writes
// predictions in the same formats, or serves the model over HTTP with
// `kiln serve`'s routes. It links what prediction needs and nothing else:
// no Temporal, no Docker, no SQL, no object store clients.
//
// docs/export.md describes the command line and the payload layout.
package edge

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/kiln-ml/kiln/internal/model"
)

// Header describes an exported model: who it is and where it came from.
// `--version` prints it.
type Header struct {
	// Model and Version name the registered version (Version 0 for a bundle
	// exported from a directory).
	Model   string `json:"model"`
	Version int64  `json:"version,omitempty"`
	// BundleSHA256 is the bundle's content address (model.HashFiles).
	BundleSHA256 string `json:"bundle_sha256"`
	// Kiln is the version of the kiln that exported it.
	Kiln string `json:"kiln"`
	// Target is the OS/arch (or "wasm") the runtime was built for.
	Target string `json:"target"`
	// ExportedAt is when the export was made, in UTC.
	ExportedAt time.Time `json:"exported_at"`
}

// Payload is what an exported runtime carries: its header and the bundle's
// files (name → content).
type Payload struct {
	Header Header
	Files  map[string][]byte
}

// Encode lays the payload out as: the header's length (4 bytes, little
// endian), the header as JSON, then the bundle files as a tar archive.
func (p *Payload) Encode() ([]byte, error) {
	hdr, err := json.Marshal(p.Header)
	if err != nil {
		return nil, fmt.Errorf("encoding the payload header: %w", err)
	}
	var buf bytes.Buffer
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(hdr))))
	buf.Write(hdr)
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(p.Files))
	for n := range p.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data := p.Files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("encoding bundle file %s: %w", n, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("encoding bundle file %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("encoding the bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads a payload Encode wrote.
func Decode(b []byte) (*Payload, error) {
	if len(b) < 4 {
		return nil, errors.New("payload: truncated")
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, errors.New("payload: truncated header")
	}
	p := &Payload{Files: map[string][]byte{}}
	if err := json.Unmarshal(b[4:4+n], &p.Header); err != nil {
		return nil, fmt.Errorf("payload header: %w", err)
	}
	tr := tar.NewReader(bytes.NewReader(b[4+n:]))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("payload bundle: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("payload bundle file %s: %w", h.Name, err)
		}
		p.Files[h.Name] = data
	}
	if got := model.HashFiles(p.Files); got != p.Header.BundleSHA256 {
		return nil, fmt.Errorf("payload bundle hash %s, header says %s: the executable is damaged", got, p.Header.BundleSHA256)
	}
	return p, nil
}

// Model parses and validates the payload's bundle.
func (p *Payload) Model() (*model.Model, error) {
	data, ok := p.Files[model.ManifestFile]
	if !ok {
		return nil, fmt.Errorf("payload bundle has no %s", model.ManifestFile)
	}
	var man model.Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&man); err != nil {
		return nil, fmt.Errorf("payload %s: %w", model.ManifestFile, err)
	}
	return model.New(man, p.Files)
}

// ReadBundle reads the files of the bundle directory dir.
func ReadBundle(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", dir, err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading bundle %s: %w", dir, err)
		}
		files[e.Name()] = data
	}
	return files, nil
}
