// Package monitor holds the monitor's judgement: what one window of served
// traffic measured (Window, with no row data), the rules a spec sets
// (Rules), and the decision taken after each window (Decide), retrain or
// not, with its reason. It is pure and deterministic, so the monitor
// workflow calls it directly; the measuring is done by activities, the
// recording by the registry (monitor_windows, monitor_decisions).
//
// The rules, in order:
//
//   - Minimum samples. Drift is judged only over at least MinRows served
//     rows; performance metrics exist only over at least MinLabels labelled
//     rows (below it the window shows no metric and decides nothing on
//     performance, as NannyML refuses small chunks).
//   - Performance beats drift. When a metric rule is set and the window has
//     enough labels, only performance decides: the metric beyond its
//     threshold for Windows consecutive windows (windows without enough
//     labels neither extend nor break the run) triggers a retrain; drift in
//     such a window is recorded but does not trigger.
//   - Drift, when performance cannot decide: the share of drifted features
//     at or above DriftShare, or any of the named Features drifted.
//   - One retrain at a time, Cooldown between them: a trigger within the
//     cooldown is recorded as such and does nothing.
package monitor

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Actions of a decision.
const (
	// ActionRetrain: a retrain was (to be) started.
	ActionRetrain = "retrain"
	// ActionNone: nothing crossed a rule.
	ActionNone = "none"
	// ActionCooldown: a rule triggered within the cooldown of the last
	// retrain; nothing was started.
	ActionCooldown = "cooldown"
	// ActionAlert: a rule triggered but retraining is off.
	ActionAlert = "alert"
	// ActionInsufficient: too few rows and labels to judge anything.
	ActionInsufficient = "insufficient"
)

// Triggers name which rule decided.
const (
	TriggerPerformance = "performance"
	TriggerDriftShare  = "drift_share"
	TriggerFeature     = "feature"
)

// Defaults of Rules.
const (
	DefaultMinRows    = 200
	DefaultMinLabels  = 500
	DefaultDriftShare = 0.5
	DefaultWindows    = 3
)

// FeatureDrift is one feature's drift test in a window.
type FeatureDrift struct {
	Name      string   `json:"name"`
	Method    string   `json:"method"`
	Statistic float64  `json:"statistic"`
	PValue    *float64 `json:"p_value,omitempty"`
	Threshold float64  `json:"threshold"`
	Drifted   bool     `json:"drifted"`
}

// LabelCounts says what happened to the labels considered in a window.
type LabelCounts struct {
	// Total labels read; Joined to a prediction; the others by reason.
	Total            int64 `json:"total"`
	Joined           int64 `json:"joined"`
	Unknown          int64 `json:"unknown"`
	Duplicate        int64 `json:"duplicate"`
	OutsideWindow    int64 `json:"outside_window"`
	BeforePrediction int64 `json:"before_prediction"`
}

// Health is the model servers' health over a window.
type Health struct {
	RequestRate float64 `json:"request_rate"` // requests per second
	ErrorRate   float64 `json:"error_rate"`   // errors per request
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	CPUSeconds  float64 `json:"cpu_seconds"` // CPU used by the server processes in the window
	RSSBytes    float64 `json:"rss_bytes"`   // resident memory at the window's end
}

// Window is what one monitor window measured.
type Window struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// Start and End bound the window of served rows [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Rows served in the window.
	Rows int64 `json:"rows"`
	// Features are the input features compared; DriftShare the share that
	// drifted; Drift each feature's test.
	Features     int            `json:"features"`
	DriftShare   float64        `json:"drift_share"`
	DatasetDrift bool           `json:"dataset_drift"`
	Drift        []FeatureDrift `json:"drift,omitempty"`
	// Prediction is the prediction distribution's test; PredictionMean
	// its mean.
	Prediction     *FeatureDrift `json:"prediction,omitempty"`
	PredictionMean float64       `json:"prediction_mean"`
	// PerformanceStart and PerformanceEnd bound the predictions whose
	// labels were joined (the window shifted by the label delay).
	PerformanceStart time.Time `json:"performance_start"`
	PerformanceEnd   time.Time `json:"performance_end"`
	// Labeled rows of the performance window and Coverage = Labeled / its rows.
	Labeled  int64   `json:"labeled"`
	Coverage float64 `json:"coverage"`
	// Metrics are the live metrics over the labelled rows; nil below the
	// minimum sample (Withheld says why).
	Metrics  map[string]float64 `json:"metrics,omitempty"`
	Withheld string             `json:"withheld,omitempty"`
	Labels   LabelCounts        `json:"labels"`
	Health   *Health            `json:"health,omitempty"`
	// Notes are what a reader should know (no traffic, no reference, ...).
	Notes []string `json:"notes,omitempty"`
}

