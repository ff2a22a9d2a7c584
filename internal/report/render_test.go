package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"image"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/browsertest"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.html")

// loadSummary reads testdata/summary.json strictly (unknown fields fail)
// and returns the summary and its JSON as the package writes it.
func loadSummary(t *testing.T) (*Summary, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s Summary
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("testdata/summary.json: %v", err)
	}
	if s.Schema != SchemaVersion {
		t.Fatalf("testdata/summary.json: schema %q, want %q", s.Schema, SchemaVersion)
	}
	js, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	return &s, js
}

func render(t testing.TB, s *Summary) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := RenderHTML(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRenderGolden renders the realistic summary and compares the page
// with testdata/report.golden.html (go test -run Golden -update rewrites
// it); the same summary must give the same bytes.
func TestRenderGolden(t *testing.T) {
	s, _ := loadSummary(t)
	got := render(t, s)
	if again := render(t, s); !bytes.Equal(got, again) {
		t.Fatal("two renderings of the same summary differ")
	}
	golden := filepath.Join("testdata", "report.golden.html")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("page differs from %s at line %d:\n got: %.300s\nwant: %.300s\n(go test -run Golden -update rewrites it)", golden, i+1, g, w)
			}
		}
	}
	t.Logf("realistic summary: %d bytes of HTML", len(got))
}

