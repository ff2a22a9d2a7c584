package monitor

import (
	"strings"
	"testing"
	"time"
)

func window(rows, labeled int64, share float64, drifted []string, metrics map[string]float64) Window {
	w := Window{Model: "m", Rows: rows, Labeled: labeled, Features: 8, DriftShare: share, Metrics: metrics}
	for _, f := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		w.Drift = append(w.Drift, FeatureDrift{Name: f, Drifted: contains(drifted, f)})
	}
	return w
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestDecide runs sequences of windows through the rules and checks each
// decision's action and trigger.
func TestDecide(t *testing.T) {
	auc := &MetricRule{Name: "auc", Threshold: 0.75, Below: true, Windows: 3}
	good := map[string]float64{"auc": 0.82}
	bad := map[string]float64{"auc": 0.68}
	half := []string{"a", "b", "c", "d"}
	type step struct {
		w      Window
		action string
		trig   string
	}
	tests := []struct {
		name  string
		rules Rules
		steps []step
	}{
		{"drift on half the features triggers", Rules{Retrain: true, Cooldown: time.Hour}, []step{
			{window(1000, 0, 0.5, half, nil), ActionRetrain, TriggerDriftShare},
		}},
		{"one unimportant feature does not", Rules{Retrain: true}, []step{
			{window(1000, 0, 0.125, []string{"h"}, nil), ActionNone, ""},
		}},
		{"a watched feature triggers alone", Rules{Retrain: true, Features: []string{"h"}}, []step{
			{window(1000, 0, 0.125, []string{"h"}, nil), ActionRetrain, TriggerFeature},
		}},
		{"below the minimum sample nothing is decided", Rules{Retrain: true, Metric: auc}, []step{
			{window(50, 10, 1, half, nil), ActionInsufficient, ""},
		}},
		{"K consecutive bad windows retrain once", Rules{Retrain: true, Metric: auc, Cooldown: time.Hour}, []step{
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionRetrain, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionCooldown, TriggerPerformance},
		}},
		{"a good window breaks the run", Rules{Retrain: true, Metric: auc}, []step{
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, good), ActionNone, ""},
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
		}},
		{"windows without labels neither extend nor break the run", Rules{Retrain: true, Metric: auc}, []step{
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 20, 0, nil, nil), ActionNone, ""},
			{window(1000, 800, 0, nil, bad), ActionNone, TriggerPerformance},
			{window(1000, 800, 0, nil, bad), ActionRetrain, TriggerPerformance},
		}},
		{"performance beats drift", Rules{Retrain: true, Metric: auc}, []step{
			{window(1000, 800, 0.75, []string{"a", "b", "c", "d", "e", "f"}, good), ActionNone, ""},
		}},
		{"drift decides when labels are too few", Rules{Retrain: true, Metric: auc}, []step{
			{window(1000, 30, 0.75, []string{"a", "b", "c", "d", "e", "f"}, nil), ActionRetrain, TriggerDriftShare},
		}},
		{"retraining off raises alerts", Rules{Retrain: false}, []step{
			{window(1000, 0, 1, half, nil), ActionAlert, TriggerDriftShare},
		}},
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st State
			for i, s := range tt.steps {
				d := Decide(s.w, tt.rules, &st, now.Add(time.Duration(i)*time.Minute))
				if d.Action != s.action || d.Trigger != s.trig || d.Reason == "" {
					t.Errorf("window %d: %s/%s (%s), want %s/%s", i, d.Action, d.Trigger, d.Reason, s.action, s.trig)
				}
			}
		})
	}
}

func TestDecisionReasons(t *testing.T) {
	var st State
	r := Rules{Retrain: true, Metric: &MetricRule{Name: "logloss", Threshold: 0.5, Windows: 1}}
	d := Decide(window(1000, 900, 0.25, []string{"a", "b"}, map[string]float64{"logloss": 0.61}), r, &st, time.Now())
	if d.Action != ActionRetrain || !strings.Contains(d.Reason, "logloss 0.61 above 0.5 on 900 labelled rows") || !strings.Contains(d.Reason, "drift in a, b noted") {
		t.Errorf("decision %+v", d)
	}
	if d.Metric != "logloss" || d.Value != 0.61 || d.Threshold != 0.5 || st.Retrains != 1 {
		t.Errorf("decision figures %+v, state %+v", d, st)
	}
}
