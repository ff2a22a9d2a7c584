// Package serving is Kiln's model server: it serves JSON predictions for
// registered model versions (KServe's v1 routes, and the whole Open
// Inference Protocol v2 over REST and gRPC: health, metadata, readiness and
// inference, per version too), gives every prediction an ID
// (client-supplied or generated), splits each model's traffic between a
// stable and a canary version, hot-swaps versions without dropping requests,
// counts requests, errors and latency per version for canary analysis,
// exports Prometheus metrics (ScrapeHealth reads them back), and logs every
// served row (inputs, prediction, ID, version, latency) to Parquet files for
// drift monitoring. docs/serving.md describes the routes, the request log
// and the metrics.
//
// Admin routes (deploy, stats) require a bearer token.
package serving

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-ml/kiln/internal/artifact/localfs"
	"github.com/kiln-ml/kiln/internal/model"
)

// Options configures a Server.
type Options struct {
	// AdminToken guards the admin routes. Empty disables them.
	AdminToken string
	// RequestLogDir receives request logs, one directory per model. Empty disables logging.
	RequestLogDir string
	// FlushInterval is how often buffered request rows are written. Default 2s.
	FlushInterval time.Duration
	// FlushRows writes a model version's buffer early when it holds this many rows. Default 50000.
	FlushRows int
	// MaxInstances bounds one request's instances. Default 10000.
	MaxInstances int
	// Logger receives the server log; nil means slog.Default().
	Logger *slog.Logger
	// Bundles, when set, returns a local directory holding the model
	// bundle at a URI that is not local (an object store's s3:// or
	// gs:// URL; see artifact.Store.Local). Nil serves local bundles only.
	Bundles func(uri string) (string, error)
	// LogWritten, when set, is called with each request log file once it
	// is whole (from the goroutine that flushed it): `kiln serve` ships it
	// to the object store, where workers on other machines read it.
	LogWritten func(model, path string)
	// LogWriter, when set, is the command line of a child process that
	// encodes and writes the request log's files (one running RunLogWriter,
	// like `kiln serve`'s hidden log-writer command), at a lower priority
	// than the server; see logproc.go. Empty encodes them in this process,
	// as does a child that fails.
	LogWriter []string
}

// Target is one deployed model version.
type Target struct {
	Version   int64  `json:"version"`
	BundleURI string `json:"bundle_uri"`
}

// Deployment is a model's traffic split.
type Deployment struct {
	Stable Target `json:"stable"`
	// Canary, when set, receives CanaryPercent percent of the requests.
	Canary        *Target `json:"canary,omitempty"`
	CanaryPercent int     `json:"canary_percent"`
	// Shadow, when set, receives a copy of every request after it is
	// answered; its predictions are compared with the live answers
	// (ShadowStats) and never returned.
	Shadow *Target `json:"shadow,omitempty"`
	// Experiment, when set, splits the traffic between its variants by
	// key instead of between Stable and Canary (which it excludes); Stable
	// is its control's version. Versionless metadata describes Stable.
	Experiment *Experiment `json:"experiment,omitempty"`
}

