package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxyRecordsAndRefuses drives the recording proxy without a browser:
// proxied HTTP, CONNECT, a request sent straight to it and a TLS handshake
// are all recorded and refused; HTTP to an allowed host is forwarded.
func TestProxyRecordsAndRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	p, err := NewProxy(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	purl, _ := url.Parse("http://" + p.Addr())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(purl), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}

	// Forwarded.
	resp, err := client.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("allowed request: %d %q", resp.StatusCode, body)
	}
	// Refused, twice on one kept-alive connection.
	for i := 0; i < 2; i++ {
		resp, err = client.Get("http://example.invalid/x.png")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("refused request: status %d", resp.StatusCode)
		}
	}
	// CONNECT (https through the proxy).
	if _, err := client.Get("https://example.invalid/y"); err == nil {
		t.Error("https through the proxy did not fail")
	}
	// Straight to the proxy's port, as the host resolver rule sends them.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /direct HTTP/1.1\r\nHost: direct.invalid\r\n\r\n")
	if r, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || r.StatusCode != http.StatusForbidden {
		t.Errorf("direct request: %v %v", r, err)
	}
	c.Close()
	tc, err := tls.Dial("tcp", p.Addr(), &tls.Config{ServerName: "tls.invalid", InsecureSkipVerify: true})
	if err == nil {
		tc.Close()
		t.Error("TLS handshake with the proxy succeeded")
	}

	want := []string{
		"proxy GET " + srv.URL + "/ok (forwarded)",
		"proxy GET http://example.invalid/x.png",
		"proxy GET http://example.invalid/x.png",
		"connect CONNECT https://example.invalid:443",
		"direct GET http://direct.invalid/direct",
		"tls https://tls.invalid/",
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Requests()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for _, r := range p.Requests() {
		got = append(got, r.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recorded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func writePage(t *testing.T, html string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(f, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + f
}

// TestChromiumFileQuiet loads a self-contained page: no request, the DOM
// after load (with what a script wrote) and a screenshot of the right size
// and colours.
func TestChromiumFileQuiet(t *testing.T) {
	b := New(t)
	page := writePage(t, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"><style>body{margin:0;background:#fff}</style></head>
<body><svg width="200" height="100"><rect width="200" height="100" fill="#4e79a7"/></svg><p id="p">static</p>
<script>document.getElementById("p").textContent = "scripted"</script></body></html>`)
	r, err := b.Load(context.Background(), page, Options{Screenshot: true, Width: 400, Height: 300})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Requests) != 0 {
		t.Errorf("a self-contained page made requests: %v", r.Requests)
	}
	if !strings.Contains(r.DOM, `<p id="p">scripted</p>`) {
		t.Errorf("DOM after load: %.500s", r.DOM)
	}
	img, err := png.Decode(bytes.NewReader(r.Screenshot))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 400 || img.Bounds().Dy() != 300 {
		t.Errorf("screenshot %v, want 400×300", img.Bounds())
	}
	cr, cg, cb, _ := img.At(100, 50).RGBA()
	if cr>>8 != 0x4e || cg>>8 != 0x79 || cb>>8 != 0xa7 {
		t.Errorf("pixel (100,50) is %02x%02x%02x, want 4e79a7", cr>>8, cg>>8, cb>>8)
	}
	for _, q := range r.Background {
		t.Logf("Chromium's own: %s", q)
	}
}

// TestChromiumCatchesRequests is the harness's negative test: a page that
// reaches out in several ways, each of which must be reported.
func TestChromiumCatchesRequests(t *testing.T) {
	b := New(t)
	page := writePage(t, `<!DOCTYPE html><html><head><link rel="icon" href="data:,">
<link rel="stylesheet" href="https://fonts.example.invalid/font.css"></head>
<body><img src="http://example.invalid/x.png">
<img src="http://127.0.0.1:59999/loopback.png"><!-- not a port Chromium refuses by itself (9, 1, ...) -->
<script>fetch("http://localhost:59999/fetched").catch(function(){})</script>
</body></html>`)
	r, err := b.Load(context.Background(), page, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range r.Requests {
		got = append(got, q.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"proxy GET http://example.invalid/x.png",
		"connect CONNECT https://fonts.example.invalid:443",
		"proxy GET http://127.0.0.1:59999/loopback.png",
		"proxy GET http://localhost:59999/fetched",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("not reported: %s\nreported:\n%s", want, all)
		}
	}
	if u := r.Unexpected(); len(u) != len(r.Requests) {
		t.Errorf("Unexpected() dropped requests: %v of %v", u, r.Requests)
	}
}

// TestChromiumHTTPPage serves a page from a test server: its own request
// is expected and forwarded; a second resource of the same server is
// reported as unexpected.
func TestChromiumHTTPPage(t *testing.T) {
	b := New(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/quiet.html", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><p>quiet</p></body></html>`)
	})
	mux.HandleFunc("/chatty.html", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><img src="/pixel.png"></body></html>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	r, err := b.Load(context.Background(), srv.URL+"/quiet.html", Options{Allow: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.DOM, "<p>quiet</p>") {
		t.Errorf("page not loaded through the proxy: %.300s", r.DOM)
	}
	if len(r.Requests) != 1 || !r.Requests[0].Forwarded {
		t.Errorf("requests %v, want the page's own, forwarded", r.Requests)
	}
	if u := r.Unexpected(srv.URL + "/quiet.html"); len(u) != 0 {
		t.Errorf("unexpected: %v", u)
	}

	r, err = b.Load(context.Background(), srv.URL+"/chatty.html", Options{Allow: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	u := r.Unexpected(srv.URL + "/chatty.html")
	if len(u) != 1 || u[0].URL != srv.URL+"/pixel.png" {
		t.Errorf("unexpected %v, want the GET of /pixel.png", u)
	}
}

// TestLoadRejectsOtherURLs keeps the harness to local pages.
func TestLoadRejectsOtherURLs(t *testing.T) {
	b := &Browser{Path: "/nonexistent"}
	if _, err := b.Load(context.Background(), "https://example.com/", Options{}); err == nil {
		t.Error("an https:// page was accepted")
	}
}
