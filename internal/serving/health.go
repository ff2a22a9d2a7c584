package serving

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Health is one reading of a model server's /metrics for one model: the
// model's cumulative counters (since the server process started) and the
// process's resources. Two readings give a window: Since.
type Health struct {
	// Model is the model read ("" for all models together).
	Model string `json:"model"`
	// Time is when the scrape was sent (the caller's clock).
	Time time.Time `json:"time"`
	// Served says whether the server exports series of the model (a model
	// has them from its first deployment on).
	Served bool `json:"served"`
	// Requests, Errors and Predictions are the model's kiln_requests_total,
	// kiln_request_errors_total and kiln_predictions_total over all its
	// versions and variants.
	Requests    float64 `json:"requests"`
	Errors      float64 `json:"errors"`
	Predictions float64 `json:"predictions"`
	// Latency is the model's kiln_request_duration_seconds over all its
	// versions and variants.
	Latency Histogram `json:"latency"`
	// Variants are the same per version and variant, by version then
	// variant.
	Variants []VariantHealth `json:"variants,omitempty"`
	// ProcessStart is process_start_time_seconds (zero if not exported):
	// a change means the server restarted.
	ProcessStart time.Time `json:"process_start,omitzero"`
	// CPUSeconds is process_cpu_seconds_total (user and system).
	CPUSeconds float64 `json:"cpu_seconds"`
	// ResidentBytes is process_resident_memory_bytes.
	ResidentBytes float64 `json:"resident_bytes"`
	// Goroutines is go_goroutines.
	Goroutines float64 `json:"goroutines"`
}

// VariantHealth are the cumulative counters of one model version in one
// variant.
type VariantHealth struct {
	Version     int64     `json:"version"`
	Variant     string    `json:"variant"`
	Requests    float64   `json:"requests"`
	Errors      float64   `json:"errors"`
	Predictions float64   `json:"predictions"`
	Latency     Histogram `json:"latency"`
}

// WindowHealth is what a model server did between two Health readings.
type WindowHealth struct {
	Model string    `json:"model"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Seconds is the window's length, To - From.
	Seconds float64 `json:"seconds"`
	// Reset says the server restarted (or its counters went back) within
	// the window: the window then counts everything the new process
	// served, and starts at the new process's start when that is known and
	// after the earlier reading, else at the earlier reading.
	Reset bool `json:"reset,omitempty"`
	// Requests, Errors and Predictions are counted in the window.
	Requests    float64 `json:"requests"`
	Errors      float64 `json:"errors"`
	Predictions float64 `json:"predictions"`
	// RequestRate and PredictionRate are per second.
	RequestRate    float64 `json:"request_rate"`
	PredictionRate float64 `json:"prediction_rate"`
	// ErrorRate is Errors / Requests (0 without requests).
	ErrorRate float64 `json:"error_rate"`
	// P50Ms and P99Ms are the window's median and 99th percentile request
	// durations in milliseconds, interpolated within buckets
	// (Histogram.Quantile); 0 without requests.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// CPUCores is the server process's CPU seconds per second (1 = one
	// core busy) over the window.
	CPUCores float64 `json:"cpu_cores"`
	// ResidentBytes is the later reading's resident memory.
	ResidentBytes float64 `json:"resident_bytes"`
	// Variants are the same per version and variant that served requests
	// in the window, by version then variant.
	Variants []VariantWindow `json:"variants,omitempty"`
}

// VariantWindow is what one model version in one variant did in a window.
type VariantWindow struct {
	Version     int64   `json:"version"`
	Variant     string  `json:"variant"`
	Requests    float64 `json:"requests"`
	Errors      float64 `json:"errors"`
	Predictions float64 `json:"predictions"`
	RequestRate float64 `json:"request_rate"`
	ErrorRate   float64 `json:"error_rate"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
}