// Drifted returns the names of the drifted features.
func (w Window) Drifted() []string {
	var out []string
	for _, f := range w.Drift {
		if f.Drifted {
			out = append(out, f.Name)
		}
	}
	return out
}

// MetricRule is a live-metric rule: the metric beyond Threshold for Windows
// consecutive windows triggers a retrain.
type MetricRule struct {
	// Name is a metric of the task: auc, logloss, accuracy, f1, ... for
	// binary models; rmse, mae, r2 for regression.
	Name string `json:"name"`
	// Threshold is the bound; Below says the metric is bad below it (auc,
	// accuracy, f1, r2); otherwise bad above it (logloss, rmse, mae).
	Threshold float64 `json:"threshold"`
	Below     bool    `json:"below"`
	// Windows is K, the consecutive windows needed.
	Windows int `json:"windows"`
}

// Breached reports whether value is beyond the rule's threshold.
func (m MetricRule) Breached(value float64) bool {
	if m.Below {
		return value < m.Threshold
	}
	return value > m.Threshold
}

// Rules are a monitor's judgement settings (from the spec's monitor step).
type Rules struct {
	MinRows    int      `json:"min_rows"`
	MinLabels  int      `json:"min_labels"`
	DriftShare float64  `json:"drift_share"`
	Features   []string `json:"features,omitempty"`
	// Metric is the performance rule; nil means none.
	Metric   *MetricRule   `json:"metric,omitempty"`
	Cooldown time.Duration `json:"cooldown"`
	// Retrain starts retrains; false only records alerts.
	Retrain bool `json:"retrain"`
}

// State is what judgement remembers between windows.
type State struct {
	// Breaches counts the consecutive windows with the metric beyond its
	// threshold.
	Breaches      int       `json:"breaches"`
	LastRetrainAt time.Time `json:"last_retrain_at,omitzero"`
	Retrains      int       `json:"retrains"`
	Windows       int       `json:"windows"`
}

