package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// Register adds the bundle to the registry as a new, immutable model version
// with its metrics, parameters and lineage, and moves the step's alias (if
// any) to it. It is idempotent per run and step: a retry after a crash between
// the registry write and the activity's completion finds the version it
// already registered instead of adding a second one.
//
// It computes a cache key (the bundle, the model and the alias) and returns
// in.Reuse (kiln run --resume) when the key matches and the version is still
// registered, so a resumed run does not register a second version; it never
// uses the step cache: every new run registers its own version.
func (a *Activities) Register(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg, bundle := in.Step.Register, in.Inputs.Bundle
	if cfg == nil || bundle == nil {
		return StepOutput{}, invalid("step %q needs a register config and a train step upstream", in.Step.Name)
	}
	name := cfg.Model
	if name == "" {
		name = in.Run.Pipeline
	}
	key, err := stepKey(pipelines.StepRegister, registerImplVersion, cfg, map[string]string{
		"bundle_sha256": bundle.SHA256, "model": name, "alias": cfg.Alias,
	}, in)
	if err != nil {
		return StepOutput{}, err
	}
	registered := func(out StepOutput) error {
		m := out.Artifacts.Model
		if m == nil {
			return errors.New("it names no model version")
		}
		v, err := a.Registry.Get(ctx, m.Name, m.Version)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", m.Name, m.Version, err)
		}
		if v.BundleURI != m.BundleURI {
			return fmt.Errorf("%s:%d holds bundle %s, not %s", m.Name, m.Version, v.BundleURI, m.BundleURI)
		}
		return nil
	}
	if out, ok := a.reuse(ctx, in, key, registered); ok {
		return out, nil
	}
	out, err := a.register(ctx, in, cfg, bundle, name)
	if err != nil {
		return StepOutput{}, err
	}
	out.CacheKey = key
	return out, nil
}

// register does the work of Register: it adds bundle as a version of model
// name.
func (a *Activities) register(ctx context.Context, in StepInput, cfg *pipelines.RegisterConfig, bundle *BundleRef, name string) (StepOutput, error) {
	metrics := map[string]float64{}
	for k, v := range bundle.TrainMetrics {
		metrics[k] = v
	}
	if ev := in.Inputs.Evaluation; ev != nil {
		for k, v := range ev.Metrics {
			metrics[k] = v
		}
	}
	var datasetHash string
	if p := in.Inputs.Prepared; p != nil {
		datasetHash = p.DatasetSHA256
	}
	ev := in.Inputs.Evaluation
	rejected := ev != nil && !ev.Passed
	status, report := registry.StatusReady, ""
	if rejected {
		status, report = registry.StatusRejected, rejectionReport(ev)
	}
	ver := registry.Version{
		Model: name, BundleURI: bundle.URI, Status: status, Report: report,
		Metrics: metrics, Params: bundle.Params,
		DatasetHash: datasetHash, SpecHash: in.Run.SpecHash, Pipeline: in.Run.Pipeline,
		RunID: in.Run.WorkflowID, Step: in.Step.Name,
		Runtime: bundle.Runtime, Image: bundle.Image, CreatedBy: in.Run.CreatedBy,
		TrainerVersion: bundle.TrainerVersion, SpecText: in.Run.SpecText,
		Datasets: lineageDatasets(in.Inputs), RequireApproval: cfg.RequireApproval,
		Trigger: in.Run.Trigger,
	}
	for _, uri := range in.Run.AppendData {
		ver.Datasets = append(ver.Datasets, registry.DatasetRef{Role: registry.DatasetAppended, URI: uri})
	}
	if g := in.Run.Git; g != nil {
		ver.GitCommit, ver.GitDirty = g.Commit, g.Dirty
	}
	if activity.IsActivity(ctx) {
		ver.WorkflowRunID = activity.GetInfo(ctx).WorkflowExecution.RunID
	}
	v, created, err := a.Registry.Register(ctx, ver)
	if err != nil {
		return StepOutput{}, fmt.Errorf("registering %s: %w", name, err)
	}
	summary := fmt.Sprintf("%s:%d", name, v.Version)
	if !created {
		summary += " (already registered by an earlier attempt)"
	}
	if rejected {
		// Kept for the record, never aliased; the run fails here with the
		// report, so nothing downstream uses the model.
		ref := &ModelRef{Name: name, Version: v.Version, BundleURI: v.BundleURI, Created: created, Rejected: true}
		msg := fmt.Sprintf("model rejected by evaluation; kept as %s:%d with status rejected and no alias\n%s", name, v.Version, ev.Report)
		out := StepOutput{Artifacts: Artifacts{Model: ref}, Summary: summary + " (rejected)"}
		return StepOutput{}, temporal.NewNonRetryableApplicationError(msg, errGateFailed, nil, out)
	}
	if cfg.Alias != "" {
		moved, err := a.aliasOnce(ctx, name, cfg.Alias, v.Version, created, in)
		if err != nil {
			return StepOutput{}, err
		}
		if moved {
			summary += fmt.Sprintf(", %s@%s", name, cfg.Alias)
		}
	}
	return StepOutput{
		Artifacts: Artifacts{Model: &ModelRef{Name: name, Version: v.Version, BundleURI: v.BundleURI, Created: created}},
		Summary:   summary,
	}, nil
}

