package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// AliasMove asks to point an alias at a version (SetAlias) or to remove it
// (RemoveAlias), optionally only if it currently points where the caller
// expects (compare-and-swap).
type AliasMove struct {
	// Model and Alias name the alias.
	Model string
	Alias string
	// To is the version to point at; RemoveAlias ignores it.
	To int64
	// From is the version the alias is expected to point at now: nil skips
	// the check, a pointer to 0 expects the alias not to exist.
	From *int64
	// Actor, Reason and RunID are recorded in the alias history.
	Actor  string
	Reason string
	RunID  string
}

// AliasEvent is one recorded alias move.
type AliasEvent struct {
	// ID orders events; it is 0 for a no-op that recorded nothing.
	ID int64 `json:"id"`
	// Model and Alias name the alias.
	Model string `json:"model"`
	Alias string `json:"alias"`
	// From and To are the versions before and after; 0 means none.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Actor, Reason and RunID are as given in the AliasMove.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	RunID  string `json:"run_id,omitempty"`
	// At is when the move happened, UTC. For a no-op it is when the alias
	// last changed (zero if it never existed).
	At time.Time `json:"at"`
	// Noop reports that the alias was already in the requested state, so
	// nothing was changed or recorded.
	Noop bool `json:"noop,omitempty"`
}