// TestRenderStatic checks what needs no browser: no external reference of
// any kind, and every figure equal to the JSON's, none missing.
func TestRenderStatic(t *testing.T) {
	s, js := loadSummary(t)
	page := string(render(t, s))
	checkSelfContained(t, page)
	checkFigures(t, page, js)
	for _, want := range []string{`<link rel="icon" href="data:,">`, `Content-Security-Policy`, `data-chart="prediction"`, `data-chart="drift"`, `data-chart="trend"`, `data-chart="feature"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// checkSelfContained fails on anything that could make a browser fetch:
// src, srcset, url(), @import, and <link>s other than the data: icon;
// <a href> is a link for the reader, not a request.
func checkSelfContained(t testing.TB, page string) {
	t.Helper()
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\ssrc(set)?\s*=`),
		regexp.MustCompile(`(?i)url\s*\(`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)<script`),
		regexp.MustCompile(`(?i)<(iframe|object|embed|video|audio|img|image|use|base|form)\b`),
		regexp.MustCompile(`(?i)xlink:href`),
	} {
		if m := re.FindString(page); m != "" {
			t.Errorf("page contains %q", m)
		}
	}
	links := regexp.MustCompile(`(?i)<link\b[^>]*>`).FindAllString(page, -1)
	if len(links) != 1 || links[0] != `<link rel="icon" href="data:,">` {
		t.Errorf("page's <link> elements: %q, want only the data: icon", links)
	}
}

// TestRenderEdgeCases renders empty, odd and hostile summaries.
func TestRenderEdgeCases(t *testing.T) {
	if err := RenderHTML(&bytes.Buffer{}, nil); err == nil {
		t.Error("RenderHTML(nil) did not fail")
	}
	page := string(render(t, &Summary{}))
	if !strings.Contains(page, "No earlier reports") || !strings.Contains(page, "performance was not measured") {
		t.Error("empty summary: expected the empty-section texts")
	}
	nan, inf := math.NaN(), math.Inf(1)
	odd := &Summary{
		Title:    `<script>alert("x")</script>`,
		Pipeline: "p",
		Links:    Links{Run: "javascript:alert(1)", Lineage: "http://127.0.0.1/" + strings.Repeat("x", 5000)},
		Prediction: PredictionDrift{Mean: nan, Test: Test{Method: "ks", Statistic: inf, PValue: &nan, Threshold: 0.05},
			Histogram: Histogram{Edges: []float64{0, inf}, Reference: []float64{nan}, Current: []float64{inf}}},
		Drift: DatasetDrift{Columns: []ColumnDrift{
			{Column: "a", Kind: "numeric", Test: Test{Method: "psi", Statistic: nan, Threshold: 0}},
			{Column: "b", Kind: "numeric", Test: Test{Method: "ks", Statistic: 1, PValue: new(float64), Threshold: 0.05, Drifted: true}},
		}},
		Trend: []TrendPoint{{LogicalDate: "d", PredictionMean: nan, DriftShare: inf, Current: true}},
	}
	page = string(render(t, odd))
	if strings.Contains(page, "<script>") {
		t.Error("title not escaped")
	}
	if strings.Contains(page, "javascript:") {
		t.Error("javascript: link not neutralised")
	}
	if !strings.Contains(page, "(link too long to show)") {
		t.Error("over-long link not replaced")
	}
	checkSelfContained(t, page)
}

// pathological is a summary with every list far past its cap and every
// string long (hostile: made of characters that escape to the longest
// entities). Big values are shared between columns to keep the test's
// memory small; the page cannot tell.
func pathological(nameLen int, hostile bool) *Summary {
	long := func(n int) string {
		if hostile {
			return strings.Repeat(`"&'+`, n/4) // each character escapes to 5 bytes
		}
		return strings.Repeat("lorem ipsum ", n/12)
	}
	suffix := long(nameLen)
	if !hostile {
		suffix = strings.Repeat("x", nameLen)
	}
	name := func(prefix string, i int) string { return fmt.Sprintf("%s_%05d_", prefix, i) + suffix }
	metricName := func(i int) string {
		if hostile {
			return name("metric", i) // too long to be shown
		}
		return fmt.Sprintf("metric_%04d", i)
	}
	f := func(x float64) *float64 { return &x }
	s := &Summary{Schema: SchemaVersion, Title: long(10000), Pipeline: long(10000), Schedule: long(10000), LogicalDate: long(10000),
		Trigger: long(1000), WorkflowID: long(10000), RunID: long(10000), Input: long(10000), Rows: math.MaxInt64,
		Reference: Reference{Model: long(10000), FeatureSource: long(10000), PredictionSource: long(10000)},
		Links:     Links{Run: "http://127.0.0.1/" + long(1000), Lineage: "http://127.0.0.1/" + long(1000), Index: "http://127.0.0.1/" + long(1000)},
	}
	warning := long(2000)
	for i := 0; i < 200; i++ {
		s.Models = append(s.Models, ModelRows{Name: name("model", i), Version: int64(i), Rows: int64(i)})
		s.Warnings = append(s.Warnings, warning)
	}
	hist := func(bins int, categorical bool) Histogram {
		h := Histogram{}
		label := long(200)
		for b := 0; b < bins; b++ {
			h.Reference = append(h.Reference, 1/float64(bins))
			h.Current = append(h.Current, 1/float64(bins)+1e-9*float64(b))
			if categorical {
				h.Labels = append(h.Labels, label)
			} else {
				h.Edges = append(h.Edges, float64(b)/3)
			}
		}
		if !categorical {
			h.Edges = append(h.Edges, float64(bins)/3)
		}
		return h
	}
	numHist, catHist := hist(100, false), hist(100, true)
	var examples []string
	for e := 0; e < 20; e++ {
		examples = append(examples, long(200))
	}
	kind, typ := long(200), long(200)
	const cols = 5000
	for i := 0; i < cols; i++ {
		p := 1e-7 * float64(i)
		h := numHist
		if i%2 == 0 {
			h = catHist
		}
		c := ColumnDrift{Column: name("feature", i), Kind: kind, Test: Test{Method: kind, Statistic: 0.123456789 * float64(i), PValue: &p, Threshold: 0.05, Drifted: i%3 == 0},
			PSI: 1.0 / 3, ReferenceRows: math.MaxInt64, Rows: math.MinInt64, Histogram: h}
		s.Drift.Columns = append(s.Drift.Columns, c)
		s.Quality = append(s.Quality, ColumnQuality{Column: name("feature", i), Type: typ, Rows: math.MaxInt64, Nulls: math.MaxInt64, NullRate: 0.5, ReferenceNullRate: 0.01,
			OutOfRange: 12345678901, OutOfRangeRate: 0.25, Min: f(-1e300), Max: f(1e300), Unseen: 42, UnseenRate: 0.5, UnseenExamples: examples})
	}
	s.Drift.DriftedColumns, s.Drift.Share, s.Drift.ShareThreshold, s.Drift.Drifted = cols/3, 1.0/3, 0.5, false
	s.Prediction = PredictionDrift{Column: long(1000), Output: long(1000), Test: Test{Method: long(1000), Statistic: 1, Threshold: 1}, Histogram: hist(100000, false)}
	metrics := map[string]float64{}
	for m := 0; m < 1000; m++ {
		metrics[metricName(m)] = float64(m) / 7
	}
	few := map[string]float64{}
	for m := 0; m < 10; m++ {
		few[metricName(m)] = float64(m) / 7
	}
	s.Performance = &Performance{LabelSource: long(10000), LabeledRows: 1, Coverage: 1, Task: long(1000), Metrics: metrics, ReferenceMetrics: metrics, Threshold: 0.5}
	date := long(200)
	for n := 0; n < 1000; n++ {
		s.Trend = append(s.Trend, TrendPoint{LogicalDate: date, Rows: int64(n), DriftShare: float64(n%10) / 10, DatasetDrift: n%7 == 0,
			PredictionMean: math.Sin(float64(n)), PredictionStatistic: 0.5, Metrics: few, Current: n == 999})
	}
	return s
}

