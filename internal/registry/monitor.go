package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MonitorWindow is one recorded monitor window.
type MonitorWindow struct {
	Model   string    `json:"model"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Version int64     `json:"version"`
	Rows    int64     `json:"rows"`
	Labeled int64     `json:"labeled"`
	// DriftShare is the share of drifted features.
	DriftShare float64 `json:"drift_share"`
	// Data is the window's full measurement (JSON of monitor.Window).
	Data json.RawMessage `json:"data"`
}

// MonitorDecision is one decision taken after a monitor window.
type MonitorDecision struct {
	ID     int64     `json:"id"`
	Model  string    `json:"model"`
	Window time.Time `json:"window"`
	At     time.Time `json:"at"`
	// Action is "retrain", "none", "cooldown", "alert" or "insufficient";
	// Trigger the rule that decided ("performance", "drift_share",
	// "feature" or "").
	Action  string `json:"action"`
	Trigger string `json:"trigger,omitempty"`
	Reason  string `json:"reason"`
	// Metric, Value and Threshold are the figure that decided.
	Metric    string  `json:"metric,omitempty"`
	Value     float64 `json:"value,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// WorkflowID is the retrain the decision started, if any.
	WorkflowID string `json:"workflow_id,omitempty"`
}

// RecordMonitorWindow stores a window and the decision taken after it in
// one transaction, idempotently: recording the same model and window end
// again (a retried activity) keeps the first record and returns its
// decision.
func (r *Registry) RecordMonitorWindow(ctx context.Context, w MonitorWindow, d MonitorDecision) (MonitorDecision, error) {
	if w.Model == "" || w.End.IsZero() {
		return MonitorDecision{}, fmt.Errorf("record monitor window: %w: model and window end are required", ErrInvalid)
	}
	if len(w.Data) == 0 {
		w.Data = json.RawMessage("{}")
	}
	tx, err := r.writeTx(ctx)
	if err != nil {
		return MonitorDecision{}, fmt.Errorf("record monitor window: %w", err)
	}
	defer tx.Rollback()
	end := formatTime(w.End)
	if got, err := scanDecision(tx.QueryRowContext(ctx, `SELECT `+decisionColumns+` FROM monitor_decisions WHERE model = $1 AND window_end = $2`, w.Model, end)); err == nil {
		return got, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return MonitorDecision{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_windows (model, window_end, window_start, version, row_count, labeled, drift_share, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (model, window_end) DO NOTHING`,
		w.Model, end, formatTime(w.Start), w.Version, w.Rows, w.Labeled, w.DriftShare, string(w.Data)); err != nil {
		return MonitorDecision{}, fmt.Errorf("record monitor window: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'monitor_decisions' RETURNING value`).Scan(&d.ID); err != nil {
		return MonitorDecision{}, fmt.Errorf("record monitor decision: number: %w", err)
	}
	d.Model, d.Window, d.At = w.Model, w.End.UTC(), r.now().UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_decisions (id, model, window_end, decided_at, action, trigger_kind, reason, metric, value, threshold, workflow_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.ID, d.Model, end, formatTime(d.At), d.Action, d.Trigger, d.Reason, d.Metric, d.Value, d.Threshold, d.WorkflowID); err != nil {
		return MonitorDecision{}, fmt.Errorf("record monitor decision: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return MonitorDecision{}, fmt.Errorf("record monitor window: commit: %w", err)
	}
	return d, nil
}

// SetDecisionWorkflow records the retrain a decision started.
func (r *Registry) SetDecisionWorkflow(ctx context.Context, id int64, workflowID string) error {
	res, err := r.db.ExecContext(ctx, `UPDATE monitor_decisions SET workflow_id = $1 WHERE id = $2`, workflowID, id)
	if err != nil {
		return fmt.Errorf("decision %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("decision %d: %w", id, ErrNotFound)
	}
	return nil
}

// MonitorWindows lists a model's windows ending at or after since, oldest
// first (the newest limit when limit > 0).
func (r *Registry) MonitorWindows(ctx context.Context, model string, since time.Time, limit int) ([]MonitorWindow, error) {
	q := `SELECT model, window_end, window_start, version, row_count, labeled, drift_share, data FROM monitor_windows
WHERE model = $1 AND window_end >= $2 ORDER BY window_end DESC`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	out, err := queryAll(ctx, r.db, "monitor windows of "+model, scanWindow, q, model, formatTime(since))
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

func scanWindow(s scanner) (MonitorWindow, error) {
	var w MonitorWindow
	var end, start, data string
	err := s.Scan(&w.Model, &end, &start, &w.Version, &w.Rows, &w.Labeled, &w.DriftShare, &data)
	if err != nil {
		return w, err
	}
	if w.End, err = parseTime(end); err != nil {
		return w, err
	}
	if w.Start, err = parseTime(start); err != nil {
		return w, err
	}
	w.Data = json.RawMessage(data)
	return w, nil
}

const decisionColumns = `id, model, window_end, decided_at, action, trigger_kind, reason, metric, value, threshold, workflow_id`

// MonitorDecisions lists a model's decisions ("" for every model) taken
// after windows ending at or after since, oldest first; actions, when
// given, keeps only those actions.
func (r *Registry) MonitorDecisions(ctx context.Context, model string, since time.Time, actions ...string) ([]MonitorDecision, error) {
	q := `SELECT ` + decisionColumns + ` FROM monitor_decisions WHERE window_end >= $1`
	args := []any{formatTime(since)}
	if model != "" {
		args = append(args, model)
		q += fmt.Sprintf(" AND model = $%d", len(args))
	}
	if len(actions) > 0 {
		var ph []string
		for _, a := range actions {
			args = append(args, a)
			ph = append(ph, fmt.Sprintf("$%d", len(args)))
		}
		q += " AND action IN (" + strings.Join(ph, ", ") + ")"
	}
	q += " ORDER BY window_end, id"
	return queryAll(ctx, r.db, "monitor decisions", scanDecision, q, args...)
}

// MonitorDecisionByID returns one decision.
func (r *Registry) MonitorDecisionByID(ctx context.Context, id int64) (MonitorDecision, error) {
	d, err := scanDecision(r.db.QueryRowContext(ctx, `SELECT `+decisionColumns+` FROM monitor_decisions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("decision %d: %w", id, ErrNotFound)
	}
	return d, err
}

func scanDecision(s scanner) (MonitorDecision, error) {
	var d MonitorDecision
	var end, at string
	if err := s.Scan(&d.ID, &d.Model, &end, &at, &d.Action, &d.Trigger, &d.Reason, &d.Metric, &d.Value, &d.Threshold, &d.WorkflowID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, err
		}
		return d, fmt.Errorf("read monitor decision: %w", err)
	}
	var err error
	if d.Window, err = parseTime(end); err != nil {
		return d, err
	}
	if d.At, err = parseTime(at); err != nil {
		return d, err
	}
	return d, nil
}
