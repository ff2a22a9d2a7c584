// Package site is Kiln's local page: a small server-rendered site (Go
// templates, inline CSS, no scripts and no external requests) that `kiln
// dev` serves on 127.0.0.1:8234. It indexes the batch reports by model and
// date, serves each report's self-contained HTML page and JSON summary,
// shows a model version's lineage, each monitored model's windows over time
// (drift, live metrics, latency, thresholds and decisions, as inline SVG),
// lists open alerts, and exports the
// registry's judgements (open alerts, the latest reports' verdicts) as
// Prometheus metrics at /metrics. Every figure comes from the registry's
// database, so the page, `kiln reports` and `kiln schedules describe` agree.
package site

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
)

// DefaultAddr is where `kiln dev` serves the page.
const DefaultAddr = "127.0.0.1:8234"

//go:embed templates/*.html
var templateFS embed.FS

// Options configure the site.
type Options struct {
	// Registry is read for every page.
	Registry *registry.Registry
	// UIURL and Namespace locate runs in the Temporal web UI.
	UIURL, Namespace string
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
}

// Site serves the local page.
type Site struct {
	opts  Options
	tmpl  *template.Template
	reg   *prometheus.Registry
	start time.Time
}

// New returns the site.
func New(opts Options) (*Site, error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Site{opts: opts, start: time.Now()}
	funcs := template.FuncMap{
		"pct":     func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
		"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"runURL":  s.runURL,
		"esc":     url.PathEscape,
		"yesno":   func(b bool) string { return map[bool]string{true: "yes", false: "no"}[b] },
		"verdict": func(b bool) string { return map[bool]string{true: "DRIFT", false: "ok"}[b] },
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("site templates: %w", err)
	}
	s.tmpl = t
	s.reg = prometheus.NewRegistry()
	// The process serving the page (kiln dev: the worker and the embedded
	// server too) exports its CPU, memory and Go runtime figures.
	s.reg.MustRegister(&collector{site: s}, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return s, nil
}

// Handler returns the site's routes.
func (s *Site) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/reports", http.StatusFound) })
	mux.HandleFunc("GET /reports", s.index)
	mux.HandleFunc("GET /reports/{pipeline}/{step}/{key}", s.reportPage)
	mux.HandleFunc("GET /reports/{pipeline}/{step}/{key}/summary.json", s.reportSummary)
	mux.HandleFunc("GET /models/{name}/{version}", s.lineage)
	mux.HandleFunc("GET /alerts", s.alerts)
	mux.HandleFunc("GET /monitors", s.monitorsIndex)
	mux.HandleFunc("GET /monitors/{model}", s.monitorPage)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	return securityHeaders(mux)
}

// securityHeaders forbids the pages any request beyond themselves.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func (s *Site) runURL(workflowID string) string {
	if s.opts.UIURL == "" || workflowID == "" {
		return ""
	}
	return strings.TrimRight(s.opts.UIURL, "/") + "/namespaces/" + url.PathEscape(s.opts.Namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// indexGroup is one model's reports on the index.
type indexGroup struct {
	Model   string
	Reports []registry.ReportEntry
}

func (s *Site) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := registry.ReportFilter{Model: r.URL.Query().Get("model"), Pipeline: r.URL.Query().Get("pipeline"), Schedule: r.URL.Query().Get("schedule")}
	entries, err := s.opts.Registry.Reports(ctx, f)
	if err != nil {
		s.fail(w, err)
		return
	}
	groups := map[string]*indexGroup{}
	var names []string
	for i := len(entries) - 1; i >= 0; i-- { // newest date first
		e := entries[i]
		g := groups[e.Model]
		if g == nil {
			g = &indexGroup{Model: e.Model}
			groups[e.Model] = g
			names = append(names, e.Model)
		}
		g.Reports = append(g.Reports, e)
	}
	sort.Strings(names)
	var out []indexGroup
	for _, n := range names {
		out = append(out, *groups[n])
	}
	alerts, err := s.opts.Registry.Alerts(ctx, "", true, 50)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "index.html", map[string]any{"Groups": out, "Alerts": alerts, "Filter": f, "Count": len(entries)})
}

