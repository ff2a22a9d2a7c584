package registry

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestReportsIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		put := func(key, wf string, drifted int) ReportEntry {
			t.Helper()
			e, err := r.PutReport(ctx, ReportEntry{
				Pipeline: "nightly", Step: "report", RunKey: key, Schedule: "nightly", Model: "churn", Version: 3,
				WorkflowID: wf, Trigger: "schedule", URI: "file:///r/" + key, Rows: 100, Columns: 8, DriftedColumns: drifted,
				DatasetDrift: drifted >= 4, TrendPoint: json.RawMessage(`{"rows":100}`),
			})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		for i, key := range []string{"2026-12-01", "2026-11-30", "2026-12-03", "2026-12-02"} {
			put(key, "pipeline/nightly/"+key, i)
		}
		// Re-running a date replaces its entry.
		put("2026-12-02", "pipeline/nightly/2026-12-02#2", 5)

		all, err := r.Reports(ctx, ReportFilter{Pipeline: "nightly"})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range all {
			keys = append(keys, e.RunKey)
		}
		if got, want := keys, []string{"2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"}; !equalStrings(got, want) {
			t.Fatalf("run keys = %v, want %v", got, want)
		}
		got, err := r.Report(ctx, "nightly", "report", "2026-12-02")
		if err != nil {
			t.Fatal(err)
		}
		if got.WorkflowID != "pipeline/nightly/2026-12-02#2" || got.DriftedColumns != 5 || !got.DatasetDrift || string(got.TrendPoint) != `{"rows":100}` {
			t.Errorf("replaced entry = %+v", got)
		}
		trend, err := r.Reports(ctx, ReportFilter{Pipeline: "nightly", Before: "2026-12-03", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(trend) != 2 || trend[0].RunKey != "2026-12-01" || trend[1].RunKey != "2026-12-02" {
			t.Errorf("trend before 2026-12-03, limit 2 = %+v", trend)
		}
		span, err := r.Reports(ctx, ReportFilter{Model: "churn", From: "2026-12-01", To: "2026-12-02"})
		if err != nil {
			t.Fatal(err)
		}
		if len(span) != 2 {
			t.Errorf("reports from 2026-12-01 to 2026-12-02 = %d, want 2", len(span))
		}
		if _, err := r.Report(ctx, "nightly", "report", "2020-01-01"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing report: err = %v, want ErrNotFound", err)
		}
		if _, err := r.PutReport(ctx, ReportEntry{Pipeline: "x"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("incomplete entry: err = %v, want ErrInvalid", err)
		}
	})
}

func TestAlerts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		due := time.Date(2026, 12, 3, 7, 30, 0, 0, time.UTC)
		a, created, err := r.RaiseAlert(ctx, Alert{Schedule: "nightly", RunKey: "2026-12-02", Kind: AlertMissingReport, Message: "no report", Due: due})
		if err != nil || !created || a.ID == 0 {
			t.Fatalf("RaiseAlert = %+v, %v, %v", a, created, err)
		}
		again, created, err := r.RaiseAlert(ctx, Alert{Schedule: "nightly", RunKey: "2026-12-02", Kind: AlertMissingReport, Message: "other"})
		if err != nil || created || again.ID != a.ID || again.Message != "no report" {
			t.Fatalf("raising again = %+v, created %v, %v; want the first alert", again, created, err)
		}
		if _, _, err := r.RaiseAlert(ctx, Alert{Schedule: "nightly", RunKey: "2026-12-03", Kind: AlertMissingReport, Due: due.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := r.SetAlertDelivery(ctx, a.ID, "delivered (HTTP 200)"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetAlertDelivery(ctx, 999, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delivery of a missing alert: err = %v", err)
		}
		n, err := r.ResolveAlerts(ctx, "nightly", "2026-12-02")
		if err != nil || n != 1 {
			t.Fatalf("ResolveAlerts = %d, %v", n, err)
		}
		open, err := r.Alerts(ctx, "nightly", true, 0)
		if err != nil || len(open) != 1 || open[0].RunKey != "2026-12-03" {
			t.Fatalf("open alerts = %+v, %v", open, err)
		}
		all, err := r.Alerts(ctx, "", false, 0)
		if err != nil || len(all) != 2 {
			t.Fatalf("all alerts = %+v, %v", all, err)
		}
		first := all[1]
		if first.Delivery != "delivered (HTTP 200)" || first.Resolved.IsZero() || !first.Due.Equal(due) {
			t.Errorf("first alert = %+v", first)
		}
	})
}

func TestBackfills(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		clock := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		r.now = func() time.Time { return clock }
		n1 := time.Date(2026, 11, 29, 1, 30, 0, 0, time.UTC)
		n2 := n1.Add(24 * time.Hour)
		bf, err := r.RecordBackfill(ctx, Backfill{Schedule: "nightly", RunKeys: []string{"2026-11-28", "2026-11-29"}, Nominals: []time.Time{n1, n2}, Reprocess: "missing", RequestedBy: "ana"})
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := r.BackfillFor(ctx, "nightly", n2, clock.Add(time.Second))
		if err != nil || !ok || got.ID != bf.ID || got.Reprocess != "missing" || len(got.RunKeys) != 2 {
			t.Fatalf("BackfillFor = %+v, %v, %v", got, ok, err)
		}
		// A run that started before the request is not the backfill's.
		if _, ok, _ := r.BackfillFor(ctx, "nightly", n2, clock.Add(-time.Hour)); ok {
			t.Error("a run started before the backfill request was attributed to it")
		}
		if _, ok, _ := r.BackfillFor(ctx, "nightly", n2.Add(24*time.Hour), clock.Add(time.Hour)); ok {
			t.Error("a nominal time the backfill did not ask for was attributed to it")
		}
		if _, ok, _ := r.BackfillFor(ctx, "other", n1, clock.Add(time.Hour)); ok {
			t.Error("another schedule's run was attributed to the backfill")
		}
		if _, err := r.RecordBackfill(ctx, Backfill{Schedule: "nightly", RunKeys: []string{"a"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("backfill without nominal times: err = %v", err)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
