package site

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
)

// series is one line of a chart: values over windows.
type series struct {
	Name   string
	Color  string
	Values []float64 // NaN: no value in that window
}

// chart draws series over the window ends as an inline SVG, with an
// optional threshold line and the windows that decided a retrain marked.
func chart(title string, ends []time.Time, ss []series, threshold *float64, marks []int) template.HTML {
	const w, h, left, right, top, bottom = 720.0, 180.0, 48.0, 12.0, 20.0, 26.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if threshold != nil {
		lo, hi = math.Min(lo, *threshold), math.Max(hi, *threshold)
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi == lo {
		hi, lo = hi+0.5, lo-0.5
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	n := len(ends)
	x := func(i int) float64 {
		if n <= 1 {
			return left + (w-left-right)/2
		}
		return left + float64(i)*(w-left-right)/float64(n-1)
	}
	y := func(v float64) float64 { return top + (hi-v)/(hi-lo)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`, template.HTMLEscapeString(title), w, h, w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="14" font-size="12" font-weight="600">%s</text>`, left, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ccd"/>`, left, h-bottom, w-right, h-bottom)
	for _, v := range []float64{lo + pad, hi - pad} {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" text-anchor="end" fill="#667">%.3g</text>`, left-4, y(v)+3, v)
	}
	for _, i := range marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#b3261e" stroke-dasharray="3 3"/><text x="%.1f" y="%.0f" font-size="10" fill="#b3261e">retrain</text>`,
			x(i), top, x(i), h-bottom, x(i)+3, top+10)
	}
	if threshold != nil {
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#b3261e" stroke-width="1"/><text x="%.0f" y="%.1f" font-size="10" fill="#b3261e" text-anchor="end">threshold %.3g</text>`,
			left, y(*threshold), w-right, y(*threshold), w-right, y(*threshold)-3, *threshold)
	}
	for k, s := range ss {
		var pts []string
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s %s: %.4g</title></circle>`, x(i), y(v), s.Color, ends[i].UTC().Format("15:04:05"), template.HTMLEscapeString(s.Name), v)
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.Color, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="%s">● %s</text>`, left+float64(k)*140, h-6, s.Color, template.HTMLEscapeString(s.Name))
	}
	if n > 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" text-anchor="end" fill="#667">%s → %s UTC</text>`, w-right, h-6,
			ends[0].UTC().Format("01-02 15:04"), ends[n-1].UTC().Format("01-02 15:04"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var palette = []string{"#1f5fbf", "#e07b00", "#2e8b57", "#8e44ad", "#c0392b"}

func (s *Site) monitorPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	model := r.PathValue("model")
	rows, err := s.opts.Registry.MonitorWindows(ctx, model, time.Time{}, 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(rows) == 0 {
		http.Error(w, "no monitor windows recorded for "+model, http.StatusNotFound)
		return
	}
	var windows []monitor.Window
	var ends []time.Time
	for _, row := range rows {
		var win monitor.Window
		if err := json.Unmarshal(row.Data, &win); err != nil {
			s.fail(w, err)
			return
		}
		windows = append(windows, win)
		ends = append(ends, win.End)
	}
	decisions, err := s.opts.Registry.MonitorDecisions(ctx, model, windows[0].End)
	if err != nil {
		s.fail(w, err)
		return
	}
	index := map[time.Time]int{}
	for i, e := range ends {
		index[e.UTC()] = i
	}
	var marks []int
	var threshold *float64
	metricName := ""
	for _, d := range decisions {
		if d.Action == monitor.ActionRetrain {
			if i, ok := index[d.Window.UTC()]; ok {
				marks = append(marks, i)
			}
		}
		if d.Trigger == monitor.TriggerPerformance && d.Metric != "" {
			t := d.Threshold
			threshold, metricName = &t, d.Metric
		}
	}
	names := map[string]bool{}
	for _, win := range windows {
		for k := range win.Metrics {
			names[k] = true
		}
	}
	var metricSeries []series
	var keys []string
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "auc" && k != "accuracy" && k != "f1" && k != "f1_macro" && k != "logloss" && k != "rmse" && k != "mae" && k != metricName {
			continue
		}
		sr := series{Name: k, Color: palette[len(metricSeries)%len(palette)]}
		for _, win := range windows {
			v, ok := win.Metrics[k]
			if !ok {
				v = math.NaN()
			}
			sr.Values = append(sr.Values, v)
		}
		metricSeries = append(metricSeries, sr)
	}
	drift := series{Name: "share of drifted features", Color: palette[0]}
	coverage := series{Name: "label coverage", Color: palette[2]}
	p99 := series{Name: "p99 latency (ms)", Color: palette[1]}
	for _, win := range windows {
		drift.Values = append(drift.Values, win.DriftShare)
		coverage.Values = append(coverage.Values, win.Coverage)
		v := math.NaN()
		if win.Health != nil {
			v = win.Health.P99Ms
		}
		p99.Values = append(p99.Values, v)
	}
	half := 0.5
	charts := []template.HTML{chart("Input drift", ends, []series{drift, coverage}, &half, marks)}
	if len(metricSeries) > 0 {
		charts = append(charts, chart("Live metrics over labelled rows", ends, metricSeries, threshold, marks))
	}
	charts = append(charts, chart("Serving latency", ends, []series{p99}, nil, marks))
	for i, j := 0, len(decisions)-1; i < j; i, j = i+1, j-1 {
		decisions[i], decisions[j] = decisions[j], decisions[i]
	}
	last := windows[len(windows)-1]
	s.render(w, "monitor.html", map[string]any{"Model": model, "Charts": charts, "Decisions": decisions, "Last": last, "Windows": len(windows)})
}

func (s *Site) monitorsIndex(w http.ResponseWriter, r *http.Request) {
	ds, err := s.opts.Registry.MonitorDecisions(r.Context(), "", time.Now().Add(-30*24*time.Hour))
	if err != nil {
		s.fail(w, err)
		return
	}
	latest := map[string]registry.MonitorDecision{}
	for _, d := range ds {
		latest[d.Model] = d
	}
	var models []registry.MonitorDecision
	for _, d := range latest {
		models = append(models, d)
	}
	sort.Slice(models, func(i, j int) bool { return models[i].Model < models[j].Model })
	s.render(w, "monitors.html", map[string]any{"Latest": models})
}