// VariantStats are cumulative counters of one version since the server
// started (over both variants, if the version served as stable and as
// canary).
type VariantStats struct {
	Version  int64 `json:"version"`
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Predictions are the rows predicted by the requests that succeeded.
	Predictions int64 `json:"predictions,omitempty"`
	// MeanMs is the mean request duration (kiln_request_duration_seconds:
	// from receiving the request until its predictions are ready).
	MeanMs float64 `json:"mean_ms"`
	// P50Ms and P99Ms are the median and 99th percentile request durations,
	// interpolated within the kiln_request_duration_seconds buckets as
	// Prometheus's histogram_quantile does (Histogram.Quantile): within a
	// bucket they are estimates, exact only to the bucket (DurationBuckets).
	// 0 without requests.
	P50Ms float64 `json:"p50_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	// Latency is the kiln_request_duration_seconds histogram and Values
	// the kiln_prediction_value one: the distributions canary analysis
	// compares.
	Latency Histogram `json:"latency"`
	Values  Histogram `json:"values"`
}

// Stats are a model's counters, by ascending version.
type Stats struct {
	Model    string         `json:"model"`
	Variants []VariantStats `json:"variants"`
	// Shadows are the counters of the versions that served as shadows
	// (not in Variants: a shadow answers no one), by ascending version.
	Shadows []ShadowStats `json:"shadows,omitempty"`
}

// PredictResponse is the v1 predict answer.
type PredictResponse struct {
	Predictions []float64 `json:"predictions"`
	// PredictionIDs are the predictions' IDs, parallel to Predictions: the
	// request's "ids", or generated ones.
	PredictionIDs []string `json:"prediction_ids"`
	ModelName     string   `json:"model_name"`
	ModelVersion  int64    `json:"model_version"`
	Variant       string   `json:"variant"`
	// Classes names a multiclass model's classes; Predictions then hold
	// each instance's most probable class as an index into Classes.
	Classes []string `json:"classes,omitempty"`
	// Labels are a multiclass model's predicted class names, parallel to
	// Predictions.
	Labels []string `json:"labels,omitempty"`
	// Probabilities are a multiclass model's class probabilities, one row
	// per instance in Classes order.
	Probabilities [][]float64 `json:"probabilities,omitempty"`
	// warnings go to the Kiln-Warning headers (WarningHeader).
	warnings []string
	// rowsKept is set when the request's rows are still in use after the
	// answer (mirrored to a shadow), so that they are not recycled.
	rowsKept bool
}

// ModelStatus describes a served model.
type ModelStatus struct {
	Name       string     `json:"name"`
	Ready      bool       `json:"ready"`
	Deployment Deployment `json:"deployment"`
}

// loaded is a deployment with its bundles in memory and its variants'
// metrics; it is immutable and swapped atomically.
type loaded struct {
	dep     Deployment
	stable  *model.Model
	canary  *model.Model
	stableM *variantMetrics
	canaryM *variantMetrics
	// shadow receives mirrored requests; exp assigns experiment arms.
	shadow  *model.Model
	shadowM *shadowMetrics
	exp     *assigner
	// names are the stable version's input names, each its own key and
	// value (parseV1Request).
	names map[string]string
	// dense is the layout of dense v1 requests (dense.go), nil when the
	// deployment takes only row maps.
	dense *denseLayout
}

// variantKey names one version in one variant.
type variantKey struct {
	version int64
	variant string
}

// served is one model's state.
type served struct {
	name string
	cur  atomic.Pointer[loaded]
	mu   sync.Mutex
	vars map[variantKey]*variantMetrics // every variant ever deployed; guarded by mu
	// shadows are the metrics of every version deployed as a shadow; guarded by mu.
	shadows map[int64]*shadowMetrics
}

// shadowMetrics returns version's shadow metrics, creating them on first use.
func (m *served) shadowMetrics(v *shadowVecs, version int64) *shadowMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shadows == nil {
		m.shadows = map[int64]*shadowMetrics{}
	}
	sm := m.shadows[version]
	if sm == nil {
		sm = v.shadow(m.name, version)
		m.shadows[version] = sm
	}
	return sm
}

// metrics returns the metrics of version in variant, creating them (at
// zero) on first use.
func (m *served) metrics(sm *serverMetrics, version int64, variant string) *variantMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := variantKey{version, variant}
	vm := m.vars[k]
	if vm == nil {
		vm = sm.variant(m.name, version, variant)
		m.vars[k] = vm
	}
	return vm
}

// Server serves models. Create it with New.
type Server struct {
	opts    Options
	log     *slog.Logger
	mu      sync.RWMutex
	models  map[string]*served
	cache   *bundleCache
	reqLog  *requestLog
	metrics *serverMetrics
	shadowV *shadowVecs
	stop    chan struct{}
	done    chan struct{}
	// shadowCh queues mirrored requests for shadowLoop.
	shadowCh   chan shadowJob
	shadowDone chan struct{}
}

// New returns a server with no models; deploy them through the admin route,
// SetDeployment or Restore.
func New(opts Options) *Server {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 2 * time.Second
	}
	if opts.FlushRows <= 0 {
		opts.FlushRows = 50000
	}
	if opts.MaxInstances <= 0 {
		opts.MaxInstances = 10000
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		opts: opts, log: log, models: map[string]*served{}, cache: &bundleCache{m: map[string]*model.Model{}, fetch: opts.Bundles},
		stop: make(chan struct{}), done: make(chan struct{}), metrics: newServerMetrics(),
		shadowCh: make(chan shadowJob, shadowQueue), shadowDone: make(chan struct{}),
	}
	s.shadowV = newShadowVecs(s.metrics.reg)
	if opts.RequestLogDir != "" {
		s.reqLog = newRequestLog(opts.RequestLogDir, opts.FlushRows, log)
		s.reqLog.written = opts.LogWritten
		if len(opts.LogWriter) > 0 {
			p, err := startLogProc(opts.LogWriter, log, opts.LogWritten)
			if err != nil {
				log.Warn("request log: writing in this process", "error", err)
			} else {
				s.reqLog.proc = p
			}
		}
	}
	go s.flushLoop()
	go s.shadowLoop()
	return s
}

func (s *Server) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if s.reqLog != nil {
				if err := s.reqLog.flushAll(); err != nil {
					s.log.Error("request log: rows lost", "error", err)
				}
			}
		}
	}
}

// Close stops the flusher and writes buffered request rows, waiting for
// writes already under way. Call it once, after the last request.
func (s *Server) Close() error {
	close(s.stop)
	<-s.done
	<-s.shadowDone
	if s.reqLog != nil {
		return s.reqLog.close()
	}
	return nil
}

// SetDeployment loads the deployment's bundles and swaps them in. Requests in
// flight finish on the versions they started with.
func (s *Server) SetDeployment(name string, d Deployment) error {
	if !validName(name) {
		return fmt.Errorf("invalid model name %q: use lowercase letters, digits, '-' and '_'", name)
	}
	if d.CanaryPercent < 0 || d.CanaryPercent > 100 {
		return fmt.Errorf("canary_percent %d is outside 0..100", d.CanaryPercent)
	}
	if d.Canary == nil && d.CanaryPercent != 0 {
		return errors.New("canary_percent is set but there is no canary")
	}
	if e := d.Experiment; e != nil {
		if d.Canary != nil {
			return errors.New("a deployment has a canary or an experiment, not both")
		}
		if err := e.Check(); err != nil {
			return err
		}
		if d.Stable.Version == 0 && d.Stable.BundleURI == "" {
			d.Stable = Target{Version: e.Variants[0].Version, BundleURI: e.Variants[0].BundleURI}
		}
	}
	l := &loaded{dep: d}
	var err error
	if l.stable, err = s.cache.load(d.Stable.BundleURI); err != nil {
		return fmt.Errorf("loading stable v%d: %w", d.Stable.Version, err)
	}
	l.names = make(map[string]string, len(l.stable.Manifest.Inputs))
	for _, f := range l.stable.Manifest.Inputs {
		l.names[f.Name] = f.Name
	}
	if d.Canary != nil {
		if l.canary, err = s.cache.load(d.Canary.BundleURI); err != nil {
			return fmt.Errorf("loading canary v%d: %w", d.Canary.Version, err)
		}
	}
	if d.Shadow != nil {
		if l.shadow, err = s.cache.load(d.Shadow.BundleURI); err != nil {
			return fmt.Errorf("loading shadow v%d: %w", d.Shadow.Version, err)
		}
	}
	var arms []arm
	if e := d.Experiment; e != nil {
		kind, key, _ := parseKey(e.Key)
		l.exp = &assigner{salt: e.Name, kind: kind, name: key, unkeyed: s.shadowV.unkeyed.WithLabelValues(name, e.Name)}
		if kind == "header" {
			l.exp.name = http.CanonicalHeaderKey(key)
		}
		for _, v := range e.Variants {
			mdl, err := s.cache.load(v.BundleURI)
			if err != nil {
				return fmt.Errorf("loading variant %s (v%d): %w", v.Name, v.Version, err)
			}
			l.exp.total += uint64(v.Weight)
			arms = append(arms, arm{v: v, mdl: mdl, upTo: l.exp.total})
		}
	}
	// Store the deployment before unlocking, so a listed model always has one.
	s.mu.Lock()
	m := s.models[name]
	if m == nil {
		m = &served{name: name, vars: map[variantKey]*variantMetrics{}}
		s.models[name] = m
	}
	l.stableM = m.metrics(s.metrics, d.Stable.Version, "stable")
	if d.Canary != nil {
		l.canaryM = m.metrics(s.metrics, d.Canary.Version, "canary")
	}
	if d.Shadow != nil {
		l.shadowM = m.shadowMetrics(s.shadowV, d.Shadow.Version)
	}
	for i := range arms {
		arms[i].m = m.metrics(s.metrics, arms[i].v.Version, arms[i].v.Name)
	}
	if l.exp != nil {
		l.exp.arms = arms
	}
	if l.exp == nil && l.shadow == nil {
		l.dense = newDenseLayout(l.stable, l.canary)
	}
	m.cur.Store(l)
	s.metrics.canary.WithLabelValues(name).Set(float64(d.CanaryPercent))
	inUse := map[string]bool{}
	for _, other := range s.models {
		if cur := other.cur.Load(); cur != nil {
			inUse[cur.dep.Stable.BundleURI] = true
			if cur.dep.Canary != nil {
				inUse[cur.dep.Canary.BundleURI] = true
			}
			if cur.dep.Shadow != nil {
				inUse[cur.dep.Shadow.BundleURI] = true
			}
			if cur.dep.Experiment != nil {
				for _, v := range cur.dep.Experiment.Variants {
					inUse[v.BundleURI] = true
				}
			}
		}
	}
	s.mu.Unlock()
	// Bundles no deployment serves any more are dropped (each retrain would
	// otherwise keep one more in memory for the server's lifetime).
	s.cache.retain(inUse)
	desc := fmt.Sprintf("v%d", d.Stable.Version)
	if d.Canary != nil {
		desc += fmt.Sprintf(" %d%%, canary v%d %d%%", 100-d.CanaryPercent, d.Canary.Version, d.CanaryPercent)
	}
	if e := d.Experiment; e != nil {
		parts := make([]string, len(e.Variants))
		for i, v := range e.Variants {
			parts[i] = fmt.Sprintf("%s v%d weight %d", v.Name, v.Version, v.Weight)
		}
		desc = fmt.Sprintf("experiment %s by %s: %s", e.Name, e.Key, strings.Join(parts, ", "))
	}
	if d.Shadow != nil {
		desc += fmt.Sprintf(", shadow v%d", d.Shadow.Version)
	}
	s.log.Info("deployment", "model", name, "traffic", desc)
	return nil
}

// Status describes the named model's deployment; false if the server does
// not know the model.
func (s *Server) Status(name string) (ModelStatus, bool) { return s.status(name) }

// Logger is the server's log.
func (s *Server) Logger() *slog.Logger { return s.log }

// Stats returns a model's counters: one VariantStats per version that has
// served requests, read from the server's metrics.
func (s *Server) Stats(name string) (Stats, bool) {
	s.mu.RLock()
	m := s.models[name]
	s.mu.RUnlock()
	if m == nil {
		return Stats{}, false
	}
	m.mu.Lock()
	vars := make([]*variantMetrics, 0, len(m.vars))
	for _, vm := range m.vars {
		vars = append(vars, vm)
	}
	shadows := make([]*shadowMetrics, 0, len(m.shadows))
	for _, sm := range m.shadows {
		shadows = append(shadows, sm)
	}
	m.mu.Unlock()
	type total struct {
		requests, errors, predictions float64
		latency, values               Histogram
	}
	byVersion := map[int64]*total{}
	for _, vm := range vars {
		t := byVersion[vm.version]
		if t == nil {
			t = &total{}
			byVersion[vm.version] = t
		}
		t.requests += counterValue(vm.requests)
		t.errors += counterValue(vm.errors)
		t.predictions += counterValue(vm.predictions)
		t.latency.add(histogramOf(vm.duration))
		t.values.add(histogramOf(vm.value))
	}
	st := Stats{Model: name}
	for v, t := range byVersion {
		if t.requests == 0 {
			continue
		}
		st.Variants = append(st.Variants, VariantStats{
			Version: v, Requests: int64(t.requests), Errors: int64(t.errors), Predictions: int64(t.predictions),
			MeanMs: msOrZero(t.latency.Mean()), P50Ms: msOrZero(t.latency.Quantile(0.5)), P99Ms: msOrZero(t.latency.Quantile(0.99)),
			Latency: t.latency, Values: t.values,
		})
	}
	sort.Slice(st.Variants, func(i, j int) bool { return st.Variants[i].Version < st.Variants[j].Version })
	for _, sm := range shadows {
		st.Shadows = append(st.Shadows, sm.stats())
	}
	sort.Slice(st.Shadows, func(i, j int) bool { return st.Shadows[i].Version < st.Shadows[j].Version })
	return st, true
}

// MetricsRegistry returns the registry that GET /metrics serves: the
// server's own (not prometheus.DefaultRegisterer, so several servers can
// live in one process). It holds the kiln_* metrics, the process collector
// (process_*) and the Go collector (go_*); an embedding process may register
// more collectors, but not a second process or Go collector.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.reg }

func (s *Server) model(name string) *served {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.models[name]
}

// Handler returns the HTTP routes:
//
//	GET  /healthz
//	GET  /metrics                                 Prometheus metrics (MetricsRegistry)
//	GET  /                                        KServe v1 liveness: {"status": "alive"}
//	GET  /v1/models                               served models: KServe's names, and their statuses (ModelList)
//	GET  /v1/models/{name}                        one model's status (KServe v1 model ready: 503 when not ready)
//	POST /v1/models/{name}:predict                {"instances": [{"col": value, ...} or [value, ...], ...], "ids": [...]}
//	GET  /v2/health/live, /v2/health/ready        Open Inference Protocol v2 (v2.go) health,
//	GET  /v2                                      server metadata,
//	GET  /v2/models/{name}[/versions/{v}]         model metadata,
//	GET  /v2/models/{name}[/versions/{v}]/ready   model readiness,
//	POST /v2/models/{name}[/versions/{v}]/infer   and inference (also over gRPC: GRPCServer)
//	PUT  /admin/v1/models/{name}/deployment       Deployment (bearer token)
//	GET  /admin/v1/models/{name}/stats            Stats (bearer token)
//
// FastHTTP answers the two POST routes by calling their handlers itself, not
// through the mux returned here: anything added around the mux must be
// added there too.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /{$}", s.handleLiveV1)
	mux.HandleFunc("GET /v1/models", s.handleList)
	mux.HandleFunc("GET /v1/models/{name}", s.handleStatus)
	mux.HandleFunc("POST /v1/models/{name}", s.handlePredictV1)
	mux.HandleFunc("GET /v2/health/live", s.handleServerLive)
	mux.HandleFunc("GET /v2/health/ready", s.handleServerReady)
	mux.HandleFunc("GET /v2", s.handleServerMetadata)
	mux.HandleFunc("GET /v2/models/{name}", s.handleModelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.handleModelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.handleModelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.handleModelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.handleInferV2)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.handleInferV2)
	mux.HandleFunc("PUT /admin/v1/models/{name}/deployment", s.admin(s.handleDeploy))
	mux.HandleFunc("GET /admin/v1/models/{name}/stats", s.admin(s.handleStats))
	return mux
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.AdminToken == "" {
			writeError(w, http.StatusForbidden, "admin routes are disabled: start the server with an admin token")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.AdminToken)) != 1 {
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

// names returns the served models' names, sorted.
func (s *Server) names() []string {
	s.mu.RLock()
	names := make([]string, 0, len(s.models))
	for n := range s.models {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	return names
}

// ModelList is the answer of GET /v1/models: KServe v1's list of model
// names, and Kiln's status of each (ready, traffic split) beside it.
type ModelList struct {
	Models   []string      `json:"models"`
	Statuses []ModelStatus `json:"statuses"`
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	out := ModelList{Models: []string{}, Statuses: []ModelStatus{}}
	for _, n := range s.names() {
		if st, ok := s.status(n); ok {
			out.Models = append(out.Models, n)
			out.Statuses = append(out.Statuses, st)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) status(name string) (ModelStatus, bool) {
	m := s.model(name)
	if m == nil {
		return ModelStatus{}, false
	}
	l := m.cur.Load()
	if l == nil {
		return ModelStatus{Name: name}, true // not ready: no deployment yet
	}
	return ModelStatus{Name: name, Ready: true, Deployment: l.dep}, true
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	// KServe v1 model ready: 200 when ready, 503 when not, 404 when unknown.
	if m := s.model(r.PathValue("name")); m != nil && m.cur.Load() == nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("model %q is not ready: it has no deployment", m.name))
		return
	}
	st, ok := s.status(r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q is not served here", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// pick chooses the variant for one request: an experiment's arm by the
// request's key, else the canary or stable version by the split.
func pick(l *loaded, rows []map[string]any, header func(string) string) (*model.Model, *variantMetrics) {
	if l.exp != nil {
		a := l.exp.pick(l.exp.keyOf(rows, header))
		return a.mdl, a.m
	}
	if l.canary != nil && l.dep.CanaryPercent > 0 && rand.IntN(100) < l.dep.CanaryPercent {
		return l.canary, l.canaryM
	}
	return l.stable, l.stableM
}

// predictInput is a request's rows: maps, or a dense matrix of layout
// (dense.go), which only a deployment with that layout takes.
type predictInput struct {
	rows   []map[string]any
	dense  *v1Dense
	layout *denseLayout
}

// predict runs the rows through the chosen variant, counts the outcome,
// logs the rows, and mirrors them to the shadow, if any. ids are the client's
// prediction IDs (already checked), nil to generate them; start is when the
// request arrived; header reads the request's headers (an experiment's
// key), nil when it has none.
func (s *Server) predict(m *served, in predictInput, ids []string, start time.Time, header func(string) string) (PredictResponse, int, error) {
	l := m.cur.Load()
	if l == nil {
		return PredictResponse{}, http.StatusServiceUnavailable, fmt.Errorf("model %q has no deployment", m.name)
	}
	if in.dense != nil && in.layout != l.dense {
		in = predictInput{rows: denseRows(in.dense, in.layout)} // the deployment changed
	}
	rows := in.rows
	mdl, vm := pick(l, rows, header)
	var modelStart time.Time
	if l.shadow != nil {
		modelStart = time.Now()
	}
	var sc model.Scores
	var err error
	if in.dense != nil {
		sc, err = in.score(mdl)
	} else {
		sc, err = mdl.ScoreRows(rows)
	}
	preds, respelled := sc.Values, sc.Respelled
	var modelDur time.Duration
	if l.shadow != nil {
		modelDur = time.Since(modelStart)
	}
	if err == nil {
		for i, p := range preds {
			if math.IsNaN(p) || math.IsInf(p, 0) {
				err = fmt.Errorf("instance %d: the model returned %v", i, p)
				break
			}
		}
	}
	el := time.Since(start)
	vm.requests.Inc()
	vm.duration.Observe(el.Seconds())
	if err != nil {
		vm.errors.Inc()
		return PredictResponse{}, http.StatusBadRequest, err
	}
	vm.predictions.Add(float64(len(preds)))
	for _, p := range preds {
		vm.value.Observe(p)
	}
	if ids == nil {
		ids = make([]string, len(preds))
		newPredictionIDs(start, ids)
	}
	switch {
	case s.reqLog == nil:
	case in.dense != nil:
		s.reqLog.addDense(m.name, vm.version, vm.variant, mdl, in.dense.vals, in.dense.n, preds, ids, el, start)
	default:
		s.reqLog.add(m.name, vm.version, vm.variant, mdl, rows, preds, ids, el, start)
	}
	if l.shadow != nil {
		s.mirror(shadowJob{mdl: l.shadow, m: l.shadowM, binary: l.shadow.Manifest.Task == model.TaskBinary,
			classes: l.shadow.Manifest.Task == model.TaskMulticlass, rows: rows, live: preds, liveDur: modelDur})
	}
	resp := PredictResponse{Predictions: preds, PredictionIDs: ids, ModelName: m.name, ModelVersion: vm.version, Variant: vm.variant,
		rowsKept: l.shadow != nil}
	if sc.Proba != nil {
		setClasses(&resp, mdl.Manifest.Classes, sc.Proba)
	}
	for _, r := range respelled {
		s.metrics.respelled.WithLabelValues(m.name, r.Column).Add(float64(r.Rows))
		resp.warnings = append(resp.warnings, fmt.Sprintf("column %q: %q read as category %q (%d rows)", r.Column, r.Value, r.Category, r.Rows))
	}
	return resp, http.StatusOK, nil
}

// setClasses fills a multiclass answer's Classes, Labels and Probabilities
// (rows of proba, not copied) from its Predictions (class indexes).
func setClasses(resp *PredictResponse, classes []string, proba []float64) {
	k := len(classes)
	resp.Classes = classes
	resp.Labels = make([]string, len(resp.Predictions))
	resp.Probabilities = make([][]float64, len(resp.Predictions))
	for i, p := range resp.Predictions {
		resp.Labels[i] = classes[int(p)]
		resp.Probabilities[i] = proba[i*k : (i+1)*k : (i+1)*k]
	}
}

// WarningHeader is the response header that reports what a prediction
// request did that its client may not expect (one header per warning):
// e.g. a string value read as the training category with the same number.
const WarningHeader = "Kiln-Warning"

// setWarnings adds resp's warnings to the response headers.
func setWarnings(w http.ResponseWriter, resp PredictResponse) {
	for _, s := range resp.warnings {
		w.Header().Add(WarningHeader, s)
	}
}

func (s *Server) handlePredictV1(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, ok := strings.CutSuffix(r.PathValue("name"), ":predict")
	if !ok {
		writeError(w, http.StatusNotFound, "unknown route: POST /v1/models/{name}:predict is the predict route")
		return
	}
	m := s.model(name)
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q is not served here", name))
		return
	}
	buf, rerr := readV1Body(r)
	defer releaseBody(buf)
	if l := m.cur.Load(); l != nil && l.dense != nil && rerr == nil && buf.Len() <= maxBodyBytes {
		d := denseBufs.Get().(*v1Dense)
		defer releaseDense(d)
		if parseV1Dense(buf.Bytes(), l.dense, d) {
			if s.checkV1(w, d.n, d.ids) {
				s.predictV1(w, r, m, predictInput{dense: d, layout: l.dense}, d.ids, start)
			}
			return
		}
	}
	var req v1Request
	if err := decodeV1Read(r, m, &req, buf, rerr); err != nil {
		bodyError(w, err)
		return
	}
	if len(req.Instances) == 0 {
		writeError(w, http.StatusBadRequest, `request has no "instances"`)
		return
	}
	if !s.checkV1(w, len(req.Instances), req.IDs) {
		return
	}
	rows, err := v1Rows(m, req.Instances)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.predictV1(w, r, m, predictInput{rows: rows}, req.IDs, start)
}

// checkV1 answers a v1 predict request of n instances with the client's
// ids (nil for none) when it has too many instances or bad ids, and
// reports whether it may go on.
func (s *Server) checkV1(w http.ResponseWriter, n int, ids []string) bool {
	if n > s.opts.MaxInstances {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d instances, at most %d per request", n, s.opts.MaxInstances))
		return false
	}
	if ids != nil {
		if err := CheckPredictionIDs(ids, n, "ids"); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return false
		}
	}
	return true
}

// predictV1 answers a checked v1 predict request.
func (s *Server) predictV1(w http.ResponseWriter, r *http.Request, m *served, in predictInput, ids []string, start time.Time) {
	resp, code, err := s.predict(m, in, ids, start, r.Header.Get)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	setWarnings(w, resp)
	writePredictResponse(w, resp)
	if !resp.rowsKept {
		releaseRows(in.rows)
	}
}

// v2Tensor is one Open Inference Protocol v2 input or output.
type v2Tensor struct {
	Name     string `json:"name"`
	Shape    []int  `json:"shape"`
	Datatype string `json:"datatype"`
	Data     []any  `json:"data"`
}

// v2Parameters are the Open Inference Protocol "parameters" Kiln reads on
// requests and writes on responses.
type v2Parameters struct {
	PredictionIDs []string `json:"prediction_ids,omitempty"`
}

// v2InferResponse is the Open Inference Protocol answer.
type v2InferResponse struct {
	ID           string       `json:"id"`
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	Parameters   v2Parameters `json:"parameters"`
	Outputs      []v2Tensor   `json:"outputs"`
}

func (s *Server) handleInferV2(w http.ResponseWriter, r *http.Request) {
	// POST /v2/models/{name}[/versions/{version}]/infer (v2.go).
	s.inferV2(w, r, r.PathValue("name"), r.PathValue("version"))
}

func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request) {
	var d Deployment
	if err := decodeBody(r, &d); err != nil {
		bodyError(w, err)
		return
	}
	if err := s.SetDeployment(r.PathValue("name"), d); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"applied": true})
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	st, ok := s.Stats(r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q is not served here", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// maxBodyBytes bounds a request body.
const maxBodyBytes = 32 << 20

// decodeBody decodes the request body, which must hold exactly one JSON
// value of at most maxBodyBytes.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding request body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the JSON value")
		}
		return fmt.Errorf("decoding request body: %w", err)
	}
	return nil
}

// bodyError answers a decodeBody error: 413 for a body over the size limit,
// 400 otherwise.
func bodyError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		code = http.StatusRequestEntityTooLarge
	}
	writeError(w, code, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// Preload puts a model in memory under uri, so a deployment may name it
// without a bundle on disk (an exported predictor serves the bundle it
// carries this way). It is dropped like a loaded bundle once no deployment
// names it.
func (s *Server) Preload(uri string, m *model.Model) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	s.cache.m[uri] = m
}

// bundleCache keeps loaded bundles by URI (bundles are immutable).
type bundleCache struct {
	mu    sync.Mutex
	m     map[string]*model.Model
	fetch func(uri string) (string, error)
}

// retain drops every cached bundle whose URI is not in keep.
func (c *bundleCache) retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for uri := range c.m {
		if !keep[uri] {
			delete(c.m, uri)
		}
	}
}

// size is the number of cached bundles.
func (c *bundleCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *bundleCache) load(uri string) (*model.Model, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.m[uri]; ok {
		return m, nil
	}
	var p string
	var err error
	if c.fetch != nil && !strings.HasPrefix(uri, "file://") && strings.Contains(uri, "://") {
		p, err = c.fetch(uri)
	} else {
		p, err = localfs.Path(uri, "")
	}
	if err != nil {
		return nil, err
	}
	m, err := model.Load(p)
	if err != nil {
		return nil, err
	}
	c.m[uri] = m
	return m, nil
}
