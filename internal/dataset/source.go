package dataset

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// sourceBuffer is the read buffer of text sources.
const sourceBuffer = 1 << 20

// openSource opens the text file src for reading, decompressing it when it
// starts with the gzip magic bytes (whatever its name), so that data.csv
// and data.csv.gz with the same content read the same. Close the returned
// closer when done.
func openSource(src string) (io.Reader, io.Closer, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", src, err)
	}
	br := bufio.NewReaderSize(f, sourceBuffer)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, nil, fmt.Errorf("reading %s: %w", src, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reading %s: gzip: %w", src, err)
		}
		return &gzipErrors{src: src, r: bufio.NewReaderSize(zr, sourceBuffer)}, f, nil
	}
	return br, f, nil
}

// gzipErrors names the file in decompression errors.
type gzipErrors struct {
	src string
	r   io.Reader
}

func (g *gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: gzip: %w", g.src, err)
	}
	return n, err
}
