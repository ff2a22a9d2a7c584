package containers

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

const (
	// maxLineBytes bounds a buffered output line; longer lines are split.
	maxLineBytes = 64 << 10
	// tailLines and tailLineBytes bound RunError.LogTail.
	tailLines     = 10
	tailLineBytes = 512
)

// outputSink turns a trainer's stdout and stderr into progress callbacks,
// log lines and a tail of stderr. It is safe for concurrent use by the two
// stream writers.
type outputSink struct {
	mu       sync.Mutex
	progress func(Progress)
	log      io.Writer
	tail     []string
}

func newOutputSink(spec RunSpec) *outputSink {
	return &outputSink{progress: spec.Progress, log: spec.Log}
}

// line handles one complete line (without its newline).
func (s *outputSink) line(stderr bool, line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !stderr {
		if p, ok := parseProgress(line); ok {
			if s.progress != nil {
				s.progress(p)
			}
			return
		}
	}
	if s.log != nil {
		buf := make([]byte, 0, len(line)+1)
		buf = append(append(buf, line...), '\n')
		_, _ = s.log.Write(buf) // Documented: log write errors are ignored.
	}
	if stderr {
		t := string(line)
		if len(t) > tailLineBytes {
			t = t[:runeCut(line, tailLineBytes)] + "…"
		}
		if len(s.tail) == tailLines {
			copy(s.tail, s.tail[1:])
			s.tail = s.tail[:tailLines-1]
		}
		s.tail = append(s.tail, t)
	}
}

// logTail returns the last stderr lines.
func (s *outputSink) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(strings.Join(s.tail, "\n"))
}

// parseProgress parses a `KILN_PROGRESS {"pct": …, "msg": …}` line.
func parseProgress(line []byte) (Progress, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(ProgressPrefix))
	if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
		return Progress{}, false
	}
	var p Progress
	if err := json.Unmarshal(bytes.TrimSpace(rest), &p); err != nil {
		return Progress{}, false
	}
	return p, true
}

// lineWriter splits one stream into lines for an outputSink.
type lineWriter struct {
	sink   *outputSink
	stderr bool
	buf    []byte
}

// Write buffers p and hands every complete line to the sink. Lines longer
// than maxLineBytes are split, which bounds the buffer.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf, p = append(w.buf, p...), nil
		} else {
			w.buf, p = append(w.buf, p[:i]...), p[i+1:]
		}
		for len(w.buf) > maxLineBytes {
			cut := runeCut(w.buf, maxLineBytes)
			w.sink.line(w.stderr, w.buf[:cut])
			w.buf = append(w.buf[:0], w.buf[cut:]...)
		}
		if i >= 0 {
			w.sink.line(w.stderr, w.buf)
			w.buf = w.buf[:0]
		}
	}
	return n, nil
}

// runeCut returns where to cut b (len(b) > n) to keep at most n bytes
// without splitting a UTF-8 sequence: n, or the start of the valid sequence
// that byte n is inside. Bytes that are not valid UTF-8 are cut at n.
func runeCut(b []byte, n int) int {
	for i := n; i >= 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if _, size := utf8.DecodeRune(b[i:]); i+size > n {
				return i
			}
			return n
		}
	}
	return n
}

// flush hands a final unterminated line to the sink.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.sink.line(w.stderr, w.buf)
		w.buf = w.buf[:0]
	}
}
