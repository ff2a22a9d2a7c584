// Package browsertest drives Debian's headless Chromium for tests: it loads
// a file:// or http://127.0.0.1 URL, returns the DOM after load and a
// screenshot, and records every network request the page makes.
//
// Every request Chromium makes goes through a recording proxy on a free
// 127.0.0.1 port (loopback included, --proxy-bypass-list=<-loopback>), and a
// host resolver rule maps every host name onto that proxy too, so a request
// that somehow bypasses the proxy is still seen. The proxy forwards only
// plain-HTTP requests to the hosts a test allows (its own test server) and
// refuses everything else. Chromium's background networking (component
// updates, safe browsing, sync, variations, ...) is switched off so that
// what is recorded is what the page asked for.
//
// Tests call New, which skips the test when no Chromium is installed, or
// fails it when KILN_REQUIRE_CHROMIUM=1.
package browsertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing Chromium
// from a skipped test into a failed one (KILN_REQUIRE_CHROMIUM=1).
const RequireEnv = "KILN_REQUIRE_CHROMIUM"

// PathEnv names an environment variable that may point at the Chromium
// binary to use instead of looking for one on PATH.
const PathEnv = "KILN_CHROMIUM"

// Names are the executables Find looks for on PATH, in order.
var Names = []string{"chromium", "chromium-browser"}

// Find returns the path of a Chromium executable: $KILN_CHROMIUM when set,
// else the first of Names found on PATH.
func Find() (string, error) {
	if p := os.Getenv(PathEnv); p != "" {
		return exec.LookPath(p)
	}
	for _, n := range Names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found (looked for %s on PATH; set %s to its path)", strings.Join(Names, ", "), PathEnv)
}

// Browser runs one headless Chromium per Load.
type Browser struct {
	// Path is the Chromium executable.
	Path string
	// ExtraArgs are appended to every command line.
	ExtraArgs []string
}

// New returns a Browser for the Chromium that Find finds. Without one it
// skips the test, or fails it when KILN_REQUIRE_CHROMIUM=1.
func New(t testing.TB) *Browser {
	t.Helper()
	p, err := Find()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v (%s=1 requires it)", err, RequireEnv)
		}
		t.Skipf("%v; skipping (set %s=1 to fail instead)", err, RequireEnv)
	}
	return &Browser{Path: p}
}

// Options says how to load a page.
type Options struct {
	// Width and Height are the window (viewport) size in CSS pixels;
	// 1280×1024 when zero.
	Width, Height int
	// Screenshot asks for a PNG of the viewport after load.
	Screenshot bool
	// VirtualTimeBudget lets the page run for that much virtual time
	// (timers, pending loads) before the DOM is dumped; 3s when zero.
	VirtualTimeBudget time.Duration
	// Timeout bounds the whole Chromium run; 90s when zero.
	Timeout time.Duration
	// Allow lists host:port pairs whose plain-HTTP requests the proxy
	// forwards (a test's own httptest server); every other request is
	// recorded and refused.
	Allow []string
}

// Result is what one load produced.
type Result struct {
	// URL is the URL loaded.
	URL string
	// DOM is the serialized DOM after load (--dump-dom).
	DOM string
	// Screenshot is the PNG of the viewport, when asked for.
	Screenshot []byte
	// Requests are the requests the recording proxy saw, in order, other
	// than Chromium's own (Background). For a file:// page there should
	// be none; for an http:// page, the page's own request.
	Requests []Request
	// Background are the requests Chromium sent on its own to the
	// services that no switch turns off, recognised by the host names
	// with a random per-run token that Args pointed those services at (a
	// page cannot guess them). Each was refused like any other.
	Background []Request
	// Args is the command line; Log is Chromium's standard error, for
	// failure messages.
	Args []string
	Log  string
}

// Unexpected returns the recorded requests other than one GET of each of
// the expected URLs (normally the page's own http:// URL). A second GET of
// an expected URL is unexpected too.
func (r *Result) Unexpected(expected ...string) []Request {
	left := map[string]int{}
	for _, e := range expected {
		left[e]++
	}
	var out []Request
	for _, q := range r.Requests {
		if q.Method == "GET" && q.Kind == "proxy" && left[q.URL] > 0 {
			left[q.URL]--
			continue
		}
		out = append(out, q)
	}
	return out
}

