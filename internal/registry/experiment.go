package registry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Experiment is an A/B experiment on a model's traffic, as kiln
// experiments starts and stops it.
type Experiment struct {
	Name  string `json:"name"`
	Model string `json:"model"`
	// Definition is the experiment's JSON (assignment key, variants,
	// outcome metric and margins), as the caller wrote it.
	Definition string    `json:"definition"`
	StartedAt  time.Time `json:"started_at"`
	StartedBy  string    `json:"started_by"`
	// StoppedAt is zero while the experiment runs; Outcome then says how
	// it ended (the variant kept, or why it was stopped).
	StoppedAt time.Time `json:"stopped_at,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
}

// Running reports whether the experiment has not been stopped.
func (e Experiment) Running() bool { return e.StoppedAt.IsZero() }

// CreateExperiment records a new experiment, started now; a name already
// used (by a running or stopped experiment) is ErrConflict.
func (r *Registry) CreateExperiment(ctx context.Context, e Experiment) (Experiment, error) {
	if err := validName("experiment", e.Name); err != nil {
		return Experiment{}, err
	}
	if err := validName("model", e.Model); err != nil {
		return Experiment{}, err
	}
	if e.Definition == "" {
		return Experiment{}, fmt.Errorf("create experiment %s: %w: no definition", e.Name, ErrInvalid)
	}
	if _, err := r.Experiment(ctx, e.Name); err == nil {
		return Experiment{}, fmt.Errorf("create experiment %s: %w: the name is taken (experiment names are never reused)", e.Name, ErrConflict)
	} else if !errors.Is(err, ErrNotFound) {
		return Experiment{}, err
	}
	e.StartedAt, e.StoppedAt, e.Outcome = r.now().UTC(), time.Time{}, ""
	if _, err := r.db.ExecContext(ctx, `INSERT INTO experiments (name, model, definition, started_at, started_by, stopped_at, outcome)
VALUES ($1, $2, $3, $4, $5, '', '')`, e.Name, e.Model, e.Definition, formatTime(e.StartedAt), e.StartedBy); err != nil {
		return Experiment{}, fmt.Errorf("create experiment %s: %w", e.Name, err)
	}
	return e, nil
}

// StopExperiment marks a running experiment stopped now, with its outcome.
func (r *Registry) StopExperiment(ctx context.Context, name, outcome string) (Experiment, error) {
	res, err := r.db.ExecContext(ctx, `UPDATE experiments SET stopped_at = $1, outcome = $2 WHERE name = $3 AND stopped_at = ''`,
		formatTime(r.now()), outcome, name)
	if err != nil {
		return Experiment{}, fmt.Errorf("stop experiment %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		e, err := r.Experiment(ctx, name)
		if err != nil {
			return Experiment{}, err
		}
		return e, fmt.Errorf("stop experiment %s: %w: it stopped at %s", name, ErrConflict, e.StoppedAt.Format(time.RFC3339))
	}
	return r.Experiment(ctx, name)
}

// Experiment returns one experiment, ErrNotFound when there is none of
// that name.
func (r *Registry) Experiment(ctx context.Context, name string) (Experiment, error) {
	es, err := r.experiments(ctx, `WHERE name = $1`, name)
	if err != nil {
		return Experiment{}, err
	}
	if len(es) == 0 {
		return Experiment{}, fmt.Errorf("experiment %s: %w", name, ErrNotFound)
	}
	return es[0], nil
}

// Experiments returns every experiment, newest first.
func (r *Registry) Experiments(ctx context.Context) ([]Experiment, error) {
	return r.experiments(ctx, ``)
}

func (r *Registry) experiments(ctx context.Context, where string, args ...any) ([]Experiment, error) {
	return queryAll(ctx, r.db, "list experiments", func(s scanner) (Experiment, error) {
		var e Experiment
		var started, stopped string
		if err := s.Scan(&e.Name, &e.Model, &e.Definition, &started, &e.StartedBy, &stopped, &e.Outcome); err != nil {
			return e, err
		}
		var err error
		if e.StartedAt, err = parseTime(started); err != nil {
			return e, err
		}
		if stopped != "" {
			e.StoppedAt, err = parseTime(stopped)
		}
		return e, err
	}, `SELECT name, model, definition, started_at, started_by, stopped_at, outcome FROM experiments `+where+` ORDER BY started_at DESC, name`, args...)
}
