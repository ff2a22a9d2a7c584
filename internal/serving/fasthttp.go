package serving

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FastHTTP serves a Server's HTTP API on plain TCP connections, answering
// the prediction routes itself and everything else through net/http.
//
// A profile of kiln serve under make bench-serve's load (one row per
// request, 32 keep-alive connections, one core) put 16% of the core in
// net/http's own work around the handler: parsing the request into maps,
// a goroutine per request that waits on the connection to notice a client
// going away, read deadlines set and reset per request, the response's
// header map. FastHTTP reads the two prediction routes of HTTP/1.1 itself
// (POST /v1/models/{name}, the KServe v1 predict route, and POST
// /v2/models/{name}[/versions/{version}]/infer) and calls the same handlers
// with a request it builds; any other request (another route or method,
// HTTP/1.0, a chunked or oversized body, Expect, Upgrade, an unusual path,
// headers longer than its buffer) is handed to the net/http server with the
// bytes already read, and the connection stays there. So the answers are
// net/http's and the handlers' own, byte for byte but for header order.
type FastHTTP struct {
	s  *Server
	hs *http.Server
	// readHeaderTimeout bounds how long a request's headers may take once
	// its first byte has arrived: hs's ReadHeaderTimeout (its ReadTimeout
	// when that is zero), as net/http applies it.
	readHeaderTimeout time.Duration

	handoff *connQueue
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	ln      net.Listener
	closed  bool
	active  sync.WaitGroup
	// answered counts the requests answered here; handedOff the
	// connections handed to net/http.
	answered, handedOff atomic.Int64
}

// NewFastHTTP returns a FastHTTP for s that hands what it does not answer
// to hs, which must serve s.Handler() (its TLS settings are not used).
func NewFastHTTP(s *Server, hs *http.Server) *FastHTTP {
	t := hs.ReadHeaderTimeout
	if t == 0 {
		t = hs.ReadTimeout
	}
	return &FastHTTP{s: s, hs: hs, readHeaderTimeout: t, conns: map[*fastConn]struct{}{}}
}

// Serve accepts connections on ln until Shutdown, which makes it return
// http.ErrServerClosed.
func (f *FastHTTP) Serve(ln net.Listener) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return http.ErrServerClosed
	}
	f.ln = ln
	f.handoff = &connQueue{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	f.mu.Unlock()
	served := make(chan error, 1)
	go func() { served <- f.hs.Serve(f.handoff) }()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.isClosed() {
				<-served
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// As net/http does on a temporary accept error (too many
				// open files, a connection aborted before it was accepted).
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			f.handoff.Close()
			<-served
			return err
		}
		delay = 0
		fc := &fastConn{c: c}
		if !f.track(fc) {
			c.Close()
			continue
		}
		go f.serveConn(fc)
	}
}

// Shutdown stops accepting, closes idle connections, waits for the
// requests under way (its own and net/http's) to be answered, and returns;
// when ctx ends first it closes the rest and returns ctx's error.
func (f *FastHTTP) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	ln := f.ln
	for fc := range f.conns {
		if fc.idle.Load() {
			fc.c.Close()
		}
	}
	f.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if f.handoff != nil {
		f.handoff.Close()
	}
	herr := f.hs.Shutdown(ctx)
	done := make(chan struct{})
	go func() {
		f.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return herr
	case <-ctx.Done():
		f.mu.Lock()
		for fc := range f.conns {
			fc.c.Close()
		}
		f.mu.Unlock()
		return ctx.Err()
	}
}

func (f *FastHTTP) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// track adds fc to the open connections; false after Shutdown.
func (f *FastHTTP) track(fc *fastConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[fc] = struct{}{}
	f.active.Add(1)
	return true
}

func (f *FastHTTP) untrack(fc *fastConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
	f.active.Done()
}

// fastConn is one connection FastHTTP serves.
type fastConn struct {
	c    net.Conn
	idle atomic.Bool // waiting for a request: Shutdown may close it
}

// fastBufSize is the size of a connection's read and write buffers: a
// request's head must fit in it to be read here.
const fastBufSize = 8 << 10

// fastState is the per-connection state reused from request to request.
type fastState struct {
	br   *bufio.Reader
	bw   *bufio.Writer
	req  http.Request
	url  url.URL
	hdr  http.Header
	body bytes.Reader
	buf  []byte // the request's body
	resp fastResponse
	out  []byte
}

var fastStates = sync.Pool{New: func() any {
	return &fastState{br: bufio.NewReaderSize(nil, fastBufSize), bw: bufio.NewWriterSize(nil, fastBufSize),
		hdr: http.Header{}, resp: fastResponse{hdr: http.Header{}}}
}}

