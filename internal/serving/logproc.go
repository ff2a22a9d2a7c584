package serving

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// The request log's Parquet encoding can run in a child process (Options.
// LogWriter): the server hands each flush over a pipe as the column slices
// it buffered (copied, a chunk at a time) and the child, at idle priority
// (SCHED_IDLE on Linux, nice 19 elsewhere), encodes and writes the file.
// On a server with one core the encoding then takes the moments the server
// leaves idle instead of holding requests up: make bench-serve measured the
// p99 at 6.2-6.4 ms with the encoding in the server, 4.3-5.1 ms with the
// child, and 4.0 ms with no log at all, every request still logged
// (BENCHMARKS.md). The files are the same either way, and a child that
// fails leaves the writing to the server.

// The pipe carries messages of one byte of kind and their fields:
//
//	'B' path, model, inputs (JSON): a file starts
//	'C' rows n, then every column of the chunk: a file's rows
//	'E'                          : the file is whole
//
// Strings are a uvarint length and bytes; a column is its n values
// (float64 and int64 little-endian, bools one byte each, strings as above),
// and a non-Float64 input column is followed by its n validity bytes. The
// columns are the chunk's slices written as they are: no per-value
// encoding work beyond a copy, which is what the server's core pays for.
const (
	msgBegin = 'B'
	msgChunk = 'C'
	msgEnd   = 'E'
)

// wireWriter writes messages to the pipe.
type wireWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (ww *wireWriter) str(s string) {
	ww.buf = binary.AppendUvarint(ww.buf[:0], uint64(len(s)))
	ww.w.Write(ww.buf)
	ww.w.WriteString(s)
}

func (ww *wireWriter) strs(v []string) {
	for _, s := range v {
		ww.str(s)
	}
}

func (ww *wireWriter) begin(path, model string, inputs []dataset.Field) error {
	js, err := json.Marshal(inputs)
	if err != nil {
		return err
	}
	ww.w.WriteByte(msgBegin)
	ww.str(path)
	ww.str(model)
	ww.str(string(js))
	return nil
}

func (ww *wireWriter) chunk(inputs []dataset.Field, c *logChunk) error {
	n := len(c.pred)
	ww.w.WriteByte(msgChunk)
	ww.buf = binary.AppendUvarint(ww.buf[:0], uint64(n))
	ww.w.Write(ww.buf)
	for j, f := range inputs {
		switch f.Type {
		case dataset.Float64:
			binary.Write(ww.w, binary.LittleEndian, c.floats[j])
			continue
		case dataset.Int64:
			binary.Write(ww.w, binary.LittleEndian, c.ints[j])
		case dataset.Bool:
			binary.Write(ww.w, binary.LittleEndian, c.bools[j])
		default:
			ww.strs(c.strs[j])
		}
		binary.Write(ww.w, binary.LittleEndian, c.valid[j])
	}
	binary.Write(ww.w, binary.LittleEndian, c.pred)
	binary.Write(ww.w, binary.LittleEndian, c.version)
	ww.strs(c.variant)
	binary.Write(ww.w, binary.LittleEndian, c.latency)
	binary.Write(ww.w, binary.LittleEndian, c.ts)
	ww.strs(c.ids)
	return ww.w.Flush()
}

func (ww *wireWriter) end() error {
	ww.w.WriteByte(msgEnd)
	return ww.w.Flush()
}

// wireReader reads messages from the pipe.
type wireReader struct {
	r *bufio.Reader
}

