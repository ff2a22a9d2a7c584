package serving

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fastFixture is a server with the churn model deployed, served by
// FastHTTP on loopback.
type fastFixture struct {
	s    *Server
	fs   *FastHTTP
	addr string
	body string // a one-instance v1 predict body
	want float64
}

func newFastFixture(t *testing.T) *fastFixture {
	t.Helper()
	uri, dir := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	fs, url := serveFast(t, s)
	return &fastFixture{s: s, fs: fs, addr: strings.TrimPrefix(url, "http://"), body: predictV1Body(t, instances[:1]),
		want: wantPredictions(t, dir, instances[:1])[0]}
}

// predictRequest is a raw HTTP/1.1 predict request for body with extra
// header lines.
func (f *fastFixture) predictRequest(body string, headers ...string) string {
	h := ""
	for _, x := range headers {
		h += x + "\r\n"
	}
	return fmt.Sprintf("POST /v1/models/churn:predict HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", h, len(body), body)
}

// checkPrediction reads one response from br and checks it is the
// fixture's prediction.
func (f *fastFixture) checkPrediction(t *testing.T, br *bufio.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var got PredictResponse
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(got.Predictions) != 1 || got.Predictions[0] != f.want {
		t.Fatalf("predictions %v, want [%v]", got.Predictions, f.want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Header.Get("Date") == "" || resp.ContentLength != int64(len(b)) {
		t.Errorf("Date %q, Content-Length %d for %d bytes", resp.Header.Get("Date"), resp.ContentLength, len(b))
	}
	return resp
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// TestFastHTTPPipelined: requests sent together, and a head that arrives
// in pieces, are answered in order on the fast path.
func TestFastHTTPPipelined(t *testing.T) {
	f := newFastFixture(t)
	c, br := dial(t, f.addr)
	req := f.predictRequest(f.body)
	if _, err := io.WriteString(c, req+req+req); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.checkPrediction(t, br)
	}
	// One request in three writes, the head cut in the middle of a line.
	for _, part := range []string{req[:20], req[20:70], req[70:]} {
		if _, err := io.WriteString(c, part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.checkPrediction(t, br)
	if n, h := f.fs.answered.Load(), f.fs.handedOff.Load(); n != 4 || h != 0 {
		t.Errorf("%d answered on the fast path, %d handed off; want 4 and 0", n, h)
	}
}

// TestFastHTTPConnectionClose: a request with Connection: close is answered
// with it, and the connection closes.
func TestFastHTTPConnectionClose(t *testing.T) {
	f := newFastFixture(t)
	c, br := dial(t, f.addr)
	io.WriteString(c, f.predictRequest(f.body, "Connection: close"))
	resp := f.checkPrediction(t, br)
	if !resp.Close {
		t.Error("the answer has no Connection: close")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("read after the answer: %v, want EOF", err)
	}
}

// TestFastHTTPHandOff: what the fast path does not read goes to net/http
// with the bytes already read, and the connection stays there.
func TestFastHTTPHandOff(t *testing.T) {
	f := newFastFixture(t)
	chunked := "POST /v1/models/churn:predict HTTP/1.1\r\nHost: kiln\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(f.body), f.body)
	tests := []struct {
		name string
		req  string
		code int
		body string // a substring of the answer
	}{
		{"GET route", "GET /healthz HTTP/1.1\r\nHost: kiln\r\n\r\n", 200, "ok"},
		{"lines ended by LF", strings.ReplaceAll(f.predictRequest(f.body), "\r\n", "\n"), 200, `"predictions"`},
		{"chunked body", chunked, 200, `"predictions"`},
		{"HTTP/1.0", strings.Replace(f.predictRequest(f.body), "HTTP/1.1", "HTTP/1.0", 1), 200, `"predictions"`},
		{"query", strings.Replace(f.predictRequest(f.body), ":predict ", ":predict?x=1 ", 1), 200, `"predictions"`},
		{"bad Content-Length", "POST /v1/models/churn:predict HTTP/1.1\r\nHost: kiln\r\nContent-Length: 1x\r\n\r\n", 400, ""},
		{"no Host", "POST /v1/models/churn:predict HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400, ""},
		{"unknown v2 route", "POST /v2/models/churn/explain HTTP/1.1\r\nHost: kiln\r\nContent-Length: 2\r\n\r\n{}", 404, ""},
		{"admin route", "GET /admin/v1/models/churn/stats HTTP/1.1\r\nHost: kiln\r\n\r\n", 403, "admin routes are disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, f.addr)
			// A predict request on the fast path first, then the one
			// handed off, then another predict request (net/http's now).
			io.WriteString(c, f.predictRequest(f.body))
			f.checkPrediction(t, br)
			io.WriteString(c, tt.req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.body) {
				t.Fatalf("status %d %q, want %d and %q", resp.StatusCode, b, tt.code, tt.body)
			}
			if resp.Close {
				return // net/http closes after a malformed request
			}
			io.WriteString(c, f.predictRequest(f.body))
			f.checkPrediction(t, br)
		})
	}
	if n := f.fs.handedOff.Load(); n != int64(len(tests)) {
		t.Errorf("%d connections handed off, want %d", n, len(tests))
	}
}

// TestFastHTTPShutdown: Shutdown closes idle keep-alive connections, its
// own and net/http's, and returns.
func TestFastHTTPShutdown(t *testing.T) {
	f := newFastFixture(t)
	c1, br1 := dial(t, f.addr)
	io.WriteString(c1, f.predictRequest(f.body))
	f.checkPrediction(t, br1)
	c2, br2 := dial(t, f.addr)
	io.WriteString(c2, "GET /healthz HTTP/1.1\r\nHost: kiln\r\n\r\n")
	resp, err := http.ReadResponse(br2, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	io.ReadAll(resp.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.fs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Shutdown took %v with only idle connections", el)
	}
	for i, br := range []*bufio.Reader{br1, br2} {
		if b, err := br.ReadByte(); err == nil {
			t.Errorf("connection %d is still open after Shutdown (read %q)", i+1, b)
		}
	}
	if _, err := net.DialTimeout("tcp", f.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// FuzzFastHTTPHead: reading and parsing any request head neither panics
// nor accepts what it should leave to net/http.
func FuzzFastHTTPHead(f *testing.F) {
	f.Add([]byte("POST /v1/models/churn:predict HTTP/1.1\r\nHost: kiln\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("POST /v2/models/churn/versions/3/infer HTTP/1.1\r\nHost: k\r\nconnection: keep-alive, close\r\ncontent-length: 0\r\n\r\n"))
	f.Add([]byte("POST /v1/models/a//b HTTP/1.1\r\nHost: k\r\nContent-Length: 1\r\n\r\nx"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := fastStates.Get().(*fastState)
		defer fastStates.Put(st)
		st.br.Reset(strings.NewReader(string(data)))
		fh := &FastHTTP{}
		c, _ := net.Pipe()
		defer c.Close()
		if _, err := st.br.Peek(1); err != nil {
			return
		}
		h, ok := fh.readHead(c, st.br)
		if !ok || !st.parse(&h) {
			return
		}
		head := string(data[:h.size])
		if !strings.HasPrefix(head, "POST /v") || !strings.Contains(head, " HTTP/1.1\r\n") {
			t.Fatalf("accepted %q", head)
		}
		if h.length < 0 || h.length > maxBodyBytes || h.host == "" || h.name == "" || strings.ContainsAny(h.path, "?%#") {
			t.Fatalf("accepted %q as %+v", head, h)
		}
		lower := strings.ToLower(head)
		for _, bad := range []string{"\ntransfer-encoding:", "\nexpect:", "\nupgrade:"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("accepted %q with %s", head, bad)
			}
		}
	})
}