func (f *FastHTTP) serveConn(fc *fastConn) {
	st := fastStates.Get().(*fastState)
	st.br.Reset(fc.c)
	st.bw.Reset(fc.c)
	handedOff := false
	defer func() {
		if !handedOff {
			fc.c.Close()
		}
		f.untrack(fc)
		st.br.Reset(nil)
		st.bw.Reset(nil)
		if cap(st.buf) <= 64<<10 {
			fastStates.Put(st)
		}
	}()
	for {
		fc.idle.Store(true)
		if f.isClosed() {
			return
		}
		if st.br.Buffered() == 0 {
			if err := st.bw.Flush(); err != nil {
				return
			}
		}
		if _, err := st.br.Peek(1); err != nil {
			return // the client closed the connection, or Shutdown did
		}
		fc.idle.Store(false)
		h, ok := f.readHead(fc.c, st.br)
		if ok {
			ok = st.parse(&h)
		}
		if !ok {
			// net/http answers this request and the rest of the connection.
			if st.bw.Flush() != nil {
				return
			}
			buffered, _ := st.br.Peek(st.br.Buffered())
			pc := &prefixConn{Conn: fc.c, r: io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), fc.c)}
			if f.handoff.put(pc) {
				handedOff = true
				f.handedOff.Add(1)
			}
			return
		}
		if _, err := st.br.Discard(h.size); err != nil {
			return
		}
		if cap(st.buf) < h.length {
			st.buf = make([]byte, h.length)
		}
		st.buf = st.buf[:h.length]
		if _, err := io.ReadFull(st.br, st.buf); err != nil {
			return
		}
		ok = f.answer(st, h)
		if cap(st.buf) > 64<<10 {
			st.buf = nil // a large body's buffer is not kept for the connection's life
		}
		if !ok {
			return
		}
		f.answered.Add(1)
		if h.close {
			st.bw.Flush()
			return
		}
	}
}

// answer runs the handler of h's route and writes its response; false
// when the connection must close (a panic in the handler, a failed write).
func (f *FastHTTP) answer(st *fastState, h fastHead) (ok bool) {
	st.body.Reset(st.buf)
	if st.req.Method == "" {
		// Kept from request to request: SetPathValue allocates its map once.
		st.req = http.Request{Method: http.MethodPost, URL: &st.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: st.hdr, Body: io.NopCloser(&st.body)}
	}
	st.url = url.URL{Path: h.path}
	st.req.ContentLength, st.req.Host, st.req.RequestURI = int64(h.length), h.host, h.path
	st.resp.reset()
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				ok = false
				return
			}
			f.s.log.Error("http: panic serving a request", "path", h.path, "panic", p)
			ok = false
		}
	}()
	r := &st.req
	r.SetPathValue("name", h.name)
	r.SetPathValue("version", h.version)
	switch h.route {
	case routeV1Predict:
		f.s.handlePredictV1(&st.resp, r)
	case routeV2Infer:
		f.s.handleInferV2(&st.resp, r)
	}
	st.out = st.resp.appendTo(st.out[:0], h.close)
	_, err := st.bw.Write(st.out)
	if cap(st.out) > 64<<10 {
		st.out = nil
	}
	return err == nil
}

// The routes FastHTTP answers.
const (
	routeV1Predict = iota + 1
	routeV2Infer
)

// fastHead is what FastHTTP reads of a request's head.
type fastHead struct {
	size          int // bytes of the head, blank line included
	route         int
	path          string
	name, version string
	host          string
	length        int
	close         bool
}

var headEnd = []byte("\r\n\r\n")

// readHead returns the head of the next request, which must fit in br's
// buffer (false otherwise: the caller hands the connection over). Waiting
// for more than the bytes already here starts the header timeout.
func (f *FastHTTP) readHead(c net.Conn, br *bufio.Reader) (fastHead, bool) {
	deadline := false
	defer func() {
		if deadline {
			c.SetReadDeadline(time.Time{})
		}
	}()
	for n := br.Buffered(); ; n = br.Buffered() {
		b, _ := br.Peek(n)
		if i := bytes.Index(b, headEnd); i >= 0 {
			return fastHead{size: i + len(headEnd)}, true
		}
		if bytes.Contains(b, []byte("\n\n")) {
			return fastHead{}, false // lines ended by LF alone: net/http reads those
		}
		if n >= br.Size() {
			return fastHead{}, false
		}
		if !deadline && f.readHeaderTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(f.readHeaderTimeout))
			deadline = true
		}
		if _, err := br.Peek(n + 1); err != nil {
			return fastHead{}, false // net/http answers what it can of it
		}
	}
}

// parse parses the head h.size bytes at the start of st.br into h and
// st.hdr; false for anything FastHTTP leaves to net/http.
func (st *fastState) parse(h *fastHead) bool {
	b, _ := st.br.Peek(h.size)
	b = b[:h.size-2] // the lines, each ending in CRLF
	line, rest, _ := bytes.Cut(b, []byte("\r\n"))
	target, ok := bytes.CutPrefix(line, []byte("POST "))
	if !ok {
		return false
	}
	target, ok = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !ok || !plainPath(target) {
		return false
	}
	if parseRoute(h, target); h.route == 0 {
		return false
	}
	clear(st.hdr)
	h.length = -1
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !tokenBytes(name) {
			return false // also an obsolete line folding (a line starting with a space)
		}
		value = bytes.Trim(value, " \t")
		key := canonicalHeader(name)
		switch key {
		case "Content-Length":
			if h.length >= 0 {
				return false
			}
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > maxBodyBytes || !digits(value) {
				return false
			}
			h.length = n
		case "Transfer-Encoding", "Expect", "Upgrade", "Trailer":
			return false
		case "Connection":
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					h.close = true
				case bytes.EqualFold(tok, []byte("upgrade")):
					return false
				}
			}
		case "Host":
			if h.host != "" {
				return false
			}
			h.host = string(value)
		}
		if !validHeaderValue(value) {
			return false
		}
		st.hdr[key] = append(st.hdr[key], string(value))
	}
	return h.length >= 0 && h.host != ""
}