// Args returns the command-line switches of a headless load that sends all
// traffic to the proxy on proxyPort, keeps the profile in userDataDir and
// switches off Chromium's own background traffic. The two services that no
// switch turns off (the sign-in account check and on-demand component
// updates) are pointed at http://<service>.<internal> hosts, so that what
// they send is told apart from what the page sends.
func Args(proxyPort int, userDataDir string, width, height int, internal string) []string {
	proxy := "127.0.0.1:" + strconv.Itoa(proxyPort)
	return []string{
		"--headless=new",
		"--no-sandbox",
		"--disable-gpu",
		"--no-first-run",
		"--no-default-browser-check",
		"--user-data-dir=" + userDataDir,
		"--disk-cache-dir=" + filepath.Join(userDataDir, "cache"),
		"--window-size=" + strconv.Itoa(width) + "," + strconv.Itoa(height),
		"--hide-scrollbars",
		"--force-device-scale-factor=1",
		"--force-color-profile=srgb",
		"--disable-dev-shm-usage",
		// Every request through the recording proxy, loopback included
		// ("<-loopback>" removes the implicit loopback bypass) ...
		"--proxy-server=http://" + proxy,
		"--proxy-bypass-list=<-loopback>",
		// ... and any host name that is resolved anyway lands on it too.
		"--host-resolver-rules=MAP * " + proxy,
		// Chromium's own traffic off.
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--no-pings",
		"--disable-domain-reliability",
		"--disable-breakpad",
		"--disable-client-side-phishing-detection",
		"--disable-default-apps",
		"--disable-extensions",
		"--disable-component-extensions-with-background-pages",
		"--metrics-recording-only",
		"--safebrowsing-disable-auto-update",
		"--no-service-autorun",
		"--password-store=basic",
		"--use-mock-keychain",
		"--disable-features=" + strings.Join([]string{
			"OptimizationHints", "OptimizationGuideModelDownloading",
			"OptimizationHintsFetching", "OptimizationTargetPrediction",
			"MediaRouter", "DialMediaRouteProvider", "Translate",
			"AutofillServerCommunication", "CertificateTransparencyComponentUpdater",
			"InterestFeedContentSuggestions", "NetworkTimeServiceQuerying",
			"SafeBrowsingEnhancedProtection", "PrivacySandboxSettings4",
			"HttpsUpgrades", "HttpsFirstModeV2ForEngagedSites",
		}, ","),
		// Sent on every start whatever the switches above say: the
		// account check (IdentityManager's ListAccounts) and the
		// on-demand update of the optimization guide's model manifest.
		"--gaia-url=http://gaia." + internal + "/",
		"--component-updater=url-source=http://update." + internal + "/",
		"--dns-prefetch-disable",
		"--disable-quic",
		"--webrtc-ip-handling-policy=disable_non_proxied_udp",
		"--force-webrtc-ip-handling-policy",
	}
}

// Load opens url in a fresh headless Chromium behind a fresh recording
// proxy and returns the DOM after load, the screenshot when asked for, and
// every request the proxy saw. Dumping the DOM and taking the screenshot
// happen in the same run.
func (b *Browser) Load(ctx context.Context, pageURL string, opt Options) (*Result, error) {
	u, err := url.Parse(pageURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "file" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, fmt.Errorf("browsertest: %s: only file:// and http://127.0.0.1 URLs", pageURL)
	}
	if opt.Width <= 0 {
		opt.Width = 1280
	}
	if opt.Height <= 0 {
		opt.Height = 1024
	}
	if opt.VirtualTimeBudget <= 0 {
		opt.VirtualTimeBudget = 3 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 90 * time.Second
	}
	dir, err := os.MkdirTemp("", "browsertest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	profile := filepath.Join(dir, "profile")
	shot := filepath.Join(dir, "screenshot.png")

	proxy, err := NewProxy(opt.Allow...)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()

	token := make([]byte, 8)
	rand.Read(token)
	internal := "chromium-" + hex.EncodeToString(token) + ".browsertest.invalid"
	args := Args(proxy.Port(), profile, opt.Width, opt.Height, internal)
	args = append(args, "--virtual-time-budget="+strconv.FormatInt(opt.VirtualTimeBudget.Milliseconds(), 10), "--dump-dom")
	if opt.Screenshot {
		args = append(args, "--screenshot="+shot)
	}
	args = append(args, b.ExtraArgs...)
	args = append(args, pageURL)

	serialize.Lock()
	defer serialize.Unlock()
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(b.Path, args...)
	cmd.Dir = dir
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(),
		"HOME="+dir, // the Debian wrapper and Chromium's helpers write under $HOME
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"GOOGLE_API_KEY=no", "GOOGLE_DEFAULT_CLIENT_ID=no", "GOOGLE_DEFAULT_CLIENT_SECRET=no",
	)
	// Its own process group, so that the renderer, zygote and crashpad
	// helpers it starts go when it goes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		runErr = fmt.Errorf("browsertest: chromium did not finish within %v: %w", opt.Timeout, ctx.Err())
	}
	// Whatever helpers are left of this run (same process group) go now.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	res := &Result{URL: pageURL, DOM: stdout.String(), Args: append([]string{b.Path}, args...), Log: stderr.String()}
	// Requests still in flight when Chromium exits are recorded by now or
	// never; closing the proxy waits for its handlers.
	proxy.Close()
	for _, q := range proxy.Requests() {
		if u, err := url.Parse(q.URL); err == nil && strings.HasSuffix(u.Hostname(), "."+internal) {
			res.Background = append(res.Background, q)
		} else {
			res.Requests = append(res.Requests, q)
		}
	}
	if runErr != nil {
		return res, fmt.Errorf("browsertest: %s: %w\n%s", pageURL, runErr, tail(res.Log, 4000))
	}
	if strings.TrimSpace(res.DOM) == "" {
		return res, fmt.Errorf("browsertest: %s: chromium dumped no DOM\n%s", pageURL, tail(res.Log, 4000))
	}
	if opt.Screenshot {
		png, err := os.ReadFile(shot)
		if err != nil {
			return res, fmt.Errorf("browsertest: %s: no screenshot: %w\n%s", pageURL, err, tail(res.Log, 4000))
		}
		res.Screenshot = png
	}
	return res, nil
}

func isLoopback(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// serialize keeps the tests of one package from running several Chromiums
// at once on a small machine; Load holds it.
var serialize sync.Mutex
