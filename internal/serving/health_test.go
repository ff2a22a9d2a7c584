package serving

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestScrapeHealth reads a real server's health over HTTP, before and after
// known traffic, and checks the window between two readings.
func TestScrapeHealth(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, 100))
	deploy(t, s, "fraud", stable(4, uri1))
	var current atomic.Pointer[http.Handler] // the server behind the address
	h := s.Handler()
	current.Store(&h)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }))
	defer ts.Close()
	ctx := context.Background()
	send := func(model string, rows []map[string]any, n, code int) {
		t.Helper()
		body := predictV1Body(t, rows)
		for range n {
			resp, err := http.Post(ts.URL+"/v1/models/"+model+":predict", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Fatalf("status %d, want %d", resp.StatusCode, code)
			}
		}
	}
	bad := []map[string]any{{"plan": "pro"}}

	h0, err := ScrapeHealth(ctx, nil, ts.URL+"/", "churn")
	if err != nil {
		t.Fatal(err)
	}
	if !h0.Served || h0.Requests != 0 || h0.Latency.Count != 0 || len(h0.Variants) != 2 {
		t.Errorf("before traffic: %+v", h0)
	}
	if h0.ProcessStart.IsZero() || h0.ProcessStart.After(time.Now()) || !(h0.ResidentBytes > 0) || !(h0.Goroutines > 0) {
		t.Errorf("process: start %v, resident %v, goroutines %v", h0.ProcessStart, h0.ResidentBytes, h0.Goroutines)
	}

	send("churn", instances[:3], 10, 200) // v2 canary
	send("churn", bad, 2, 400)
	send("fraud", instances[:1], 5, 200)
	h1, err := ScrapeHealth(ctx, ts.Client(), ts.URL, "churn")
	if err != nil {
		t.Fatal(err)
	}
	if h1.Requests != 12 || h1.Errors != 2 || h1.Predictions != 30 || h1.Latency.Count != 12 {
		t.Errorf("after traffic: %v requests, %v errors, %v predictions, %v observations; want 12, 2, 30, 12",
			h1.Requests, h1.Errors, h1.Predictions, h1.Latency.Count)
	}
	var bounds []float64
	for _, b := range h1.Latency.Buckets {
		bounds = append(bounds, b.UpperBound)
	}
	if !slices.Equal(bounds, DurationBuckets) {
		t.Errorf("buckets %v, want %v", bounds, DurationBuckets)
	}
	if len(h1.Variants) != 2 || h1.Variants[0].Version != 1 || h1.Variants[0].Variant != "stable" || h1.Variants[0].Requests != 0 ||
		h1.Variants[1].Version != 2 || h1.Variants[1].Variant != "canary" || h1.Variants[1].Requests != 12 || h1.Variants[1].Errors != 2 {
		t.Errorf("variants %+v", h1.Variants)
	}
	if h1.CPUSeconds < h0.CPUSeconds || !(h1.CPUSeconds > 0) {
		t.Errorf("CPU seconds %v then %v", h0.CPUSeconds, h1.CPUSeconds)
	}

	// Canary off: the next requests are v1's.
	deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, 0))
	send("churn", instances[:2], 7, 200)
	h2, err := ScrapeHealth(ctx, nil, ts.URL, "churn")
	if err != nil {
		t.Fatal(err)
	}
	w := h2.Since(h1)
	if w.Reset || w.Requests != 7 || w.Errors != 0 || w.Predictions != 14 || w.ErrorRate != 0 {
		t.Errorf("window: %+v", w)
	}
	if w.Seconds <= 0 || math.Abs(w.RequestRate-7/w.Seconds) > 1e-9 || w.From != h1.Time || w.To != h2.Time {
		t.Errorf("window of %v s from %v to %v: rate %v", w.Seconds, w.From, w.To, w.RequestRate)
	}
	if !(w.P50Ms > 0) || w.P50Ms > w.P99Ms || w.P99Ms > 5000 {
		t.Errorf("window latency p50 %v ms, p99 %v ms", w.P50Ms, w.P99Ms)
	}
	if len(w.Variants) != 1 || w.Variants[0].Version != 1 || w.Variants[0].Requests != 7 {
		t.Errorf("window variants %+v, want v1 stable only", w.Variants)
	}
	w = h1.Since(h0)
	if w.Requests != 12 || w.Errors != 2 || math.Abs(w.ErrorRate-2.0/12) > 1e-12 || len(w.Variants) != 1 || w.Variants[0].Variant != "canary" {
		t.Errorf("first window: %+v", w)
	}
	if _, err := json.Marshal(w); err != nil {
		t.Errorf("a window does not encode: %v", err)
	}
	if _, err := json.Marshal(h2); err != nil {
		t.Errorf("a reading does not encode: %v", err)
	}

	// All models, and a model not served here.
	all, err := ScrapeHealth(ctx, nil, ts.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if all.Requests != 12+7+5 || all.Predictions != 30+14+5 || len(all.Variants) != 0 {
		t.Errorf("all models: %v requests, %v predictions, %d variants", all.Requests, all.Predictions, len(all.Variants))
	}
	none, err := ScrapeHealth(ctx, nil, ts.URL, "nope")
	if err != nil || none.Served || none.Requests != 0 || none.ResidentBytes == 0 {
		t.Errorf("unknown model: %+v, %v", none, err)
	}

	// A restarted server (a new Server at the same address) starts from
	// zero: the window is a new start with the new server's counts.
	restarted := newTestServer(t, Options{})
	deploy(t, restarted, "churn", stable(2, uri2))
	h = restarted.Handler()
	current.Store(&h)
	send("churn", instances[:1], 3, 200)
	h3, err := ScrapeHealth(ctx, nil, ts.URL, "churn")
	if err != nil {
		t.Fatal(err)
	}
	w = h3.Since(h2)
	if !w.Reset || w.Requests != 3 || w.Predictions != 3 || len(w.Variants) != 1 || w.Variants[0].Variant != "stable" || w.Variants[0].Version != 2 {
		t.Errorf("window over a restart: %+v", w)
	}
}

