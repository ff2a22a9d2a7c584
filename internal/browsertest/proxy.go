package browsertest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Request is one request (or connection attempt) the recording proxy saw.
type Request struct {
	// Kind says how it reached the proxy:
	//   "proxy"   an HTTP request sent to the proxy (absolute URL);
	//   "connect" a CONNECT tunnel request (https://, wss://);
	//   "direct"  an HTTP request sent straight to a host that the host
	//             resolver rule mapped onto the proxy (the proxy was bypassed);
	//   "tls"     a TLS handshake sent straight to such a host (URL is
	//             https://SNI/ when the client named the server);
	//   "raw"     any other bytes on a connection.
	Kind string
	// Method is the HTTP method ("" for tls and raw).
	Method string
	// URL is the requested URL (for connect, "https://host:port").
	URL string
	// Forwarded is true when the proxy passed the request on to an allowed
	// host; every other request was refused.
	Forwarded bool
	// Body is the start (at most 2 KiB) of a refused request's body, which
	// helps to tell who sent it.
	Body string
}

func (r Request) String() string {
	s := r.Kind + " " + r.Method + " " + r.URL
	if r.Method == "" {
		s = r.Kind + " " + r.URL
	}
	if r.Forwarded {
		s += " (forwarded)"
	}
	return s
}

// Proxy is an HTTP proxy on a free 127.0.0.1 port that records every request
// it sees and refuses all of them except plain-HTTP requests to the allowed
// hosts (host:port), which it forwards. It also answers connections made
// straight to it (through a host resolver rule that maps every host onto
// it): those are recorded and refused as well.
type Proxy struct {
	ln    net.Listener
	allow map[string]bool
	tr    *http.Transport

	mu    sync.Mutex
	reqs  []Request
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewProxy starts a recording proxy that forwards plain-HTTP requests whose
// host:port is one of allow.
func NewProxy(allow ...string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln:    ln,
		allow: map[string]bool{},
		// Forwarding goes straight to the allowed host, never through
		// HTTP_PROXY from the environment.
		tr:    &http.Transport{Proxy: nil, DisableKeepAlives: true, ResponseHeaderTimeout: 30 * time.Second},
		conns: map[net.Conn]bool{},
	}
	for _, a := range allow {
		p.allow[strings.ToLower(a)] = true
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Requests returns what the proxy has seen so far, in arrival order.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Close stops the proxy and closes its open connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
	return err
}

func (p *Proxy) record(r Request) {
	p.mu.Lock()
	p.reqs = append(p.reqs, r)
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
			c.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// handle serves one connection: HTTP requests (kept alive) until the client
// closes it, or one TLS handshake or unknown bytes, recorded and refused.
func (p *Proxy) handle(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		if first[0] == 0x16 { // a TLS handshake record: someone bypassed the proxy for https
			p.record(Request{Kind: "tls", URL: sniff(c, br)})
			return
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			buf, _ := br.Peek(br.Buffered())
			p.record(Request{Kind: "raw", URL: fmt.Sprintf("%q", clip(string(buf), 80))})
			return
		}
		if !p.handleRequest(c, req) {
			return
		}
	}
}

// handleRequest records and answers one HTTP request; it returns whether the
// connection may carry another.
func (p *Proxy) handleRequest(c net.Conn, req *http.Request) bool {
	defer req.Body.Close()
	switch {
	case req.Method == http.MethodConnect:
		p.record(Request{Kind: "connect", Method: req.Method, URL: "https://" + req.RequestURI})
		refuse(c, req)
		return false
	case req.URL.IsAbs():
		host := strings.ToLower(req.URL.Host)
		if req.URL.Port() == "" && req.URL.Scheme == "http" {
			host += ":80"
		}
		allowed := req.URL.Scheme == "http" && p.allow[host]
		if !allowed {
			p.record(Request{Kind: "proxy", Method: req.Method, URL: req.URL.String(), Body: readBody(req)})
			return refuse(c, req)
		}
		p.record(Request{Kind: "proxy", Method: req.Method, URL: req.URL.String(), Forwarded: true})
		return p.forward(c, req)
	default:
		p.record(Request{Kind: "direct", Method: req.Method, URL: "http://" + req.Host + req.URL.RequestURI(), Body: readBody(req)})
		return refuse(c, req)
	}
}

func (p *Proxy) forward(c net.Conn, req *http.Request) bool {
	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Connection")
	out.Header.Del("Proxy-Authorization")
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		body := "browsertest proxy: " + err.Error() + "\n"
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		return false
	}
	defer resp.Body.Close()
	resp.Close = true // one response per forwarded connection keeps it simple
	resp.Write(c)
	return false
}

// readBody reads the start of a request's body for the record.
func readBody(req *http.Request) string {
	b, _ := io.ReadAll(io.LimitReader(req.Body, 2<<10))
	return string(b)
}

// refuse answers 403 and keeps the connection for the next request.
func refuse(c net.Conn, req *http.Request) bool {
	io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
	body := "blocked by browsertest: no request may leave the page\n"
	if req.Method == http.MethodConnect {
		fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return false
	}
	_, err := fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return err == nil
}

// sniff reads a TLS ClientHello and returns "https://SNI/" (or a note when
// the client sent no server name); the handshake is then abandoned.
func sniff(c net.Conn, br *bufio.Reader) string {
	var name string
	errStop := errors.New("stop")
	tc := tls.Server(&prefixConn{Conn: c, r: br}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name = h.ServerName
			return nil, errStop
		},
	})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc.Handshake()
	if name == "" {
		return "https://(no server name)/"
	}
	return "https://" + name + "/"
}

type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
