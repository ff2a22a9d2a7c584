package registry

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestMonitorWindowsAndDecisions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
		for i := 0; i < 4; i++ {
			end := t0.Add(time.Duration(i) * time.Minute)
			w := MonitorWindow{Model: "churn", Start: end.Add(-time.Minute), End: end, Version: 2, Rows: 1000, Labeled: int64(100 * i),
				DriftShare: 0.25, Data: json.RawMessage(`{"rows":1000}`)}
			action := "none"
			if i == 3 {
				action = "retrain"
			}
			d, err := r.RecordMonitorWindow(ctx, w, MonitorDecision{Action: action, Trigger: "performance", Reason: "auc below", Metric: "auc", Value: 0.7, Threshold: 0.75})
			if err != nil {
				t.Fatal(err)
			}
			if d.ID == 0 || !d.Window.Equal(end) {
				t.Fatalf("decision %+v", d)
			}
			// A retried record keeps the first decision.
			again, err := r.RecordMonitorWindow(ctx, w, MonitorDecision{Action: "other"})
			if err != nil || again.ID != d.ID || again.Action != action {
				t.Fatalf("retried record: %+v, %v", again, err)
			}
			if i == 3 {
				if err := r.SetDecisionWorkflow(ctx, d.ID, "pipeline/churn/retrain-1"); err != nil {
					t.Fatal(err)
				}
			}
		}
		ws, err := r.MonitorWindows(ctx, "churn", t0.Add(time.Minute), 0)
		if err != nil || len(ws) != 3 || ws[0].Labeled != 100 || string(ws[2].Data) != `{"rows":1000}` {
			t.Fatalf("windows %+v, %v", ws, err)
		}
		if ws, _ := r.MonitorWindows(ctx, "churn", time.Time{}, 2); len(ws) != 2 || ws[1].Labeled != 300 {
			t.Errorf("newest 2 windows %+v", ws)
		}
		ds, err := r.MonitorDecisions(ctx, "churn", time.Time{}, "retrain")
		if err != nil || len(ds) != 1 || ds[0].WorkflowID != "pipeline/churn/retrain-1" || ds[0].Metric != "auc" {
			t.Fatalf("retrain decisions %+v, %v", ds, err)
		}
		got, err := r.MonitorDecisionByID(ctx, ds[0].ID)
		if err != nil || got.Reason != "auc below" {
			t.Errorf("decision by ID %+v, %v", got, err)
		}
		if _, err := r.MonitorDecisionByID(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing decision: %v", err)
		}
		if all, _ := r.MonitorDecisions(ctx, "", time.Time{}); len(all) != 4 {
			t.Errorf("%d decisions, want 4", len(all))
		}
	})
}
