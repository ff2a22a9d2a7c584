package serving

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape GETs url+"/metrics" and parses the text exposition.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, b)
	}
	return fams, string(b)
}

// series finds the metric of family name with exactly the labels given.
func series(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// TestMetrics sends known traffic to a real server and checks every kiln
// series on /metrics, the histogram's buckets, and that the process and Go
// collectors are there.
func TestMetrics(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	good := func(n int) []map[string]any { return slices.Repeat(instances[:1], n) }
	bad := []map[string]any{{"plan": "pro"}} // fails in the model: no charges
	type step struct {
		dep     Deployment
		rows    []map[string]any
		n       int // requests
		failing bool
	}
	type want struct {
		version, variant              string
		requests, errors, predictions float64
	}
	tests := []struct {
		name   string
		steps  []step
		want   []want
		canary float64
	}{
		{"one request", []step{{stable(1, uri1), good(1), 1, false}},
			[]want{{"1", "stable", 1, 0, 1}}, 0},
		{"many instances", []step{{stable(1, uri1), good(7), 12, false}},
			[]want{{"1", "stable", 12, 0, 84}}, 0},
		{"failures count as requests and errors, not predictions", []step{
			{stable(3, uri1), good(2), 5, false}, {stable(3, uri1), bad, 4, true}},
			[]want{{"3", "stable", 9, 4, 10}}, 0},
		{"canary then promotion", []step{
			{withCanary(1, uri1, 2, uri2, 100), good(3), 6, false},
			{withCanary(1, uri1, 2, uri2, 100), bad, 2, true},
			{withCanary(1, uri1, 2, uri2, 0), good(1), 4, false},
			{stable(2, uri2), good(2), 5, false}},
			[]want{{"1", "stable", 4, 0, 4}, {"2", "canary", 8, 2, 18}, {"2", "stable", 5, 0, 10}}, 0},
		{"canary percent", []step{{withCanary(1, uri1, 2, uri2, 35), good(1), 0, false}},
			[]want{{"1", "stable", 0, 0, 0}, {"2", "canary", 0, 0, 0}}, 35},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			for _, st := range tt.steps {
				deploy(t, s, "churn", st.dep)
				body := predictV1Body(t, st.rows)
				for range st.n {
					resp, err := http.Post(ts.URL+"/v1/models/churn:predict", "application/json", strings.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if code := map[bool]int{false: 200, true: 400}[st.failing]; resp.StatusCode != code {
						t.Fatalf("status %d, want %d", resp.StatusCode, code)
					}
				}
			}
			fams, text := scrape(t, ts.URL)
			for _, w := range tt.want {
				l := []string{"model", "churn", "version", w.version, "variant", w.variant}
				for _, c := range []struct {
					name string
					want float64
				}{{MetricRequests, w.requests}, {MetricRequestErrors, w.errors}, {MetricPredictions, w.predictions}} {
					m := series(fams, c.name, l...)
					if m == nil || m.GetCounter().GetValue() != c.want {
						t.Errorf("%s%v = %v, want %v", c.name, l, m.GetCounter().GetValue(), c.want)
					}
				}
				m := series(fams, MetricRequestDuration, l...)
				h := m.GetHistogram()
				if m == nil || h.GetSampleCount() != uint64(w.requests) {
					t.Fatalf("%s%v: count %d, want %v", MetricRequestDuration, l, h.GetSampleCount(), w.requests)
				}
				var bounds []float64
				for _, b := range h.GetBucket() {
					bounds = append(bounds, b.GetUpperBound())
				}
				if want := append(slices.Clone(DurationBuckets), math.Inf(1)); !slices.Equal(bounds, want) {
					t.Errorf("buckets %v, want %v", bounds, want)
				}
				if bs := h.GetBucket(); len(bs) > 0 && bs[len(bs)-1].GetCumulativeCount() != uint64(w.requests) {
					t.Errorf("+Inf bucket %d, want %v", bs[len(bs)-1].GetCumulativeCount(), w.requests)
				}
				if w.requests > 0 && !(h.GetSampleSum() > 0) {
					t.Errorf("duration sum %v", h.GetSampleSum())
				}
			}
			if n := len(fams[MetricRequests].GetMetric()); n != len(tt.want) {
				t.Errorf("%d request series, want %d:\n%s", n, len(tt.want), text)
			}
			if m := series(fams, MetricCanaryPercent, "model", "churn"); m == nil || m.GetGauge().GetValue() != tt.canary {
				t.Errorf("canary percent %v, want %v", m.GetGauge().GetValue(), tt.canary)
			}
			for name, typ := range map[string]dto.MetricType{
				MetricRequestDuration:           dto.MetricType_HISTOGRAM,
				"process_cpu_seconds_total":     dto.MetricType_COUNTER,
				"process_resident_memory_bytes": dto.MetricType_GAUGE,
				"process_start_time_seconds":    dto.MetricType_GAUGE,
				"go_goroutines":                 dto.MetricType_GAUGE,
				"go_gc_duration_seconds":        dto.MetricType_SUMMARY,
				"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
			} {
				if f := fams[name]; f == nil || f.GetType() != typ {
					t.Errorf("/metrics has no %s %s", typ, name)
				}
			}
			if m := series(fams, "process_resident_memory_bytes"); m == nil || !(m.GetGauge().GetValue() > 0) {
				t.Errorf("resident memory %v", m)
			}
		})
	}
}