// ScrapeHealth reads model's Health from the model server at serverURL
// (e.g. http://127.0.0.1:8080) by GET /metrics, parsed with
// prometheus/common/expfmt. model "" sums every model the server serves. A
// model the server does not serve yields Served false and zero counters,
// not an error. client nil means http.DefaultClient.
func ScrapeHealth(ctx context.Context, client *http.Client, serverURL, model string) (Health, error) {
	if client == nil {
		client = http.DefaultClient
	}
	url := strings.TrimRight(serverURL, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Health{}, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	h := Health{Model: model, Time: time.Now()}
	resp, err := client.Do(req)
	if err != nil {
		return Health{}, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Health{}, fmt.Errorf("scraping %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, 64<<20), expfmt.ResponseFormat(resp.Header))
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Health{}, fmt.Errorf("scraping %s: %w", url, err)
		}
		fams = append(fams, mf)
	}
	h.fill(fams)
	return h, nil
}

// fill sets h's counters from metric families.
func (h *Health) fill(fams []*dto.MetricFamily) {
	vars := map[variantKey]*VariantHealth{}
	variant := func(m *dto.Metric) *VariantHealth {
		var model, version, variant string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "model":
				model = l.GetValue()
			case "version":
				version = l.GetValue()
			case "variant":
				variant = l.GetValue()
			}
		}
		if h.Model != "" && model != h.Model {
			return nil
		}
		v, _ := strconv.ParseInt(version, 10, 64)
		k := variantKey{v, variant}
		if h.Model == "" {
			// All models: one entry per version and variant would mix
			// models, so keep only the totals.
			k = variantKey{-1, ""}
		}
		vh := vars[k]
		if vh == nil {
			vh = &VariantHealth{Version: v, Variant: variant}
			vars[k] = vh
		}
		return vh
	}
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case MetricRequests:
				if vh := variant(m); vh != nil {
					vh.Requests += value(m)
				}
			case MetricRequestErrors:
				if vh := variant(m); vh != nil {
					vh.Errors += value(m)
				}
			case MetricPredictions:
				if vh := variant(m); vh != nil {
					vh.Predictions += value(m)
				}
			case MetricRequestDuration:
				if vh := variant(m); vh != nil && m.GetHistogram() != nil {
					vh.Latency.add(histogramFromDTO(m.GetHistogram()))
				}
			case "process_start_time_seconds":
				if s := value(m); s > 0 {
					sec, frac := math.Modf(s)
					h.ProcessStart = time.Unix(int64(sec), int64(frac*1e9))
				}
			case "process_cpu_seconds_total":
				h.CPUSeconds = value(m)
			case "process_resident_memory_bytes":
				h.ResidentBytes = value(m)
			case "go_goroutines":
				h.Goroutines = value(m)
			}
		}
	}
	h.Served = len(vars) > 0
	for _, vh := range vars {
		h.Requests += vh.Requests
		h.Errors += vh.Errors
		h.Predictions += vh.Predictions
		h.Latency.add(vh.Latency)
		if h.Model != "" {
			h.Variants = append(h.Variants, *vh)
		}
	}
	sortVariants(h.Variants)
}

// value is a counter's, gauge's or untyped metric's value.
func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func sortVariants(v []VariantHealth) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].Version != v[j].Version {
			return v[i].Version < v[j].Version
		}
		return v[i].Variant < v[j].Variant
	})
}