// Decision is what was decided after a window, with its reason.
type Decision struct {
	Action  string `json:"action"`
	Trigger string `json:"trigger,omitempty"`
	Reason  string `json:"reason"`
	// Metric, Value and Threshold are the figure that decided, when one did.
	Metric    string  `json:"metric,omitempty"`
	Value     float64 `json:"value,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
}

// Triggered reports whether a rule triggered (whatever was done about it).
func (d Decision) Triggered() bool {
	return d.Action == ActionRetrain || d.Action == ActionCooldown || d.Action == ActionAlert
}

// Defaults fills the zero fields of r with the defaults.
func (r Rules) Defaults() Rules {
	if r.MinRows <= 0 {
		r.MinRows = DefaultMinRows
	}
	if r.MinLabels <= 0 {
		r.MinLabels = DefaultMinLabels
	}
	if r.DriftShare <= 0 {
		r.DriftShare = DefaultDriftShare
	}
	if r.Metric != nil && r.Metric.Windows <= 0 {
		m := *r.Metric
		m.Windows = DefaultWindows
		r.Metric = &m
	}
	return r
}

// Decide judges one window (see the package doc), updating st, and returns
// the decision; now is the decision's time (for the cooldown).
func Decide(w Window, r Rules, st *State, now time.Time) Decision {
	r = r.Defaults()
	st.Windows++
	trigger, d := judge(w, r, st)
	if !trigger {
		return d
	}
	switch {
	case !r.Retrain:
		d.Action = ActionAlert
		d.Reason += "; retraining is off"
	case !st.LastRetrainAt.IsZero() && now.Sub(st.LastRetrainAt) < r.Cooldown:
		d.Action = ActionCooldown
		d.Reason += fmt.Sprintf("; within the cooldown (last retrain %s ago, cooldown %s)", now.Sub(st.LastRetrainAt).Round(time.Second), r.Cooldown)
	default:
		d.Action = ActionRetrain
		st.LastRetrainAt = now
		st.Retrains++
		st.Breaches = 0
	}
	return d
}

// judge applies the rules to a window and says whether one triggered.
func judge(w Window, r Rules, st *State) (bool, Decision) {
	enoughRows := w.Rows >= int64(r.MinRows)
	drifted := w.Drifted()
	noteDrift := func(d *Decision) {
		if enoughRows && len(drifted) > 0 {
			d.Reason += fmt.Sprintf("; drift in %s noted, performance decides", strings.Join(drifted, ", "))
		}
	}
	var perf *Decision
	if m := r.Metric; m != nil {
		v, ok := w.Metrics[m.Name]
		switch {
		case w.Metrics == nil || !ok:
			// Too few labels: the run of breaches neither grows nor breaks.
		case m.Breached(v):
			st.Breaches++
			dir := "below"
			if !m.Below {
				dir = "above"
			}
			perf = &Decision{Action: ActionNone, Trigger: TriggerPerformance, Metric: m.Name, Value: v, Threshold: m.Threshold,
				Reason: fmt.Sprintf("%s %.4g %s %.4g on %d labelled rows (%d of %d windows in a row)", m.Name, v, dir, m.Threshold, w.Labeled, st.Breaches, m.Windows)}
			if st.Breaches >= m.Windows {
				noteDrift(perf)
				return true, *perf
			}
		default:
			st.Breaches = 0
			perf = &Decision{Action: ActionNone, Metric: m.Name, Value: v, Threshold: m.Threshold,
				Reason: fmt.Sprintf("%s %.4g within its threshold %.4g on %d labelled rows", m.Name, v, m.Threshold, w.Labeled)}
		}
	}
	var named []string
	for _, f := range r.Features {
		if slices.Contains(drifted, f) {
			named = append(named, f)
		}
	}
	if perf != nil {
		// Performance decides; drift is only noted.
		noteDrift(perf)
		return false, *perf
	}
	if !enoughRows {
		why := fmt.Sprintf("%d served rows, %d needed to judge drift", w.Rows, r.MinRows)
		if r.Metric != nil {
			why += fmt.Sprintf("; %d labelled rows, %d needed for %s", w.Labeled, r.MinLabels, r.Metric.Name)
		}
		return false, Decision{Action: ActionInsufficient, Reason: why}
	}
	if len(named) > 0 {
		return true, Decision{Action: ActionNone, Trigger: TriggerFeature, Metric: "drift", Value: w.DriftShare, Threshold: r.DriftShare,
			Reason: fmt.Sprintf("watched feature(s) %s drifted (%d of %d features drifted)", strings.Join(named, ", "), len(drifted), w.Features)}
	}
	if w.Features > 0 && w.DriftShare >= r.DriftShare {
		return true, Decision{Action: ActionNone, Trigger: TriggerDriftShare, Metric: "drift_share", Value: w.DriftShare, Threshold: r.DriftShare,
			Reason: fmt.Sprintf("%d of %d features drifted (share %.2f ≥ %.2f): %s", len(drifted), w.Features, w.DriftShare, r.DriftShare, strings.Join(drifted, ", "))}
	}
	reason := fmt.Sprintf("%d of %d features drifted (share %.2f < %.2f)", len(drifted), w.Features, w.DriftShare, r.DriftShare)
	if len(drifted) > 0 {
		reason += ": " + strings.Join(drifted, ", ")
	}
	if r.Metric != nil {
		reason += fmt.Sprintf("; %s not measured (%d labelled rows, %d needed)", r.Metric.Name, w.Labeled, r.MinLabels)
	}
	return false, Decision{Action: ActionNone, Reason: reason}
}
