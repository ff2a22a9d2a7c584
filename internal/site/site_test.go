package site

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/browsertest"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
)

func newTestSite(t *testing.T) (*httptest.Server, *registry.Registry, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := registry.Open(ctx, filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	s, err := New(Options{Registry: reg, UIURL: "http://ui.example:8233", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, reg, dir
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestSitePages(t *testing.T) {
	srv, reg, dir := newTestSite(t)
	ctx := context.Background()
	v, _, err := reg.Register(ctx, registry.Version{Model: "churn", BundleURI: "file:///b", Status: registry.StatusReady,
		Metrics: map[string]float64{"auc": 0.91}, RunID: "pipeline/churn/r1", Step: "register", Pipeline: "churn",
		Datasets: []registry.DatasetRef{{Role: registry.DatasetIngested, URI: "file:///d.parquet", SHA256: "abc", Rows: 5000}}})
	if err != nil {
		t.Fatal(err)
	}
	repDir := filepath.Join(dir, "reports", "2026-12-02")
	if err := os.MkdirAll(repDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(repDir, "report.html"), []byte("<html>the report</html>"), 0o644)
	os.WriteFile(filepath.Join(repDir, "summary.json"), []byte(`{"schema":"kiln.report/v1"}`), 0o644)
	for _, key := range []string{"2026-12-01", "2026-12-02"} {
		_, err := reg.PutReport(ctx, registry.ReportEntry{Pipeline: "nightly", Step: "report", RunKey: key, Schedule: "nightly",
			Model: "churn", Version: v.Version, WorkflowID: "pipeline/nightly/" + key, Trigger: "schedule",
			URI: artifact.FileURI(filepath.Join(dir, "reports", key)), Rows: 1000, Columns: 8, DriftedColumns: 5, DatasetDrift: key == "2026-12-02"})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := reg.RaiseAlert(ctx, registry.Alert{Schedule: "nightly", RunKey: "2026-12-03", Kind: registry.AlertMissingReport, Message: "no report", Due: time.Now()}); err != nil {
		t.Fatal(err)
	}

	code, body, hdr := get(t, srv.URL+"/reports")
	if code != 200 {
		t.Fatalf("GET /reports = %d", code)
	}
	for _, want := range []string{"Model churn", "/reports/nightly/report/2026-12-02", "/models/churn/1", "missing_report",
		"http://ui.example:8233/namespaces/default/workflows/pipeline%2Fnightly%2F2026-12-02", "5/8", "DRIFT"} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if i, j := strings.Index(body, "2026-12-02"), strings.Index(body, ">2026-12-01<"); i < 0 || j < 0 || i > j {
		t.Errorf("index does not list the newest date first")
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://fonts") {
		t.Error("the index page has a script or an external resource")
	}
	if code, body, _ := get(t, srv.URL+"/reports/nightly/report/2026-12-02"); code != 200 || body != "<html>the report</html>" {
		t.Errorf("report page = %d %q", code, body)
	}
	if code, body, _ := get(t, srv.URL+"/reports/nightly/report/2026-12-02/summary.json"); code != 200 || !strings.Contains(body, "kiln.report/v1") {
		t.Errorf("summary = %d %q", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/reports/nightly/report/2026-12-01"); code != 404 {
		t.Errorf("a report whose files are gone = %d, want 404", code)
	}
	if code, _, _ := get(t, srv.URL+"/reports/nightly/report/1999-01-01"); code != 404 {
		t.Errorf("an unknown report = %d, want 404", code)
	}
	code, body, _ = get(t, srv.URL+"/models/churn/1")
	if code != 200 || !strings.Contains(body, "file:///d.parquet") || !strings.Contains(body, "auc") || !strings.Contains(body, "2026-12-02") {
		t.Errorf("lineage = %d %s", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/models/churn/9"); code != 404 {
		t.Errorf("unknown version = %d, want 404", code)
	}
	code, body, _ = get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("metrics = %d", code)
	}
	for _, want := range []string{
		`kiln_schedule_missing_reports{schedule="nightly"} 1`,
		`kiln_schedule_alerts_total{kind="missing_report",schedule="nightly"} 1`,
		`kiln_report_dataset_drift{model="churn:1",pipeline="nightly",step="report"} 1`,
		`kiln_report_drift_share{model="churn:1",pipeline="nightly",step="report"} 0.625`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if _, err := reg.ResolveAlerts(ctx, "nightly", "2026-12-03"); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := get(t, srv.URL+"/metrics"); !strings.Contains(body, `kiln_schedule_missing_reports{schedule="nightly"} 0`) {
		t.Errorf("a resolved alert still counts as missing:\n%s", body)
	}
}

// TestChromiumLocalPage opens the reports index, a lineage page and a
// report page in headless Chromium: each renders and makes no request
// besides its own.
func TestChromiumLocalPage(t *testing.T) {
	b := browsertest.New(t)
	srv, reg, dir := newTestSite(t)
	ctx := context.Background()
	v, _, err := reg.Register(ctx, registry.Version{Model: "churn", BundleURI: "file:///b", Status: registry.StatusReady, RunID: "pipeline/churn/r1", Step: "register"})
	if err != nil {
		t.Fatal(err)
	}
	repDir := filepath.Join(dir, "reports", "2026-12-02")
	os.MkdirAll(repDir, 0o755)
	os.WriteFile(filepath.Join(repDir, "report.html"), []byte(`<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><h1>nightly</h1><svg width="10" height="10"><rect width="10" height="10"/></svg></body></html>`), 0o644)
	if _, err := reg.PutReport(ctx, registry.ReportEntry{Pipeline: "nightly", Step: "report", RunKey: "2026-12-02", Model: "churn", Version: v.Version,
		WorkflowID: "pipeline/nightly/2026-12-02", Trigger: "schedule", URI: artifact.FileURI(repDir), Rows: 10, Columns: 2, DriftedColumns: 1}); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{"/reports", "/models/churn/1", "/alerts", "/reports/nightly/report/2026-12-02"} {
		r, err := b.Load(ctx, srv.URL+path, browsertest.Options{Allow: []string{host}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.DOM, "</body>") || strings.Contains(r.DOM, "internal error") {
			t.Errorf("%s did not render: %.300s", path, r.DOM)
		}
		if u := r.Unexpected(srv.URL + path); len(u) != 0 {
			t.Errorf("%s made requests besides its own: %v", path, u)
		}
	}
}

func TestMonitorPages(t *testing.T) {
	srv, reg, _ := newTestSite(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	for i := 0; i < 5; i++ {
		end := t0.Add(time.Duration(i) * time.Minute)
		w := monitor.Window{Model: "churn", Version: 2, Start: end.Add(-time.Minute), End: end, Rows: 1000, Labeled: 800, Coverage: 0.8,
			Features: 8, DriftShare: 0.125, Metrics: map[string]float64{"auc": 0.85 - 0.05*float64(i)}, Health: &monitor.Health{P99Ms: 2.5}}
		data, _ := json.Marshal(w)
		action := "none"
		if i == 4 {
			action = "retrain"
		}
		if _, err := reg.RecordMonitorWindow(ctx, registry.MonitorWindow{Model: "churn", Start: w.Start, End: end, Version: 2, Rows: 1000, Labeled: 800, DriftShare: 0.125, Data: data},
			registry.MonitorDecision{Action: action, Trigger: "performance", Reason: fmt.Sprintf("auc %.2f", w.Metrics["auc"]), Metric: "auc", Value: w.Metrics["auc"], Threshold: 0.75}); err != nil {
			t.Fatal(err)
		}
	}
	code, body, _ := get(t, srv.URL+"/monitors")
	if code != 200 || !strings.Contains(body, "/monitors/churn") || !strings.Contains(body, "retrain") {
		t.Errorf("monitors index = %d:\n%s", code, body)
	}
	code, body, _ = get(t, srv.URL+"/monitors/churn")
	if code != 200 || strings.Count(body, "<svg") != 3 || !strings.Contains(body, "threshold 0.75") || !strings.Contains(body, "auc 0.65") {
		t.Errorf("monitor page = %d:\n%s", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/monitors/nothing"); code != 404 {
		t.Errorf("an unmonitored model = %d, want 404", code)
	}
	_, body, _ = get(t, srv.URL+"/metrics")
	for _, want := range []string{`kiln_monitor_metric{metric="auc",model="churn"} 0.6`, `kiln_monitor_decisions_total{action="retrain",model="churn"} 1`,
		`kiln_monitor_label_coverage{model="churn"} 0.8`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// In a real browser: the charts are drawn and nothing else is fetched.
	b := browsertest.New(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{"/monitors", "/monitors/churn"} {
		r, err := b.Load(ctx, srv.URL+path, browsertest.Options{Allow: []string{host}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.DOM, "</body>") || strings.Contains(r.DOM, "internal error") {
			t.Errorf("%s did not render: %.300s", path, r.DOM)
		}
		if path == "/monitors/churn" && strings.Count(r.DOM, "<svg") != 3 {
			t.Errorf("%s: %d charts in the DOM, want 3", path, strings.Count(r.DOM, "<svg"))
		}
		if u := r.Unexpected(srv.URL + path); len(u) != 0 {
			t.Errorf("%s made requests besides its own: %v", path, u)
		}
	}
}