// Since returns what the server did between prev and h (two readings of the
// same model and server, prev the earlier), as Prometheus's increase() and
// histogram_quantile() over the two scrapes would.
//
// A server restart (ProcessStart moved by more than 1.5s, or any cumulative count or the
// CPU time went down, or the latency buckets changed) is a new start: the
// window counts h's cumulative values, i.e. everything the new process
// served (as Prometheus treats a counter reset), and Reset is set. The
// window then starts at h.ProcessStart if that lies between the two
// readings (so rates are over the new process's life), else at prev.Time.
// A zero prev (no earlier reading) counts everything since the server
// started, from h.ProcessStart when known. Rates are 0 for an empty window.
func (h Health) Since(prev Health) WindowHealth {
	w := WindowHealth{Model: h.Model, From: prev.Time, To: h.Time, ResidentBytes: h.ResidentBytes}
	reset := prev.Time.IsZero() || restarted(prev, h)
	if reset {
		w.Reset = !prev.Time.IsZero()
		if !h.ProcessStart.IsZero() && h.ProcessStart.After(prev.Time) && h.ProcessStart.Before(h.Time) {
			w.From = h.ProcessStart
		}
		prev = Health{}
	}
	w.Seconds = w.To.Sub(w.From).Seconds()
	if w.From.IsZero() || w.Seconds <= 0 {
		w.Seconds = 0
	}
	rate := func(n float64) float64 {
		if w.Seconds <= 0 {
			return 0
		}
		return n / w.Seconds
	}
	w.Requests = h.Requests - prev.Requests
	w.Errors = h.Errors - prev.Errors
	w.Predictions = h.Predictions - prev.Predictions
	w.RequestRate, w.PredictionRate = rate(w.Requests), rate(w.Predictions)
	w.ErrorRate = ratio(w.Errors, w.Requests)
	lat := h.Latency.minus(prev.Latency)
	w.P50Ms, w.P99Ms = msOrZero(lat.Quantile(0.5)), msOrZero(lat.Quantile(0.99))
	w.CPUCores = rate(h.CPUSeconds - prev.CPUSeconds)

	before := map[variantKey]VariantHealth{}
	for _, v := range prev.Variants {
		before[variantKey{v.Version, v.Variant}] = v
	}
	for _, v := range h.Variants {
		p := before[variantKey{v.Version, v.Variant}]
		vw := VariantWindow{Version: v.Version, Variant: v.Variant,
			Requests: v.Requests - p.Requests, Errors: v.Errors - p.Errors, Predictions: v.Predictions - p.Predictions}
		if vw.Requests <= 0 {
			continue
		}
		vw.RequestRate = rate(vw.Requests)
		vw.ErrorRate = ratio(vw.Errors, vw.Requests)
		vl := v.Latency.minus(p.Latency)
		vw.P50Ms, vw.P99Ms = msOrZero(vl.Quantile(0.5)), msOrZero(vl.Quantile(0.99))
		w.Variants = append(w.Variants, vw)
	}
	return w
}

// processStartSlack is how far process_start_time_seconds may move without
// a restart.
const processStartSlack = 1500 * time.Millisecond

// restarted reports whether cur cannot follow prev in one process.
func restarted(prev, cur Health) bool {
	// process_start_time_seconds is computed from the boot time, which
	// Linux reports to the second and may shift by one as the clock is
	// adjusted: only a larger change is a restart.
	if !prev.ProcessStart.IsZero() && !cur.ProcessStart.IsZero() {
		if d := cur.ProcessStart.Sub(prev.ProcessStart); d > processStartSlack || d < -processStartSlack {
			return true
		}
	}
	if cur.Requests < prev.Requests || cur.Errors < prev.Errors || cur.Predictions < prev.Predictions ||
		cur.CPUSeconds < prev.CPUSeconds || cur.Latency.Count < prev.Latency.Count {
		return true
	}
	if prev.Latency.Count > 0 && !sameBuckets(prev.Latency, cur.Latency) {
		return true
	}
	for i, b := range prev.Latency.Buckets {
		if i < len(cur.Latency.Buckets) && cur.Latency.Buckets[i].Count < b.Count {
			return true
		}
	}
	now := map[variantKey]VariantHealth{}
	for _, v := range cur.Variants {
		now[variantKey{v.Version, v.Variant}] = v
	}
	for _, p := range prev.Variants {
		c, ok := now[variantKey{p.Version, p.Variant}]
		if p.Requests > 0 && (!ok || c.Requests < p.Requests || c.Errors < p.Errors || c.Predictions < p.Predictions) {
			return true
		}
	}
	return false
}

// minus returns h's observations that prev does not have (h and prev of
// the same histogram, prev earlier; different buckets give h).
func (h Histogram) minus(prev Histogram) Histogram {
	if prev.Count == 0 || !sameBuckets(h, prev) {
		return h
	}
	out := Histogram{Count: h.Count - prev.Count, Sum: h.Sum - prev.Sum, Buckets: make([]Bucket, len(h.Buckets))}
	for i, b := range h.Buckets {
		out.Buckets[i] = Bucket{UpperBound: b.UpperBound, Count: b.Count - prev.Buckets[i].Count}
	}
	return out
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
