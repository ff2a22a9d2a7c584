package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
)

// ResolveAlias returns the version a registry alias points to, if any.
func (a *Activities) ResolveAlias(ctx context.Context, in ResolveAliasInput) (ResolveAliasOutput, error) {
	v, err := a.Registry.Resolve(ctx, in.Model+"@"+in.Alias)
	if errors.Is(err, registry.ErrNotFound) {
		return ResolveAliasOutput{}, nil
	}
	if err != nil {
		return ResolveAliasOutput{}, err
	}
	return ResolveAliasOutput{Found: true, Current: VersionRef{Version: v.Version, BundleURI: v.BundleURI}}, nil
}

// MoveAlias moves a registry alias by compare-and-swap; the move is kept in
// the alias history with who, why and which run.
func (a *Activities) MoveAlias(ctx context.Context, in MoveAliasInput) (MoveAliasOutput, error) {
	from := in.From
	ev, err := a.Registry.SetAlias(ctx, registry.AliasMove{
		Model: in.Model, Alias: in.Alias, To: in.To, From: &from,
		Actor: in.Actor, Reason: in.Reason, RunID: in.RunID,
	})
	if errors.Is(err, registry.ErrConflict) {
		// A retry of a move that already happened finds the alias at To.
		if cur, ok, err2 := a.Registry.Alias(ctx, in.Model, in.Alias); err2 == nil && ok && cur == in.To {
			return MoveAliasOutput{Noop: true}, nil
		}
		return MoveAliasOutput{}, invalid("moving %s@%s: %v", in.Model, in.Alias, err)
	}
	if err != nil {
		return MoveAliasOutput{}, err
	}
	return MoveAliasOutput{EventID: ev.ID, Noop: ev.Noop}, nil
}

// modelServers returns the worker's model servers (ModelServer is a
// comma-separated list).
func (a *Activities) modelServers() []string {
	var out []string
	for _, s := range strings.Split(a.ModelServer, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// serving returns a client of one of the worker's model servers. A spec may
// name servers, but the worker sends its admin token to no other: anyone who
// can start a run could otherwise collect it with a server of their own.
func (a *Activities) serving(server string) (*serving.Client, error) {
	for _, s := range a.modelServers() {
		if strings.TrimRight(server, "/") == strings.TrimRight(s, "/") {
			return &serving.Client{BaseURL: server, Token: a.AdminToken, HTTP: a.httpClient()}, nil
		}
	}
	return nil, invalid("model server %s is not one of this worker's --model-server (%s); the worker deploys only there, so its admin token goes nowhere else", server, a.ModelServer)
}

// servingError makes a model server's 4xx answers (bad token, a bundle that
// does not load) final: retrying cannot fix them.
func servingError(err error, format string, args ...any) error {
	var he *serving.HTTPError
	if errors.As(err, &he) && he.Code >= 400 && he.Code < 500 {
		return invalid("%s: %v", fmt.Sprintf(format, args...), err)
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// SetTraffic tells a model server which versions of a model to serve and how
// to split traffic between them. The server loads the bundles before it
// answers, so a bundle that does not load fails here, not on live traffic.
// The split is recorded in the registry first, so that a replica that
// restarts serves it too (serving.Server.Restore).
func (a *Activities) SetTraffic(ctx context.Context, in TrafficInput) (TrafficOutput, error) {
	c, err := a.serving(in.Server)
	if err != nil {
		return TrafficOutput{}, err
	}
	rec := registry.Deployment{Model: in.Model, StableVersion: in.Stable.Version, StableURI: in.Stable.BundleURI, RunID: in.RunID}
	if in.Canary != nil {
		rec.CanaryVersion, rec.CanaryURI, rec.CanaryPercent = in.Canary.Version, in.Canary.BundleURI, in.CanaryPercent
	}
	if in.Shadow != nil {
		rec.ShadowVersion, rec.ShadowURI = in.Shadow.Version, in.Shadow.BundleURI
	}
	if a.Registry != nil && rec.StableURI != "" {
		if err := a.Registry.SetDeployment(ctx, rec); err != nil {
			return TrafficOutput{}, err
		}
	}
	d := serving.Deployment{Stable: in.Stable, Canary: in.Canary, CanaryPercent: in.CanaryPercent, Shadow: in.Shadow}
	if err := c.SetDeployment(ctx, in.Model, d); err != nil {
		return TrafficOutput{}, servingError(err, "deploying %s to %s", in.Model, in.Server)
	}
	return TrafficOutput{Applied: true}, nil
}

// GetStats reads a model's per-version request counters from a model server.
func (a *Activities) GetStats(ctx context.Context, in StatsInput) (StatsOutput, error) {
	c, err := a.serving(in.Server)
	if err != nil {
		return StatsOutput{}, err
	}
	st, err := c.Stats(ctx, in.Model)
	if err != nil {
		return StatsOutput{}, servingError(err, "reading stats of %s from %s", in.Model, in.Server)
	}
	return StatsOutput{Variants: st.Variants, Shadows: st.Shadows}, nil
}

// AlertKindCanaryPaused is the kind of the alert a paused canary raises.
const AlertKindCanaryPaused = "canary_paused"

// CanaryAlertInput records that a canary rollout paused for a decision.
type CanaryAlertInput struct {
	// WorkflowID is the canary's workflow (canary/<model>); Key tells the
	// pause apart (run and step).
	WorkflowID string `json:"workflow_id"`
	Key        string `json:"key"`
	Message    string `json:"message"`
}

// CanaryAlertOutput is the recorded alert.
type CanaryAlertOutput struct {
	AlertID int64 `json:"alert_id"`
}

// RaiseCanaryAlert records a paused canary in the registry's alerts (once
// per key) and logs it: a rollout waiting on a person must be seen.
func (a *Activities) RaiseCanaryAlert(ctx context.Context, in CanaryAlertInput) (CanaryAlertOutput, error) {
	alert, created, err := a.Registry.RaiseAlert(ctx, registry.Alert{
		Schedule: in.WorkflowID, RunKey: in.Key, Kind: AlertKindCanaryPaused, Message: in.Message, Due: time.Now(),
	})
	if err != nil {
		return CanaryAlertOutput{}, err
	}
	if created {
		a.logger(ctx).Warn("canary paused", "workflow", in.WorkflowID, "message", in.Message)
	}
	return CanaryAlertOutput{AlertID: alert.ID}, nil
}
