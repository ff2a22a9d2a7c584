package report

// The HTML page of a report: one self-contained file (inline CSS and SVG, no
// script, no request of any kind) that shows the summary's figures and
// nothing else. Every figure on the page carries its place in the JSON
// summary (data-k, a JSON Pointer, RFC 6901) and its full-precision value
// (data-v), so tests can check the page against the JSON. Lists are capped
// and long strings clipped so the page stays under MaxHTMLBytes whatever the
// summary holds; an element with data-list says which part of a capped list
// is shown. See docs/reports.md.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxHTMLBytes bounds the page's size: RenderHTML never writes more.
const MaxHTMLBytes = 5_000_000

// The page's caps. Each is chosen so that the page's worst case (every list
// at its cap, every string at its clip length and made of characters that
// escape to the longest entity) stays under MaxHTMLBytes.
const (
	// MaxFeatureRows is the most rows of the data-quality and drift tables.
	MaxFeatureRows = 500
	// pgMaxBarRows is the most rows of the drift bar chart (the most
	// drifted columns first).
	pgMaxBarRows = 60
	// pgMaxSmall is the most per-feature histograms (the most drifted
	// columns first); pgMaxSmallBins the most bins each draws.
	pgMaxSmall     = 48
	pgMaxSmallBins = 40
	// pgMaxBins is the most bins of the prediction histogram.
	pgMaxBins = 200
	// pgMaxTrend is the most trend points drawn (the latest);
	// pgTrendTable the most rows of the trend table (the latest);
	// pgMaxTrendMetrics the most performance metrics followed.
	pgMaxTrend        = 365
	pgTrendTable      = 14
	pgMaxTrendMetrics = 4
	// pgMaxMetrics is the most performance metrics in the table.
	pgMaxMetrics = 50
	// pgMaxModels, pgMaxWarnings, pgMaxUnseen cap those lists.
	pgMaxModels   = 20
	pgMaxWarnings = 50
	pgMaxUnseen   = 3
	// String clip lengths, in characters.
	pgClipName    = 48  // column, model and metric names, dates
	pgClipEnum    = 24  // types, kinds, methods, tasks, triggers
	pgClipText    = 300 // title, sources, input, IDs
	pgClipWarning = 500
	pgClipExample = 20 // unseen examples
	pgClipLabel   = 24 // labels inside charts
	pgClipLink    = 2048
	// pgMaxKeyBytes is the longest metric name shown: a name is part of
	// its figures' keys (data-k), which cannot be clipped, so longer
	// names are left out (and the page says so).
	pgMaxKeyBytes = 100
)

// Chart colours. They are used nowhere else on the page, so a screenshot
// test can find each chart by its colours.
const (
	colRef     = "#8fb8de" // reference distribution (wide pale bars)
	colCur     = "#d95f02" // current distribution (narrow dark bars)
	colDrift   = "#c0392b" // drifted column
	colOK      = "#2e8b57" // column without drift
	colTrend   = "#6a3d9a" // trend lines and points
	colInk     = "#222222"
	colGrid    = "#dddddd"
	colSubtle  = "#666666"
	colCurrent = "#f0c419" // halo of this report's point in the trend
)

// RenderHTML writes the report page for s: one self-contained HTML file
// showing the summary's figures, deterministic for a given summary and
// never larger than MaxHTMLBytes.
func RenderHTML(w io.Writer, s *Summary) error {
	if s == nil {
		return errors.New("report: RenderHTML: nil summary")
	}
	p := buildPage(s)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return fmt.Errorf("report: render: %w", err)
	}
	if buf.Len() > MaxHTMLBytes {
		// The caps make this impossible; refuse rather than write a page
		// that breaks the promise.
		return fmt.Errorf("report: render: page of %d bytes exceeds %d", buf.Len(), MaxHTMLBytes)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// ---- figures ---------------------------------------------------------------

// fig is one figure of the summary as the page shows it.
type fig struct {
	K  string // JSON Pointer into the summary's JSON
	V  string // the value, full precision (strings: as shown)
	T  string // the text shown
	Tr bool   // the string was clipped: V and T are its first characters
	C  string // CSS class (verdicts, issues)
}

// ptr builds a JSON Pointer from field names and indexes.
func ptr(parts ...any) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		switch v := p.(type) {
		case string:
			b.WriteString(strings.ReplaceAll(strings.ReplaceAll(v, "~", "~0"), "/", "~1"))
		case int:
			b.WriteString(strconv.Itoa(v))
		default:
			panic(fmt.Sprintf("ptr: %T", p))
		}
	}
	return b.String()
}

func fInt(k string, v int64) fig { return fig{K: k, V: strconv.FormatInt(v, 10), T: fmtCount(v)} }

func fNum(k string, v float64) fig { return fig{K: k, V: fullFloat(v), T: fmtNum(v)} }

func fPct(k string, v float64) fig { return fig{K: k, V: fullFloat(v), T: fmtPct(v)} }

func fStr(k, s string, max int) fig {
	c, clipped := clip(s, max)
	return fig{K: k, V: c, T: c, Tr: clipped}
}

func fTime(k string, t time.Time) fig {
	return fig{K: k, V: t.Format(time.RFC3339Nano), T: t.Format("2006-01-02 15:04:05Z07:00")}
}

// fVerdict shows a drift verdict in words (and colour).
func fVerdict(k string, drifted bool) fig {
	if drifted {
		return fig{K: k, V: "true", T: "DRIFT", C: "bad"}
	}
	return fig{K: k, V: "false", T: "no drift", C: "ok"}
}

func fullFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// fmtNum shows a statistic, p-value, threshold, mean or metric: four
// significant digits, fixed notation between 0.001 and 10^7, else
// scientific.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "−∞"
	case v == 0:
		return "0"
	}
	a := math.Abs(v)
	if a < 1e-3 || a >= 1e7 {
		return strconv.FormatFloat(v, 'e', 2, 64)
	}
	d := 3 - int(math.Floor(math.Log10(a)))
	if d < 0 {
		d = 0
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fmtPct shows a rate or share as a percentage with two decimals.
func fmtPct(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 0):
		return fmtNum(v)
	}
	x := v * 100
	if x != 0 && math.Abs(x) < 0.005 {
		if x > 0 {
			return "<0.01%"
		}
		return ">−0.01%"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "%"
}

// fmtCount shows a count with thousands separators.
func fmtCount(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// clip returns s cut to max characters (runes) and whether it was cut.
// Invalid UTF-8 is replaced, so the clipped string is what the page shows.
func clip(s string, max int) (string, bool) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= max {
		return s, false
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i], true
		}
		n++
	}
	return s, false
}

// claim says which part of a capped list the page shows: array elements
// [First, End) or the map keys Keys (a JSON array). Only lists that are cut
// carry one; every other list is shown whole.
type claim struct {
	List  string // JSON Pointer of the list; "*" stands for every index
	First int
	End   int
	Keys  string
	Total int
	Text  string // what the reader is told
}

// ---- the page --------------------------------------------------------------

type page struct {
	Title    fig
	Subtitle []fig
	Links    []link
	Glance   []glance
	Warnings []fig
	Claims   []claim // lists cut short that have no better place to say so
	Facts    []fact
	Pred     predView
	Drift    driftView
	Quality  qualityView
	Perf     *perfView
	Trend    trendView
	Schema   fig
	Gen      fig
}

type link struct {
	Label string
	URL   string // empty: shown as text only
	Note  string
	K     string
}

type glance struct {
	Label string
	Items []factItem
	Class string
}

type fact struct {
	Label string
	Items []factItem
}

// factItem is a figure with words around it.
type factItem struct {
	Pre  string
	F    *fig
	Post string
}

func item(pre string, f fig, post string) factItem { return factItem{Pre: pre, F: &f, Post: post} }
func words(s string) factItem                      { return factItem{Pre: s} }