// TestScrapeHealthErrors checks that a failed scrape is an error.
func TestScrapeHealthErrors(t *testing.T) {
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "kiln_requests_total{model=\"churn\" 1\n")
	}))
	defer garbage.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tt := range []struct{ name, url, want string }{
		{"404", notFound.URL, "HTTP 404"},
		{"not the exposition format", garbage.URL, "scraping"},
		{"no server", closed.URL, "scraping"},
		{"bad URL", "://", "missing protocol scheme"},
	} {
		_, err := ScrapeHealth(context.Background(), nil, tt.url, "churn")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

// TestHealthSince checks windows between two readings, including restarts.
func TestHealthSince(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	start := t0.Add(-time.Hour)
	// hist builds a latency histogram over DurationBuckets' first buckets
	// (50µs, 100µs, 200µs, 500µs) from per-bucket (not cumulative) counts;
	// the rest are the +Inf bucket.
	hist := func(counts ...float64) Histogram {
		h := Histogram{}
		cum := 0.0
		for i, ub := range DurationBuckets {
			if i < len(counts) {
				cum += counts[i]
			}
			h.Buckets = append(h.Buckets, Bucket{UpperBound: ub, Count: cum})
		}
		h.Count = cum
		if len(counts) > len(DurationBuckets) {
			h.Count += counts[len(DurationBuckets)]
		}
		return h
	}
	reading := func(at time.Time, started time.Time, req, errs, preds, cpu float64, lat Histogram, variants ...VariantHealth) Health {
		return Health{Model: "churn", Time: at, Served: true, Requests: req, Errors: errs, Predictions: preds,
			Latency: lat, Variants: variants, ProcessStart: started, CPUSeconds: cpu, ResidentBytes: 5e7}
	}
	v := func(version int64, variant string, req, errs, preds float64, lat Histogram) VariantHealth {
		return VariantHealth{Version: version, Variant: variant, Requests: req, Errors: errs, Predictions: preds, Latency: lat}
	}
	base := reading(t0, start, 100, 2, 300, 10, hist(0, 100))
	tests := []struct {
		name      string
		prev, cur Health
		want      WindowHealth // Model, To and ResidentBytes are checked against cur
	}{
		{"steady", base, reading(t0.Add(10*time.Second), start, 150, 7, 450, 12, hist(0, 150)),
			WindowHealth{From: t0, Seconds: 10, Requests: 50, Errors: 5, Predictions: 150, RequestRate: 5, PredictionRate: 15,
				ErrorRate: 0.1, P50Ms: 0.075, P99Ms: 0.0995, CPUCores: 0.2}}, // all 50 in (50µs, 100µs]: p50 = 50 + 50·25/50 µs
		{"latency only from the window's requests", base, reading(t0.Add(20*time.Second), start, 200, 2, 600, 11, hist(0, 100, 0, 100)),
			WindowHealth{From: t0, Seconds: 20, Requests: 100, Predictions: 300, RequestRate: 5, PredictionRate: 15,
				P50Ms: 0.35, P99Ms: 0.497, CPUCores: 0.05}}, // the new 100 are in (200µs, 500µs]
		{"quantile in the +Inf bucket", base, reading(t0.Add(10*time.Second), start, 110, 2, 330, 10, func() Histogram {
			h := hist(0, 100)
			h.Count += 10
			return h
		}()),
			WindowHealth{From: t0, Seconds: 10, Requests: 10, Predictions: 30, RequestRate: 1, PredictionRate: 3,
				P50Ms: 5000, P99Ms: 5000}},
		{"no traffic", base, reading(t0.Add(time.Minute), start, 100, 2, 300, 10, hist(0, 100)),
			WindowHealth{From: t0, Seconds: 60}},
		{"restart: counters went back", base, reading(t0.Add(30*time.Second), t0.Add(20*time.Second), 40, 1, 120, 0.5, hist(40)),
			WindowHealth{From: t0.Add(20 * time.Second), Seconds: 10, Reset: true, Requests: 40, Errors: 1, Predictions: 120,
				RequestRate: 4, PredictionRate: 12, ErrorRate: 0.025, P50Ms: 0.025, P99Ms: 0.0495, CPUCores: 0.05}},
		{"restart with more traffic than before", base, reading(t0.Add(30*time.Second), t0.Add(10*time.Second), 400, 0, 400, 20, hist(400)),
			WindowHealth{From: t0.Add(10 * time.Second), Seconds: 20, Reset: true, Requests: 400, Predictions: 400,
				RequestRate: 20, PredictionRate: 20, P50Ms: 0.025, P99Ms: 0.0495, CPUCores: 1}},
		{"restart without a start time", reading(t0, time.Time{}, 100, 2, 300, 10, hist(0, 100)),
			reading(t0.Add(10*time.Second), time.Time{}, 30, 0, 30, 1, hist(30)),
			WindowHealth{From: t0, Seconds: 10, Reset: true, Requests: 30, Predictions: 30, RequestRate: 3, PredictionRate: 3,
				P50Ms: 0.025, P99Ms: 0.0495, CPUCores: 0.1}},
		{"start time jitter is not a restart", base, reading(t0.Add(10*time.Second), start.Add(time.Second), 110, 2, 330, 10.5, hist(0, 110)),
			WindowHealth{From: t0, Seconds: 10, Requests: 10, Predictions: 30, RequestRate: 1, PredictionRate: 3,
				P50Ms: 0.075, P99Ms: 0.0995, CPUCores: 0.05}},
		{"no earlier reading: since the start", Health{}, reading(t0, t0.Add(-100*time.Second), 100, 2, 300, 10, hist(0, 100)),
			WindowHealth{From: t0.Add(-100 * time.Second), Seconds: 100, Requests: 100, Errors: 2, Predictions: 300,
				RequestRate: 1, PredictionRate: 3, ErrorRate: 0.02, P50Ms: 0.075, P99Ms: 0.0995, CPUCores: 0.1}},
		{"per variant", reading(t0, start, 100, 0, 100, 1, hist(0, 100), v(1, "stable", 100, 0, 100, hist(0, 100))),
			reading(t0.Add(10*time.Second), start, 130, 3, 127, 1, hist(0, 110, 20),
				v(1, "stable", 110, 0, 110, hist(0, 110)), v(2, "canary", 20, 3, 17, hist(0, 0, 20))),
			WindowHealth{From: t0, Seconds: 10, Requests: 30, Errors: 3, Predictions: 27, RequestRate: 3, PredictionRate: 2.7,
				ErrorRate: 0.1, P50Ms: 0.125, P99Ms: 0.1985, // rank 15 of 30: 10 in (50,100], 20 in (100,200]: 100 + 100·5/20 µs
				Variants: []VariantWindow{
					{Version: 1, Variant: "stable", Requests: 10, Predictions: 10, RequestRate: 1, P50Ms: 0.075, P99Ms: 0.0995},
					{Version: 2, Variant: "canary", Requests: 20, Errors: 3, Predictions: 17, RequestRate: 2, ErrorRate: 0.15, P50Ms: 0.15, P99Ms: 0.199},
				}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cur.Since(tt.prev)
			want := tt.want
			want.Model, want.To, want.ResidentBytes = "churn", tt.cur.Time, tt.cur.ResidentBytes
			if !closeWindow(got, want) {
				t.Errorf("window\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// closeWindow compares windows, floats to 1e-9 relative.
func closeWindow(a, b WindowHealth) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	if a.Model != b.Model || !a.From.Equal(b.From) || !a.To.Equal(b.To) || a.Reset != b.Reset || len(a.Variants) != len(b.Variants) {
		return false
	}
	for _, p := range [][2]float64{{a.Seconds, b.Seconds}, {a.Requests, b.Requests}, {a.Errors, b.Errors}, {a.Predictions, b.Predictions},
		{a.RequestRate, b.RequestRate}, {a.PredictionRate, b.PredictionRate}, {a.ErrorRate, b.ErrorRate}, {a.P50Ms, b.P50Ms},
		{a.P99Ms, b.P99Ms}, {a.CPUCores, b.CPUCores}, {a.ResidentBytes, b.ResidentBytes}} {
		if !near(p[0], p[1]) {
			return false
		}
	}
	for i := range a.Variants {
		x, y := a.Variants[i], b.Variants[i]
		if x.Version != y.Version || x.Variant != y.Variant {
			return false
		}
		for _, p := range [][2]float64{{x.Requests, y.Requests}, {x.Errors, y.Errors}, {x.Predictions, y.Predictions},
			{x.RequestRate, y.RequestRate}, {x.ErrorRate, y.ErrorRate}, {x.P50Ms, y.P50Ms}, {x.P99Ms, y.P99Ms}} {
			if !near(p[0], p[1]) {
				return false
			}
		}
	}
	return true
}