// Alias returns the version an alias points to, and false if the alias is not
// set; errors.Is(err, ErrNotFound) when the model does not exist.
func (r *Registry) Alias(ctx context.Context, model, alias string) (int64, bool, error) {
	if err := validateAlias(model, alias); err != nil {
		return 0, false, fmt.Errorf("alias: %w", err)
	}
	tx, err := r.readTx(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("alias %s@%s: %w", model, alias, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, model); err != nil {
		return 0, false, fmt.Errorf("alias %s@%s: %w", model, alias, err)
	}
	cur, _, err := currentAlias(ctx, tx, model, alias)
	if err != nil {
		return 0, false, err
	}
	return cur, cur != 0, nil
}

// SetAlias points m.Alias of m.Model at version m.To, which must exist
// (ErrNotFound otherwise) and must not be rejected (ErrRejected otherwise). If m.From is not nil and the alias does not
// currently point at *m.From, nothing changes and the error wraps
// ErrConflict. If the alias already points at m.To, nothing is recorded and
// the returned event has Noop set; otherwise the move is recorded in the
// alias history and returned.
func (r *Registry) SetAlias(ctx context.Context, m AliasMove) (AliasEvent, error) {
	if err := validateAlias(m.Model, m.Alias); err != nil {
		return AliasEvent{}, fmt.Errorf("set alias: %w", err)
	}
	if m.To < 1 {
		return AliasEvent{}, fmt.Errorf("set alias %s@%s: %w: target version %d must be >= 1", m.Model, m.Alias, ErrInvalid, m.To)
	}
	return r.moveAlias(ctx, m, m.To)
}

// RemoveAlias deletes m.Alias of m.Model, with the compare-and-swap check of
// SetAlias on m.From; m.To is ignored. Removing an alias that is not set is a
// no-op.
func (r *Registry) RemoveAlias(ctx context.Context, m AliasMove) (AliasEvent, error) {
	if err := validateAlias(m.Model, m.Alias); err != nil {
		return AliasEvent{}, fmt.Errorf("remove alias: %w", err)
	}
	return r.moveAlias(ctx, m, 0)
}

// moveAlias points the alias at version to, or removes it when to is 0.
func (r *Registry) moveAlias(ctx context.Context, m AliasMove, to int64) (AliasEvent, error) {
	op := fmt.Sprintf("move alias %s@%s to %s", m.Model, m.Alias, versionText(to))
	if to == 0 {
		op = fmt.Sprintf("remove alias %s@%s", m.Model, m.Alias)
	}
	tx, err := r.writeTx(ctx)
	if err != nil {
		return AliasEvent{}, fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, m.Model); err != nil {
		return AliasEvent{}, fmt.Errorf("%s: %w", op, err)
	}
	if to != 0 {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM versions WHERE model = $1 AND version = $2`, m.Model, to).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return AliasEvent{}, fmt.Errorf("%s: model %s version %d: %w", op, m.Model, to, ErrNotFound)
		}
		if err != nil {
			return AliasEvent{}, fmt.Errorf("%s: look up target: %w", op, err)
		}
		if status == StatusRejected {
			return AliasEvent{}, fmt.Errorf("%s: model %s version %d cannot be aliased %q: %w", op, m.Model, to, m.Alias, ErrRejected)
		}
	}
	cur, since, err := currentAlias(ctx, tx, m.Model, m.Alias)
	if err != nil {
		return AliasEvent{}, fmt.Errorf("%s: %w", op, err)
	}
	if m.From != nil && *m.From != cur {
		return AliasEvent{}, fmt.Errorf("%s: %w: expected %s, actual %s",
			op, ErrConflict, versionText(*m.From), versionText(cur))
	}
	ev := AliasEvent{
		Model: m.Model, Alias: m.Alias, From: cur, To: to,
		Actor: m.Actor, Reason: m.Reason, RunID: m.RunID,
	}
	if cur == to {
		ev.At, ev.Noop = since, true
		return ev, nil
	}
	ev.At = r.now().UTC()
	at := formatTime(ev.At)

	// The writes are conditional on the state read above, so that a
	// concurrent move (possible on PostgreSQL, not under SQLite's write
	// lock) makes this one fail instead of being lost.
	var res sql.Result
	switch {
	case cur == 0:
		res, err = tx.ExecContext(ctx, `INSERT INTO aliases (model, alias, version, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (model, alias) DO NOTHING`, m.Model, m.Alias, to, at)
	case to == 0:
		res, err = tx.ExecContext(ctx, `DELETE FROM aliases WHERE model = $1 AND alias = $2 AND version = $3`,
			m.Model, m.Alias, cur)
	default:
		res, err = tx.ExecContext(ctx, `UPDATE aliases SET version = $3, updated_at = $4
WHERE model = $1 AND alias = $2 AND version = $5`, m.Model, m.Alias, to, at, cur)
	}
	if err != nil {
		return AliasEvent{}, fmt.Errorf("%s: %w", op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return AliasEvent{}, fmt.Errorf("%s: %w", op, err)
	} else if n != 1 {
		return AliasEvent{}, fmt.Errorf("%s: %w: alias changed concurrently", op, ErrConflict)
	}
	if err := tx.QueryRowContext(ctx,
		`UPDATE counters SET value = value + 1 WHERE name = 'alias_events' RETURNING value`).Scan(&ev.ID); err != nil {
		return AliasEvent{}, fmt.Errorf("%s: number event: %w", op, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO alias_events (id, model, alias, from_version, to_version, actor, reason, run_id, moved_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ev.ID, ev.Model, ev.Alias, ev.From, ev.To, ev.Actor, ev.Reason, ev.RunID, at); err != nil {
		return AliasEvent{}, fmt.Errorf("%s: record event: %w", op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE models SET updated_at = $2 WHERE name = $1`, m.Model, at); err != nil {
		return AliasEvent{}, fmt.Errorf("%s: touch model: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return AliasEvent{}, fmt.Errorf("%s: commit: %w", op, err)
	}
	return ev, nil
}

// AliasHistory returns the recorded moves of an alias, oldest first, or of
// all the model's aliases when alias is ""; errors.Is(err, ErrNotFound) when
// the model does not exist.
func (r *Registry) AliasHistory(ctx context.Context, model, alias string) ([]AliasEvent, error) {
	if err := validName("model", model); err != nil {
		return nil, fmt.Errorf("alias history: %w", err)
	}
	if alias != "" {
		if err := validName("alias", alias); err != nil {
			return nil, fmt.Errorf("alias history: %w", err)
		}
	}
	tx, err := r.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("alias history of %s: %w", model, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, model); err != nil {
		return nil, fmt.Errorf("alias history: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, model, alias, from_version, to_version, actor, reason, run_id, moved_at
FROM alias_events WHERE model = $1 AND ($2 = '' OR alias = $2) ORDER BY id`, model, alias)
	if err != nil {
		return nil, fmt.Errorf("alias history of %s: %w", model, err)
	}
	defer rows.Close()
	var out []AliasEvent
	for rows.Next() {
		var ev AliasEvent
		var at string
		if err := rows.Scan(&ev.ID, &ev.Model, &ev.Alias, &ev.From, &ev.To, &ev.Actor, &ev.Reason, &ev.RunID, &at); err != nil {
			return nil, fmt.Errorf("alias history of %s: %w", model, err)
		}
		if ev.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("alias history of %s: event %d: %w", model, ev.ID, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alias history of %s: %w", model, err)
	}
	return out, nil
}

// AliasAt returns the version an alias pointed to at time at, from the alias
// history, and false if it was not set then; errors.Is(err, ErrNotFound) when
// the model does not exist.
func (r *Registry) AliasAt(ctx context.Context, model, alias string, at time.Time) (int64, bool, error) {
	if err := validateAlias(model, alias); err != nil {
		return 0, false, fmt.Errorf("alias at: %w", err)
	}
	tx, err := r.readTx(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("alias %s@%s at %s: %w", model, alias, at, err)
	}
	defer tx.Rollback()
	if err := requireModel(ctx, tx, model); err != nil {
		return 0, false, fmt.Errorf("alias %s@%s at %s: %w", model, alias, at, err)
	}
	var to int64
	err = tx.QueryRowContext(ctx, `SELECT to_version FROM alias_events
WHERE model = $1 AND alias = $2 AND moved_at <= $3 ORDER BY moved_at DESC, id DESC LIMIT 1`,
		model, alias, formatTime(at)).Scan(&to)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("alias %s@%s at %s: %w", model, alias, at, err)
	}
	return to, to != 0, nil
}

// currentAlias returns the alias's version (0 if unset) and when it was set.
func currentAlias(ctx context.Context, q querier, model, alias string) (int64, time.Time, error) {
	var version int64
	var updated string
	err := q.QueryRowContext(ctx, `SELECT version, updated_at FROM aliases WHERE model = $1 AND alias = $2`,
		model, alias).Scan(&version, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read alias %s@%s: %w", model, alias, err)
	}
	since, err := parseTime(updated)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read alias %s@%s: %w", model, alias, err)
	}
	return version, since, nil
}

// validateAlias checks a model and an alias name.
func validateAlias(model, alias string) error {
	if err := validName("model", model); err != nil {
		return err
	}
	return validName("alias", alias)
}

// versionText renders a version number for messages, 0 as "none".
func versionText(v int64) string {
	if v == 0 {
		return "none"
	}
	return "version " + strconv.FormatInt(v, 10)
}
