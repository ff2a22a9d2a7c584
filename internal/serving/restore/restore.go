// Package restore deploys on a model server what the registry says it
// should serve. It is apart from package serving so the server (which
// exported predictors link) does not depend on the registry's SQL drivers.
package restore

import (
	"context"
	"encoding/json"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
)

// Deployments deploys on srv what reg says each model should serve: the
// traffic split a deploy step or an experiment recorded last
// (registry.Deployments: a canary, shadow or experiment in progress keeps
// its split when a replica restarts), or else, as stable, the version the
// alias points to (models with neither are skipped). A bundle that does not
// load is logged and skipped.
func Deployments(ctx context.Context, srv *serving.Server, reg *registry.Registry, alias string) error {
	log := srv.Logger()
	deps, err := reg.Deployments(ctx)
	if err != nil {
		return err
	}
	recorded := map[string]bool{}
	for _, d := range deps {
		recorded[d.Model] = true
		dep := serving.Deployment{Stable: serving.Target{Version: d.StableVersion, BundleURI: d.StableURI}, CanaryPercent: d.CanaryPercent}
		if d.CanaryVersion > 0 {
			dep.Canary = &serving.Target{Version: d.CanaryVersion, BundleURI: d.CanaryURI}
		}
		if d.ShadowVersion > 0 {
			dep.Shadow = &serving.Target{Version: d.ShadowVersion, BundleURI: d.ShadowURI}
		}
		if d.Experiment != "" {
			dep.Experiment = &serving.Experiment{}
			if err := json.Unmarshal([]byte(d.Experiment), dep.Experiment); err != nil {
				log.Warn("restoring deployment: unreadable experiment", "model", d.Model, "error", err)
				dep.Experiment = nil
			}
		}
		if err := srv.SetDeployment(d.Model, dep); err != nil {
			log.Warn("restoring deployment", "model", d.Model, "error", err)
		}
	}
	models, err := reg.Models(ctx)
	if err != nil {
		return err
	}
	for _, m := range models {
		v, ok := m.Aliases[alias]
		if !ok || recorded[m.Name] {
			continue
		}
		ver, err := reg.Get(ctx, m.Name, v)
		if err != nil {
			return err
		}
		if err := srv.SetDeployment(m.Name, serving.Deployment{Stable: serving.Target{Version: v, BundleURI: ver.BundleURI}}); err != nil {
			log.Warn("restoring model", "model", m.Name, "version", v, "error", err)
		}
	}
	return nil
}
