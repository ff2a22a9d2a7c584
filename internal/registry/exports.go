package registry

import (
	"context"
	"fmt"
	"time"
)

// Export is one standalone predictor `kiln export` wrote for a version.
type Export struct {
	// Model and Version name the exported version.
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// Target is "OS/ARCH", "wasm" or "c".
	Target string `json:"target"`
	// Format is "executable", "wasm" or "c".
	Format string `json:"format"`
	// Path is the written file (for C, the .c file), absolute.
	Path string `json:"path"`
	// SHA256 is the hex SHA-256 of the file (for C, of the .c and .h
	// concatenated); Bytes its size.
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	// By is who exported it; At when, in UTC.
	By string    `json:"exported_by"`
	At time.Time `json:"exported_at"`
}

// RecordExport records an export of a registered version.
func (r *Registry) RecordExport(ctx context.Context, e Export) error {
	if e.Model == "" || e.Version <= 0 || e.Target == "" || e.Path == "" || e.SHA256 == "" {
		return fmt.Errorf("record export: %w: model, version, target, path and sha256 are required", ErrInvalid)
	}
	if _, err := r.Get(ctx, e.Model, e.Version); err != nil {
		return fmt.Errorf("record export: %w", err)
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	if _, err := r.db.ExecContext(ctx, `INSERT INTO exports (model, version, target, format, path, sha256, bytes, exported_by, exported_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.Model, e.Version, e.Target, e.Format, e.Path, e.SHA256, e.Bytes, e.By, formatTime(e.At.UTC())); err != nil {
		return fmt.Errorf("record export of %s:%d: %w", e.Model, e.Version, err)
	}
	return nil
}

// Exports lists the exports of a model's version (every version when
// version is 0), oldest first.
func (r *Registry) Exports(ctx context.Context, model string, version int64) ([]Export, error) {
	q := `SELECT model, version, target, format, path, sha256, bytes, exported_by, exported_at FROM exports WHERE model = $1`
	args := []any{model}
	if version > 0 {
		q += ` AND version = $2`
		args = append(args, version)
	}
	q += ` ORDER BY exported_at, version`
	return queryAll(ctx, r.db, "list exports", func(s scanner) (Export, error) {
		var e Export
		var at string
		if err := s.Scan(&e.Model, &e.Version, &e.Target, &e.Format, &e.Path, &e.SHA256, &e.Bytes, &e.By, &at); err != nil {
			return e, fmt.Errorf("read export: %w", err)
		}
		t, err := parseTime(at)
		e.At = t
		return e, err
	}, q, args...)
}