// entry finds the report of the path's pipeline, step and key.
func (s *Site) entry(w http.ResponseWriter, r *http.Request) (registry.ReportEntry, string, bool) {
	e, err := s.opts.Registry.Report(r.Context(), r.PathValue("pipeline"), r.PathValue("step"), r.PathValue("key"))
	if errors.Is(err, registry.ErrNotFound) {
		http.Error(w, "no such report: see /reports", http.StatusNotFound)
		return e, "", false
	}
	if err != nil {
		s.fail(w, err)
		return e, "", false
	}
	dir, err := artifact.Path(e.URI, "")
	if err != nil {
		s.fail(w, err)
		return e, "", false
	}
	return e, dir, true
}

func (s *Site) reportPage(w http.ResponseWriter, r *http.Request) {
	if _, dir, ok := s.entry(w, r); ok {
		s.serveFile(w, r, filepath.Join(dir, "report.html"), "text/html; charset=utf-8")
	}
}

func (s *Site) reportSummary(w http.ResponseWriter, r *http.Request) {
	if _, dir, ok := s.entry(w, r); ok {
		s.serveFile(w, r, filepath.Join(dir, "summary.json"), "application/json")
	}
}

func (s *Site) serveFile(w http.ResponseWriter, r *http.Request, path, ctype string) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, "the report's file is gone: "+filepath.Base(path), http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, filepath.Base(path), st.ModTime(), f)
}

func (s *Site) lineage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	version, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil {
		http.Error(w, "version must be a number", http.StatusBadRequest)
		return
	}
	v, err := s.opts.Registry.Get(ctx, name, version)
	if errors.Is(err, registry.ErrNotFound) {
		http.Error(w, fmt.Sprintf("no model version %s:%d", name, version), http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	reports, err := s.opts.Registry.Reports(ctx, registry.ReportFilter{Model: name})
	if err != nil {
		s.fail(w, err)
		return
	}
	var mine []registry.ReportEntry
	for i := len(reports) - 1; i >= 0; i-- {
		if reports[i].Version == version {
			mine = append(mine, reports[i])
		}
	}
	var metrics []kv
	for k, val := range v.Metrics {
		metrics = append(metrics, kv{k, strconv.FormatFloat(val, 'g', 6, 64)})
	}
	sort.Slice(metrics, func(i, j int) bool { return metrics[i].K < metrics[j].K })
	var params []kv
	for k, val := range v.Params {
		params = append(params, kv{k, fmt.Sprint(val)})
	}
	sort.Slice(params, func(i, j int) bool { return params[i].K < params[j].K })
	s.render(w, "lineage.html", map[string]any{"V": v, "Metrics": metrics, "Params": params, "Reports": mine})
}

type kv struct{ K, V string }

func (s *Site) alerts(w http.ResponseWriter, r *http.Request) {
	all, err := s.opts.Registry.Alerts(r.Context(), r.URL.Query().Get("schedule"), false, 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "alerts.html", map[string]any{"Alerts": all})
}

func (s *Site) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.opts.Logger.Error("rendering page", "page", name, "error", err)
	}
}

func (s *Site) fail(w http.ResponseWriter, err error) {
	s.opts.Logger.Error("local page", "error", err)
	http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
}

// collector exports the registry's judgements at scrape time.
type collector struct{ site *Site }

