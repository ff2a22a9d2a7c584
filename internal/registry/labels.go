package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// LabelColumns names the columns a labels file was read with.
type LabelColumns struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Time  string `json:"time"`
}

// LabelBatch is one pushed labels file: its rows, normalised to a Parquet
// file of (id, label, time), are stored content-addressed at URI.
type LabelBatch struct {
	// ID numbers batches in push order (over all models).
	ID    int64  `json:"id"`
	Model string `json:"model"`
	// SHA256 is the hex SHA-256 of the normalised Parquet file at URI.
	SHA256 string `json:"sha256"`
	URI    string `json:"uri"`
	// Rows is the number of labels in the batch; Rejected the number of the
	// pushed file's rows that were not accepted.
	Rows     int64 `json:"rows"`
	Rejected int64 `json:"rejected"`
	// Source is the pushed file's name (a path or an object URL) and
	// SourceSHA256 the SHA-256 of its bytes ("" when unknown).
	Source       string       `json:"source"`
	SourceSHA256 string       `json:"source_sha256,omitempty"`
	Columns      LabelColumns `json:"columns"`
	PushedBy     string       `json:"pushed_by"`
	PushedAt     time.Time    `json:"pushed_at"`
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

const labelBatchColumns = `id, model, sha256, uri, row_count, rejected, source, source_sha256,
    id_column, label_column, time_column, pushed_by, pushed_at`

// AddLabelBatch records a label batch of an existing model and returns it
// with its ID (and PushedAt, if zero, set to now) and true. It is
// idempotent: when the model already has a batch with the same SHA256, or
// one pushed from the same source bytes (SourceSHA256) read with the same
// columns, it returns that batch and false, also under concurrent pushes.
func (r *Registry) AddLabelBatch(ctx context.Context, b LabelBatch) (LabelBatch, bool, error) {
	if err := validName("model", b.Model); err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch: %w", err)
	}
	if !sha256RE.MatchString(b.SHA256) {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w: sha256 %q is not 64 lower-case hex digits", b.Model, ErrInvalid, b.SHA256)
	}
	if b.SourceSHA256 != "" && !sha256RE.MatchString(b.SourceSHA256) {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w: source sha256 %q is not 64 lower-case hex digits", b.Model, ErrInvalid, b.SourceSHA256)
	}
	if b.URI == "" {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w: empty URI", b.Model, ErrInvalid)
	}
	if b.Rows < 0 || b.Rejected < 0 {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w: negative row count", b.Model, ErrInvalid)
	}
	if b.PushedAt.IsZero() {
		b.PushedAt = r.now()
	}
	b.PushedAt = b.PushedAt.UTC()
	tx, err := r.writeTx(ctx)
	if err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w", b.Model, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, b.Model); err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch: %w", err)
	}
	if got, ok, err := findLabelBatch(ctx, tx, b); err != nil || ok {
		return got, false, err
	}
	if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'label_batches' RETURNING value`).Scan(&b.ID); err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: number: %w", b.Model, err)
	}
	// DO NOTHING without a conflict target covers the primary key and the
	// source index: a concurrent push of the same batch that committed
	// first (PostgreSQL, READ COMMITTED) makes this insert a no-op.
	res, err := tx.ExecContext(ctx, `INSERT INTO label_batches (`+labelBatchColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING`,
		b.ID, b.Model, b.SHA256, b.URI, b.Rows, b.Rejected, b.Source, b.SourceSHA256,
		b.Columns.ID, b.Columns.Label, b.Columns.Time, b.PushedBy, formatTime(b.PushedAt))
	if err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w", b.Model, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: %w", b.Model, err)
	} else if n == 0 {
		tx.Rollback()
		got, ok, err := findLabelBatch(ctx, r.db, b)
		if err == nil && !ok {
			err = fmt.Errorf("add label batch of %s: conflicting batch vanished", b.Model)
		}
		return got, false, err
	}
	if err := tx.Commit(); err != nil {
		return LabelBatch{}, false, fmt.Errorf("add label batch of %s: commit: %w", b.Model, err)
	}
	return b, true, nil
}

