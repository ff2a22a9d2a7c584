package registry

import (
	"context"
	"fmt"
	"time"
)

// Deployment is a model's current traffic split on its model servers.
type Deployment struct {
	Model         string `json:"model"`
	StableVersion int64  `json:"stable_version"`
	StableURI     string `json:"stable_uri"`
	// CanaryVersion is 0 when all traffic goes to the stable version.
	CanaryVersion int64  `json:"canary_version,omitempty"`
	CanaryURI     string `json:"canary_uri,omitempty"`
	CanaryPercent int    `json:"canary_percent"`
	// ShadowVersion is the version mirrored requests go to, 0 for none.
	ShadowVersion int64  `json:"shadow_version,omitempty"`
	ShadowURI     string `json:"shadow_uri,omitempty"`
	// Experiment is the JSON of the A/B experiment splitting the traffic
	// (serving.Experiment), empty for none.
	Experiment string    `json:"experiment,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	// RunID is the workflow that set the split.
	RunID string `json:"run_id"`
}

// SetDeployment records a model's traffic split, replacing the previous one.
func (r *Registry) SetDeployment(ctx context.Context, d Deployment) error {
	switch {
	case d.Model == "" || d.StableVersion < 1 || d.StableURI == "":
		return fmt.Errorf("record deployment: %w: model and stable version are required", ErrInvalid)
	case d.CanaryPercent < 0 || d.CanaryPercent > 100 || (d.CanaryVersion == 0) != (d.CanaryURI == "") || (d.CanaryVersion == 0 && d.CanaryPercent != 0):
		return fmt.Errorf("record deployment of %s: %w: canary v%d at %d%%", d.Model, ErrInvalid, d.CanaryVersion, d.CanaryPercent)
	case (d.ShadowVersion == 0) != (d.ShadowURI == ""):
		return fmt.Errorf("record deployment of %s: %w: shadow v%d at %q", d.Model, ErrInvalid, d.ShadowVersion, d.ShadowURI)
	}
	if _, err := r.db.ExecContext(ctx, `INSERT INTO deployments (model, stable_version, stable_uri, canary_version, canary_uri, canary_percent, updated_at, run_id, shadow_version, shadow_uri, experiment)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (model) DO UPDATE SET stable_version = excluded.stable_version, stable_uri = excluded.stable_uri,
  canary_version = excluded.canary_version, canary_uri = excluded.canary_uri, canary_percent = excluded.canary_percent,
  updated_at = excluded.updated_at, run_id = excluded.run_id,
  shadow_version = excluded.shadow_version, shadow_uri = excluded.shadow_uri, experiment = excluded.experiment`,
		d.Model, d.StableVersion, d.StableURI, d.CanaryVersion, d.CanaryURI, d.CanaryPercent, formatTime(r.now()), d.RunID,
		d.ShadowVersion, d.ShadowURI, d.Experiment); err != nil {
		return fmt.Errorf("record deployment of %s: %w", d.Model, err)
	}
	return nil
}

// Deployments returns every model's recorded traffic split, by model name.
func (r *Registry) Deployments(ctx context.Context) ([]Deployment, error) {
	return queryAll(ctx, r.db, "list deployments", func(s scanner) (Deployment, error) {
		var d Deployment
		var at string
		if err := s.Scan(&d.Model, &d.StableVersion, &d.StableURI, &d.CanaryVersion, &d.CanaryURI, &d.CanaryPercent, &at, &d.RunID,
			&d.ShadowVersion, &d.ShadowURI, &d.Experiment); err != nil {
			return d, err
		}
		var err error
		d.UpdatedAt, err = parseTime(at)
		return d, err
	}, `SELECT model, stable_version, stable_uri, canary_version, canary_uri, canary_percent, updated_at, run_id,
  shadow_version, shadow_uri, experiment FROM deployments ORDER BY model`)
}