// parseRoute sets h's route, path and path values from a request target;
// h.route stays 0 for a target of another route.
func parseRoute(h *fastHead, target []byte) {
	if rest, ok := bytes.CutPrefix(target, []byte("/v1/models/")); ok {
		if len(rest) > 0 && bytes.IndexByte(rest, '/') < 0 {
			h.route, h.name = routeV1Predict, string(rest)
		}
	} else if rest, ok := bytes.CutPrefix(target, []byte("/v2/models/")); ok {
		if rest, ok := bytes.CutSuffix(rest, []byte("/infer")); ok {
			name, version, hasVersion := bytes.Cut(rest, []byte("/versions/"))
			switch {
			case len(name) == 0 || bytes.IndexByte(name, '/') >= 0:
			case !hasVersion:
				h.route, h.name = routeV2Infer, string(name)
			case len(version) > 0 && bytes.IndexByte(version, '/') < 0:
				h.route, h.name, h.version = routeV2Infer, string(name), string(version)
			}
		}
	}
	if h.route != 0 {
		h.path = string(target)
	}
}

// plainPath reports whether target is an absolute path that net/http's
// mux would route as it is: no query, escapes, dot or empty segments.
func plainPath(target []byte) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	for i, c := range target {
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return false
		}
		if c == '/' && i+1 < len(target) && (target[i+1] == '/' || target[i+1] == '.') {
			return false
		}
	}
	return target[len(target)-1] != '/'
}

// tokenBytes reports whether b is an HTTP token (a header name).
func tokenBytes(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// validHeaderValue reports whether v has no control bytes but tab.
func validHeaderValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// commonHeaders are canonical names kept as strings, so that reading them
// allocates nothing.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Host", "Content-Type", "Content-Length", "Connection", "User-Agent", "Accept",
		"Accept-Encoding", "Authorization", "Transfer-Encoding", "Expect", "Upgrade", "Trailer", WarningHeader} {
		m[k] = k
	}
	return m
}()

// canonicalHeader is http.CanonicalHeaderKey without an allocation for the
// usual names.
func canonicalHeader(name []byte) string {
	if k, ok := commonHeaders[string(name)]; ok {
		return k
	}
	return http.CanonicalHeaderKey(string(name))
}

// fastResponse is the http.ResponseWriter FastHTTP hands the handlers: it
// keeps the answer until the handler returns, then writes it whole with its
// Content-Length.
type fastResponse struct {
	hdr         http.Header
	code        int
	wroteHeader bool
	body        []byte
}

func (w *fastResponse) reset() {
	clear(w.hdr)
	w.code, w.wroteHeader, w.body = http.StatusOK, false, w.body[:0]
}

// Header implements http.ResponseWriter.
func (w *fastResponse) Header() http.Header { return w.hdr }

// WriteHeader implements http.ResponseWriter.
func (w *fastResponse) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
}

// Write implements http.ResponseWriter.
func (w *fastResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// appendTo appends the response as HTTP/1.1 bytes: status line, the
// handler's headers, Date, Content-Length (and Content-Type, sniffed as
// net/http does, when the handler set none), Connection: close when the
// connection closes after it, and the body.
func (w *fastResponse) appendTo(b []byte, closing bool) []byte {
	b = fmt.Appendf(b, "HTTP/1.1 %03d %s\r\n", w.code, http.StatusText(w.code))
	if _, ok := w.hdr["Content-Type"]; !ok && len(w.body) > 0 {
		w.hdr.Set("Content-Type", http.DetectContentType(w.body))
	}
	for k, vs := range w.hdr {
		if k == "Content-Length" || k == "Date" || k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := range len(v) { // as net/http: no line breaks in a value
				if c := v[i]; c == '\r' || c == '\n' {
					b = append(b, ' ')
				} else {
					b = append(b, c)
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Date: "...)
	b = append(b, httpDate()...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, w.body...)
}

// dateCache is the Date header's value of the current second.
var dateCache atomic.Pointer[cachedDate]

type cachedDate struct {
	sec int64
	val string
}

func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &cachedDate{sec: now.Unix(), val: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.val
}

// prefixConn is a connection handed to net/http with the bytes FastHTTP
// had already read.
type prefixConn struct {
	net.Conn
	r io.Reader
}

// Read implements net.Conn.
func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connQueue is the net.Listener net/http serves: it accepts the
// connections FastHTTP hands over.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

// put hands c to net/http; false (and c closed) after Close.
func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		c.Close()
		return false
	}
}

// Accept implements net.Listener.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr implements net.Listener.
func (q *connQueue) Addr() net.Addr { return q.addr }
