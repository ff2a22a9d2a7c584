package serving

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/internal/model"
)

// Metric names of shadow deployments. They have the labels model and
// version (the shadow's), and the histograms a label side: "shadow" for the
// shadow's own observations, "live" for the answered version's on the same
// mirrored requests, so the two compare request for request.
const (
	MetricShadowRequests   = "kiln_shadow_requests_total"
	MetricShadowErrors     = "kiln_shadow_errors_total"
	MetricShadowDropped    = "kiln_shadow_dropped_total"
	MetricShadowRows       = "kiln_shadow_rows_total"
	MetricShadowAgreements = "kiln_shadow_agreements_total"
	MetricShadowDuration   = "kiln_shadow_model_duration_seconds"
	MetricShadowValue      = "kiln_shadow_prediction_value"
	// MetricExperimentUnkeyed counts experiment requests that carried no
	// assignment key (assigned at random by weight), by model and
	// experiment.
	MetricExperimentUnkeyed = "kiln_experiment_unkeyed_total"
)

// RegressionAgreement is how close a regression shadow's prediction must be
// to the live one to agree: within this fraction of the live value's
// magnitude (and at least 1e-9). A binary classifier's predictions agree
// when both fall on the same side of 0.5.
const RegressionAgreement = 0.05

// shadowQueue bounds the mirrored requests waiting for the shadow: a shadow
// slower than the traffic drops requests (kiln_shadow_dropped_total)
// instead of slowing live answers or growing without bound.
const shadowQueue = 4096

// shadowVecs are the shadow metrics of a server.
type shadowVecs struct {
	requests, errors, dropped, rows, agree *prometheus.CounterVec
	duration, value                        *prometheus.HistogramVec
	unkeyed                                *prometheus.CounterVec
}

func newShadowVecs(reg *prometheus.Registry) *shadowVecs {
	labels := []string{"model", "version"}
	v := &shadowVecs{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricShadowRequests, Help: "Requests mirrored to a shadow version and predicted by it (failed ones included)."}, labels),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricShadowErrors, Help: "Mirrored requests the shadow version failed on."}, labels),
		dropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricShadowDropped, Help: "Requests not mirrored because the shadow's queue was full."}, labels),
		rows:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricShadowRows, Help: "Rows the shadow version predicted."}, labels),
		agree: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShadowAgreements,
			Help: "Rows on which the shadow's prediction agrees with the live answer (same class at 0.5, the same class for multiclass, or within 5% for regression).",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricShadowDuration, Buckets: DurationBuckets,
			Help: "Model time (transforms and estimator) per mirrored request, side=shadow for the shadow version, side=live for the answered version on the same requests.",
		}, append(labels, "side")),
		value: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricShadowValue, Buckets: PredictionBuckets,
			Help: "Predicted values of mirrored rows, side=shadow for the shadow version, side=live for the answered version.",
		}, append(labels, "side")),
		unkeyed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricExperimentUnkeyed, Help: "Experiment requests without the assignment key, assigned at random by weight."}, []string{"model", "experiment"}),
	}
	reg.MustRegister(v.requests, v.errors, v.dropped, v.rows, v.agree, v.duration, v.value, v.unkeyed)
	return v
}

// shadowMetrics are one shadow version's metrics.
type shadowMetrics struct {
	version                                int64
	requests, errors, dropped, rows, agree prometheus.Counter
	duration, liveDuration                 prometheus.Histogram
	value, liveValue                       prometheus.Histogram
}

func (v *shadowVecs) shadow(model string, version int64) *shadowMetrics {
	ver := strconv.FormatInt(version, 10)
	return &shadowMetrics{
		version:      version,
		requests:     v.requests.WithLabelValues(model, ver),
		errors:       v.errors.WithLabelValues(model, ver),
		dropped:      v.dropped.WithLabelValues(model, ver),
		rows:         v.rows.WithLabelValues(model, ver),
		agree:        v.agree.WithLabelValues(model, ver),
		duration:     v.duration.WithLabelValues(model, ver, "shadow").(prometheus.Histogram),
		liveDuration: v.duration.WithLabelValues(model, ver, "live").(prometheus.Histogram),
		value:        v.value.WithLabelValues(model, ver, "shadow").(prometheus.Histogram),
		liveValue:    v.value.WithLabelValues(model, ver, "live").(prometheus.Histogram),
	}
}