var (
	descMissing = prometheus.NewDesc("kiln_schedule_missing_reports",
		"Open missing-report alerts of a schedule: firings whose report did not exist by the deadline.", []string{"schedule"}, nil)
	descAlerts = prometheus.NewDesc("kiln_schedule_alerts_total",
		"Alerts ever raised for a schedule, by kind.", []string{"schedule", "kind"}, nil)
	descDrift = prometheus.NewDesc("kiln_report_dataset_drift",
		"1 when the latest report of a pipeline step found dataset drift, else 0.", []string{"pipeline", "step", "model"}, nil)
	descShare = prometheus.NewDesc("kiln_report_drift_share",
		"Share of drifted features in the latest report of a pipeline step.", []string{"pipeline", "step", "model"}, nil)
	descPred = prometheus.NewDesc("kiln_report_prediction_drift",
		"1 when the latest report of a pipeline step found prediction drift, else 0.", []string{"pipeline", "step", "model"}, nil)
	descRows = prometheus.NewDesc("kiln_report_rows",
		"Rows scored in the latest report of a pipeline step.", []string{"pipeline", "step", "model"}, nil)
	descMonShare = prometheus.NewDesc("kiln_monitor_drift_share",
		"Share of drifted features in a monitored model's latest window.", []string{"model"}, nil)
	descMonMetric = prometheus.NewDesc("kiln_monitor_metric",
		"A live metric over the labelled rows of a monitored model's latest window (only above the minimum sample).", []string{"model", "metric"}, nil)
	descMonCoverage = prometheus.NewDesc("kiln_monitor_label_coverage",
		"Share of the latest window's predictions whose labels joined.", []string{"model"}, nil)
	descMonRows = prometheus.NewDesc("kiln_monitor_rows",
		"Served rows in a monitored model's latest window.", []string{"model"}, nil)
	descMonDecisions = prometheus.NewDesc("kiln_monitor_decisions_total",
		"Decisions a monitor took in the last 30 days, by action.", []string{"model", "action"}, nil)
	descTime = prometheus.NewDesc("kiln_report_logical_date_seconds",
		"Logical date (Unix seconds, UTC midnight or the logical time) of the latest report of a pipeline step.", []string{"pipeline", "step", "model"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMissing, descAlerts, descDrift, descShare, descPred, descRows, descTime,
		descMonShare, descMonMetric, descMonCoverage, descMonRows, descMonDecisions} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := c.site.opts.Registry
	alerts, err := reg.Alerts(ctx, "", false, 0)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descAlerts, err)
		return
	}
	open := map[string]float64{}
	total := map[[2]string]float64{}
	for _, a := range alerts {
		total[[2]string{a.Schedule, a.Kind}]++
		if a.Resolved.IsZero() && a.Kind == registry.AlertMissingReport {
			open[a.Schedule]++
		} else if _, ok := open[a.Schedule]; !ok {
			open[a.Schedule] = 0
		}
	}
	for sch, n := range open {
		ch <- prometheus.MustNewConstMetric(descMissing, prometheus.GaugeValue, n, sch)
	}
	for k, n := range total {
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.CounterValue, n, k[0], k[1])
	}
	entries, err := reg.Reports(ctx, registry.ReportFilter{})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descDrift, err)
		return
	}
	latest := map[[2]string]registry.ReportEntry{}
	for _, e := range entries { // oldest first: the last one wins
		latest[[2]string{e.Pipeline, e.Step}] = e
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, e := range latest {
		labels := []string{e.Pipeline, e.Step, fmt.Sprintf("%s:%d", e.Model, e.Version)}
		ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, b(e.DatasetDrift), labels...)
		share := 0.0
		if e.Columns > 0 {
			share = float64(e.DriftedColumns) / float64(e.Columns)
		}
		ch <- prometheus.MustNewConstMetric(descShare, prometheus.GaugeValue, share, labels...)
		ch <- prometheus.MustNewConstMetric(descPred, prometheus.GaugeValue, b(e.PredictionDrift), labels...)
		ch <- prometheus.MustNewConstMetric(descRows, prometheus.GaugeValue, float64(e.Rows), labels...)
		if t, ok := keyTime(e.RunKey); ok {
			ch <- prometheus.MustNewConstMetric(descTime, prometheus.GaugeValue, float64(t.Unix()), labels...)
		}
	}
	c.collectMonitors(ctx, ch)
}

// collectMonitors exports each monitored model's latest window and its
// decisions of the last 30 days.
func (c *collector) collectMonitors(ctx context.Context, ch chan<- prometheus.Metric) {
	reg := c.site.opts.Registry
	ds, err := reg.MonitorDecisions(ctx, "", time.Now().Add(-30*24*time.Hour))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descMonDecisions, err)
		return
	}
	counts := map[[2]string]float64{}
	models := map[string]bool{}
	for _, d := range ds {
		counts[[2]string{d.Model, d.Action}]++
		models[d.Model] = true
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descMonDecisions, prometheus.CounterValue, n, k[0], k[1])
	}
	for m := range models {
		ws, err := reg.MonitorWindows(ctx, m, time.Time{}, 1)
		if err != nil || len(ws) == 0 {
			continue
		}
		var w monitor.Window
		if json.Unmarshal(ws[0].Data, &w) != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descMonShare, prometheus.GaugeValue, w.DriftShare, m)
		ch <- prometheus.MustNewConstMetric(descMonCoverage, prometheus.GaugeValue, w.Coverage, m)
		ch <- prometheus.MustNewConstMetric(descMonRows, prometheus.GaugeValue, float64(w.Rows), m)
		for k, v := range w.Metrics {
			ch <- prometheus.MustNewConstMetric(descMonMetric, prometheus.GaugeValue, v, m, k)
		}
	}
}

// keyTime parses a run key: a date or a logical time.
func keyTime(key string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02", "2006-01-02T1504", "2006-01-02T150405"} {
		if t, err := time.Parse(layout, key); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
