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

// ReportEntry indexes one batch report: which run made it, for which logical
// date, over which model, where its files are, and its headline figures.
type ReportEntry struct {
	// Pipeline, Step and RunKey identify the report: RunKey is the run's
	// logical date ("2026-12-02") or logical time ("2026-12-02T1430").
	Pipeline string `json:"pipeline"`
	Step     string `json:"step"`
	RunKey   string `json:"run_key"`
	// Schedule names the schedule whose run made the report; "" for runs
	// started by hand.
	Schedule string `json:"schedule,omitempty"`
	// Model and Version are the model version that scored most rows.
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// WorkflowID and RunID identify the Temporal run.
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	// Trigger is "schedule", "backfill", "trigger" or "cli".
	Trigger string `json:"trigger"`
	// URI is the report's directory: report.html and summary.json.
	URI string `json:"uri"`
	// Rows scored; Columns compared and how many drifted.
	Rows           int64 `json:"rows"`
	Columns        int   `json:"columns"`
	DriftedColumns int   `json:"drifted_columns"`
	// DatasetDrift and PredictionDrift are the report's two verdicts.
	DatasetDrift    bool `json:"dataset_drift"`
	PredictionDrift bool `json:"prediction_drift"`
	// TrendPoint is the report's point in later reports' trends (JSON), so
	// the trend is read without opening report files.
	TrendPoint json.RawMessage `json:"trend_point,omitempty"`
	// CreatedAt is when the report was indexed (replaced reports keep the
	// time of their latest run).
	CreatedAt time.Time `json:"created_at"`
}

// PutReport indexes a report, replacing the entry of the same pipeline,
// step and run key (re-running a date replaces its report).
func (r *Registry) PutReport(ctx context.Context, e ReportEntry) (ReportEntry, error) {
	if e.Pipeline == "" || e.Step == "" || e.RunKey == "" || e.URI == "" {
		return ReportEntry{}, fmt.Errorf("put report: %w: pipeline, step, run key and uri are required", ErrInvalid)
	}
	if len(e.TrendPoint) == 0 {
		e.TrendPoint = json.RawMessage("{}")
	}
	if !json.Valid(e.TrendPoint) {
		return ReportEntry{}, fmt.Errorf("put report: %w: trend point is not JSON", ErrInvalid)
	}
	e.CreatedAt = r.now().UTC()
	tx, err := r.writeTx(ctx)
	if err != nil {
		return ReportEntry{}, fmt.Errorf("put report: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO reports (pipeline, step, run_key, schedule, model, version, workflow_id, run_id,
    trigger_kind, uri, row_count, columns_compared, drifted_columns, dataset_drift, prediction_drift, trend_point, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (pipeline, step, run_key) DO UPDATE SET
    schedule = excluded.schedule, model = excluded.model, version = excluded.version,
    workflow_id = excluded.workflow_id, run_id = excluded.run_id, trigger_kind = excluded.trigger_kind,
    uri = excluded.uri, row_count = excluded.row_count, columns_compared = excluded.columns_compared,
    drifted_columns = excluded.drifted_columns, dataset_drift = excluded.dataset_drift,
    prediction_drift = excluded.prediction_drift, trend_point = excluded.trend_point, created_at = excluded.created_at`,
		e.Pipeline, e.Step, e.RunKey, e.Schedule, e.Model, e.Version, e.WorkflowID, e.RunID,
		e.Trigger, e.URI, e.Rows, e.Columns, e.DriftedColumns, boolInt(e.DatasetDrift), boolInt(e.PredictionDrift),
		string(e.TrendPoint), formatTime(e.CreatedAt))
	if err != nil {
		return ReportEntry{}, fmt.Errorf("put report %s/%s: %w", e.Pipeline, e.RunKey, err)
	}
	if err := tx.Commit(); err != nil {
		return ReportEntry{}, fmt.Errorf("put report: commit: %w", err)
	}
	return e, nil
}

// ReportFilter selects reports. Empty fields match everything.
type ReportFilter struct {
	Pipeline string
	Step     string
	Schedule string
	Model    string
	// From and To bound the run key, inclusively, by text order (run keys
	// are dates or date-times, which sort as text).
	From, To string
	// Before selects run keys strictly before it (the trend of a report).
	Before string
	// Limit keeps the newest Limit entries (by run key); 0 keeps all.
	Limit int
}

const reportColumns = `pipeline, step, run_key, schedule, model, version, workflow_id, run_id, trigger_kind, uri,
    row_count, columns_compared, drifted_columns, dataset_drift, prediction_drift, trend_point, created_at`

// Reports lists the reports f selects, oldest run key first (the newest
// f.Limit ones when a limit is given).
func (r *Registry) Reports(ctx context.Context, f ReportFilter) ([]ReportEntry, error) {
	var where []string
	var args []any
	add := func(cond, v string) {
		if v == "" {
			return
		}
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	add("pipeline = $%d", f.Pipeline)
	add("step = $%d", f.Step)
	add("schedule = $%d", f.Schedule)
	add("model = $%d", f.Model)
	add("run_key >= $%d", f.From)
	add("run_key <= $%d", f.To)
	add("run_key < $%d", f.Before)
	q := `SELECT ` + reportColumns + ` FROM reports`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY run_key DESC, pipeline, step"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	out, err := queryAll(ctx, r.db, "list reports", scanReport, q, args...)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

// Report returns the report of a pipeline step for a run key.
func (r *Registry) Report(ctx context.Context, pipeline, step, runKey string) (ReportEntry, error) {
	row := r.db.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM reports WHERE pipeline = $1 AND step = $2 AND run_key = $3`, pipeline, step, runKey)
	e, err := scanReport(row)
	if errors.Is(err, sql.ErrNoRows) {
		return ReportEntry{}, fmt.Errorf("report %s/%s for %s: %w", pipeline, step, runKey, ErrNotFound)
	}
	return e, err
}

type scanner interface{ Scan(dest ...any) error }

func scanReport(s scanner) (ReportEntry, error) {
	var e ReportEntry
	var dd, pd int64
	var trend, created string
	if err := s.Scan(&e.Pipeline, &e.Step, &e.RunKey, &e.Schedule, &e.Model, &e.Version, &e.WorkflowID, &e.RunID,
		&e.Trigger, &e.URI, &e.Rows, &e.Columns, &e.DriftedColumns, &dd, &pd, &trend, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return e, err
		}
		return e, fmt.Errorf("read report: %w", err)
	}
	e.DatasetDrift, e.PredictionDrift = dd != 0, pd != 0
	e.TrendPoint = json.RawMessage(trend)
	t, err := parseTime(created)
	if err != nil {
		return e, err
	}
	e.CreatedAt = t
	return e, nil
}