// ShadowStats are a shadow version's counters since the server started:
// what it predicted on the requests mirrored to it, beside what the live
// version answered on the same requests.
type ShadowStats struct {
	Version int64 `json:"version"`
	// Requests mirrored and predicted by the shadow; Errors among them;
	// Dropped not mirrored (queue full).
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	Dropped  int64 `json:"dropped"`
	// Rows predicted by the shadow, and Agreements those agreeing with the
	// live answer (RegressionAgreement).
	Rows       int64 `json:"rows"`
	Agreements int64 `json:"agreements"`
	// Latency and LiveLatency are the model time per mirrored request of
	// the shadow and of the live version; Values and LiveValues their
	// predictions on the mirrored rows.
	Latency     Histogram `json:"latency"`
	LiveLatency Histogram `json:"live_latency"`
	Values      Histogram `json:"values"`
	LiveValues  Histogram `json:"live_values"`
}

func (m *shadowMetrics) stats() ShadowStats {
	return ShadowStats{
		Version: m.version, Requests: int64(counterValue(m.requests)), Errors: int64(counterValue(m.errors)),
		Dropped: int64(counterValue(m.dropped)), Rows: int64(counterValue(m.rows)), Agreements: int64(counterValue(m.agree)),
		Latency: histogramOf(m.duration), LiveLatency: histogramOf(m.liveDuration),
		Values: histogramOf(m.value), LiveValues: histogramOf(m.liveValue),
	}
}

// shadowJob is one mirrored request.
type shadowJob struct {
	mdl     *model.Model
	m       *shadowMetrics
	binary  bool
	classes bool // a multiclass model: predictions are class indexes
	rows    []map[string]any
	live    []float64
	liveDur time.Duration
}

// mirror queues a request for the shadow, or counts it dropped.
func (s *Server) mirror(j shadowJob) {
	select {
	case s.shadowCh <- j:
	default:
		j.m.dropped.Inc()
	}
}

// shadowLoop predicts mirrored requests with their shadow versions until
// the server closes.
func (s *Server) shadowLoop() {
	defer close(s.shadowDone)
	for {
		select {
		case <-s.stop:
			return
		case j := <-s.shadowCh:
			runShadow(j)
		}
	}
}

// runShadow predicts one mirrored request and compares it with the live
// answer.
func runShadow(j shadowJob) {
	start := time.Now()
	preds, err := j.mdl.PredictRows(j.rows)
	el := time.Since(start)
	if err == nil && len(preds) != len(j.live) {
		err = errShadowRows
	}
	j.m.requests.Inc()
	j.m.duration.Observe(el.Seconds())
	j.m.liveDuration.Observe(j.liveDur.Seconds())
	if err != nil {
		j.m.errors.Inc()
		return
	}
	agree := 0
	for i, p := range preds {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			continue
		}
		j.m.value.Observe(p)
		if j.classes && j.live[i] == p || !j.classes && Agree(j.live[i], p, j.binary) {
			agree++
		}
	}
	for _, l := range j.live {
		j.m.liveValue.Observe(l)
	}
	j.m.rows.Add(float64(len(preds)))
	j.m.agree.Add(float64(agree))
}

// Agree reports whether a shadow's prediction agrees with the live one: the
// same class at 0.5 for a binary classifier, within RegressionAgreement of
// the live value otherwise. (A multiclass shadow agrees on the same class
// index, which the server checks itself.)
func Agree(live, shadow float64, binary bool) bool {
	if binary {
		return (live >= 0.5) == (shadow >= 0.5)
	}
	return math.Abs(shadow-live) <= math.Max(RegressionAgreement*math.Abs(live), 1e-9)
}

type shadowError string

func (e shadowError) Error() string { return string(e) }

const errShadowRows = shadowError("the shadow returned a different number of predictions")