// TestRenderSize renders pathological summaries (5000 columns with long
// names, 1000-night trend, 1000 metrics, huge histograms and strings) and
// checks the page stays under MaxHTMLBytes.
func TestRenderSize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nameLen int
		hostile bool
	}{{"long-names", 200, false}, {"hostile-strings", 2000, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := pathological(tc.nameLen, tc.hostile)
			start := time.Now()
			page := render(t, s)
			t.Logf("%s: %d bytes of HTML (%.2f MB) in %v", tc.name, len(page), float64(len(page))/1e6, time.Since(start).Round(time.Millisecond))
			if len(page) >= MaxHTMLBytes {
				t.Fatalf("page is %d bytes, limit %d", len(page), MaxHTMLBytes)
			}
			js, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			checkFigures(t, string(page), js)
		})
	}
}

// ---- figures: the page against the JSON ------------------------------------

// element is a start tag of the page or of Chromium's DOM dump.
type element struct {
	Name  string
	Attrs map[string]string
}

// startTags returns the start tags of an HTML document (the page as
// rendered or as Chromium serialises it), attribute values unescaped.
func startTags(doc string) []element {
	var out []element
	for i := 0; i < len(doc); i++ {
		if doc[i] != '<' || i+1 >= len(doc) || !isLetter(doc[i+1]) {
			if strings.HasPrefix(doc[i:], "<!--") {
				if j := strings.Index(doc[i:], "-->"); j >= 0 {
					i += j + 2
				}
			}
			continue
		}
		j := i + 1
		for j < len(doc) && !isSpace(doc[j]) && doc[j] != '>' && doc[j] != '/' {
			j++
		}
		e := element{Name: strings.ToLower(doc[i+1 : j]), Attrs: map[string]string{}}
		for j < len(doc) && doc[j] != '>' {
			for j < len(doc) && (isSpace(doc[j]) || doc[j] == '/') {
				j++
			}
			if j >= len(doc) || doc[j] == '>' {
				break
			}
			k := j
			for j < len(doc) && !isSpace(doc[j]) && doc[j] != '=' && doc[j] != '>' && doc[j] != '/' {
				j++
			}
			name := strings.ToLower(doc[k:j])
			val := ""
			if j < len(doc) && doc[j] == '=' {
				j++
				if j < len(doc) && (doc[j] == '"' || doc[j] == '\'') {
					q := doc[j]
					end := strings.IndexByte(doc[j+1:], q)
					if end < 0 {
						end = len(doc) - j - 1
					}
					val = doc[j+1 : j+1+end]
					j += end + 2
				} else {
					k := j
					for j < len(doc) && !isSpace(doc[j]) && doc[j] != '>' {
						j++
					}
					val = doc[k:j]
				}
			}
			e.Attrs[name] = html.UnescapeString(val)
		}
		out = append(out, e)
		i = j
	}
	return out
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isSpace(c byte) bool  { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// pointerTokens splits a JSON Pointer.
func pointerTokens(p string) []string {
	if p == "" {
		return nil
	}
	ts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, t := range ts {
		ts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return ts
}

// lookup walks the generic JSON value; ok is false when a token is absent.
func lookup(v any, tokens []string) (any, bool) {
	for _, t := range tokens {
		switch x := v.(type) {
		case map[string]any:
			n, ok := x[t]
			if !ok {
				return nil, false
			}
			v = n
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// omittedZero says whether tokens name a Summary field that the JSON
// leaves out when it is zero (omitempty), and its zero value as the page
// writes it. It walks the Go types, so a key the schema does not have is
// never excused.
func omittedZero(tokens []string) (string, bool) {
	t := reflect.TypeOf(Summary{})
	omit := false
	for _, tok := range tokens {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			f, ok := jsonField(t, tok)
			if !ok {
				return "", false
			}
			omit = strings.Contains(f.Tag.Get("json"), ",omitempty")
			t = f.Type
		case reflect.Slice, reflect.Map:
			t, omit = t.Elem(), false
		default:
			return "", false
		}
	}
	if !omit {
		return "", false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "0", true
	case reflect.Bool:
		return "false", true
	case reflect.String:
		return "", true
	}
	return "", false
}

func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Anonymous && tag == "" {
			if g, ok := jsonField(f.Type, name); ok {
				return g, true
			}
			continue
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// sameValue compares a page's data-v with the JSON value.
func sameValue(j any, v string, trunc bool) bool {
	switch x := j.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") && !strings.ContainsAny(v, ".eE") {
			return s == v // integers: exact, whatever their size
		}
		a, err1 := strconv.ParseFloat(s, 64)
		b, err2 := strconv.ParseFloat(v, 64)
		return err1 == nil && err2 == nil && a == b
	case bool:
		return strconv.FormatBool(x) == v
	case string:
		if trunc {
			return len(v) < len(x) && strings.HasPrefix(x, v)
		}
		return x == v
	}
	return false
}

// notFigure says which of the summary's values the page shows graphically
// or in words rather than as figures (a prefix names a whole subtree);
// checkFigures does not ask for them (when the page does mark one, its
// value is still checked).
func notFigure(toks []string) bool {
	switch {
	// Bin edges and category labels: the axis labels a stride of them
	// (every bar's tooltip names its bin).
	case len(toks) >= 3 && toks[0] == "prediction" && toks[1] == "histogram" && (toks[2] == "edges" || toks[2] == "labels"):
		return true
	// The small per-feature histograms are drawn without figures.
	case len(toks) >= 4 && toks[0] == "drift" && toks[1] == "columns" && toks[3] == "histogram":
		return true
	// This report's trend point is shown by its highlight.
	case len(toks) == 3 && toks[0] == "trend" && toks[2] == "current":
		return true
	}
	return false
}

// pageClaim is an element saying which part of a capped list is shown.
type pageClaim struct {
	list        []string // pointer tokens, "*" for any index
	first, end  int
	keys        map[string]bool
	keysClaimed bool
}

// claimed says whether the leaf at tokens is one the page claims to show.
func claimed(claims map[string][]pageClaim, tokens []string) bool {
	if len(tokens) == 0 {
		return true
	}
	for _, c := range claims[tokens[0]] {
		if len(tokens) <= len(c.list) {
			continue
		}
		match := true
		for i, ct := range c.list {
			if ct != "*" && ct != tokens[i] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		next := tokens[len(c.list)]
		if c.keysClaimed {
			if !c.keys[next] {
				return false
			}
			continue
		}
		i, err := strconv.Atoi(next)
		if err != nil || i < c.first || i >= c.end {
			return false
		}
	}
	return true
}

// checkFigures checks the page's figures against the summary's JSON: every
// data-k names a value of the JSON (or a field the JSON omits because it is
// zero) and data-v equals it, and every scalar of the JSON that the page
// claims to show has a figure.
func checkFigures(t testing.TB, doc string, summaryJSON []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(summaryJSON))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	claims := map[string][]pageClaim{} // by the list's first token
	nfig, bad, nclaims := 0, 0, 0
	for _, e := range startTags(doc) {
		if l, ok := e.Attrs["data-list"]; ok {
			c := pageClaim{list: pointerTokens(l)}
			if ks, ok := e.Attrs["data-keys"]; ok {
				var names []string
				if err := json.Unmarshal([]byte(ks), &names); err != nil {
					t.Errorf("claim %s: data-keys %q: %v", l, ks, err)
				}
				c.keys, c.keysClaimed = map[string]bool{}, true
				for _, n := range names {
					c.keys[n] = true
				}
			} else {
				c.first, _ = strconv.Atoi(e.Attrs["data-first"])
				c.end, _ = strconv.Atoi(e.Attrs["data-end"])
			}
			if len(c.list) > 0 {
				claims[c.list[0]] = append(claims[c.list[0]], c)
			}
			nclaims++
		}
		k, ok := e.Attrs["data-k"]
		if !ok {
			continue
		}
		nfig++
		v, hasV := e.Attrs["data-v"]
		_, trunc := e.Attrs["data-trunc"]
		if !hasV {
			t.Errorf("figure %s has no data-v", k)
			bad++
			continue
		}
		shown[k] = true
		toks := pointerTokens(k)
		j, found := lookup(root, toks)
		if !found {
			zero, ok := omittedZero(toks)
			if !ok {
				t.Errorf("figure %s: no such value in the summary", k)
				bad++
			} else if v != zero {
				t.Errorf("figure %s = %q, but the summary omits it (zero)", k, v)
				bad++
			}
			continue
		}
		if !sameValue(j, v, trunc) {
			t.Errorf("figure %s = %.200q (trunc %v), summary has %.200v", k, v, trunc, j)
			bad++
		}
		if bad > 30 {
			t.Fatal("too many wrong figures")
		}
	}
	if nfig == 0 {
		t.Fatal("the page marks no figures")
	}
	// Completeness.
	var missing []string
	var walk func(v any, toks []string)
	walk = func(v any, toks []string) {
		if notFigure(toks) {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, append(append([]string(nil), toks...), k))
			}
		case []any:
			for i, c := range x {
				walk(c, append(append([]string(nil), toks...), strconv.Itoa(i)))
			}
		default:
			p := pointerOf(toks)
			// A column missing from the scored output: nothing was
			// measured; the page says so instead of showing zeros.
			if len(toks) == 3 && toks[0] == "quality" && toks[2] != "column" && toks[2] != "type" && toks[2] != "missing" {
				if m, _ := lookup(root, []string{"quality", toks[1], "missing"}); m == true {
					return
				}
			}
			if !claimed(claims, toks) {
				return
			}
			if !shown[p] {
				missing = append(missing, p)
			}
		}
	}
	walk(root, nil)
	sort.Strings(missing)
	if len(missing) > 0 {
		if len(missing) > 40 {
			missing = append(missing[:40], fmt.Sprintf("... and %d more", len(missing)-40))
		}
		t.Errorf("the page does not show %d figures of the summary:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	t.Logf("%d figures checked against the JSON (%d distinct keys), %d list claims", nfig, len(shown), nclaims)
}

func pointerOf(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// recorder is a testing.TB that keeps the failures of a check instead of
// failing the test, to show that the check catches what it should.
type recorder struct {
	testing.TB
	errs []string
}

type recorderStop struct{}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); panic(recorderStop{}) }
func (r *recorder) Fatal(a ...any)            { r.errs = append(r.errs, fmt.Sprint(a...)); panic(recorderStop{}) }
func (r *recorder) Error(a ...any)            { r.errs = append(r.errs, fmt.Sprint(a...)) }
func (r *recorder) run(f func(tb testing.TB)) []string {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(recorderStop); !ok {
				panic(p)
			}
		}
	}()
	f(r)
	return r.errs
}

// TestCheckFiguresCatches shows that the figure check fails on a wrong
// value, a key the schema does not have, a figure left out and a clipped
// string that is not a prefix, and that the page check fails on a request.
func TestCheckFiguresCatches(t *testing.T) {
	s, js := loadSummary(t)
	page := string(render(t, s))
	for _, tc := range []struct{ name, old, new, want string }{
		{"wrong value", `data-k="/rows" data-v="48213"`, `data-k="/rows" data-v="48214"`, "figure /rows"},
		{"wrong float", `data-k="/prediction/mean" data-v="0.31241876"`, `data-k="/prediction/mean" data-v="0.3124"`, "figure /prediction/mean"},
		{"unknown key", `data-k="/drift/columns/0/psi"`, `data-k="/drift/columns/0/pvalue"`, "no such value"},
		{"omitted but not zero", `data-k="/quality/1/out_of_range" data-v="0"`, `data-k="/quality/1/out_of_range" data-v="3"`, "omits it"},
		{"missing figure", `data-k="/reference/feature_rows"`, `data-x="/reference/feature_rows"`, "/reference/feature_rows"},
		{"bad clip", `data-k="/pipeline" data-v="churn-nightly"`, `data-k="/pipeline" data-v="churn-daily" data-trunc=""`, "figure /pipeline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(page, tc.old) {
				t.Fatalf("page lacks %s", tc.old)
			}
			bad := strings.Replace(page, tc.old, tc.new, 1)
			errs := (&recorder{TB: t}).run(func(tb testing.TB) { checkFigures(tb, bad, js) })
			if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
				t.Errorf("check did not report %q; it said %q", tc.want, errs)
			}
		})
	}
	errs := (&recorder{TB: t}).run(func(tb testing.TB) { checkFigures(tb, page, js) })
	if len(errs) > 0 {
		t.Errorf("the untouched page fails: %q", errs)
	}
	errs = (&recorder{TB: t}).run(func(tb testing.TB) {
		checkSelfContained(tb, strings.Replace(page, "</body>", `<img src="http://example.invalid/x.png"></body>`, 1))
	})
	if len(errs) == 0 {
		t.Error("checkSelfContained missed an <img src>")
	}
}