func (wr *wireReader) str() (string, error) {
	n, err := binary.ReadUvarint(wr.r)
	if err != nil {
		return "", err
	}
	if n > 1<<30 {
		return "", fmt.Errorf("a string of %d bytes", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(wr.r, b)
	return string(b), err
}

func (wr *wireReader) strs(n int) ([]string, error) {
	v := make([]string, n)
	for i := range v {
		var err error
		if v[i], err = wr.str(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func read[T float64 | int64 | bool](r io.Reader, n int) ([]T, error) {
	v := make([]T, n)
	return v, binary.Read(r, binary.LittleEndian, v)
}

func (wr *wireReader) chunk(inputs []dataset.Field) (*logChunk, error) {
	un, err := binary.ReadUvarint(wr.r)
	if err != nil {
		return nil, err
	}
	if un > 1<<24 {
		return nil, fmt.Errorf("a chunk of %d rows", un)
	}
	n, k := int(un), len(inputs)
	c := &logChunk{floats: make([][]float64, k), ints: make([][]int64, k), strs: make([][]string, k),
		bools: make([][]bool, k), valid: make([][]bool, k)}
	for j, f := range inputs {
		switch f.Type {
		case dataset.Float64:
			if c.floats[j], err = read[float64](wr.r, n); err != nil {
				return nil, err
			}
			continue
		case dataset.Int64:
			c.ints[j], err = read[int64](wr.r, n)
		case dataset.Bool:
			c.bools[j], err = read[bool](wr.r, n)
		default:
			c.strs[j], err = wr.strs(n)
		}
		if err != nil {
			return nil, err
		}
		if c.valid[j], err = read[bool](wr.r, n); err != nil {
			return nil, err
		}
	}
	if c.pred, err = read[float64](wr.r, n); err != nil {
		return nil, err
	}
	if c.version, err = read[int64](wr.r, n); err != nil {
		return nil, err
	}
	if c.variant, err = wr.strs(n); err != nil {
		return nil, err
	}
	if c.latency, err = read[float64](wr.r, n); err != nil {
		return nil, err
	}
	if c.ts, err = read[int64](wr.r, n); err != nil {
		return nil, err
	}
	if c.ids, err = wr.strs(n); err != nil {
		return nil, err
	}
	return c, nil
}

// logProc is the server's end of a log writer child.
type logProc struct {
	mu   sync.Mutex   // one file at a time on the pipe
	wait func() error // the child's exit
	in   io.WriteCloser
	ww   *wireWriter
	done chan struct{} // closed when the child's output is read to its end
	dead bool
	sent int // files handed over whole
	// queued counts the files being handed over or waiting to be (at
	// most maxQueued; see trySend).
	queued atomic.Int32
}

// newLogProc is the server's end of a started child: in is its input,
// out its output (the files it wrote), wait waits for it to exit.
func newLogProc(in io.WriteCloser, out io.Reader, wait func() error, written func(model, path string)) *logProc {
	p := &logProc{wait: wait, in: in, ww: &wireWriter{w: bufio.NewWriterSize(in, 64<<10)}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			model, path, ok := strings.Cut(sc.Text(), "\t")
			if ok && written != nil {
				written(model, path)
			}
		}
	}()
	return p
}

// maxQueued is how many files the server hands the child at a time: one
// being sent and one waiting, because a flush usually holds two buffers (a
// stable version's and a canary's) at once.
const maxQueued = 2

// trySend hands b to the child, as send does, unless maxQueued files are
// already on their way to it; then it reports false and the caller writes b
// itself. Without that bound a child that cannot keep up (at idle priority
// on a server whose core is always busy, it gets no time at all) would
// leave every later buffer waiting in the server's memory: make bench-serve
// saw the server's heap grow by 14 MB a second at 36,000 requests a second,
// and a throughput that did not pay for the log. With it, the server writes
// what the child cannot, and at most maxQueued buffers wait on the child.
func (p *logProc) trySend(b *logBuffer, path string) (bool, error) {
	if p.queued.Add(1) > maxQueued {
		p.queued.Add(-1)
		return false, nil
	}
	defer p.queued.Add(-1)
	return true, p.send(b, path)
}

// send hands one buffer to the child, to be written at path. An error
// means the child is gone; the caller writes the buffer itself.
func (p *logProc) send(b *logBuffer, path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return errors.New("the request log writer has exited")
	}
	err := p.ww.begin(path, b.model, b.inputs)
	for k, c := range b.chunks {
		if err != nil {
			break
		}
		if k > 0 {
			time.Sleep(logPause) // copying a chunk into the pipe is work too
		}
		err = p.ww.chunk(b.inputs, c)
	}
	if err == nil {
		err = p.ww.end()
	}
	if err != nil {
		p.dead = true
		return fmt.Errorf("request log writer: %w", err)
	}
	p.sent++
	return nil
}

// close ends the child's input and waits for it to write what it has. A
// child that had already failed (its files were written in the server
// instead) is no error.
func (p *logProc) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	failed := p.dead
	p.dead = true
	p.in.Close()
	<-p.done
	if err := p.wait(); err != nil && !failed {
		return err
	}
	return nil
}

// RunLogWriter is the log writer child's main loop (`kiln serve`'s hidden
// log-writer command): it writes the files the server sends on r as the
// server would and reports each on w as "<model>\t<path>" once it is
// whole. It returns at the end of r.
func RunLogWriter(ctx context.Context, r io.Reader, w io.Writer) error {
	wr := &wireReader{r: bufio.NewReaderSize(r, 1<<20)}
	var (
		fw          *dataset.Writer
		path, model string
		inputs      []dataset.Field
		schema      dataset.Schema
	)
	defer func() {
		if fw != nil {
			fw.Abort()
		}
	}()
	for {
		kind, err := wr.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("request log writer: reading: %w", err)
		}
		switch kind {
		case msgBegin:
			if fw != nil {
				fw.Abort()
				fw = nil
			}
			var js string
			if path, err = wr.str(); err == nil {
				if model, err = wr.str(); err == nil {
					js, err = wr.str()
				}
			}
			if err != nil {
				return fmt.Errorf("request log writer: reading: %w", err)
			}
			inputs = nil
			if err := json.Unmarshal([]byte(js), &inputs); err != nil {
				return fmt.Errorf("request log writer: inputs: %w", err)
			}
			schema = dataset.Schema{Fields: append(append([]dataset.Field{}, inputs...), LogFields...)}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if fw, err = dataset.CreateParquet(path, schema, logWriterOptions); err != nil {
				return fmt.Errorf("request log of %s: %w", model, err)
			}
		case msgChunk:
			if fw == nil {
				return errors.New("request log writer: a chunk outside a file")
			}
			c, err := wr.chunk(inputs)
			if err != nil {
				return fmt.Errorf("request log writer: reading: %w", err)
			}
			rec, err := c.record(inputs, schema)
			if err != nil {
				return fmt.Errorf("request log of %s: %w", model, err)
			}
			err = fw.Write(rec)
			rec.Release()
			if err != nil {
				return fmt.Errorf("request log of %s: %w", model, err)
			}
		case msgEnd:
			if fw == nil {
				return errors.New("request log writer: an end outside a file")
			}
			if _, err := fw.Commit(); err != nil {
				return fmt.Errorf("request log of %s: %w", model, err)
			}
			fw = nil
			if _, err := fmt.Fprintf(w, "%s\t%s\n", model, path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("request log writer: unknown message %q", kind)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