// aliasOnce moves alias to version for this run, once. A retried step (the
// version already existed) does not move it again if this run moved it
// before: someone may have moved it on since, and this would move it back.
// It reports whether the alias points to version because of this run.
func (a *Activities) aliasOnce(ctx context.Context, model, alias string, version int64, created bool, in StepInput) (bool, error) {
	if !created {
		history, err := a.Registry.AliasHistory(ctx, model, alias)
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return false, fmt.Errorf("reading the history of %s@%s: %w", model, alias, err)
		}
		for _, e := range history {
			if e.RunID == in.Run.WorkflowID && e.To == version {
				cur, _, err := a.Registry.Alias(ctx, model, alias)
				return err == nil && cur == version, err
			}
		}
	}
	_, err := a.Registry.SetAlias(ctx, registry.AliasMove{
		Model: model, Alias: alias, To: version,
		Actor: in.Run.CreatedBy, Reason: "registered by " + in.Run.WorkflowID, RunID: in.Run.WorkflowID,
	})
	if err != nil {
		return false, fmt.Errorf("moving %s@%s: %w", model, alias, err)
	}
	return true, nil
}

// lineageDatasets lists the data a registered version comes from: the
// source the spec names, ingest's content-addressed copy and the splits.
func lineageDatasets(in Artifacts) []registry.DatasetRef {
	var out []registry.DatasetRef
	if d := in.Dataset; d != nil {
		if d.Source != "" {
			out = append(out, registry.DatasetRef{Role: registry.DatasetSource, URI: d.Source})
		}
		out = append(out, registry.DatasetRef{Role: registry.DatasetIngested, URI: d.URI, SHA256: d.SHA256, Rows: d.Rows})
	}
	if p := in.Prepared; p != nil {
		for _, s := range []struct {
			role, uri string
			rows      int64
		}{
			{registry.DatasetTrain, p.TrainURI, p.TrainRows},
			{registry.DatasetValid, p.ValidURI, p.ValidRows},
			{registry.DatasetTest, p.TestURI, p.TestRows},
		} {
			if s.uri != "" {
				out = append(out, registry.DatasetRef{Role: s.role, URI: s.uri, Rows: s.rows})
			}
		}
	}
	return out
}

// rejectionReport is the JSON report a rejected version keeps in the
// registry: the gate, its checks, the significance test and the text report.
// Metric maps are left out (they may hold NaN, which JSON cannot).
func rejectionReport(ev *EvaluationRef) string {
	doc := struct {
		Gate         string              `json:"gate,omitempty"`
		Passed       bool                `json:"passed"`
		Champion     string              `json:"champion,omitempty"`
		Checks       []GateCheck         `json:"checks,omitempty"`
		Significance *SignificanceResult `json:"significance,omitempty"`
		Report       string              `json:"report"`
	}{ev.Gate, ev.Passed, ev.ChampionRef, ev.Checks, ev.Significance, ev.Report}
	b, err := json.Marshal(doc)
	if err != nil { // a NaN or Inf statistic: keep the text
		b, _ = json.Marshal(map[string]any{"passed": false, "report": ev.Report})
	}
	return string(b)
}