func buildPage(s *Summary) *page {
	p := &page{}
	p.Title = fStr("/title", s.Title, pgClipText)
	if s.Title == "" {
		p.Title = fig{T: "Kiln report"}
	}
	p.Subtitle = []fig{fStr("/pipeline", s.Pipeline, pgClipName), fStr("/logical_date", s.LogicalDate, pgClipName)}
	p.Schema = fStr("/schema", s.Schema, pgClipName)
	p.Gen = fTime("/generated", s.Generated)
	for _, l := range []struct{ label, url, k string }{
		{"Run in the Temporal UI", s.Links.Run, "/links/run"},
		{"Model lineage", s.Links.Lineage, "/links/lineage"},
		{"All reports", s.Links.Index, "/links/index"},
	} {
		if l.url == "" {
			continue
		}
		if len(l.url) > pgClipLink {
			p.Links = append(p.Links, link{Label: l.label, Note: "(link too long to show)"})
			continue
		}
		if lu := strings.ToLower(l.url); !strings.HasPrefix(lu, "http://") && !strings.HasPrefix(lu, "https://") {
			p.Links = append(p.Links, link{Label: l.label, Note: "(not an http or https link)"})
			continue
		}
		p.Links = append(p.Links, link{Label: l.label, URL: l.url, K: l.k})
	}
	for i, w := range s.Warnings {
		if i == pgMaxWarnings {
			p.Claims = append(p.Claims, claim{List: "/warnings", End: i, Total: len(s.Warnings),
				Text: fmt.Sprintf("The first %d of %d warnings are shown.", i, len(s.Warnings))})
			break
		}
		p.Warnings = append(p.Warnings, fStr(ptr("warnings", i), w, pgClipWarning))
	}
	p.Facts = buildFacts(s, p)
	p.Pred = buildPred(s)
	p.Drift = buildDrift(s)
	p.Quality = buildQuality(s)
	p.Perf = buildPerf(s)
	p.Trend = buildTrend(s)
	p.Glance = buildGlance(s, p)
	return p
}

func buildFacts(s *Summary, p *page) []fact {
	var fs []fact
	add := func(label string, items ...factItem) { fs = append(fs, fact{Label: label, Items: items}) }
	add("Pipeline", item("", fStr("/pipeline", s.Pipeline, pgClipText), ""))
	if s.Schedule != "" {
		add("Schedule", item("", fStr("/schedule", s.Schedule, pgClipText), ""))
	} else {
		add("Schedule", words("— (not started by a schedule)"))
	}
	add("Logical date", item("", fStr("/logical_date", s.LogicalDate, pgClipName), ""))
	if s.Interval != nil {
		add("Data interval", item("", fTime("/interval/start", s.Interval.Start), ""), item(" to ", fTime("/interval/end", s.Interval.End), " (end excluded)"))
	} else {
		add("Data interval", words("—"))
	}
	add("Trigger", item("", fStr("/trigger", s.Trigger, pgClipEnum), ""))
	run := []factItem{item("", fStr("/workflow_id", s.WorkflowID, pgClipText), "")}
	if s.RunID != "" {
		run = append(run, item(" · run ", fStr("/run_id", s.RunID, pgClipText), ""))
	}
	add("Workflow", run...)
	add("Scored output", item("", fStr("/input", s.Input, pgClipText), ""))
	add("Rows scored", item("", fInt("/rows", s.Rows), ""))
	var ms []factItem
	for i, m := range s.Models {
		if i == pgMaxModels {
			p.Claims = append(p.Claims, claim{List: "/models", End: i, Total: len(s.Models),
				Text: fmt.Sprintf("The first %d of %d model versions are listed.", i, len(s.Models))})
			ms = append(ms, words(fmt.Sprintf("; and %d more versions", len(s.Models)-i)))
			break
		}
		sep := ""
		if i > 0 {
			sep = "; "
		}
		ms = append(ms, item(sep, fStr(ptr("models", i, "name"), m.Name, pgClipName), ""),
			item(":", fInt(ptr("models", i, "version"), m.Version), ""),
			item(" (", fInt(ptr("models", i, "rows"), m.Rows), " rows)"))
	}
	if len(ms) == 0 {
		ms = []factItem{words("—")}
	}
	add("Model versions", ms...)
	add("Reference model", item("", fStr("/reference/model", s.Reference.Model, pgClipName), ""))
	add("Reference features", item("", fInt("/reference/feature_rows", s.Reference.FeatureRows), " rows · "),
		item("", fStr("/reference/feature_source", s.Reference.FeatureSource, pgClipText), ""))
	add("Reference predictions", item("", fInt("/reference/prediction_rows", s.Reference.PredictionRows), " rows · "),
		item("", fStr("/reference/prediction_source", s.Reference.PredictionSource, pgClipText), ""))
	return fs
}

// ---- prediction ------------------------------------------------------------

type predView struct {
	Chart *svgChart
	Rows  []fact
	Note  string
}

func buildPred(s *Summary) predView {
	pr := s.Prediction
	v := predView{}
	v.Chart, v.Note = histChart("chart-prediction", "prediction", "/prediction/histogram", pr.Histogram, 760, 250, pgMaxBins, true)
	test := []factItem{item("", fStr("/prediction/method", pr.Method, pgClipEnum), ": statistic "),
		item("", fNum("/prediction/statistic", pr.Statistic), "")}
	if pr.PValue != nil {
		test = append(test, item(", p-value ", fNum("/prediction/p_value", *pr.PValue), ""))
		test = append(test, item(", drift when the p-value is below ", fNum("/prediction/threshold", pr.Threshold), ""))
	} else {
		test = append(test, item(", drift at or above ", fNum("/prediction/threshold", pr.Threshold), ""))
	}
	v.Rows = []fact{
		{Label: "Verdict", Items: []factItem{item("", fVerdict("/prediction/drifted", pr.Drifted), "")}},
		{Label: "Prediction", Items: []factItem{item("column ", fStr("/prediction/column", pr.Column, pgClipName), ""), item(" · output ", fStr("/prediction/output", pr.Output, pgClipEnum), "")}},
		{Label: "Mean", Items: []factItem{item("", fNum("/prediction/mean", pr.Mean), " now · "), item("", fNum("/prediction/reference_mean", pr.ReferenceMean), " in the reference")}},
		{Label: "Test", Items: test},
		{Label: "PSI", Items: []factItem{item("", fNum("/prediction/psi", pr.PSI), "")}},
		{Label: "Values compared", Items: []factItem{item("", fInt("/prediction/rows", pr.Rows), " now · "), item("", fInt("/prediction/reference_rows", pr.ReferenceRows), " in the reference")}},
	}
	return v
}

// ---- drift -----------------------------------------------------------------

type driftView struct {
	Verdict   []factItem
	Bars      *svgChart
	BarNote   string
	Rows      []driftRow
	Claim     *claim
	Small     []smallHist
	SmallNote string
}

type driftRow struct {
	Col, Kind, Method, Stat, P, Thr, Verdict, PSI, Rows, RefRows fig
	HasP                                                         bool
}

type smallHist struct {
	Name    fig
	Verdict fig
	Chart   *svgChart
	Note    string
}

// severity orders columns for the charts: drifted first, then by how far
// the column is towards (or past) its threshold, then in input order.
func severity(c ColumnDrift) float64 {
	r := thresholdRatio(c.Test)
	if math.IsNaN(r) {
		return -1
	}
	return r
}