// Alert kinds.
const (
	// AlertMissingReport: a scheduled run's report did not exist by its
	// deadline.
	AlertMissingReport = "missing_report"
)

// Alert is a judgement raised without a run, such as a missing report.
type Alert struct {
	ID       int64  `json:"id"`
	Schedule string `json:"schedule"`
	// RunKey is the logical date (or time) the alert is about.
	RunKey  string `json:"run_key"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Due is the deadline that passed; Raised when the alert was recorded.
	Due    time.Time `json:"due"`
	Raised time.Time `json:"raised"`
	// Resolved is when the missing thing appeared after all (zero while open).
	Resolved time.Time `json:"resolved,omitempty"`
	// Delivery records the webhook delivery: "" (no webhook), "delivered
	// (HTTP 200)" or the error.
	Delivery string `json:"delivery,omitempty"`
}

// RaiseAlert records an alert once per (schedule, run key, kind): raising it
// again returns the recorded alert with created false.
func (r *Registry) RaiseAlert(ctx context.Context, a Alert) (Alert, bool, error) {
	if a.Schedule == "" || a.RunKey == "" || a.Kind == "" {
		return Alert{}, false, fmt.Errorf("raise alert: %w: schedule, run key and kind are required", ErrInvalid)
	}
	tx, err := r.writeTx(ctx)
	if err != nil {
		return Alert{}, false, fmt.Errorf("raise alert: %w", err)
	}
	defer tx.Rollback()
	if got, err := getAlert(ctx, tx, a.Schedule, a.RunKey, a.Kind); err == nil {
		return got, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Alert{}, false, err
	}
	if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'alerts' RETURNING value`).Scan(&a.ID); err != nil {
		return Alert{}, false, fmt.Errorf("raise alert: number: %w", err)
	}
	a.Raised = r.now().UTC()
	a.Resolved, a.Delivery = time.Time{}, ""
	if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, schedule, run_key, kind, message, due_at, raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.ID, a.Schedule, a.RunKey, a.Kind, a.Message, formatTime(a.Due), formatTime(a.Raised)); err != nil {
		return Alert{}, false, fmt.Errorf("raise alert: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Alert{}, false, fmt.Errorf("raise alert: commit: %w", err)
	}
	return a, true, nil
}

