package serving

import (
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// Metric names of the model server (GET /metrics). The per-variant metrics
// have the labels model, version and variant ("stable" or "canary").
const (
	MetricRequests        = "kiln_requests_total"
	MetricRequestErrors   = "kiln_request_errors_total"
	MetricRequestDuration = "kiln_request_duration_seconds"
	MetricPredictions     = "kiln_predictions_total"
	MetricCanaryPercent   = "kiln_canary_percent"
	// MetricCategoryRespelled counts values read as a numeric-looking
	// category by value (transform.Step.NumericSpellings).
	MetricCategoryRespelled = "kiln_category_respelled_total"
	MetricPredictionValue   = "kiln_prediction_value"
)

// DurationBuckets are the upper bounds, in seconds, of the
// kiln_request_duration_seconds buckets: 50µs to 5s in 1-2-5 steps.
var DurationBuckets = []float64{
	50e-6, 100e-6, 200e-6, 500e-6,
	1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3,
	1, 2, 5,
}

// PredictionBuckets are the upper bounds of the kiln_prediction_value
// buckets: 0.05 wide over [0, 1] for probabilities, and 1-2-5 steps out to
// ±10⁶ for regression outputs. Canary analysis compares the variants'
// prediction distributions over them (internal/canary).
var PredictionBuckets = func() []float64 {
	var neg, pos []float64
	for e := 1.0; e <= 1e6; e *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * e; v <= 1e6 {
				neg = append(neg, -v)
				if v > 1 {
					pos = append(pos, v)
				}
			}
		}
	}
	out := make([]float64, 0, len(neg)+21+len(pos))
	for i := len(neg) - 1; i >= 0; i-- {
		out = append(out, neg[i])
	}
	out = append(out, 0)
	for i := 1; i <= 20; i++ {
		out = append(out, float64(i)/20)
	}
	return append(out, pos...)
}()

// serverMetrics are a server's Prometheus metrics, in its own registry.
type serverMetrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	predictions *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	value       *prometheus.HistogramVec
	canary      *prometheus.GaugeVec
	respelled   *prometheus.CounterVec
}

func newServerMetrics() *serverMetrics {
	labels := []string{"model", "version", "variant"}
	m := &serverMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Prediction requests that reached a model, by model, version and variant (failed ones included).",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequestErrors,
			Help: "Prediction requests that reached a model and failed in it, by model, version and variant.",
		}, labels),
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricPredictions,
			Help: "Predictions served (rows: one request may carry many), by model, version and variant.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricRequestDuration,
			Help:    "Time from receiving a prediction request until its predictions are ready (decoding, checks, transforms, model), by model, version and variant.",
			Buckets: DurationBuckets,
		}, labels),
		value: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricPredictionValue,
			Help:    "Predicted values (one observation per row), by model, version and variant.",
			Buckets: PredictionBuckets,
		}, labels),
		canary: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricCanaryPercent,
			Help: "Percent of a model's requests sent to its canary version.",
		}, []string{"model"}),
		respelled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCategoryRespelled,
			Help: "Rows whose string value matched no training category as written and was read as the category with the same number (\"2\" as \"2.0\"), by model and column.",
		}, []string{"model", "column"}),
	}
	m.reg.MustRegister(m.requests, m.errors, m.predictions, m.duration, m.value, m.canary, m.respelled,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return m
}

// variantMetrics are the metrics of one model version in one variant,
// looked up once when deployed so that a request costs no label lookups.
type variantMetrics struct {
	version     int64
	variant     string
	requests    prometheus.Counter
	errors      prometheus.Counter
	predictions prometheus.Counter
	duration    prometheus.Histogram
	value       prometheus.Histogram
}

func (sm *serverMetrics) variant(model string, version int64, variant string) *variantMetrics {
	lv := []string{model, strconv.FormatInt(version, 10), variant}
	return &variantMetrics{
		version:     version,
		variant:     variant,
		requests:    sm.requests.WithLabelValues(lv...),
		errors:      sm.errors.WithLabelValues(lv...),
		predictions: sm.predictions.WithLabelValues(lv...),
		duration:    sm.duration.WithLabelValues(lv...).(prometheus.Histogram),
		value:       sm.value.WithLabelValues(lv...).(prometheus.Histogram),
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// histogramOf reads a histogram.
func histogramOf(h prometheus.Histogram) Histogram {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		return Histogram{}
	}
	return histogramFromDTO(m.GetHistogram())
}

func histogramFromDTO(d *dto.Histogram) Histogram {
	out := Histogram{Count: float64(d.GetSampleCount()), Sum: d.GetSampleSum()}
	if c := d.GetSampleCountFloat(); c > 0 && out.Count == 0 {
		out.Count = c
	}
	for _, b := range d.GetBucket() {
		ub := b.GetUpperBound()
		if math.IsInf(ub, +1) {
			continue // the +Inf bucket is Count
		}
		n := float64(b.GetCumulativeCount())
		if f := b.GetCumulativeCountFloat(); f > 0 && n == 0 {
			n = f
		}
		out.Buckets = append(out.Buckets, Bucket{UpperBound: ub, Count: n})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].UpperBound < out.Buckets[j].UpperBound })
	return out
}