// findLabelBatch returns the batch of b.Model with b's SHA256, or else the
// one pushed from b's source bytes with b's columns.
func findLabelBatch(ctx context.Context, q querier, b LabelBatch) (LabelBatch, bool, error) {
	got, err := scanLabelBatch(q.QueryRowContext(ctx, `SELECT `+labelBatchColumns+` FROM label_batches WHERE model = $1 AND sha256 = $2`, b.Model, b.SHA256))
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return LabelBatch{}, false, err
	}
	if b.SourceSHA256 == "" {
		return LabelBatch{}, false, nil
	}
	return labelBatchBySource(ctx, q, b.Model, b.SourceSHA256, b.Columns)
}

func labelBatchBySource(ctx context.Context, q querier, model, sourceSHA256 string, cols LabelColumns) (LabelBatch, bool, error) {
	got, err := scanLabelBatch(q.QueryRowContext(ctx, `SELECT `+labelBatchColumns+` FROM label_batches
WHERE model = $1 AND source_sha256 = $2 AND id_column = $3 AND label_column = $4 AND time_column = $5`,
		model, sourceSHA256, cols.ID, cols.Label, cols.Time))
	if errors.Is(err, sql.ErrNoRows) {
		return LabelBatch{}, false, nil
	}
	if err != nil {
		return LabelBatch{}, false, err
	}
	return got, true, nil
}

// LabelBatchBySource returns the model's batch pushed from a file whose bytes
// have the SHA-256 sourceSHA256, read with the columns cols, and whether
// there is one: a cheap "already pushed?" check before reading a file.
func (r *Registry) LabelBatchBySource(ctx context.Context, model, sourceSHA256 string, cols LabelColumns) (LabelBatch, bool, error) {
	if sourceSHA256 == "" {
		return LabelBatch{}, false, nil
	}
	b, ok, err := labelBatchBySource(ctx, r.db, model, sourceSHA256, cols)
	if err != nil {
		return LabelBatch{}, false, fmt.Errorf("label batch of %s from source %.12s: %w", model, sourceSHA256, err)
	}
	return b, ok, nil
}

// LabelBatch returns the model's batch whose normalised file has the
// SHA-256 sha; ErrNotFound when there is none.
func (r *Registry) LabelBatch(ctx context.Context, model, sha string) (LabelBatch, error) {
	b, err := scanLabelBatch(r.db.QueryRowContext(ctx, `SELECT `+labelBatchColumns+` FROM label_batches WHERE model = $1 AND sha256 = $2`, model, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return LabelBatch{}, fmt.Errorf("label batch %s of %s: %w", sha, model, ErrNotFound)
	}
	return b, err
}

// LabelBatches lists the model's batches pushed at or after since (the zero
// time: all), in push order (by ID). A model that does not exist is an
// ErrNotFound error; a model without batches gives an empty list.
func (r *Registry) LabelBatches(ctx context.Context, model string, since time.Time) ([]LabelBatch, error) {
	tx, err := r.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("list label batches of %s: %w", model, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, model); err != nil {
		return nil, fmt.Errorf("list label batches: %w", err)
	}
	q := `SELECT ` + labelBatchColumns + ` FROM label_batches WHERE model = $1`
	args := []any{model}
	if !since.IsZero() {
		q += ` AND pushed_at >= $2`
		args = append(args, formatTime(since))
	}
	return queryAll(ctx, tx, "list label batches of "+model, scanLabelBatch, q+` ORDER BY id`, args...)
}

func scanLabelBatch(s scanner) (LabelBatch, error) {
	var b LabelBatch
	var at string
	if err := s.Scan(&b.ID, &b.Model, &b.SHA256, &b.URI, &b.Rows, &b.Rejected, &b.Source, &b.SourceSHA256,
		&b.Columns.ID, &b.Columns.Label, &b.Columns.Time, &b.PushedBy, &at); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return b, err
		}
		return b, fmt.Errorf("read label batch: %w", err)
	}
	t, err := parseTime(at)
	if err != nil {
		return b, err
	}
	b.PushedAt = t
	return b, nil
}