// thresholdRatio is the bar of the drift chart in units of the column's
// threshold: statistic / threshold for the distance tests, and
// -log10(p) / -log10(threshold) for the tests with a p-value. 1 is the
// threshold line; NaN when it cannot be drawn.
func thresholdRatio(t Test) float64 {
	if t.PValue != nil {
		p := *t.PValue
		if !(t.Threshold > 0 && t.Threshold < 1) || math.IsNaN(p) || p < 0 {
			return math.NaN()
		}
		if p < 1e-300 {
			p = 1e-300
		}
		if p > 1 {
			p = 1
		}
		return math.Log10(p) / math.Log10(t.Threshold)
	}
	if !(t.Threshold > 0) || math.IsNaN(t.Statistic) {
		return math.NaN()
	}
	return t.Statistic / t.Threshold
}

func buildDrift(s *Summary) driftView {
	d := s.Drift
	v := driftView{}
	v.Verdict = []factItem{
		item("Dataset: ", fVerdict("/drift/drifted", d.Drifted), " · "),
		item("", fInt("/drift/drifted_columns", int64(d.DriftedColumns)), " drifted columns, "),
		item("share ", fPct("/drift/share", d.Share), ""),
		item("; the dataset drifts at a share of ", fPct("/drift/share_threshold", d.ShareThreshold), " or more"),
	}
	for i, c := range d.Columns {
		if i == MaxFeatureRows {
			v.Claim = &claim{List: "/drift/columns", End: i, Total: len(d.Columns),
				Text: fmt.Sprintf("The table lists the first %d of %d columns.", i, len(d.Columns))}
			break
		}
		k := func(f string) string { return ptr("drift", "columns", i, f) }
		r := driftRow{
			Col:     fStr(k("column"), c.Column, pgClipName),
			Kind:    fStr(k("kind"), c.Kind, pgClipEnum),
			Method:  fStr(k("method"), c.Method, pgClipEnum),
			Stat:    fNum(k("statistic"), c.Statistic),
			Thr:     fNum(k("threshold"), c.Threshold),
			Verdict: fVerdict(k("drifted"), c.Drifted),
			PSI:     fNum(k("psi"), c.PSI),
			Rows:    fInt(k("rows"), c.Rows),
			RefRows: fInt(k("reference_rows"), c.ReferenceRows),
		}
		if c.PValue != nil {
			r.P, r.HasP = fNum(k("p_value"), *c.PValue), true
		}
		v.Rows = append(v.Rows, r)
	}
	order := make([]int, len(d.Columns))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ca, cb := d.Columns[order[a]], d.Columns[order[b]]
		if ca.Drifted != cb.Drifted {
			return ca.Drifted
		}
		return severity(ca) > severity(cb)
	})
	v.Bars, v.BarNote = driftBars(s, order)
	for n, i := range order {
		if n == pgMaxSmall {
			v.SmallNote = fmt.Sprintf("Histograms of the %d most drifted of %d columns.", pgMaxSmall, len(d.Columns))
			break
		}
		c := d.Columns[i]
		h := smallHist{
			Name:    fStr(ptr("drift", "columns", i, "column"), c.Column, pgClipName),
			Verdict: fVerdict(ptr("drift", "columns", i, "drifted"), c.Drifted),
		}
		h.Chart, h.Note = histChart(fmt.Sprintf("chart-feature-%d", i), "feature", ptr("drift", "columns", i, "histogram"), c.Histogram, 220, 90, pgMaxSmallBins, false)
		v.Small = append(v.Small, h)
	}
	return v
}

// driftBars draws one row per column (the most drifted first): a bar in
// units of the column's threshold, the threshold line in the middle.
func driftBars(s *Summary, order []int) (*svgChart, string) {
	cols := s.Drift.Columns
	if len(cols) == 0 {
		return nil, "No features were compared."
	}
	n := len(order)
	note := ""
	if n > pgMaxBarRows {
		note = fmt.Sprintf("The chart shows the %d most drifted of %d columns; the table lists them in input order.", pgMaxBarRows, n)
		n = pgMaxBarRows
	}
	const (
		w      = 760
		top    = 28
		rowH   = 20
		labelW = 190
		barX   = 200
		barW   = 400
		valX   = 612
		verX   = 700
	)
	h := top + n*rowH + 8
	c := &svgChart{ID: "chart-drift", Kind: "drift", W: w, H: h,
		Label: "Drift of each feature against its threshold"}
	mid := float64(barX + barW/2)
	c.Texts = append(c.Texts,
		svgText{X: f1(barX), Y: "14", T: "0", Class: "ax"},
		svgText{X: f1(mid), Y: "14", T: "threshold", Anchor: "middle", Class: "ax"},
		svgText{X: f1(barX + barW), Y: "14", T: "2×", Anchor: "end", Class: "ax"},
		svgText{X: f1(valX), Y: "14", T: "value", Class: "ax"},
		svgText{X: f1(verX), Y: "14", T: "verdict", Class: "ax"},
	)
	c.Grid = append(c.Grid, svgLine{X1: f1(barX), Y1: f1(top - 6), X2: f1(barX), Y2: f1(float64(h - 6)), Stroke: colGrid})
	for r := 0; r < n; r++ {
		i := order[r]
		col := cols[i]
		y := float64(top + r*rowH)
		k := func(f string) string { return ptr("drift", "columns", i, f) }
		name := fStr(k("column"), col.Column, pgClipLabel)
		full, _ := clip(col.Column, pgClipName)
		c.Texts = append(c.Texts, svgText{X: f1(labelW), Y: f1(y + 14), Anchor: "end", F: &name, Title: full})
		ratio := thresholdRatio(col.Test)
		fill := colOK
		if col.Drifted {
			fill = colDrift
		}
		if !math.IsNaN(ratio) {
			bw := math.Min(math.Max(ratio, 0), 2) / 2 * barW
			method, _ := clip(col.Method, pgClipEnum)
			title := fmt.Sprintf("%s: %s statistic %s", full, method, fmtNum(col.Statistic))
			if col.PValue != nil {
				title += ", p-value " + fmtNum(*col.PValue)
			}
			c.Rects = append(c.Rects, svgRect{X: f1(barX), Y: f1(y + 4), W: f1(math.Max(bw, 1)), H: "12", Fill: fill, Title: title})
			if ratio > 2 {
				c.Texts = append(c.Texts, svgText{X: f1(barX + barW - 3), Y: f1(y + 14), T: "»", Anchor: "end", Class: "over"})
			}
		} else {
			c.Texts = append(c.Texts, svgText{X: f1(barX + 4), Y: f1(y + 14), T: "not drawn", Class: "ax"})
		}
		c.Lines = append(c.Lines, svgLine{X1: f1(mid), Y1: f1(y + 1), X2: f1(mid), Y2: f1(y + 19), Stroke: colInk, Dash: "3 2", Width: "1.5"})
		var val fig
		if col.PValue != nil {
			val = fNum(k("p_value"), *col.PValue)
			val.T = "p " + val.T
		} else {
			val = fNum(k("statistic"), col.Statistic)
		}
		c.Texts = append(c.Texts, svgText{X: f1(valX), Y: f1(y + 14), F: &val})
		ver := fVerdict(k("drifted"), col.Drifted)
		c.Texts = append(c.Texts, svgText{X: f1(verX), Y: f1(y + 14), F: &ver, Class: ver.C})
	}
	return c, note
}

// ---- data quality ----------------------------------------------------------

type qualityView struct {
	Rows  []qualityRow
	Claim *claim
}

type qualityRow struct {
	Col, Type         fig
	Missing           bool
	MissingF          fig
	Rows, Nulls       fig
	NullRate, RefNull fig
	NullClass         string
	OOR, OORRate      *fig
	Range             []factItem
	OORClass          string
	Unseen, UnseenR   *fig
	UnseenClass       string
	Examples          []fig
	ExClaim           *claim
	Issues            []string
	IssueClass        string
}