// Histogram is a cumulative histogram, as Prometheus exposes it: of request
// durations in seconds, or of predicted values.
type Histogram struct {
	// Count is the number of observations (the +Inf bucket's count).
	Count float64 `json:"count"`
	// Sum is the sum of the observations.
	Sum float64 `json:"sum"`
	// Buckets are the finite buckets by ascending upper bound; counts are
	// cumulative (observations ≤ the upper bound).
	Buckets []Bucket `json:"buckets"`
}

// Bucket is one histogram bucket.
type Bucket struct {
	// UpperBound is the bucket's upper bound ("le").
	UpperBound float64 `json:"le"`
	// Count is the number of observations at most UpperBound.
	Count float64 `json:"count"`
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of the observations, in
// seconds, as Prometheus's histogram_quantile computes it: the bucket holding
// the quantile's rank is found, and the value interpolated linearly between
// its lower and upper bounds (the lowest bucket's lower bound is 0). A
// quantile in the +Inf bucket is the highest finite upper bound. NaN when
// the histogram is empty or has no finite bucket.
func (h Histogram) Quantile(q float64) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(+1)
	}
	if h.Count <= 0 || len(h.Buckets) == 0 {
		return math.NaN()
	}
	// The buckets with +Inf, counts forced monotonic (as Prometheus does
	// for inconsistent data, e.g. a scrape racing observations).
	n := len(h.Buckets)
	counts := make([]float64, n+1)
	max := 0.0
	for i, b := range h.Buckets {
		max = math.Max(max, b.Count)
		counts[i] = max
	}
	counts[n] = math.Max(max, h.Count)
	rank := q * counts[n]
	b := sort.Search(n, func(i int) bool { return counts[i] >= rank })
	if b == n {
		return h.Buckets[n-1].UpperBound
	}
	if b == 0 && h.Buckets[0].UpperBound <= 0 {
		return h.Buckets[0].UpperBound
	}
	start, end, count := 0.0, h.Buckets[b].UpperBound, counts[b]
	if b > 0 {
		start = h.Buckets[b-1].UpperBound
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	if count <= 0 {
		return end
	}
	return start + (end-start)*(rank/count)
}

// Mean is the mean observation in seconds, NaN when empty.
func (h Histogram) Mean() float64 {
	if h.Count <= 0 {
		return math.NaN()
	}
	return h.Sum / h.Count
}

// Bins returns the observations per bucket (not cumulative), the last
// being the +Inf bucket's, and the finite upper bounds: the form
// internal/canary compares.
func (h Histogram) Bins() (counts, bounds []float64) {
	counts = make([]float64, len(h.Buckets)+1)
	bounds = make([]float64, len(h.Buckets))
	prev := 0.0
	for i, b := range h.Buckets {
		counts[i] = math.Max(b.Count-prev, 0)
		prev = math.Max(prev, b.Count)
		bounds[i] = b.UpperBound
	}
	counts[len(h.Buckets)] = math.Max(h.Count-prev, 0)
	return counts, bounds
}

// Sub returns h minus the observations of base (an earlier reading of the
// same histogram); a base with other buckets is ignored.
func (h Histogram) Sub(base Histogram) Histogram {
	out := Histogram{Count: h.Count, Sum: h.Sum, Buckets: append([]Bucket(nil), h.Buckets...)}
	if base.Count == 0 || !sameBuckets(h, base) {
		return out
	}
	out.Count -= base.Count
	out.Sum -= base.Sum
	for i := range out.Buckets {
		out.Buckets[i].Count -= base.Buckets[i].Count
	}
	return out
}

// Add returns the sum of h and o's observations (a histogram with no
// observations takes the other's buckets).
func (h Histogram) Add(o Histogram) Histogram {
	out := Histogram{Count: h.Count, Sum: h.Sum, Buckets: append([]Bucket(nil), h.Buckets...)}
	out.add(o)
	return out
}

// add adds o's observations; both must have the same buckets.
func (h *Histogram) add(o Histogram) {
	if len(h.Buckets) == 0 && h.Count == 0 {
		h.Buckets = append([]Bucket(nil), o.Buckets...)
		h.Count, h.Sum = o.Count, o.Sum
		return
	}
	h.Count += o.Count
	h.Sum += o.Sum
	for i := range h.Buckets {
		if i < len(o.Buckets) {
			h.Buckets[i].Count += o.Buckets[i].Count
		}
	}
}

// sameBuckets reports whether a and b have the same upper bounds.
func sameBuckets(a, b Histogram) bool {
	if len(a.Buckets) != len(b.Buckets) {
		return false
	}
	for i := range a.Buckets {
		if a.Buckets[i].UpperBound != b.Buckets[i].UpperBound {
			return false
		}
	}
	return true
}

// msOrZero converts seconds to milliseconds, NaN and infinities to 0 (so
// the value can be JSON-encoded).
func msOrZero(s float64) float64 {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0
	}
	return s * 1e3
}