// ---- Chromium -----------------------------------------------------------------

// measurePage is served beside the report: it loads the report in a
// same-origin frame as wide as the screenshot's window and writes the
// report's height and each chart's box and drawn shapes (by the layout
// engine: getBoundingClientRect, getBBox) into its own DOM.
const measurePage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<style>body{margin:0}iframe{border:0;display:block;width:1280px;height:30000px}</style></head>
<body><iframe id="f" src="report.html"></iframe><pre id="out">pending</pre>
<script>
document.getElementById("f").addEventListener("load", function () {
  var d = this.contentDocument, out = {height: Math.ceil(d.documentElement.getBoundingClientRect().height), charts: []};
  d.querySelectorAll("svg[data-chart]").forEach(function (s) {
    var r = s.getBoundingClientRect(), drawn = 0;
    s.querySelectorAll("rect,circle,polyline,line,path").forEach(function (e) {
      var b = e.getBBox();
      if (b.width > 0 || b.height > 0) drawn++;
    });
    out.charts.push({id: s.id, kind: s.dataset.chart, x: r.left, y: r.top, w: r.width, h: r.height, drawn: drawn});
  });
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>`

type chartBox struct {
	ID    string  `json:"id"`
	Kind  string  `json:"kind"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Drawn int     `json:"drawn"`
}

// TestChromiumReport opens the realistic report in headless Chromium and
// checks that it makes no request at all, that its charts are drawn (in the
// layout and in the screenshot's pixels) and that every figure of the
// rendered DOM is the JSON summary's, with none missing.
func TestChromiumReport(t *testing.T) {
	b := browsertest.New(t)
	s, js := loadSummary(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	if err := os.WriteFile(report, render(t, s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "measure.html"), []byte(measurePage), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// 1. The layout, measured in a frame over http://127.0.0.1.
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	m, err := b.Load(ctx, srv.URL+"/measure.html", browsertest.Options{Allow: []string{host}, Width: 1280, Height: 800})
	if err != nil {
		t.Fatal(err)
	}
	if u := m.Unexpected(srv.URL+"/measure.html", srv.URL+"/report.html"); len(u) > 0 {
		t.Errorf("served over http, the report made requests: %v", u)
	}
	if len(m.Requests) != 2 {
		t.Errorf("the proxy saw %v, want the two pages' own requests", m.Requests)
	}
	out := regexp.MustCompile(`(?s)<pre id="out">(.*?)</pre>`).FindStringSubmatch(m.DOM)
	if out == nil {
		t.Fatalf("measure page: no result in %.2000s", m.DOM)
	}
	var layout struct {
		Height int        `json:"height"`
		Charts []chartBox `json:"charts"`
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(out[1])), &layout); err != nil {
		t.Fatalf("measure page: %v: %.500s", err, out[1])
	}
	kinds := map[string]int{}
	for _, c := range layout.Charts {
		kinds[c.Kind]++
		if c.W < 100 || c.H < 40 || c.Drawn < 3 {
			t.Errorf("chart %s is %.0f×%.0f with %d drawn shapes", c.ID, c.W, c.H, c.Drawn)
		}
	}
	for k, want := range map[string]int{"prediction": 1, "drift": 1, "trend": 1, "feature": len(s.Drift.Columns)} {
		if kinds[k] != want {
			t.Errorf("%d %s charts laid out, want %d", kinds[k], k, want)
		}
	}
	t.Logf("layout: page %d px high, %d charts", layout.Height, len(layout.Charts))

	// 2. The page as a reader opens it: file://, the whole page in the window.
	h := layout.Height + 16
	if h > 16000 {
		h = 16000
	}
	r, err := b.Load(ctx, "file://"+report, browsertest.Options{Screenshot: true, Width: 1280, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Requests) > 0 {
		t.Errorf("the report made %d requests: %v", len(r.Requests), r.Requests)
	}
	for _, q := range r.Background {
		t.Logf("Chromium's own (not the page's): %s", q)
	}

	// (b) charts in the DOM with drawn content ...
	svgs := regexp.MustCompile(`(?s)<svg [^>]*data-chart="([a-z]+)".*?</svg>`).FindAllStringSubmatch(r.DOM, -1)
	if len(svgs) != len(layout.Charts) {
		t.Errorf("%d charts in the DOM, %d laid out", len(svgs), len(layout.Charts))
	}
	for _, sv := range svgs {
		if n := len(regexp.MustCompile(`<(rect|circle|polyline) `).FindAllString(sv[0], -1)); n < 3 {
			t.Errorf("a %s chart in the DOM has %d shapes", sv[1], n)
		}
	}
	// ... and in the screenshot's pixels.
	img, err := png.Decode(bytes.NewReader(r.Screenshot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if img.Bounds().Dx() != 1280 || img.Bounds().Dy() != h {
		t.Errorf("screenshot is %v, want 1280×%d", img.Bounds(), h)
	}
	want := map[string][]string{
		"prediction": {colRef, colCur},
		"drift":      {colDrift, colOK},
		"trend":      {colTrend},
		"feature":    {colRef, colCur},
	}
	for _, c := range layout.Charts {
		for _, col := range want[c.Kind] {
			n := countColour(img, c, col)
			min := 150
			if c.Kind == "feature" {
				min = 20
			}
			if n < min {
				t.Errorf("chart %s: %d pixels of %s in its box, want at least %d", c.ID, n, col, min)
			}
		}
	}
	// KILN_REPORT_SCREENSHOT=file keeps the screenshot for a look; a
	// failed test keeps it in the temporary directory.
	if shot := os.Getenv("KILN_REPORT_SCREENSHOT"); shot != "" || t.Failed() {
		if shot == "" {
			shot = filepath.Join(os.TempDir(), "kiln-report-screenshot.png")
		}
		if err := os.WriteFile(shot, r.Screenshot, 0o644); err == nil {
			t.Logf("screenshot kept at %s", shot)
		}
	}

	// (c) the figures of the DOM Chromium built are the JSON's.
	checkFigures(t, r.DOM, js)
}

// countColour counts the pixels of box b within a small distance of the
// colour hex (anti-aliased edges do not count).
func countColour(img image.Image, b chartBox, hex string) int {
	v, _ := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	wr, wg, wb := int(v>>16), int(v>>8&0xff), int(v&0xff)
	n := 0
	r := image.Rect(int(b.X), int(b.Y), int(math.Ceil(b.X+b.W)), int(math.Ceil(b.Y+b.H))).Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if abs(int(cr>>8)-wr) <= 6 && abs(int(cg>>8)-wg) <= 6 && abs(int(cb>>8)-wb) <= 6 {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestChromiumPathological opens the biggest page the caps allow (hostile
// strings everywhere) in Chromium: it loads, draws its charts and makes no
// request.
func TestChromiumPathological(t *testing.T) {
	b := browsertest.New(t)
	page := render(t, pathological(2000, true))
	f := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(f, page, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := b.Load(context.Background(), "file://"+f, browsertest.Options{Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Requests) > 0 {
		t.Errorf("the page made %d requests: %v", len(r.Requests), r.Requests)
	}
	for _, kind := range []string{"prediction", "drift", "trend", "feature"} {
		if !strings.Contains(r.DOM, `data-chart="`+kind+`"`) {
			t.Errorf("no %s chart in the DOM", kind)
		}
	}
	if n := strings.Count(r.DOM, "data-k="); n < 10000 {
		t.Errorf("only %d figures in the DOM", n)
	}
	t.Logf("%d bytes of HTML, %d bytes of DOM", len(page), len(r.DOM))
}