// SetAlertDelivery records how the alert's webhook delivery went.
func (r *Registry) SetAlertDelivery(ctx context.Context, id int64, delivery string) error {
	res, err := r.db.ExecContext(ctx, `UPDATE alerts SET delivery = $1 WHERE id = $2`, delivery, id)
	if err != nil {
		return fmt.Errorf("alert %d: record delivery: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	return nil
}

// ResolveAlerts marks the open alerts of a schedule's run key resolved (its
// report arrived after all) and returns how many it resolved.
func (r *Registry) ResolveAlerts(ctx context.Context, schedule, runKey string) (int, error) {
	res, err := r.db.ExecContext(ctx, `UPDATE alerts SET resolved_at = $1 WHERE schedule = $2 AND run_key = $3 AND resolved_at = ''`,
		formatTime(r.now()), schedule, runKey)
	if err != nil {
		return 0, fmt.Errorf("resolve alerts of %s %s: %w", schedule, runKey, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Alerts lists a schedule's alerts ("" for every schedule), newest first,
// at most limit (0: all); open only when openOnly.
func (r *Registry) Alerts(ctx context.Context, schedule string, openOnly bool, limit int) ([]Alert, error) {
	q := `SELECT id, schedule, run_key, kind, message, due_at, raised_at, resolved_at, delivery FROM alerts`
	var where []string
	var args []any
	if schedule != "" {
		args = append(args, schedule)
		where = append(where, "schedule = $1")
	}
	if openOnly {
		where = append(where, "resolved_at = ''")
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return queryAll(ctx, r.db, "list alerts", scanAlert, q, args...)
}

func getAlert(ctx context.Context, q querier, schedule, runKey, kind string) (Alert, error) {
	a, err := scanAlert(q.QueryRowContext(ctx, `SELECT id, schedule, run_key, kind, message, due_at, raised_at, resolved_at, delivery
FROM alerts WHERE schedule = $1 AND run_key = $2 AND kind = $3`, schedule, runKey, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return Alert{}, fmt.Errorf("alert %s %s %s: %w", schedule, runKey, kind, ErrNotFound)
	}
	return a, err
}

func scanAlert(s scanner) (Alert, error) {
	var a Alert
	var due, raised, resolved string
	if err := s.Scan(&a.ID, &a.Schedule, &a.RunKey, &a.Kind, &a.Message, &due, &raised, &resolved, &a.Delivery); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return a, err
		}
		return a, fmt.Errorf("read alert: %w", err)
	}
	var err error
	if a.Due, err = parseTime(due); err != nil {
		return a, err
	}
	if a.Raised, err = parseTime(raised); err != nil {
		return a, err
	}
	if resolved != "" {
		if a.Resolved, err = parseTime(resolved); err != nil {
			return a, err
		}
	}
	return a, nil
}

// Backfill is a recorded `kiln schedules backfill` request.
type Backfill struct {
	ID       int64  `json:"id"`
	Schedule string `json:"schedule"`
	// RunKeys are the logical dates (or times) requested.
	RunKeys []string `json:"run_keys"`
	// Nominals are the nominal times Temporal was asked to run, one per run key.
	Nominals []time.Time `json:"nominals"`
	// Reprocess is "missing", "failed" or "all".
	Reprocess   string    `json:"reprocess"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
}

// RecordBackfill stores a backfill request before it is sent to Temporal,
// so that the runs it starts can find it (see BackfillFor).
func (r *Registry) RecordBackfill(ctx context.Context, b Backfill) (Backfill, error) {
	if b.Schedule == "" || len(b.Nominals) == 0 || len(b.RunKeys) != len(b.Nominals) {
		return Backfill{}, fmt.Errorf("record backfill: %w: a schedule and one nominal time per run key are required", ErrInvalid)
	}
	keys, err := json.Marshal(b.RunKeys)
	if err != nil {
		return Backfill{}, err
	}
	tx, err := r.writeTx(ctx)
	if err != nil {
		return Backfill{}, fmt.Errorf("record backfill: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'backfills' RETURNING value`).Scan(&b.ID); err != nil {
		return Backfill{}, fmt.Errorf("record backfill: number: %w", err)
	}
	b.RequestedAt = r.now().UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO backfills (id, schedule, run_keys, reprocess, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		b.ID, b.Schedule, string(keys), b.Reprocess, b.RequestedBy, formatTime(b.RequestedAt)); err != nil {
		return Backfill{}, fmt.Errorf("record backfill: %w", err)
	}
	for _, n := range b.Nominals {
		if _, err := tx.ExecContext(ctx, `INSERT INTO backfill_runs (schedule, nominal, backfill_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			b.Schedule, formatTime(n), b.ID); err != nil {
			return Backfill{}, fmt.Errorf("record backfill: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Backfill{}, fmt.Errorf("record backfill: commit: %w", err)
	}
	return b, nil
}

// BackfillFor returns the newest backfill of the schedule that asked for the
// nominal time and was requested no later than startedBefore (a run started
// after the request), and false when there is none: the run is then a
// regular one.
func (r *Registry) BackfillFor(ctx context.Context, schedule string, nominal, startedBefore time.Time) (Backfill, bool, error) {
	row := r.db.QueryRowContext(ctx, `SELECT b.id, b.schedule, b.run_keys, b.reprocess, b.requested_by, b.requested_at
FROM backfill_runs n JOIN backfills b ON b.id = n.backfill_id
WHERE n.schedule = $1 AND n.nominal = $2 AND b.requested_at <= $3
ORDER BY b.id DESC LIMIT 1`, schedule, formatTime(nominal), formatTime(startedBefore))
	var b Backfill
	var keys, at string
	err := row.Scan(&b.ID, &b.Schedule, &keys, &b.Reprocess, &b.RequestedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Backfill{}, false, nil
	}
	if err != nil {
		return Backfill{}, false, fmt.Errorf("backfill for %s at %s: %w", schedule, nominal.Format(time.RFC3339), err)
	}
	if err := json.Unmarshal([]byte(keys), &b.RunKeys); err != nil {
		return Backfill{}, false, fmt.Errorf("backfill %d: run keys: %w", b.ID, err)
	}
	if b.RequestedAt, err = parseTime(at); err != nil {
		return Backfill{}, false, err
	}
	return b, true, nil
}
