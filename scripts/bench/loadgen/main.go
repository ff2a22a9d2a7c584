// Command loadgen offers HTTP/1.1 requests at a fixed rate (an open loop) and
// reports their latencies, for make bench-serve's "p99 at a fixed rate"
// figure (scripts/bench/serve_bench.sh).
//
// wrk (Debian's 4.1) only runs a closed loop: each connection sends its next
// request when the last one is answered, so it measures a server at
// saturation, where latency is mostly the queue the load generator builds
// itself. loadgen instead schedules request i at start + i/rate and measures
// each latency from that scheduled time, not from when a connection was
// free to send it (so a stalled server is charged for the requests it held
// up: no coordinated omission, as in wrk2). It first offers -warmup of
// requests at the same rate and leaves them out. Requests go over -conns
// keep-alive connections, one request in flight on each; a request waits
// for a free connection when all are busy, and that wait is part of its
// latency.
//
// Usage:
//
//	loadgen -url http://127.0.0.1:18080/v1/models/bench:predict -bodies bodies.txt -rate 20000 -duration 10s
//
// It POSTs the bodies of the -bodies file (one JSON body per line) in turn
// and prints one line, "RESULT {json}", with the fields of serve_wrk.lua's
// result (requests, duration_us, errors, non2xx, p50_us, p90_us, p99_us,
// max_us, mean_us) and p999_us and rate (the rate offered). With
// LOADGEN_SLOW set in the environment it also prints each request slower
// than 20 ms to standard error as "<index> <ms after the measured start>
// <latency µs>", to see when stalls happen.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// config is loadgen's flags.
type config struct {
	url      string
	bodies   string
	rate     float64
	duration time.Duration
	warmup   time.Duration
	conns    int
}

func run(ctx context.Context, args []string) error {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "", "the URL to POST to (http only)")
	fs.StringVar(&c.bodies, "bodies", "", "file of request bodies, one per line")
	fs.Float64Var(&c.rate, "rate", 20000, "requests per second offered")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to offer requests")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "how long to offer requests at the same rate, over the same connections, before measuring")
	fs.IntVar(&c.conns, "conns", 32, "keep-alive connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.url == "" || c.bodies == "" || c.rate <= 0 || c.conns <= 0 || c.duration <= 0 || c.warmup < 0 {
		return errors.New("-url, -bodies, and a positive -rate, -conns and -duration are required")
	}
	u, err := url.Parse(c.url)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port/path", c.url)
	}
	bodies, err := readBodies(c.bodies)
	if err != nil {
		return err
	}
	reqs := make([][]byte, len(bodies))
	for i, b := range bodies {
		reqs[i] = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", u.RequestURI(), u.Host, len(b), b)
	}
	res, err := load(ctx, u.Host, reqs, c)
	if err != nil {
		return err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", out)
	return nil
}

// readBodies reads the non-empty lines of path.
func readBodies(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bodies: %w", err)
	}
	var out [][]byte
	for line := range bytes.Lines(data) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no request bodies", path)
	}
	return out, nil
}

// result is what loadgen prints.
type result struct {
	Requests   int     `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Errors     int     `json:"errors"`
	Non2xx     int     `json:"non2xx"`
	P50US      int64   `json:"p50_us"`
	P90US      int64   `json:"p90_us"`
	P99US      int64   `json:"p99_us"`
	P999US     int64   `json:"p999_us"`
	MaxUS      int64   `json:"max_us"`
	MeanUS     float64 `json:"mean_us"`
	Rate       float64 `json:"rate"`
}

// load offers w = rate × warmup requests, then n = rate × duration more,
// request i at start + i/rate, over c.conns connections, and summarizes the
// latencies of the n.
func load(ctx context.Context, addr string, reqs [][]byte, c config) (result, error) {
	w := int(c.rate * c.warmup.Seconds())
	n := int(c.rate * c.duration.Seconds())
	interval := float64(time.Second) / c.rate
	start := time.Now().Add(50 * time.Millisecond)
	next := make(chan int, c.conns)
	go func() {
		defer close(next)
		for i := range w + n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var slow io.Writer
	if os.Getenv("LOADGEN_SLOW") != "" {
		slow = os.Stderr
	}
	var mu sync.Mutex
	var lat []time.Duration // of the requests answered
	var errs, non2xx int
	var wg sync.WaitGroup
	var firstErr error
	var measured time.Time // when request w is due
	measured = start.Add(time.Duration(float64(w) * interval))
	for range c.conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return result{}, fmt.Errorf("connecting to %s: %w", addr, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { conn.Close() }()
			r := bufio.NewReaderSize(conn, 64<<10)
			mine := make([]time.Duration, 0, n/c.conns+1)
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for i := range next {
				at := start.Add(time.Duration(float64(i) * interval))
				// A sleeping Go program wakes up to a millisecond late
				// (the runtime waits for the network with millisecond
				// timeouts): measured here, time.Sleep(100µs) took 1.08
				// ms. So it sleeps to within a millisecond of the time due
				// and sends then, early rather than late; an early
				// request's latency counts from when it was sent.
				if d := time.Until(at); d > time.Millisecond {
					time.Sleep(d - time.Millisecond)
				}
				if sent := time.Now(); !sent.After(at) {
					at = sent
				}
				code, err := roundTrip(conn, r, reqs[i%len(reqs)])
				if err != nil {
					mu.Lock()
					if i >= w {
						errs++
					}
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					// The connection is in an unknown state: start another.
					conn.Close()
					if conn, err = net.Dial("tcp", addr); err != nil {
						return // the other connections take the rest
					}
					r.Reset(conn)
					continue
				}
				if i < w {
					continue // warming up
				}
				mine = append(mine, time.Since(at))
				if slow != nil && mine[len(mine)-1] > 20*time.Millisecond {
					mu.Lock()
					fmt.Fprintf(slow, "%d %.1f %d\n", i, at.Sub(measured).Seconds()*1e3, mine[len(mine)-1].Microseconds())
					mu.Unlock()
				}
				if code < 200 || code > 299 {
					mu.Lock()
					non2xx++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(measured)
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no request was answered: %w", firstErr)
	}
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "loadgen: first error:", firstErr)
	}
	slices.Sort(lat)
	pct := func(p float64) int64 {
		k := int(p*float64(len(lat))+0.5) - 1
		k = min(max(k, 0), len(lat)-1)
		return lat[k].Microseconds()
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return result{
		Requests: len(lat), DurationUS: elapsed.Microseconds(), Errors: errs, Non2xx: non2xx,
		P50US: pct(0.50), P90US: pct(0.90), P99US: pct(0.99), P999US: pct(0.999), MaxUS: lat[len(lat)-1].Microseconds(),
		MeanUS: float64(sum.Microseconds()) / float64(len(lat)), Rate: c.rate,
	}, nil
}

// roundTrip writes one request and reads its response: the status line,
// the headers (Content-Length is required) and the body.
func roundTrip(conn net.Conn, r *bufio.Reader, req []byte) (int, error) {
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the status line: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("reading headers: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("a response without Content-Length")
	}
	if _, err := r.Discard(length); err != nil {
		return 0, fmt.Errorf("reading the body: %w", err)
	}
	return code, nil
}