func buildQuality(s *Summary) qualityView {
	kinds := map[string]string{}
	for _, c := range s.Drift.Columns {
		kinds[c.Column] = c.Kind
	}
	v := qualityView{}
	for i, q := range s.Quality {
		if i == MaxFeatureRows {
			v.Claim = &claim{List: "/quality", End: i, Total: len(s.Quality),
				Text: fmt.Sprintf("The table lists the first %d of %d columns.", i, len(s.Quality))}
			break
		}
		k := func(f ...any) string { return ptr(append([]any{"quality", i}, f...)...) }
		r := qualityRow{
			Col:     fStr(k("column"), q.Column, pgClipName),
			Type:    fStr(k("type"), q.Type, pgClipEnum),
			Missing: q.Missing,
		}
		if q.Missing {
			r.MissingF = fig{K: k("missing"), V: "true", T: "missing from the scored output", C: "bad"}
			r.Issues, r.IssueClass = []string{"not measured"}, "bad"
			v.Rows = append(v.Rows, r)
			continue
		}
		r.Rows, r.Nulls = fInt(k("rows"), q.Rows), fInt(k("nulls"), q.Nulls)
		r.NullRate, r.RefNull = fPct(k("null_rate"), q.NullRate), fPct(k("reference_null_rate"), q.ReferenceNullRate)
		if moreNulls(q) {
			r.NullClass = "bad"
			r.Issues = append(r.Issues, "more nulls than in training")
		}
		numeric := q.Min != nil || q.Max != nil || kinds[q.Column] == "numeric"
		categorical := kinds[q.Column] == "categorical" || (!numeric && kinds[q.Column] == "")
		if numeric || q.OutOfRange != 0 {
			a, b := fInt(k("out_of_range"), q.OutOfRange), fPct(k("out_of_range_rate"), q.OutOfRangeRate)
			r.OOR, r.OORRate = &a, &b
			if q.OutOfRange > 0 {
				r.OORClass = issueLevel(q.OutOfRangeRate)
				r.Issues = append(r.Issues, "values outside the training range")
			}
			if q.Min != nil {
				r.Range = append(r.Range, item("", fNum(k("min"), *q.Min), ""))
			} else {
				r.Range = append(r.Range, words("?"))
			}
			if q.Max != nil {
				r.Range = append(r.Range, item(" … ", fNum(k("max"), *q.Max), ""))
			} else {
				r.Range = append(r.Range, words(" … ?"))
			}
		}
		if categorical || q.Unseen != 0 || len(q.UnseenExamples) > 0 {
			a, b := fInt(k("unseen"), q.Unseen), fPct(k("unseen_rate"), q.UnseenRate)
			r.Unseen, r.UnseenR = &a, &b
			if q.Unseen > 0 {
				r.UnseenClass = issueLevel(q.UnseenRate)
				r.Issues = append(r.Issues, "categories unseen in training")
			}
			for j, e := range q.UnseenExamples {
				if j == pgMaxUnseen {
					r.ExClaim = &claim{List: k("unseen_examples"), End: j, Total: len(q.UnseenExamples),
						Text: fmt.Sprintf("(%d of %d)", j, len(q.UnseenExamples))}
					break
				}
				r.Examples = append(r.Examples, fStr(k("unseen_examples", j), e, pgClipExample))
			}
		}
		switch {
		case r.NullClass == "bad" || r.OORClass == "bad" || r.UnseenClass == "bad":
			r.IssueClass = "bad"
		case len(r.Issues) > 0:
			r.IssueClass = "warn"
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// moreNulls flags a null rate above both twice the training's and the
// training's plus one point.
func moreNulls(q ColumnQuality) bool {
	return q.Nulls > 0 && q.NullRate > 2*q.ReferenceNullRate && q.NullRate > q.ReferenceNullRate+0.01
}

// issueLevel is "bad" from 1% of the values on, "warn" below.
func issueLevel(rate float64) string {
	if rate >= 0.01 {
		return "bad"
	}
	return "warn"
}

// ---- performance -----------------------------------------------------------

type perfView struct {
	Facts  []fact
	Rows   []perfRow
	Claims []claim
	Note   string
}

type perfRow struct {
	Name     string
	Cur, Ref *fig
}

func buildPerf(s *Summary) *perfView {
	pf := s.Performance
	if pf == nil {
		return nil
	}
	v := &perfView{}
	v.Facts = []fact{
		{Label: "Labels", Items: []factItem{item("", fStr("/performance/label_source", pf.LabelSource, pgClipText), "")}},
		{Label: "Labelled rows", Items: []factItem{item("", fInt("/performance/labeled_rows", pf.LabeledRows), ""), item(" (coverage ", fPct("/performance/coverage", pf.Coverage), ")")}},
		{Label: "Task", Items: []factItem{item("", fStr("/performance/task", pf.Task, pgClipEnum), "")}},
	}
	if pf.Threshold != 0 {
		v.Facts = append(v.Facts, fact{Label: "Decision threshold", Items: []factItem{item("", fNum("/performance/threshold", pf.Threshold), " (for accuracy and F1)")}})
	}
	names := map[string]bool{}
	for n := range pf.Metrics {
		names[n] = true
	}
	for n := range pf.ReferenceMetrics {
		names[n] = true
	}
	all := sortedKeys(names)
	shown := shortKeys(all)
	if len(shown) > pgMaxMetrics {
		shown = shown[:pgMaxMetrics]
	}
	if len(shown) < len(all) {
		v.Note = fmt.Sprintf("%d of %d metrics are shown (the first in name order, names of at most %d bytes).", len(shown), len(all), pgMaxKeyBytes)
		v.Claims = append(v.Claims,
			claim{List: "/performance/metrics", Keys: keysJSON(present(shown, pf.Metrics)), Total: len(pf.Metrics)},
			claim{List: "/performance/reference_metrics", Keys: keysJSON(present(shown, pf.ReferenceMetrics)), Total: len(pf.ReferenceMetrics)})
	}
	for _, n := range shown {
		r := perfRow{}
		r.Name, _ = clip(n, pgClipName)
		if x, ok := pf.Metrics[n]; ok {
			f := fNum(ptr("performance", "metrics", n), x)
			r.Cur = &f
		}
		if x, ok := pf.ReferenceMetrics[n]; ok {
			f := fNum(ptr("performance", "reference_metrics", n), x)
			r.Ref = &f
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// shortKeys keeps the names that fit in a figure's key.
func shortKeys(names []string) []string {
	var out []string
	for _, n := range names {
		if len(n) <= pgMaxKeyBytes {
			out = append(out, n)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func present(names []string, m map[string]float64) []string {
	var out []string
	for _, n := range names {
		if _, ok := m[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func keysJSON(ks []string) string {
	if ks == nil {
		ks = []string{}
	}
	b, _ := json.Marshal(ks)
	return string(b)
}

// ---- trend -----------------------------------------------------------------

type trendView struct {
	Chart  *svgChart
	Note   string
	Head   []string
	Rows   []trendRow
	Claims []claim
}

type trendRow struct {
	Current bool
	Cells   []*fig
}

func buildTrend(s *Summary) trendView {
	t := s.Trend
	v := trendView{}
	if len(t) == 0 {
		return v
	}
	// The metrics followed: the first names (sorted) of those any point has.
	names := map[string]bool{}
	for _, p := range t {
		for n := range p.Metrics {
			names[n] = true
		}
	}
	metrics := shortKeys(sortedKeys(names))
	if len(metrics) > pgMaxTrendMetrics {
		metrics = metrics[:pgMaxTrendMetrics]
	}
	if len(metrics) < len(names) {
		v.Claims = append(v.Claims, claim{List: "/trend/*/metrics", Keys: keysJSON(metrics), Total: len(names),
			Text: fmt.Sprintf("%d of %d metrics are followed (the first in name order, names of at most %d bytes).", len(metrics), len(names), pgMaxKeyBytes)})
	}
	first := 0
	if len(t) > pgMaxTrend {
		first = len(t) - pgMaxTrend
		v.Note = fmt.Sprintf("The chart shows the latest %d of %d reports.", pgMaxTrend, len(t))
	}
	v.Chart = trendChart(s, first, metrics)
	// The table holds every figure of the latest reports; the chart's
	// points carry the figures it draws.
	tfirst := len(t) - pgTrendTable
	if tfirst < 0 {
		tfirst = 0
	}
	if tfirst > 0 {
		v.Claims = append(v.Claims, claim{List: "/trend", First: tfirst, End: len(t), Total: len(t),
			Text: fmt.Sprintf("The table shows the latest %d of %d reports.", len(t)-tfirst, len(t))})
	}
	v.Head = []string{"Logical date", "Rows", "Drift share", "Dataset", "Prediction mean", "Prediction statistic"}
	for _, m := range metrics {
		c, _ := clip(m, pgClipName)
		v.Head = append(v.Head, c)
	}
	for i := tfirst; i < len(t); i++ {
		p := t[i]
		k := func(f ...any) string { return ptr(append([]any{"trend", i}, f...)...) }
		d, rows, sh, dd, pm, ps := fStr(k("logical_date"), p.LogicalDate, pgClipName), fInt(k("rows"), p.Rows),
			fPct(k("drift_share"), p.DriftShare), fVerdict(k("dataset_drift"), p.DatasetDrift),
			fNum(k("prediction_mean"), p.PredictionMean), fNum(k("prediction_statistic"), p.PredictionStatistic)
		r := trendRow{Current: p.Current, Cells: []*fig{&d, &rows, &sh, &dd, &pm, &ps}}
		for _, m := range metrics {
			if x, ok := p.Metrics[m]; ok {
				f := fNum(k("metrics", m), x)
				r.Cells = append(r.Cells, &f)
			} else {
				r.Cells = append(r.Cells, nil)
			}
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// trendChart draws panels sharing the x axis (one point per report): the
// drift share with the dataset threshold, the prediction mean and each
// followed metric.
func trendChart(s *Summary, first int, metrics []string) *svgChart {
	t := s.Trend[first:]
	type panel struct {
		title string
		val   func(TrendPoint) (float64, bool)
		key   func(i int) string
		fixed bool // 0..1 axis
		pct   bool
	}
	panels := []panel{
		{title: "Drift share (share of drifted features)", fixed: true, pct: true,
			val: func(p TrendPoint) (float64, bool) { return p.DriftShare, true },
			key: func(i int) string { return ptr("trend", i, "drift_share") }},
		{title: "Prediction mean",
			val: func(p TrendPoint) (float64, bool) { return p.PredictionMean, true },
			key: func(i int) string { return ptr("trend", i, "prediction_mean") }},
	}
	for _, m := range metrics {
		m := m
		lbl, _ := clip(m, pgClipLabel)
		panels = append(panels, panel{title: "Metric " + lbl,
			val: func(p TrendPoint) (float64, bool) { x, ok := p.Metrics[m]; return x, ok },
			key: func(i int) string { return ptr("trend", i, "metrics", m) }})
	}
	const (
		w      = 760
		left   = 70
		right  = 740
		panelH = 120
		plotH  = 80
		axisH  = 30
	)
	h := len(panels)*panelH + axisH
	c := &svgChart{ID: "chart-trend", Kind: "trend", W: w, H: h, Label: "Trend over the reports"}
	n := len(t)
	xOf := func(j int) float64 {
		if n == 1 {
			return (left + right) / 2
		}
		return left + float64(j)*(right-left)/float64(n-1)
	}
	for pi, pn := range panels {
		y0 := float64(pi*panelH) + 22 // top of plot
		y1 := y0 + plotH              // bottom
		c.Texts = append(c.Texts, svgText{X: f1(left), Y: f1(y0 - 8), T: pn.title, Class: "pt"})
		c.Grid = append(c.Grid, svgLine{X1: f1(left), Y1: f1(y1), X2: f1(right), Y2: f1(y1), Stroke: colGrid},
			svgLine{X1: f1(left), Y1: f1(y0), X2: f1(right), Y2: f1(y0), Stroke: colGrid})
		lo, hi := 0.0, 1.0
		var loF, hiF *fig
		if !pn.fixed {
			lo, hi = math.Inf(1), math.Inf(-1)
			for j, p := range t {
				x, ok := pn.val(p)
				if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
					continue
				}
				if x < lo {
					lo = x
					f := fNum(pn.key(first+j), x)
					loF = &f
				}
				if x > hi {
					hi = x
					f := fNum(pn.key(first+j), x)
					hiF = &f
				}
			}
			if loF == nil {
				c.Texts = append(c.Texts, svgText{X: f1(left + 8), Y: f1(y0 + 40), T: "no values", Class: "ax"})
				continue
			}
			c.Texts = append(c.Texts, svgText{X: f1(left - 6), Y: f1(y0 + 4), Anchor: "end", F: hiF, Class: "ax"},
				svgText{X: f1(left - 6), Y: f1(y1), Anchor: "end", F: loF, Class: "ax"})
		} else {
			c.Texts = append(c.Texts, svgText{X: f1(left - 6), Y: f1(y0 + 4), Anchor: "end", T: "100%", Class: "ax"},
				svgText{X: f1(left - 6), Y: f1(y1), Anchor: "end", T: "0%", Class: "ax"})
			thr := fPct("/drift/share_threshold", s.Drift.ShareThreshold)
			if st := s.Drift.ShareThreshold; st >= 0 && st <= 1 {
				ty := y1 - st*plotH
				c.Lines = append(c.Lines, svgLine{X1: f1(left), Y1: f1(ty), X2: f1(right), Y2: f1(ty), Stroke: colInk, Dash: "4 3", Width: "1"})
				thr.T = "threshold " + thr.T
				c.Texts = append(c.Texts, svgText{X: f1(right), Y: f1(ty - 3), Anchor: "end", F: &thr, Class: "ax"})
			}
		}
		span := hi - lo
		yOf := func(x float64) float64 {
			if span <= 0 || math.IsInf(span, 0) {
				return (y0 + y1) / 2
			}
			return y1 - (x-lo)/span*plotH
		}
		var seg []string
		flush := func() {
			if len(seg) > 1 {
				c.Polys = append(c.Polys, svgPoly{Points: strings.Join(seg, " "), Stroke: colTrend})
			}
			seg = nil
		}
		for j, p := range t {
			x, ok := pn.val(p)
			if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
				flush()
				continue
			}
			if pn.fixed {
				x = math.Min(math.Max(x, 0), 1)
			}
			px, py := xOf(j), yOf(x)
			seg = append(seg, f1(px)+","+f1(py))
			raw, _ := pn.val(p)
			var f fig
			if pn.pct {
				f = fPct(pn.key(first+j), raw)
			} else {
				f = fNum(pn.key(first+j), raw)
			}
			d, _ := clip(p.LogicalDate, pgClipName)
			title := d + ": " + f.T
			if p.Current {
				title += " (this report)"
				c.Halos = append(c.Halos, svgCircle{CX: f1(px), CY: f1(py), R: "6.5", Fill: colCurrent})
			}
			if pi == 0 && p.DatasetDrift {
				// a square: the dataset drifted that night
				c.Rects = append(c.Rects, svgRect{X: f1(px - 3.5), Y: f1(py - 3.5), W: "7", H: "7", Fill: colTrend, F: &f, Title: title + ", dataset drifted"})
			} else {
				c.Circles = append(c.Circles, svgCircle{CX: f1(px), CY: f1(py), R: "3", Fill: colTrend, F: &f, Title: title})
			}
		}
		flush()
	}
	// The x axis: up to 6 dates, the first and the last among them.
	yA := float64(len(panels)*panelH) + 8
	ticks := 6
	if n < ticks {
		ticks = n
	}
	seen := map[int]bool{}
	for q := 0; q < ticks; q++ {
		j := 0
		if ticks > 1 {
			j = int(math.Round(float64(q) * float64(n-1) / float64(ticks-1)))
		}
		if seen[j] {
			continue
		}
		seen[j] = true
		d := fStr(ptr("trend", first+j, "logical_date"), t[j].LogicalDate, pgClipLabel)
		anchor := "middle"
		if ticks > 1 && q == 0 {
			anchor = "start"
		} else if ticks > 1 && q == ticks-1 {
			anchor = "end"
		}
		c.Texts = append(c.Texts, svgText{X: f1(xOf(j)), Y: f1(yA + 6), Anchor: anchor, F: &d, Class: "ax"})
		c.Grid = append(c.Grid, svgLine{X1: f1(xOf(j)), Y1: f1(yA - 8), X2: f1(xOf(j)), Y2: f1(yA - 4), Stroke: colSubtle})
	}
	return c
}

// ---- at a glance -----------------------------------------------------------

func buildGlance(s *Summary, p *page) []glance {
	var g []glance
	g = append(g, glance{Label: "Input drift", Items: []factItem{item("", fVerdict("/drift/drifted", s.Drift.Drifted), " ("),
		item("", fPct("/drift/share", s.Drift.Share), " of the compared features drifted)")}})
	g = append(g, glance{Label: "Prediction drift", Items: []factItem{item("", fVerdict("/prediction/drifted", s.Prediction.Drifted), "")}})
	var bad []string
	for _, r := range p.Quality.Rows {
		if len(r.Issues) > 0 {
			bad = append(bad, r.Col.T)
		}
	}
	switch {
	case len(bad) == 0:
		g = append(g, glance{Label: "Data quality", Items: []factItem{words("no issues found against the training profile")}})
	default:
		more := ""
		if len(bad) > 8 {
			more = ", …"
			bad = bad[:8]
		}
		g = append(g, glance{Label: "Data quality", Items: []factItem{words("issues in " + strings.Join(bad, ", ") + more)}, Class: "warn"})
	}
	if s.Performance == nil {
		g = append(g, glance{Label: "Performance", Items: []factItem{words("not measured (no labels)")}})
	} else {
		g = append(g, glance{Label: "Performance", Items: []factItem{item("measured on ", fInt("/performance/labeled_rows", s.Performance.LabeledRows), " labelled rows (see below)")}})
	}
	return g
}

// ---- SVG -------------------------------------------------------------------

type svgChart struct {
	ID, Kind, Label string
	W, H            int
	Grid            []svgLine
	Halos           []svgCircle // under everything else
	Rects           []svgRect
	Polys           []svgPoly
	Lines           []svgLine
	Circles         []svgCircle
	Texts           []svgText
	Claims          []claim
}

type svgRect struct {
	X, Y, W, H, Fill string
	F                *fig
	Title            string
}

type svgLine struct{ X1, Y1, X2, Y2, Stroke, Dash, Width string }

type svgPoly struct{ Points, Stroke string }

type svgCircle struct {
	CX, CY, R, Fill string
	F               *fig
	Title           string
}

type svgText struct {
	X, Y, Anchor, T, Class, Title string
	Rotate                        string
	F                             *fig
}

func f1(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	s := strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		s = "0"
	}
	return s
}

// histChart draws a binned comparison: wide pale bars for the reference,
// narrow dark bars for the current shares, bins at equal width. The big
// form (axes) labels edges or categories; the small one draws bars only.
func histChart(id, kind, key string, h Histogram, w, hgt, maxBins int, big bool) (*svgChart, string) {
	n := len(h.Reference)
	if len(h.Current) > n {
		n = len(h.Current)
	}
	if n == 0 {
		return nil, "No values to compare."
	}
	note := ""
	drawn := n
	var claims []claim
	if n > maxBins {
		drawn = maxBins
		note = fmt.Sprintf("The first %d of %d bins are drawn.", maxBins, n)
		if big {
			claims = append(claims, claim{List: key + "/reference", End: min(maxBins, len(h.Reference)), Total: len(h.Reference)},
				claim{List: key + "/current", End: min(maxBins, len(h.Current)), Total: len(h.Current)})
		}
	}
	left, right, top, bottom := 8.0, float64(w)-8, 6.0, float64(hgt)-6
	if big {
		left, top, bottom = 56, 12, float64(hgt)-48
	}
	c := &svgChart{ID: id, Kind: kind, W: w, H: hgt, Claims: claims,
		Label: "Reference and current distributions"}
	maxShare, maxKey := 0.0, ""
	for i := 0; i < drawn; i++ {
		if v := at(h.Reference, i); v > maxShare && !math.IsInf(v, 0) {
			maxShare, maxKey = v, ptr2(key, "reference", i)
		}
		if v := at(h.Current, i); v > maxShare && !math.IsInf(v, 0) {
			maxShare, maxKey = v, ptr2(key, "current", i)
		}
	}
	if maxShare <= 0 {
		maxShare = 1
	}
	slot := (right - left) / float64(drawn)
	yOf := func(v float64) float64 {
		if math.IsNaN(v) || v < 0 {
			v = 0
		}
		return bottom - math.Min(v/maxShare, 1)*(bottom-top)
	}
	c.Grid = append(c.Grid, svgLine{X1: f1(left), Y1: f1(bottom), X2: f1(right), Y2: f1(bottom), Stroke: colSubtle})
	if big {
		c.Grid = append(c.Grid, svgLine{X1: f1(left), Y1: f1(top), X2: f1(right), Y2: f1(top), Stroke: colGrid})
		yMax := svgText{X: f1(left - 6), Y: f1(top + 4), Anchor: "end", T: fmtPct(maxShare), Class: "ax"}
		if maxKey != "" {
			f := fPct(maxKey, maxShare)
			yMax.F = &f
		}
		c.Texts = append(c.Texts, yMax,
			svgText{X: f1(left - 6), Y: f1(bottom), Anchor: "end", T: "0%", Class: "ax"},
			svgText{X: "12", Y: f1((top + bottom) / 2), Anchor: "middle", T: "share of values", Class: "ax", Rotate: fmt.Sprintf("rotate(-90 12 %s)", f1((top+bottom)/2))})
	}
	binName := func(i int) string {
		if i < len(h.Labels) {
			l, _ := clip(h.Labels[i], pgClipLabel)
			return l
		}
		if i+1 < len(h.Edges) {
			return "(" + fmtNum(h.Edges[i]) + ", " + fmtNum(h.Edges[i+1]) + "]"
		}
		return "bin " + strconv.Itoa(i+1)
	}
	for i := 0; i < drawn; i++ {
		x := left + float64(i)*slot
		gap := math.Min(1, slot*0.1)
		name := binName(i)
		if i < len(h.Reference) {
			v := h.Reference[i]
			y := yOf(v)
			r := svgRect{X: f1(x + gap/2), Y: f1(y), W: f1(slot - gap), H: f1(bottom - y), Fill: colRef}
			if big {
				f := fPct(ptr2(key, "reference", i), v)
				r.F, r.Title = &f, name+": reference "+f.T
			}
			c.Rects = append(c.Rects, r)
		}
		if i < len(h.Current) {
			v := h.Current[i]
			y := yOf(v)
			r := svgRect{X: f1(x + slot*0.3), Y: f1(y), W: f1(math.Max(slot*0.4, 0.5)), H: f1(bottom - y), Fill: colCur}
			if big {
				f := fPct(ptr2(key, "current", i), v)
				r.F, r.Title = &f, name+": current "+f.T
			}
			c.Rects = append(c.Rects, r)
		}
	}
	if !big {
		return c, note
	}
	// x labels: categories under their bars when they fit, else numeric
	// edges at a stride that keeps about a dozen.
	if len(h.Labels) > 0 {
		if drawn <= 30 {
			for i := 0; i < drawn && i < len(h.Labels); i++ {
				x := left + (float64(i)+0.5)*slot
				y := bottom + 12
				f := fStr(ptr2(key, "labels", i), h.Labels[i], pgClipLabel)
				c.Texts = append(c.Texts, svgText{X: f1(x), Y: f1(y), Anchor: "end", F: &f, Class: "ax",
					Rotate: fmt.Sprintf("rotate(-35 %s %s)", f1(x), f1(y))})
			}
		} else {
			c.Texts = append(c.Texts, svgText{X: f1(left), Y: f1(bottom + 16), T: fmt.Sprintf("%d categories (names in each bar's tooltip)", len(h.Labels)), Class: "ax"})
		}
	} else if len(h.Edges) > 0 {
		stride := 1
		for (drawn+1)/stride > 12 {
			stride++
		}
		for j := 0; j <= drawn && j < len(h.Edges); j += stride {
			x := left + float64(j)*slot
			f := fNum(ptr2(key, "edges", j), h.Edges[j])
			c.Texts = append(c.Texts, svgText{X: f1(x), Y: f1(bottom + 16), Anchor: "middle", F: &f, Class: "ax"})
			c.Grid = append(c.Grid, svgLine{X1: f1(x), Y1: f1(bottom), X2: f1(x), Y2: f1(bottom + 4), Stroke: colSubtle})
		}
	}
	return c, note
}

func ptr2(key string, parts ...any) string { return key + ptr(parts...) }

func at(v []float64, i int) float64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// ---- template ---------------------------------------------------------------

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

const pageHTML = `{{define "f"}}<span{{with .C}} class="{{.}}"{{end}} data-k="{{.K}}" data-v="{{.V}}"{{if .Tr}} data-trunc=""{{end}}>{{.T}}{{if .Tr}}…{{end}}</span>{{end -}}
{{define "items"}}{{range .}}{{.Pre}}{{with .F}}{{template "f" .}}{{end}}{{.Post}}{{end}}{{end -}}
{{define "claim"}}<span class="note claim" data-list="{{.List}}"{{if .Keys}} data-keys="{{.Keys}}"{{else}} data-first="{{.First}}" data-end="{{.End}}"{{end}} data-total="{{.Total}}">{{.Text}}</span>{{end -}}
{{define "svg"}}<svg id="{{.ID}}" data-chart="{{.Kind}}" class="chart" role="img" aria-label="{{.Label}}" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" xmlns="http://www.w3.org/2000/svg">
{{- range .Grid}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" stroke="{{.Stroke}}"/>{{end}}
{{- range .Halos}}<circle cx="{{.CX}}" cy="{{.CY}}" r="{{.R}}" fill="{{.Fill}}"/>{{end}}
{{- range .Rects}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Fill}}"{{with .F}} data-k="{{.K}}" data-v="{{.V}}"{{end}}>{{with .Title}}<title>{{.}}</title>{{end}}</rect>{{end}}
{{- range .Polys}}<polyline points="{{.Points}}" fill="none" stroke="{{.Stroke}}" stroke-width="1.5"/>{{end}}
{{- range .Lines}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" stroke="{{.Stroke}}"{{with .Dash}} stroke-dasharray="{{.}}"{{end}}{{with .Width}} stroke-width="{{.}}"{{end}}/>{{end}}
{{- range .Circles}}<circle cx="{{.CX}}" cy="{{.CY}}" r="{{.R}}" fill="{{.Fill}}"{{with .F}} data-k="{{.K}}" data-v="{{.V}}"{{end}}>{{with .Title}}<title>{{.}}</title>{{end}}</circle>{{end}}
{{- range .Texts}}<text x="{{.X}}" y="{{.Y}}"{{with .Anchor}} text-anchor="{{.}}"{{end}}{{with .Class}} class="{{.}}"{{end}}{{with .Rotate}} transform="{{.}}"{{end}}{{with .F}} data-k="{{.K}}" data-v="{{.V}}"{{if .Tr}} data-trunc=""{{end}}>{{.T}}{{if .Tr}}…{{end}}{{else}}>{{.T}}{{end}}{{with .Title}}<title>{{.}}</title>{{end}}</text>{{end -}}
</svg>{{range .Claims}}{{template "claim" .}}{{end}}{{end -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kiln report ({{.Schema.V}})">
<link rel="icon" href="data:,">
<title>{{.Title.T}}</title>
<style>
:root{--ink:#222;--mute:#666;--line:#ddd;--bad:#c0392b;--warn:#9a6700;--ok:#2e8b57}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:0 auto;padding:16px 24px 40px;max-width:1100px;background:#fff}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:3px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:var(--mute);margin:0 0 8px}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;padding-right:14px}
table.facts th{font-weight:600;white-space:nowrap;padding-right:18px;color:var(--mute)}
.bad{color:var(--bad);font-weight:700}.warn{color:var(--warn);font-weight:700}.ok{color:var(--ok)}
td.bad,td.warn{background:#fdf1ef}td.warn{background:#fdf7e6}
.glance{display:flex;flex-wrap:wrap;gap:8px 24px;margin:10px 0;padding:8px 12px;border:1px solid var(--line);border-radius:4px}
.glance div b{margin-right:6px}
.warnings{border-left:4px solid var(--warn);padding:4px 12px;margin:10px 0;background:#fdf7e6}
.warnings ul{margin:4px 0;padding-left:18px}
figure{margin:8px 0 12px}figcaption{color:var(--mute);font-size:12.5px;max-width:760px}
svg.chart{max-width:100%;height:auto;display:block;font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg text{fill:#222}svg text.ax{fill:#666;font-size:10px}svg text.pt{font-weight:600}svg text.bad{fill:#c0392b;font-weight:700}svg text.ok{fill:#2e8b57}svg text.over{fill:#fff;font-weight:700}
.sw{display:inline-block;width:22px;height:10px;vertical-align:middle;margin:0 4px 0 0;border:1px solid #999}
.sw.ref{background:#8fb8de}.sw.cur{background:#d95f02;width:10px}.sw.dr{background:#c0392b}.sw.okb{background:#2e8b57}.sw.tr{background:#6a3d9a;width:10px;border-radius:5px}
.small{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px 14px}
.small figure{margin:0}.small .h{font-size:12px;display:flex;justify-content:space-between;gap:6px;overflow:hidden}
.note{color:var(--mute);font-size:12.5px;margin:4px 0}
.ex{color:var(--mute);font-size:12px}.ex .claim{display:inline;margin-left:4px}.claim{display:block}
td.mono{white-space:nowrap}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;overflow-wrap:anywhere}
tr.cur td{font-weight:700}
footer{margin-top:32px;color:var(--mute);font-size:12px;border-top:1px solid var(--line);padding-top:6px}
@media print{
body{max-width:none;padding:0;font-size:10pt}
nav a::after{content:" <" attr(href) ">";font-size:8pt;color:#666;word-break:break-all}
h2{break-after:avoid}figure,tr,.glance{break-inside:avoid}
svg,.sw,td.bad,td.warn,.warnings{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
</style>
</head>
<body>
<header>
<h1>{{if .Title.K}}{{template "f" .Title}}{{else}}{{.Title.T}}{{end}}</h1>
<p class="sub">Batch report of pipeline {{template "f" (index .Subtitle 0)}} for {{template "f" (index .Subtitle 1)}}</p>
{{if .Links}}<nav>{{range .Links}}{{if .URL}}<a href="{{.URL}}" data-k="{{.K}}" data-v="{{.URL}}">{{.Label}}</a>{{else}}<span>{{.Label}} {{.Note}}</span>{{end}}{{end}}</nav>{{end}}
</header>
<main>
<section class="glance" aria-label="At a glance">
{{range .Glance}}<div{{with .Class}} class="{{.}}"{{end}}><b>{{.Label}}:</b>{{template "items" .Items}}</div>
{{end}}</section>
{{if .Warnings}}<section class="warnings" id="warnings"><b>Warnings</b><ul>
{{range .Warnings}}<li>{{template "f" .}}</li>
{{end}}</ul></section>{{end}}
{{range .Claims}}{{template "claim" .}}{{end}}
<section id="facts">
<h2>About this report</h2>
<table class="facts">
{{range .Facts}}<tr><th scope="row">{{.Label}}</th><td>{{template "items" .Items}}</td></tr>
{{end}}</table>
</section>

<section id="prediction">
<h2>Predictions</h2>
{{with .Pred.Chart}}<figure>{{template "svg" .}}
<figcaption><span class="sw ref"></span>wide pale bars: the reference (holdout) predictions · <span class="sw cur"></span>narrow dark bars: the current predictions. Each bar is the share of predictions in its bin; bins are drawn at equal width whatever their edges. {{$.Pred.Note}}</figcaption></figure>{{else}}<p class="note">{{.Pred.Note}}</p>{{end}}
<table class="facts">
{{range .Pred.Rows}}<tr><th scope="row">{{.Label}}</th><td>{{template "items" .Items}}</td></tr>
{{end}}</table>
</section>

<section id="drift">
<h2>Input drift</h2>
<p>{{template "items" .Drift.Verdict}}</p>
{{with .Drift.Bars}}<figure>{{template "svg" .}}
<figcaption><span class="sw dr"></span>DRIFT · <span class="sw okb"></span>no drift (the verdict is also written at the end of each row). Each row has its own scale, with its threshold at the dashed line and twice the threshold at the right end (» past it). For the tests with a p-value (ks, chisquare) the bar is −log10(p-value) against −log10(threshold), so a longer bar is a smaller p-value and crossing the line means p is below the threshold; for the others (wasserstein, jensenshannon, psi) the bar is the statistic against its threshold. The value column shows the p-value (p) or the statistic. {{$.Drift.BarNote}}</figcaption></figure>{{else}}<p class="note">{{.Drift.BarNote}}</p>{{end}}
<table>
<thead><tr><th>Column</th><th>Kind</th><th>Method</th><th class="n">Statistic</th><th class="n">p-value</th><th class="n">Threshold</th><th>Verdict</th><th class="n">PSI</th><th class="n">Rows</th><th class="n">Reference rows</th></tr></thead>
<tbody>
{{range .Drift.Rows}}<tr><td class="mono">{{template "f" .Col}}</td><td>{{template "f" .Kind}}</td><td>{{template "f" .Method}}</td><td class="n">{{template "f" .Stat}}</td><td class="n">{{if .HasP}}{{template "f" .P}}{{else}}—{{end}}</td><td class="n">{{template "f" .Thr}}</td><td class="{{.Verdict.C}}">{{template "f" .Verdict}}</td><td class="n">{{template "f" .PSI}}</td><td class="n">{{template "f" .Rows}}</td><td class="n">{{template "f" .RefRows}}</td></tr>
{{end}}</tbody></table>
{{with .Drift.Claim}}{{template "claim" .}}{{end}}
{{if .Drift.Small}}<h3>Feature distributions</h3>
<p class="note"><span class="sw ref"></span>reference · <span class="sw cur"></span>current; each bar is the share of values in its bin (categories in the order of the summary). {{.Drift.SmallNote}}</p>
<div class="small">
{{range .Drift.Small}}<figure><div class="h"><span class="mono">{{template "f" .Name}}</span><span class="{{.Verdict.C}}">{{template "f" .Verdict}}</span></div>{{with .Chart}}{{template "svg" .}}{{end}}{{with .Note}}<p class="note">{{.}}</p>{{end}}</figure>
{{end}}</div>{{end}}
</section>

<section id="quality">
<h2>Data quality against the training profile</h2>
<p class="note">Flagged: a null rate above both twice the training's and the training's plus one point; any value outside the training range; any category unseen in training (in bold from 1% of the values on). The issue is written in the last column.</p>
<table>
<thead><tr><th>Column</th><th>Type</th><th class="n">Rows</th><th class="n">Nulls</th><th class="n">Null rate</th><th class="n">Training null rate</th><th class="n">Out of range</th><th>Training range</th><th class="n">Unseen</th><th>Unseen examples</th><th>Issues</th></tr></thead>
<tbody>
{{range .Quality.Rows}}<tr><td class="mono">{{template "f" .Col}}</td><td>{{template "f" .Type}}</td>
{{- if .Missing}}<td colspan="8">{{template "f" .MissingF}}</td>{{else -}}
<td class="n">{{template "f" .Rows}}</td><td class="n">{{template "f" .Nulls}}</td><td class="n{{with .NullClass}} {{.}}{{end}}">{{template "f" .NullRate}}</td><td class="n">{{template "f" .RefNull}}</td>
<td class="n{{with .OORClass}} {{.}}{{end}}">{{if .OOR}}{{template "f" .OOR}} ({{template "f" .OORRate}}){{else}}—{{end}}</td>
<td>{{if .Range}}{{template "items" .Range}}{{else}}—{{end}}</td>
<td class="n{{with .UnseenClass}} {{.}}{{end}}">{{if .Unseen}}{{template "f" .Unseen}} ({{template "f" .UnseenR}}){{else}}—{{end}}</td>
<td class="ex">{{range $i, $e := .Examples}}{{if $i}}, {{end}}<code>{{template "f" $e}}</code>{{end}}{{with .ExClaim}}{{template "claim" .}}{{end}}</td>
{{- end}}<td class="{{.IssueClass}}">{{range $i, $s := .Issues}}{{if $i}}; {{end}}{{$s}}{{else}}none{{end}}</td></tr>
{{end}}</tbody></table>
{{with .Quality.Claim}}{{template "claim" .}}{{end}}
</section>

<section id="performance">
<h2>Performance</h2>
{{with .Perf}}<table class="facts">
{{range .Facts}}<tr><th scope="row">{{.Label}}</th><td>{{template "items" .Items}}</td></tr>
{{end}}</table>
<table>
<thead><tr><th>Metric</th><th class="n">Current rows</th><th class="n">Holdout (evaluation)</th></tr></thead>
<tbody>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="n">{{with .Cur}}{{template "f" .}}{{else}}—{{end}}</td><td class="n">{{with .Ref}}{{template "f" .}}{{else}}—{{end}}</td></tr>
{{end}}</tbody></table>
{{with .Note}}<p class="note">{{.}}</p>{{end}}{{range .Claims}}{{template "claim" .}}{{end}}
{{else}}<p>No labels were available for these rows, so performance was not measured.</p>{{end}}
</section>

<section id="trend">
<h2>Trend</h2>
{{with .Trend.Chart}}<figure>{{template "svg" .}}
<figcaption><span class="sw tr"></span>one point per report, oldest on the left; a square in the drift-share panel marks a night whose dataset drifted; the ringed point is this report. The dashed line is this report's dataset threshold. {{$.Trend.Note}}</figcaption></figure>
<h3>Latest reports</h3>
<table>
<thead><tr>{{range $.Trend.Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range $.Trend.Rows}}<tr{{if .Current}} class="cur"{{end}}>{{range .Cells}}<td>{{with .}}{{template "f" .}}{{else}}—{{end}}</td>{{end}}</tr>
{{end}}</tbody></table>
{{range $.Trend.Claims}}{{template "claim" .}}{{end}}
{{else}}<p>No earlier reports.</p>{{end}}
</section>
</main>
<footer>Kiln report · schema {{template "f" .Schema}} · generated {{template "f" .Gen}} · this page is self-contained and makes no requests; the figures are those of the JSON summary written beside it.</footer>
</body>
</html>
`