// TestMetricsRegistry checks that each server has its own registry and
// that an embedding process can add collectors to it.
func TestMetricsRegistry(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	a, b := newTestServer(t, Options{}), newTestServer(t, Options{})
	deploy(t, a, "churn", stable(1, uri))
	deploy(t, b, "churn", stable(1, uri))
	if a.MetricsRegistry() == b.MetricsRegistry() || a.MetricsRegistry() == prometheus.DefaultRegisterer {
		t.Fatal("servers share a registry")
	}
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "embedder_things_total", Help: "Things."})
	a.MetricsRegistry().MustRegister(extra)
	extra.Add(3)
	for range 3 {
		serve(t, a.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:1]), "")
	}
	serve(t, b.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:1]), "")
	ta, tb := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer ta.Close()
	defer tb.Close()
	fa, _ := scrape(t, ta.URL)
	fb, _ := scrape(t, tb.URL)
	l := []string{"model", "churn", "version", "1", "variant", "stable"}
	if got := series(fa, MetricRequests, l...).GetCounter().GetValue(); got != 3 {
		t.Errorf("server a: %v requests, want 3", got)
	}
	if got := series(fb, MetricRequests, l...).GetCounter().GetValue(); got != 1 {
		t.Errorf("server b: %v requests, want 1", got)
	}
	if m := series(fa, "embedder_things_total"); m == nil || m.GetCounter().GetValue() != 3 {
		t.Errorf("server a lacks the added collector")
	}
	if fb["embedder_things_total"] != nil {
		t.Error("server b has a's collector")
	}
}

// TestStatsLatency checks Stats' latency figures against the histogram
// that /metrics exposes.
func TestStatsLatency(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	h := s.Handler()
	for i := range 200 {
		if rec := serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, slices.Repeat(instances[:1], 1+i%20)), ""); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	st, _ := s.Stats("churn")
	if len(st.Variants) != 1 {
		t.Fatalf("stats %+v", st)
	}
	v := st.Variants[0]
	if v.Requests != 200 || v.Predictions != 2100 {
		t.Errorf("%d requests, %d predictions; want 200, 2100", v.Requests, v.Predictions)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	fams, _ := scrape(t, ts.URL)
	hist := histogramFromDTO(series(fams, MetricRequestDuration, "model", "churn", "version", "1", "variant", "stable").GetHistogram())
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mean", v.MeanMs, hist.Sum / hist.Count * 1e3},
		{"p50", v.P50Ms, hist.Quantile(0.5) * 1e3},
		{"p99", v.P99Ms, hist.Quantile(0.99) * 1e3},
	} {
		if !(c.got > 0) || math.Abs(c.got-c.want) > 1e-9*c.want {
			t.Errorf("%s %v ms, the histogram says %v ms", c.name, c.got, c.want)
		}
	}
	if v.P50Ms > v.P99Ms {
		t.Errorf("p50 %v > p99 %v", v.P50Ms, v.P99Ms)
	}
}

// TestHistogramQuantile checks the interpolation against values worked out
// by hand with histogram_quantile's rules.
func TestHistogramQuantile(t *testing.T) {
	b := func(pairs ...float64) []Bucket {
		var out []Bucket
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, Bucket{UpperBound: pairs[i], Count: pairs[i+1]})
		}
		return out
	}
	h := Histogram{Count: 40, Buckets: b(1, 10, 2, 20, 5, 40)}
	tests := []struct {
		name string
		h    Histogram
		q    float64
		want float64
	}{
		{"lowest bucket from 0", h, 0.25, 1},                                // rank 10: 0 + 1·10/10
		{"lowest bucket, part", h, 0.1, 0.4},                                // rank 4: 0 + 1·4/10
		{"middle bucket", h, 0.5, 2},                                        // rank 20: 1 + 1·10/10
		{"interpolated", h, 0.75, 3.5},                                      // rank 30: 2 + 3·10/20
		{"top finite bucket", h, 1, 5},                                      // rank 40: 2 + 3·20/20
		{"rank in +Inf", Histogram{Count: 50, Buckets: h.Buckets}, 0.99, 5}, // the highest finite bound
		{"one bucket", Histogram{Count: 4, Buckets: b(0.01, 4)}, 0.5, 0.005},
		{"empty buckets skipped", Histogram{Count: 10, Buckets: b(1, 0, 2, 0, 4, 10)}, 0.5, 3},      // rank 5 in (2,4]: 2 + 2·5/10
		{"non-monotonic forced", Histogram{Count: 10, Buckets: b(1, 6, 2, 4, 3, 10)}, 0.5, 5.0 / 6}, // counts 6,6,10: rank 5 in (0,1]
		{"empty", Histogram{Buckets: h.Buckets}, 0.5, math.NaN()},
		{"no finite buckets", Histogram{Count: 3}, 0.5, math.NaN()},
		{"q below 0", h, -0.1, math.Inf(-1)},
		{"q above 1", h, 1.1, math.Inf(1)},
		{"q NaN", h, math.NaN(), math.NaN()},
	}
	for _, tt := range tests {
		got := tt.h.Quantile(tt.q)
		if !(got == tt.want || math.IsNaN(got) && math.IsNaN(tt.want) || math.Abs(got-tt.want) < 1e-12) {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

// TestMetricsNoModels: before any deployment /metrics has the process and
// Go metrics and no kiln series.
func TestMetricsNoModels(t *testing.T) {
	s := newTestServer(t, Options{})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	fams, text := scrape(t, ts.URL)
	for name := range fams {
		if strings.HasPrefix(name, "kiln_") {
			t.Errorf("%s without models:\n%s", name, text)
		}
	}
	if fams["process_cpu_seconds_total"] == nil || fams["go_goroutines"] == nil {
		t.Errorf("no process or Go metrics:\n%s", text)
	}
}
